/*
 * Unit tests for ahead.h: which spools are trusted (owner, mode, links),
 * and which push-ahead records count.  The fetch-ahead paths that need real
 * segments are tested end to end by tests/integration/16-spool-trust.sh.
 */
#include <criterion/criterion.h>
#include <fcntl.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "ahead/ahead.h"
#include "base/config.h"
#include "io/xxhash.h"

#define SYSID 42
#define NAME "000000010000000000000003"

static char base[256], spool[300];
static wal_config cfg;

static int rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	return remove(path);
}

static void setup(void)
{
	wal_error e;
	snprintf(base, sizeof(base), "/tmp/walarchive-unit-ahead.XXXXXX");
	cr_assert_not_null(mkdtemp(base));
	snprintf(spool, sizeof(spool), "%s/spool", base);
	cr_assert_eq(mkdir(spool, 0700), 0);
	wal_config_init(&cfg);
	cr_assert_eq(wal_config_set(&cfg, "spool_dir", spool, "test", 1, &e), WAL_OK, "%s", e.msg);
	cr_assert_eq(wal_config_set(&cfg, "archive", "sftp://u@h/wal", "test", 1, &e), WAL_OK);
	cr_assert_eq(wal_config_set(&cfg, "push_ahead", "4", "test", 1, &e), WAL_OK);
}

