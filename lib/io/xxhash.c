/*
 * xxHash (XXH32 and XXH64, by Yann Collet's specification), streaming.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "io/xxhash.h"

#define WAL_XXH_CHUNK (256 * 1024)

/* ---- XXH32, streaming (the frame's header and content checksums) ---------- */

#define P1 0x9E3779B1u
#define P2 0x85EBCA77u
#define P3 0xC2B2AE3Du
#define P4 0x27D4EB2Fu
#define P5 0x165667B1u

static uint32_t rotl(uint32_t x, int r)
{
	return (x << r) | (x >> (32 - r));
}

static uint32_t read32(const unsigned char *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static uint32_t xxh_round(uint32_t acc, uint32_t input)
{
	return rotl(acc + input * P2, 13) * P1;
}

void wal_xxh32_init(wal_xxh32 *h, uint32_t seed)
{
	memset(h, 0, sizeof(*h));
	h->v[0] = seed + P1 + P2;
	h->v[1] = seed + P2;
	h->v[2] = seed;
	h->v[3] = seed - P1;
	h->seed = seed;
}

void wal_xxh32_update(wal_xxh32 *h, const void *data, size_t len)
{
	const unsigned char *p = data;
	h->total += len;
	if (h->mem_len + len < 16) {
		memcpy(h->mem + h->mem_len, p, len);
		h->mem_len += (uint32_t)len;
		return;
	}
	if (h->mem_len) {
		size_t fill = 16 - h->mem_len;
		memcpy(h->mem + h->mem_len, p, fill);
		for (int i = 0; i < 4; i++)
			h->v[i] = xxh_round(h->v[i], read32(h->mem + 4 * i));
		p += fill;
		len -= fill;
		h->mem_len = 0;
	}
	while (len >= 16) {
		h->v[0] = xxh_round(h->v[0], read32(p));
		h->v[1] = xxh_round(h->v[1], read32(p + 4));
		h->v[2] = xxh_round(h->v[2], read32(p + 8));
		h->v[3] = xxh_round(h->v[3], read32(p + 12));
		p += 16;
		len -= 16;
	}
	memcpy(h->mem, p, len);
	h->mem_len = (uint32_t)len;
}

uint32_t wal_xxh32_digest(const wal_xxh32 *h)
{
	uint32_t acc;
	if (h->total >= 16)
		acc = rotl(h->v[0], 1) + rotl(h->v[1], 7) + rotl(h->v[2], 12) + rotl(h->v[3], 18);
	else
		acc = h->seed + P5;
	acc += (uint32_t)h->total;
	const unsigned char *p = h->mem, *end = h->mem + h->mem_len;
	for (; p + 4 <= end; p += 4)
		acc = rotl(acc + read32(p) * P3, 17) * P4;
	for (; p < end; p++)
		acc = rotl(acc + *p * P5, 11) * P1;
	acc ^= acc >> 15;
	acc *= P2;
	acc ^= acc >> 13;
	acc *= P3;
	acc ^= acc >> 16;
	return acc;
}


/* ---- XXH64 -------------------------------------------------------------- */

#define Q1 0x9E3779B185EBCA87ull
#define Q2 0xC2B2AE3D27D4EB4Full
#define Q3 0x165667B19E3779F9ull
#define Q4 0x85EBCA77C2B2AE63ull
#define Q5 0x27D4EB2F165667C5ull

static uint64_t rotl64(uint64_t x, int r)
{
	return (x << r) | (x >> (64 - r));
}

/* one load (two 32-bit halves put together halve XXH64's speed at -O2) */
static uint64_t read64(const unsigned char *p)
{
	uint64_t v;
	memcpy(&v, p, sizeof(v));
#if __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
	v = __builtin_bswap64(v);
#endif
	return v;
}

static uint64_t xxh64_round(uint64_t acc, uint64_t input)
{
	return rotl64(acc + input * Q2, 31) * Q1;
}

static uint64_t xxh64_merge(uint64_t acc, uint64_t val)
{
	acc ^= xxh64_round(0, val);
	return acc * Q1 + Q4;
}

void wal_xxh64_init(wal_xxh64 *h, uint64_t seed)
{
	memset(h, 0, sizeof(*h));
	h->v[0] = seed + Q1 + Q2;
	h->v[1] = seed + Q2;
	h->v[2] = seed;
	h->v[3] = seed - Q1;
	h->seed = seed;
}

void wal_xxh64_update(wal_xxh64 *h, const void *data, size_t len)
{
	const unsigned char *p = data;
	h->total += len;
	if (h->mem_len + len < 32) {
		memcpy(h->mem + h->mem_len, p, len);
		h->mem_len += (uint32_t)len;
		return;
	}
	if (h->mem_len) {
		size_t fill = 32 - h->mem_len;
		memcpy(h->mem + h->mem_len, p, fill);
		for (int i = 0; i < 4; i++)
			h->v[i] = xxh64_round(h->v[i], read64(h->mem + 8 * i));
		p += fill;
		len -= fill;
		h->mem_len = 0;
	}
	while (len >= 32) {
		h->v[0] = xxh64_round(h->v[0], read64(p));
		h->v[1] = xxh64_round(h->v[1], read64(p + 8));
		h->v[2] = xxh64_round(h->v[2], read64(p + 16));
		h->v[3] = xxh64_round(h->v[3], read64(p + 24));
		p += 32;
		len -= 32;
	}
	memcpy(h->mem, p, len);
	h->mem_len = (uint32_t)len;
}

uint64_t wal_xxh64_digest(const wal_xxh64 *h)
{
	uint64_t acc;
	if (h->total >= 32) {
		acc = rotl64(h->v[0], 1) + rotl64(h->v[1], 7) + rotl64(h->v[2], 12) +
		      rotl64(h->v[3], 18);
		for (int i = 0; i < 4; i++)
			acc = xxh64_merge(acc, h->v[i]);
	} else
		acc = h->seed + Q5;
	acc += h->total;
	const unsigned char *p = h->mem, *end = h->mem + h->mem_len;
	for (; p + 8 <= end; p += 8)
		acc = rotl64(acc ^ xxh64_round(0, read64(p)), 27) * Q1 + Q4;
	if (p + 4 <= end) {
		acc = rotl64(acc ^ ((uint64_t)read32(p) * Q1), 23) * Q2 + Q3;
		p += 4;
	}
	for (; p < end; p++)
		acc = rotl64(acc ^ (*p * Q5), 11) * Q1;
	acc ^= acc >> 33;
	acc *= Q2;
	acc ^= acc >> 29;
	acc *= Q3;
	acc ^= acc >> 32;
	return acc;
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
