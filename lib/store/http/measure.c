/*
 * Measuring a source (length and SHA-256) before an upload that must
 * announce them.  Part of the HTTP transports' module, which links
 * libcrypto; the local programs never load it.
 */
#include <errno.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "io/stream.h"

wal_err wal_source_measure(wal_source *src, char *sha256_hex, wal_error *e)
{
	wal_err rc = WAL_OK;
	EVP_MD_CTX *md = NULL;
	unsigned char *buf = malloc(WAL_IO_CHUNK);
	int64_t total = 0;

	if (!buf)
		return wal_fail(e, WAL_ENOMEM, "out of memory");
	if (sha256_hex) {
		md = EVP_MD_CTX_new();
		if (!md || EVP_DigestInit_ex(md, EVP_sha256(), NULL) != 1) {
			rc = wal_fail(e, WAL_ENOMEM, "cannot start a sha-256 digest");
			goto out;
		}
	}
	for (;;) {
		size_t got = 0;
		rc = src->read(src, buf, WAL_IO_CHUNK, &got, e);
		if (rc != WAL_OK)
			goto out;
		if (got == 0)
			break;
		if (md)
			EVP_DigestUpdate(md, buf, got);
		total += (int64_t)got;
	}
	if (md) {
		unsigned char digest[32];
		unsigned int len = 0;
		EVP_DigestFinal_ex(md, digest, &len);
		for (unsigned int i = 0; i < len; i++)
			snprintf(sha256_hex + 2 * i, 3, "%02x", digest[i]);
	}
	src->size = total;
	rc = src->rewind(src, e);
out:
	EVP_MD_CTX_free(md);
	free(buf);
	return rc;
}
