/*
 * XXH32 and XXH64 through libxxhash (see xxhash.h), and the hash of a file.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

/* libxxhash's header; the state structures, to check their size */
#define XXH_STATIC_LINKING_ONLY
#include <xxhash.h>
#include "io/xxhash.h"

#define WAL_XXH_CHUNK (256 * 1024)

_Static_assert(sizeof(XXH32_state_t) <= sizeof(((wal_xxh32 *)0)->state) &&
		       _Alignof(XXH32_state_t) <= 8,
	       "wal_xxh32 has no room for libxxhash's XXH32_state_t");
_Static_assert(sizeof(XXH64_state_t) <= sizeof(((wal_xxh64 *)0)->state) &&
		       _Alignof(XXH64_state_t) <= 8,
	       "wal_xxh64 has no room for libxxhash's XXH64_state_t");

void wal_xxh32_init(wal_xxh32 *h, uint32_t seed)
{
	XXH32_reset((XXH32_state_t *)(void *)h->state, seed);
}

void wal_xxh32_update(wal_xxh32 *h, const void *data, size_t len)
{
	XXH32_update((XXH32_state_t *)(void *)h->state, data, len);
}

uint32_t wal_xxh32_digest(const wal_xxh32 *h)
{
	return XXH32_digest((const XXH32_state_t *)(const void *)h->state);
}

uint32_t wal_xxh32_oneshot(const void *data, size_t len, uint32_t seed)
{
	return XXH32(data, len, seed);
}

void wal_xxh64_init(wal_xxh64 *h, uint64_t seed)
{
	XXH64_reset((XXH64_state_t *)(void *)h->state, seed);
}

void wal_xxh64_update(wal_xxh64 *h, const void *data, size_t len)
{
	XXH64_update((XXH64_state_t *)(void *)h->state, data, len);
}

uint64_t wal_xxh64_digest(const wal_xxh64 *h)
{
	return XXH64_digest((const XXH64_state_t *)(const void *)h->state);
}

uint64_t wal_xxh64_oneshot(const void *data, size_t len, uint64_t seed)
{
	return XXH64(data, len, seed);
}

wal_err wal_xxh64_fd(int fd, const char *path, uint64_t *size, char hex[17], wal_error *e)
{
	unsigned char *buf = malloc(WAL_XXH_CHUNK);
	wal_xxh64 h;
	uint64_t offset = 0;
	if (!buf)
		return wal_fail(e, WAL_ENOMEM, "out of memory");
	wal_xxh64_init(&h, 0);
	for (;;) {
		ssize_t n = pread(fd, buf, WAL_XXH_CHUNK, (off_t)offset);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			int saved = errno;
			free(buf);
			return wal_fail_errno(e, WAL_EIO, saved, "%s: cannot read", path);
		}
		if (n == 0)
			break;
		wal_xxh64_update(&h, buf, (size_t)n);
		offset += (uint64_t)n;
	}
	free(buf);
	snprintf(hex, 17, "%016llx", (unsigned long long)wal_xxh64_digest(&h));
	*size = offset;
	return WAL_OK;
}
