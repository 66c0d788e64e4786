/*
 * libFuzzer target: the age reader (wal_age_sink) over arbitrary bytes, fed
 * in chunks whose sizes come from the input, with the test kit's identity
 * (the seed corpus holds files encrypted to it) and, for the same bytes, in
 * the header-only mode walpush uses to read duplicate tags.  It must never
 * crash and must end in WAL_OK, WAL_ECORRUPT or WAL_ECONFIG (no identity
 * opens it); nothing past what it accepted may reach the output.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include "io/age.h"
#include "io/stream.h"

#define KIT_IDENTITY "AGE-SECRET-KEY-1XMWWC06LY3EE5RYTXM9MFLAZ2U56JJJ36S0MYPDRWSVLUL66MV4QX3S7F6"

static wal_err feed(const uint8_t *data, size_t size, size_t chunk, const wal_age_keys *ids,
		    wal_mem_sink *out)
{
	wal_age_sink *age;
	wal_error e;
	size_t pos = 0;
	wal_err rc = WAL_OK;
	if (wal_age_sink_new(&age, &out->base, ids, "fuzz", &e) != WAL_OK)
		abort();
	while (pos < size && rc == WAL_OK) {
		size_t n = size - pos < chunk ? size - pos : chunk;
		/* an exact-size copy so ASan sees any overread */
		uint8_t *piece = malloc(n);
		memcpy(piece, data + pos, n);
		rc = wal_age_sink_base(age)->write(wal_age_sink_base(age), piece, n, &e);
		free(piece);
		pos += n;
	}
	if (rc == WAL_OK)
		rc = wal_age_sink_finish(age, &e);
	if (rc == WAL_OK && !ids && wal_age_sink_dup(age)->count > WAL_AGE_MAX_KEYS)
		abort();
	wal_age_sink_free(age);
	return rc;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static wal_age_keys ids;
	wal_mem_sink out;
	wal_err rc;
	size_t chunk = 1;

	if (!ids.count) {
		ids.has_secret = 1;
		if (wal_age_identity_parse(KIT_IDENTITY, ids.secret[0], ids.pub[0], NULL) != WAL_OK)
			abort();
		ids.count = 1;
	}
	if (size > 0) {
		/* the first byte picks the chunk size: 1..255 bytes or whole */
		chunk = data[0] ? data[0] : size;
		data++;
		size--;
	}
	if (!chunk)
		chunk = 1;
	wal_mem_sink_init(&out, 16u << 20);
	rc = feed(data, size, chunk, &ids, &out);
	if (rc != WAL_OK && rc != WAL_ECORRUPT && rc != WAL_ECONFIG && rc != WAL_ENOMEM)
		abort();
	/* plaintext is at most the ciphertext less the header, nonce and tags */
	if (out.len > size)
		abort();
	free(out.buf);

	wal_mem_sink_init(&out, 1);
	rc = feed(data, size, chunk, NULL, &out);
	if (rc != WAL_OK && rc != WAL_ECORRUPT)
		abort();
	if (out.len != 0) /* the header-only mode passes nothing on */
		abort();
	free(out.buf);
	return 0;
}
