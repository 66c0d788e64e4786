/*
 * The SFTP store (sftp://user@host[:port]/path) over libssh2: one SSH
 * connection per store handle, reused by every operation.  The host key is
 * always checked against a known_hosts file; uploads go to a temporary name,
 * are made durable with fsync@openssh.com and renamed with plain SFTP rename,
 * which OpenSSH refuses when the target exists.
 */
#include <errno.h>
#include <fcntl.h>
#include <ctype.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <libssh2.h>
#include <libssh2_sftp.h>
#include <openssl/evp.h>

#include "sys/fileio.h"
#include "store/store.h"

/* Bytes handed to libssh2_sftp_write at once: libssh2 1.10 splits them
 * into 30000-byte SFTP writes and keeps all of them in flight.  1 MiB
 * measured fastest on loopback; beyond 2 MiB libssh2's bookkeeping of
 * outstanding writes makes it slower. */
#ifndef SFTP_BUF_SIZE
#define SFTP_BUF_SIZE (4 * WAL_IO_CHUNK)
#endif

/* Bytes asked of libssh2_sftp_read at once; it reads ahead four times that. */
#ifndef SFTP_READ_SIZE
#define SFTP_READ_SIZE WAL_IO_CHUNK
#endif

/* Results of the known_hosts check (wal_sftp_known_hosts_check). */
enum {
	WAL_KH_MATCH = 0,      /* an entry for this host holds this key */
	WAL_KH_MISMATCH,       /* entries for this host hold other keys of this type */
	WAL_KH_NOTFOUND,       /* no entry for this host and key type */
	WAL_KH_REVOKED         /* the key is listed under @revoked */
};

/* Pure helpers, exported for tests/unit/test_store_sftp.c. */
void wal_sftp_fingerprint(const unsigned char *blob, size_t len, char *out, size_t cap);
int wal_sftp_known_hosts_check(const char *text, const char *host, int port,
			       const unsigned char *blob, size_t len, int *line);
void wal_sftp_known_hosts_methods(const char *text, const char *host, int port,
				  char *out, size_t cap);
size_t wal_sftp_base64_decode(const char *in, size_t in_len, unsigned char *out, size_t cap);

typedef struct sftp_store {
	wal_store base;
	char *user;
	char *host;
	int port;
	char *root;            /* absolute remote path of the archive root */
	char where[512];       /* "sftp://user@host:port", for messages */

	char *key_file;        /* NULL: the default identities */
	char *passphrase_file;
	char *known_hosts;
	int use_agent;
	int require_fsync;
	int file_mode;
	int timeout;           /* seconds */
	int retries;

	int sock;
	LIBSSH2_SESSION *session;
	LIBSSH2_SFTP *sftp;
	int dir_fsync_broken;  /* the server cannot fsync a directory handle */
	unsigned char *buf;
} sftp_store;

/* ---- pure helpers ------------------------------------------------------ */

static const char b64_chars[] =
	"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/* Decodes base64 (padding optional); returns the length, 0 on bad input. */
size_t wal_sftp_base64_decode(const char *in, size_t in_len, unsigned char *out, size_t cap)
{
	unsigned int acc = 0;
	int bits = 0;
	size_t n = 0;
	for (size_t i = 0; i < in_len; i++) {
		char c = in[i];
		if (c == '=')
			break;
		const char *p = c ? strchr(b64_chars, c) : NULL;
		if (!p)
			return 0;
		acc = (acc << 6) | (unsigned int)(p - b64_chars);
		bits += 6;
		if (bits >= 8) {
			bits -= 8;
			if (n >= cap)
				return 0;
			out[n++] = (unsigned char)(acc >> bits);
		}
	}
	return n;
}

/* OpenSSH's fingerprint: "SHA256:" and the unpadded base64 of the key blob's SHA-256. */
void wal_sftp_fingerprint(const unsigned char *blob, size_t len, char *out, size_t cap)
{
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int md_len = 0;
	char text[80] = "SHA256:";
	size_t pos = strlen(text);
	if (!EVP_Digest(blob, len, md, &md_len, EVP_sha256(), NULL))
		md_len = 0;
	for (unsigned int i = 0; i < md_len; i += 3) {
		unsigned int v = (unsigned int)md[i] << 16;
		int have = md_len - i >= 3 ? 3 : (int)(md_len - i);
		if (have > 1)
			v |= (unsigned int)md[i + 1] << 8;
		if (have > 2)
			v |= md[i + 2];
		for (int k = 0; k <= have; k++)
			text[pos++] = b64_chars[(v >> (18 - 6 * k)) & 63];
	}
	text[pos] = '\0';
	snprintf(out, cap, "%s", text);
}

/* The key type named at the start of an SSH public key blob. */
static void blob_type(const unsigned char *blob, size_t len, char *out, size_t cap)
{
	out[0] = '\0';
	if (len < 4)
		return;
	size_t n = ((size_t)blob[0] << 24) | ((size_t)blob[1] << 16) | ((size_t)blob[2] << 8) | blob[3];
	if (n > len - 4 || n >= cap)
		return;
	memcpy(out, blob + 4, n);
	out[n] = '\0';
}

/* The name known_hosts uses for host:port: "host", or "[host]:port" off port 22. */
static void known_hosts_name(const char *host, int port, char *out, size_t cap)
{
	if (port <= 0 || port == 22)
		snprintf(out, cap, "%s", host);
	else
		snprintf(out, cap, "[%s]:%d", host, port);
	for (char *p = out; *p; p++)
		if (*p >= 'A' && *p <= 'Z')
			*p = (char)(*p - 'A' + 'a');
}

/* OpenSSH's match_pattern: '*' and '?' wildcards, case-insensitive
 * ("[host]:port" is literal, unlike fnmatch's brackets). */
static int pattern_match(const char *pattern, size_t plen, const char *name)
{
	if (plen == 0)
		return *name == '\0';
	if (*pattern == '*') {
		for (const char *n = name;; n++) {
			if (pattern_match(pattern + 1, plen - 1, n))
				return 1;
			if (!*n)
				return 0;
		}
	}
	if (!*name)
		return 0;
	if (*pattern != '?' && tolower((unsigned char)*pattern) != tolower((unsigned char)*name))
		return 0;
	return pattern_match(pattern + 1, plen - 1, name + 1);
}

/* Whether a hashed entry "|1|salt|hash" is name (HMAC-SHA1 keyed by salt). */
static int hashed_match(const char *field, size_t len, const char *name)
{
	if (len < 3 || memcmp(field, "|1|", 3) != 0)
		return 0;
	const char *salt = field + 3;
	const char *bar = memchr(salt, '|', len - 3);
	if (!bar)
		return 0;
	unsigned char salt_raw[64], hash_raw[64], mac[EVP_MAX_MD_SIZE];
	size_t salt_len = wal_sftp_base64_decode(salt, (size_t)(bar - salt), salt_raw, sizeof(salt_raw));
	size_t hash_len = wal_sftp_base64_decode(bar + 1, len - (size_t)(bar + 1 - field),
						 hash_raw, sizeof(hash_raw));
	size_t mac_len = 0;
	if (!salt_len || hash_len != 20)
		return 0;
	if (!EVP_Q_mac(NULL, "HMAC", NULL, "SHA1", NULL, salt_raw, salt_len,
		       (const unsigned char *)name, strlen(name), mac, sizeof(mac), &mac_len))
		return 0;
	return mac_len == 20 && memcmp(mac, hash_raw, 20) == 0;
}

