/*
 * Unit tests for walheader.h: the long page header of WAL written by real
 * PostgreSQL 11..18 clusters (tests/fixtures/pgNN, see make-fixtures.sh),
 * version detection, and refusal of headers that disagree with the file.
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pg/walheader.h"
#include "pg/walname.h"

#define XLP_LONG_HEADER 0x0002

typedef struct fixture_info {
	char segment[64];
	uint64_t seg_size;
	uint64_t system_id;
	unsigned magic;
	unsigned info;
	uint32_t tli;
	uint64_t pageaddr;
	uint32_t block_size;
	int major;
} fixture_info;

static const char *fixture_dirs[] = { "pg11",	  "pg12", "pg13", "pg14", "pg15",
				      "pg15-1mb", "pg16", "pg17", "pg18" };
#define N_FIXTURES (sizeof(fixture_dirs) / sizeof(fixture_dirs[0]))

/* Reads tests/fixtures/<dir>/INFO (key=value lines). */
static void read_info(const char *dir, fixture_info *fi)
{
	char path[512], line[512];
	FILE *f;

	memset(fi, 0, sizeof(*fi));
	snprintf(path, sizeof(path), "%s/%s/INFO", WAL_TEST_FIXTURES, dir);
	f = fopen(path, "r");
	cr_assert_not_null(f, "fixture %s missing", path);
	while (fgets(line, sizeof(line), f)) {
		char *eq = strchr(line, '=');
		if (line[0] == '#' || !eq)
			continue;
		*eq = '\0';
		char *val = eq + 1;
		val[strcspn(val, "\n")] = '\0';
		if (!strcmp(line, "source_segment"))
			snprintf(fi->segment, sizeof(fi->segment), "%s", val);
		else if (!strcmp(line, "segment_size"))
			fi->seg_size = strtoull(val, NULL, 0);
		else if (!strcmp(line, "system_identifier"))
			fi->system_id = strtoull(val, NULL, 10);
		else if (!strcmp(line, "magic"))
			fi->magic = (unsigned)strtoul(val, NULL, 0);
		else if (!strcmp(line, "xlp_info"))
			fi->info = (unsigned)strtoul(val, NULL, 0);
		else if (!strcmp(line, "timeline"))
			fi->tli = (uint32_t)strtoul(val, NULL, 0);
		else if (!strcmp(line, "page_address"))
			fi->pageaddr = strtoull(val, NULL, 0);
		else if (!strcmp(line, "wal_block_size"))
			fi->block_size = (uint32_t)strtoul(val, NULL, 0);
		else if (!strcmp(line, "server_version"))
			fi->major = atoi(val);
	}
	fclose(f);
	cr_assert(fi->segment[0] && fi->seg_size && fi->system_id && fi->magic && fi->major,
		  "fixture %s INFO incomplete", path);
}

static void read_page(const char *dir, unsigned char *buf, size_t len)
{
	char path[512];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s/wal-first-page.bin", WAL_TEST_FIXTURES, dir);
	f = fopen(path, "rb");
	cr_assert_not_null(f, "fixture %s missing", path);
	cr_assert_eq(fread(buf, 1, len, f), len, "fixture %s short", path);
	fclose(f);
}

static void put16(unsigned char *p, uint16_t v)
{
	memcpy(p, &v, 2);
}
static void put32(unsigned char *p, uint32_t v)
{
	memcpy(p, &v, 4);
}
static void put64(unsigned char *p, uint64_t v)
{
	memcpy(p, &v, 8);
}

/* XLogLongPageHeaderData, little-endian as on x86-64. */
static void build_header(unsigned char *buf, uint16_t magic, uint16_t info, uint32_t tli,
			 uint64_t pageaddr, uint64_t sysid, uint32_t seg_size, uint32_t blcksz)
{
	memset(buf, 0, WAL_LONG_HEADER_SIZE);
	put16(buf + 0, magic);
	put16(buf + 2, info);
	put32(buf + 4, tli);
	put64(buf + 8, pageaddr);
	put32(buf + 16, 0); /* xlp_rem_len */
	put64(buf + 24, sysid);
	put32(buf + 32, seg_size);
	put32(buf + 36, blcksz);
}

static wal_name parse(const char *text)
{
	wal_name n;
	wal_error e;

	cr_assert_eq(wal_name_parse(text, &n, &e), WAL_OK, "parse %s: %s", text, e.msg);
	return n;
}

