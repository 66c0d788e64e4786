/*
 * age keys (see age.h): `age1...` recipients and `AGE-SECRET-KEY-1...`
 * identities in bech32, the files that hold them, and the duplicate tags
 * walpush computes from the recipients' public keys.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <xxhash.h>
#include "io/age.h"
#include "io/age_prim.h"

#define DUP_LABEL "walarchive duplicate check v1"

/* ---- bech32 ----------------------------------------------------------------- */

static const char bech32_chars[] = "qpzry9x8gf2tvdw0s3jn54khce6mua7l";

static uint32_t bech32_polymod(const unsigned char *v, size_t len)
{
	static const uint32_t gen[5] = { 0x3b6a57b2, 0x26508e6d, 0x1ea119fa, 0x3d4233dd,
					 0x2a1462b3 };
	uint32_t chk = 1;
	for (size_t i = 0; i < len; i++) {
		uint32_t top = chk >> 25;
		chk = (chk & 0x1ffffff) << 5 ^ v[i];
		for (int j = 0; j < 5; j++)
			if (top >> j & 1)
				chk ^= gen[j];
	}
	return chk;
}

/* hrp expanded and data (5-bit values) in one buffer, for the checksum. */
static size_t bech32_expand(const char *hrp, const unsigned char *data, size_t dlen,
			    unsigned char *buf)
{
	size_t h = strlen(hrp), o = 0;
	for (size_t i = 0; i < h; i++)
		buf[o++] = (unsigned char)hrp[i] >> 5;
	buf[o++] = 0;
	for (size_t i = 0; i < h; i++)
		buf[o++] = (unsigned char)hrp[i] & 31;
	memcpy(buf + o, data, dlen);
	return o + dlen;
}

/*
 * Decodes a bech32 string of human-readable part hrp (lowercase) holding 32
 * bytes.  Upper or lower case, not mixed.  0 on success.
 */
static int bech32_decode32(const char *text, const char *hrp, unsigned char out[32])
{
	char lower[128];
	unsigned char data[128] = { 0 }, buf[192];
	size_t len = strlen(text), h = strlen(hrp);
	int upper = 0, low = 0;
	if (len >= sizeof(lower) || len < h + 1 + 6)
		return -1;
	for (size_t i = 0; i < len; i++) {
		char c = text[i];
		if (c >= 'A' && c <= 'Z') {
			upper = 1;
			c = (char)(c - 'A' + 'a');
		} else if (c >= 'a' && c <= 'z')
			low = 1;
		lower[i] = c;
	}
	lower[len] = 0;
	if (upper && low)
		return -1;
	if (strncmp(lower, hrp, h) != 0 || lower[h] != '1')
		return -1;
	size_t dlen = len - h - 1;
	for (size_t i = 0; i < dlen; i++) {
		const char *p = strchr(bech32_chars, lower[h + 1 + i]);
		if (!lower[h + 1 + i] || !p)
			return -1;
		data[i] = (unsigned char)(p - bech32_chars);
	}
	size_t n = bech32_expand(hrp, data, dlen, buf);
	if (bech32_polymod(buf, n) != 1)
		return -1;
	/* 5-bit groups to bytes, without padding beyond the last byte */
	uint32_t acc = 0;
	int bits = 0;
	size_t o = 0;
	for (size_t i = 0; i < dlen - 6; i++) {
		acc = acc << 5 | data[i];
		bits += 5;
		if (bits >= 8) {
			bits -= 8;
			if (o >= 32)
				return -1;
			out[o++] = (unsigned char)(acc >> bits);
		}
	}
	if (o != 32 || bits >= 5 || (acc & ((1u << bits) - 1)) != 0)
		return -1;
	return 0;
}

