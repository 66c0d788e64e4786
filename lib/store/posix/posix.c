/*
 * The local-directory driver: archive = /path or file:///path.  put goes
 * through wal_atomic_write (temporary file, fsync, no-replace rename,
 * directory fsync), so an object's name appears only with all its bytes on
 * disk.  get, stat, list and remove never follow a symbolic link inside the
 * tree: they walk from the root one directory at a time (openat with
 * O_NOFOLLOW) and act relative to the directory they opened.  The root
 * itself may be a link the administrator made.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include "sys/fileio.h"
#include "store/store.h"

typedef struct posix_store {
	wal_store base;
	char *root;
	mode_t file_mode;
} posix_store;

static int full_path(const posix_store *s, const char *rel, char *out, size_t cap)
{
	int n = *rel ? snprintf(out, cap, "%s/%s", s->root, rel)
		     : snprintf(out, cap, "%s", s->root);
	return n < 0 || (size_t)n >= cap ? -1 : 0;
}

/* Checks rel (the driver refuses bad paths itself) and joins it to the root. */
#define FULL(s, rel, buf)                                                                          \
	do {                                                                                       \
		if (*(rel)) {                                                                      \
			wal_err v_ = wal_store_path_valid(rel, e);                                 \
			if (v_ != WAL_OK)                                                          \
				return v_;                                                         \
		}                                                                                  \
		if (full_path(s, rel, buf, sizeof(buf)) < 0)                                       \
			return wal_fail(e, WAL_EINVAL, "%s: path too long", rel);                  \
	} while (0)

/*
 * Opens the directory of rel's last component, walking from the root one
 * component at a time without following links; *leaf is that component
 * (rel = "": the root itself, *leaf "").  -1 with errno (ELOOP or ENOTDIR
 * for a link or a file on the way).
 */
