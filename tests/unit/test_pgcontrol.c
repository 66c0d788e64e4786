/*
 * Unit tests for pgcontrol.h: the system identifier and segment size of a
 * data directory, read from global/pg_control files written by real
 * PostgreSQL 11..18 (tests/fixtures/pgNN/pg_control, facts in INFO).
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "pg/pgcontrol.h"

static const char *fixture_dirs[] = { "pg11",	  "pg12", "pg13", "pg14", "pg15",
				      "pg15-1mb", "pg16", "pg17", "pg18" };
#define N_FIXTURES (sizeof(fixture_dirs) / sizeof(fixture_dirs[0]))

static char datadir[256];

static int rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	return remove(path);
}

static void setup(void)
{
	char global[300];

	snprintf(datadir, sizeof(datadir), "/tmp/walarchive-unit-pgcontrol.XXXXXX");
	cr_assert_not_null(mkdtemp(datadir));
	snprintf(global, sizeof(global), "%s/global", datadir);
	cr_assert_eq(mkdir(global, 0700), 0);
}

static void teardown(void)
{
	nftw(datadir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

static void write_control(const void *buf, size_t len)
{
	char path[300];
	FILE *f;

	snprintf(path, sizeof(path), "%s/global/pg_control", datadir);
	f = fopen(path, "wb");
	cr_assert_not_null(f);
	cr_assert_eq(fwrite(buf, 1, len, f), len);
	cr_assert_eq(fclose(f), 0);
}

static size_t read_fixture(const char *dir, unsigned char *buf, size_t cap)
{
	char path[512];
	FILE *f;
	size_t n;

	snprintf(path, sizeof(path), "%s/%s/pg_control", WAL_TEST_FIXTURES, dir);
	f = fopen(path, "rb");
	cr_assert_not_null(f, "fixture %s missing", path);
	n = fread(buf, 1, cap, f);
	fclose(f);
	return n;
}

static void info_value(const char *dir, const char *key, char *out, size_t cap)
{
	char path[512], line[512];
	FILE *f;
	size_t klen = strlen(key);

	snprintf(path, sizeof(path), "%s/%s/INFO", WAL_TEST_FIXTURES, dir);
	f = fopen(path, "r");
	cr_assert_not_null(f, "fixture %s missing", path);
	out[0] = '\0';
	while (fgets(line, sizeof(line), f)) {
		if (!strncmp(line, key, klen) && line[klen] == '=') {
			line[strcspn(line, "\n")] = '\0';
			snprintf(out, cap, "%s", line + klen + 1);
		}
	}
	fclose(f);
	cr_assert(out[0], "%s has no %s", path, key);
}

Test(pgcontrol, real_fixtures, .init = setup, .fini = teardown)
{
	for (size_t i = 0; i < N_FIXTURES; i++) {
		unsigned char buf[8192];
		char sysid[64], ctlver[32], catver[32], segsize[32];
		size_t len = read_fixture(fixture_dirs[i], buf, sizeof(buf));
		wal_pgcontrol ctl;
		wal_error e;

		info_value(fixture_dirs[i], "system_identifier", sysid, sizeof(sysid));
		info_value(fixture_dirs[i], "pg_control_version", ctlver, sizeof(ctlver));
		info_value(fixture_dirs[i], "catalog_version", catver, sizeof(catver));
		info_value(fixture_dirs[i], "segment_size", segsize, sizeof(segsize));
		write_control(buf, len);
		memset(&ctl, 0, sizeof(ctl));
		wal_error_clear(&e);
		cr_assert_eq(wal_pgcontrol_read(datadir, &ctl, &e), WAL_OK, "%s: %s",
			     fixture_dirs[i], e.msg);
		cr_assert_eq(ctl.system_id, strtoull(sysid, NULL, 10), "%s system id",
			     fixture_dirs[i]);
		cr_assert_eq(ctl.control_version, strtoul(ctlver, NULL, 10), "%s control version",
			     fixture_dirs[i]);
		cr_assert_eq(ctl.catalog_version, strtoul(catver, NULL, 10), "%s catalog version",
			     fixture_dirs[i]);
		cr_assert_eq(ctl.seg_size, strtoul(segsize, NULL, 10), "%s segment size",
			     fixture_dirs[i]);
	}
}

Test(pgcontrol, missing_file_is_enoent, .init = setup, .fini = teardown)
{
	wal_pgcontrol ctl;
	wal_error e;

	wal_error_clear(&e);
	cr_assert_eq(wal_pgcontrol_read(datadir, &ctl, &e), WAL_ENOENT);
	cr_assert(e.msg[0]);
	cr_assert_eq(wal_pgcontrol_read("/nonexistent/walarchive/datadir", &ctl, &e), WAL_ENOENT);
}

Test(pgcontrol, too_short_is_corrupt, .init = setup, .fini = teardown)
{
	unsigned char buf[8192];
	size_t len = read_fixture("pg15", buf, sizeof(buf));
	size_t cuts[] = { 0, 1, 8, 15 };
	wal_pgcontrol ctl;
	wal_error e;

	cr_assert_eq(len, 8192);
	for (size_t i = 0; i < sizeof(cuts) / sizeof(cuts[0]); i++) {
		write_control(buf, cuts[i]);
		wal_error_clear(&e);
		cr_assert_eq(wal_pgcontrol_read(datadir, &ctl, &e), WAL_ECORRUPT,
			     "pg_control of %zu bytes accepted", cuts[i]);
		cr_assert(e.msg[0]);
	}
}

Test(pgcontrol, unknown_version_is_corrupt, .init = setup, .fini = teardown)
{
	unsigned char buf[8192];
	uint32_t versions[] = { 0, 1002 /* PostgreSQL 10 */, 999999, 0xFFFFFFFFu };
	wal_pgcontrol ctl;
	wal_error e;

	read_fixture("pg15", buf, sizeof(buf));
	for (size_t i = 0; i < sizeof(versions) / sizeof(versions[0]); i++) {
		memcpy(buf + 8, &versions[i], 4);
		write_control(buf, sizeof(buf));
		cr_assert_eq(wal_pgcontrol_read(datadir, &ctl, &e), WAL_ECORRUPT,
			     "control version %u accepted", versions[i]);
	}
}