/* Whether a hosts field (comma-separated patterns, "!" negates, or one
 * hashed name) names name, as OpenSSH's match_hostname decides. */
static int hosts_field_match(const char *field, size_t len, const char *name)
{
	if (len > 0 && field[0] == '|')
		return hashed_match(field, len, name);
	int matched = 0;
	size_t i = 0;
	while (i < len) {
		size_t j = i;
		while (j < len && field[j] != ',')
			j++;
		int negate = 0;
		size_t start = i;
		if (start < j && field[start] == '!') {
			negate = 1;
			start++;
		}
		if (j > start && pattern_match(field + start, j - start, name)) {
			if (negate)
				return 0;
			matched = 1;
		}
		i = j + 1;
	}
	return matched;
}

/* Splits the next whitespace-separated field of [*p, end). */
static int next_field(const char **p, const char *end, const char **f, size_t *flen)
{
	const char *s = *p;
	while (s < end && (*s == ' ' || *s == '\t'))
		s++;
	const char *t = s;
	while (t < end && *t != ' ' && *t != '\t')
		t++;
	*f = s;
	*flen = (size_t)(t - s);
	*p = t;
	return t > s;
}

/* Calls visit for each known_hosts line that names host:port. */
typedef void (*kh_visit_fn)(void *arg, int revoked, const char *type, size_t type_len,
			    const char *key, size_t key_len, int line);
static void known_hosts_each(const char *text, const char *host, int port, kh_visit_fn visit, void *arg)
{
	char name[300];
	known_hosts_name(host, port, name, sizeof(name));
	int line_no = 0;
	const char *p = text;
	while (p && *p) {
		const char *end = strchr(p, '\n');
		if (!end)
			end = p + strlen(p);
		line_no++;
		const char *cur = p, *f;
		size_t flen;
		int revoked = 0, skip = 0;
		if (next_field(&cur, end, &f, &flen) && f[0] != '#') {
			if (f[0] == '@') {
				if (flen == 8 && memcmp(f, "@revoked", 8) == 0)
					revoked = 1;
				else
					skip = 1;   /* @cert-authority: certificates are not supported */
				if (!next_field(&cur, end, &f, &flen))
					skip = 1;
			}
			const char *type, *key;
			size_t type_len, key_len;
			if (!skip && hosts_field_match(f, flen, name) &&
			    next_field(&cur, end, &type, &type_len) &&
			    next_field(&cur, end, &key, &key_len)) {
				while (key_len && key[key_len - 1] == '\r')
					key_len--;
				visit(arg, revoked, type, type_len, key, key_len, line_no);
			}
		}
		p = *end ? end + 1 : end;
	}
}

typedef struct kh_check {
	const unsigned char *blob;
	size_t len;
	char type[64];
	int result;
	int line;
} kh_check;

static void kh_check_visit(void *arg, int revoked, const char *type, size_t type_len,
			   const char *key, size_t key_len, int line)
{
	kh_check *c = arg;
	unsigned char raw[4096];
	size_t raw_len = wal_sftp_base64_decode(key, key_len, raw, sizeof(raw));
	int same_key = raw_len == c->len && memcmp(raw, c->blob, raw_len) == 0;
	int same_type = type_len == strlen(c->type) && memcmp(type, c->type, type_len) == 0;
	if (revoked) {
		if (same_key) {
			c->result = WAL_KH_REVOKED;
			c->line = line;
		}
		return;
	}
	if (c->result == WAL_KH_REVOKED)
		return;
	if (same_key) {
		c->result = WAL_KH_MATCH;
		c->line = line;
	} else if (same_type && c->result == WAL_KH_NOTFOUND) {
		c->result = WAL_KH_MISMATCH;
		c->line = line;
	}
}

/*
 * Checks the key blob a server offered for host:port against the text of a
 * known_hosts file (plain, wildcard, negated and hashed host names,
 * "[host]:port" off port 22, @revoked).  Returns a WAL_KH_* result; *line
 * gets the line of the deciding entry (0 if none).
 */
int wal_sftp_known_hosts_check(const char *text, const char *host, int port,
			       const unsigned char *blob, size_t len, int *line)
{
	kh_check c = { .blob = blob, .len = len, .result = WAL_KH_NOTFOUND, .line = 0 };
	blob_type(blob, len, c.type, sizeof(c.type));
	known_hosts_each(text, host, port, kh_check_visit, &c);
	if (line)
		*line = c.line;
	return c.result;
}

typedef struct kh_types {
	unsigned int seen;     /* bit per entry of kh_methods */
} kh_types;

/* known_hosts key types and the libssh2 host key methods that produce them, in preference order. */
static const struct { const char *type; const char *methods; } kh_methods[] = {
	{ "ssh-ed25519", "ssh-ed25519" },
	{ "ecdsa-sha2-nistp256", "ecdsa-sha2-nistp256" },
	{ "ecdsa-sha2-nistp384", "ecdsa-sha2-nistp384" },
	{ "ecdsa-sha2-nistp521", "ecdsa-sha2-nistp521" },
	{ "ssh-rsa", "rsa-sha2-512,rsa-sha2-256,ssh-rsa" },
};

static void kh_types_visit(void *arg, int revoked, const char *type, size_t type_len,
			   const char *key, size_t key_len, int line)
{
	kh_types *t = arg;
	(void)key;
	(void)key_len;
	(void)line;
	if (revoked)
		return;
	for (size_t i = 0; i < sizeof(kh_methods) / sizeof(kh_methods[0]); i++)
		if (strlen(kh_methods[i].type) == type_len && memcmp(kh_methods[i].type, type, type_len) == 0)
			t->seen |= 1u << i;
}

/*
 * The host key methods to ask the server for, as OpenSSH does: the key
 * types known_hosts holds for host:port, strongest first ("" if none).
 */
void wal_sftp_known_hosts_methods(const char *text, const char *host, int port, char *out, size_t cap)
{
	kh_types t = { 0 };
	known_hosts_each(text, host, port, kh_types_visit, &t);
	out[0] = '\0';
	for (size_t i = 0; i < sizeof(kh_methods) / sizeof(kh_methods[0]); i++) {
		if (!(t.seen & (1u << i)))
			continue;
		size_t used = strlen(out);
		snprintf(out + used, cap - used, "%s%s", used ? "," : "", kh_methods[i].methods);
	}
}

/* ---- connection -------------------------------------------------------- */

/* libssh2 I/O through the fault seam, so tests can break the link at will. */
static LIBSSH2_SEND_FUNC(seam_send)
{
	(void)abstract;
	int injected = wal_sys_fault(WAL_SYS_NET_SEND);
	if (injected)
		return -injected;
	ssize_t n = send(socket, buffer, length, flags | MSG_NOSIGNAL);
	return n < 0 ? -errno : n;
}

static LIBSSH2_RECV_FUNC(seam_recv)
{
	(void)abstract;
	int injected = wal_sys_fault(WAL_SYS_NET_RECV);
	if (injected)
		return -injected;
	ssize_t n = recv(socket, buffer, length, flags);
	return n < 0 ? -errno : n;
}

/* Copies a library's message lowercased, as walarchive's messages are. */
static const char *lower_copy(const char *text, char *out, size_t cap)
{
	snprintf(out, cap, "%s", text);
	for (char *p = out; *p; p++)
		if (*p >= 'A' && *p <= 'Z')
			*p = (char)(*p - 'A' + 'a');
	return out;
}

/* libssh2's last error message, lowercased. */
static const char *ssh_message(sftp_store *s, char *out, size_t cap)
{
	char *msg = NULL;
	if (s->session)
		libssh2_session_last_error(s->session, &msg, NULL, 0);
	return lower_copy(msg && *msg ? msg : "unknown libssh2 error", out, cap);
}

