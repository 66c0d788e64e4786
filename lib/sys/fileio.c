/*
 * System calls behind a fault seam, and the durable atomic file write that
 * every local archive object and every restored WAL file goes through.
 */
#include <dirent.h>
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <time.h>
#include <unistd.h>
#include "sys/fileio.h"

#define SEAM(kind)                                                                                 \
	do {                                                                                       \
		int injected_ = wal_sys_fault(kind);                                               \
		if (injected_) {                                                                   \
			errno = injected_;                                                         \
			return -1;                                                                 \
		}                                                                                  \
	} while (0)

int wal_sys_open(const char *path, int flags, mode_t mode)
{
	SEAM(WAL_SYS_OPEN);
	int fd;
	do
		fd = open(path, flags | O_CLOEXEC, mode);
	while (fd < 0 && errno == EINTR);
	if (fd >= 0)
		wal_sys_record_call(WAL_SYS_OPEN, fd, path, NULL);
	return fd;
}

int wal_sys_openat(int dir_fd, const char *name, int flags, mode_t mode)
{
	SEAM(WAL_SYS_OPEN);
	int fd;
	do
		fd = openat(dir_fd, name, flags | O_CLOEXEC, mode);
	while (fd < 0 && errno == EINTR);
	return fd;
}

ssize_t wal_sys_read(int fd, void *buf, size_t len)
{
	SEAM(WAL_SYS_READ);
	ssize_t n;
	do
		n = read(fd, buf, len);
	while (n < 0 && errno == EINTR);
	if (n >= 0)
		wal_sys_record_call(WAL_SYS_READ, fd, NULL, NULL);
	return n;
}

ssize_t wal_sys_read_full(int fd, void *buf, size_t len)
{
	size_t done = 0;
	while (done < len) {
		ssize_t n = wal_sys_read(fd, (char *)buf + done, len - done);
		if (n < 0)
			return -1;
		if (n == 0)
			break;
		done += (size_t)n;
	}
	return (ssize_t)done;
}

int wal_sys_write_all(int fd, const void *buf, size_t len)
{
	SEAM(WAL_SYS_WRITE);
	const char *p = buf;
	while (len > 0) {
		ssize_t n = write(fd, p, len);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		p += n;
		len -= (size_t)n;
	}
	wal_sys_record_call(WAL_SYS_WRITE, fd, NULL, NULL);
	return 0;
}

int wal_sys_fsync(int fd)
{
	SEAM(WAL_SYS_FSYNC);
	int rc = fsync(fd);
	if (rc == 0)
		wal_sys_record_call(WAL_SYS_FSYNC, fd, NULL, NULL);
	return rc;
}

int wal_sys_rename(const char *from, const char *to)
{
	SEAM(WAL_SYS_RENAME);
	int rc = rename(from, to);
	if (rc == 0)
		wal_sys_record_call(WAL_SYS_RENAME, -1, from, to);
	return rc;
}

int wal_sys_renameat(int from_dir, const char *from, int to_dir, const char *to)
{
	SEAM(WAL_SYS_RENAME);
	return renameat(from_dir, from, to_dir, to);
}

int wal_sys_link(const char *from, const char *to)
{
	SEAM(WAL_SYS_LINK);
	int rc = link(from, to);
	if (rc == 0)
		wal_sys_record_call(WAL_SYS_LINK, -1, from, to);
	return rc;
}

int wal_sys_unlink(const char *path)
{
	SEAM(WAL_SYS_UNLINK);
	int rc = unlink(path);
	if (rc == 0)
		wal_sys_record_call(WAL_SYS_UNLINK, -1, path, NULL);
	return rc;
}

int wal_sys_unlinkat(int dir_fd, const char *name, int flags)
{
	SEAM(WAL_SYS_UNLINK);
	return unlinkat(dir_fd, name, flags);
}

int wal_sys_mkdir(const char *path, mode_t mode)
{
	SEAM(WAL_SYS_MKDIR);
	int rc = mkdir(path, mode);
	if (rc == 0)
		wal_sys_record_call(WAL_SYS_MKDIR, -1, path, NULL);
	return rc;
}

/* ---- directories --------------------------------------------------------- */

wal_err wal_fsync_dir(const char *dir, wal_error *e)
{
	int fd = wal_sys_open(dir, O_RDONLY | O_DIRECTORY, 0);
	if (fd < 0)
		return wal_fail_errno(e, WAL_OK, errno, "%s: cannot open directory", dir);
	wal_err rc = WAL_OK;
	if (wal_sys_fsync(fd) < 0)
		rc = wal_fail_errno(e, WAL_OK, errno, "%s: cannot fsync directory", dir);
	close(fd);
	return rc;
}

