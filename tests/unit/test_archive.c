/*
 * Unit tests for archive.h on a temporary local archive: the object layout,
 * wal_push (duplicates, different content, bad input, foreign clusters),
 * wal_fetch (round trip, missing, corrupt objects never delivered, cluster
 * choice) and wal_prune (--before, --keep-backups, --keep-days, --dry-run).
 * Segments are synthetic: a valid long page header built per walheader.h on
 * pages taken from a real PostgreSQL 15 fixture.
 */
#include <criterion/criterion.h>
#include <dirent.h>
#include <errno.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "archive/archive.h"
#include "archive/verify.h"
#include "base/config.h"
#include "sys/fileio.h"
#include "pg/walname.h"
#include "syscall_log.h"

/* System identifiers of the fixture clusters (tests/fixtures/pgNN/INFO). */
#define SYSID_15 7712300585176830670ull
#define SYSID_16 7712300598404146484ull
#define SEG16 (16u << 20)
#define SEG1 (1u << 20)
#define XLP_LONG_HEADER 0x0002

static char base_dir[256];
static char root[300], work[300], restore[300], data15[300], data16[300];
static wal_config cfg;

static int rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	return remove(path);
}

static void copy_file(const char *from, const char *to)
{
	char cmd[1000];
	snprintf(cmd, sizeof(cmd), "cp '%s' '%s'", from, to);
	cr_assert_eq(system(cmd), 0, "%s", cmd);
}

static void make_datadir(char *out, size_t cap, const char *name, const char *fixture)
{
	char path[600], src[600];

	snprintf(out, cap, "%s/%s", base_dir, name);
	cr_assert_eq(mkdir(out, 0700), 0);
	snprintf(path, sizeof(path), "%s/global", out);
	cr_assert_eq(mkdir(path, 0700), 0);
	snprintf(path, sizeof(path), "%s/global/pg_control", out);
	snprintf(src, sizeof(src), "%s/%s/pg_control", WAL_TEST_FIXTURES, fixture);
	copy_file(src, path);
}

/* Makes the pg_control of datadir (PostgreSQL 13 to 18's layout) say seg_size. */
static void set_seg_size(const char *datadir, uint32_t seg_size)
{
	char path[600];
	snprintf(path, sizeof(path), "%s/global/pg_control", datadir);
	FILE *f = fopen(path, "r+b");
	cr_assert_not_null(f, "%s", path);
	cr_assert_eq(fseek(f, 228, SEEK_SET), 0);
	cr_assert_eq(fwrite(&seg_size, 4, 1, f), 1);
	cr_assert_eq(fclose(f), 0);
}

static void setup(void)
{
	snprintf(base_dir, sizeof(base_dir), "/tmp/walarchive-unit-archive.XXXXXX");
	cr_assert_not_null(mkdtemp(base_dir));
	snprintf(root, sizeof(root), "%s/archive", base_dir);
	snprintf(work, sizeof(work), "%s/pg_wal", base_dir);
	snprintf(restore, sizeof(restore), "%s/restore", base_dir);
	cr_assert_eq(mkdir(root, 0700), 0);
	cr_assert_eq(mkdir(work, 0700), 0);
	cr_assert_eq(mkdir(restore, 0700), 0);
	make_datadir(data15, sizeof(data15), "data15", "pg15");
	make_datadir(data16, sizeof(data16), "data16", "pg16");
	wal_config_init(&cfg);
	cfg.archive = strdup(root);
}