static void teardown(void)
{
	wal_config_free(&cfg);
	nftw(base, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

static void mkdir_mode(const char *path, mode_t mode)
{
	cr_assert(mkdir(path, mode) == 0 || access(path, F_OK) == 0, "mkdir %s", path);
	cr_assert_eq(chmod(path, mode), 0);
}

Test(ahead, private_spool_trusted, .init = setup, .fini = teardown)
{
	wal_error e;
	cr_assert_eq(wal_ahead_spool_check(&cfg, 0, &e), WAL_OK, "%s", e.msg);
	cr_assert_eq(wal_ahead_spool_check(&cfg, SYSID, &e), WAL_OK, "%s", e.msg);
	cr_assert(wal_ahead_push_enabled(&cfg));
	cr_assert(wal_ahead_fetch_enabled(&cfg));
	/* readable by others is fine (0755): only writing matters */
	cr_assert_eq(chmod(spool, 0755), 0);
	cr_assert_eq(wal_ahead_spool_check(&cfg, SYSID, &e), WAL_OK, "%s", e.msg);
}

Test(ahead, writable_spool_refused, .init = setup, .fini = teardown)
{
	wal_error e;
	cr_assert_eq(chmod(spool, 0777), 0);
	cr_assert_eq(wal_ahead_spool_check(&cfg, 0, &e), WAL_EPERM);
	cr_assert(strstr(e.msg, "writable by group and others (mode 0777): not trusted"), "%s",
		  e.msg);
	cr_assert(strstr(e.msg, "chmod go-w"), "%s", e.msg);
	cr_assert_not(wal_ahead_push_enabled(&cfg));
	cr_assert_not(wal_ahead_fetch_enabled(&cfg));
	cr_assert_eq(chmod(spool, 0770), 0);
	cr_assert_eq(wal_ahead_spool_check(&cfg, 0, &e), WAL_EPERM);
	cr_assert(strstr(e.msg, "writable by group (mode 0770)"), "%s", e.msg);
	/* sticky, as /tmp is, is still writable by others */
	cr_assert_eq(chmod(spool, 01777), 0);
	cr_assert_eq(wal_ahead_spool_check(&cfg, 0, &e), WAL_EPERM);
}

Test(ahead, missing_spool_quietly_off, .init = setup, .fini = teardown)
{
	wal_error e;
	char missing[400], file[400];
	snprintf(missing, sizeof(missing), "%s/missing", base);
	cr_assert_eq(wal_config_set(&cfg, "spool_dir", missing, "test", 1, &e), WAL_OK);
	cr_assert_eq(wal_ahead_spool_check(&cfg, SYSID, &e), WAL_ENOENT);
	cr_assert_not(wal_ahead_fetch_enabled(&cfg));
	cr_assert_neq(access(missing, F_OK), 0, "the spool is never made");
	/* a file where the spool should be: said, not used */
	snprintf(file, sizeof(file), "%s/file", base);
	close(open(file, O_WRONLY | O_CREAT, 0600));
	cr_assert_eq(wal_config_set(&cfg, "spool_dir", file, "test", 1, &e), WAL_OK);
	cr_assert_eq(wal_ahead_spool_check(&cfg, 0, &e), WAL_EPERM);
	cr_assert(strstr(e.msg, "not a directory"), "%s", e.msg);
}

Test(ahead, spool_link, .init = setup, .fini = teardown)
{
	wal_error e;
	char link[400], open_dir[400];
	/* a link the running user made, to a private directory: followed */
	snprintf(link, sizeof(link), "%s/link", base);
	cr_assert_eq(symlink(spool, link), 0);
	cr_assert_eq(wal_config_set(&cfg, "spool_dir", link, "test", 1, &e), WAL_OK);
	cr_assert_eq(wal_ahead_spool_check(&cfg, SYSID, &e), WAL_OK, "%s", e.msg);
	/* to a directory others can write: not */
	snprintf(open_dir, sizeof(open_dir), "%s/open", base);
	mkdir_mode(open_dir, 0777);
	cr_assert_eq(unlink(link), 0);
	cr_assert_eq(symlink(open_dir, link), 0);
	cr_assert_eq(wal_ahead_spool_check(&cfg, 0, &e), WAL_EPERM);
	cr_assert(strstr(e.msg, "writable by group and others"), "%s", e.msg);
}

Test(ahead, cluster_directories_checked, .init = setup, .fini = teardown)
{
	wal_error e;
	char cluster[400], seg_dir[500], link[500];
	snprintf(cluster, sizeof(cluster), "%s/%d", spool, SYSID);
	mkdir_mode(cluster, 0777);
	cr_assert_eq(wal_ahead_spool_check(&cfg, 0, &e), WAL_OK, "the spool alone is fine");
	cr_assert_eq(wal_ahead_spool_check(&cfg, SYSID, &e), WAL_EPERM);
	cr_assert(strstr(e.msg, cluster), "%s", e.msg);
	cr_assert_eq(chmod(cluster, 0700), 0);
	snprintf(seg_dir, sizeof(seg_dir), "%s/0000000100000000", cluster);
	mkdir_mode(seg_dir, 0775);
	cr_assert_eq(wal_ahead_spool_check(&cfg, SYSID, &e), WAL_EPERM);
	cr_assert(strstr(e.msg, seg_dir), "%s", e.msg);
	cr_assert_eq(chmod(seg_dir, 0700), 0);
	cr_assert_eq(wal_ahead_spool_check(&cfg, SYSID, &e), WAL_OK, "%s", e.msg);
	/* a link named like one is never followed, so it does not count */
	snprintf(link, sizeof(link), "%s/0000000100000001", cluster);
	cr_assert_eq(symlink("/tmp", link), 0);
	cr_assert_eq(wal_ahead_spool_check(&cfg, SYSID, &e), WAL_OK, "%s", e.msg);
}

/* A file of 4 KiB open for reading, with its size and XXH64. */
static int data_file(char hash[17], uint64_t *size)
{
	char path[400], buf[4096];
	snprintf(path, sizeof(path), "%s/data", base);
	memset(buf, 'w', sizeof(buf));
	int fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0600);
	cr_assert_geq(fd, 0);
	cr_assert_eq(write(fd, buf, sizeof(buf)), (ssize_t)sizeof(buf));
	cr_assert_eq(wal_xxh64_fd(fd, path, size, hash, NULL), WAL_OK);
	return fd;
}

static void record(const char *hash, uint64_t size)
{
	wal_error e;
	cr_assert_eq(wal_ahead_record(&cfg, SYSID, NAME, size, hash, "42/x/" NAME ".lz4", 4242, &e),
		     WAL_OK, "%s", e.msg);
}

Test(ahead, only_trusted_records_count, .init = setup, .fini = teardown)
{
	char hash[17], object[512], path[500], copy[500], pushed[400];
	uint64_t size, stored = 0;
	int fd = data_file(hash, &size);
	snprintf(path, sizeof(path), "%s/%d/pushed/%s", spool, SYSID, NAME);
	snprintf(pushed, sizeof(pushed), "%s/%d/pushed", spool, SYSID);

	record(hash, size);
	struct stat st;
	cr_assert_eq(lstat(pushed, &st), 0);
	cr_assert_eq(st.st_mode & 07777, 0700, "made private");
	cr_assert(wal_ahead_recorded(&cfg, SYSID, NAME, fd, object, sizeof(object), &stored));
	cr_assert_str_eq(object, "42/x/" NAME ".lz4");
	cr_assert_eq(stored, 4242, "the object's recorded size");

	/* a record others could have changed */
	record(hash, size);
	cr_assert_eq(chmod(path, 0666), 0);
	cr_assert_not(wal_ahead_recorded(&cfg, SYSID, NAME, fd, object, sizeof(object), &stored));
	cr_assert_neq(access(path, F_OK), 0, "used up all the same");

	/* a link to a good record: not followed, removed as a link */
	record(hash, size);
	snprintf(copy, sizeof(copy), "%s/record-copy", base);
	cr_assert_eq(rename(path, copy), 0);
	cr_assert_eq(symlink(copy, path), 0);
	cr_assert_not(wal_ahead_recorded(&cfg, SYSID, NAME, fd, object, sizeof(object), &stored));
	cr_assert_neq(lstat(path, &st), 0, "the link is gone");
	cr_assert_eq(access(copy, F_OK), 0, "what it pointed at is not");

	/* a good record in a directory others can write to: not used, not touched */
	record(hash, size);
	cr_assert_eq(chmod(pushed, 0777), 0);
	cr_assert_not(wal_ahead_recorded(&cfg, SYSID, NAME, fd, object, sizeof(object), &stored));
	cr_assert_eq(access(path, F_OK), 0);
	/* and no record is written there either */
	wal_error e;
	cr_assert_eq(wal_ahead_record(&cfg, SYSID, NAME, size, hash, "o", 1, &e), WAL_EPERM);
	close(fd);
}
