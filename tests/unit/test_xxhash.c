/*
 * Unit tests of lib/xxhash.c: XXH32 and XXH64 must give, bit for bit, the
 * digests of the implementation walarchive carried before it used libxxhash
 * (lib/xxhash.c of f323714), since LZ4 frames, push-ahead records and spool
 * names written by earlier releases hold them.  The vectors below were
 * computed with that implementation, and agree with xxhsum -H0 / -H1.
 */
#include <criterion/criterion.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "io/xxhash.h"

#define SEG_SIZE (16u << 20)

/* Bytes no hash can shortcut: the top byte of a xorshift64 sequence. */
static void fill(unsigned char *p, size_t n)
{
	uint64_t x = 0x9E3779B97F4A7C15ull;
	for (size_t i = 0; i < n; i++) {
		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
		p[i] = (unsigned char)(x >> 56);
	}
}

/* Every length around the 4-, 8-, 16- and 32-byte steps of both hashes, a
 * length past a 256 KiB chunk, a segment; seed 0 (what walarchive uses) and
 * one other. */
static const struct vector {
	size_t len;
	int seeded;
	uint32_t xxh32;
	uint64_t xxh64;
} vectors[] = {
	{ 0, 0, 0x02cc5d05u, 0xef46db3751d8e999ull },
	{ 0, 1, 0x36b78ae7u, 0x9aadff3ee38d8e67ull },
	{ 1, 0, 0x276fb8e3u, 0xa8b77899b16d622dull },
	{ 1, 1, 0xc158a6a2u, 0x124d1f512a9a258eull },
	{ 3, 0, 0xe6c27a3eu, 0xdbde4019aada25f5ull },
	{ 3, 1, 0x0abc1049u, 0xbc8df9be46c69469ull },
	{ 4, 0, 0x64d308ddu, 0x7eb7addc07e29926ull },
	{ 4, 1, 0xfa3b6140u, 0xb75000b11e031ca3ull },
	{ 5, 0, 0x4d2a6cc6u, 0x156f14c6c87744abull },
	{ 5, 1, 0x8e39a999u, 0x948748eddee9135full },
	{ 7, 0, 0x0e9a2244u, 0x3ceea39c4b639bd8ull },
	{ 7, 1, 0x0fba6abcu, 0xe50c71b0663c2f4dull },
	{ 8, 0, 0x59b30a8eu, 0x4263ae261afe7da0ull },
	{ 8, 1, 0x9c4a264fu, 0x38063e6e2a9ebe57ull },
	{ 9, 0, 0xbf2852f1u, 0xe5b6b1065bfc729eull },
	{ 9, 1, 0x49d7a9efu, 0x649a4144851dec51ull },
	{ 15, 0, 0x51e8e02eu, 0x4f5ac534cb03be85ull },
	{ 15, 1, 0xbf8ca8b1u, 0xef974f9ca85a10e0ull },
	{ 16, 0, 0x270acee9u, 0xa8d86581dec3734aull },
	{ 16, 1, 0x681f575au, 0x305f51dbbf67229bull },
	{ 17, 0, 0x8a4dcfd8u, 0xac6ba8b0c60502e7ull },
	{ 17, 1, 0xd1fa6138u, 0x22e17e5ef19b5373ull },
	{ 31, 0, 0x65a6eb10u, 0xb6bb8dd37adfdce9ull },
	{ 31, 1, 0x14abf4e7u, 0xe99ec3a9de1ba5fbull },
	{ 32, 0, 0x30c15300u, 0x883b86a02aad1cddull },
	{ 32, 1, 0x7cdc52b6u, 0x69518ab46372b503ull },
	{ 33, 0, 0x6abed72au, 0x07db3e957718e049ull },
	{ 33, 1, 0xe0f64d25u, 0x8950f485647701a9ull },
	{ 63, 0, 0x261acf7du, 0x3cc99396412fe11cull },
	{ 63, 1, 0x2d53dae0u, 0xa15eac15d5f43bd5ull },
	{ 64, 0, 0x6fd2b822u, 0x22944b22485c9f74ull },
	{ 64, 1, 0xafcf1592u, 0xc326c382b02dd28bull },
	{ 65, 0, 0x34d83807u, 0xc79647bf4ebce58cull },
	{ 65, 1, 0x4e8cf37cu, 0x64f32ead95288eebull },
	{ 100, 0, 0x61b5fb3eu, 0x277ea9e3ec050559ull },
	{ 100, 1, 0x3e57636cu, 0x9c5460c6b4adb72aull },
	{ 1000, 0, 0xf6a38de7u, 0xc3cf7108b1dbbeeeull },
	{ 1000, 1, 0x0ab7e170u, 0x8f566cd1db5ad63full },
	{ 262157, 0, 0x455332abu, 0xdbcac844ed23b27dull },
	{ 262157, 1, 0x69ea8847u, 0x94374e61b8bdc4bcull },
	{ 16777216, 0, 0xd03cb3cdu, 0x42fff58e1816de48ull },
	{ 16777216, 1, 0x6cbc1b23u, 0x501ce2653a9208f0ull },
};