static void teardown(void)
{
	wal_config_free(&cfg);
	nftw(base_dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

/* ---- files ---- */

static unsigned char *slurp(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	if (!f)
		return NULL;
	fseek(f, 0, SEEK_END);
	long n = ftell(f);
	fseek(f, 0, SEEK_SET);
	unsigned char *buf = malloc(n > 0 ? (size_t)n : 1);
	cr_assert_eq(fread(buf, 1, (size_t)n, f), (size_t)n);
	fclose(f);
	*len = (size_t)n;
	return buf;
}

static void spit(const char *path, const void *data, size_t len)
{
	FILE *f = fopen(path, "wb");
	cr_assert_not_null(f, "%s", path);
	cr_assert_eq(fwrite(data, 1, len, f), len);
	cr_assert_eq(fclose(f), 0);
}

static int same_files(const char *a, const char *b)
{
	size_t la, lb;
	unsigned char *da = slurp(a, &la), *db = slurp(b, &lb);
	int same = da && db && la == lb && memcmp(da, db, la) == 0;
	free(da);
	free(db);
	return same;
}

static int exists(const char *path)
{
	struct stat st;
	return stat(path, &st) == 0;
}

/* Regular files under dir (recursively) other than walarchive.info. */
static int count_objects_in(const char *dir)
{
	DIR *d = opendir(dir);
	struct dirent *de;
	int n = 0;

	if (!d)
		return 0;
	while ((de = readdir(d))) {
		char path[1200];
		struct stat st;
		if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
			continue;
		snprintf(path, sizeof(path), "%s/%s", dir, de->d_name);
		if (lstat(path, &st) != 0)
			continue;
		if (S_ISDIR(st.st_mode))
			n += count_objects_in(path);
		else if (strcmp(de->d_name, WAL_INFO_NAME) != 0)
			n++;
	}
	closedir(d);
	return n;
}

static int count_entries(const char *dir)
{
	DIR *d = opendir(dir);
	struct dirent *de;
	int n = 0;

	cr_assert_not_null(d);
	while ((de = readdir(d)))
		if (strcmp(de->d_name, ".") && strcmp(de->d_name, ".."))
			n++;
	closedir(d);
	return n;
}

/* ---- synthetic WAL ---- */

static unsigned char fixture_page[8192];
static int fixture_loaded;

static void load_fixture_page(void)
{
	char path[600];
	size_t len;

	if (fixture_loaded)
		return;
	snprintf(path, sizeof(path), "%s/pg15/wal-first-page.bin", WAL_TEST_FIXTURES);
	unsigned char *p = slurp(path, &len);
	cr_assert_not_null(p, "fixture %s missing", path);
	cr_assert_eq(len, 8192);
	memcpy(fixture_page, p, 8192);
	free(p);
	fixture_loaded = 1;
}

/* XLogLongPageHeaderData (little-endian, as on x86-64). */
static void put_header(unsigned char *buf, uint32_t tli, uint64_t pageaddr, uint64_t sysid,
		       uint32_t seg_size)
{
	uint16_t magic = 0xD110, info = XLP_LONG_HEADER;
	uint32_t rem_len = 0, blcksz = 8192;

	memset(buf, 0, 40);
	memcpy(buf + 0, &magic, 2);
	memcpy(buf + 2, &info, 2);
	memcpy(buf + 4, &tli, 4);
	memcpy(buf + 8, &pageaddr, 8);
	memcpy(buf + 16, &rem_len, 4);
	memcpy(buf + 24, &sysid, 8);
	memcpy(buf + 32, &seg_size, 4);
	memcpy(buf + 36, &blcksz, 4);
}

/* Segment bytes for name (segment or partial): fixture pages with a seed. */
static unsigned char *make_segment_bytes(const char *name_text, uint32_t seg_size, uint64_t sysid,
					 uint32_t seed)
{
	wal_name name;
	wal_error e;
	uint64_t segno;
	unsigned char *buf = malloc(seg_size);

	load_fixture_page();
	cr_assert_eq(wal_name_parse(name_text, &name, &e), WAL_OK, "%s", e.msg);
	cr_assert_eq(wal_name_segno(&name, seg_size, &segno, &e), WAL_OK, "%s", e.msg);
	for (uint32_t off = 0; off < seg_size; off += 8192) {
		memcpy(buf + off, fixture_page, 8192);
		memcpy(buf + off + 100, &seed, 4);
		memcpy(buf + off + 104, &off, 4);
	}
	put_header(buf, name.tli, segno * seg_size, sysid, seg_size);
	return buf;
}

/* Writes a synthetic segment into work/<file>; returns its path (static). */
static const char *make_segment(const char *name_text, const char *file, uint32_t seg_size,
				uint64_t sysid, uint32_t seed)
{
	static char path[600];
	unsigned char *buf = make_segment_bytes(name_text, seg_size, sysid, seed);

	snprintf(path, sizeof(path), "%s/%s", work, file ? file : name_text);
	spit(path, buf, seg_size);
	free(buf);
	return path;
}

static const char *make_text(const char *file, const char *text)
{
	static char path[600];

	snprintf(path, sizeof(path), "%s/%s", work, file);
	spit(path, text, strlen(text));
	return path;
}

static void obj_path(uint64_t sysid, const char *name_text, int compressed, char *out, size_t cap)
{
	wal_name name;
	wal_error e;
	char rel[380];

	cr_assert_eq(wal_name_parse(name_text, &name, &e), WAL_OK, "%s", e.msg);
	wal_archive_object_path(sysid, &name, compressed, rel, sizeof(rel));
	snprintf(out, cap, "%s/%s", root, rel);
}

static void push_ok(const char *path, const char *name, const char *datadir,
		    wal_push_outcome expect)
{
	wal_push_result res;
	wal_error e;

	memset(&res, 0, sizeof(res));
	wal_error_clear(&e);
	cr_assert_eq(wal_push(&cfg, path, name, datadir, &res, &e), WAL_OK, "push %s: %s", name,
		     e.msg);
	cr_assert_eq(res.outcome, expect, "push %s: outcome %d, expected %d", name, res.outcome,
		     expect);
}

static void push_seg(const char *name, uint32_t seg_size, uint64_t sysid, const char *datadir)
{
	const char *p = make_segment(name, NULL, seg_size, sysid, 1);
	push_ok(p, name, datadir, WAL_PUSHED);
}

/* ---- layout ---- */

Test(archive, object_path_layout)
{
	static const struct {
		uint64_t sysid;
		const char *name;
		int lz4;
		const char *path;
	} cases[] = {
		{ SYSID_15, "000000010000000000000001", 1,
		  "7712300585176830670/0000000100000000/000000010000000000000001.lz4" },
		{ SYSID_15, "000000010000000000000001", 0,
		  "7712300585176830670/0000000100000000/000000010000000000000001" },
		{ SYSID_15, "0000000A000000FF000000FE.partial", 1,
		  "7712300585176830670/0000000A000000FF/0000000A000000FF000000FE.partial.lz4" },
		{ SYSID_15, "0000000A000000FF000000FE.partial", 0,
		  "7712300585176830670/0000000A000000FF/0000000A000000FF000000FE.partial" },
		{ SYSID_15, "000000010000000000000002.00000028.backup", 0,
		  "7712300585176830670/0000000100000000/000000010000000000000002.00000028.backup" },
		{ SYSID_15, "000000010000000000000002.00000028.backup", 1,
		  "7712300585176830670/0000000100000000/"
		  "000000010000000000000002.00000028.backup.lz4" },
		{ SYSID_15, "00000002.history", 1, "7712300585176830670/00000002.history.lz4" },
		{ SYSID_15, "00000002.history", 0, "7712300585176830670/00000002.history" },
		{ 18446744073709551615ull, "000000010000000000000001", 0,
		  "18446744073709551615/0000000100000000/000000010000000000000001" },
		{ 1, "000000010000000000000001", 0, "1/0000000100000000/000000010000000000000001" },
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		wal_name n;
		wal_error e;
		char out[512];

		cr_assert_eq(wal_name_parse(cases[i].name, &n, &e), WAL_OK);
		wal_archive_object_path(cases[i].sysid, &n, cases[i].lz4, out, sizeof(out));
		cr_assert_str_eq(out, cases[i].path);
	}
}

/* ---- push and fetch ---- */

Test(archive, push_fetch_roundtrip_lz4, .init = setup, .fini = teardown)
{
	const char *name = "000000010000000000000003";
	const char *wal = make_segment(name, NULL, SEG16, SYSID_15, 7);
	char wal_copy[600], object[700], dest[700], plain[700], cmd[1600];
	wal_push_result res;
	wal_fetch_result fres;
	wal_error e;

	snprintf(wal_copy, sizeof(wal_copy), "%s", wal);
	memset(&res, 0, sizeof(res));
	cr_assert_eq(wal_push(&cfg, wal_copy, name, data15, &res, &e), WAL_OK, "%s", e.msg);
	cr_assert_eq(res.outcome, WAL_PUSHED);
	cr_assert_eq(res.system_id, SYSID_15);
	cr_assert_eq(res.in_bytes, SEG16);
	cr_assert_gt(res.stored_bytes, 0);
	cr_assert_lt(res.stored_bytes, SEG16, "compressible segment stored in %llu bytes",
		     (unsigned long long)res.stored_bytes);
	cr_assert_str_eq(res.object,
			 "7712300585176830670/0000000100000000/000000010000000000000003.lz4");

	obj_path(SYSID_15, name, 1, object, sizeof(object));
	struct stat st;
	cr_assert_eq(stat(object, &st), 0, "object %s missing", object);
	cr_assert_eq((uint64_t)st.st_size, res.stored_bytes);
	cr_assert_eq(st.st_mode & 0777, 0600);

	/* recoverable by hand with lz4 -d */
	snprintf(plain, sizeof(plain), "%s/by-hand", restore);
	snprintf(cmd, sizeof(cmd), "lz4 -d -q -f '%s' '%s'", object, plain);
	cr_assert_eq(system(cmd), 0, "lz4 -d cannot read the archived object");
	cr_assert(same_files(plain, wal_copy), "lz4 -d gives different bytes");
	unlink(plain);

	/* walfetch %f %p */
	snprintf(dest, sizeof(dest), "%s/RECOVERYXLOG", restore);
	memset(&fres, 0, sizeof(fres));
	cr_assert_eq(wal_fetch(&cfg, name, dest, data15, &fres, &e), WAL_OK, "%s", e.msg);
	cr_assert(same_files(dest, wal_copy), "fetched bytes differ");
	cr_assert_eq(fres.bytes, SEG16);
	cr_assert_eq(fres.system_id, SYSID_15);
	cr_assert_str_eq(fres.object, res.object);
	cr_assert_eq(count_entries(restore), 1, "temporary file left in the destination directory");
	/* the file given to wal_push is untouched */
	unsigned char *orig = make_segment_bytes(name, SEG16, SYSID_15, 7);
	size_t len;
	unsigned char *now = slurp(wal_copy, &len);
	cr_assert(now && len == SEG16 && memcmp(now, orig, SEG16) == 0);
	free(orig);
	free(now);
}

/*
 * The durability order of push and fetch, recorded through the fileio seam:
 * the object (and walarchive.info) and the restored file are each written
 * under a temporary name, fsynced, renamed, and their directory fsynced
 * after the rename; the final names do not exist before their rename.
 */
Test(archive, push_fetch_durability_order, .init = setup, .fini = teardown)
{
	for (int compressed = 1; compressed >= 0; compressed--) {
		const char *name =
			compressed ? "000000010000000000000004" : "000000010000000000000005";
		const char *wal = make_segment(name, NULL, SEG16, SYSID_15, 4);
		char wal_copy[600], object[700], info[700], dest[700];
		wal_push_result res;
		wal_fetch_result fres;
		wal_error e;

		cfg.compress = compressed ? WAL_COMPRESS_LZ4 : WAL_COMPRESS_NONE;
		cfg.push_ahead = 0;
		cfg.fetch_ahead = 0;
		cfg.fetch_fsync = 1; /* off by default: PostgreSQL fsyncs what it keeps */
		snprintf(wal_copy, sizeof(wal_copy), "%s", wal);
		obj_path(SYSID_15, name, 1, object, sizeof(object)); /* framed either way */
		snprintf(info, sizeof(info), "%s/%llu/walarchive.info", root,
			 (unsigned long long)SYSID_15);

		syslog_start(object);
		memset(&res, 0, sizeof(res));
		wal_err rc = wal_push(&cfg, wal_copy, name, data15, &res, &e);
		syslog_stop();
		cr_assert_eq(rc, WAL_OK, "%s", e.msg);
		cr_assert_eq(res.outcome, WAL_PUSHED);
		syslog_assert_durable(object, 1);
		if (compressed) /* the first push into this tree writes it */
			syslog_assert_durable(info, 0);

		snprintf(dest, sizeof(dest), "%s/%s", restore, name);
		syslog_start(dest);
		memset(&fres, 0, sizeof(fres));
		rc = wal_fetch(&cfg, name, dest, data15, &fres, &e);
		syslog_stop();
		cr_assert_eq(rc, WAL_OK, "%s", e.msg);
		syslog_assert_durable(dest, 1);
		cr_assert(same_files(dest, wal_copy), "fetched bytes differ");
	}
}

/* archive.h layout: <root>/<system-id>/walarchive.info exists once a cluster has WAL. */
Test(archive, push_writes_info_file, .init = setup, .fini = teardown)
{
	char info[700];
	size_t len;

	push_seg("000000010000000000000001", SEG16, SYSID_15, data15);
	snprintf(info, sizeof(info), "%s/7712300585176830670/%s", root, WAL_INFO_NAME);
	unsigned char *text = slurp(info, &len);
	cr_assert_not_null(text, "%s missing", info);
	cr_assert_gt(len, 0, "%s is empty", info);
	free(text);
}

Test(archive, push_fetch_uncompressed, .init = setup, .fini = teardown)
{
	const char *name = "000000010000000100000000";
	char wal[600], object[700], dest[700], cmd[1600];
	wal_push_result res;
	wal_fetch_result fres;
	wal_error e;
	struct stat st;

	cfg.compress = WAL_COMPRESS_NONE;
	snprintf(wal, sizeof(wal), "%s", make_segment(name, NULL, SEG16, SYSID_15, 8));
	cr_assert_eq(wal_push(&cfg, wal, name, NULL, &res, &e), WAL_OK, "%s", e.msg);
	cr_assert_eq(res.outcome, WAL_PUSHED);
	cr_assert_eq(res.system_id, SYSID_15, "system id from the WAL header");
	/* an LZ4 frame of stored blocks: the bytes as they are, plus the checksum */
	obj_path(SYSID_15, name, 1, object, sizeof(object));
	cr_assert_eq(stat(object, &st), 0, "compress = none writes %s", object);
	cr_assert_geq(st.st_size, SEG16, "compress = none compressed the segment");
	cr_assert_lt(st.st_size, SEG16 + 1024, "stored frame overhead: %lld bytes",
		     (long long)st.st_size - SEG16);
	obj_path(SYSID_15, name, 0, dest, sizeof(dest));
	cr_assert(!exists(dest), "a plain object was written too");
	snprintf(cmd, sizeof(cmd), "lz4 -dc '%s' | cmp -s - '%s'", object, wal);
	cr_assert_eq(system(cmd), 0, "lz4 -d does not give back the segment");
	snprintf(dest, sizeof(dest), "%s/RECOVERYXLOG", restore);
	cr_assert_eq(wal_fetch(&cfg, name, dest, NULL, &fres, &e), WAL_OK, "%s", e.msg);
	cr_assert(same_files(dest, wal));
}

/* Plain objects, as earlier releases stored with compress = none, stay readable. */
Test(archive, fetch_plain_object_of_earlier_release, .init = setup, .fini = teardown)
{
	const char *name = "000000010000000000000003";
	char wal[600], object[700], dest[700];
	wal_fetch_result fres;
	wal_error e;

	push_seg("000000010000000000000001", SEG16, SYSID_15, data15);
	snprintf(wal, sizeof(wal), "%s", make_segment(name, NULL, SEG16, SYSID_15, 3));
	obj_path(SYSID_15, name, 0, object, sizeof(object));
	copy_file(wal, object);
	snprintf(dest, sizeof(dest), "%s/RECOVERYXLOG", restore);
	cr_assert_eq(wal_fetch(&cfg, name, dest, data15, &fres, &e), WAL_OK, "%s", e.msg);
	cr_assert(same_files(dest, wal));
	cr_assert_str_eq(fres.object + strlen(fres.object) - strlen(name), name);
	/* and a push of the same bytes finds it: identical, nothing stored twice */
	push_ok(wal, name, data15, WAL_PUSH_DUPLICATE);
	obj_path(SYSID_15, name, 1, object, sizeof(object));
	cr_assert(!exists(object), "a second copy was stored beside the plain object");
}

Test(archive, push_duplicate_is_ok, .init = setup, .fini = teardown)
{
	const char *name = "000000010000000000000004";
	char wal[600], object[700];
	struct stat before, after;

	snprintf(wal, sizeof(wal), "%s", make_segment(name, NULL, SEG16, SYSID_15, 9));
	push_ok(wal, name, data15, WAL_PUSHED);
	obj_path(SYSID_15, name, 1, object, sizeof(object));
	cr_assert_eq(stat(object, &before), 0);
	push_ok(wal, name, data15, WAL_PUSH_DUPLICATE);
	cr_assert_eq(stat(object, &after), 0);
	cr_assert_eq(before.st_ino, after.st_ino, "duplicate push replaced the object");
	cr_assert_eq(count_objects_in(root), 1);
}

Test(archive, push_different_content_refused, .init = setup, .fini = teardown)
{
	const char *name = "000000010000000000000004";
	char wal[600], other[600], object[700], saved[700];
	wal_push_result res;
	wal_error e;

	snprintf(wal, sizeof(wal), "%s", make_segment(name, NULL, SEG16, SYSID_15, 10));
	push_ok(wal, name, data15, WAL_PUSHED);
	obj_path(SYSID_15, name, 1, object, sizeof(object));
	snprintf(saved, sizeof(saved), "%s/saved-object", base_dir);
	copy_file(object, saved);

	snprintf(other, sizeof(other), "%s", make_segment(name, "other", SEG16, SYSID_15, 11));
	wal_error_clear(&e);
	cr_assert_eq(wal_push(&cfg, other, name, data15, &res, &e), WAL_EEXIST_DIFFERENT,
		     "different content under the same name: %s", e.msg);
	cr_assert_not_null(strstr(e.msg, name), "message names the segment: %s", e.msg);
	cr_assert(same_files(object, saved), "the archived object was changed");
	cr_assert_eq(count_objects_in(root), 1, "something else was stored");

	/* the same with compress = none */
	cfg.compress = WAL_COMPRESS_NONE;
	const char *name2 = "000000010000000000000005";
	snprintf(wal, sizeof(wal), "%s", make_segment(name2, NULL, SEG16, SYSID_15, 12));
	push_ok(wal, name2, data15, WAL_PUSHED);
	obj_path(SYSID_15, name2, 1, object, sizeof(object));
	copy_file(object, saved);
	snprintf(other, sizeof(other), "%s", make_segment(name2, "other2", SEG16, SYSID_15, 13));
	cr_assert_eq(wal_push(&cfg, other, name2, data15, &res, &e), WAL_EEXIST_DIFFERENT);
	cr_assert(same_files(object, saved), "the archived object was changed");
}

static void push_refused(const char *path, const char *name, const char *datadir, wal_err expect)
{
	wal_push_result res;
	wal_error e;

	wal_error_clear(&e);
	wal_err rc = wal_push(&cfg, path, name, datadir, &res, &e);
	cr_assert_eq(rc, expect, "push %s: %s (%s), expected %s", name, wal_err_name(rc), e.msg,
		     wal_err_name(expect));
	cr_assert(e.msg[0], "push %s: no message", name);
	cr_assert_eq(count_objects_in(root), 0, "push %s stored something", name);
}

Test(archive, push_refuses_bad_names, .init = setup, .fini = teardown)
{
	const char *wal = make_segment("000000010000000000000001", "seg", SEG16, SYSID_15, 1);
	char p[600];

	snprintf(p, sizeof(p), "%s", wal);
	push_refused(p, "../000000010000000000000001", data15, WAL_EINVAL);
	push_refused(p, "0000000100000000/000000010000000000000001", data15, WAL_EINVAL);
	push_refused(p, "..", data15, WAL_EINVAL);
	push_refused(p, "/", data15, WAL_EINVAL);
	push_refused(p, "00000001000000000000001", data15, WAL_EINVAL);
	push_refused(p, "000000010000000000000001.gz", data15, WAL_EINVAL);
	push_refused(p, "00000001000000000000000a", data15, WAL_EINVAL);
	push_refused(p, "", data15, WAL_EINVAL);
}

Test(archive, push_refuses_non_wal, .init = setup, .fini = teardown)
{
	const char *name = "000000010000000000000001";
	char p[600];
	unsigned char *buf;

	/* a text file */
	snprintf(p, sizeof(p), "%s", make_text("text", "this is not WAL\n"));
	push_refused(p, name, data15, WAL_ENOTWAL);

	/* 16 MiB of zeros */
	buf = calloc(1, SEG16);
	snprintf(p, sizeof(p), "%s/zeros", work);
	spit(p, buf, SEG16);
	push_refused(p, name, data15, WAL_ENOTWAL);

	/* an empty file */
	snprintf(p, sizeof(p), "%s/empty", work);
	spit(p, buf, 0);
	push_refused(p, name, data15, WAL_ENOTWAL);
	free(buf);

	/* a truncated segment (header says 16 MiB) */
	buf = make_segment_bytes(name, SEG16, SYSID_15, 1);
	snprintf(p, sizeof(p), "%s/truncated", work);
	spit(p, buf, SEG16 / 2);
	push_refused(p, name, data15, WAL_ENOTWAL);
	spit(p, buf, SEG16 - 1);
	push_refused(p, name, data15, WAL_ENOTWAL);
	free(buf);
}

Test(archive, push_refuses_header_name_disagreement, .init = setup, .fini = teardown)
{
	char p[600];

	/* the header of segment 2 under the name of segment 3 */
	snprintf(p, sizeof(p), "%s",
		 make_segment("000000010000000000000002", "seg", SEG16, SYSID_15, 1));
	push_refused(p, "000000010000000000000003", data15, WAL_ENOTWAL);
	/* a timeline 2 header under a timeline 1 name (the reverse, a timeline 1
	 * header under a timeline 2 name, is the first segment of a new timeline) */
	snprintf(p, sizeof(p), "%s",
		 make_segment("000000020000000000000002", "seg2", SEG16, SYSID_15, 1));
	push_refused(p, "000000010000000000000002", data15, WAL_ENOTWAL);
	push_refused(p, "000000010000000000000002.partial", data15, WAL_ENOTWAL);
	snprintf(p, sizeof(p), "%s",
		 make_segment("000000010000000000000002", "seg", SEG16, SYSID_15, 1));
	/* a segment's name that is out of range for its size */
	push_refused(p, "000000010000000000000102", data15, WAL_ENOTWAL);
}

Test(archive, push_refuses_foreign_cluster, .init = setup, .fini = teardown)
{
	char p[600];

	/* WAL of cluster 15 pushed from cluster 16's data directory */
	snprintf(p, sizeof(p), "%s",
		 make_segment("000000010000000000000002", NULL, SEG16, SYSID_15, 1));
	push_refused(p, "000000010000000000000002", data16, WAL_EFOREIGN);
}

Test(archive, push_missing_file, .init = setup, .fini = teardown)
{
	char p[600];
	wal_push_result res;
	wal_error e;

	snprintf(p, sizeof(p), "%s/000000010000000000000002", work);
	wal_error_clear(&e);
	cr_assert_neq(wal_push(&cfg, p, "000000010000000000000002", data15, &res, &e), WAL_OK);
	cr_assert_not_null(strstr(e.msg, "000000010000000000000002"), "message: %s", e.msg);
	cr_assert_eq(count_objects_in(root), 0);
}

Test(archive, push_unusable_archive, .init = setup, .fini = teardown)
{
	char p[600], missing[600];
	wal_push_result res;
	wal_error e;

	snprintf(p, sizeof(p), "%s",
		 make_segment("000000010000000000000002", NULL, SEG16, SYSID_15, 1));
	snprintf(missing, sizeof(missing), "%s/no-such-archive", base_dir);
	free(cfg.archive);
	cfg.archive = strdup(missing);
	wal_err rc = wal_push(&cfg, p, "000000010000000000000002", data15, &res, &e);
	cr_assert_neq(rc, WAL_OK, "push into a missing archive directory");
	cr_assert_not_null(strstr(e.msg, missing), "message names the archive: %s", e.msg);
	cr_assert(!exists(missing), "push created the archive root");
}

/* A missing archive root is not "the archive has no such file" (walfetch exit 1). */
Test(archive, fetch_unusable_archive, .init = setup, .fini = teardown)
{
	char missing[600], dest[700];
	wal_fetch_result fres;
	wal_error e;

	snprintf(missing, sizeof(missing), "%s/no-such-archive", base_dir);
	free(cfg.archive);
	cfg.archive = strdup(missing);
	snprintf(dest, sizeof(dest), "%s/RECOVERYXLOG", restore);
	wal_err rc = wal_fetch(&cfg, "000000010000000000000002", dest, data15, &fres, &e);
	cr_assert_neq(rc, WAL_OK);
	cr_assert_neq(rc, WAL_ENOENT, "missing archive root reported as a missing segment: %s",
		      e.msg);
	cr_assert(!exists(dest));
}

Test(archive, push_partial_history_backup, .init = setup, .fini = teardown)
{
	const char *partial = "000000010000000000000007.partial";
	const char *history = "00000002.history";
	const char *backup = "000000010000000000000002.00000028.backup";
	const char *history_text = "1\t0/7000000\tno recovery target specified\n";
	const char *backup_text =
		"START WAL LOCATION: 0/2000028 (file 000000010000000000000002)\n"
		"STOP WAL LOCATION: 0/2000100 (file 000000010000000000000002)\n"
		"CHECKPOINT LOCATION: 0/2000060\nBACKUP METHOD: streamed\nBACKUP FROM: primary\n"
		"START TIME: 2024-01-01 00:00:00 UTC\nLABEL: pg_basebackup base backup\n"
		"START TIMELINE: 1\nSTOP TIME: 2024-01-01 00:00:01 UTC\nSTOP TIMELINE: 1\n";
	char p[600], object[700], dest[700];
	wal_fetch_result fres;
	wal_error e;

	snprintf(p, sizeof(p), "%s",
		 make_segment("000000010000000000000007", partial, SEG16, SYSID_15, 3));
	push_ok(p, partial, data15, WAL_PUSHED);
	obj_path(SYSID_15, partial, 1, object, sizeof(object));
	cr_assert(exists(object), "%s missing", object);

	snprintf(p, sizeof(p), "%s", make_text(history, history_text));
	push_ok(p, history, data15, WAL_PUSHED);
	push_ok(p, history, data15, WAL_PUSH_DUPLICATE);
	obj_path(SYSID_15, history, 1, object, sizeof(object));
	cr_assert(exists(object), "%s missing", object);
	snprintf(dest, sizeof(dest), "%s/RECOVERYHISTORY", restore);
	cr_assert_eq(wal_fetch(&cfg, history, dest, data15, &fres, &e), WAL_OK, "%s", e.msg);
	cr_assert(same_files(dest, p));

	snprintf(p, sizeof(p), "%s", make_text(backup, backup_text));
	push_ok(p, backup, data15, WAL_PUSHED);
	obj_path(SYSID_15, backup, 1, object, sizeof(object));
	cr_assert(exists(object), "%s missing", object);

	/* a different history file under the same name is refused */
	wal_push_result res;
	snprintf(p, sizeof(p), "%s", make_text("h2", "1\t0/8000000\tsomething else\n"));
	cr_assert_eq(wal_push(&cfg, p, history, data15, &res, &e), WAL_EEXIST_DIFFERENT);
}

Test(archive, fetch_missing, .init = setup, .fini = teardown)
{
	char dest[700];
	wal_fetch_result fres;
	wal_error e;

	push_seg("000000010000000000000001", SEG16, SYSID_15, data15);
	snprintf(dest, sizeof(dest), "%s/RECOVERYXLOG", restore);
	cr_assert_eq(wal_fetch(&cfg, "000000010000000000000002", dest, data15, &fres, &e),
		     WAL_ENOENT, "%s", e.msg);
	cr_assert(!exists(dest), "destination created for a missing segment");
	cr_assert_eq(wal_fetch(&cfg, "00000002.history", dest, data15, &fres, &e), WAL_ENOENT, "%s",
		     e.msg);
	cr_assert_eq(wal_fetch(&cfg, "000000010000000000000001.partial", dest, data15, &fres, &e),
		     WAL_ENOENT, "%s", e.msg);
	cr_assert_eq(count_entries(restore), 0);
}

Test(archive, fetch_bad_name, .init = setup, .fini = teardown)
{
	char dest[700];
	wal_fetch_result fres;
	wal_error e;

	push_seg("000000010000000000000001", SEG16, SYSID_15, data15);
	snprintf(dest, sizeof(dest), "%s/RECOVERYXLOG", restore);
	cr_assert_eq(wal_fetch(&cfg, "../../etc/passwd", dest, data15, &fres, &e), WAL_EINVAL);
	cr_assert_eq(wal_fetch(&cfg, "000000010000000000000001.lz4", dest, data15, &fres, &e),
		     WAL_EINVAL);
	cr_assert(!exists(dest));
}

/* A missing destination directory must not look like "not in the archive" (exit 1). */
Test(archive, fetch_dest_dir_missing, .init = setup, .fini = teardown)
{
	char dest[700];
	wal_fetch_result fres;
	wal_error e;

	push_seg("000000010000000000000001", SEG16, SYSID_15, data15);
	snprintf(dest, sizeof(dest), "%s/no-such-dir/RECOVERYXLOG", restore);
	wal_err rc = wal_fetch(&cfg, "000000010000000000000001", dest, data15, &fres, &e);
	cr_assert_neq(rc, WAL_OK);
	cr_assert_neq(rc, WAL_ENOENT,
		      "a missing destination directory reported as a missing "
		      "segment (PostgreSQL would end recovery): %s",
		      e.msg);
}

static void fetch_corrupt(const char *name, const char *why)
{
	char dest[700];
	wal_fetch_result fres;
	wal_error e;

	snprintf(dest, sizeof(dest), "%s/RECOVERYXLOG", restore);
	wal_error_clear(&e);
	wal_err rc = wal_fetch(&cfg, name, dest, data15, &fres, &e);
	cr_assert_eq(rc, WAL_ECORRUPT, "%s: %s (%s)", why, wal_err_name(rc), e.msg);
	cr_assert(!exists(dest), "%s: corrupt object delivered", why);
	cr_assert_eq(count_entries(restore), 0, "%s: temporary file left behind", why);
}

Test(archive, fetch_corrupt_lz4_object, .init = setup, .fini = teardown)
{
	const char *name = "000000010000000000000001";
	char object[700], saved[700];
	size_t len;
	unsigned char *buf;

	push_seg(name, SEG16, SYSID_15, data15);
	obj_path(SYSID_15, name, 1, object, sizeof(object));
	snprintf(saved, sizeof(saved), "%s/saved", base_dir);
	copy_file(object, saved);
	buf = slurp(saved, &len);
	cr_assert_not_null(buf);

	/* a flipped byte in the checksum, in the frame header */
	size_t spots[] = { len - 2, len - 4, 5 };
	for (size_t i = 0; i < sizeof(spots) / sizeof(spots[0]); i++) {
		buf[spots[i]] ^= 0x20;
		spit(object, buf, len);
		buf[spots[i]] ^= 0x20;
		fetch_corrupt(name, "flipped byte");
	}
	/* flipped bytes in the compressed data: refused, or (where LZ4 cannot
	   tell) exactly the original bytes, never anything else */
	unsigned char *orig = make_segment_bytes(name, SEG16, SYSID_15, 1);
	for (size_t k = 1; k < 8; k++) {
		size_t spot = 20 + (len - 30) * k / 8;
		char dest[700];
		wal_fetch_result fres;
		wal_error e;

		buf[spot] ^= 0x20;
		spit(object, buf, len);
		buf[spot] ^= 0x20;
		snprintf(dest, sizeof(dest), "%s/RECOVERYXLOG", restore);
		wal_err rc = wal_fetch(&cfg, name, dest, data15, &fres, &e);
		if (rc == WAL_OK) {
			size_t got_len;
			unsigned char *got = slurp(dest, &got_len);
			cr_assert(got && got_len == SEG16 && memcmp(got, orig, SEG16) == 0,
				  "byte %zu flipped: wrong content delivered", spot);
			free(got);
			unlink(dest);
		} else {
			cr_assert_eq(rc, WAL_ECORRUPT, "byte %zu flipped: %s (%s)", spot,
				     wal_err_name(rc), e.msg);
			cr_assert(!exists(dest));
		}
		cr_assert_leq(count_entries(restore), 0, "temporary file left behind");
	}
	free(orig);
	/* a valid LZ4 frame of the wrong WAL (another segment's header, or short) */
	char plain[700], cmd[1600];
	snprintf(plain, sizeof(plain), "%s/other-seg", base_dir);
	unsigned char *other = make_segment_bytes("000000010000000000000009", SEG16, SYSID_15, 1);
	spit(plain, other, SEG16);
	snprintf(cmd, sizeof(cmd), "lz4 -q -f '%s' '%s'", plain, object);
	cr_assert_eq(system(cmd), 0);
	fetch_corrupt(name, "lz4 frame of another segment");
	spit(plain, other, SEG16 - 8192);
	snprintf(cmd, sizeof(cmd), "lz4 -q -f '%s' '%s'", plain, object);
	cr_assert_eq(system(cmd), 0);
	fetch_corrupt(name, "lz4 frame of a short file");
	free(other);
	/* the right segment, framed by hand without the content checksum: its
	   bytes carry no check, refused; with the checksum (lz4's default):
	   restored */
	const char *seg = make_segment(name, "byhand", SEG16, SYSID_15, 1);
	snprintf(cmd, sizeof(cmd), "lz4 -q -f --no-frame-crc '%s' '%s'", seg, object);
	cr_assert_eq(system(cmd), 0);
	fetch_corrupt(name, "lz4 frame without checksum");
	snprintf(cmd, sizeof(cmd), "lz4 -q -f '%s' '%s'", seg, object);
	cr_assert_eq(system(cmd), 0);
	{
		char dest[700];
		wal_fetch_result fres;
		wal_error e;
		snprintf(dest, sizeof(dest), "%s/RECOVERYXLOG", restore);
		cr_assert_eq(wal_fetch(&cfg, name, dest, data15, &fres, &e), WAL_OK, "%s", e.msg);
		cr_assert(same_files(dest, seg));
		unlink(dest);
	}
	/* truncated */
	spit(object, buf, len - 100);
	fetch_corrupt(name, "truncated object");
	spit(object, buf, 10);
	fetch_corrupt(name, "10-byte object");
	/* not lz4 at all */
	spit(object, "garbage", 7);
	fetch_corrupt(name, "garbage object");
	free(buf);
}

/* compress = none: a flipped byte anywhere is caught by the frame's checksum */
Test(archive, fetch_corrupt_stored_object, .init = setup, .fini = teardown)
{
	const char *name = "000000010000000000000001";
	char object[700], saved[700];
	size_t len;
	unsigned char *buf;

	cfg.compress = WAL_COMPRESS_NONE;
	push_seg(name, SEG16, SYSID_15, data15);
	obj_path(SYSID_15, name, 1, object, sizeof(object));
	snprintf(saved, sizeof(saved), "%s/saved", base_dir);
	copy_file(object, saved);
	buf = slurp(saved, &len);
	cr_assert_not_null(buf);
	size_t spots[] = { len / 2, len / 3, 5000, len - 100, len - 3 };
	for (size_t i = 0; i < sizeof(spots) / sizeof(spots[0]); i++) {
		buf[spots[i]] ^= 0x01;
		spit(object, buf, len);
		buf[spots[i]] ^= 0x01;
		fetch_corrupt(name, "flipped byte in a stored frame");
	}
	spit(object, buf, len - 8192);
	fetch_corrupt(name, "truncated stored frame");
	spit(object, buf, 0);
	fetch_corrupt(name, "empty object");
	free(buf);
}

/* Plain objects of an earlier release: checked as far as their format allows. */
Test(archive, fetch_corrupt_plain_object, .init = setup, .fini = teardown)
{
	const char *name = "000000010000000000000001";
	char object[700];
	unsigned char *buf;

	push_seg("000000010000000000000002", SEG16, SYSID_15, data15);
	obj_path(SYSID_15, name, 0, object, sizeof(object));
	buf = make_segment_bytes(name, SEG16, SYSID_15, 1);

	buf[0] ^= 0xFF; /* magic */
	spit(object, buf, SEG16);
	fetch_corrupt(name, "bad magic");
	buf[0] ^= 0xFF;

	spit(object, buf, SEG16 - 8192); /* truncated */
	fetch_corrupt(name, "truncated uncompressed object");
	spit(object, buf, 0);
	fetch_corrupt(name, "empty uncompressed object");
	unsigned char *longer = calloc(1, SEG16 + 8192);
	memcpy(longer, buf, SEG16);
	spit(object, longer, SEG16 + 8192); /* longer than its header says */
	fetch_corrupt(name, "overlong uncompressed object");
	free(longer);

	/* the header of another segment */
	free(buf);
	buf = make_segment_bytes("000000010000000000000009", SEG16, SYSID_15, 1);
	spit(object, buf, SEG16);
	fetch_corrupt(name, "header of another segment");
	free(buf);
}

/* The same segment of another cluster, swapped in: refused, framed or plain. */
Test(archive, fetch_refuses_foreign_cluster, .init = setup, .fini = teardown)
{
	const char *name = "000000010000000000000001";
	char object[700], plain[700], cmd[1600], dest[700];
	wal_fetch_result fres;
	wal_error e;
	unsigned char *foreign = make_segment_bytes(name, SEG16, SYSID_15 + 1, 1);

	push_seg(name, SEG16, SYSID_15, data15);
	obj_path(SYSID_15, name, 1, object, sizeof(object));
	snprintf(plain, sizeof(plain), "%s/foreign-seg", base_dir);
	spit(plain, foreign, SEG16);
	snprintf(cmd, sizeof(cmd), "lz4 -q -f '%s' '%s'", plain, object);
	cr_assert_eq(system(cmd), 0);
	fetch_corrupt(name, "lz4 frame of another cluster's segment");
	snprintf(dest, sizeof(dest), "%s/RECOVERYXLOG", restore);
	wal_error_clear(&e);
	wal_fetch(&cfg, name, dest, data15, &fres, &e);
	cr_assert_not_null(strstr(e.msg, "another cluster"), "message: %s", e.msg);
	cr_assert_not_null(strstr(e.msg, name), "message names the object: %s", e.msg);

	unlink(object);
	obj_path(SYSID_15, name, 0, object, sizeof(object));
	spit(object, foreign, SEG16);
	fetch_corrupt(name, "another cluster's segment, plain");
	free(foreign);
}

/* An object that expands far beyond a segment is cut off at one segment. */
Test(archive, fetch_refuses_decompression_bomb, .init = setup, .fini = teardown)
{
	const char *name = "000000010000000000000001";
	char object[700], plain[700], cmd[1600], dest[700];
	wal_fetch_result fres;
	wal_error e;
	const size_t big = 4u * SEG16;
	unsigned char *bomb = calloc(1, big);

	push_seg("000000010000000000000002", SEG16, SYSID_15, data15);
	obj_path(SYSID_15, name, 1, object, sizeof(object));
	snprintf(plain, sizeof(plain), "%s/bomb", base_dir);
	/* zeros only: refused at the first 40 bytes */
	spit(plain, bomb, big);
	snprintf(cmd, sizeof(cmd), "lz4 -q -f '%s' '%s'", plain, object);
	cr_assert_eq(system(cmd), 0);
	fetch_corrupt(name, "lz4 frame of zeros");
	/* a valid header, then zeros for four segments' worth */
	put_header(bomb, 1, SEG16, SYSID_15, SEG16);
	spit(plain, bomb, big);
	cr_assert_eq(system(cmd), 0);
	fetch_corrupt(name, "lz4 frame four segments long");
	snprintf(dest, sizeof(dest), "%s/RECOVERYXLOG", restore);
	wal_error_clear(&e);
	wal_fetch(&cfg, name, dest, data15, &fres, &e);
	cr_assert_not_null(strstr(e.msg, "expands beyond 16777216 bytes"), "message: %s", e.msg);
	/* a history file that grows past the cap of a text file */
	obj_path(SYSID_15, "00000002.history", 1, object, sizeof(object));
	memset(bomb, 'a', big);
	spit(plain, bomb, 2 * WAL_TEXT_FILE_MAX);
	snprintf(cmd, sizeof(cmd), "lz4 -q -f '%s' '%s'", plain, object);
	cr_assert_eq(system(cmd), 0);
	fetch_corrupt("00000002.history", "history file of 2 MiB");
	free(bomb);
}

/*
 * A header may claim segments of up to 1 GiB: a segment of another size than
 * the cluster's (its pg_control's) is refused at its header, so nothing
 * beyond one segment of the cluster's size reaches the destination.
 */
Test(archive, fetch_refuses_segment_size_not_the_clusters, .init = setup, .fini = teardown)
{
	const char *name = "000000010000000000000001";
	char object[700], plain[700], cmd[1600], dest[700];
	wal_fetch_result fres;
	wal_error e;
	const uint32_t big = 2 * SEG16;
	unsigned char *seg = calloc(1, big);

	push_seg("000000010000000000000002", SEG16, SYSID_15, data15);
	obj_path(SYSID_15, name, 1, object, sizeof(object));
	snprintf(plain, sizeof(plain), "%s/big", base_dir);
	/* a whole segment of 32 MiB, by its header, of this cluster at this position */
	put_header(seg, 1, big, SYSID_15, big);
	spit(plain, seg, big);
	snprintf(cmd, sizeof(cmd), "lz4 -q -f '%s' '%s'", plain, object);
	cr_assert_eq(system(cmd), 0);
	fetch_corrupt(name, "a segment of 32 MiB for a cluster of 16 MiB segments");
	snprintf(dest, sizeof(dest), "%s/RECOVERYXLOG", restore);
	wal_error_clear(&e);
	wal_fetch(&cfg, name, dest, data15, &fres, &e);
	cr_assert_not_null(strstr(e.msg,
				  "its header gives segments of 33554432 bytes, this cluster's are "
				  "16777216 bytes"),
			   "message: %s", e.msg);
	/* where the cluster's size is not known here, the header's bounds, as before */
	cfg.system_id = SYSID_15;
	cr_assert_eq(wal_fetch(&cfg, name, dest, NULL, &fres, &e), WAL_OK, "%s", e.msg);
	cr_assert_eq(fres.seg_size, big);
	free(seg);
}

/* "Not in the archive" only when this cluster's tree is there. */
Test(archive, fetch_without_tree_is_an_error, .init = setup, .fini = teardown)
{
	char dest[700], info[700], saved[700];
	wal_fetch_result fres;
	wal_error e;

	snprintf(dest, sizeof(dest), "%s/RECOVERYXLOG", restore);
	/* an empty archive root (an unmounted file system, a wrong prefix) */
	wal_err rc = wal_fetch(&cfg, "000000010000000000000001", dest, data15, &fres, &e);
	cr_assert_eq(rc, WAL_EIO, "empty root: %s (%s)", wal_err_name(rc), e.msg);
	cr_assert_not_null(strstr(e.msg, WAL_INFO_NAME), "message: %s", e.msg);
	rc = wal_fetch(&cfg, "00000002.history", dest, data15, &fres, &e);
	cr_assert_eq(rc, WAL_EIO, "history, empty root: %s (%s)", wal_err_name(rc), e.msg);
	/* no pg_control and no system_id: an archive without clusters proves nothing */
	rc = wal_fetch(&cfg, "000000010000000000000001", dest, NULL, &fres, &e);
	cr_assert_eq(rc, WAL_EIO, "no cluster at all: %s (%s)", wal_err_name(rc), e.msg);
	/* another cluster's tree is there, not this one's */
	push_seg("000000010000000000000001", SEG16, SYSID_16, data16);
	rc = wal_fetch(&cfg, "000000010000000000000001", dest, data15, &fres, &e);
	cr_assert_eq(rc, WAL_EIO, "other cluster only: %s (%s)", wal_err_name(rc), e.msg);
	/* this cluster's tree without its walarchive.info: no evidence either */
	push_seg("000000010000000000000001", SEG16, SYSID_15, data15);
	snprintf(info, sizeof(info), "%s/%llu/%s", root, (unsigned long long)SYSID_15,
		 WAL_INFO_NAME);
	snprintf(saved, sizeof(saved), "%s/saved-info", base_dir);
	cr_assert_eq(rename(info, saved), 0);
	rc = wal_fetch(&cfg, "000000010000000000000002", dest, data15, &fres, &e);
	cr_assert_eq(rc, WAL_EIO, "tree without info: %s (%s)", wal_err_name(rc), e.msg);
	cr_assert(!exists(dest));
	/* with it back (a walpush process writes it when missing), absence is evidence */
	cr_assert_eq(rename(saved, info), 0);
	rc = wal_fetch(&cfg, "000000010000000000000002", dest, data15, &fres, &e);
	cr_assert_eq(rc, WAL_ENOENT, "tree with info: %s (%s)", wal_err_name(rc), e.msg);
}

Test(archive, fetch_chooses_cluster, .init = setup, .fini = teardown)
{
	const char *name = "000000010000000000000002";
	char seg15[600], seg16[600], dest[700];
	wal_fetch_result fres;
	wal_error e;

	snprintf(seg15, sizeof(seg15), "%s", make_segment(name, "c15", SEG16, SYSID_15, 15));
	push_ok(seg15, name, data15, WAL_PUSHED);
	snprintf(dest, sizeof(dest), "%s/RECOVERYXLOG", restore);

	/* one cluster: no pg_control, no setting needed */
	cr_assert_eq(wal_fetch(&cfg, name, dest, NULL, &fres, &e), WAL_OK, "%s", e.msg);
	cr_assert_eq(fres.system_id, SYSID_15);
	cr_assert(same_files(dest, seg15));
	unlink(dest);

	snprintf(seg16, sizeof(seg16), "%s", make_segment(name, "c16", SEG16, SYSID_16, 16));
	push_ok(seg16, name, data16, WAL_PUSHED);

	/* two clusters and nothing to choose by */
	wal_error_clear(&e);
	cr_assert_eq(wal_fetch(&cfg, name, dest, NULL, &fres, &e), WAL_EAMBIGUOUS, "%s", e.msg);
	cr_assert(!exists(dest));

	/* a data directory without pg_control is nothing to choose by either */
	char empty[600];
	snprintf(empty, sizeof(empty), "%s/empty-datadir", base_dir);
	cr_assert_eq(mkdir(empty, 0700), 0);
	cr_assert_eq(wal_fetch(&cfg, name, dest, empty, &fres, &e), WAL_EAMBIGUOUS, "%s", e.msg);

	/* by pg_control */
	cr_assert_eq(wal_fetch(&cfg, name, dest, data16, &fres, &e), WAL_OK, "%s", e.msg);
	cr_assert_eq(fres.system_id, SYSID_16);
	cr_assert(same_files(dest, seg16), "fetched the other cluster's segment");
	unlink(dest);
	cr_assert_eq(wal_fetch(&cfg, name, dest, data15, &fres, &e), WAL_OK, "%s", e.msg);
	cr_assert(same_files(dest, seg15), "fetched the other cluster's segment");
	unlink(dest);

	/* by setting */
	cfg.system_id = SYSID_16;
	cr_assert_eq(wal_fetch(&cfg, name, dest, NULL, &fres, &e), WAL_OK, "%s", e.msg);
	cr_assert(same_files(dest, seg16));
	unlink(dest);

	/* wal_archive_system_id directly */
	wal_store *s;
	uint64_t id = 0;
	cr_assert_eq(wal_store_open(&s, &cfg, &e), WAL_OK, "%s", e.msg);
	cr_assert_eq(wal_archive_system_id(s, &cfg, data15, &id, &e), WAL_OK, "%s", e.msg);
	cr_assert_eq(id, SYSID_15, "pg_control comes before the setting");
	cr_assert_eq(wal_archive_system_id(s, &cfg, NULL, &id, &e), WAL_OK, "%s", e.msg);
	cr_assert_eq(id, SYSID_16);
	cfg.system_id = 0;
	cr_assert_eq(wal_archive_system_id(s, &cfg, NULL, &id, &e), WAL_EAMBIGUOUS);
	wal_store_close(s);
}

/* ---- prune ---- */

typedef struct removed_list {
	int n;
	char paths[64][256];
} removed_list;

static void on_object(void *arg, const char *path, int64_t size)
{
	removed_list *r = arg;
	(void)size;
	cr_assert_lt(r->n, 64);
	snprintf(r->paths[r->n++], sizeof(r->paths[0]), "%s", path);
}

static int was_reported(const removed_list *r, const char *name)
{
	for (int i = 0; i < r->n; i++) {
		const char *slash = strrchr(r->paths[i], '/');
		const char *base = slash ? slash + 1 : r->paths[i];
		if (!strncmp(base, name, strlen(name)) &&
		    (base[strlen(name)] == '\0' || !strcmp(base + strlen(name), ".lz4")))
			return 1;
	}
	return 0;
}

static int archived(const char *name)
{
	char a[700], b[700];
	obj_path(SYSID_15, name, 1, a, sizeof(a));
	obj_path(SYSID_15, name, 0, b, sizeof(b));
	return exists(a) || exists(b);
}

/* Two promotions: 1 -> 2 at segment 2, 2 -> 3 at 0000000100000001 (1 MiB segments). */
static const char *timeline_removed[] = {
	"000000010000000000000001", "000000010000000000000002.partial", "000000020000000000000002",
	"000000020000000000000FFF", "000000020000000100000000",
};
static const char *timeline_kept[] = {
	"000000020000000100000001.partial",
	"000000030000000100000001",
	"000000030000000100000002",
	"00000002.history",
	"00000003.history",
};

static void push_timelines(void)
{
	for (size_t i = 0; i < 5; i++) {
		const char *n = timeline_removed[i];
		char seg[25];
		memcpy(seg, n, 24);
		seg[24] = '\0';
		push_ok(make_segment(seg, n, SEG1, SYSID_15, (uint32_t)i), n, data15, WAL_PUSHED);
	}
	for (size_t i = 0; i < 3; i++) {
		const char *n = timeline_kept[i];
		char seg[25];
		memcpy(seg, n, 24);
		seg[24] = '\0';
		push_ok(make_segment(seg, n, SEG1, SYSID_15, 10 + (uint32_t)i), n, data15,
			WAL_PUSHED);
	}
	push_ok(make_text("00000002.history", "1\t0/200000\tno recovery target specified\n"),
		"00000002.history", data15, WAL_PUSHED);
	push_ok(make_text("00000003.history", "1\t0/200000\tno recovery target specified\n"
					      "2\t1/100000\tno recovery target specified\n"),
		"00000003.history", data15, WAL_PUSHED);
	cr_assert_eq(count_objects_in(root), 10);
}

Test(archive, prune_before, .init = setup, .fini = teardown)
{
	wal_prune_opts opts = { .before = "000000030000000100000001",
				.keep_days = -1,
				.datadir = data15,
				.on_object = on_object };
	wal_prune_result res;
	removed_list removed = { 0 };
	wal_error e;
	char info[700];

	push_timelines();
	snprintf(info, sizeof(info), "%s/7712300585176830670/%s", root, WAL_INFO_NAME);
	int info_before = exists(info);
	opts.arg = &removed;
	memset(&res, 0, sizeof(res));
	cr_assert_eq(wal_prune(&cfg, &opts, &res, &e), WAL_OK, "%s", e.msg);
	for (size_t i = 0; i < 5; i++) {
		cr_assert_not(archived(timeline_removed[i]), "%s not pruned", timeline_removed[i]);
		cr_assert(was_reported(&removed, timeline_removed[i]), "%s not reported",
			  timeline_removed[i]);
	}
	for (size_t i = 0; i < 5; i++)
		cr_assert(archived(timeline_kept[i]), "%s pruned", timeline_kept[i]);
	cr_assert_eq(res.objects, 5);
	cr_assert_eq(removed.n, 5);
	cr_assert_gt(res.bytes, 0);
	snprintf(info, sizeof(info), "%s/7712300585176830670/%s", root, WAL_INFO_NAME);
	cr_assert_eq(exists(info), info_before, "walarchive.info removed");

	/* again: nothing left to remove */
	memset(&res, 0, sizeof(res));
	removed.n = 0;
	cr_assert_eq(wal_prune(&cfg, &opts, &res, &e), WAL_OK, "%s", e.msg);
	cr_assert_eq(res.objects, 0);
	cr_assert_eq(count_objects_in(root), 5);
}

/* A new archive, before the first push: nothing to do, not an error; a missing root is one. */
Test(archive, prune_empty_archive, .init = setup, .fini = teardown)
{
	wal_prune_opts opts = { .keep_backups = 2, .keep_days = -1, .datadir = data15 };
	wal_prune_result res;
	wal_error e;
	char missing[400];

	/* the cluster known from pg_control, no tree for it */
	cr_assert_eq(wal_prune(&cfg, &opts, &res, &e), WAL_OK, "%s", e.msg);
	cr_assert(res.empty);
	cr_assert_eq(res.system_id, 7712300585176830670ULL);
	cr_assert_eq(res.objects, 0);
	/* no cluster known and none in the archive */
	opts.datadir = base_dir;
	cr_assert_eq(wal_prune(&cfg, &opts, &res, &e), WAL_OK, "%s", e.msg);
	cr_assert(res.empty);
	cr_assert_eq(res.system_id, 0);
	/* an archive root that does not exist is unreachable, not empty */
	snprintf(missing, sizeof(missing), "%s/missing", base_dir);
	free(cfg.archive);
	cfg.archive = strdup(missing);
	cr_assert_eq(wal_prune(&cfg, &opts, &res, &e), WAL_EIO);
	cr_assert(strstr(e.msg, "does not exist"), "%s", e.msg);
	/* with WAL archived, it is not empty */
	free(cfg.archive);
	cfg.archive = strdup(root);
	push_timelines();
	opts.datadir = data15;
	cr_assert_eq(wal_prune(&cfg, &opts, &res, &e), WAL_OK, "%s", e.msg);
	cr_assert_not(res.empty);
}

Test(archive, prune_removes_emptied_directories, .init = setup, .fini = teardown)
{
	wal_prune_opts opts = { .before = "000000030000000100000001",
				.keep_days = -1,
				.datadir = data15 };
	wal_prune_result res;
	wal_error e;
	char d[700];

	push_timelines();
	cr_assert_eq(wal_prune(&cfg, &opts, &res, &e), WAL_OK, "%s", e.msg);
	snprintf(d, sizeof(d), "%s/7712300585176830670/0000000100000000", root);
	cr_assert(!exists(d), "empty directory %s left", d);
	snprintf(d, sizeof(d), "%s/7712300585176830670/0000000200000000", root);
	cr_assert(!exists(d), "empty directory %s left", d);
	snprintf(d, sizeof(d), "%s/7712300585176830670/0000000200000001", root);
	cr_assert(exists(d), "directory still holding a partial removed");
	cr_assert_geq(res.dirs, 2);
}

Test(archive, prune_dry_run_removes_nothing, .init = setup, .fini = teardown)
{
	wal_prune_opts opts = { .before = "000000030000000100000001",
				.keep_days = -1,
				.dry_run = 1,
				.datadir = data15,
				.on_object = on_object };
	wal_prune_result res;
	removed_list removed = { 0 };
	wal_error e;

	push_timelines();
	opts.arg = &removed;
	memset(&res, 0, sizeof(res));
	cr_assert_eq(wal_prune(&cfg, &opts, &res, &e), WAL_OK, "%s", e.msg);
	cr_assert_eq(count_objects_in(root), 10, "dry run removed objects");
	cr_assert_eq(res.objects, 5, "dry run counts what it would remove");
	cr_assert_eq(removed.n, 5);
	for (size_t i = 0; i < 5; i++)
		cr_assert(was_reported(&removed, timeline_removed[i]), "%s not listed",
			  timeline_removed[i]);
}

Test(archive, prune_refuses_bad_before, .init = setup, .fini = teardown)
{
	const char *bad[] = { "../x", "00000003000000010000000", "000000030000000100000001.gz",
			      "zzz" };
	wal_prune_result res;
	wal_error e;

	push_timelines();
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		wal_prune_opts opts = { .before = bad[i], .keep_days = -1, .datadir = data15 };
		cr_assert_eq(wal_prune(&cfg, &opts, &res, &e), WAL_EINVAL, "--before %s", bad[i]);
	}
	cr_assert_eq(count_objects_in(root), 10);
}

static void push_backup_history(void)
{
	for (int i = 1; i <= 6; i++) {
		char name[25];
		wal_segment_name(1, (uint64_t)i, SEG1, name);
		push_ok(make_segment(name, NULL, SEG1, SYSID_15, (uint32_t)i), name, data15,
			WAL_PUSHED);
	}
	push_ok(make_text("b1", "START WAL LOCATION: 0/200028 (file 000000010000000000000002)\n"
				"STOP WAL LOCATION: 0/200100 (file 000000010000000000000002)\n"
				"CHECKPOINT LOCATION: 0/200060\nSTART TIMELINE: 1\n"),
		"000000010000000000000002.00000028.backup", data15, WAL_PUSHED);
	push_ok(make_text("b2", "START WAL LOCATION: 0/400060 (file 000000010000000000000004)\n"
				"STOP WAL LOCATION: 0/400138 (file 000000010000000000000004)\n"
				"CHECKPOINT LOCATION: 0/400098\nSTART TIMELINE: 1\n"),
		"000000010000000000000004.00000060.backup", data15, WAL_PUSHED);
	push_ok(make_text("00000002.history", "1\t0/700000\tno recovery target specified\n"),
		"00000002.history", data15, WAL_PUSHED);
}

Test(archive, prune_keep_backups, .init = setup, .fini = teardown)
{
	wal_prune_opts opts = { .keep_backups = 2, .keep_days = -1, .datadir = data15 };
	wal_prune_result res;
	wal_error e;

	push_backup_history();
	cr_assert_eq(wal_prune(&cfg, &opts, &res, &e), WAL_OK, "%s", e.msg);
	cr_assert_not(archived("000000010000000000000001"), "older than both backups: not pruned");
	for (int i = 2; i <= 6; i++) {
		char name[25];
		wal_segment_name(1, (uint64_t)i, SEG1, name);
		cr_assert(archived(name), "%s pruned, the older backup needs it", name);
	}
	cr_assert(archived("000000010000000000000002.00000028.backup"));

	opts.keep_backups = 1;
	cr_assert_eq(wal_prune(&cfg, &opts, &res, &e), WAL_OK, "%s", e.msg);
	cr_assert_not(archived("000000010000000000000002"));
	cr_assert_not(archived("000000010000000000000003"));
	for (int i = 4; i <= 6; i++) {
		char name[25];
		wal_segment_name(1, (uint64_t)i, SEG1, name);
		cr_assert(archived(name), "%s pruned, the newest backup needs it", name);
	}
	cr_assert(archived("000000010000000000000004.00000060.backup"), "newest .backup pruned");
	cr_assert(archived("00000002.history"));
}

/* archive.h: keep_backups beyond the backups archived removes nothing. */
Test(archive, prune_keep_backups_more_than_exist, .init = setup, .fini = teardown)
{
	wal_prune_opts opts = { .keep_backups = 3, .keep_days = -1, .datadir = data15 };
	wal_prune_result res;
	wal_error e;

	push_backup_history();
	int before = count_objects_in(root);
	memset(&res, 0, sizeof(res));
	wal_prune(&cfg, &opts, &res, &e);
	cr_assert_eq(count_objects_in(root), before,
		     "keep 3 backups with only 2 in the archive removed objects");
	cr_assert_eq(res.objects, 0);
	cr_assert_eq(res.backups, 2, "backups found: %d", res.backups);
}

/* The most conservative horizon wins. */
Test(archive, prune_combined_options, .init = setup, .fini = teardown)
{
	wal_prune_opts opts = { .before = "000000010000000000000006",
				.keep_backups = 2,
				.keep_days = -1,
				.datadir = data15 };
	wal_prune_result res;
	wal_error e;

	push_backup_history();
	cr_assert_eq(wal_prune(&cfg, &opts, &res, &e), WAL_OK, "%s", e.msg);
	cr_assert_not(archived("000000010000000000000001"));
	cr_assert(archived("000000010000000000000002"),
		  "--before went past what a kept backup needs");
	cr_assert(archived("000000010000000000000005"));
}

static void set_age(const char *name, int days)
{
	char a[700], b[700];
	struct timeval tv[2];

	obj_path(SYSID_15, name, 1, a, sizeof(a));
	obj_path(SYSID_15, name, 0, b, sizeof(b));
	gettimeofday(&tv[0], NULL);
	tv[0].tv_sec -= (time_t)days * 86400;
	tv[1] = tv[0];
	cr_assert(utimes(a, tv) == 0 || utimes(b, tv) == 0, "utimes %s", name);
}

Test(archive, prune_keep_days, .init = setup, .fini = teardown)
{
	wal_prune_opts opts = { .keep_days = 5, .datadir = data15 };
	wal_prune_result res;
	wal_error e;

	for (int i = 1; i <= 4; i++) {
		char name[25];
		wal_segment_name(1, (uint64_t)i, SEG1, name);
		push_ok(make_segment(name, NULL, SEG1, SYSID_15, (uint32_t)i), name, data15,
			WAL_PUSHED);
	}
	/* everything recent: nothing to remove */
	cr_assert_eq(wal_prune(&cfg, &opts, &res, &e), WAL_OK, "%s", e.msg);
	cr_assert_eq(count_objects_in(root), 4);

	set_age("000000010000000000000001", 10);
	set_age("000000010000000000000002", 9);
	cr_assert_eq(wal_prune(&cfg, &opts, &res, &e), WAL_OK, "%s", e.msg);
	cr_assert_not(archived("000000010000000000000001"), "10 days old, keep_days 5");
	cr_assert_not(archived("000000010000000000000002"), "9 days old, keep_days 5");
	cr_assert(archived("000000010000000000000003"));
	cr_assert(archived("000000010000000000000004"));
}

/* Switching compress between pushes must not let different content in. */
Test(archive, push_compression_switch, .init = setup, .fini = teardown)
{
	const char *name = "000000010000000000000006";
	char wal[600], other[600], dest[700];
	wal_push_result res;
	wal_fetch_result fres;
	wal_error e;

	cfg.compress = WAL_COMPRESS_NONE;
	snprintf(wal, sizeof(wal), "%s", make_segment(name, NULL, SEG16, SYSID_15, 21));
	push_ok(wal, name, data15, WAL_PUSHED);

	cfg.compress = WAL_COMPRESS_LZ4;
	wal_error_clear(&e);
	cr_assert_eq(wal_push(&cfg, wal, name, data15, &res, &e), WAL_OK,
		     "re-push of the same segment after compress changed: %s", e.msg);
	snprintf(other, sizeof(other), "%s", make_segment(name, "other", SEG16, SYSID_15, 22));
	wal_error_clear(&e);
	cr_assert_eq(wal_push(&cfg, other, name, data15, &res, &e), WAL_EEXIST_DIFFERENT,
		     "different content accepted once compress changed: %s (%s)",
		     wal_err_name(e.code), e.msg);
	snprintf(dest, sizeof(dest), "%s/RECOVERYXLOG", restore);
	cr_assert_eq(wal_fetch(&cfg, name, dest, data15, &fres, &e), WAL_OK, "%s", e.msg);
	cr_assert(same_files(dest, wal), "fetch returns other bytes than the first push");
}

/*
 * compress = zstd writes NAME.zst, a frame with its checksum that walfetch
 * restores; switching between lz4 and zstd finds the object in the other
 * frame: the same content is a duplicate (no second object), different
 * content is refused.
 */
Test(archive, push_zstd_and_switch_with_lz4, .init = setup, .fini = teardown)
{
	const char *a = "000000010000000000000006", *b = "000000010000000000000007";
	char wal_a[600], wal_b[600], other[600], dest[700], lz4_a[700], zst_a[700], lz4_b[700],
		zst_b[700];
	wal_push_result res;
	wal_fetch_result fres;
	wal_error e;
	size_t len;

	snprintf(wal_a, sizeof(wal_a), "%s", make_segment(a, NULL, SEG16, SYSID_15, 31));
	snprintf(wal_b, sizeof(wal_b), "%s", make_segment(b, NULL, SEG16, SYSID_15, 32));
	obj_path(SYSID_15, a, WAL_OBJ_LZ4, lz4_a, sizeof(lz4_a));
	obj_path(SYSID_15, a, WAL_OBJ_ZSTD, zst_a, sizeof(zst_a));
	obj_path(SYSID_15, b, WAL_OBJ_LZ4, lz4_b, sizeof(lz4_b));
	obj_path(SYSID_15, b, WAL_OBJ_ZSTD, zst_b, sizeof(zst_b));
	cr_assert(strstr(zst_a, "/0000000100000000/000000010000000000000006.zst"), "%s", zst_a);

	cfg.compress = WAL_COMPRESS_ZSTD;
	push_ok(wal_a, a, data15, WAL_PUSHED);
	cr_assert(exists(zst_a) && !exists(lz4_a), "compress = zstd did not write only %s", zst_a);
	unsigned char *frame = slurp(zst_a, &len);
	cr_assert(len > 5 && memcmp(frame, "\x28\xb5\x2f\xfd", 4) == 0, "not a zstd frame");
	cr_assert(frame[4] & 0x04, "no content checksum flag");
	free(frame);
	snprintf(dest, sizeof(dest), "%s/RECOVERYXLOG", restore);
	cr_assert_eq(wal_fetch(&cfg, a, dest, data15, &fres, &e), WAL_OK, "%s", e.msg);
	cr_assert(same_files(dest, wal_a));
	cr_assert_str_eq(fres.object + strlen(fres.object) - 4, ".zst");
	unlink(dest);

	/* now lz4: the zstd object is the segment's */
	cfg.compress = WAL_COMPRESS_LZ4;
	push_ok(wal_a, a, data15, WAL_PUSH_DUPLICATE);
	cr_assert(!exists(lz4_a), "a second object for the same segment");
	snprintf(other, sizeof(other), "%s", make_segment(a, "other", SEG16, SYSID_15, 33));
	cr_assert_eq(wal_push(&cfg, other, a, data15, &res, &e), WAL_EEXIST_DIFFERENT,
		     "different content over a zstd object accepted: %s", e.msg);
	cr_assert_not_null(strstr(e.msg, ".zst"), "message: %s", e.msg);
	cr_assert(!exists(lz4_a));
	/* and an lz4 object when compress is zstd again */
	push_ok(wal_b, b, data15, WAL_PUSHED);
	cfg.compress = WAL_COMPRESS_ZSTD;
	push_ok(wal_b, b, data15, WAL_PUSH_DUPLICATE);
	cr_assert(!exists(zst_b), "a second object for the same segment");
	snprintf(other, sizeof(other), "%s", make_segment(b, "other", SEG16, SYSID_15, 34));
	cr_assert_eq(wal_push(&cfg, other, b, data15, &res, &e), WAL_EEXIST_DIFFERENT,
		     "different content over an lz4 object accepted: %s", e.msg);
	cr_assert(!exists(zst_b));
	/* a mixed archive restores either way round */
	for (int i = 0; i < 2; i++) {
		cfg.compress = i ? WAL_COMPRESS_LZ4 : WAL_COMPRESS_ZSTD;
		cr_assert_eq(wal_fetch(&cfg, a, dest, data15, &fres, &e), WAL_OK, "%s", e.msg);
		cr_assert(same_files(dest, wal_a));
		cr_assert_eq(wal_fetch(&cfg, b, dest, data15, &fres, &e), WAL_OK, "%s", e.msg);
		cr_assert(same_files(dest, wal_b));
	}
	unlink(dest);
}

/* Listing entries name their form; the lookup order puts the configured frame first. */
Test(archive, zstd_forms)
{
	static const struct {
		const char *entry;
		int form;
	} cases[] = {
		{ "000000010000000000000001.zst", WAL_OBJ_ZSTD },
		{ "000000010000000000000001.zst.age", WAL_OBJ_ZSTD | WAL_OBJ_AGE },
		{ "000000010000000000000001.lz4.age", WAL_OBJ_LZ4 | WAL_OBJ_AGE },
		{ "000000010000000000000001.lz4", WAL_OBJ_LZ4 },
		{ "000000010000000000000001.age", WAL_OBJ_AGE },
		{ "000000010000000000000001", 0 },
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char entry[64];
		snprintf(entry, sizeof(entry), "%s", cases[i].entry);
		cr_assert_eq(wal_archive_object_form(entry), cases[i].form, "%s", cases[i].entry);
		cr_assert_str_eq(entry, "000000010000000000000001");
	}
	int forms[WAL_ARCHIVE_FORMS];
	wal_archive_forms(0, WAL_OBJ_ZSTD, forms);
	cr_assert_eq(forms[0], WAL_OBJ_ZSTD);
	cr_assert_eq(forms[1], WAL_OBJ_LZ4);
	wal_archive_forms(1, WAL_OBJ_ZSTD, forms);
	cr_assert_eq(forms[0], WAL_OBJ_ZSTD | WAL_OBJ_AGE);
	wal_archive_forms(0, WAL_OBJ_LZ4, forms);
	cr_assert_eq(forms[0], WAL_OBJ_LZ4);
	/* every form once */
	int seen = 0;
	for (int i = 0; i < WAL_ARCHIVE_FORMS; i++)
		seen |= 1 << forms[i];
	cr_assert_eq(seen, (1 << 0) | (1 << WAL_OBJ_LZ4) | (1 << WAL_OBJ_ZSTD) |
				   (1 << WAL_OBJ_AGE) | (1 << (WAL_OBJ_LZ4 | WAL_OBJ_AGE)) |
				   (1 << (WAL_OBJ_ZSTD | WAL_OBJ_AGE)));
}

/* A zstd bomb, an unchecked and a damaged zstd object: refused, nothing delivered. */
Test(archive, fetch_refuses_bad_zstd_objects, .init = setup, .fini = teardown)
{
	const char *name = "000000010000000000000001";
	char object[700], plain[700], cmd[1600], dest[700];
	wal_fetch_result fres;
	wal_error e;
	const size_t big = 4u * SEG16;
	unsigned char *bomb = calloc(1, big);

	push_seg("000000010000000000000002", SEG16, SYSID_15, data15);
	obj_path(SYSID_15, name, WAL_OBJ_ZSTD, object, sizeof(object));
	snprintf(plain, sizeof(plain), "%s/bomb", base_dir);
	put_header(bomb, 1, SEG16, SYSID_15, SEG16);
	spit(plain, bomb, big);
	snprintf(cmd, sizeof(cmd), "zstd -q -f --check '%s' -o '%s'", plain, object);
	cr_assert_eq(system(cmd), 0);
	fetch_corrupt(name, "zstd frame four segments long");
	snprintf(dest, sizeof(dest), "%s/RECOVERYXLOG", restore);
	wal_error_clear(&e);
	wal_fetch(&cfg, name, dest, data15, &fres, &e);
	cr_assert_not_null(strstr(e.msg, "expands beyond 16777216 bytes"), "message: %s", e.msg);

	/* a real segment made by hand without --check: refused; with it: restored */
	const char *seg = make_segment(name, "byhand", SEG16, SYSID_15, 1);
	snprintf(cmd, sizeof(cmd), "zstd -q -f --no-check '%s' -o '%s'", seg, object);
	cr_assert_eq(system(cmd), 0);
	fetch_corrupt(name, "zstd frame without checksum");
	wal_fetch(&cfg, name, dest, data15, &fres, &e);
	cr_assert_not_null(strstr(e.msg, "without a content checksum"), "message: %s", e.msg);
	snprintf(cmd, sizeof(cmd), "zstd -q -f --check '%s' -o '%s'", seg, object);
	cr_assert_eq(system(cmd), 0);
	cr_assert_eq(wal_fetch(&cfg, name, dest, data15, &fres, &e), WAL_OK, "%s", e.msg);
	cr_assert(same_files(dest, seg));
	unlink(dest);
	/* its checksum damaged */
	size_t len;
	unsigned char *frame = slurp(object, &len);
	frame[len - 1] ^= 0x40;
	spit(object, frame, len);
	fetch_corrupt(name, "zstd frame with a damaged checksum");
	free(frame);
	free(bomb);
}

/* archive_command runs in the data directory; without pg_control the header decides. */
Test(archive, push_datadir_without_pg_control, .init = setup, .fini = teardown)
{
	char empty[600];

	snprintf(empty, sizeof(empty), "%s/not-a-datadir", base_dir);
	cr_assert_eq(mkdir(empty, 0700), 0);
	push_ok(make_segment("000000010000000000000001", NULL, SEG16, SYSID_15, 1),
		"000000010000000000000001", empty, WAL_PUSHED);
}

/*
 * A fault at every counted call (of kind) of one push: never an object under
 * its final name with other bytes, the error code of the fault, and the next
 * push succeeds (as PostgreSQL retries archive_command).
 */
static void push_fault_walk(int err, wal_sys_call kind, wal_err expect)
{
	const char *name = "000000010000000000000003";
	char wal[600], object[700], dest[700], tree[700], cmd[800];
	wal_push_result res;
	wal_fetch_result fres;
	wal_error e;
	long total;
	int failures = 0;

	snprintf(wal, sizeof(wal), "%s", make_segment(name, NULL, SEG1, SYSID_15, 31));
	set_seg_size(data15, SEG1); /* a cluster of 1 MiB segments, for speed */
	obj_path(SYSID_15, name, 1, object, sizeof(object));
	snprintf(dest, sizeof(dest), "%s/RECOVERYXLOG", restore);
	snprintf(tree, sizeof(tree), "%s/7712300585176830670", root);
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tree);

	/* count the calls of a push into a fresh tree (it makes the directories) */
	wal_sys_fault_arm(0, 0, kind);
	push_ok(wal, name, data15, WAL_PUSHED);
	total = wal_sys_fault_calls();
	cr_assert_gt(total, 0, "wal_push makes no counted calls of kind %d", kind);

	for (long n = 1; n <= total; n++) {
		cr_assert_eq(system(cmd), 0);
		wal_sys_fault_arm(n, err, kind);
		wal_error_clear(&e);
		wal_err rc = wal_push(&cfg, wal, name, data15, &res, &e);
		wal_sys_fault_arm(0, 0, WAL_SYS_COUNT);
		if (rc != WAL_OK) {
			failures++;
			cr_assert_eq(rc, expect, "fault %ld/%ld: %s (%s)", n, total,
				     wal_err_name(rc), e.msg);
		}
		if (exists(object)) {
			cr_assert_eq(wal_fetch(&cfg, name, dest, data15, &fres, &e), WAL_OK,
				     "fault %ld/%ld: object under its final name is not whole: %s",
				     n, total, e.msg);
			cr_assert(same_files(dest, wal), "fault %ld: wrong bytes archived", n);
			unlink(dest);
		} else {
			cr_assert_neq(rc, WAL_OK, "fault %ld: WAL_OK but no object", n);
		}
		wal_error_clear(&e);
		cr_assert_eq(wal_push(&cfg, wal, name, data15, &res, &e), WAL_OK,
			     "fault %ld/%ld: push after the fault: %s (%s)", n, total,
			     wal_err_name(e.code), e.msg);
		cr_assert_eq(wal_fetch(&cfg, name, dest, data15, &fres, &e), WAL_OK, "%s", e.msg);
		cr_assert(same_files(dest, wal));
		unlink(dest);
	}
	cr_assert_gt(failures, 0, "no fault made the push fail");
}

