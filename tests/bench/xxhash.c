/*
 * Times XXH32 (the LZ4 frame checksum) and XXH64 (push-ahead records, spool
 * names) over a 16 MiB segment: walarchive's own implementation, as it was
 * before libxxhash replaced it, beside Debian's libxxhash, both through the
 * streaming calls walarchive makes (init, updates of 256 KiB, digest).
 * tests/bench/xxhash.sh builds and runs it.  Prints MB/s (10^6 bytes) as the
 * median of the runs, and the ratio libxxhash / ours; it checks that both
 * give the same digests and asserts nothing about time.
 *
 *   xxhash-bench [RUNS]      (default 101)
 *
 * A run hashes the segment once with each, in turn: on a shared machine a
 * run of a millisecond or two is mostly left alone, and the median drops
 * the ones that were not (runs of 8 hashes each varied by +-15% here).
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <xxhash.h>	 /* libxxhash */
#include "xxhash_ours.h" /* walarchive's lib/xxhash.h of that revision */

#define SEG_SIZE (16u << 20)
#define CHUNK (256u << 10)

static unsigned char *seg;
static volatile uint64_t sink;

static double now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static uint64_t ours32(void)
{
	wal_xxh32 h;
	wal_xxh32_init(&h, 0);
	for (size_t off = 0; off < SEG_SIZE; off += CHUNK)
		wal_xxh32_update(&h, seg + off, CHUNK);
	return wal_xxh32_digest(&h);
}

static uint64_t lib32(void)
{
	XXH32_state_t *h = XXH32_createState();
	XXH32_reset(h, 0);
	for (size_t off = 0; off < SEG_SIZE; off += CHUNK)
		XXH32_update(h, seg + off, CHUNK);
	uint64_t d = XXH32_digest(h);
	XXH32_freeState(h);
	return d;
}

static uint64_t ours64(void)
{
	wal_xxh64 h;
	wal_xxh64_init(&h, 0);
	for (size_t off = 0; off < SEG_SIZE; off += CHUNK)
		wal_xxh64_update(&h, seg + off, CHUNK);
	return wal_xxh64_digest(&h);
}

static uint64_t lib64(void)
{
	XXH64_state_t *h = XXH64_createState();
	XXH64_reset(h, 0);
	for (size_t off = 0; off < SEG_SIZE; off += CHUNK)
		XXH64_update(h, seg + off, CHUNK);
	uint64_t d = XXH64_digest(h);
	XXH64_freeState(h);
	return d;
}

/* MB/s of one hash of the segment */
static double rate(uint64_t (*fn)(void))
{
	double t0 = now();
	sink += fn();
	return (double)SEG_SIZE / 1e6 / (now() - t0);
}

static int cmp(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return (x > y) - (x < y);
}

static double median(double *v, int n)
{
	qsort(v, (size_t)n, sizeof(*v), cmp);
	return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

int main(int argc, char **argv)
{
	int runs = argc > 1 ? atoi(argv[1]) : 101;
	if (runs < 1 || runs > 100000) {
		fprintf(stderr, "usage: xxhash-bench [RUNS]\n");
		return 2;
	}
	seg = malloc(SEG_SIZE);
	double *r[4];
	for (int k = 0; k < 4; k++)
		r[k] = malloc(sizeof(double) * (size_t)runs);
	if (!seg || !r[0] || !r[1] || !r[2] || !r[3])
		return 1;
	uint64_t x = 0x9E3779B97F4A7C15ull; /* xorshift: bytes no hash can shortcut */
	for (size_t i = 0; i < SEG_SIZE; i += 8) {
		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
		memcpy(seg + i, &x, 8);
	}
	if (ours32() != lib32() || ours64() != lib64()) {
		fprintf(stderr, "xxhash-bench: the digests differ\n");
		return 1;
	}
	/* interleaved, so that a slower moment of a shared machine hits both */
	for (int i = 0; i < runs; i++) {
		r[0][i] = rate(ours32);
		r[1][i] = rate(lib32);
		r[2][i] = rate(ours64);
		r[3][i] = rate(lib64);
	}
	printf("16 MiB segment, %u KiB updates, median of %d runs; digests identical\n",
	       CHUNK >> 10, runs);
	printf("%-6s %14s %14s %22s\n", "", "ours MB/s", "libxxhash MB/s", "ratio libxxhash/ours");
	const char *names[2] = { "XXH32", "XXH64" };
	for (int k = 0; k < 2; k++) {
		double ours = median(r[2 * k], runs), lib = median(r[2 * k + 1], runs);
		printf("%-6s %14.0f %14.0f %22.2f\n", names[k], ours, lib, lib / ours);
	}
	for (int k = 0; k < 4; k++)
		free(r[k]);
	free(seg);
	return 0;
}
