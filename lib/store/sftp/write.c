/*
 * The SFTP store's uploads: each object is written under a temporary name,
 * made durable with fsync@openssh.com and renamed with plain SFTP rename,
 * which OpenSSH refuses when the target exists, so an archived object is
 * never replaced; the directory is fsynced too.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store/sftp/sftp.h"

/* fsync@openssh.com on the directory holding remote_file, so that a new
 * entry (rename, mkdir) survives a server crash.  OpenSSH opens a directory
 * as a file and fsyncs it; a server that cannot is not asked again. */
static void fsync_remote_dir(sftp_store *s, const char *remote_file)
{
	if (s->dir_fsync_broken)
		return;
	char dir[2048];
	snprintf(dir, sizeof(dir), "%s", remote_file);
	char *slash = strrchr(dir, '/');
	if (!slash)
		return;
	if (slash == dir)
		slash[1] = '\0';
	else
		*slash = '\0';
	LIBSSH2_SFTP_HANDLE *h = libssh2_sftp_open_ex(s->sftp, dir, (unsigned int)strlen(dir),
						      LIBSSH2_FXF_READ, 0, LIBSSH2_SFTP_OPENFILE);
	if (!h || libssh2_sftp_fsync(h) != 0)
		s->dir_fsync_broken = 1;
	if (h)
		libssh2_sftp_close_handle(h);
}

/* Creates the directories of store path dir that are missing, top down. */
static wal_err remote_mkdir_p(sftp_store *s, const char *dir, wal_error *e)
{
	char rel[1100], remote[2048];
	int dir_mode = s->file_mode | ((s->file_mode & 0444) >> 2);
	snprintf(rel, sizeof(rel), "%s", dir);
	for (char *p = rel;; p++) {
		if (*p != '/' && *p != '\0')
			continue;
		char saved = *p;
		*p = '\0';
		wal_sftp_remote_path(s, rel, remote, sizeof(remote));
		int rc = libssh2_sftp_mkdir_ex(s->sftp, remote, (unsigned int)strlen(remote),
					       dir_mode);
		if (rc == 0) {
			fsync_remote_dir(s, remote); /* the new entry in its parent */
		} else {
			/* usually it exists already; anything else, report mkdir's cause */
			unsigned long status = wal_sftp_status(s, rc);
			LIBSSH2_SFTP_ATTRIBUTES attrs;
			int have = rc == LIBSSH2_ERROR_SFTP_PROTOCOL
					   ? wal_sftp_remote_stat(s, remote, &attrs)
					   : rc;
			if (have < 0 && have != LIBSSH2_ERROR_SFTP_PROTOCOL)
				return wal_sftp_op_fail(s, have, "mkdir", remote, e);
			if (have != 1 || !LIBSSH2_SFTP_S_ISDIR(attrs.permissions))
				return wal_sftp_op_fail_status(s, rc, status, "mkdir", remote, e);
		}
		*p = saved;
		if (!saved)
			break;
	}
	return WAL_OK;
}

typedef struct put_args {
	const char *path;
	wal_source *src;
	char stale_tmp[2048]; /* left by an attempt that lost the link; removed on the next */
} put_args;

/* Removes a temporary upload after a failure, if the link still works. */
static void remove_tmp(sftp_store *s, const char *remote_tmp)
{
	if (s->sftp)
		libssh2_sftp_unlink_ex(s->sftp, remote_tmp, (unsigned int)strlen(remote_tmp));
}

/* Creates the temporary upload remote_tmp exclusively, and the missing
 * directories of path when its parent is missing. */