void wal_age_recipient_format(const unsigned char pub[32], char out[64])
{
	unsigned char data[60], buf[80];
	size_t dlen = 0;
	uint32_t acc = 0;
	int bits = 0;
	for (int i = 0; i < 32; i++) {
		acc = acc << 8 | pub[i];
		bits += 8;
		while (bits >= 5) {
			bits -= 5;
			data[dlen++] = acc >> bits & 31;
		}
	}
	if (bits > 0)
		data[dlen++] = acc << (5 - bits) & 31;
	size_t n = bech32_expand("age", data, dlen, buf);
	memset(buf + n, 0, 6);
	uint32_t mod = bech32_polymod(buf, n + 6) ^ 1;
	for (int i = 0; i < 6; i++)
		data[dlen + (size_t)i] = mod >> (5 * (5 - i)) & 31;
	memcpy(out, "age1", 4);
	for (size_t i = 0; i < dlen + 6; i++)
		out[4 + i] = bech32_chars[data[i]];
	out[4 + dlen + 6] = 0;
}

/* ---- keys ----------------------------------------------------------------- */

wal_err wal_age_recipient_parse(const char *text, unsigned char pub[32], wal_error *e)
{
	for (const char *p = text; *p; p++)
		if (*p >= 'A' && *p <= 'Z')
			return wal_fail(e, WAL_EINVAL, "%.80s: not an age recipient (upper case)",
					text);
	if (bech32_decode32(text, "age", pub) != 0)
		return wal_fail(e, WAL_EINVAL, "%.80s: not an age x25519 recipient (age1...)",
				text);
	return WAL_OK;
}

wal_err wal_age_identity_parse(const char *text, unsigned char secret[32], unsigned char pub[32],
			       wal_error *e)
{
	for (const char *p = text; *p; p++)
		if (*p >= 'a' && *p <= 'z')
			return wal_fail(e, WAL_EINVAL, "not an age identity (lower case)");
	if (bech32_decode32(text, "age-secret-key-", secret) != 0)
		return wal_fail(e, WAL_EINVAL, "not an age x25519 identity (AGE-SECRET-KEY-1...)");
	if (!wal_age_prim_load(e))
		return WAL_EUNSUPPORTED;
	if (!wal_age_x25519(secret, NULL, pub))
		return wal_fail(e, WAL_EINVAL, "cannot derive the public key of an identity");
	return WAL_OK;
}

void wal_age_keys_wipe(wal_age_keys *keys)
{
	wal_age_wipe(keys, sizeof(*keys));
}

static wal_err add_recipient(wal_age_keys *keys, const char *word, const char *where, wal_error *e)
{
	if (keys->count >= WAL_AGE_MAX_KEYS)
		return wal_fail(e, WAL_ECONFIG, "%s: more than %d recipients", where,
				WAL_AGE_MAX_KEYS);
	wal_error why;
	if (wal_age_recipient_parse(word, keys->pub[keys->count], &why) != WAL_OK)
		return wal_fail(e, WAL_ECONFIG, "%s: %s", where, why.msg);
	for (int i = 0; i < keys->count; i++)
		if (memcmp(keys->pub[i], keys->pub[keys->count], 32) == 0)
			return WAL_OK; /* named twice: once is enough */
	keys->count++;
	return WAL_OK;
}

/*
 * Reads a small key file into a NUL-terminated heap buffer.  private: refuse
 * a file that group or others may read or write.
 */