/* Tears the connection down; a broken one is not asked to say goodbye. */
static void sftp_disconnect(sftp_store *s, int broken)
{
	if (broken && s->sock >= 0)
		shutdown(s->sock, SHUT_RDWR);
	if (s->sftp)
		libssh2_sftp_shutdown(s->sftp);
	s->sftp = NULL;
	if (s->session) {
		if (!broken)
			libssh2_session_disconnect(s->session, "walarchive done");
		libssh2_session_free(s->session);
	}
	s->session = NULL;
	if (s->sock >= 0)
		close(s->sock);
	s->sock = -1;
}

/* TCP connect with a deadline (non-blocking connect and poll). */
static wal_err tcp_connect(sftp_store *s, wal_error *e)
{
	struct addrinfo hints = { .ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM };
	struct addrinfo *res = NULL;
	char port_text[16];
	snprintf(port_text, sizeof(port_text), "%d", s->port);
	int gai = getaddrinfo(s->host, port_text, &hints, &res);
	if (gai != 0) {
		char why[128];
		return wal_fail(e, gai == EAI_AGAIN ? WAL_ENET : WAL_ECONFIG, "%s: cannot resolve host %s: %s",
				s->where, s->host, lower_copy(gai_strerror(gai), why, sizeof(why)));
	}
	wal_err rc = WAL_ENET;
	int last_errno = ECONNREFUSED;
	for (struct addrinfo *ai = res; ai; ai = ai->ai_next) {
		int fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC | SOCK_NONBLOCK, ai->ai_protocol);
		if (fd < 0) {
			last_errno = errno;
			continue;
		}
		if (connect(fd, ai->ai_addr, ai->ai_addrlen) < 0 && errno != EINPROGRESS) {
			last_errno = errno;
			close(fd);
			continue;
		}
		struct pollfd pfd = { .fd = fd, .events = POLLOUT };
		int ready;
		do
			ready = poll(&pfd, 1, s->timeout * 1000);
		while (ready < 0 && errno == EINTR);
		if (ready == 0) {
			close(fd);
			freeaddrinfo(res);
			return wal_fail(e, WAL_ETIMEOUT, "%s: connect timed out after %d s", s->where, s->timeout);
		}
		int soerr = 0;
		socklen_t len = sizeof(soerr);
		if (ready < 0 || getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &len) < 0)
			soerr = errno;
		if (soerr) {
			last_errno = soerr;
			close(fd);
			continue;
		}
		int one = 1;
		setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
		s->sock = fd;
		rc = WAL_OK;
		break;
	}
	freeaddrinfo(res);
	if (rc != WAL_OK)
		return wal_fail_errno(e, last_errno == ETIMEDOUT ? WAL_ETIMEOUT : WAL_ENET, last_errno,
				      "%s: cannot connect", s->where);
	return WAL_OK;
}

/* Reads a whole small file into a NUL-terminated heap string. */
static char *slurp(const char *path, int *err)
{
	FILE *f = fopen(path, "re");
	if (!f) {
		*err = errno;
		return NULL;
	}
	size_t cap = 8192, len = 0;
	char *text = malloc(cap);
	while (text) {
		if (len + 4096 + 1 > cap) {
			char *bigger = realloc(text, cap *= 2);
			if (!bigger) {
				free(text);
				text = NULL;
				break;
			}
			text = bigger;
		}
		size_t n = fread(text + len, 1, cap - len - 1, f);
		len += n;
		if (n == 0)
			break;
	}
	*err = text ? (ferror(f) ? EIO : 0) : ENOMEM;
	fclose(f);
	if (text && *err) {
		free(text);
		return NULL;
	}
	if (text)
		text[len] = '\0';
	return text;
}

/* Verifies the server's host key against known_hosts: WAL_EHOSTKEY unless it matches. */
static wal_err check_host_key(sftp_store *s, const char *kh_text, int kh_errno, wal_error *e)
{
	size_t len = 0;
	int type = 0;
	const char *blob = libssh2_session_hostkey(s->session, &len, &type);
	if (!blob)
		return wal_fail(e, WAL_ENET, "%s: server sent no host key", s->where);
	char fp[80], key_type[64], name[300];
	wal_sftp_fingerprint((const unsigned char *)blob, len, fp, sizeof(fp));
	blob_type((const unsigned char *)blob, len, key_type, sizeof(key_type));
	known_hosts_name(s->host, s->port, name, sizeof(name));
	if (!kh_text)
		return wal_fail_errno(e, WAL_EHOSTKEY, kh_errno, "%s: cannot verify host key %s %s: known_hosts file %s",
				      s->where, key_type, fp, s->known_hosts);
	int line = 0;
	switch (wal_sftp_known_hosts_check(kh_text, s->host, s->port, (const unsigned char *)blob, len, &line)) {
	case WAL_KH_MATCH:
		return WAL_OK;
	case WAL_KH_REVOKED:
		return wal_fail(e, WAL_EHOSTKEY, "%s: host key %s %s is revoked in %s line %d",
				s->where, key_type, fp, s->known_hosts, line);
	case WAL_KH_MISMATCH:
		return wal_fail(e, WAL_EHOSTKEY,
				"%s: host key changed: server offered %s %s, which does not match %s line %d; "
				"possible man-in-the-middle attack, or the server was reinstalled",
				s->where, key_type, fp, s->known_hosts, line);
	default:
		return wal_fail(e, WAL_EHOSTKEY,
				"%s: unknown host key: %s has no %s key for %s; server offered %s %s; "
				"check the fingerprint and add the key (ssh-keyscan)",
				s->where, s->known_hosts, key_type, name, key_type, fp);
	}
}

/* Reads the first line of the passphrase file. */
static wal_err read_passphrase(sftp_store *s, char **out, wal_error *e)
{
	*out = NULL;
	if (!s->passphrase_file)
		return WAL_OK;
	int err = 0;
	char *text = slurp(s->passphrase_file, &err);
	if (!text)
		return wal_fail_errno(e, WAL_ECONFIG, err, "ssh_key_passphrase_file %s", s->passphrase_file);
	text[strcspn(text, "\r\n")] = '\0';
	*out = text;
	return WAL_OK;
}

static void append(char *buf, size_t cap, const char *text)
{
	size_t used = strlen(buf);
	snprintf(buf + used, cap - used, "%s%s", used ? ", " : "", text);
}

/* Whether a libssh2 error is the link's fault (worth a new connection). */
static int ssh_transient(int rc)
{
	switch (rc) {
	case LIBSSH2_ERROR_SOCKET_NONE:
	case LIBSSH2_ERROR_BANNER_RECV:
	case LIBSSH2_ERROR_BANNER_SEND:
	case LIBSSH2_ERROR_SOCKET_SEND:
	case LIBSSH2_ERROR_SOCKET_DISCONNECT:
	case LIBSSH2_ERROR_SOCKET_TIMEOUT:
	case LIBSSH2_ERROR_TIMEOUT:
	case LIBSSH2_ERROR_SOCKET_RECV:
	case LIBSSH2_ERROR_CHANNEL_CLOSED:
	case LIBSSH2_ERROR_CHANNEL_EOF_SENT:
	case LIBSSH2_ERROR_CHANNEL_FAILURE:
	case LIBSSH2_ERROR_KEX_FAILURE:
	case LIBSSH2_ERROR_DECRYPT:
	case LIBSSH2_ERROR_BAD_SOCKET:
	case LIBSSH2_ERROR_EAGAIN:
		return 1;
	default:
		return 0;
	}
}