static wal_err create_tmp(sftp_store *s, const char *path, const char *remote_tmp,
			  LIBSSH2_SFTP_HANDLE **out, wal_error *e)
{
	unsigned long flags = LIBSSH2_FXF_WRITE | LIBSSH2_FXF_CREAT | LIBSSH2_FXF_EXCL;
	LIBSSH2_SFTP_HANDLE *h =
		libssh2_sftp_open_ex(s->sftp, remote_tmp, (unsigned int)strlen(remote_tmp), flags,
				     s->file_mode, LIBSSH2_SFTP_OPENFILE);
	if (!h && libssh2_session_last_errno(s->session) == LIBSSH2_ERROR_SFTP_PROTOCOL &&
	    libssh2_sftp_last_error(s->sftp) == LIBSSH2_FX_NO_SUCH_FILE && strchr(path, '/')) {
		char parent[1100];
		snprintf(parent, sizeof(parent), "%s", path);
		*strrchr(parent, '/') = '\0';
		wal_err rc = remote_mkdir_p(s, parent, e);
		if (rc != WAL_OK)
			return rc;
		h = libssh2_sftp_open_ex(s->sftp, remote_tmp, (unsigned int)strlen(remote_tmp),
					 flags, s->file_mode, LIBSSH2_SFTP_OPENFILE);
	}
	if (!h)
		return wal_sftp_op_fail(s, libssh2_session_last_errno(s->session), "create",
					remote_tmp, e);
	*out = h;
	return WAL_OK;
}

/* Writes all of src to h. */
static wal_err send_all(sftp_store *s, wal_source *src, LIBSSH2_SFTP_HANDLE *h,
			const char *remote_tmp, wal_error *e)
{
	/* Keep the window [start, end) of the buffer full: libssh2 pipelines
	 * all of it, returns as soon as some is acknowledged, and wants the
	 * unacknowledged rest passed again at the front.  The window moves
	 * back to the buffer's start only when half of it has been used, so
	 * bytes are not copied once per acknowledgement. */
	size_t start = 0, end = 0;
	int eof = 0;
	while (!eof || end > start) {
		if (start > SFTP_BUF_SIZE / 2) {
			memmove(s->buf, s->buf + start, end - start);
			end -= start;
			start = 0;
		}
		while (!eof && end < SFTP_BUF_SIZE) {
			size_t got = 0;
			wal_err rc = src->read(src, s->buf + end, SFTP_BUF_SIZE - end, &got, e);
			if (rc != WAL_OK)
				return rc;
			if (got == 0)
				eof = 1;
			end += got;
		}
		if (end == start)
			break;
		ssize_t sent = libssh2_sftp_write(h, (const char *)s->buf + start, end - start);
		if (sent < 0)
			return wal_sftp_op_fail(s, (int)sent, "write", remote_tmp, e);
		start += (size_t)sent;
	}
	return WAL_OK;
}

/* fsync@openssh.com on the upload; a server without it is accepted only
 * when sftp_require_fsync is off. */
static wal_err fsync_tmp(sftp_store *s, LIBSSH2_SFTP_HANDLE *h, const char *remote,
			 const char *remote_tmp, wal_error *e)
{
	int frc = libssh2_sftp_fsync(h);
	if (frc == 0)
		return WAL_OK;
	unsigned long st =
		frc == LIBSSH2_ERROR_SFTP_PROTOCOL ? libssh2_sftp_last_error(s->sftp) : 0;
	/* OpenSSH answers "unsupported" when it lacks the extension and
	 * "permission denied" when it is configured to refuse it */
	if (st == LIBSSH2_FX_OP_UNSUPPORTED || st == LIBSSH2_FX_PERMISSION_DENIED) {
		if (s->require_fsync)
			return wal_fail(
				e, WAL_EUNSUPPORTED,
				"%s%s: the server does not allow fsync@openssh.com, "
				"so the upload would not be durable; set sftp_require_fsync = off "
				"to accept that risk",
				s->where, remote);
		return WAL_OK;
	}
	return wal_sftp_op_fail(s, frc, "fsync", remote_tmp, e);
}

/* Moves the complete upload to its final name; WAL_EEXIST if that exists. */
static wal_err rename_tmp(sftp_store *s, const char *remote_tmp, const char *remote, wal_error *e)
{
	/* plain SFTP rename: OpenSSH link()s and refuses an existing target */
	int rrc = libssh2_sftp_rename_ex(s->sftp, remote_tmp, (unsigned int)strlen(remote_tmp),
					 remote, (unsigned int)strlen(remote), 0);
	if (rrc == 0)
		return WAL_OK;
	unsigned long status = wal_sftp_status(s, rrc);
	LIBSSH2_SFTP_ATTRIBUTES attrs;
	int have = rrc == LIBSSH2_ERROR_SFTP_PROTOCOL ? wal_sftp_remote_stat(s, remote, &attrs) : 0;
	if (have == 1)
		return wal_fail(e, WAL_EEXIST, "%s%s: already exists", s->where, remote);
	if (have < 0)
		/* the link broke while we asked: a retry asks again */
		return wal_sftp_op_fail(s, have, "stat", remote, e);
	return wal_sftp_op_fail_status(s, rrc, status, "rename", remote_tmp, e);
}

