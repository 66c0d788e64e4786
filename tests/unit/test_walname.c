/*
 * Unit tests for walname.h: the four archive file name forms PostgreSQL
 * hands to archive_command, what must be refused, and segment arithmetic
 * for every segment size initdb allows (1 MiB to 1 GiB).
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <string.h>

#include "pg/walname.h"

static void parse_ok(const char *text, wal_name *name)
{
	wal_error e;

	wal_error_clear(&e);
	wal_err rc = wal_name_parse(text, name, &e);
	cr_assert_eq(rc, WAL_OK, "parse(\"%s\") = %d (%s), expected WAL_OK", text, rc, e.msg);
	cr_assert_str_eq(name->text, text, "name->text of \"%s\"", text);
}

static void parse_refused(const char *text)
{
	wal_error e;
	wal_name name;

	wal_error_clear(&e);
	wal_err rc = wal_name_parse(text, &name, &e);
	cr_assert_eq(rc, WAL_EINVAL, "parse(\"%s\") = %d, expected WAL_EINVAL", text, rc);
	cr_assert_eq(e.code, WAL_EINVAL, "e.code for \"%s\"", text);
	cr_assert(e.msg[0] != '\0', "refusing \"%s\" must say why", text);
}

Test(walname, segment)
{
	wal_name n;

	parse_ok("000000010000000000000001", &n);
	cr_assert_eq(n.kind, WAL_NAME_SEGMENT);
	cr_assert_eq(n.tli, 1);
	cr_assert_eq(n.log, 0);
	cr_assert_eq(n.seg, 1);

	parse_ok("0000000A000000FF000000FE", &n);
	cr_assert_eq(n.kind, WAL_NAME_SEGMENT);
	cr_assert_eq(n.tli, 10);
	cr_assert_eq(n.log, 0xFF);
	cr_assert_eq(n.seg, 0xFE);

	parse_ok("FFFFFFFFFFFFFFFF00000003", &n);
	cr_assert_eq(n.tli, 0xFFFFFFFFu);
	cr_assert_eq(n.log, 0xFFFFFFFFu);
	cr_assert_eq(n.seg, 3);
}

Test(walname, partial)
{
	wal_name n;

	parse_ok("000000010000000000000005.partial", &n);
	cr_assert_eq(n.kind, WAL_NAME_PARTIAL);
	cr_assert_eq(n.tli, 1);
	cr_assert_eq(n.log, 0);
	cr_assert_eq(n.seg, 5);
}

Test(walname, history)
{
	wal_name n;

	parse_ok("00000002.history", &n);
	cr_assert_eq(n.kind, WAL_NAME_HISTORY);
	cr_assert_eq(n.tli, 2);

	parse_ok("0000001F.history", &n);
	cr_assert_eq(n.tli, 0x1F);
}

Test(walname, backup)
{
	wal_name n;

	parse_ok("000000010000000000000002.00000028.backup", &n);
	cr_assert_eq(n.kind, WAL_NAME_BACKUP);
	cr_assert_eq(n.tli, 1);
	cr_assert_eq(n.log, 0);
	cr_assert_eq(n.seg, 2);
	cr_assert_eq(n.backup_off, 0x28);

	parse_ok("00000003000000010000004A.00FFC0D8.backup", &n);
	cr_assert_eq(n.tli, 3);
	cr_assert_eq(n.log, 1);
	cr_assert_eq(n.seg, 0x4A);
	cr_assert_eq(n.backup_off, 0x00FFC0D8);
}

Test(walname, refuses_paths)
{
	parse_refused("/");
	parse_refused("..");
	parse_refused(".");
	parse_refused("../000000010000000000000001");
	parse_refused("/000000010000000000000001");
	parse_refused("pg_wal/000000010000000000000001");
	parse_refused("000000010000000000000001/");
	parse_refused("0000000100000000/00000001");
	parse_refused("..000000010000000000000001");
	parse_refused("00000001..history");
	parse_refused("000000010000000000000001\\");
}

Test(walname, refuses_wrong_length)
{
	parse_refused("");
	parse_refused("00000001000000000000001");   /* 23 */
	parse_refused("0000000100000000000000011"); /* 25 */
	parse_refused("0000000100000000000000010"); /* 25 */
	parse_refused("0000002.history");
	parse_refused("000000002.history");
	parse_refused("00000001000000000000002.00000028.backup");
	parse_refused("000000010000000000000002.0000028.backup");
	parse_refused("000000010000000000000002.000000028.backup");
	parse_refused("00000001000000000000005.partial");
	/* longer than WAL_NAME_MAX */
	char longname[200];
	memset(longname, '0', sizeof(longname) - 1);
	longname[sizeof(longname) - 1] = '\0';
	parse_refused(longname);
}