/* A libssh2 failure that is not an SFTP status (link, timeout, memory),
 * during what on remote ("" for the session itself). */
static wal_err ssh_fail_at(sftp_store *s, int rc, const char *remote, const char *what, wal_error *e)
{
	char msg[256];
	ssh_message(s, msg, sizeof(msg));
	if (rc == LIBSSH2_ERROR_TIMEOUT || rc == LIBSSH2_ERROR_SOCKET_TIMEOUT)
		return wal_fail(e, WAL_ETIMEOUT, "%s%s: %s: timed out after %d s", s->where, remote, what, s->timeout);
	if (rc == LIBSSH2_ERROR_ALLOC)
		return wal_fail(e, WAL_ENOMEM, "%s%s: %s: out of memory", s->where, remote, what);
	if (ssh_transient(rc))
		return wal_fail(e, WAL_ENET, "%s%s: %s: connection lost (%s)", s->where, remote, what, msg);
	return wal_fail(e, WAL_ENET, "%s%s: %s: %s", s->where, remote, what, msg);
}

static wal_err ssh_fail(sftp_store *s, int rc, const char *what, wal_error *e)
{
	return ssh_fail_at(s, rc, "", what, e);
}

/* Tries the agent's identities; returns 1 if one was accepted. */
static int auth_agent(sftp_store *s, char *tried, size_t cap, int *net_rc)
{
	LIBSSH2_AGENT *agent = libssh2_agent_init(s->session);
	int ok = 0, count = 0;
	if (!agent) {
		append(tried, cap, "ssh-agent (cannot start)");
		return 0;
	}
	if (libssh2_agent_connect(agent) != 0) {
		append(tried, cap, getenv("SSH_AUTH_SOCK") ? "ssh-agent (cannot connect to SSH_AUTH_SOCK)"
			: "ssh-agent (SSH_AUTH_SOCK is not set)");
		libssh2_agent_free(agent);
		return 0;
	}
	if (libssh2_agent_list_identities(agent) == 0) {
		struct libssh2_agent_publickey *id = NULL, *prev = NULL;
		while (!ok && libssh2_agent_get_identity(agent, &id, prev) == 0) {
			count++;
			int rc = libssh2_agent_userauth(agent, s->user, id);
			if (rc == 0)
				ok = 1;
			else if (ssh_transient(rc)) {
				*net_rc = rc;
				break;
			}
			prev = id;
		}
	}
	char note[64];
	snprintf(note, sizeof(note), "ssh-agent (%d key%s)", count, count == 1 ? "" : "s");
	append(tried, cap, note);
	libssh2_agent_disconnect(agent);
	libssh2_agent_free(agent);
	return ok;
}

/* Tries one private key file; 1 if accepted, 0 if refused, -1 (and e) if unusable. */
static int auth_key_file(sftp_store *s, const char *path, const char *passphrase,
			 char *tried, size_t cap, int *net_rc, wal_error *e)
{
	int rc = libssh2_userauth_publickey_fromfile_ex(s->session, s->user, (unsigned int)strlen(s->user),
							NULL, path, passphrase);
	char note[600];
	if (rc == 0)
		return 1;
	if (ssh_transient(rc)) {
		*net_rc = rc;
		return 0;
	}
	if (rc == LIBSSH2_ERROR_FILE) {
		char msg[256];
		ssh_message(s, msg, sizeof(msg));
		wal_fail(e, WAL_EAUTH, "%s: cannot use private key %s: %s (%s)", s->where, path,
			 passphrase ? "wrong passphrase or unsupported key format"
			 : "unsupported key format, or it needs a passphrase (ssh_key_passphrase_file)", msg);
		return -1;
	}
	snprintf(note, sizeof(note), "publickey %s", path);
	append(tried, cap, note);
	return 0;
}

/* Authenticates as s->user: agent (if asked), then the key file or the default identities. */
static wal_err authenticate(sftp_store *s, wal_error *e)
{
	char tried[1024] = "";
	int net_rc = 0;
	char *methods = libssh2_userauth_list(s->session, s->user, (unsigned int)strlen(s->user));
	if (!methods) {
		if (libssh2_userauth_authenticated(s->session))
			return WAL_OK;
		int rc = libssh2_session_last_errno(s->session);
		return ssh_fail(s, rc, "authentication", e);
	}
	char server_methods[256];
	snprintf(server_methods, sizeof(server_methods), "%s", methods);
	if (!strstr(server_methods, "publickey"))
		return wal_fail(e, WAL_EAUTH, "%s: server does not accept public key authentication for user %s "
				"(it accepts: %s)", s->where, s->user, server_methods);

	if (s->use_agent && auth_agent(s, tried, sizeof(tried), &net_rc))
		return WAL_OK;
	if (net_rc)
		return ssh_fail(s, net_rc, "authentication", e);

	char *passphrase = NULL;
	wal_err err = read_passphrase(s, &passphrase, e);
	if (err != WAL_OK)
		return err;
	int result = 0;
	if (s->key_file) {
		result = auth_key_file(s, s->key_file, passphrase, tried, sizeof(tried), &net_rc, e);
	} else if (!s->use_agent) {
		/* as ssh does without -i: the user's default identities */
		static const char *const defaults[] = { "id_ed25519", "id_ecdsa", "id_rsa" };
		struct passwd *pw = getpwuid(geteuid());
		for (size_t i = 0; pw && result == 0 && !net_rc && i < sizeof(defaults) / sizeof(defaults[0]); i++) {
			char path[1024];
			snprintf(path, sizeof(path), "%s/.ssh/%s", pw->pw_dir, defaults[i]);
			if (access(path, R_OK) == 0)
				result = auth_key_file(s, path, passphrase, tried, sizeof(tried), &net_rc, e);
		}
		if (!tried[0] && result == 0)
			append(tried, sizeof(tried), "no key: set ssh_key or ssh_agent");
	}
	if (passphrase) {
		explicit_bzero(passphrase, strlen(passphrase));
		free(passphrase);
	}
	if (result == 1)
		return WAL_OK;
	if (result < 0)
		return e->code;
	if (net_rc)
		return ssh_fail(s, net_rc, "authentication", e);
	return wal_fail(e, WAL_EAUTH, "%s: authentication refused for user %s (tried: %s; server accepts: %s)",
			s->where, s->user, tried, server_methods);
}

/* Connects, verifies the host, authenticates and starts SFTP. */
static wal_err sftp_connect(sftp_store *s, wal_error *e)
{
	int kh_errno = 0;
	char *kh_text = slurp(s->known_hosts, &kh_errno);
	wal_err rc = tcp_connect(s, e);
	if (rc != WAL_OK)
		goto out;
	s->session = libssh2_session_init_ex(NULL, NULL, NULL, s);
	if (!s->session) {
		rc = wal_fail(e, WAL_ENOMEM, "%s: cannot create ssh session", s->where);
		goto out;
	}
	libssh2_session_callback_set(s->session, LIBSSH2_CALLBACK_SEND, (void *)seam_send);
	libssh2_session_callback_set(s->session, LIBSSH2_CALLBACK_RECV, (void *)seam_recv);
	libssh2_session_set_blocking(s->session, 1);
	libssh2_session_set_timeout(s->session, (long)s->timeout * 1000);
	if (kh_text) {
		char methods[256];
		wal_sftp_known_hosts_methods(kh_text, s->host, s->port, methods, sizeof(methods));
		if (methods[0])
			libssh2_session_method_pref(s->session, LIBSSH2_METHOD_HOSTKEY, methods);
	}
	int ssh_rc = libssh2_session_handshake(s->session, s->sock);
	if (ssh_rc) {
		rc = ssh_fail(s, ssh_rc, "ssh handshake", e);
		goto out;
	}
	rc = check_host_key(s, kh_text, kh_errno, e);
	if (rc != WAL_OK)
		goto out;
	rc = authenticate(s, e);
	if (rc != WAL_OK)
		goto out;
	s->sftp = libssh2_sftp_init(s->session);
	if (!s->sftp) {
		int err = libssh2_session_last_errno(s->session);
		rc = ssh_transient(err) ? ssh_fail(s, err, "starting sftp", e)
			: wal_fail(e, WAL_EUNSUPPORTED, "%s: the server offers no sftp subsystem", s->where);
		goto out;
	}
out:
	free(kh_text);
	if (rc != WAL_OK)
		sftp_disconnect(s, 1);
	return rc;
}