Test(archive, push_fault_walk_eio_any_call, .init = setup, .fini = teardown)
{
	push_fault_walk(EIO, WAL_SYS_COUNT, WAL_EIO);
}

Test(archive, push_fault_walk_enospc_writes, .init = setup, .fini = teardown)
{
	push_fault_walk(ENOSPC, WAL_SYS_WRITE, WAL_ENOSPC);
}

Test(archive, push_fault_walk_enospc_mkdir, .init = setup, .fini = teardown)
{
	push_fault_walk(ENOSPC, WAL_SYS_MKDIR, WAL_ENOSPC);
}

Test(archive, push_fault_walk_eio_fsync, .init = setup, .fini = teardown)
{
	push_fault_walk(EIO, WAL_SYS_FSYNC, WAL_EIO);
}

/*
 * An I/O error at every counted call of one fetch: the destination holds the
 * whole segment or nothing (on failure too), no temporary file is left, and the failure is
 * never WAL_ENOENT (walfetch exit 1 would end recovery as if WAL ran out).
 */
Test(archive, fetch_fault_walk, .init = setup, .fini = teardown)
{
	const char *name = "000000010000000000000003";
	char wal[600], dest[700];
	wal_fetch_result fres;
	wal_error e;
	long total;
	int failures = 0;

	snprintf(wal, sizeof(wal), "%s", make_segment(name, NULL, 4 * SEG1, SYSID_15, 41));
	set_seg_size(data15, 4 * SEG1);
	push_ok(wal, name, data15, WAL_PUSHED);
	snprintf(dest, sizeof(dest), "%s/RECOVERYXLOG", restore);
	cfg.fetch_fsync = 1; /* the file's and the directory's fsync fail too */

	wal_sys_fault_arm(0, 0, WAL_SYS_COUNT);
	cr_assert_eq(wal_fetch(&cfg, name, dest, data15, &fres, &e), WAL_OK, "%s", e.msg);
	total = wal_sys_fault_calls();
	cr_assert_gt(total, 3, "wal_fetch makes only %ld counted calls", total);
	unlink(dest);

	for (long n = 1; n <= total; n++) {
		wal_sys_fault_arm(n, EIO, WAL_SYS_COUNT);
		wal_error_clear(&e);
		wal_err rc = wal_fetch(&cfg, name, dest, data15, &fres, &e);
		wal_sys_fault_arm(0, 0, WAL_SYS_COUNT);
		if (rc == WAL_OK) {
			cr_assert(same_files(dest, wal), "fault %ld/%ld: wrong bytes delivered", n,
				  total);
			unlink(dest);
		} else {
			failures++;
			cr_assert_neq(rc, WAL_ENOENT,
				      "fault %ld/%ld: I/O error reported as a "
				      "missing segment (%s)",
				      n, total, e.msg);
			cr_assert_eq(rc, WAL_EIO, "fault %ld/%ld: %s (%s)", n, total,
				     wal_err_name(rc), e.msg);
			/* a failure after the rename (directory fsync) may leave the whole file */
			if (exists(dest)) {
				cr_assert(same_files(dest, wal),
					  "fault %ld/%ld: partial destination", n, total);
				unlink(dest);
			}
		}
		cr_assert_eq(count_entries(restore), 0, "fault %ld/%ld: temporary file left", n,
			     total);
	}
	cr_assert_gt(failures, 0);
}

