/*
 * Host keys as OpenSSH writes them: the text of a known_hosts file matched
 * against the host, port and key a server offered (plain, wildcard, negated
 * and hashed host names, "[host]:port" off port 22, @revoked), and the
 * key's SHA256 fingerprint for messages.  Pure functions of their inputs:
 * no I/O, nothing kept between calls; never read or write past the lengths
 * and capacities given.
 */
#ifndef WAL_KNOWN_HOSTS_H
#define WAL_KNOWN_HOSTS_H

#include <stddef.h>

/* Results of wal_known_hosts_check. */
enum {
	WAL_KH_MATCH = 0, /* an entry for this host holds this key */
	WAL_KH_MISMATCH,  /* entries for this host hold other keys of this type */
	WAL_KH_NOTFOUND,  /* no entry for this host and key type */
	WAL_KH_REVOKED	  /* the key is listed under @revoked */
};

/*
 * Checks the key blob a server offered for host:port against text, the
 * NUL-terminated content of a known_hosts file.  An @revoked entry for the
 * key wins over every other; then an entry holding the key; then one holding
 * another key of the same type.  @cert-authority lines are skipped
 * (certificates are not supported).  Returns a WAL_KH_* result; *line (if
 * line is not NULL) gets the 1-based line of the deciding entry, 0 if none.
 */
int wal_known_hosts_check(const char *text, const char *host, int port, const unsigned char *blob,
			  size_t len, int *line);

/*
 * The host key methods to ask the server for, as OpenSSH does: the key types
 * text holds (not @revoked) for host:port, strongest first, comma-separated
 * in libssh2's names; "" if none.  out is always NUL-terminated (cap > 0).
 */
void wal_known_hosts_methods(const char *text, const char *host, int port, char *out, size_t cap);

/* The name known_hosts uses for host:port, lowercased: "host", or
 * "[host]:port" off port 22 (port <= 0 is port 22). */
void wal_known_hosts_name(const char *host, int port, char *out, size_t cap);

/* OpenSSH's fingerprint of a key blob: "SHA256:" and the unpadded base64 of
 * its SHA-256. */
void wal_ssh_key_fingerprint(const unsigned char *blob, size_t len, char *out, size_t cap);

/* The key type named at the start of an SSH public key blob ("ssh-ed25519"),
 * or "" if the blob is too short or the name does not fit in cap. */
void wal_ssh_key_type(const unsigned char *blob, size_t len, char *out, size_t cap);

/* Decodes in_len characters of base64 (padding optional: decoding stops at
 * the first '=') into out; returns the length, 0 on a character outside
 * the alphabet or more than cap bytes. */
size_t wal_ssh_base64_decode(const char *in, size_t in_len, unsigned char *out, size_t cap);

#endif