void wal_dirname(const char *path, char *out, size_t cap)
{
	const char *slash = strrchr(path, '/');
	if (!slash)
		snprintf(out, cap, ".");
	else if (slash == path)
		snprintf(out, cap, "/");
	else
		snprintf(out, cap, "%.*s", (int)(slash - path), path);
}

wal_err wal_mkdir_p(const char *dir, wal_error *e)
{
	struct stat st;
	if (stat(dir, &st) == 0) {
		if (S_ISDIR(st.st_mode))
			return WAL_OK;
		return wal_fail(e, WAL_EIO, "%s: exists and is not a directory", dir);
	}
	if (errno != ENOENT)
		return wal_fail_errno(e, WAL_OK, errno, "%s: cannot stat", dir);

	char parent[4096];
	wal_dirname(dir, parent, sizeof(parent));
	if (strcmp(parent, dir) != 0) {
		wal_err rc = wal_mkdir_p(parent, e);
		if (rc != WAL_OK)
			return rc;
	}
	if (wal_sys_mkdir(dir, 0700) < 0 && errno != EEXIST)
		return wal_fail_errno(e, WAL_OK, errno, "%s: cannot create directory", dir);
	/* the new entry is durable only once its parent is synced */
	return wal_fsync_dir(parent, e);
}

/* ---- atomic files -------------------------------------------------------- */

/*
 * The writer thread: the producer (decompression, a download) fills one
 * buffer while the thread writes the other, so that on two cores the
 * copy into the page cache costs no time of its own.
 */
#define WRITER_BUF (512 * 1024)
#define WRITER_MIN 65536 /* smaller writes never start a thread */

struct wal_writer {
	pthread_t thread;
	pthread_mutex_t lock;
	pthread_cond_t cond;
	int fd;
	unsigned char *buf[2];
	size_t len[2];
	int filling; /* the buffer the producer fills */
	int pending; /* the buffer handed to the thread, or -1 */
	int stop;
	int err; /* errno of a failed write, 0 if none */
};

static void *writer_main(void *arg)
{
	struct wal_writer *w = arg;
	pthread_mutex_lock(&w->lock);
	for (;;) {
		while (w->pending < 0 && !w->stop)
			pthread_cond_wait(&w->cond, &w->lock);
		if (w->pending < 0)
			break;
		int idx = w->pending;
		pthread_mutex_unlock(&w->lock);
		int failed = wal_sys_write_all(w->fd, w->buf[idx], w->len[idx]) < 0 ? errno : 0;
		pthread_mutex_lock(&w->lock);
		if (failed && !w->err)
			w->err = failed;
		w->len[idx] = 0;
		w->pending = -1;
		pthread_cond_broadcast(&w->cond);
	}
	pthread_mutex_unlock(&w->lock);
	return NULL;
}

static struct wal_writer *writer_start(int fd)
{
	struct wal_writer *w = calloc(1, sizeof(*w));
	if (!w)
		return NULL;
	w->fd = fd;
	w->pending = -1;
	w->buf[0] = malloc(WRITER_BUF);
	w->buf[1] = malloc(WRITER_BUF);
	pthread_mutex_init(&w->lock, NULL);
	pthread_cond_init(&w->cond, NULL);
	if (!w->buf[0] || !w->buf[1] || pthread_create(&w->thread, NULL, writer_main, w) != 0) {
		free(w->buf[0]);
		free(w->buf[1]);
		pthread_mutex_destroy(&w->lock);
		pthread_cond_destroy(&w->cond);
		free(w);
		return NULL;
	}
	return w;
}

/* Waits for the thread to be idle; returns the errno of any failed write. */
static int writer_wait(struct wal_writer *w)
{
	pthread_mutex_lock(&w->lock);
	while (w->pending >= 0)
		pthread_cond_wait(&w->cond, &w->lock);
	int err = w->err;
	pthread_mutex_unlock(&w->lock);
	return err;
}

/* Hands the buffer being filled to the thread (after the previous one). */
static int writer_hand_off(struct wal_writer *w)
{
	int err = writer_wait(w);
	if (err || w->len[w->filling] == 0)
		return err;
	pthread_mutex_lock(&w->lock);
	w->pending = w->filling;
	pthread_cond_broadcast(&w->cond);
	pthread_mutex_unlock(&w->lock);
	w->filling ^= 1;
	return 0;
}

/* Writes out what is buffered; returns the errno of any failed write. */
static int writer_flush(struct wal_writer *w)
{
	int err = writer_hand_off(w);
	return err ? err : writer_wait(w);
}