Test(pgcontrol, directory_instead_of_file, .init = setup, .fini = teardown)
{
	char path[300];
	wal_pgcontrol ctl;
	wal_error e;

	snprintf(path, sizeof(path), "%s/global/pg_control", datadir);
	cr_assert_eq(mkdir(path, 0700), 0);
	cr_assert_neq(wal_pgcontrol_read(datadir, &ctl, &e), WAL_OK);
}

static void write_in_datadir(const char *name, const char *text)
{
	char path[400];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", datadir, name);
	f = fopen(path, "w");
	cr_assert_not_null(f);
	fputs(text, f);
	cr_assert_eq(fclose(f), 0);
}

static void remove_in_datadir(const char *name)
{
	char path[400];

	snprintf(path, sizeof(path), "%s/%s", datadir, name);
	unlink(path);
}

Test(pgcontrol, standby_detection, .init = setup, .fini = teardown)
{
	cr_assert_not(wal_datadir_is_standby(datadir), "plain data directory");
	cr_assert_not(wal_datadir_is_standby("/nonexistent/walarchive/datadir"));

	/* 12+: standby.signal (empty) */
	write_in_datadir("standby.signal", "");
	cr_assert(wal_datadir_is_standby(datadir), "standby.signal");
	remove_in_datadir("standby.signal");

	/* 12+: recovery.signal alone is archive recovery, not a standby */
	write_in_datadir("recovery.signal", "");
	cr_assert_not(wal_datadir_is_standby(datadir), "recovery.signal");
	remove_in_datadir("recovery.signal");

	/* 11: recovery.conf */
	write_in_datadir("recovery.conf", "standby_mode = 'on'\n"
					  "restore_command = 'walfetch %f %p'\n");
	cr_assert(wal_datadir_is_standby(datadir), "recovery.conf standby_mode = 'on'");
	write_in_datadir("recovery.conf", "# comment\nrestore_command = 'walfetch %f %p'\n"
					  "standby_mode = on\n");
	cr_assert(wal_datadir_is_standby(datadir), "recovery.conf standby_mode = on");
	write_in_datadir("recovery.conf", "restore_command = 'walfetch %f %p'\n"
					  "standby_mode = 'off'\n");
	cr_assert_not(wal_datadir_is_standby(datadir), "standby_mode off");
	write_in_datadir("recovery.conf", "restore_command = 'walfetch %f %p'\n"
					  "recovery_target_time = '2024-01-01'\n");
	cr_assert_not(wal_datadir_is_standby(datadir), "PITR recovery.conf");
	write_in_datadir("recovery.conf", "#standby_mode = on\n"
					  "restore_command = 'walfetch %f %p'\n");
	cr_assert_not(wal_datadir_is_standby(datadir), "commented-out standby_mode");
}