Test(walheader, magic_table)
{
	static const struct {
		int v;
		uint16_t magic;
	} known[] = {
		{ 11, 0xD098 }, { 12, 0xD101 }, { 13, 0xD106 }, { 14, 0xD10D },
		{ 15, 0xD110 }, { 16, 0xD113 }, { 17, 0xD116 }, { 18, 0xD118 },
	};
	for (size_t i = 0; i < sizeof(known) / sizeof(known[0]); i++) {
		cr_assert_eq(wal_magic_version(known[i].magic), known[i].v, "magic 0x%04X",
			     known[i].magic);
		cr_assert_eq(wal_version_magic(known[i].v), known[i].magic, "version %d",
			     known[i].v);
	}
	cr_assert_eq(wal_magic_version(0xD097), 0, "PostgreSQL 10 is not supported");
	cr_assert_eq(wal_magic_version(0), 0);
	cr_assert_eq(wal_magic_version(0xFFFF), 0);
	cr_assert_eq(wal_version_magic(10), 0);
	cr_assert_eq(wal_version_magic(19), 0);
	cr_assert_eq(wal_version_magic(0), 0);
}

/* Every real fixture decodes to what its INFO file says. */
Test(walheader, real_fixtures_decode)
{
	for (size_t i = 0; i < N_FIXTURES; i++) {
		fixture_info fi;
		unsigned char page[8192];
		wal_header h;
		wal_error e;

		read_info(fixture_dirs[i], &fi);
		read_page(fixture_dirs[i], page, sizeof(page));
		wal_error_clear(&e);
		cr_assert_eq(wal_header_decode(page, sizeof(page), &h, &e), WAL_OK, "%s: %s",
			     fixture_dirs[i], e.msg);
		cr_assert_eq(h.magic, fi.magic, "%s magic", fixture_dirs[i]);
		cr_assert_eq(h.info, fi.info, "%s info", fixture_dirs[i]);
		cr_assert_eq(h.pg_version, fi.major, "%s version %d, expected %d", fixture_dirs[i],
			     h.pg_version, fi.major);
		cr_assert_eq(wal_magic_version(h.magic), fi.major, "%s", fixture_dirs[i]);
		cr_assert_eq(h.system_id, fi.system_id, "%s system id", fixture_dirs[i]);
		cr_assert_eq(h.seg_size, fi.seg_size, "%s seg size", fixture_dirs[i]);
		cr_assert_eq(h.tli, fi.tli, "%s tli", fixture_dirs[i]);
		cr_assert_eq(h.pageaddr, fi.pageaddr, "%s pageaddr", fixture_dirs[i]);
		cr_assert_eq(h.block_size, fi.block_size, "%s block size", fixture_dirs[i]);

		/* only the first 40 bytes are needed */
		cr_assert_eq(wal_header_decode(page, WAL_LONG_HEADER_SIZE, &h, &e), WAL_OK,
			     "%s: %s", fixture_dirs[i], e.msg);
		cr_assert_eq(h.system_id, fi.system_id);
	}
}