static wal_err read_key_file(const char *path, const char *what, int private, char **out,
			     wal_error *e)
{
	struct stat st;
	char *buf = NULL;
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	wal_err rc = WAL_OK;
	if (fd < 0 && errno == ELOOP)
		fd = open(path, O_RDONLY | O_CLOEXEC); /* a symlink: its target is checked */
	if (fd < 0)
		return wal_fail_errno(e, WAL_ECONFIG, errno, "%s: cannot open %s", path, what);
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
		rc = wal_fail(e, WAL_ECONFIG, "%s: %s is not a regular file", path, what);
		goto out;
	}
	if (private && (st.st_mode & 077)) {
		rc = wal_fail(e, WAL_ECONFIG,
			      "%s: %s is accessible by group or others (mode %04o); "
			      "chmod 600 it",
			      path, what, (unsigned)(st.st_mode & 07777));
		goto out;
	}
	if (st.st_size > 1 << 20) {
		rc = wal_fail(e, WAL_ECONFIG, "%s: %s is too large to be a key file", path, what);
		goto out;
	}
	buf = malloc((size_t)st.st_size + 1);
	if (!buf) {
		rc = wal_fail(e, WAL_ENOMEM, "out of memory");
		goto out;
	}
	size_t have = 0;
	while (have < (size_t)st.st_size) {
		ssize_t n = read(fd, buf + have, (size_t)st.st_size - have);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			rc = wal_fail_errno(e, WAL_ECONFIG, errno, "%s: cannot read %s", path,
					    what);
			goto out;
		}
		if (n == 0)
			break;
		have += (size_t)n;
	}
	buf[have] = 0;
	*out = buf;
	buf = NULL;
out:
	if (buf) {
		wal_age_wipe(buf, (size_t)st.st_size);
		free(buf);
	}
	close(fd);
	return rc;
}

wal_err wal_age_recipients_load(wal_age_keys *keys, const char *setting, wal_error *e)
{
	char where[600];
	char *text = NULL;
	wal_err rc = WAL_OK;
	memset(keys, 0, sizeof(*keys));
	/* walpush encrypts with them: the primitives must be there */
	if (!wal_age_prim_load(e))
		return WAL_EUNSUPPORTED;
	while (*setting == ' ' || *setting == '\t')
		setting++;
	if (strncmp(setting, "age1", 4) == 0) {
		/* inline: age1... separated by spaces or commas */
		char word[128];
		const char *p = setting;
		snprintf(where, sizeof(where), "encrypt_recipients");
		while (*p && rc == WAL_OK) {
			size_t n = strcspn(p, " \t,");
			if (n >= sizeof(word))
				return wal_fail(
					e, WAL_ECONFIG,
					"encrypt_recipients: %.40s...: not an age recipient", p);
			if (n) {
				memcpy(word, p, n);
				word[n] = 0;
				rc = add_recipient(keys, word, where, e);
			}
			p += n;
			p += strspn(p, " \t,");
		}
	} else {
		rc = read_key_file(setting, "encrypt_recipients file", 0, &text, e);
		int line = 0;
		for (char *save = NULL, *l = text ? strtok_r(text, "\n", &save) : NULL;
		     l && rc == WAL_OK; l = strtok_r(NULL, "\n", &save)) {
			line++;
			size_t n = strlen(l);
			while (n && (l[n - 1] == '\r' || l[n - 1] == ' ' || l[n - 1] == '\t'))
				l[--n] = 0;
			if (n == 0 || l[0] == '#')
				continue;
			snprintf(where, sizeof(where), "%s:%d", setting, line);
			rc = add_recipient(keys, l, where, e);
		}
	}
	if (rc == WAL_OK && keys->count == 0)
		rc = wal_fail(e, WAL_ECONFIG, "encrypt_recipients: %s holds no recipient",
			      text ? setting : "the setting");
	free(text);
	if (rc != WAL_OK)
		memset(keys, 0, sizeof(*keys));
	return rc;
}

