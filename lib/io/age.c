/*
 * The age v1 format (see age.h): the header with its stanzas and MAC, and
 * the chunked ChaCha20-Poly1305 payload, as a source that encrypts; the
 * sink that decrypts is in age_read.c.  Keys are in age_keys.c, primitives
 * in age_prim.h.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "io/age.h"
#include "io/age_format.h"
#include "io/age_prim.h"

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
long wal_age_b64_decode(const char *in, size_t len, unsigned char *out, size_t cap)
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

/* ---- ChaCha20-Poly1305 ---------------------------------------------------- */

/* Seals or opens 32 or 16 bytes under key with the all-zero nonce (a stanza body). */
int wal_age_aead_once(const unsigned char key[32], int encrypt, const unsigned char *in, size_t len,
		      unsigned char *out)
{
	static const unsigned char zero[12];
	wal_age_aead *ctx = wal_age_aead_new(key, encrypt);
	int ok = ctx && (encrypt ? wal_age_aead_seal(ctx, zero, in, len, out)
				 : wal_age_aead_open(ctx, zero, in, len, out));
	wal_age_aead_free(ctx);
	return ok;
}

/* The chunk nonce: an 11-byte big-endian counter and the last-chunk flag. */
void wal_age_chunk_nonce(uint64_t counter, int last, unsigned char nonce[12])
{
	memset(nonce, 0, 12);
	for (int i = 0; i < 8; i++)
		nonce[10 - i] = (unsigned char)(counter >> (8 * i));
	nonce[11] = last ? 1 : 0;
}

/* ---- encryption ------------------------------------------------------------ */

struct wal_age_source {
	wal_source base;
	wal_source *inner;
	wal_age_aead *cipher;
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
	if (!wal_age_random(file_key, sizeof(file_key)) || !wal_age_random(nonce, sizeof(nonce))) {
		rc = wal_fail(e, WAL_EIO, "cannot draw random bytes for encryption");
		goto out;
	}
	put(hdr, &len, AGE_VERSION_LINE "\n");
	for (int i = 0; i < recipients->count; i++) {
		unsigned char eph[32], share[32], shared[32], salt[64], body[32];
		if (!wal_age_random(eph, sizeof(eph)) || !wal_age_x25519(eph, NULL, share) ||
		    !wal_age_x25519(eph, recipients->pub[i], shared)) {
			wal_age_wipe(eph, sizeof(eph));
			rc = wal_fail(e, WAL_ECONFIG,
				      "encrypt_recipients: cannot encrypt to "
				      "recipient %d (not a valid x25519 key)",
				      i + 1);
			goto out;
		}
		memcpy(salt, share, 32);
		memcpy(salt + 32, recipients->pub[i], 32);
		int ok = wal_age_hkdf(shared, 32, salt, 64, X25519_LABEL, key) &&
			 wal_age_aead_once(key, 1, file_key, FILE_KEY_LEN, body);
		wal_age_wipe(eph, sizeof(eph));
		wal_age_wipe(shared, sizeof(shared));
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
	if (!wal_age_hkdf(file_key, FILE_KEY_LEN, NULL, 0, "header", key) ||
	    !wal_age_hmac(key, hdr, len, mac)) {
		rc = wal_fail(e, WAL_EIO, "cannot compute the header mac");
		goto out;
	}
	put(hdr, &len, " ");
	b64_encode(mac, 32, b64);
	put(hdr, &len, b64);
	put(hdr, &len, "\n");
	memcpy(hdr + len, nonce, NONCE_LEN);
	len += NONCE_LEN;
	if (!wal_age_hkdf(file_key, FILE_KEY_LEN, nonce, NONCE_LEN, "payload", key) ||
	    !(src->cipher = wal_age_aead_new(key, 1))) {
		rc = wal_fail(e, WAL_EIO, "cannot set up the payload cipher");
		goto out;
	}
	src->prefix = (unsigned char *)hdr;
	src->prefix_len = len;
	hdr = NULL;
out:
	wal_age_wipe(file_key, sizeof(file_key));
	wal_age_wipe(key, sizeof(key));
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
	wal_age_chunk_nonce(src->counter, last, nonce);
	if (!wal_age_aead_seal(src->cipher, nonce, src->plain, have, src->out))
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
	if (!wal_age_prim_load(e))
		return WAL_EUNSUPPORTED;
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
	wal_age_aead_free(src->cipher);
	if (src->plain)
		wal_age_wipe(src->plain, WAL_AGE_CHUNK);
	free(src->plain);
	free(src->out);
	free(src->prefix);
	free(src);
}