/* ---- operations -------------------------------------------------------- */

/* The remote path of a store path ("" is the root). */
static void remote_path(sftp_store *s, const char *path, char *out, size_t cap)
{
	if (!*path)
		snprintf(out, cap, "%s", s->root);
	else
		snprintf(out, cap, "%s%s%s", s->root, strcmp(s->root, "/") ? "/" : "", path);
}

/* The SFTP status of a failed call (read it before the next call). */
static unsigned long sftp_status(sftp_store *s, int rc)
{
	return rc == LIBSSH2_ERROR_SFTP_PROTOCOL ? libssh2_sftp_last_error(s->sftp) : 0;
}

/* Maps a failed SFTP call on remote, with the status it got, to a wal_err. */
static wal_err op_fail_status(sftp_store *s, int rc, unsigned long status, const char *what,
			      const char *remote, wal_error *e)
{
	if (rc != LIBSSH2_ERROR_SFTP_PROTOCOL)
		return ssh_fail_at(s, rc, remote, what, e);
	switch (status) {
	case LIBSSH2_FX_NO_SUCH_FILE:
	case LIBSSH2_FX_NO_SUCH_PATH:
		return wal_fail(e, WAL_ENOENT, "%s%s: %s: no such file or directory", s->where, remote, what);
	case LIBSSH2_FX_PERMISSION_DENIED:
	case LIBSSH2_FX_WRITE_PROTECT:
		return wal_fail(e, WAL_EPERM, "%s%s: %s: permission denied", s->where, remote, what);
	case LIBSSH2_FX_NO_SPACE_ON_FILESYSTEM:
	case LIBSSH2_FX_QUOTA_EXCEEDED:
		return wal_fail(e, WAL_ENOSPC, "%s%s: %s: no space left on the server", s->where, remote, what);
	case LIBSSH2_FX_FILE_ALREADY_EXISTS:
		return wal_fail(e, WAL_EEXIST, "%s%s: %s: already exists", s->where, remote, what);
	case LIBSSH2_FX_OP_UNSUPPORTED:
		return wal_fail(e, WAL_EUNSUPPORTED, "%s%s: %s: not supported by the server", s->where, remote, what);
	case LIBSSH2_FX_CONNECTION_LOST:
	case LIBSSH2_FX_NO_CONNECTION:
		return wal_fail(e, WAL_ENET, "%s%s: %s: connection lost", s->where, remote, what);
	default:
		return wal_fail(e, WAL_EIO, "%s%s: %s: server reports failure (sftp status %lu)",
				s->where, remote, what, status);
	}
}

/* Closes h; after a failure of the link (rc transient) the socket is shut
 * down first, so that libssh2 frees the handle at once instead of waiting
 * for the timeout again. */
static void close_handle(sftp_store *s, LIBSSH2_SFTP_HANDLE *h, wal_err rc)
{
	if (!h)
		return;
	if (wal_err_transient(rc) && s->sock >= 0)
		shutdown(s->sock, SHUT_RDWR);
	libssh2_sftp_close_handle(h);
}

/* Maps the SFTP call that just failed on remote to a wal_err. */
static wal_err op_fail(sftp_store *s, int rc, const char *what, const char *remote, wal_error *e)
{
	return op_fail_status(s, rc, sftp_status(s, rc), what, remote, e);
}

/* Stat of a remote path: 1 exists (attrs filled), 0 absent, <0 libssh2 error. */
static int remote_stat(sftp_store *s, const char *remote, LIBSSH2_SFTP_ATTRIBUTES *attrs)
{
	int rc = libssh2_sftp_stat_ex(s->sftp, remote, (unsigned int)strlen(remote), LIBSSH2_SFTP_STAT, attrs);
	if (rc == 0)
		return 1;
	if (rc == LIBSSH2_ERROR_SFTP_PROTOCOL) {
		unsigned long st = libssh2_sftp_last_error(s->sftp);
		if (st == LIBSSH2_FX_NO_SUCH_FILE || st == LIBSSH2_FX_NO_SUCH_PATH)
			return 0;
	}
	return rc;
}

/* fsync@openssh.com on the directory holding remote_file, so that a new
 * entry (rename, mkdir) survives a server crash.  OpenSSH opens a directory
 * as a file and fsyncs it; a server that cannot is not asked again. */
static void fsync_remote_dir(sftp_store *s, const char *remote_file)
{
	if (s->dir_fsync_broken)
		return;
	char dir[2048];
	snprintf(dir, sizeof(dir), "%s", remote_file);
	char *slash = strrchr(dir, '/');
	if (!slash)
		return;
	if (slash == dir)
		slash[1] = '\0';
	else
		*slash = '\0';
	LIBSSH2_SFTP_HANDLE *h = libssh2_sftp_open_ex(s->sftp, dir, (unsigned int)strlen(dir),
						      LIBSSH2_FXF_READ, 0, LIBSSH2_SFTP_OPENFILE);
	if (!h || libssh2_sftp_fsync(h) != 0)
		s->dir_fsync_broken = 1;
	if (h)
		libssh2_sftp_close_handle(h);
}

/* Creates the directories of store path dir that are missing, top down. */
static wal_err remote_mkdir_p(sftp_store *s, const char *dir, wal_error *e)
{
	char rel[1100], remote[2048];
	int dir_mode = s->file_mode | ((s->file_mode & 0444) >> 2);
	snprintf(rel, sizeof(rel), "%s", dir);
	for (char *p = rel;; p++) {
		if (*p != '/' && *p != '\0')
			continue;
		char saved = *p;
		*p = '\0';
		remote_path(s, rel, remote, sizeof(remote));
		int rc = libssh2_sftp_mkdir_ex(s->sftp, remote, (unsigned int)strlen(remote), dir_mode);
		if (rc == 0) {
			fsync_remote_dir(s, remote);   /* the new entry in its parent */
		} else {
			/* usually it exists already; anything else, report mkdir's cause */
			unsigned long status = sftp_status(s, rc);
			LIBSSH2_SFTP_ATTRIBUTES attrs;
			int have = rc == LIBSSH2_ERROR_SFTP_PROTOCOL ? remote_stat(s, remote, &attrs) : rc;
			if (have < 0 && have != LIBSSH2_ERROR_SFTP_PROTOCOL)
				return op_fail(s, have, "mkdir", remote, e);
			if (have != 1 || !LIBSSH2_SFTP_S_ISDIR(attrs.permissions))
				return op_fail_status(s, rc, status, "mkdir", remote, e);
		}
		*p = saved;
		if (!saved)
			break;
	}
	return WAL_OK;
}