wal_err wal_age_identities_load(wal_age_keys *keys, const char *path, wal_error *e)
{
	char *text = NULL;
	size_t text_len = 0;
	int line = 0;
	memset(keys, 0, sizeof(*keys));
	keys->has_secret = 1;
	if (!wal_age_prim_load(e))
		return WAL_EUNSUPPORTED;
	wal_err rc = read_key_file(path, "encrypt_identity file", 1, &text, e);
	if (rc != WAL_OK)
		return rc;
	text_len = strlen(text);
	for (char *save = NULL, *l = strtok_r(text, "\n", &save); l && rc == WAL_OK;
	     l = strtok_r(NULL, "\n", &save)) {
		line++;
		size_t n = strlen(l);
		while (n && (l[n - 1] == '\r' || l[n - 1] == ' ' || l[n - 1] == '\t'))
			l[--n] = 0;
		if (n == 0 || l[0] == '#')
			continue;
		wal_error why;
		if (keys->count >= WAL_AGE_MAX_KEYS)
			rc = wal_fail(e, WAL_ECONFIG, "%s: more than %d identities", path,
				      WAL_AGE_MAX_KEYS);
		else if (wal_age_identity_parse(l, keys->secret[keys->count],
						keys->pub[keys->count], &why) != WAL_OK)
			/* never echo the line: it may be a mistyped secret */
			rc = wal_fail(e, WAL_ECONFIG, "%s:%d: %s", path, line, why.msg);
		else
			keys->count++;
	}
	if (rc == WAL_OK && keys->count == 0)
		rc = wal_fail(e, WAL_ECONFIG, "%s: encrypt_identity file holds no identity", path);
	wal_age_wipe(text, text_len);
	free(text);
	if (rc != WAL_OK)
		wal_age_keys_wipe(keys);
	return rc;
}

/* ---- duplicate tags -------------------------------------------------------- */

void wal_age_dup_compute(const wal_age_keys *recipients, const char *name,
			 const unsigned char digest[WAL_AGE_DIGEST_LEN], wal_age_dup *out)
{
	unsigned char msg[256 + WAL_AGE_DIGEST_LEN];
	size_t nlen = strlen(name);
	if (nlen > 255)
		nlen = 255;
	memcpy(msg, name, nlen);
	msg[nlen] = 0;
	memcpy(msg + nlen + 1, digest, WAL_AGE_DIGEST_LEN);
	memset(out, 0, sizeof(*out));
	for (int i = 0; i < recipients->count; i++) {
		unsigned char key[32], id[32];
		if (!wal_age_hkdf(recipients->pub[i], 32, NULL, 0, DUP_LABEL, key) ||
		    !wal_age_hmac(key, "id", 2, id) ||
		    !wal_age_hmac(key, msg, nlen + 1 + WAL_AGE_DIGEST_LEN, out->tag[i]))
			continue; /* left out: an object without it compares as unknown */
		memcpy(out->key_id[out->count], id, 8);
		if (out->count != i)
			memcpy(out->tag[out->count], out->tag[i], 32);
		out->count++;
	}
}

int wal_age_dup_match(const wal_age_dup *have, const wal_age_dup *want)
{
	int shared = 0;
	for (int i = 0; i < have->count; i++)
		for (int j = 0; j < want->count; j++)
			if (memcmp(have->key_id[i], want->key_id[j], 8) == 0) {
				if (wal_age_memcmp(have->tag[i], want->tag[j], 32) == 0)
					return 1;
				shared = 1;
			}
	return shared ? 0 : -1;
}

wal_err wal_age_digest_fd(int fd, const char *path, unsigned char out[WAL_AGE_DIGEST_LEN],
			  wal_error *e)
{
	XXH3_state_t *state = XXH3_createState();
	unsigned char *buf = malloc(WAL_IO_CHUNK);
	wal_err rc = WAL_OK;
	off_t offset = 0;
	if (!state || !buf || XXH3_128bits_reset(state) != XXH_OK) {
		rc = wal_fail(e, WAL_ENOMEM, "out of memory");
		goto out;
	}
	for (;;) {
		ssize_t n = pread(fd, buf, WAL_IO_CHUNK, offset);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			rc = wal_fail_errno(e, WAL_EIO, errno, "%s: cannot read", path);
			goto out;
		}
		if (n == 0)
			break;
		XXH3_128bits_update(state, buf, (size_t)n);
		offset += n;
	}
	XXH128_canonical_t canon;
	XXH128_canonicalFromHash(&canon, XXH3_128bits_digest(state));
	memcpy(out, canon.digest, WAL_AGE_DIGEST_LEN);
out:
	free(buf);
	XXH3_freeState(state);
	return rc;
}
