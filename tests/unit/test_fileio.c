/*
 * Unit tests for fileio.h: the syscall fault seam and the durable atomic
 * write.  The central property: whatever call fails (disk full, I/O error),
 * the final name holds either nothing or every byte, and no temporary file
 * is left behind.  And the order that makes it durable, recorded through
 * the seam: data fsynced before the rename, the directory after it.
 */
#include <criterion/criterion.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "sys/fileio.h"
#include "io/stream.h"
#include "syscall_log.h"

static char dir[256];

static int rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	return remove(path);
}

static void setup(void)
{
	snprintf(dir, sizeof(dir), "/tmp/walarchive-unit-fileio.XXXXXX");
	cr_assert_not_null(mkdtemp(dir));
	wal_sys_fault_arm(0, 0, WAL_SYS_COUNT);
}

static void teardown(void)
{
	wal_sys_fault_arm(0, 0, WAL_SYS_COUNT);
	nftw(dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

static void fill(unsigned char *buf, size_t len, uint32_t seed)
{
	uint32_t x = seed * 2654435761u + 1;
	for (size_t i = 0; i < len; i++) {
		x ^= x << 13;
		x ^= x >> 17;
		x ^= x << 5;
		buf[i] = (i % 3 == 0) ? (unsigned char)x : (unsigned char)(i >> 10);
	}
}

/* Whole content of path into a malloc'd buffer; NULL if it does not exist. */
static unsigned char *slurp(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	unsigned char *buf;
	long size;

	if (!f)
		return NULL;
	fseek(f, 0, SEEK_END);
	size = ftell(f);
	fseek(f, 0, SEEK_SET);
	buf = malloc(size > 0 ? (size_t)size : 1);
	cr_assert_not_null(buf);
	cr_assert_eq(fread(buf, 1, (size_t)size, f), (size_t)size);
	fclose(f);
	*len = (size_t)size;
	return buf;
}

static void write_plain(const char *path, const void *data, size_t len)
{
	FILE *f = fopen(path, "wb");
	cr_assert_not_null(f);
	cr_assert_eq(fwrite(data, 1, len, f), len);
	cr_assert_eq(fclose(f), 0);
}

/* Number of entries in d other than ".", ".." and except (may be NULL). */
static int count_entries(const char *d, const char *except)
{
	DIR *dh = opendir(d);
	struct dirent *de;
	int n = 0;

	cr_assert_not_null(dh, "opendir %s", d);
	while ((de = readdir(dh))) {
		if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
			continue;
		if (except && !strcmp(de->d_name, except))
			continue;
		n++;
	}
	closedir(dh);
	return n;
}

static void assert_content(const char *path, const void *data, size_t len)
{
	size_t got_len;
	unsigned char *got = slurp(path, &got_len);

	cr_assert_not_null(got, "%s missing", path);
	cr_assert_eq(got_len, len, "%s: %zu bytes, expected %zu", path, got_len, len);
	cr_assert(len == 0 || memcmp(got, data, len) == 0, "%s: content differs", path);
	free(got);
}

/* ---- the seam itself ---- */

Test(fileio, fault_counts_nth_call, .init = setup, .fini = teardown)
{
	wal_sys_fault_arm(3, ENOSPC, WAL_SYS_COUNT);
	cr_assert_eq(wal_sys_fault(WAL_SYS_OPEN), 0);
	cr_assert_eq(wal_sys_fault(WAL_SYS_WRITE), 0);
	cr_assert_eq(wal_sys_fault(WAL_SYS_FSYNC), ENOSPC);
	cr_assert_eq(wal_sys_fault(WAL_SYS_WRITE), 0, "only the nth call fails");
	cr_assert_eq(wal_sys_fault_calls(), 4);

	wal_sys_fault_arm(2, EIO, WAL_SYS_WRITE);
	cr_assert_eq(wal_sys_fault_calls(), 0, "arming resets the count");
	cr_assert_eq(wal_sys_fault(WAL_SYS_WRITE), 0);
	cr_assert_eq(wal_sys_fault(WAL_SYS_FSYNC), 0);
	cr_assert_eq(wal_sys_fault(WAL_SYS_RENAME), 0);
	cr_assert_eq(wal_sys_fault(WAL_SYS_WRITE), EIO, "second write fails");
	cr_assert_eq(wal_sys_fault(WAL_SYS_WRITE), 0);

	wal_sys_fault_arm(0, EIO, WAL_SYS_COUNT);
	for (int i = 0; i < 100; i++)
		cr_assert_eq(wal_sys_fault(WAL_SYS_WRITE), 0, "disarmed");
}

Test(fileio, seamed_calls_fail_with_errno, .init = setup, .fini = teardown)
{
	char path[300];
	int fd;

	snprintf(path, sizeof(path), "%s/f", dir);
	wal_sys_fault_arm(1, EACCES, WAL_SYS_OPEN);
	errno = 0;
	cr_assert_eq(wal_sys_open(path, O_CREAT | O_WRONLY, 0600), -1);
	cr_assert_eq(errno, EACCES);
	cr_assert_eq(access(path, F_OK), -1, "failed open must not create");

	wal_sys_fault_arm(0, 0, WAL_SYS_COUNT);
	fd = wal_sys_open(path, O_CREAT | O_WRONLY, 0600);
	cr_assert_geq(fd, 0);
	wal_sys_fault_arm(1, ENOSPC, WAL_SYS_WRITE);
	errno = 0;
	cr_assert_eq(wal_sys_write_all(fd, "abc", 3), -1);
	cr_assert_eq(errno, ENOSPC);
	wal_sys_fault_arm(1, EIO, WAL_SYS_FSYNC);
	errno = 0;
	cr_assert_eq(wal_sys_fsync(fd), -1);
	cr_assert_eq(errno, EIO);
	close(fd);
}

Test(fileio, write_all_and_read_full, .init = setup, .fini = teardown)
{
	char path[300];
	size_t len = 3 * WAL_IO_CHUNK + 11;
	unsigned char *data = malloc(len), *back = malloc(len + 10);
	int fd;

	fill(data, len, 1);
	snprintf(path, sizeof(path), "%s/f", dir);
	fd = wal_sys_open(path, O_CREAT | O_WRONLY | O_EXCL, 0600);
	cr_assert_geq(fd, 0);
	cr_assert_eq(wal_sys_write_all(fd, data, len), 0);
	close(fd);
	fd = wal_sys_open(path, O_RDONLY, 0);
	cr_assert_geq(fd, 0);
	cr_assert_eq(wal_sys_read_full(fd, back, len + 10), (ssize_t)len, "stops at end of file");
	cr_assert_eq(memcmp(data, back, len), 0);
	cr_assert_eq(wal_sys_read_full(fd, back, 10), 0, "end of file");
	close(fd);
	free(data);
	free(back);
}

/* WALARCHIVE_FAULT="N:ERRNO" arms the seam for a whole process (no setup: never armed). */
Test(fileio, fault_armed_from_environment)
{
	char spec[32];

	snprintf(spec, sizeof(spec), "2:%d", ENOSPC);
	setenv("WALARCHIVE_FAULT", spec, 1);
	cr_assert_eq(wal_sys_fault(WAL_SYS_OPEN), 0);
	cr_assert_eq(wal_sys_fault(WAL_SYS_WRITE), ENOSPC);
	cr_assert_eq(wal_sys_fault(WAL_SYS_WRITE), 0);
	unsetenv("WALARCHIVE_FAULT");
}

/* ---- directories ---- */

Test(fileio, mkdir_p, .init = setup, .fini = teardown)
{
	char path[400], file[400];
	struct stat st;
	wal_error e;

	snprintf(path, sizeof(path), "%s/a/b/c", dir);
	cr_assert_eq(wal_mkdir_p(path, &e), WAL_OK, "%s", e.msg);
	cr_assert_eq(stat(path, &st), 0);
	cr_assert(S_ISDIR(st.st_mode));
	cr_assert_eq(st.st_mode & 0777, 0700);
	cr_assert_eq(wal_mkdir_p(path, &e), WAL_OK, "existing directory: %s", e.msg);

	snprintf(file, sizeof(file), "%s/plain", dir);
	write_plain(file, "x", 1);
	snprintf(path, sizeof(path), "%s/plain/sub", dir);
	cr_assert_neq(wal_mkdir_p(path, &e), WAL_OK, "through a regular file");
	cr_assert(e.msg[0]);
}

Test(fileio, fsync_dir, .init = setup, .fini = teardown)
{
	char path[300];
	wal_error e;

	cr_assert_eq(wal_fsync_dir(dir, &e), WAL_OK, "%s", e.msg);
	snprintf(path, sizeof(path), "%s/missing", dir);
	cr_assert_eq(wal_fsync_dir(path, &e), WAL_ENOENT);
}

/* ---- wal_atomic_write ---- */

Test(fileio, atomic_write_content_exact, .init = setup, .fini = teardown)
{
	size_t sizes[] = {
		0, 1, 4096, WAL_IO_CHUNK - 1, WAL_IO_CHUNK, WAL_IO_CHUNK + 1, 5 * WAL_IO_CHUNK + 333
	};
	for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
		size_t len = sizes[i];
		unsigned char *data = malloc(len + 1);
		char path[300];
		wal_mem_source src;
		wal_error e;
		struct stat st;

		fill(data, len, (uint32_t)i);
		snprintf(path, sizeof(path), "%s/obj%zu", dir, i);
		wal_mem_source_init(&src, data, len);
		cr_assert_eq(wal_atomic_write(path, &src.base, 0600, &e), WAL_OK, "%zu: %s", len,
			     e.msg);
		assert_content(path, data, len);
		cr_assert_eq(stat(path, &st), 0);
		cr_assert_eq(st.st_mode & 0777, 0600);
		free(data);
	}
	cr_assert_eq(count_entries(dir, NULL), (int)(sizeof(sizes) / sizeof(sizes[0])),
		     "temporary files left behind");
}

Test(fileio, atomic_write_mode, .init = setup, .fini = teardown)
{
	char path[300];
	wal_mem_source src;
	wal_error e;
	struct stat st;

	snprintf(path, sizeof(path), "%s/obj", dir);
	wal_mem_source_init(&src, "hello", 5);
	cr_assert_eq(wal_atomic_write(path, &src.base, 0640, &e), WAL_OK, "%s", e.msg);
	cr_assert_eq(stat(path, &st), 0);
	cr_assert_eq(st.st_mode & 0777, 0640);
}

Test(fileio, atomic_write_eexist_untouched, .init = setup, .fini = teardown)
{
	char path[300];
	wal_mem_source src;
	wal_error e;
	struct stat before, after;

	snprintf(path, sizeof(path), "%s/obj", dir);
	write_plain(path, "original", 8);
	cr_assert_eq(stat(path, &before), 0);
	wal_mem_source_init(&src, "replacement!", 12);
	wal_error_clear(&e);
	cr_assert_eq(wal_atomic_write(path, &src.base, 0600, &e), WAL_EEXIST);
	cr_assert(e.msg[0]);
	assert_content(path, "original", 8);
	cr_assert_eq(stat(path, &after), 0);
	cr_assert_eq(before.st_ino, after.st_ino, "the existing file was replaced");
	cr_assert_eq(count_entries(dir, NULL), 1, "temporary file left behind");

	/* same content is still EEXIST: the write never replaces */
	wal_mem_source_init(&src, "original", 8);
	cr_assert_eq(wal_atomic_write(path, &src.base, 0600, &e), WAL_EEXIST);
	cr_assert_eq(count_entries(dir, NULL), 1);
}

Test(fileio, atomic_write_missing_directory, .init = setup, .fini = teardown)
{
	char path[300];
	wal_mem_source src;
	wal_error e;

	snprintf(path, sizeof(path), "%s/nodir/obj", dir);
	wal_mem_source_init(&src, "x", 1);
	cr_assert_neq(wal_atomic_write(path, &src.base, 0600, &e), WAL_OK);
	cr_assert(e.msg[0]);
	cr_assert_eq(count_entries(dir, NULL), 0);
}

/* A source that fails after giving some bytes. */
typedef struct failing_source {
	wal_source base;
	int reads;
	int fail_at;
} failing_source;

static wal_err failing_read(wal_source *s, void *buf, size_t cap, size_t *got, wal_error *e)
{
	failing_source *f = (failing_source *)s;
	if (++f->reads >= f->fail_at)
		return wal_fail(e, WAL_ENET, "test source: connection lost");
	memset(buf, 'z', cap);
	*got = cap;
	return WAL_OK;
}

static wal_err failing_rewind(wal_source *s, wal_error *e)
{
	(void)e;
	((failing_source *)s)->reads = 0;
	return WAL_OK;
}

Test(fileio, atomic_write_source_failure, .init = setup, .fini = teardown)
{
	char path[300];
	wal_error e;
	failing_source src = { .base = { failing_read, failing_rewind, -1 }, .fail_at = 3 };

	snprintf(path, sizeof(path), "%s/obj", dir);
	cr_assert_eq(wal_atomic_write(path, &src.base, 0600, &e), WAL_ENET,
		     "the source's error is passed through");
	cr_assert_eq(access(path, F_OK), -1, "partial file under the final name");
	cr_assert_eq(count_entries(dir, NULL), 0, "temporary file left behind");
}

/*
 * Walks a fault over every counted call of one wal_atomic_write and checks
 * after each: final path absent or complete, no temporary file, error code.
 */
static void walk_faults(int err, wal_err expect, wal_sys_call kind)
{
	size_t len = 3 * WAL_IO_CHUNK + 4242;
	unsigned char *data = malloc(len);
	char path[300];
	wal_mem_source src;
	wal_error e;
	long total;
	int failures = 0;

	fill(data, len, 99);
	snprintf(path, sizeof(path), "%s/000000010000000000000001", dir);

	/* count the calls of a clean run */
	wal_sys_fault_arm(0, 0, kind);
	wal_mem_source_init(&src, data, len);
	cr_assert_eq(wal_atomic_write(path, &src.base, 0600, &e), WAL_OK, "%s", e.msg);
	total = wal_sys_fault_calls();
	cr_assert_geq(total, 1, "wal_atomic_write makes no counted calls of kind %d", kind);
	if (kind == WAL_SYS_COUNT)
		cr_assert_geq(total, 5, "open, writes, fsync, link/rename, dir fsync: only %ld",
			      total);
	cr_assert_eq(unlink(path), 0);

	for (long n = 1; n <= total; n++) {
		wal_mem_source_init(&src, data, len);
		wal_error_clear(&e);
		wal_sys_fault_arm(n, err, kind);
		wal_err rc = wal_atomic_write(path, &src.base, 0600, &e);
		long calls = wal_sys_fault_calls();
		wal_sys_fault_arm(0, 0, WAL_SYS_COUNT);

		cr_assert_geq(calls, n, "fault %ld not reached (%ld calls)", n, calls);
		size_t got_len;
		unsigned char *got = slurp(path, &got_len);
		if (got) {
			cr_assert_eq(got_len, len, "fault %ld/%ld: partial file (%zu of %zu bytes)",
				     n, total, got_len, len);
			cr_assert_eq(memcmp(got, data, len), 0, "fault %ld: wrong content", n);
			free(got);
		}
		if (rc != WAL_OK) {
			failures++;
			cr_assert_eq(rc, expect, "fault %ld/%ld: %s (%s), expected %s", n, total,
				     wal_err_name(rc), e.msg, wal_err_name(expect));
			cr_assert_eq(e.code, rc);
			cr_assert(e.msg[0], "fault %ld: no message", n);
		} else {
			cr_assert_not_null(got, "fault %ld: WAL_OK but no file", n);
		}
		cr_assert_leq(count_entries(dir, "000000010000000000000001"), 0,
			      "fault %ld/%ld (%s): temporary file left behind", n, total,
			      wal_err_name(rc));
		unlink(path);
	}
	cr_assert_gt(failures, 0, "no injected fault made the write fail");
	free(data);
}

Test(fileio, fault_walk_enospc_any_call, .init = setup, .fini = teardown)
{
	walk_faults(ENOSPC, WAL_ENOSPC, WAL_SYS_COUNT);
}

Test(fileio, fault_walk_eio_any_call, .init = setup, .fini = teardown)
{
	walk_faults(EIO, WAL_EIO, WAL_SYS_COUNT);
}

Test(fileio, fault_walk_edquot_writes, .init = setup, .fini = teardown)
{
	walk_faults(EDQUOT, WAL_ENOSPC, WAL_SYS_WRITE);
}

Test(fileio, fault_walk_eio_fsync, .init = setup, .fini = teardown)
{
	walk_faults(EIO, WAL_EIO, WAL_SYS_FSYNC);
}

Test(fileio, fault_walk_enospc_open, .init = setup, .fini = teardown)
{
	walk_faults(ENOSPC, WAL_ENOSPC, WAL_SYS_OPEN);
}

/* Kill-safety: a write that is never committed leaves no final name. */
Test(fileio, atomic_open_abort, .init = setup, .fini = teardown)
{
	char path[300];
	wal_atomic_file f;
	wal_error e;
	char prefix[320];

	snprintf(path, sizeof(path), "%s/obj", dir);
	cr_assert_eq(wal_atomic_open(&f, path, 0600, &e), WAL_OK, "%s", e.msg);
	cr_assert_not_null(f.tmp_path);
	snprintf(prefix, sizeof(prefix), "%s/.obj.", dir);
	cr_assert_eq(strncmp(f.tmp_path, prefix, strlen(prefix)), 0, "tmp name %s", f.tmp_path);
	size_t tl = strlen(f.tmp_path);
	cr_assert(tl > 4 && !strcmp(f.tmp_path + tl - 4, ".tmp"), "tmp name %s", f.tmp_path);
	cr_assert_eq(access(f.tmp_path, F_OK), 0, "temporary file exists while open");
	cr_assert_eq(f.sink.write(&f.sink, "abc", 3, &e), WAL_OK, "%s", e.msg);
	cr_assert_eq(access(path, F_OK), -1, "final name before commit");
	wal_atomic_abort(&f);
	cr_assert_eq(access(path, F_OK), -1);
	cr_assert_eq(count_entries(dir, NULL), 0, "abort left the temporary file");
}

Test(fileio, atomic_open_commit_and_reset, .init = setup, .fini = teardown)
{
	char path[300];
	wal_atomic_file f;
	wal_error e;

	snprintf(path, sizeof(path), "%s/obj", dir);
	cr_assert_eq(wal_atomic_open(&f, path, 0600, &e), WAL_OK, "%s", e.msg);
	cr_assert_eq(f.sink.write(&f.sink, "first attempt, longer", 21, &e), WAL_OK);
	cr_assert_eq(f.sink.reset(&f.sink, &e), WAL_OK, "%s", e.msg);
	cr_assert_eq(f.sink.write(&f.sink, "retry", 5, &e), WAL_OK);
	cr_assert_eq(wal_atomic_commit(&f, 0, &e), WAL_OK, "%s", e.msg);
	assert_content(path, "retry", 5);
	cr_assert_eq(count_entries(dir, NULL), 1);
}

Test(fileio, atomic_commit_no_replace, .init = setup, .fini = teardown)
{
	char path[300];
	wal_atomic_file f;
	wal_error e;

	snprintf(path, sizeof(path), "%s/obj", dir);
	write_plain(path, "original", 8);
	cr_assert_eq(wal_atomic_open(&f, path, 0600, &e), WAL_OK, "%s", e.msg);
	cr_assert_eq(f.sink.write(&f.sink, "new", 3, &e), WAL_OK);
	cr_assert_eq(wal_atomic_commit(&f, 0, &e), WAL_EEXIST);
	assert_content(path, "original", 8);
	cr_assert_eq(count_entries(dir, NULL), 1, "failed commit left the temporary file");
}

Test(fileio, atomic_commit_replace, .init = setup, .fini = teardown)
{
	char path[300];
	wal_atomic_file f;
	wal_error e;

	snprintf(path, sizeof(path), "%s/obj", dir);
	write_plain(path, "original", 8);
	cr_assert_eq(wal_atomic_open(&f, path, 0600, &e), WAL_OK, "%s", e.msg);
	cr_assert_eq(f.sink.write(&f.sink, "new", 3, &e), WAL_OK);
	cr_assert_eq(wal_atomic_commit(&f, 1, &e), WAL_OK, "%s", e.msg);
	assert_content(path, "new", 3);
	cr_assert_eq(count_entries(dir, NULL), 1);
}

Test(fileio, atomic_commit_fsync_failure, .init = setup, .fini = teardown)
{
	char path[300];
	wal_atomic_file f;
	wal_error e;

	snprintf(path, sizeof(path), "%s/obj", dir);
	cr_assert_eq(wal_atomic_open(&f, path, 0600, &e), WAL_OK, "%s", e.msg);
	cr_assert_eq(f.sink.write(&f.sink, "data", 4, &e), WAL_OK);
	wal_sys_fault_arm(1, EIO, WAL_SYS_FSYNC);
	cr_assert_eq(wal_atomic_commit(&f, 0, &e), WAL_EIO);
	wal_sys_fault_arm(0, 0, WAL_SYS_COUNT);
	cr_assert_eq(access(path, F_OK), -1, "unsynced data under the final name");
	cr_assert_eq(count_entries(dir, NULL), 0, "failed commit left the temporary file");
}

/* ---- the durability order, recorded through the seam ---- */

Test(fileio, atomic_write_durability_order, .init = setup, .fini = teardown)
{
	/* small (written directly) and large (through the writer thread) */
	size_t sizes[] = { 5, 3 * WAL_IO_CHUNK + 17 };
	for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
		unsigned char *data = malloc(sizes[i]);
		char path[300];
		wal_mem_source src;
		wal_error e;

		fill(data, sizes[i], (uint32_t)i);
		snprintf(path, sizeof(path), "%s/obj%zu", dir, i);
		wal_mem_source_init(&src, data, sizes[i]);
		syslog_start(path);
		wal_err rc = wal_atomic_write(path, &src.base, 0600, &e);
		syslog_stop();
		cr_assert_eq(rc, WAL_OK, "%s", e.msg);
		syslog_assert_durable(path, 1);
		assert_content(path, data, sizes[i]);
		free(data);
	}
}

Test(fileio, atomic_commit_replace_durability_order, .init = setup, .fini = teardown)
{
	char path[300];
	wal_atomic_file f;
	wal_error e;

	snprintf(path, sizeof(path), "%s/obj", dir);
	write_plain(path, "original", 8);
	syslog_start(NULL);
	cr_assert_eq(wal_atomic_open(&f, path, 0600, &e), WAL_OK, "%s", e.msg);
	cr_assert_eq(f.sink.write(&f.sink, "new", 3, &e), WAL_OK);
	wal_err rc = wal_atomic_commit(&f, WAL_ATOMIC_REPLACE, &e);
	syslog_stop();
	cr_assert_eq(rc, WAL_OK, "%s", e.msg);
	/* the old content stays under the name until the rename replaces it */
	syslog_assert_durable(path, 0);
	assert_content(path, "new", 3);
}