#define SEED32 0x9E3779B1u
#define SEED64 0x27D4EB2F165667C5ull

static unsigned char *segment(void)
{
	static unsigned char *seg;
	if (!seg) {
		seg = malloc(SEG_SIZE);
		cr_assert_not_null(seg);
		fill(seg, SEG_SIZE);
	}
	return seg;
}

Test(xxhash, known_vectors_one_shot)
{
	const unsigned char *seg = segment();
	for (size_t i = 0; i < sizeof(vectors) / sizeof(vectors[0]); i++) {
		const struct vector *v = &vectors[i];
		cr_assert_eq(wal_xxh32_oneshot(seg, v->len, v->seeded ? SEED32 : 0), v->xxh32,
			     "XXH32 of %zu bytes, seeded %d", v->len, v->seeded);
		cr_assert_eq(wal_xxh64_oneshot(seg, v->len, v->seeded ? SEED64 : 0), v->xxh64,
			     "XXH64 of %zu bytes, seeded %d", v->len, v->seeded);
	}
}

Test(xxhash, known_vectors_streaming_in_uneven_pieces)
{
	const unsigned char *seg = segment();
	static const size_t pieces[] = { 1, 3, 7, 13, 31, 33, 4096, 262144 };
	for (size_t i = 0; i < sizeof(vectors) / sizeof(vectors[0]); i++) {
		const struct vector *v = &vectors[i];
		for (size_t k = 0; k < sizeof(pieces) / sizeof(pieces[0]); k++) {
			if (v->len > 100000 && pieces[k] < 4096)
				continue; /* the long ones in bigger pieces only */
			wal_xxh32 h32;
			wal_xxh64 h64;
			wal_xxh32_init(&h32, v->seeded ? SEED32 : 0);
			wal_xxh64_init(&h64, v->seeded ? SEED64 : 0);
			for (size_t off = 0; off < v->len; off += pieces[k]) {
				size_t n = v->len - off < pieces[k] ? v->len - off : pieces[k];
				wal_xxh32_update(&h32, seg + off, n);
				wal_xxh64_update(&h64, seg + off, n);
			}
			wal_xxh32_update(&h32, NULL, 0);
			cr_assert_eq(wal_xxh32_digest(&h32), v->xxh32,
				     "XXH32 of %zu bytes in pieces of %zu", v->len, pieces[k]);
			cr_assert_eq(wal_xxh64_digest(&h64), v->xxh64,
				     "XXH64 of %zu bytes in pieces of %zu", v->len, pieces[k]);
		}
	}
}

Test(xxhash, digest_leaves_the_state_usable)
{
	const unsigned char *seg = segment();
	wal_xxh64 h;
	wal_xxh64_init(&h, 0);
	wal_xxh64_update(&h, seg, 500);
	(void)wal_xxh64_digest(&h);
	wal_xxh64 copy = h;
	wal_xxh64_update(&h, seg + 500, 500);
	cr_assert_eq(wal_xxh64_digest(&h), 0xc3cf7108b1dbbeeeull,
		     "XXH64 of 1000 bytes, digested half way");
	wal_xxh64_update(&copy, seg + 500, 500);
	cr_assert_eq(wal_xxh64_digest(&copy), 0xc3cf7108b1dbbeeeull,
		     "a copied state goes on alone");
}

/* The spool names and push-ahead records: 16 lowercase hex digits of XXH64. */
Test(xxhash, file_hash_is_16_lowercase_hex_digits)
{
	char path[] = "/tmp/walarchive-xxhash.XXXXXX";
	int fd = mkstemp(path);
	cr_assert(fd >= 0);
	unlink(path);
	cr_assert_eq(write(fd, segment(), SEG_SIZE), (ssize_t)SEG_SIZE);
	char hex[17];
	uint64_t size = 0;
	wal_error e;
	cr_assert_eq(wal_xxh64_fd(fd, path, &size, hex, &e), WAL_OK);
	cr_assert_eq(size, SEG_SIZE);
	cr_assert_str_eq(hex, "42fff58e1816de48");
	cr_assert_eq(lseek(fd, 0, SEEK_CUR), (off_t)SEG_SIZE, "the file offset does not move");
	cr_assert_eq(ftruncate(fd, 33), 0);
	cr_assert_eq(wal_xxh64_fd(fd, path, &size, hex, &e), WAL_OK);
	cr_assert_eq(size, 33);
	cr_assert_str_eq(hex, "07db3e957718e049", "a leading zero is kept");
	cr_assert_eq(ftruncate(fd, 0), 0);
	cr_assert_eq(wal_xxh64_fd(fd, path, &size, hex, &e), WAL_OK);
	cr_assert_eq(size, 0);
	cr_assert_str_eq(hex, "ef46db3751d8e999");
	close(fd);
}