/* Each fixture's header matches its own name and size, and nothing else. */
Test(walheader, real_fixtures_check)
{
	for (size_t i = 0; i < N_FIXTURES; i++) {
		fixture_info fi;
		unsigned char page[8192];
		wal_header h;
		wal_error e;
		wal_name n;
		char other[25], partial[sizeof(fi.segment) + 16];
		uint64_t segno;

		read_info(fixture_dirs[i], &fi);
		read_page(fixture_dirs[i], page, sizeof(page));
		cr_assert_eq(wal_header_decode(page, sizeof(page), &h, &e), WAL_OK, "%s", e.msg);
		n = parse(fi.segment);
		cr_assert_eq(wal_header_check(&h, &n, fi.seg_size, &e), WAL_OK, "%s: %s",
			     fixture_dirs[i], e.msg);

		snprintf(partial, sizeof(partial), "%s.partial", fi.segment);
		n = parse(partial);
		cr_assert_eq(wal_header_check(&h, &n, fi.seg_size, &e), WAL_OK, "%s partial: %s",
			     fixture_dirs[i], e.msg);

		/* wrong size: truncated, one byte more, the other common size */
		n = parse(fi.segment);
		cr_assert_eq(wal_header_check(&h, &n, fi.seg_size - 1, &e), WAL_ENOTWAL,
			     "%s truncated", fixture_dirs[i]);
		cr_assert_eq(wal_header_check(&h, &n, fi.seg_size + 1, &e), WAL_ENOTWAL);
		cr_assert_eq(wal_header_check(&h, &n, 8192, &e), WAL_ENOTWAL);
		cr_assert_eq(wal_header_check(&h, &n, 0, &e), WAL_ENOTWAL);
		cr_assert(e.msg[0], "refusal must say why");

		/* the next segment's name */
		cr_assert_eq(wal_name_segno(&n, (uint32_t)fi.seg_size, &segno, &e), WAL_OK);
		wal_segment_name(fi.tli, segno + 1, (uint32_t)fi.seg_size, other);
		n = parse(other);
		cr_assert_eq(wal_header_check(&h, &n, fi.seg_size, &e), WAL_ENOTWAL,
			     "%s header accepted under name %s", fixture_dirs[i], other);
		/* a later timeline, same position: the first segment of a new
		 * timeline starts as a copy of the old one, header and all */
		wal_segment_name(fi.tli + 1, segno, (uint32_t)fi.seg_size, other);
		n = parse(other);
		cr_assert_eq(wal_header_check(&h, &n, fi.seg_size, &e), WAL_OK,
			     "%s header refused under name %s: %s", fixture_dirs[i], other, e.msg);
		/* but a header of a later timeline than its name's is not that file */
		wal_segment_name(fi.tli, segno, (uint32_t)fi.seg_size, other);
		n = parse(other);
		wal_header later = h;
		later.tli = fi.tli + 1;
		cr_assert_eq(wal_header_check(&later, &n, fi.seg_size, &e), WAL_ENOTWAL,
			     "%s header of timeline %u accepted under name %s", fixture_dirs[i],
			     later.tli, other);
	}
}

Test(walheader, synthetic_all_versions_and_sizes)
{
	for (int v = 11; v <= 18; v++) {
		for (int k = 20; k <= 30; k++) {
			uint32_t seg_size = 1u << k;
			uint64_t segno = 3 * wal_segs_per_log(seg_size) + 1;
			unsigned char buf[WAL_LONG_HEADER_SIZE];
			char name[25];
			wal_header h;
			wal_error e;
			wal_name n;

			build_header(buf, wal_version_magic(v), XLP_LONG_HEADER, 5,
				     segno * seg_size, 0x6A1B2C3D4E5F6071ull, seg_size, 8192);
			cr_assert_eq(wal_header_decode(buf, sizeof(buf), &h, &e), WAL_OK,
				     "v%d 2^%d: %s", v, k, e.msg);
			cr_assert_eq(h.pg_version, v);
			cr_assert_eq(h.tli, 5);
			cr_assert_eq(h.pageaddr, segno * seg_size);
			cr_assert_eq(h.system_id, 0x6A1B2C3D4E5F6071ull);
			cr_assert_eq(h.seg_size, seg_size);
			cr_assert_eq(h.block_size, 8192);
			wal_segment_name(5, segno, seg_size, name);
			n = parse(name);
			cr_assert_eq(wal_header_check(&h, &n, seg_size, &e), WAL_OK, "v%d %s: %s",
				     v, name, e.msg);
		}
	}
}

Test(walheader, decode_refuses_non_wal)
{
	unsigned char buf[WAL_LONG_HEADER_SIZE];
	wal_header h;
	wal_error e;

	build_header(buf, 0xD110, XLP_LONG_HEADER, 1, 16u << 20, 42, 16u << 20, 8192);
	cr_assert_eq(wal_header_decode(buf, sizeof(buf), &h, &e), WAL_OK, "%s", e.msg);

	/* too short */
	cr_assert_eq(wal_header_decode(buf, WAL_LONG_HEADER_SIZE - 1, &h, &e), WAL_ENOTWAL);
	cr_assert_eq(wal_header_decode(buf, 0, &h, &e), WAL_ENOTWAL);
	cr_assert(e.msg[0]);

	/* unknown magic: PostgreSQL 10, garbage, zero */
	build_header(buf, 0xD097, XLP_LONG_HEADER, 1, 16u << 20, 42, 16u << 20, 8192);
	cr_assert_eq(wal_header_decode(buf, sizeof(buf), &h, &e), WAL_ENOTWAL);
	memset(buf, 0, sizeof(buf));
	cr_assert_eq(wal_header_decode(buf, sizeof(buf), &h, &e), WAL_ENOTWAL);
	memcpy(buf, "this is a text file, not WAL at all......", WAL_LONG_HEADER_SIZE);
	cr_assert_eq(wal_header_decode(buf, sizeof(buf), &h, &e), WAL_ENOTWAL);

	/* a short page header (not the first page of a segment) */
	build_header(buf, 0xD110, 0x0000, 1, 16u << 20, 42, 16u << 20, 8192);
	cr_assert_eq(wal_header_decode(buf, sizeof(buf), &h, &e), WAL_ENOTWAL);
	build_header(buf, 0xD110, 0x0001, 1, 16u << 20, 42, 16u << 20, 8192);
	cr_assert_eq(wal_header_decode(buf, sizeof(buf), &h, &e), WAL_ENOTWAL);

	/* byte-swapped magic (big-endian writer) */
	build_header(buf, 0x10D0, XLP_LONG_HEADER, 1, 16u << 20, 42, 16u << 20, 8192);
	cr_assert_eq(wal_header_decode(buf, sizeof(buf), &h, &e), WAL_ENOTWAL);
}