typedef struct put_args {
	const char *path;
	wal_source *src;
	char stale_tmp[2048];  /* left by an attempt that lost the link; removed on the next */
} put_args;

/* Removes a temporary upload after a failure, if the link still works. */
static void remove_tmp(sftp_store *s, const char *remote_tmp)
{
	if (s->sftp)
		libssh2_sftp_unlink_ex(s->sftp, remote_tmp, (unsigned int)strlen(remote_tmp));
}

static wal_err put_once(sftp_store *s, void *arg, int attempt, wal_error *e)
{
	put_args *a = arg;
	char tmp_rel[1100], remote[2048], remote_tmp[2048];
	LIBSSH2_SFTP_HANDLE *h = NULL;
	int created = 0;
	wal_err rc = WAL_OK;
	(void)attempt;

	wal_store_tmp_name(a->path, tmp_rel, sizeof(tmp_rel));
	remote_path(s, a->path, remote, sizeof(remote));
	remote_path(s, tmp_rel, remote_tmp, sizeof(remote_tmp));
	if (a->stale_tmp[0]) {
		remove_tmp(s, a->stale_tmp);
		a->stale_tmp[0] = '\0';
	}
	rc = a->src->rewind(a->src, e);
	if (rc != WAL_OK)
		return rc;

	unsigned long flags = LIBSSH2_FXF_WRITE | LIBSSH2_FXF_CREAT | LIBSSH2_FXF_EXCL;
	h = libssh2_sftp_open_ex(s->sftp, remote_tmp, (unsigned int)strlen(remote_tmp), flags,
				 s->file_mode, LIBSSH2_SFTP_OPENFILE);
	if (!h && libssh2_session_last_errno(s->session) == LIBSSH2_ERROR_SFTP_PROTOCOL &&
	    libssh2_sftp_last_error(s->sftp) == LIBSSH2_FX_NO_SUCH_FILE && strchr(a->path, '/')) {
		char parent[1100];
		snprintf(parent, sizeof(parent), "%s", a->path);
		*strrchr(parent, '/') = '\0';
		rc = remote_mkdir_p(s, parent, e);
		if (rc != WAL_OK)
			return rc;
		h = libssh2_sftp_open_ex(s->sftp, remote_tmp, (unsigned int)strlen(remote_tmp), flags,
					 s->file_mode, LIBSSH2_SFTP_OPENFILE);
	}
	if (!h)
		return op_fail(s, libssh2_session_last_errno(s->session), "create", remote_tmp, e);
	created = 1;

	/* Keep the window [start, end) of the buffer full: libssh2 pipelines
	 * all of it, returns as soon as some is acknowledged, and wants the
	 * unacknowledged rest passed again at the front.  The window moves
	 * back to the buffer's start only when half of it has been used, so
	 * bytes are not copied once per acknowledgement. */
	size_t start = 0, end = 0;
	int eof = 0;
	while (!eof || end > start) {
		if (start > SFTP_BUF_SIZE / 2) {
			memmove(s->buf, s->buf + start, end - start);
			end -= start;
			start = 0;
		}
		while (!eof && end < SFTP_BUF_SIZE) {
			size_t got = 0;
			rc = a->src->read(a->src, s->buf + end, SFTP_BUF_SIZE - end, &got, e);
			if (rc != WAL_OK)
				goto out;
			if (got == 0)
				eof = 1;
			end += got;
		}
		if (end == start)
			break;
		ssize_t sent = libssh2_sftp_write(h, (const char *)s->buf + start, end - start);
		if (sent < 0) {
			rc = op_fail(s, (int)sent, "write", remote_tmp, e);
			goto out;
		}
		start += (size_t)sent;
	}

	int frc = libssh2_sftp_fsync(h);
	if (frc != 0) {
		unsigned long st = frc == LIBSSH2_ERROR_SFTP_PROTOCOL ? libssh2_sftp_last_error(s->sftp) : 0;
		/* OpenSSH answers "unsupported" when it lacks the extension and
		 * "permission denied" when it is configured to refuse it */
		if (st == LIBSSH2_FX_OP_UNSUPPORTED || st == LIBSSH2_FX_PERMISSION_DENIED) {
			if (s->require_fsync) {
				rc = wal_fail(e, WAL_EUNSUPPORTED, "%s%s: the server does not allow fsync@openssh.com, "
					      "so the upload would not be durable; set sftp_require_fsync = off "
					      "to accept that risk", s->where, remote);
				goto out;
			}
		} else {
			rc = op_fail(s, frc, "fsync", remote_tmp, e);
			goto out;
		}
	}
	int crc = libssh2_sftp_close_handle(h);
	h = NULL;
	if (crc != 0) {
		rc = op_fail(s, crc, "close", remote_tmp, e);
		goto out;
	}

	/* plain SFTP rename: OpenSSH link()s and refuses an existing target */
	int rrc = libssh2_sftp_rename_ex(s->sftp, remote_tmp, (unsigned int)strlen(remote_tmp),
					 remote, (unsigned int)strlen(remote), 0);
	if (rrc != 0) {
		unsigned long status = sftp_status(s, rrc);
		LIBSSH2_SFTP_ATTRIBUTES attrs;
		int have = rrc == LIBSSH2_ERROR_SFTP_PROTOCOL ? remote_stat(s, remote, &attrs) : 0;
		if (have == 1)
			rc = wal_fail(e, WAL_EEXIST, "%s%s: already exists", s->where, remote);
		else if (have < 0)
			/* the link broke while we asked: a retry asks again */
			rc = op_fail(s, have, "stat", remote, e);
		else
			rc = op_fail_status(s, rrc, status, "rename", remote_tmp, e);
		goto out;
	}
	created = 0;
	fsync_remote_dir(s, remote);
out:
	close_handle(s, h, rc);
	if (rc != WAL_OK && created) {
		if (wal_err_transient(rc))
			snprintf(a->stale_tmp, sizeof(a->stale_tmp), "%s", remote_tmp);
		else
			remove_tmp(s, remote_tmp);
	}
	return rc;
}

typedef struct get_args {
	const char *path;
	wal_sink *sink;
	int wrote;
} get_args;

static wal_err get_once(sftp_store *s, void *arg, int attempt, wal_error *e)
{
	get_args *a = arg;
	char remote[2048];
	wal_err rc = WAL_OK;
	(void)attempt;
	remote_path(s, a->path, remote, sizeof(remote));
	if (a->wrote) {
		rc = a->sink->reset(a->sink, e);
		if (rc != WAL_OK)
			return rc;
		a->wrote = 0;
	}
	LIBSSH2_SFTP_HANDLE *h = libssh2_sftp_open_ex(s->sftp, remote, (unsigned int)strlen(remote),
						      LIBSSH2_FXF_READ, 0, LIBSSH2_SFTP_OPENFILE);
	if (!h)
		return op_fail(s, libssh2_session_last_errno(s->session), "open", remote, e);
	for (;;) {
		ssize_t n = libssh2_sftp_read(h, (char *)s->buf, SFTP_READ_SIZE);
		if (n < 0) {
			rc = op_fail(s, (int)n, "read", remote, e);
			break;
		}
		if (n == 0)
			break;
		a->wrote = 1;
		rc = a->sink->write(a->sink, s->buf, (size_t)n, e);
		if (rc != WAL_OK)
			break;
	}
	close_handle(s, h, rc);
	return rc;
}