Test(walname, refuses_unknown_suffix)
{
	parse_refused("000000010000000000000001.gz");
	parse_refused("000000010000000000000001.lz4");
	parse_refused("000000010000000000000001.");
	parse_refused("000000010000000000000001.partial.partial");
	parse_refused("000000010000000000000001.partial.lz4");
	parse_refused("000000010000000000000001.PARTIAL");
	parse_refused("000000010000000000000001.tmp");
	parse_refused("00000002.HISTORY");
	parse_refused("00000002.history.tmp");
	parse_refused("00000002.hist");
	parse_refused("000000010000000000000002.00000028.BACKUP");
	parse_refused("000000010000000000000002.00000028");
	parse_refused("000000010000000000000002.backup");
	parse_refused("000000010000000000000002.00000028.backup.x");
	parse_refused(".history");
	parse_refused("archive_status");
	parse_refused("000000010000000000000001.ready");
	parse_refused("000000010000000000000001.done");
	parse_refused(" 000000010000000000000001");
	parse_refused("000000010000000000000001 ");
	parse_refused("000000010000000000000001\n");
}

Test(walname, refuses_lowercase_and_non_hex)
{
	parse_refused("00000001000000000000000a");
	parse_refused("0000000a0000000000000001");
	parse_refused("000000010000000b00000001");
	parse_refused("0000000a.history");
	parse_refused("000000010000000000000002.0000002a.backup");
	parse_refused("00000001000000000000000G");
	parse_refused("0000000100000000000000-1");
	parse_refused("0x0000010000000000000001");
	parse_refused("+00000010000000000000001");
	parse_refused("0000000g.history");
}

Test(walname, refuses_timeline_zero)
{
	parse_refused("000000000000000000000001");
	parse_refused("000000000000000000000001.partial");
	parse_refused("00000000.history");
	parse_refused("000000000000000000000002.00000028.backup");
}

Test(walname, seg_size_valid)
{
	for (int k = 20; k <= 30; k++)
		cr_assert(wal_seg_size_valid(1ull << k), "2^%d must be valid", k);
	cr_assert_not(wal_seg_size_valid(0));
	cr_assert_not(wal_seg_size_valid(1));
	cr_assert_not(wal_seg_size_valid(1ull << 19));
	cr_assert_not(wal_seg_size_valid(1ull << 31));
	cr_assert_not(wal_seg_size_valid(1ull << 32));
	cr_assert_not(wal_seg_size_valid(3ull << 20));
	cr_assert_not(wal_seg_size_valid((16ull << 20) + 1));
	cr_assert_not(wal_seg_size_valid((16ull << 20) - 1));
	cr_assert_not(wal_seg_size_valid((1ull << 32) + (16ull << 20)));
	cr_assert_eq(WAL_SEG_SIZE_DEFAULT, 16u << 20);
}

Test(walname, segs_per_log)
{
	cr_assert_eq(wal_segs_per_log(16u << 20), 256);
	cr_assert_eq(wal_segs_per_log(1u << 20), 4096);
	cr_assert_eq(wal_segs_per_log(1u << 30), 4);
	for (int k = 20; k <= 30; k++)
		cr_assert_eq(wal_segs_per_log(1u << k), 1ull << (32 - k), "seg size 2^%d", k);
}

