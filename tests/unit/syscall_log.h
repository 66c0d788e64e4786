/*
 * Records the seamed system calls of lib/sys/fileio.c (wal_sys_record) so that a
 * unit test can check the durable-write protocol in the order it happened:
 * the data of a file fsynced before the rename that gives it its name, its
 * directory fsynced after, and the final name absent until the rename.
 * Included by the unit tests that need it (one log at a time).
 */
#ifndef WAL_TEST_SYSCALL_LOG_H
#define WAL_TEST_SYSCALL_LOG_H

#include <criterion/criterion.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include "sys/fileio.h"

#define SYSLOG_MAX 4096
#define SYSLOG_PATH 400
#define SYSLOG_FDS 1024

typedef struct syslog_event {
	wal_sys_call kind;
	int fd;
	char path[SYSLOG_PATH];	   /* open, unlink, mkdir; rename and link: from */
	char path2[SYSLOG_PATH];   /* rename and link: to */
	char fd_path[SYSLOG_PATH]; /* read, write, fsync: what fd was opened on */
	int watched_exists;	   /* the watched path existed at this call */
} syslog_event;

static struct {
	pthread_mutex_t lock;
	syslog_event ev[SYSLOG_MAX];
	int n, overflow;
	char watch[SYSLOG_PATH];
	char fds[SYSLOG_FDS][SYSLOG_PATH];
} syslog_rec = { .lock = PTHREAD_MUTEX_INITIALIZER };

static const char *const syslog_kinds[] = { "open", "read",   "write", "fsync", "rename",
					    "link", "unlink", "mkdir", "send",	"recv" };

/* Copies a path, cut to SYSLOG_PATH - 1 bytes. */
static void syslog_copy(char *dst, const char *src)
{
	size_t len = src ? strlen(src) : 0;
	if (len >= SYSLOG_PATH)
		len = SYSLOG_PATH - 1;
	memcpy(dst, src ? src : "", len);
	dst[len] = '\0';
}

static void syslog_record(wal_sys_call kind, int fd, const char *path, const char *path2, void *arg)
{
	(void)arg;
	pthread_mutex_lock(&syslog_rec.lock);
	if (syslog_rec.n == SYSLOG_MAX) {
		syslog_rec.overflow = 1;
		pthread_mutex_unlock(&syslog_rec.lock);
		return;
	}
	syslog_event *ev = &syslog_rec.ev[syslog_rec.n++];
	memset(ev, 0, sizeof(*ev));
	ev->kind = kind;
	ev->fd = fd;
	syslog_copy(ev->path, path);
	syslog_copy(ev->path2, path2);
	if (fd >= 0 && fd < SYSLOG_FDS) {
		if (kind == WAL_SYS_OPEN)
			syslog_copy(syslog_rec.fds[fd], path);
		syslog_copy(ev->fd_path, syslog_rec.fds[fd]);
	}
	ev->watched_exists = syslog_rec.watch[0] && access(syslog_rec.watch, F_OK) == 0;
	pthread_mutex_unlock(&syslog_rec.lock);
}

/* Starts a new log; at every call, whether watch (if not NULL) exists is noted. */
static void syslog_start(const char *watch)
{
	pthread_mutex_lock(&syslog_rec.lock);
	syslog_rec.n = 0;
	syslog_rec.overflow = 0;
	syslog_copy(syslog_rec.watch, watch);
	memset(syslog_rec.fds, 0, sizeof(syslog_rec.fds));
	pthread_mutex_unlock(&syslog_rec.lock);
	wal_sys_record(syslog_record, NULL);
}

static void syslog_stop(void)
{
	wal_sys_record(NULL, NULL);
	cr_assert_eq(syslog_rec.overflow, 0, "more than %d calls recorded", SYSLOG_MAX);
}

/* The recorded calls, one a line, for a failure message (static buffer). */
static const char *syslog_dump(int from, int to)
{
	static char out[8192];
	size_t used = 0;
	out[0] = '\0';
	for (int i = from < 0 ? 0 : from; i < syslog_rec.n && i <= to && used < sizeof(out) - 1;
	     i++) {
		const syslog_event *ev = &syslog_rec.ev[i];
		int n = snprintf(out + used, sizeof(out) - used, "\n  %d %s %s%s%s%s", i,
				 syslog_kinds[ev->kind], ev->path[0] ? ev->path : ev->fd_path,
				 ev->path2[0] ? " -> " : "", ev->path2,
				 ev->watched_exists ? " [exists]" : "");
		if (n < 0)
			break;
		used += (size_t)n < sizeof(out) - used ? (size_t)n : sizeof(out) - used - 1;
	}
	return out;
}

