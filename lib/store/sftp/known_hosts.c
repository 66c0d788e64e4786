/*
 * known_hosts matching for the SFTP store's host-key check, as OpenSSH's
 * hostfile.c and match.c decide it (see known_hosts.h).  The text is the
 * user's own file; the key blob comes from the server.
 */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

#include "store/sftp/known_hosts.h"

static const char b64_chars[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/* Decodes base64 (padding optional); returns the length, 0 on bad input. */
size_t wal_ssh_base64_decode(const char *in, size_t in_len, unsigned char *out, size_t cap)
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
void wal_ssh_key_fingerprint(const unsigned char *blob, size_t len, char *out, size_t cap)
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
void wal_ssh_key_type(const unsigned char *blob, size_t len, char *out, size_t cap)
{
	out[0] = '\0';
	if (len < 4)
		return;
	size_t n = ((size_t)blob[0] << 24) | ((size_t)blob[1] << 16) | ((size_t)blob[2] << 8) |
		   blob[3];
	if (n > len - 4 || n >= cap)
		return;
	memcpy(out, blob + 4, n);
	out[n] = '\0';
}

/* The name known_hosts uses for host:port: "host", or "[host]:port" off port 22. */
void wal_known_hosts_name(const char *host, int port, char *out, size_t cap)
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
 * ("[host]:port" is literal, unlike fnmatch's brackets).  Iterative, going
 * back only to the last '*': the same answers as the recursive form, in at
 * most plen times strlen(name) steps instead of exponential time on a
 * pattern of many '*'. */
static int pattern_match(const char *pattern, size_t plen, const char *name)
{
	size_t pi = 0, star_pi = 0;   /* star_pi: the pattern just after the last '*' */
	const char *star_name = NULL; /* where the name stood when that '*' was met */
	while (*name) {
		if (pi < plen && pattern[pi] == '*') {
			star_pi = ++pi;
			star_name = name;
		} else if (pi < plen &&
			   (pattern[pi] == '?' ||
			    tolower((unsigned char)pattern[pi]) == tolower((unsigned char)*name))) {
			pi++;
			name++;
		} else if (star_name) {
			/* let the last '*' take one more character, and retry from there */
			pi = star_pi;
			name = ++star_name;
		} else {
			return 0;
		}
	}
	while (pi < plen && pattern[pi] == '*')
		pi++;
	return pi == plen;
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
	size_t salt_len =
		wal_ssh_base64_decode(salt, (size_t)(bar - salt), salt_raw, sizeof(salt_raw));
	size_t hash_len = wal_ssh_base64_decode(bar + 1, len - (size_t)(bar + 1 - field), hash_raw,
						sizeof(hash_raw));
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
static void known_hosts_each(const char *text, const char *host, int port, kh_visit_fn visit,
			     void *arg)
{
	char name[300];
	wal_known_hosts_name(host, port, name, sizeof(name));
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
					skip = 1; /* @cert-authority: certificates are not supported */
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
	size_t raw_len = wal_ssh_base64_decode(key, key_len, raw, sizeof(raw));
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
int wal_known_hosts_check(const char *text, const char *host, int port, const unsigned char *blob,
			  size_t len, int *line)
{
	kh_check c = { .blob = blob, .len = len, .result = WAL_KH_NOTFOUND, .line = 0 };
	wal_ssh_key_type(blob, len, c.type, sizeof(c.type));
	known_hosts_each(text, host, port, kh_check_visit, &c);
	if (line)
		*line = c.line;
	return c.result;
}

typedef struct kh_types {
	unsigned int seen; /* bit per entry of kh_methods */
} kh_types;

/* known_hosts key types and the libssh2 host key methods that produce them, in preference order. */
static const struct {
	const char *type;
	const char *methods;
} kh_methods[] = {
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
		if (strlen(kh_methods[i].type) == type_len &&
		    memcmp(kh_methods[i].type, type, type_len) == 0)
			t->seen |= 1u << i;
}

/*
 * The host key methods to ask the server for, as OpenSSH does: the key
 * types known_hosts holds for host:port, strongest first ("" if none).
 */
void wal_known_hosts_methods(const char *text, const char *host, int port, char *out, size_t cap)
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