static wal_err stat_once(sftp_store *s, void *arg, int attempt, wal_error *e)
{
	struct { const char *path; wal_stat *st; } *a = arg;
	char remote[2048];
	LIBSSH2_SFTP_ATTRIBUTES attrs;
	(void)attempt;
	remote_path(s, a->path, remote, sizeof(remote));
	int rc = libssh2_sftp_stat_ex(s->sftp, remote, (unsigned int)strlen(remote), LIBSSH2_SFTP_STAT, &attrs);
	if (rc != 0)
		return op_fail(s, rc, "stat", remote, e);
	a->st->size = (attrs.flags & LIBSSH2_SFTP_ATTR_SIZE) ? (int64_t)attrs.filesize : -1;
	a->st->mtime = (attrs.flags & LIBSSH2_SFTP_ATTR_ACMODTIME) ? (time_t)attrs.mtime : 0;
	a->st->is_dir = (attrs.flags & LIBSSH2_SFTP_ATTR_PERMISSIONS) && LIBSSH2_SFTP_S_ISDIR(attrs.permissions);
	return WAL_OK;
}

typedef struct list_entry {
	char *name;
	wal_stat st;
} list_entry;

typedef struct list_args {
	const char *dir;
	list_entry *entries;
	size_t count;
	size_t cap;
} list_args;

static void list_clear(list_args *a)
{
	for (size_t i = 0; i < a->count; i++)
		free(a->entries[i].name);
	a->count = 0;
}

/* Reads the whole directory first: a listing cut by a lost link is retried
 * from scratch, and the callback may use the store while it runs. */
static wal_err list_once(sftp_store *s, void *arg, int attempt, wal_error *e)
{
	list_args *a = arg;
	char remote[2048], name[1024];
	wal_err rc = WAL_OK;
	(void)attempt;
	list_clear(a);
	remote_path(s, a->dir, remote, sizeof(remote));
	LIBSSH2_SFTP_HANDLE *h = libssh2_sftp_open_ex(s->sftp, remote, (unsigned int)strlen(remote), 0, 0,
						      LIBSSH2_SFTP_OPENDIR);
	if (!h)
		return op_fail(s, libssh2_session_last_errno(s->session), "list", remote, e);
	for (;;) {
		LIBSSH2_SFTP_ATTRIBUTES attrs;
		int n = libssh2_sftp_readdir_ex(h, name, sizeof(name) - 1, NULL, 0, &attrs);
		if (n < 0) {
			rc = op_fail(s, n, "list", remote, e);
			break;
		}
		if (n == 0)
			break;
		name[n] = '\0';
		if (!strcmp(name, ".") || !strcmp(name, ".."))
			continue;
		if (a->count == a->cap) {
			size_t cap = a->cap ? a->cap * 2 : 64;
			list_entry *bigger = realloc(a->entries, cap * sizeof(*bigger));
			if (!bigger) {
				rc = wal_fail(e, WAL_ENOMEM, "%s%s: list: out of memory", s->where, remote);
				break;
			}
			a->entries = bigger;
			a->cap = cap;
		}
		list_entry *ent = &a->entries[a->count];
		ent->name = strdup(name);
		if (!ent->name) {
			rc = wal_fail(e, WAL_ENOMEM, "%s%s: list: out of memory", s->where, remote);
			break;
		}
		ent->st.size = (attrs.flags & LIBSSH2_SFTP_ATTR_SIZE) ? (int64_t)attrs.filesize : -1;
		ent->st.mtime = (attrs.flags & LIBSSH2_SFTP_ATTR_ACMODTIME) ? (time_t)attrs.mtime : 0;
		ent->st.is_dir = (attrs.flags & LIBSSH2_SFTP_ATTR_PERMISSIONS) &&
			LIBSSH2_SFTP_S_ISDIR(attrs.permissions);
		a->count++;
	}
	close_handle(s, h, rc);
	return rc;
}

static wal_err remove_once(sftp_store *s, void *arg, int attempt, wal_error *e)
{
	const char *path = arg;
	char remote[2048];
	LIBSSH2_SFTP_ATTRIBUTES attrs;
	remote_path(s, path, remote, sizeof(remote));
	int rc = libssh2_sftp_stat_ex(s->sftp, remote, (unsigned int)strlen(remote), LIBSSH2_SFTP_LSTAT, &attrs);
	if (rc == 0) {
		if ((attrs.flags & LIBSSH2_SFTP_ATTR_PERMISSIONS) && LIBSSH2_SFTP_S_ISDIR(attrs.permissions))
			rc = libssh2_sftp_rmdir_ex(s->sftp, remote, (unsigned int)strlen(remote));
		else
			rc = libssh2_sftp_unlink_ex(s->sftp, remote, (unsigned int)strlen(remote));
	}
	if (rc == 0)
		return WAL_OK;
	wal_err err = op_fail(s, rc, "remove", remote, e);
	/* a retried remove whose first try went through finds nothing */
	if (err == WAL_ENOENT && attempt > 0) {
		wal_error_clear(e);
		return WAL_OK;
	}
	return err;
}

/* Runs op, reconnecting and retrying (with backoff) after transient failures. */
typedef wal_err (*op_fn)(sftp_store *s, void *arg, int attempt, wal_error *e);
static wal_err with_retries(sftp_store *s, op_fn op, void *arg, wal_error *e)
{
	for (int attempt = 0;; attempt++) {
		wal_err rc = WAL_OK;
		if (!s->sftp)
			rc = sftp_connect(s, e);
		if (rc == WAL_OK)
			rc = op(s, arg, attempt, e);
		if (rc == WAL_OK || !wal_err_transient(rc))
			return rc;
		/* the link is suspect: the next operation starts a new one */
		sftp_disconnect(s, 1);
		if (attempt >= s->retries)
			return rc;
		wal_retry_backoff(attempt + 1);
	}
}

static wal_err check_path(sftp_store *s, const char *path, wal_error *e)
{
	(void)s;
	return wal_store_path_valid(path, e);
}

static wal_err sftp_put(wal_store *base, const char *path, wal_source *src, wal_error *e)
{
	sftp_store *s = (sftp_store *)base;
	wal_err rc = check_path(s, path, e);
	if (rc != WAL_OK)
		return rc;
	put_args a = { .path = path, .src = src };
	return with_retries(s, put_once, &a, e);
}

static wal_err sftp_get(wal_store *base, const char *path, wal_sink *sink, wal_error *e)
{
	sftp_store *s = (sftp_store *)base;
	wal_err rc = check_path(s, path, e);
	if (rc != WAL_OK)
		return rc;
	get_args a = { .path = path, .sink = sink };
	return with_retries(s, get_once, &a, e);
}

static wal_err sftp_stat(wal_store *base, const char *path, wal_stat *st, wal_error *e)
{
	sftp_store *s = (sftp_store *)base;
	wal_err rc = check_path(s, path, e);
	if (rc != WAL_OK)
		return rc;
	struct { const char *path; wal_stat *st; } a = { path, st };
	return with_retries(s, stat_once, &a, e);
}

static wal_err sftp_list(wal_store *base, const char *dir, wal_list_fn fn, void *arg, wal_error *e)
{
	sftp_store *s = (sftp_store *)base;
	wal_err rc = *dir ? check_path(s, dir, e) : WAL_OK;
	if (rc != WAL_OK)
		return rc;
	list_args a = { .dir = dir };
	rc = with_retries(s, list_once, &a, e);
	for (size_t i = 0; rc == WAL_OK && i < a.count; i++)
		rc = fn(arg, a.entries[i].name, &a.entries[i].st, e);
	list_clear(&a);
	free(a.entries);
	return rc;
}