/*
 * Asserts that final was made durably, in this order: its bytes written to
 * a temporary file of another name and fsynced, no write after that fsync,
 * then one rename (or link) to final, then an fsync of final's directory.
 * With absent_before, final must not exist at any call before the rename
 * (for a name nothing held before), and is never opened or written itself.
 */
static void syslog_assert_durable(const char *final, int absent_before)
{
	char dir[SYSLOG_PATH];
	int renamed = -1;
	wal_dirname(final, dir, sizeof(dir));
	for (int i = 0; i < syslog_rec.n; i++) {
		const syslog_event *ev = &syslog_rec.ev[i];
		if ((ev->kind == WAL_SYS_RENAME || ev->kind == WAL_SYS_LINK) &&
		    strcmp(ev->path2, final) == 0) {
			cr_assert_eq(renamed, -1, "%s: renamed into place twice:%s", final,
				     syslog_dump(0, i));
			renamed = i;
		}
	}
	cr_assert_geq(renamed, 0, "%s: never renamed into place:%s", final,
		      syslog_dump(0, syslog_rec.n));
	const char *tmp = syslog_rec.ev[renamed].path;
	cr_assert_str_neq(tmp, final, "%s: written under its final name, not a temporary one",
			  final);

	int opened = -1, last_write = -1, synced = -1;
	for (int i = 0; i < renamed; i++) {
		const syslog_event *ev = &syslog_rec.ev[i];
		if (ev->kind == WAL_SYS_OPEN && strcmp(ev->path, tmp) == 0)
			opened = i;
		else if (ev->kind == WAL_SYS_WRITE && strcmp(ev->fd_path, tmp) == 0)
			last_write = i;
		else if (ev->kind == WAL_SYS_FSYNC && strcmp(ev->fd_path, tmp) == 0)
			synced = i;
	}
	cr_assert_geq(opened, 0, "%s: its temporary file %s was not created through the seam:%s",
		      final, tmp, syslog_dump(0, renamed));
	cr_assert_gt(synced, opened, "%s: its data was not fsynced before the rename:%s", final,
		     syslog_dump(opened, renamed));
	cr_assert_lt(last_write, synced, "%s: written after its fsync:%s", final,
		     syslog_dump(opened, renamed));
	for (int i = renamed + 1; i < syslog_rec.n; i++)
		cr_assert(!(syslog_rec.ev[i].kind == WAL_SYS_FSYNC &&
			    strcmp(syslog_rec.ev[i].fd_path, tmp) == 0),
			  "%s: its data fsynced only after the rename:%s", final,
			  syslog_dump(opened, i));

	int dir_synced = -1;
	for (int i = renamed + 1; i < syslog_rec.n && dir_synced < 0; i++)
		if (syslog_rec.ev[i].kind == WAL_SYS_FSYNC &&
		    strcmp(syslog_rec.ev[i].fd_path, dir) == 0)
			dir_synced = i;
	cr_assert_gt(dir_synced, renamed, "%s: directory %s not fsynced after the rename:%s", final,
		     dir, syslog_dump(renamed, syslog_rec.n));

	if (!absent_before)
		return;
	for (int i = 0; i < syslog_rec.n; i++) {
		const syslog_event *ev = &syslog_rec.ev[i];
		cr_assert(!(i < renamed && ev->watched_exists),
			  "%s exists before its rename (call %d):%s", final, i,
			  syslog_dump(0, renamed));
		cr_assert(!(ev->kind == WAL_SYS_OPEN && strcmp(ev->path, final) == 0),
			  "%s opened under its final name (call %d)", final, i);
		cr_assert(!((ev->kind == WAL_SYS_WRITE || ev->kind == WAL_SYS_FSYNC) &&
			    strcmp(ev->fd_path, final) == 0),
			  "%s written under its final name (call %d)", final, i);
	}
}

#endif