/* The name that follows 0000000100000000000000FF with 16 MiB segments. */
Test(walname, next_after_ff_16mib)
{
	char out[25];
	wal_name n;
	wal_error e;
	uint64_t segno;

	parse_ok("0000000100000000000000FF", &n);
	cr_assert_eq(wal_name_segno(&n, 16u << 20, &segno, &e), WAL_OK, "%s", e.msg);
	cr_assert_eq(segno, 255);
	wal_segment_name(1, segno + 1, 16u << 20, out);
	cr_assert_str_eq(out, "000000010000000100000000");
	parse_ok(out, &n);
	cr_assert_eq(wal_name_segno(&n, 16u << 20, &segno, &e), WAL_OK, "%s", e.msg);
	cr_assert_eq(segno, 256);
	cr_assert_eq(wal_segno_to_lsn(256, 16u << 20), 0x100000000ull);
}

/* Segment name <-> number <-> LSN for every allowed size, at the log edges. */
Test(walname, arithmetic_all_sizes)
{
	for (int k = 20; k <= 30; k++) {
		uint32_t seg_size = 1u << k;
		uint64_t per_log = 1ull << (32 - k);
		uint64_t samples[] = { 0,
				       1,
				       per_log - 1,
				       per_log,
				       per_log + 1,
				       5 * per_log + 3,
				       0xFFFFFFFFull * per_log + per_log - 1 };
		for (size_t i = 0; i < sizeof(samples) / sizeof(samples[0]); i++) {
			uint64_t segno = samples[i];
			char out[25], expect[25];
			wal_name n;
			wal_error e;
			uint64_t back = 12345;

			wal_segment_name(7, segno, seg_size, out);
			snprintf(expect, sizeof(expect), "%08X%08X%08X", 7u,
				 (unsigned)(segno / per_log), (unsigned)(segno % per_log));
			cr_assert_str_eq(out, expect, "size 2^%d segno %llu", k,
					 (unsigned long long)segno);
			parse_ok(out, &n);
			cr_assert_eq(n.tli, 7);
			cr_assert_eq(n.log, (uint32_t)(segno / per_log));
			cr_assert_eq(n.seg, (uint32_t)(segno % per_log));
			cr_assert_eq(wal_name_segno(&n, seg_size, &back, &e), WAL_OK,
				     "segno of %s at 2^%d: %s", out, k, e.msg);
			cr_assert_eq(back, segno, "%s at 2^%d", out, k);
			cr_assert_eq(wal_segno_to_lsn(segno, seg_size), segno * seg_size,
				     "lsn of segno %llu at 2^%d", (unsigned long long)segno, k);
		}
	}
}

/* The last segment of a log is followed by segment 0 of the next log. */
Test(walname, log_boundary_all_sizes)
{
	for (int k = 20; k <= 30; k++) {
		uint32_t seg_size = 1u << k;
		uint64_t per_log = 1ull << (32 - k);
		char last[25], next[25], expect_last[25];

		wal_segment_name(1, per_log - 1, seg_size, last);
		wal_segment_name(1, per_log, seg_size, next);
		snprintf(expect_last, sizeof(expect_last), "0000000100000000%08X",
			 (unsigned)(per_log - 1));
		cr_assert_str_eq(last, expect_last, "2^%d", k);
		cr_assert_str_eq(next, "000000010000000100000000", "2^%d", k);
	}
}

