/*
 * Measuring a source (length and SHA-256) before an upload that must
 * announce them, and hashing files for push-ahead's records (libcrypto).
 */
#include <errno.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "stream.h"

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

static void to_hex(const unsigned char *digest, unsigned int len, char *hex)
{
	for (unsigned int i = 0; i < len; i++)
		snprintf(hex + 2 * i, 3, "%02x", digest[i]);
}

wal_err wal_sha256_fd(int fd, const char *path, uint64_t *size, char hex[65], wal_error *e)
{
	wal_err rc = WAL_OK;
	unsigned char *buf = malloc(WAL_IO_CHUNK);
	EVP_MD_CTX *md = EVP_MD_CTX_new();
	uint64_t offset = 0;
	if (!buf || !md || EVP_DigestInit_ex(md, EVP_sha256(), NULL) != 1) {
		rc = wal_fail(e, WAL_ENOMEM, "out of memory");
		goto out;
	}
	for (;;) {
		ssize_t n = pread(fd, buf, WAL_IO_CHUNK, (off_t)offset);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			rc = wal_fail_errno(e, WAL_EIO, errno, "%s: cannot read", path);
			goto out;
		}
		if (n == 0)
			break;
		EVP_DigestUpdate(md, buf, (size_t)n);
		offset += (uint64_t)n;
	}
	unsigned char digest[32];
	unsigned int len = 0;
	EVP_DigestFinal_ex(md, digest, &len);
	to_hex(digest, len, hex);
	*size = offset;
out:
	EVP_MD_CTX_free(md);
	free(buf);
	return rc;
}

static wal_err hash_read(wal_source *base, void *buf, size_t cap, size_t *got, wal_error *e)
{
	wal_hash_source *src = (wal_hash_source *)base;
	wal_err rc = src->inner->read(src->inner, buf, cap, got, e);
	if (rc != WAL_OK)
		return rc;
	if (*got > 0) {
		EVP_DigestUpdate(src->md, buf, *got);
		src->bytes += *got;
	} else if (!src->hex[0]) {
		unsigned char digest[32];
		unsigned int len = 0;
		EVP_DigestFinal_ex(src->md, digest, &len);
		to_hex(digest, len, src->hex);
		src->base.size = (int64_t)src->bytes;
	}
	return WAL_OK;
}

static wal_err hash_rewind(wal_source *base, wal_error *e)
{
	wal_hash_source *src = (wal_hash_source *)base;
	wal_err rc = src->inner->rewind(src->inner, e);
	if (rc != WAL_OK)
		return rc;
	src->hex[0] = '\0';
	src->bytes = 0;
	if (EVP_DigestInit_ex(src->md, EVP_sha256(), NULL) != 1)
		return wal_fail(e, WAL_ENOMEM, "cannot start a sha-256 digest");
	return WAL_OK;
}

wal_err wal_hash_source_init(wal_hash_source *src, wal_source *inner, wal_error *e)
{
	memset(src, 0, sizeof(*src));
	src->base.read = hash_read;
	src->base.rewind = hash_rewind;
	src->base.size = inner->size;
	src->inner = inner;
	src->md = EVP_MD_CTX_new();
	if (!src->md || EVP_DigestInit_ex(src->md, EVP_sha256(), NULL) != 1) {
		wal_hash_source_free(src);
		return wal_fail(e, WAL_ENOMEM, "cannot start a sha-256 digest");
	}
	return WAL_OK;
}

void wal_hash_source_free(wal_hash_source *src)
{
	EVP_MD_CTX_free(src->md);
	src->md = NULL;
}