static void writer_stop(struct wal_writer *w)
{
	if (!w)
		return;
	pthread_mutex_lock(&w->lock);
	w->stop = 1;
	pthread_cond_broadcast(&w->cond);
	pthread_mutex_unlock(&w->lock);
	pthread_join(w->thread, NULL);
	pthread_mutex_destroy(&w->lock);
	pthread_cond_destroy(&w->cond);
	free(w->buf[0]);
	free(w->buf[1]);
	free(w);
}

static wal_err atomic_sink_write(wal_sink *sink, const void *buf, size_t len, wal_error *e)
{
	wal_atomic_file *f = (wal_atomic_file *)((char *)sink - offsetof(wal_atomic_file, sink));
	if (!f->writer && len >= WRITER_MIN)
		f->writer = writer_start(f->fd); /* none: write directly, still correct */
	struct wal_writer *w = f->writer;
	if (!w) {
		if (wal_sys_write_all(f->fd, buf, len) < 0)
			return wal_fail_errno(e, WAL_OK, errno, "%s: cannot write", f->tmp_path);
		return WAL_OK;
	}
	const unsigned char *p = buf;
	while (len > 0) {
		size_t room = WRITER_BUF - w->len[w->filling];
		size_t n = len < room ? len : room;
		memcpy(w->buf[w->filling] + w->len[w->filling], p, n);
		w->len[w->filling] += n;
		p += n;
		len -= n;
		if (w->len[w->filling] == WRITER_BUF) {
			int err = writer_hand_off(w);
			if (err)
				return wal_fail_errno(e, WAL_OK, err, "%s: cannot write",
						      f->tmp_path);
		}
	}
	return WAL_OK;
}

wal_err wal_atomic_flush(wal_atomic_file *f, wal_error *e)
{
	int err = f->writer ? writer_flush(f->writer) : 0;
	if (err)
		return wal_fail_errno(e, WAL_OK, err, "%s: cannot write", f->tmp_path);
	return WAL_OK;
}

static wal_err atomic_sink_reset(wal_sink *sink, wal_error *e)
{
	wal_atomic_file *f = (wal_atomic_file *)((char *)sink - offsetof(wal_atomic_file, sink));
	if (f->writer) {
		/* a write error of the discarded attempt no longer matters */
		writer_wait(f->writer);
		f->writer->len[0] = f->writer->len[1] = 0;
		f->writer->err = 0;
	}
	if (ftruncate(f->fd, 0) < 0 || lseek(f->fd, 0, SEEK_SET) < 0)
		return wal_fail_errno(e, WAL_OK, errno, "%s: cannot truncate", f->tmp_path);
	return WAL_OK;
}

void wal_tmp_name(const char *path, char *out, size_t cap)
{
	const char *slash = strrchr(path, '/');
	const char *base = slash ? slash + 1 : path;
	int dir_len = slash ? (int)(slash - path) : 0;
	struct timespec now;
	clock_gettime(CLOCK_REALTIME, &now);
	unsigned rnd = (unsigned)now.tv_nsec ^ ((unsigned)getpid() << 12) ^ (unsigned)now.tv_sec;
	/* a dot name marks it temporary; pid and random part keep writers apart */
	snprintf(out, cap, "%.*s%s.%s.%d.%08x.tmp", dir_len, path, slash ? "/" : "", base,
		 (int)getpid(), rnd);
}

/*
 * Removes temporary files of earlier writes of the same name whose process
 * is gone (killed before it could clean up): ".<base>.<pid>.<rand>.tmp".
 */
static void drop_orphans(const char *dir, const char *base)
{
	DIR *d = opendir(dir);
	struct dirent *ent;
	size_t base_len = strlen(base);
	while (d && (ent = readdir(d))) {
		const char *n = ent->d_name;
		size_t len = strlen(n);
		if (n[0] != '.' || len < base_len + 7 || strncmp(n + 1, base, base_len) != 0 ||
		    n[base_len + 1] != '.' || strcmp(n + len - 4, ".tmp") != 0)
			continue;
		char *end;
		long pid = strtol(n + base_len + 2, &end, 10);
		if (pid <= 0 || *end != '.' || pid == (long)getpid())
			continue;
		if (kill((pid_t)pid, 0) < 0 && errno == ESRCH) {
			/* relative to the directory: no path length to get wrong */
			unlinkat(dirfd(d), n, 0);
		}
	}
	if (d)
		closedir(d);
}