static wal_err sftp_remove(wal_store *base, const char *path, wal_error *e)
{
	sftp_store *s = (sftp_store *)base;
	wal_err rc = check_path(s, path, e);
	if (rc != WAL_OK)
		return rc;
	return with_retries(s, remove_once, (void *)path, e);
}

/* fsync@openssh.com on an existing object, then on each directory up to the root. */
static wal_err sync_once(sftp_store *s, void *arg, int attempt, wal_error *e)
{
	(void)attempt;
	const char *path = arg;
	char remote[2048];
	remote_path(s, path, remote, sizeof(remote));
	LIBSSH2_SFTP_HANDLE *h = libssh2_sftp_open_ex(s->sftp, remote, (unsigned int)strlen(remote),
						      LIBSSH2_FXF_READ, 0, LIBSSH2_SFTP_OPENFILE);
	if (!h)
		return op_fail(s, libssh2_session_last_errno(s->session), "open", remote, e);
	int rc = libssh2_sftp_fsync(h);
	close_handle(s, h, WAL_OK);
	if (rc != 0 && s->require_fsync)
		return op_fail(s, rc, "fsync", remote, e);
	/* each directory on the way holds an entry an earlier run may not have synced */
	char dir[2048];
	snprintf(dir, sizeof(dir), "%s", path);
	for (char *slash = strrchr(dir, '/'); slash; slash = strrchr(dir, '/')) {
		remote_path(s, dir, remote, sizeof(remote));
		fsync_remote_dir(s, remote);
		*slash = '\0';
	}
	remote_path(s, dir, remote, sizeof(remote));
	fsync_remote_dir(s, remote);
	return WAL_OK;
}

static wal_err sftp_sync(wal_store *base, const char *path, wal_error *e)
{
	sftp_store *s = (sftp_store *)base;
	wal_err rc = check_path(s, path, e);
	if (rc != WAL_OK)
		return rc;
	return with_retries(s, sync_once, (void *)path, e);
}

static void sftp_close(wal_store *base)
{
	sftp_store *s = (sftp_store *)base;
	if (!s)
		return;
	sftp_disconnect(s, 0);
	free(s->user);
	free(s->host);
	free(s->root);
	free(s->key_file);
	free(s->passphrase_file);
	free(s->known_hosts);
	free(s->buf);
	free(s);
}

/* A setting's path with a leading "~/" made absolute (the running user's home). */
static char *expand_home(const char *path)
{
	if (!path || !*path)
		return NULL;
	if (path[0] != '~' || (path[1] != '/' && path[1] != '\0'))
		return strdup(path);
	struct passwd *pw = getpwuid(geteuid());
	const char *home = pw ? pw->pw_dir : getenv("HOME");
	char *out = NULL;
	if (asprintf(&out, "%s%s", home ? home : "", path + 1) < 0)
		return NULL;
	return out;
}

/* The root must exist and be a directory; it is never created here. */
static wal_err check_root(sftp_store *s, void *arg, int attempt, wal_error *e)
{
	LIBSSH2_SFTP_ATTRIBUTES attrs;
	(void)arg;
	(void)attempt;
	int rc = libssh2_sftp_stat_ex(s->sftp, s->root, (unsigned int)strlen(s->root), LIBSSH2_SFTP_STAT, &attrs);
	if (rc != 0) {
		wal_err err = op_fail(s, rc, "archive root", s->root, e);
		if (err == WAL_ENOENT)
			return wal_fail(e, WAL_ENOENT, "%s%s: archive root does not exist on the server", s->where, s->root);
		return err;
	}
	if (!LIBSSH2_SFTP_S_ISDIR(attrs.permissions))
		return wal_fail(e, WAL_ECONFIG, "%s%s: archive root is not a directory", s->where, s->root);
	return WAL_OK;
}

static wal_err sftp_open(wal_store **out, const wal_url *url, const wal_config *cfg, wal_error *e)
{
	*out = NULL;
	if (!url->host || !*url->host) {
		wal_fail(e, WAL_ECONFIG, "archive: sftp url has no host");
		return wal_config_blame(cfg, "archive", e);
	}
	sftp_store *s = calloc(1, sizeof(*s));
	if (!s)
		return wal_fail(e, WAL_ENOMEM, "sftp store: out of memory");
	s->base.ops = &wal_store_sftp_ops;
	s->sock = -1;
	wal_err rc = WAL_OK;
	if (url->user && *url->user) {
		s->user = strdup(url->user);
	} else {
		struct passwd *pw = getpwuid(geteuid());
		s->user = strdup(pw ? pw->pw_name : "root");
	}
	s->host = strdup(url->host);
	s->port = url->port > 0 ? url->port : 22;
	s->root = strdup(url->path && *url->path ? url->path : "/");
	s->key_file = expand_home(cfg->ssh_key);
	s->passphrase_file = expand_home(cfg->ssh_key_passphrase_file);
	s->known_hosts = expand_home(cfg->ssh_known_hosts && *cfg->ssh_known_hosts
				     ? cfg->ssh_known_hosts : "~/.ssh/known_hosts");
	s->use_agent = cfg->ssh_agent;
	s->require_fsync = cfg->sftp_require_fsync;
	s->file_mode = cfg->file_mode > 0 ? cfg->file_mode : 0600;
	s->timeout = cfg->timeout > 0 ? cfg->timeout : 30;
	s->retries = cfg->retries >= 0 ? cfg->retries : 0;
	s->buf = malloc(SFTP_BUF_SIZE > SFTP_READ_SIZE ? SFTP_BUF_SIZE : SFTP_READ_SIZE);
	if (!s->user || !s->host || !s->root || !s->known_hosts || !s->buf ||
	    (cfg->ssh_key && *cfg->ssh_key && !s->key_file) ||
	    (cfg->ssh_key_passphrase_file && *cfg->ssh_key_passphrase_file && !s->passphrase_file)) {
		rc = wal_fail(e, WAL_ENOMEM, "sftp store: out of memory");
		goto out;
	}
	if (strchr(s->host, ':'))
		snprintf(s->where, sizeof(s->where), "sftp://%s@[%s]:%d", s->user, s->host, s->port);
	else
		snprintf(s->where, sizeof(s->where), "sftp://%s@%s:%d", s->user, s->host, s->port);
	if (s->root[0] != '/') {
		wal_fail(e, WAL_ECONFIG, "%s: archive path must be absolute", s->where);
		rc = wal_config_blame(cfg, "archive", e);
		goto out;
	}
	if (s->key_file && access(s->key_file, R_OK) != 0) {
		wal_fail_errno(e, WAL_ECONFIG, errno, "ssh_key %s", s->key_file);
		rc = wal_config_blame(cfg, "ssh_key", e);
		goto out;
	}
	rc = with_retries(s, check_root, NULL, e);
	if (rc == WAL_ECONFIG)
		/* the host or the root of the archive, or the passphrase file the
		 * login read (whose messages start with its name) */
		rc = wal_config_blame(cfg, strncmp(e->msg, "ssh_key_passphrase_file", 23) == 0
				      ? "ssh_key_passphrase_file" : "archive", e);
out:
	if (rc != WAL_OK) {
		sftp_close(&s->base);
		return rc;
	}
	*out = &s->base;
	return WAL_OK;
}

const wal_store_ops wal_store_sftp_ops = {
	.scheme = "sftp",
	.open = sftp_open,
	.put = sftp_put,
	.get = sftp_get,
	.stat = sftp_stat,
	.list = sftp_list,
	.remove = sftp_remove,
	.close = sftp_close,
	.sync = sftp_sync,
};