Test(walheader, check_refuses_disagreement)
{
	unsigned char buf[WAL_LONG_HEADER_SIZE];
	const uint32_t seg = 16u << 20;
	wal_header h;
	wal_error e;
	wal_name n;

	/* header of 000000020000000100000003 */
	build_header(buf, 0xD110, XLP_LONG_HEADER, 2, (256ull + 3) * seg, 42, seg, 8192);
	cr_assert_eq(wal_header_decode(buf, sizeof(buf), &h, &e), WAL_OK, "%s", e.msg);
	n = parse("000000020000000100000003");
	cr_assert_eq(wal_header_check(&h, &n, seg, &e), WAL_OK, "%s", e.msg);

	n = parse("000000020000000100000004");
	cr_assert_eq(wal_header_check(&h, &n, seg, &e), WAL_ENOTWAL, "pageaddr disagrees");
	n = parse("000000020000000000000003");
	cr_assert_eq(wal_header_check(&h, &n, seg, &e), WAL_ENOTWAL, "log disagrees");
	n = parse("000000010000000100000003");
	cr_assert_eq(wal_header_check(&h, &n, seg, &e), WAL_ENOTWAL, "tli disagrees");
	/* a partial of timeline 3 starting at this position: its first page may
	 * still carry timeline 2 (the switch happened inside the segment) */
	n = parse("000000030000000100000003.partial");
	cr_assert_eq(wal_header_check(&h, &n, seg, &e), WAL_OK, "%s", e.msg);
	n = parse("000000010000000100000003.partial");
	cr_assert_eq(wal_header_check(&h, &n, seg, &e), WAL_ENOTWAL, "partial tli too early");
	cr_assert(e.msg[0]);

	/* pageaddr inside the segment instead of at its start */
	build_header(buf, 0xD110, XLP_LONG_HEADER, 2, (256ull + 3) * seg + 8192, 42, seg, 8192);
	cr_assert_eq(wal_header_decode(buf, sizeof(buf), &h, &e), WAL_OK, "%s", e.msg);
	n = parse("000000020000000100000003");
	cr_assert_eq(wal_header_check(&h, &n, seg, &e), WAL_ENOTWAL, "pageaddr not at start");

	/* header claims 1 MiB segments, file is 16 MiB (and the reverse) */
	build_header(buf, 0xD110, XLP_LONG_HEADER, 1, 3ull << 20, 42, 1u << 20, 8192);
	cr_assert_eq(wal_header_decode(buf, sizeof(buf), &h, &e), WAL_OK, "%s", e.msg);
	n = parse("000000010000000000000003");
	cr_assert_eq(wal_header_check(&h, &n, 1u << 20, &e), WAL_OK, "%s", e.msg);
	cr_assert_eq(wal_header_check(&h, &n, 16u << 20, &e), WAL_ENOTWAL);
}

/* A header whose segment size is not one PostgreSQL allows is never accepted. */
Test(walheader, invalid_seg_size_refused)
{
	unsigned char buf[WAL_LONG_HEADER_SIZE];
	wal_header h;
	wal_error e;
	wal_name n = parse("000000010000000000000000");
	uint32_t bad[] = { 0, 8192, 3u << 20, (16u << 20) + 8192, 1u << 31 };

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		build_header(buf, 0xD110, XLP_LONG_HEADER, 1, 0, 42, bad[i], 8192);
		wal_err rc = wal_header_decode(buf, sizeof(buf), &h, &e);
		if (rc == WAL_OK)
			rc = wal_header_check(&h, &n, bad[i], &e);
		cr_assert_eq(rc, WAL_ENOTWAL, "seg_size %u accepted", bad[i]);
	}
}
