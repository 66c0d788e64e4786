/*
 * The age v1 format (see age.h), read: a sink that parses the header,
 * opens the file key with an identity, checks the header's MAC, and
 * decrypts and authenticates the chunked ChaCha20-Poly1305 payload.  The
 * source that encrypts is in age.c.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "io/age.h"
#include "io/age_format.h"
#include "io/age_prim.h"

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
	wal_age_aead *cipher;
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
		if (!wal_age_x25519(s->ids->secret[i], share, shared))
			continue;
		memcpy(salt, share, 32);
		memcpy(salt + 32, s->ids->pub[i], 32);
		int ok = wal_age_hkdf(shared, 32, salt, 64, X25519_LABEL, key) &&
			 wal_age_aead_once(key, 0, body, 32, s->file_key);
		wal_age_wipe(shared, sizeof(shared));
		wal_age_wipe(key, sizeof(key));
		if (ok)
			return 1;
	}
	return 0;
}

/*
 * Parses the complete header in s->buf (hdr_len bytes, ending with the MAC
 * line), finds the file key and checks the MAC.  Longer than most functions
 * here because it follows the header's grammar in age's own order (the
 * version line, each stanza and its arguments, the MAC line): kept whole,
 * each check can be compared with the specification line by line.
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
			    wal_age_b64_decode(line + 4, 43, mac, sizeof(mac)) != 32 ||
			    pos != hdr_len)
				return corrupt(s, e, "malformed header mac line");
			if (!s->ids)
				return WAL_OK;
			if (!opened)
				return wal_fail(e, WAL_ECONFIG,
						"%s: encrypted to other recipients: no identity in "
						"encrypt_identity opens it",
						s->what);
			int ok = wal_age_hkdf(s->file_key, FILE_KEY_LEN, NULL, 0, "header", key) &&
				 wal_age_hmac(key, hdr, start + 3, want);
			wal_age_wipe(key, sizeof(key));
			if (!ok || wal_age_memcmp(mac, want, 32) != 0)
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
			long got = wal_age_b64_decode(line, n, body + body_len,
						      sizeof(body) - body_len);
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
			    wal_age_b64_decode(args[1], 43, share, sizeof(share)) != 32 ||
			    body_len != 32)
				return corrupt(s, e, "malformed x25519 stanza");
			if (s->ids && !opened)
				opened = unwrap_x25519(s, share, body);
		} else if (arg_len[0] == strlen(DUP_TYPE) &&
			   memcmp(args[0], DUP_TYPE, arg_len[0]) == 0) {
			unsigned char id[8];
			if (nargs == 2 && body_len == 32 && s->dup.count < WAL_AGE_MAX_KEYS &&
			    wal_age_b64_decode(args[1], arg_len[1], id, sizeof(id)) == 8) {
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
	wal_age_chunk_nonce(s->counter, last, nonce);
	if (!wal_age_aead_open(s->cipher, nonce, s->buf, s->len, s->plain)) {
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

/* Feeds the age file's bytes through one state machine, its states in the
 * order the bytes arrive (header, payload nonce, chunks): longer than most
 * functions here, but split into one function per state the hand-over
 * between them would be harder to follow. */
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
				int ok = wal_age_hkdf(s->file_key, FILE_KEY_LEN, s->nonce,
						      NONCE_LEN, "payload", key) &&
					 (s->cipher = wal_age_aead_new(key, 0)) != NULL;
				wal_age_wipe(key, sizeof(key));
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
	wal_age_aead_free(s->cipher);
	s->cipher = NULL;
	return s->inner ? s->inner->reset(s->inner, e) : WAL_OK;
}

wal_err wal_age_sink_new(wal_age_sink **out, wal_sink *inner, const wal_age_keys *identities,
			 const char *what, wal_error *e)
{
	*out = NULL;
	if (identities && !wal_age_prim_load(e))
		return WAL_EUNSUPPORTED;
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
	wal_age_aead_free(s->cipher);
	wal_age_wipe(s->file_key, sizeof(s->file_key));
	if (s->plain)
		wal_age_wipe(s->plain, WAL_AGE_CHUNK);
	free(s->plain);
	free(s->buf);
	free(s);
}
