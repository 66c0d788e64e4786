/*
 * File I/O through a seam of system calls, so tests can make the Nth write,
 * fsync, rename or read fail (as SQLite's os_unix.c does), and the durable
 * atomic write every local object relies on.
 */
#ifndef WAL_FILEIO_H
#define WAL_FILEIO_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include "base/error.h"
#include "base/stream.h"

/* The calls that can be made to fail.  */
typedef enum wal_sys_call {
	WAL_SYS_OPEN,
	WAL_SYS_READ,
	WAL_SYS_WRITE,
	WAL_SYS_FSYNC,
	WAL_SYS_RENAME,
	WAL_SYS_LINK,
	WAL_SYS_UNLINK,
	WAL_SYS_MKDIR,
	WAL_SYS_NET_SEND,
	WAL_SYS_NET_RECV,
	WAL_SYS_COUNT
} wal_sys_call;

#ifdef WALARCHIVE_TEST_SEAMS
/*
 * The test seam (sys/seam.c), compiled only into the tests' build.
 * Fault seam (safe to call from several threads): the nth (1-based) call
 * counted by wal_sys_fault() from now on fails with err (of any kind if
 * kind is WAL_SYS_COUNT).  nth = 0 disarms.  Also armed from the
 * environment: WALARCHIVE_FAULT="N:ERRNO[:KIND]".
 */
void wal_sys_fault_arm(long nth, int err, wal_sys_call kind);

/* Counts one call of kind; returns the errno to fail with, or 0. */
int wal_sys_fault(wal_sys_call kind);

/* How many calls wal_sys_fault() has counted since the last arm. */
long wal_sys_fault_calls(void);

/*
 * Call recorder, for tests that check the order of the durable-write
 * protocol: after every seamed call that succeeded, fn is called with its
 * kind, the descriptor it used or returned (open, read, write, fsync; else
 * -1) and the paths it named (open, unlink, mkdir: path; rename and link:
 * from and to; else NULL).  It may be called from several threads at once.
 * NULL stops recording.  Only a test sets it; the calls behave the same
 * whether or not one is set.
 */
typedef void (*wal_sys_recorder)(wal_sys_call kind, int fd, const char *path, const char *path2,
				 void *arg);
void wal_sys_record(wal_sys_recorder fn, void *arg);

/* Hands one succeeded call to the recorder, if one is set. */
void wal_sys_record_call(wal_sys_call kind, int fd, const char *path, const char *path2);
#else
/* A release build: no seam, nothing recorded; the calls compile away. */
static inline int wal_sys_fault(wal_sys_call kind)
{
	(void)kind;
	return 0;
}

static inline void wal_sys_record_call(wal_sys_call kind, int fd, const char *path,
				       const char *path2)
{
	(void)kind, (void)fd, (void)path, (void)path2;
}
#endif

/* Seamed system calls: same contract as the libc call (-1 and errno). */
int wal_sys_open(const char *path, int flags, mode_t mode);
int wal_sys_openat(int dir_fd, const char *name, int flags, mode_t mode);
ssize_t wal_sys_read(int fd, void *buf, size_t len);
int wal_sys_fsync(int fd);
int wal_sys_rename(const char *from, const char *to);
int wal_sys_renameat(int from_dir, const char *from, int to_dir, const char *to);
int wal_sys_link(const char *from, const char *to);
int wal_sys_unlink(const char *path);
int wal_sys_unlinkat(int dir_fd, const char *name, int flags);
int wal_sys_mkdir(const char *path, mode_t mode);

/* Writes all len bytes (retrying short writes and EINTR); -1 and errno. */
int wal_sys_write_all(int fd, const void *buf, size_t len);

/* Reads until len bytes or end of file; returns bytes read or -1. */
ssize_t wal_sys_read_full(int fd, void *buf, size_t len);

/*
 * The temporary name a write of path goes through: "<dir>/.<base>.<pid>.<rand>.tmp"
 * (the pid lets a later write tell an abandoned one from one under way).
 */
void wal_tmp_name(const char *path, char *out, size_t cap);

/* fsyncs a directory. */
wal_err wal_fsync_dir(const char *dir, wal_error *e);

/* The directory part of path: "." for a bare name, "/" for a file in the root. */
void wal_dirname(const char *path, char *out, size_t cap);

/* Creates dir and missing parents (mode 0700), fsyncing each parent it changed. */
wal_err wal_mkdir_p(const char *dir, wal_error *e);

/*
 * Durable atomic creation of path from src:
 *   1. writes every byte to a temporary file "<dir>/.<base>.<pid>.<rand>.tmp"
 *      created O_EXCL with mode, in path's directory;
 *   2. fsyncs it;
 *   3. links it to path with a call that cannot replace (renameat2
 *      RENAME_NOREPLACE, else link + unlink);
 *   4. fsyncs the directory.
 * After WAL_OK, path holds exactly the bytes of src and survives a crash.
 * If path already exists: WAL_EEXIST, path untouched.  On any failure the
 * temporary file is removed and path is untouched; a process killed midway
 * leaves at most a ".tmp" file, never a partial file under path, and the
 * next write of the same name removes it once its process is gone.
 */
wal_err wal_atomic_write(const char *path, wal_source *src, mode_t mode, wal_error *e);

/*
 * The same for a caller that writes the content itself: open creates the
 * temporary file, commit fsyncs and links it into place, abort removes it.
 * After open, exactly one of commit or abort must be called.  Commit flags:
 * WAL_ATOMIC_REPLACE renames over an existing path (else WAL_EEXIST);
 * WAL_ATOMIC_NO_SYNC skips both fsyncs, for a caller whose reader makes the
 * file durable itself (the rename still means no reader sees a partial file).
 */
#define WAL_ATOMIC_REPLACE 1
#define WAL_ATOMIC_NO_SYNC 2
typedef struct wal_atomic_file {
	int fd;
	char *path;
	char *tmp_path;
	wal_sink sink;		   /* writes to fd; reset truncates */
	struct wal_writer *writer; /* a writer thread once writes are large */
} wal_atomic_file;
wal_err wal_atomic_open(wal_atomic_file *f, const char *path, mode_t mode, wal_error *e);
wal_err wal_atomic_commit(wal_atomic_file *f, int flags, wal_error *e);
void wal_atomic_abort(wal_atomic_file *f);

/* Before commit: the name to commit to, in the same directory as the one opened. */
wal_err wal_atomic_retarget(wal_atomic_file *f, const char *path, wal_error *e);

/*
 * Waits until every byte written through f->sink is in the file (large
 * writes go through a writer thread, so that producing the bytes and
 * writing them overlap); then f->fd can be read.  Reports a write error.
 */
wal_err wal_atomic_flush(wal_atomic_file *f, wal_error *e);

#endif
