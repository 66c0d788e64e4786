/*
 * The age v1 format (see age.h): keys in bech32, the header with its
 * stanzas and MAC, and the chunked ChaCha20-Poly1305 payload, as a source
 * that encrypts and a sink that decrypts.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/kdf.h>
#include <openssl/rand.h>
#include <xxhash.h>
#include "io/age.h"

#define AGE_VERSION_LINE "age-encryption.org/v1"
#define X25519_LABEL "age-encryption.org/v1/X25519"
#define DUP_TYPE "walarchive-dup"
#define DUP_LABEL "walarchive duplicate check v1"
#define FILE_KEY_LEN 16
#define NONCE_LEN 16
#define TAG_LEN 16
#define COLUMNS 64

/* ---- encodings ----------------------------------------------------------- */

static const char b64_chars[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/* Unpadded standard base64 of len bytes into out (NUL-terminated); returns its length. */
static size_t b64_encode(const unsigned char *in, size_t len, char *out)
{
	size_t o = 0, i = 0;
	for (; i + 3 <= len; i += 3) {
		uint32_t v = (uint32_t)in[i] << 16 | (uint32_t)in[i + 1] << 8 | in[i + 2];
		out[o++] = b64_chars[v >> 18 & 63];
		out[o++] = b64_chars[v >> 12 & 63];
		out[o++] = b64_chars[v >> 6 & 63];
		out[o++] = b64_chars[v & 63];
	}
	if (len - i == 1) {
		uint32_t v = (uint32_t)in[i] << 16;
		out[o++] = b64_chars[v >> 18 & 63];
		out[o++] = b64_chars[v >> 12 & 63];
	} else if (len - i == 2) {
		uint32_t v = (uint32_t)in[i] << 16 | (uint32_t)in[i + 1] << 8;
		out[o++] = b64_chars[v >> 18 & 63];
		out[o++] = b64_chars[v >> 12 & 63];
		out[o++] = b64_chars[v >> 6 & 63];
	}
	out[o] = 0;
	return o;
}

static int b64_value(char c)
{
	const char *p = c ? strchr(b64_chars, c) : NULL;
	return p ? (int)(p - b64_chars) : -1;
}

/*
 * Decodes len characters of unpadded base64 into out (cap bytes); returns the
 * decoded length, or -1 unless the text is canonical (as age requires: no
 * padding, no stray bits).
 */
static long b64_decode(const char *in, size_t len, unsigned char *out, size_t cap)
{
	size_t o = 0;
	uint32_t acc = 0;
	int bits = 0;
	if (len % 4 == 1)
		return -1;
	for (size_t i = 0; i < len; i++) {
		int v = b64_value(in[i]);
		if (v < 0)
			return -1;
		acc = acc << 6 | (uint32_t)v;
		bits += 6;
		if (bits >= 8) {
			bits -= 8;
			if (o >= cap)
				return -1;
			out[o++] = (unsigned char)(acc >> bits);
		}
	}
	if (bits > 0 && (acc & ((1u << bits) - 1)) != 0)
		return -1;
	return (long)o;
}

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

/* ---- primitives (OpenSSL) -------------------------------------------------- */

static int x25519(const unsigned char secret[32], const unsigned char *peer, unsigned char out[32])
{
	EVP_PKEY *key = EVP_PKEY_new_raw_private_key(EVP_PKEY_X25519, NULL, secret, 32);
	EVP_PKEY *other = NULL;
	EVP_PKEY_CTX *ctx = NULL;
	size_t len = 32;
	int ok = 0;
	if (!key)
		goto out;
	if (!peer) { /* the public key of secret */
		ok = EVP_PKEY_get_raw_public_key(key, out, &len) == 1 && len == 32;
		goto out;
	}
	other = EVP_PKEY_new_raw_public_key(EVP_PKEY_X25519, NULL, peer, 32);
	ctx = other ? EVP_PKEY_CTX_new(key, NULL) : NULL;
	/* OpenSSL refuses an all-zero shared secret (a low-order point), as age must */
	ok = ctx && EVP_PKEY_derive_init(ctx) == 1 && EVP_PKEY_derive_set_peer(ctx, other) == 1 &&
	     EVP_PKEY_derive(ctx, out, &len) == 1 && len == 32;
out:
	EVP_PKEY_CTX_free(ctx);
	EVP_PKEY_free(other);
	EVP_PKEY_free(key);
	return ok;
}

/* HKDF-SHA256(ikm, salt, info) into 32 bytes; salt may be empty. */
static int hkdf(const unsigned char *ikm, size_t ikm_len, const unsigned char *salt,
		size_t salt_len, const char *info, unsigned char out[32])
{
	EVP_KDF *kdf = EVP_KDF_fetch(NULL, "HKDF", NULL);
	EVP_KDF_CTX *ctx = kdf ? EVP_KDF_CTX_new(kdf) : NULL;
	OSSL_PARAM params[5], *p = params;
	int ok = 0;
	if (!ctx)
		goto out;
	*p++ = OSSL_PARAM_construct_utf8_string(OSSL_KDF_PARAM_DIGEST, (char *)"SHA256", 0);
	*p++ = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_KEY, (void *)ikm, ikm_len);
	/* no salt is HMAC's zero key, the same as an empty salt (RFC 5869) */
	if (salt_len)
		*p++ = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_SALT, (void *)salt,
							 salt_len);
	*p++ = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_INFO, (void *)info, strlen(info));
	*p = OSSL_PARAM_construct_end();
	ok = EVP_KDF_derive(ctx, out, 32, params) == 1;