static int open_parent(const posix_store *s, const char *rel, char *buf, size_t cap,
		       const char **leaf)
{
	int fd = open(s->root, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0 || snprintf(buf, cap, "%s", rel) >= (int)cap) {
		if (fd >= 0) {
			close(fd);
			errno = ENAMETOOLONG;
		}
		return -1;
	}
	char *part = buf, *slash;
	while ((slash = strchr(part, '/'))) {
		*slash = '\0';
		int next = openat(fd, part, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		int saved = errno;
		close(fd);
		if (next < 0) {
			errno = saved;
			return -1;
		}
		fd = next;
		part = slash + 1;
	}
	*leaf = part;
	return fd;
}

/* The error of a walk or an open that met a link (or a file where a directory was). */
static wal_err walk_fail(const char *full, int errnum, const char *what, wal_error *e)
{
	if (errnum == ENOENT)
		return wal_fail(e, WAL_ENOENT, "%s: not in the archive", full);
	if (errnum == ELOOP || errnum == ENOTDIR)
		return wal_fail(e, WAL_EIO,
				"%s: cannot %s: a symbolic link (or not a directory) on "
				"the way; links inside the archive are not followed",
				full, what);
	return wal_fail_errno(e, WAL_OK, errnum, "%s: cannot %s", full, what);
}

static wal_err posix_open(wal_store **out, const wal_url *url, const wal_config *cfg, wal_error *e)
{
	struct stat st;
	if (stat(url->path, &st) < 0) {
		if (errno == ENOENT)
			return wal_fail(e, WAL_ENOENT, "archive %s: directory does not exist",
					url->path);
		return wal_fail_errno(e, WAL_OK, errno, "archive %s", url->path);
	}
	if (!S_ISDIR(st.st_mode))
		return wal_fail(e, WAL_ECONFIG, "archive %s: not a directory", url->path);
	posix_store *s = calloc(1, sizeof(*s));
	if (!s || !(s->root = strdup(url->path))) {
		free(s);
		return wal_fail(e, WAL_ENOMEM, "out of memory");
	}
	s->base.ops = &wal_store_posix_ops;
	s->file_mode = (mode_t)cfg->file_mode;
	*out = &s->base;
	return WAL_OK;
}

/*
 * An entry made this long ago is on disk by the file system's own periodic
 * commit (every 5 s on ext4, 30 s on XFS and btrfs by default).
 */
#define ENTRY_SETTLED_SECONDS 60
#ifdef WALARCHIVE_TEST_SEAMS
long wal_posix_settled_seconds = ENTRY_SETTLED_SECONDS; /* tests move it */
#define SETTLED_SECONDS wal_posix_settled_seconds
#else
#define SETTLED_SECONDS ENTRY_SETTLED_SECONDS
#endif

/* Whether path was made more than SETTLED_SECONDS ago (0 when unknown). */
static int entry_settled(const char *path)
{
	struct statx stx;
	struct timespec now;
	if (statx(AT_FDCWD, path, AT_SYMLINK_NOFOLLOW, STATX_BTIME, &stx) < 0 ||
	    !(stx.stx_mask & STATX_BTIME) || clock_gettime(CLOCK_REALTIME, &now) < 0)
		return 0;
	return (long)(now.tv_sec - (time_t)stx.stx_btime.tv_sec) > SETTLED_SECONDS;
}

/*
 * fsyncs every directory from the one holding path up to the archive root,
 * so that each entry on the way is durable even if an earlier process
 * created it and died before syncing it; not when path itself is settled,
 * since every entry above it is older still.  (An fsync of a clean directory
 * still flushes the disk's write cache on ext4: on a disk with a slow flush,
 * the two above an object's directory cost as much as the object's own.)
 */
static wal_err sync_parents(posix_store *s, const char *full, wal_error *e)
{
	char dir[4096];
	size_t root_len = strlen(s->root);
	if (entry_settled(full))
		return WAL_OK;
	snprintf(dir, sizeof(dir), "%s", full);
	for (;;) {
		char *slash = strrchr(dir, '/');
		if (!slash || (size_t)(slash - dir) < root_len)
			return WAL_OK;
		*slash = '\0';
		wal_err rc = wal_fsync_dir(dir, e);
		if (rc != WAL_OK)
			return rc;
	}
}

static wal_err posix_put(wal_store *base, const char *path, wal_source *src, wal_error *e)
{
	posix_store *s = (posix_store *)base;
	char full[4096], dir[4096];
	FULL(s, path, full);
	snprintf(dir, sizeof(dir), "%s", full);
	*strrchr(dir, '/') = '\0';
	wal_err rc = wal_mkdir_p(dir, e);
	if (rc != WAL_OK)
		return rc;
	rc = wal_atomic_write(full, src, s->file_mode, e);
	if (rc != WAL_OK)
		return rc;
	/* the object's own directory was synced by the write; now the ones above */
	snprintf(dir, sizeof(dir), "%s", full);
	*strrchr(dir, '/') = '\0';
	return sync_parents(s, dir, e);
}

static wal_err posix_sync(wal_store *base, const char *path, wal_error *e)
{
	posix_store *s = (posix_store *)base;
	char full[4096];
	FULL(s, path, full);
	int fd = wal_sys_open(full, O_RDONLY, 0);
	if (fd < 0)
		return wal_fail_errno(e, WAL_OK, errno, "%s: cannot open", full);
	int failed = wal_sys_fsync(fd) < 0;
	int saved = errno;
	close(fd);
	if (failed)
		return wal_fail_errno(e, WAL_OK, saved, "%s: cannot fsync", full);
	return sync_parents(s, full, e);
}

static wal_err posix_get(wal_store *base, const char *path, wal_sink *sink, wal_error *e)
{
	posix_store *s = (posix_store *)base;
	char full[4096], rel[4096];
	const char *leaf;
	FULL(s, path, full);
	int dir = open_parent(s, path, rel, sizeof(rel), &leaf);
	if (dir < 0)
		return walk_fail(full, errno, "open", e);
	int fd = wal_sys_openat(dir, leaf, O_RDONLY | O_NOFOLLOW, 0);
	int saved = errno;
	close(dir);
	if (fd < 0)
		return walk_fail(full, saved, "open", e);
	wal_fd_source src;
	wal_fd_source_init(&src, fd, full, -1);
	wal_err rc = wal_source_pump(&src.base, sink, e);
	close(fd);
	return rc;
}

static wal_err posix_stat(wal_store *base, const char *path, wal_stat *st, wal_error *e)
{
	posix_store *s = (posix_store *)base;
	char full[4096], rel[4096];
	const char *leaf;
	struct stat sb;
	FULL(s, path, full);
	int dir = open_parent(s, path, rel, sizeof(rel), &leaf);
	if (dir < 0)
		return walk_fail(full, errno, "stat", e);
	int failed = *leaf ? fstatat(dir, leaf, &sb, AT_SYMLINK_NOFOLLOW) : fstat(dir, &sb);
	int saved = errno;
	close(dir);
	if (failed < 0)
		return walk_fail(full, saved, "stat", e);
	if (S_ISLNK(sb.st_mode))
		return walk_fail(full, ELOOP, "stat", e);
	st->size = sb.st_size;
	st->mtime = sb.st_mtime;
	st->is_dir = S_ISDIR(sb.st_mode);
	return WAL_OK;
}

static wal_err posix_list(wal_store *base, const char *dir, wal_list_fn fn, void *arg, wal_error *e)
{
	posix_store *s = (posix_store *)base;
	char full[4096];
	char rel[4096];
	const char *leaf;
	wal_err rc = WAL_OK;
	FULL(s, dir, full);
	int parent = open_parent(s, dir, rel, sizeof(rel), &leaf);
	if (parent < 0)
		return walk_fail(full, errno, "list", e);
	int fd = *leaf ? openat(parent, leaf, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
		       : dup(parent);
	int saved = errno;
	close(parent);
	DIR *d = fd >= 0 ? fdopendir(fd) : NULL;
	if (!d) {
		if (fd >= 0) {
			saved = errno;
			close(fd);
		}
		return walk_fail(full, saved, "list", e);
	}
	for (;;) {
		errno = 0;
		struct dirent *ent = readdir(d);
		if (!ent) {
			if (errno)
				rc = wal_fail_errno(e, WAL_OK, errno, "%s: cannot list", full);
			break;
		}
		if (strcmp(ent->d_name, ".") == 0 || strcmp(ent->d_name, "..") == 0)
			continue;
		struct stat sb;
		if (fstatat(dirfd(d), ent->d_name, &sb, AT_SYMLINK_NOFOLLOW) < 0) {
			if (errno == ENOENT)
				continue; /* removed while we listed */
			rc = wal_fail_errno(e, WAL_OK, errno, "%s/%s: cannot stat", full,
					    ent->d_name);
			break;
		}
		wal_stat st = { sb.st_size, sb.st_mtime, S_ISDIR(sb.st_mode) };
		rc = fn(arg, ent->d_name, &st, e);
		if (rc != WAL_OK)
			break;
	}
	closedir(d);
	return rc;
}

static wal_err posix_remove(wal_store *base, const char *path, wal_error *e)
{
	posix_store *s = (posix_store *)base;
	char full[4096], rel[4096];
	const char *leaf;
	struct stat sb;
	wal_err rc = WAL_OK;
	FULL(s, path, full);
	int dir = open_parent(s, path, rel, sizeof(rel), &leaf);
	if (dir < 0)
		return walk_fail(full, errno, "remove", e);
	if (fstatat(dir, leaf, &sb, AT_SYMLINK_NOFOLLOW) < 0)
		rc = walk_fail(full, errno, "stat", e);
	/* a link is removed as a link; what it points at is never touched.
	 * No directory fsync: a removal lost in a crash only leaves old WAL behind */
	else if ((S_ISDIR(sb.st_mode) ? unlinkat(dir, leaf, AT_REMOVEDIR)
				      : wal_sys_unlinkat(dir, leaf, 0)) < 0)
		rc = wal_fail_errno(e, WAL_OK, errno, "%s: cannot remove", full);
	close(dir);
	return rc;
}

static void posix_close(wal_store *base)
{
	posix_store *s = (posix_store *)base;
	if (!s)
		return;
	free(s->root);
	free(s);
}

const wal_store_ops wal_store_posix_ops = {
	.scheme = "file",
	.open = posix_open,
	.put = posix_put,
	.get = posix_get,
	.stat = posix_stat,
	.list = posix_list,
	.remove = posix_remove,
	.close = posix_close,
	.sync = posix_sync,
};