wal_err wal_atomic_open(wal_atomic_file *f, const char *path, mode_t mode, wal_error *e)
{
	char dir[4096];
	const char *base = strrchr(path, '/');
	base = base ? base + 1 : path;
	wal_dirname(path, dir, sizeof(dir));

	memset(f, 0, sizeof(*f));
	f->fd = -1;
	f->sink.write = atomic_sink_write;
	f->sink.reset = atomic_sink_reset;
	f->path = strdup(path);
	size_t cap = strlen(path) + 64;
	f->tmp_path = malloc(cap);
	if (!f->path || !f->tmp_path) {
		wal_atomic_abort(f);
		return wal_fail(e, WAL_ENOMEM, "out of memory");
	}
	wal_tmp_name(path, f->tmp_path, cap);
	drop_orphans(dir, base);
	f->fd = wal_sys_open(f->tmp_path, O_RDWR | O_CREAT | O_EXCL | O_NOFOLLOW, mode);
	if (f->fd < 0) {
		wal_err rc = wal_fail_errno(e, WAL_OK, errno, "%s: cannot create", f->tmp_path);
		free(f->tmp_path);
		f->tmp_path = NULL;
		wal_atomic_abort(f);
		return rc;
	}
	/* the umask must not widen or narrow what the caller asked for */
	fchmod(f->fd, mode);
	return WAL_OK;
}

void wal_atomic_abort(wal_atomic_file *f)
{
	writer_stop(f->writer);
	f->writer = NULL;
	if (f->fd >= 0)
		close(f->fd);
	if (f->tmp_path)
		unlink(f->tmp_path);
	free(f->tmp_path);
	free(f->path);
	f->fd = -1;
	f->tmp_path = NULL;
	f->path = NULL;
}

/* Links tmp to path without ever replacing path. */
static int link_noreplace(const char *tmp, const char *path)
{
	int injected = wal_sys_fault(WAL_SYS_RENAME);
	if (injected) {
		errno = injected;
		return -1;
	}
	if (renameat2(AT_FDCWD, tmp, AT_FDCWD, path, RENAME_NOREPLACE) == 0) {
		wal_sys_record_call(WAL_SYS_RENAME, -1, tmp, path);
		return 0;
	}
	if (errno != EINVAL && errno != ENOSYS)
		return -1;
	/* file systems without RENAME_NOREPLACE: link fails if path exists */
	if (wal_sys_link(tmp, path) < 0)
		return -1;
	unlink(tmp);
	return 0;
}

wal_err wal_atomic_commit(wal_atomic_file *f, int flags, wal_error *e)
{
	wal_err rc = WAL_OK;
	int replace = flags & WAL_ATOMIC_REPLACE, sync = !(flags & WAL_ATOMIC_NO_SYNC);
	char dir[4096];
	wal_dirname(f->path, dir, sizeof(dir));

	if ((rc = wal_atomic_flush(f, e)) != WAL_OK)
		goto out;
	/* data first: a name must never point at bytes that are not on disk */
	if (sync && wal_sys_fsync(f->fd) < 0) {
		rc = wal_fail_errno(e, WAL_OK, errno, "%s: cannot fsync", f->tmp_path);
		goto out;
	}
	if (close(f->fd) < 0) {
		f->fd = -1;
		rc = wal_fail_errno(e, WAL_OK, errno, "%s: cannot close", f->tmp_path);
		goto out;
	}
	f->fd = -1;
	if (replace ? wal_sys_rename(f->tmp_path, f->path) : link_noreplace(f->tmp_path, f->path)) {
		if (errno == EEXIST)
			rc = wal_fail(e, WAL_EEXIST, "%s: already exists", f->path);
		else
			rc = wal_fail_errno(e, WAL_OK, errno, "%s: cannot rename into place",
					    f->path);
		goto out;
	}
	free(f->tmp_path);
	f->tmp_path = NULL;
	/* then the directory entry, or the rename may be lost in a crash */
	if (sync)
		rc = wal_fsync_dir(dir, e);
out:
	wal_atomic_abort(f);
	return rc;
}

wal_err wal_atomic_retarget(wal_atomic_file *f, const char *path, wal_error *e)
{
	char *copy = strdup(path);
	if (!copy)
		return wal_fail(e, WAL_ENOMEM, "out of memory");
	free(f->path);
	f->path = copy;
	return WAL_OK;
}

wal_err wal_atomic_write(const char *path, wal_source *src, mode_t mode, wal_error *e)
{
	wal_atomic_file f;
	wal_err rc = wal_atomic_open(&f, path, mode, e);
	if (rc != WAL_OK)
		return rc;
	rc = wal_source_pump(src, &f.sink, e);
	if (rc != WAL_OK) {
		wal_atomic_abort(&f);
		return rc;
	}
	return wal_atomic_commit(&f, 0, e);
}