/* One try of a put: a temporary name, written, fsynced, closed, renamed,
 * and the directory fsynced. */
static wal_err put_once(sftp_store *s, void *arg, int attempt, wal_error *e)
{
	put_args *a = arg;
	char tmp_rel[1100], remote[2048], remote_tmp[2048];
	LIBSSH2_SFTP_HANDLE *h = NULL;
	int created = 0;
	wal_err rc = WAL_OK;
	(void)attempt;

	wal_store_tmp_name(a->path, tmp_rel, sizeof(tmp_rel));
	wal_sftp_remote_path(s, a->path, remote, sizeof(remote));
	wal_sftp_remote_path(s, tmp_rel, remote_tmp, sizeof(remote_tmp));
	if (a->stale_tmp[0]) {
		remove_tmp(s, a->stale_tmp);
		a->stale_tmp[0] = '\0';
	}
	rc = a->src->rewind(a->src, e);
	if (rc != WAL_OK)
		return rc;
	rc = create_tmp(s, a->path, remote_tmp, &h, e);
	if (rc != WAL_OK)
		return rc;
	created = 1;

	rc = send_all(s, a->src, h, remote_tmp, e);
	if (rc != WAL_OK)
		goto out;
	rc = fsync_tmp(s, h, remote, remote_tmp, e);
	if (rc != WAL_OK)
		goto out;
	int crc = libssh2_sftp_close_handle(h);
	h = NULL;
	if (crc != 0) {
		rc = wal_sftp_op_fail(s, crc, "close", remote_tmp, e);
		goto out;
	}
	rc = rename_tmp(s, remote_tmp, remote, e);
	if (rc != WAL_OK)
		goto out;
	created = 0;
	fsync_remote_dir(s, remote);
out:
	wal_sftp_close_handle(s, h, rc);
	if (rc != WAL_OK && created) {
		if (wal_err_transient(rc))
			snprintf(a->stale_tmp, sizeof(a->stale_tmp), "%s", remote_tmp);
		else
			remove_tmp(s, remote_tmp);
	}
	return rc;
}

wal_err wal_sftp_put(sftp_store *s, const char *path, wal_source *src, wal_error *e)
{
	put_args a = { .path = path, .src = src };
	return wal_sftp_with_retries(s, put_once, &a, e);
}

/* fsync@openssh.com on an existing object, then on each directory up to the root. */
static wal_err sync_once(sftp_store *s, void *arg, int attempt, wal_error *e)
{
	(void)attempt;
	const char *path = arg;
	char remote[2048];
	wal_sftp_remote_path(s, path, remote, sizeof(remote));
	LIBSSH2_SFTP_HANDLE *h = libssh2_sftp_open_ex(s->sftp, remote, (unsigned int)strlen(remote),
						      LIBSSH2_FXF_READ, 0, LIBSSH2_SFTP_OPENFILE);
	if (!h)
		return wal_sftp_op_fail(s, libssh2_session_last_errno(s->session), "open", remote,
					e);
	int rc = libssh2_sftp_fsync(h);
	wal_sftp_close_handle(s, h, WAL_OK);
	if (rc != 0 && s->require_fsync)
		return wal_sftp_op_fail(s, rc, "fsync", remote, e);
	/* each directory on the way holds an entry an earlier run may not have synced */
	char dir[2048];
	snprintf(dir, sizeof(dir), "%s", path);
	for (char *slash = strrchr(dir, '/'); slash; slash = strrchr(dir, '/')) {
		wal_sftp_remote_path(s, dir, remote, sizeof(remote));
		fsync_remote_dir(s, remote);
		*slash = '\0';
	}
	wal_sftp_remote_path(s, dir, remote, sizeof(remote));
	fsync_remote_dir(s, remote);
	return WAL_OK;
}

wal_err wal_sftp_sync(sftp_store *s, const char *path, wal_error *e)
{
	return wal_sftp_with_retries(s, sync_once, (void *)path, e);
}
