/*
 * The local-directory driver: archive = /path or file:///path.  put goes
 * through wal_atomic_write (temporary file, fsync, no-replace rename,
 * directory fsync), so an object's name appears only with all its bytes on
 * disk.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include "fileio.h"
#include "store.h"

typedef struct posix_store {
	wal_store base;
	char *root;
	mode_t file_mode;
} posix_store;

static int full_path(const posix_store *s, const char *rel, char *out, size_t cap)
{
	int n = *rel ? snprintf(out, cap, "%s/%s", s->root, rel) : snprintf(out, cap, "%s", s->root);
	return n < 0 || (size_t)n >= cap ? -1 : 0;
}

/* Checks rel (the driver refuses bad paths itself) and joins it to the root. */
#define FULL(s, rel, buf) do { \
	if (*(rel)) { wal_err v_ = wal_store_path_valid(rel, e); if (v_ != WAL_OK) return v_; } \
	if (full_path(s, rel, buf, sizeof(buf)) < 0) \
		return wal_fail(e, WAL_EINVAL, "%s: path too long", rel); } while (0)

static wal_err posix_open(wal_store **out, const wal_url *url, const wal_config *cfg, wal_error *e)
{
	struct stat st;
	if (stat(url->path, &st) < 0) {
		if (errno == ENOENT)
			return wal_fail(e, WAL_ENOENT, "archive %s: directory does not exist", url->path);
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
 * fsyncs every directory from the one holding path up to the archive root,
 * so that each entry on the way is durable even if an earlier process
 * created it and died before syncing it.  Syncing a clean directory costs
 * almost nothing.
 */
static wal_err sync_parents(posix_store *s, const char *full, wal_error *e)
{
	char dir[4096];
	size_t root_len = strlen(s->root);
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
	char full[4096];
	FULL(s, path, full);
	int fd = wal_sys_open(full, O_RDONLY, 0);
	if (fd < 0) {
		if (errno == ENOENT)
			return wal_fail(e, WAL_ENOENT, "%s: not in the archive", full);
		return wal_fail_errno(e, WAL_OK, errno, "%s: cannot open", full);
	}
	wal_fd_source src;
	wal_fd_source_init(&src, fd, full, -1);
	wal_err rc = wal_source_pump(&src.base, sink, e);
	close(fd);
	return rc;
}

static wal_err posix_stat(wal_store *base, const char *path, wal_stat *st, wal_error *e)
{
	posix_store *s = (posix_store *)base;
	char full[4096];
	struct stat sb;
	FULL(s, path, full);
	if (stat(full, &sb) < 0) {
		if (errno == ENOENT)
			return wal_fail(e, WAL_ENOENT, "%s: not in the archive", full);
		return wal_fail_errno(e, WAL_OK, errno, "%s: cannot stat", full);
	}
	st->size = sb.st_size;
	st->mtime = sb.st_mtime;
	st->is_dir = S_ISDIR(sb.st_mode);
	return WAL_OK;
}

static wal_err posix_list(wal_store *base, const char *dir, wal_list_fn fn, void *arg, wal_error *e)
{
	posix_store *s = (posix_store *)base;
	char full[4096];
	wal_err rc = WAL_OK;
	FULL(s, dir, full);
	DIR *d = opendir(full);
	if (!d) {
		if (errno == ENOENT)
			return wal_fail(e, WAL_ENOENT, "%s: not in the archive", full);
		return wal_fail_errno(e, WAL_OK, errno, "%s: cannot list", full);
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
				continue;       /* removed while we listed */
			rc = wal_fail_errno(e, WAL_OK, errno, "%s/%s: cannot stat", full, ent->d_name);
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
	char full[4096];
	struct stat sb;
	FULL(s, path, full);
	if (lstat(full, &sb) < 0) {
		if (errno == ENOENT)
			return wal_fail(e, WAL_ENOENT, "%s: not in the archive", full);
		return wal_fail_errno(e, WAL_OK, errno, "%s: cannot stat", full);
	}
	/* no directory fsync: a removal lost in a crash only leaves old WAL behind */
	if ((S_ISDIR(sb.st_mode) ? rmdir(full) : wal_sys_unlink(full)) < 0)
		return wal_fail_errno(e, WAL_OK, errno, "%s: cannot remove", full);
	return WAL_OK;
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