/* A low part beyond the segments of one log is refused for that size only. */
Test(walname, segno_out_of_range)
{
	wal_name n;
	wal_error e;
	uint64_t segno;

	parse_ok("000000010000000000000100", &n); /* seg 256 */
	cr_assert_eq(wal_name_segno(&n, 16u << 20, &segno, &e), WAL_EINVAL);
	cr_assert_eq(wal_name_segno(&n, 1u << 20, &segno, &e), WAL_OK, "%s", e.msg);
	cr_assert_eq(segno, 256);

	parse_ok("000000010000000000000004", &n);
	cr_assert_eq(wal_name_segno(&n, 1u << 30, &segno, &e), WAL_EINVAL);
	parse_ok("000000010000000000000003", &n);
	cr_assert_eq(wal_name_segno(&n, 1u << 30, &segno, &e), WAL_OK, "%s", e.msg);
	cr_assert_eq(segno, 3);

	parse_ok("00000001000000000000FFFF.partial", &n);
	cr_assert_eq(wal_name_segno(&n, 16u << 20, &segno, &e), WAL_EINVAL);
	parse_ok("000000010000000000001000.00000028.backup", &n);
	cr_assert_eq(wal_name_segno(&n, 1u << 20, &segno, &e), WAL_EINVAL);
	parse_ok("000000010000000000000FFF.00000028.backup", &n);
	cr_assert_eq(wal_name_segno(&n, 1u << 20, &segno, &e), WAL_OK, "%s", e.msg);
	cr_assert_eq(segno, 0xFFF);
}

Test(walname, segno_of_partial_and_backup)
{
	wal_name n;
	wal_error e;
	uint64_t segno;

	parse_ok("000000020000000300000004.partial", &n);
	cr_assert_eq(wal_name_segno(&n, 16u << 20, &segno, &e), WAL_OK, "%s", e.msg);
	cr_assert_eq(segno, 3 * 256 + 4);
	parse_ok("000000010000000100000002.00000028.backup", &n);
	cr_assert_eq(wal_name_segno(&n, 16u << 20, &segno, &e), WAL_OK, "%s", e.msg);
	cr_assert_eq(segno, 256 + 2);
}

static int cmp_names(const char *a, const char *b)
{
	wal_name na, nb;

	parse_ok(a, &na);
	parse_ok(b, &nb);
	return wal_name_cmp(&na, &nb);
}

Test(walname, order)
{
	/* position first */
	cr_assert_lt(cmp_names("000000010000000000000001", "000000010000000000000002"), 0);
	cr_assert_lt(cmp_names("0000000100000000000000FF", "000000010000000100000000"), 0);
	cr_assert_gt(cmp_names("000000010000000100000000", "0000000100000000000000FF"), 0);
	/* a later position on an older timeline still sorts after */
	cr_assert_lt(cmp_names("000000020000000000000001", "000000010000000000000002"), 0);
	/* then timeline */
	cr_assert_lt(cmp_names("000000010000000000000003", "000000020000000000000003"), 0);
	cr_assert_gt(cmp_names("000000020000000000000003", "000000010000000000000003"), 0);
	/* then kind */
	cr_assert_lt(cmp_names("000000010000000000000003", "000000010000000000000003.partial"), 0);
	cr_assert_gt(cmp_names("000000010000000000000003.partial", "000000010000000000000003"), 0);
	cr_assert_lt(cmp_names("000000010000000000000003",
			       "000000010000000000000003.00000028.backup"),
		     0);
	cr_assert_eq(cmp_names("000000010000000000000003", "000000010000000000000003"), 0);
	cr_assert_lt(cmp_names("000000010000000000000003.00000028.backup",
			       "000000010000000000000004"),
		     0);
}

Test(walname, dir)
{
	wal_name n;
	char dir[17];

	parse_ok("0000000100000002000000FE", &n);
	wal_name_dir(&n, dir);
	cr_assert_str_eq(dir, "0000000100000002");
	parse_ok("0000000A0000000300000001.partial", &n);
	wal_name_dir(&n, dir);
	cr_assert_str_eq(dir, "0000000A00000003");
	parse_ok("000000010000000000000002.00000028.backup", &n);
	wal_name_dir(&n, dir);
	cr_assert_str_eq(dir, "0000000100000000");
}