out:
	EVP_KDF_CTX_free(ctx);
	EVP_KDF_free(kdf);
	return ok;
}

static int hmac256(const unsigned char key[32], const void *data, size_t len, unsigned char out[32])
{
	unsigned int out_len = 32;
	return HMAC(EVP_sha256(), key, 32, data, len, out, &out_len) != NULL && out_len == 32;
}

/* One-shot ChaCha20-Poly1305 with a 12-byte nonce: out = ct || tag. */
static int aead_seal(EVP_CIPHER_CTX *ctx, const unsigned char nonce[12], const unsigned char *in,
		     size_t len, unsigned char *out)
{
	int n = 0, fin = 0;
	if (EVP_EncryptInit_ex(ctx, NULL, NULL, NULL, nonce) != 1 ||
	    (len && EVP_EncryptUpdate(ctx, out, &n, in, (int)len) != 1) ||
	    EVP_EncryptFinal_ex(ctx, out + n, &fin) != 1)
		return 0;
	return EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_AEAD_GET_TAG, TAG_LEN, out + len) == 1;
}

/* Opens in (len bytes: ct || tag) into out; 0 if it does not authenticate. */
static int aead_open(EVP_CIPHER_CTX *ctx, const unsigned char nonce[12], const unsigned char *in,
		     size_t len, unsigned char *out)
{
	int n = 0, fin = 0;
	size_t ct_len = len - TAG_LEN;
	if (len < TAG_LEN || EVP_DecryptInit_ex(ctx, NULL, NULL, NULL, nonce) != 1 ||
	    (ct_len && EVP_DecryptUpdate(ctx, out, &n, in, (int)ct_len) != 1) ||
	    EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_AEAD_SET_TAG, TAG_LEN, (void *)(in + ct_len)) != 1)
		return 0;
	return EVP_DecryptFinal_ex(ctx, out + n, &fin) == 1;
}

static EVP_CIPHER_CTX *aead_new(const unsigned char key[32], int encrypt)
{
	EVP_CIPHER_CTX *ctx = EVP_CIPHER_CTX_new();
	if (ctx && EVP_CipherInit_ex(ctx, EVP_chacha20_poly1305(), NULL, key, NULL, encrypt) != 1) {
		EVP_CIPHER_CTX_free(ctx);
		ctx = NULL;
	}
	return ctx;
}