/* Temporary files that writers killed a day ago left are removed by prune;
 * recent ones may belong to a write under way and are left alone. */
Test(archive, prune_removes_only_stale_temporary_files, .init = setup, .fini = teardown)
{
	wal_prune_opts opts = { .before = "000000010000000000000001",
				.keep_days = -1,
				.datadir = data15 };
	wal_prune_result res;
	wal_error e;
	char dir[700], old_tmp[800], new_tmp[800];

	push_timelines();
	snprintf(dir, sizeof(dir), "%s/7712300585176830670/0000000300000001", root);
	snprintf(old_tmp, sizeof(old_tmp), "%s/.000000030000000100000002.lz4.4242.0badf00d.tmp",
		 dir);
	snprintf(new_tmp, sizeof(new_tmp), "%s/.000000030000000100000003.lz4.4243.0badf00d.tmp",
		 dir);
	spit(old_tmp, "partial", 7);
	spit(new_tmp, "partial", 7);
	struct timeval two_days_ago[2] = { { time(NULL) - 2 * 86400, 0 },
					   { time(NULL) - 2 * 86400, 0 } };
	cr_assert_eq(utimes(old_tmp, two_days_ago), 0);

	/* a dry run lists nothing away */
	opts.dry_run = 1;
	memset(&res, 0, sizeof(res));
	cr_assert_eq(wal_prune(&cfg, &opts, &res, &e), WAL_OK, "%s", e.msg);
	cr_assert_eq(res.stale_tmp, 1);
	cr_assert(exists(old_tmp), "a dry run removed a temporary file");

	opts.dry_run = 0;
	memset(&res, 0, sizeof(res));
	cr_assert_eq(wal_prune(&cfg, &opts, &res, &e), WAL_OK, "%s", e.msg);
	cr_assert_eq(res.stale_tmp, 1);
	cr_assert_eq(res.stale_tmp_bytes, 7);
	cr_assert_not(exists(old_tmp), "the stale temporary file is still there");
	cr_assert(exists(new_tmp), "a recent temporary file was removed");
	/* the ten objects, and the recent temporary file */
	cr_assert_eq(count_objects_in(root), 11, "objects were touched");
}