/* Seals or opens 32 or 16 bytes under key with the all-zero nonce (a stanza body). */
static int aead_once(const unsigned char key[32], int encrypt, const unsigned char *in, size_t len,
		     unsigned char *out)
{
	static const unsigned char zero[12];
	EVP_CIPHER_CTX *ctx = aead_new(key, encrypt);
	int ok = ctx && (encrypt ? aead_seal(ctx, zero, in, len, out)
				 : aead_open(ctx, zero, in, len, out));
	EVP_CIPHER_CTX_free(ctx);
	return ok;
}

/* The chunk nonce: an 11-byte big-endian counter and the last-chunk flag. */
static void chunk_nonce(uint64_t counter, int last, unsigned char nonce[12])
{
	memset(nonce, 0, 12);
	for (int i = 0; i < 8; i++)
		nonce[10 - i] = (unsigned char)(counter >> (8 * i));
	nonce[11] = last ? 1 : 0;
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
	if (!x25519(secret, NULL, pub))
		return wal_fail(e, WAL_EINVAL, "cannot derive the public key of an identity");
	return WAL_OK;
}

void wal_age_keys_wipe(wal_age_keys *keys)
{
	OPENSSL_cleanse(keys, sizeof(*keys));
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
		OPENSSL_cleanse(buf, (size_t)st.st_size);
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
	OPENSSL_cleanse(text, text_len);
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
		if (!hkdf(recipients->pub[i], 32, NULL, 0, DUP_LABEL, key) ||
		    !hmac256(key, "id", 2, id) ||
		    !hmac256(key, msg, nlen + 1 + WAL_AGE_DIGEST_LEN, out->tag[i]))
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
				if (CRYPTO_memcmp(have->tag[i], want->tag[j], 32) == 0)
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

/* ---- encryption ------------------------------------------------------------ */

struct wal_age_source {
	wal_source base;
	wal_source *inner;
	EVP_CIPHER_CTX *cipher;
	unsigned char *prefix; /* header and payload nonce, the same on every rewind */
	size_t prefix_len;
	unsigned char *plain; /* one chunk of plaintext */
	size_t plain_len;
	unsigned char ahead; /* the byte read to learn that more follows a full chunk */
	int have_ahead;
	unsigned char *out; /* bytes ready to hand out */
	size_t out_len, out_pos;
	uint64_t counter;
	int started, done;
	uint64_t produced;
};

/* Appends text to the header being built. */
static void put(char *hdr, size_t *len, const char *text)
{
	size_t n = strlen(text);
	memcpy(hdr + *len, text, n);
	*len += n;
}

/* Appends a stanza body: base64 in lines of 64 columns, the last one shorter. */
static void put_body(char *hdr, size_t *len, const unsigned char *body, size_t body_len)
{
	char b64[128];
	size_t n = b64_encode(body, body_len, b64);
	for (size_t i = 0;; i += COLUMNS) {
		size_t line = n - i < COLUMNS ? n - i : COLUMNS;
		memcpy(hdr + *len, b64 + i, line);
		*len += line;
		hdr[(*len)++] = '\n';
		if (line < COLUMNS)
			break;
	}
}

/* Builds the header and payload nonce into src->prefix and keys the cipher. */
static wal_err build_prefix(wal_age_source *src, const wal_age_keys *recipients,
			    const wal_age_dup *dup, wal_error *e)
{
	unsigned char file_key[FILE_KEY_LEN], key[32], nonce[NONCE_LEN], mac[32];
	char b64[64];
	size_t cap =
		64 + (size_t)recipients->count * 200 + (dup ? (size_t)dup->count * 120 : 0) + 128;
	size_t len = 0;
	wal_err rc = WAL_OK;
	char *hdr = malloc(cap);
	if (!hdr)
		return wal_fail(e, WAL_ENOMEM, "out of memory");
	if (RAND_bytes(file_key, sizeof(file_key)) != 1 || RAND_bytes(nonce, sizeof(nonce)) != 1) {
		rc = wal_fail(e, WAL_EIO, "cannot draw random bytes for encryption");
		goto out;
	}
	put(hdr, &len, AGE_VERSION_LINE "\n");
	for (int i = 0; i < recipients->count; i++) {
		unsigned char eph[32], share[32], shared[32], salt[64], body[32];
		if (RAND_bytes(eph, sizeof(eph)) != 1 || !x25519(eph, NULL, share) ||
		    !x25519(eph, recipients->pub[i], shared)) {
			OPENSSL_cleanse(eph, sizeof(eph));
			rc = wal_fail(e, WAL_ECONFIG,
				      "encrypt_recipients: cannot encrypt to "
				      "recipient %d (not a valid x25519 key)",
				      i + 1);
			goto out;
		}
		memcpy(salt, share, 32);
		memcpy(salt + 32, recipients->pub[i], 32);
		int ok = hkdf(shared, 32, salt, 64, X25519_LABEL, key) &&
			 aead_once(key, 1, file_key, FILE_KEY_LEN, body);
		OPENSSL_cleanse(eph, sizeof(eph));
		OPENSSL_cleanse(shared, sizeof(shared));
		if (!ok) {
			rc = wal_fail(e, WAL_EIO, "cannot wrap the file key");
			goto out;
		}
		put(hdr, &len, "-> X25519 ");
		b64_encode(share, 32, b64);
		put(hdr, &len, b64);
		put(hdr, &len, "\n");
		put_body(hdr, &len, body, 32);
	}
	for (int i = 0; dup && i < dup->count; i++) {
		put(hdr, &len, "-> " DUP_TYPE " ");
		b64_encode(dup->key_id[i], 8, b64);
		put(hdr, &len, b64);
		put(hdr, &len, "\n");
		put_body(hdr, &len, dup->tag[i], 32);
	}
	put(hdr, &len, "---");
	if (!hkdf(file_key, FILE_KEY_LEN, NULL, 0, "header", key) || !hmac256(key, hdr, len, mac)) {
		rc = wal_fail(e, WAL_EIO, "cannot compute the header mac");
		goto out;
	}
	put(hdr, &len, " ");
	b64_encode(mac, 32, b64);
	put(hdr, &len, b64);
	put(hdr, &len, "\n");
	memcpy(hdr + len, nonce, NONCE_LEN);
	len += NONCE_LEN;
	if (!hkdf(file_key, FILE_KEY_LEN, nonce, NONCE_LEN, "payload", key) ||
	    !(src->cipher = aead_new(key, 1))) {
		rc = wal_fail(e, WAL_EIO, "cannot set up the payload cipher");
		goto out;
	}
	src->prefix = (unsigned char *)hdr;
	src->prefix_len = len;
	hdr = NULL;
out:
	OPENSSL_cleanse(file_key, sizeof(file_key));
	OPENSSL_cleanse(key, sizeof(key));
	free(hdr);
	return rc;
}

/* Reads from inner until buf holds want bytes or inner ends. */
static wal_err fill(wal_source *inner, unsigned char *buf, size_t want, size_t *have, wal_error *e)
{
	while (*have < want) {
		size_t got = 0;
		wal_err rc = inner->read(inner, buf + *have, want - *have, &got, e);
		if (rc != WAL_OK)
			return rc;
		if (got == 0)
			break;
		*have += got;
	}
	return WAL_OK;
}

/* Encrypts the next chunk into src->out; sets done after the last one. */
static wal_err next_chunk(wal_age_source *src, wal_error *e)
{
	unsigned char nonce[12];
	size_t have = 0;
	wal_err rc;
	if (src->have_ahead) {
		src->plain[0] = src->ahead;
		have = 1;
		src->have_ahead = 0;
	}
	if ((rc = fill(src->inner, src->plain, WAL_AGE_CHUNK, &have, e)) != WAL_OK)
		return rc;
	int last = have < WAL_AGE_CHUNK;
	if (!last) { /* a full chunk is the last one only if nothing follows */
		size_t one = 0;
		if ((rc = fill(src->inner, &src->ahead, 1, &one, e)) != WAL_OK)
			return rc;
		src->have_ahead = one == 1;
		last = !src->have_ahead;
	}
	chunk_nonce(src->counter, last, nonce);
	if (!aead_seal(src->cipher, nonce, src->plain, have, src->out))
		return wal_fail(e, WAL_EIO, "cannot encrypt a chunk");
	src->counter++;
	src->out_len = have + TAG_LEN;
	src->out_pos = 0;
	src->done = last;
	return WAL_OK;
}

static wal_err age_source_read(wal_source *base, void *buf, size_t cap, size_t *got, wal_error *e)
{
	wal_age_source *src = (wal_age_source *)base;
	unsigned char *dst = buf;
	*got = 0;
	if (!src->started) {
		memcpy(src->out, src->prefix, src->prefix_len);
		src->out_len = src->prefix_len;
		src->out_pos = 0;
		src->started = 1;
	}
	while (*got < cap) {
		if (src->out_pos == src->out_len) {
			if (src->done)
				break;
			wal_err rc = next_chunk(src, e);
			if (rc != WAL_OK)
				return rc;
		}
		size_t n = src->out_len - src->out_pos;
		if (n > cap - *got)
			n = cap - *got;
		memcpy(dst + *got, src->out + src->out_pos, n);
		src->out_pos += n;
		*got += n;
	}
	src->produced += *got;
	if (*got == 0 && src->done)
		src->base.size = (int64_t)src->produced;
	return WAL_OK;
}

static wal_err age_source_rewind(wal_source *base, wal_error *e)
{
	wal_age_source *src = (wal_age_source *)base;
	wal_err rc = src->inner->rewind(src->inner, e);
	if (rc != WAL_OK)
		return rc;
	src->started = src->done = src->have_ahead = 0;
	src->out_len = src->out_pos = 0;
	src->counter = 0;
	src->produced = 0;
	return WAL_OK;
}

wal_err wal_age_source_new(wal_age_source **out, wal_source *inner, const wal_age_keys *recipients,
			   const wal_age_dup *dup, wal_error *e)
{
	*out = NULL;
	if (recipients->count == 0)
		return wal_fail(e, WAL_ECONFIG, "encrypt_recipients: no recipient");
	wal_age_source *src = calloc(1, sizeof(*src));
	if (!src)
		return wal_fail(e, WAL_ENOMEM, "out of memory");
	src->base.read = age_source_read;
	src->base.rewind = age_source_rewind;
	src->base.size = -1;
	src->inner = inner;
	src->plain = malloc(WAL_AGE_CHUNK);
	wal_err rc = src->plain ? build_prefix(src, recipients, dup, e)
				: wal_fail(e, WAL_ENOMEM, "out of memory");
	if (rc == WAL_OK) {
		size_t cap = WAL_AGE_CHUNK + TAG_LEN;
		if (src->prefix_len > cap)
			cap = src->prefix_len;
		if (!(src->out = malloc(cap)))
			rc = wal_fail(e, WAL_ENOMEM, "out of memory");
	}
	if (rc != WAL_OK) {
		wal_age_source_free(src);
		return rc;
	}
	*out = src;
	return WAL_OK;
}

wal_source *wal_age_source_base(wal_age_source *src)
{
	return &src->base;
}

void wal_age_source_free(wal_age_source *src)
{
	if (!src)
		return;
	EVP_CIPHER_CTX_free(src->cipher);
	if (src->plain)
		OPENSSL_cleanse(src->plain, WAL_AGE_CHUNK);
	free(src->plain);
	free(src->out);
	free(src->prefix);
	free(src);
}

/* ---- decryption ------------------------------------------------------------ */

enum { ST_HEADER, ST_NONCE, ST_CHUNKS, ST_IGNORE, ST_FAILED };

struct wal_age_sink {
	wal_sink base;
	wal_sink *inner;
	const wal_age_keys *ids; /* NULL: header only */
	const char *what;
	int state;
	unsigned char *buf; /* the header, then one encrypted chunk */
	size_t len;
	size_t scan; /* start of the header line not yet complete */
	unsigned char nonce[NONCE_LEN];
	size_t nonce_len;
	unsigned char file_key[FILE_KEY_LEN];
	unsigned char *plain;
	EVP_CIPHER_CTX *cipher;
	uint64_t counter;
	wal_age_dup dup;
};

static wal_err corrupt(wal_age_sink *s, wal_error *e, const char *why)
{
	s->state = ST_FAILED;
	return wal_fail(e, WAL_ECORRUPT, "%s: not a valid age file: %s", s->what, why);
}

/* One line of the header at *pos (without its newline); 0 if none is complete. */
static int next_line(const char *hdr, size_t len, size_t *pos, const char **line, size_t *n)
{
	const char *nl = memchr(hdr + *pos, '\n', len - *pos);
	if (!nl)
		return 0;
	*line = hdr + *pos;
	*n = (size_t)(nl - *line);
	*pos += *n + 1;
	return 1;
}

/* Tries the identities on one X25519 stanza; 1 and the file key if one opens it. */
static int unwrap_x25519(wal_age_sink *s, const unsigned char share[32],
			 const unsigned char body[32])
{
	for (int i = 0; i < s->ids->count; i++) {
		unsigned char shared[32], salt[64], key[32];
		if (!x25519(s->ids->secret[i], share, shared))
			continue;
		memcpy(salt, share, 32);
		memcpy(salt + 32, s->ids->pub[i], 32);
		int ok = hkdf(shared, 32, salt, 64, X25519_LABEL, key) &&
			 aead_once(key, 0, body, 32, s->file_key);
		OPENSSL_cleanse(shared, sizeof(shared));
		OPENSSL_cleanse(key, sizeof(key));
		if (ok)
			return 1;
	}
	return 0;
}

/*
 * Parses the complete header in s->buf (hdr_len bytes, ending with the MAC
 * line), finds the file key and checks the MAC.
 */
static wal_err parse_header(wal_age_sink *s, size_t hdr_len, wal_error *e)
{
	const char *hdr = (const char *)s->buf, *line;
	size_t pos = 0, n;
	int opened = 0, x25519_stanzas = 0;
	if (!next_line(hdr, hdr_len, &pos, &line, &n) || n != strlen(AGE_VERSION_LINE) ||
	    memcmp(line, AGE_VERSION_LINE, n) != 0)
		return corrupt(s, e, "unknown version line");
	for (;;) {
		size_t start = pos;
		if (!next_line(hdr, hdr_len, &pos, &line, &n))
			return corrupt(s, e, "header ends early");
		if (n >= 3 && memcmp(line, "---", 3) == 0) {
			unsigned char mac[32], want[32], key[32];
			if (n != 3 + 1 + 43 || line[3] != ' ' ||
			    b64_decode(line + 4, 43, mac, sizeof(mac)) != 32 || pos != hdr_len)
				return corrupt(s, e, "malformed header mac line");
			if (!s->ids)
				return WAL_OK;
			if (!opened)
				return wal_fail(e, WAL_ECONFIG,
						"%s: encrypted to other recipients: no identity in "
						"encrypt_identity opens it",
						s->what);
			int ok = hkdf(s->file_key, FILE_KEY_LEN, NULL, 0, "header", key) &&
				 hmac256(key, hdr, start + 3, want);
			OPENSSL_cleanse(key, sizeof(key));
			if (!ok || CRYPTO_memcmp(mac, want, 32) != 0)
				return corrupt(s, e, "header mac does not match (damaged header)");
			return WAL_OK;
		}
		if (n < 4 || memcmp(line, "-> ", 3) != 0)
			return corrupt(s, e, "malformed stanza");
		/* arguments: non-empty, separated by single spaces */
		const char *args[8];
		size_t arg_len[8];
		int nargs = 0;
		for (size_t i = 3; i < n;) {
			size_t j = i;
			while (j < n && line[j] != ' ') {
				if (line[j] < 33 || line[j] > 126)
					return corrupt(s, e, "malformed stanza argument");
				j++;
			}
			if (j == i || nargs == 8)
				return corrupt(s, e, "malformed stanza arguments");
			args[nargs] = line + i;
			arg_len[nargs++] = j - i;
			i = j + 1;
			if (j + 1 == n)
				return corrupt(s, e, "malformed stanza arguments");
		}
		/* body: full lines of 64 columns, then a shorter last line */
		unsigned char body[WAL_AGE_HEADER_MAX / 4 * 3];
		size_t body_len = 0;
		for (;;) {
			if (!next_line(hdr, hdr_len, &pos, &line, &n))
				return corrupt(s, e, "header ends inside a stanza");
			if (n > COLUMNS)
				return corrupt(s, e, "stanza body line too long");
			long got = b64_decode(line, n, body + body_len, sizeof(body) - body_len);
			if (got < 0 || (n < COLUMNS && n % 4 == 1))
				return corrupt(s, e, "malformed stanza body");
			body_len += (size_t)got;
			if (n < COLUMNS)
				break;
		}
		if (arg_len[0] == 6 && memcmp(args[0], "X25519", 6) == 0) {
			unsigned char share[32];
			x25519_stanzas++;
			if (nargs != 2 || arg_len[1] != 43 ||
			    b64_decode(args[1], 43, share, sizeof(share)) != 32 || body_len != 32)
				return corrupt(s, e, "malformed x25519 stanza");
			if (s->ids && !opened)
				opened = unwrap_x25519(s, share, body);
		} else if (arg_len[0] == strlen(DUP_TYPE) &&
			   memcmp(args[0], DUP_TYPE, arg_len[0]) == 0) {
			unsigned char id[8];
			if (nargs == 2 && body_len == 32 && s->dup.count < WAL_AGE_MAX_KEYS &&
			    b64_decode(args[1], arg_len[1], id, sizeof(id)) == 8) {
				memcpy(s->dup.key_id[s->dup.count], id, 8);
				memcpy(s->dup.tag[s->dup.count], body, 32);
				s->dup.count++;
			}
		}
		/* other stanza types belong to other recipients: skipped, as age does */
	}
}

/* Decrypts the chunk in s->buf (s->len bytes) and passes it on. */
static wal_err open_chunk(wal_age_sink *s, int last, wal_error *e)
{
	unsigned char nonce[12];
	char why[96];
	if (s->len < TAG_LEN)
		return corrupt(s, e, "truncated (last chunk incomplete)");
	if (last && s->len == TAG_LEN && s->counter > 0)
		return corrupt(s, e, "empty last chunk");
	chunk_nonce(s->counter, last, nonce);
	if (!aead_open(s->cipher, nonce, s->buf, s->len, s->plain)) {
		snprintf(why, sizeof(why),
			 "chunk %llu does not authenticate (damaged, truncated or extended)",
			 (unsigned long long)s->counter);
		return corrupt(s, e, why);
	}
	s->counter++;
	size_t plain_len = s->len - TAG_LEN;
	s->len = 0;
	return plain_len ? s->inner->write(s->inner, s->plain, plain_len, e) : WAL_OK;
}

static wal_err age_sink_write(wal_sink *base, const void *data, size_t len, wal_error *e)
{
	wal_age_sink *s = (wal_age_sink *)base;
	const unsigned char *p = data;
	wal_err rc;
	while (len > 0) {
		switch (s->state) {
		case ST_FAILED:
			return wal_fail(e, WAL_ECORRUPT, "%s: not a valid age file", s->what);
		case ST_IGNORE:
			return WAL_OK;
		case ST_HEADER: {
			size_t room = WAL_AGE_HEADER_MAX - s->len;
			size_t n = len < room ? len : room;
			memcpy(s->buf + s->len, p, n);
			s->len += n;
			/* the header ends with the line that starts "---" */
			size_t end = 0;
			while (!end) {
				unsigned char *nl =
					memchr(s->buf + s->scan, '\n', s->len - s->scan);
				if (!nl)
					break;
				if (s->scan > 0 && s->len - s->scan >= 3 &&
				    memcmp(s->buf + s->scan, "---", 3) == 0)
					end = (size_t)(nl - s->buf) + 1;
				else
					s->scan = (size_t)(nl - s->buf) + 1;
			}
			if (!end) {
				if (s->len == WAL_AGE_HEADER_MAX)
					return corrupt(s, e, "no end of header");
				p += n;
				len -= n;
				continue;
			}
			if ((rc = parse_header(s, end, e)) != WAL_OK)
				return rc;
			/* bytes past the header were consumed from this write */
			size_t extra = s->len - end;
			p += n - extra;
			len -= n - extra;
			s->len = 0;
			s->state = s->ids ? ST_NONCE : ST_IGNORE;
			break;
		}
		case ST_NONCE: {
			size_t n = NONCE_LEN - s->nonce_len;
			if (n > len)
				n = len;
			memcpy(s->nonce + s->nonce_len, p, n);
			s->nonce_len += n;
			p += n;
			len -= n;
			if (s->nonce_len == NONCE_LEN) {
				unsigned char key[32];
				int ok = hkdf(s->file_key, FILE_KEY_LEN, s->nonce, NONCE_LEN,
					      "payload", key) &&
					 (s->cipher = aead_new(key, 0)) != NULL;
				OPENSSL_cleanse(key, sizeof(key));
				if (!ok)
					return wal_fail(e, WAL_EIO, "%s: cannot set up decryption",
							s->what);
				s->state = ST_CHUNKS;
			}
			break;
		}
		case ST_CHUNKS: {
			size_t full = WAL_AGE_CHUNK + TAG_LEN;
			if (s->len == full) {
				/* more bytes follow a full chunk: it is not the last */
				if ((rc = open_chunk(s, 0, e)) != WAL_OK)
					return rc;
			}
			size_t n = full - s->len;
			if (n > len)
				n = len;
			memcpy(s->buf + s->len, p, n);
			s->len += n;
			p += n;
			len -= n;
			break;
		}
		}
	}
	return WAL_OK;
}

static wal_err age_sink_reset(wal_sink *base, wal_error *e)
{
	wal_age_sink *s = (wal_age_sink *)base;
	s->state = ST_HEADER;
	s->len = 0;
	s->scan = 0;
	s->nonce_len = 0;
	s->counter = 0;
	memset(&s->dup, 0, sizeof(s->dup));
	EVP_CIPHER_CTX_free(s->cipher);
	s->cipher = NULL;
	return s->inner ? s->inner->reset(s->inner, e) : WAL_OK;
}

wal_err wal_age_sink_new(wal_age_sink **out, wal_sink *inner, const wal_age_keys *identities,
			 const char *what, wal_error *e)
{
	*out = NULL;
	wal_age_sink *s = calloc(1, sizeof(*s));
	size_t cap = WAL_AGE_HEADER_MAX > WAL_AGE_CHUNK + TAG_LEN ? WAL_AGE_HEADER_MAX
								  : WAL_AGE_CHUNK + TAG_LEN;
	if (!s || !(s->buf = malloc(cap)) || (identities && !(s->plain = malloc(WAL_AGE_CHUNK)))) {
		wal_age_sink_free(s);
		return wal_fail(e, WAL_ENOMEM, "out of memory");
	}
	s->base.write = age_sink_write;
	s->base.reset = age_sink_reset;
	s->inner = inner;
	s->ids = identities;
	s->what = what;
	*out = s;
	return WAL_OK;
}

wal_sink *wal_age_sink_base(wal_age_sink *sink)
{
	return &sink->base;
}

wal_err wal_age_sink_finish(wal_age_sink *s, wal_error *e)
{
	switch (s->state) {
	case ST_IGNORE:
		return WAL_OK;
	case ST_CHUNKS:
		return open_chunk(s, 1, e);
	case ST_FAILED:
		return wal_fail(e, WAL_ECORRUPT, "%s: not a valid age file", s->what);
	default:
		return corrupt(s, e,
			       s->state == ST_HEADER && s->len == 0
				       ? "empty object"
				       : "truncated (ends before its payload)");
	}
}

const wal_age_dup *wal_age_sink_dup(const wal_age_sink *sink)
{
	return &sink->dup;
}

void wal_age_sink_free(wal_age_sink *s)
{
	if (!s)
		return;
	EVP_CIPHER_CTX_free(s->cipher);
	OPENSSL_cleanse(s->file_key, sizeof(s->file_key));
	if (s->plain)
		OPENSSL_cleanse(s->plain, WAL_AGE_CHUNK);
	free(s->plain);
	free(s->buf);
	free(s);
}
