/*
 * The SFTP store (sftp://user@host[:port]/path) over libssh2: the driver
 * table, opening and closing a store, the retry loop every operation runs
 * in, and the operations that only read (get, stat, list) or remove.
 * Uploads are in write.c, the connection in session.c.
 */
#include <errno.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "store/sftp/sftp.h"

/* The remote path of a store path ("" is the root). */
void wal_sftp_remote_path(sftp_store *s, const char *path, char *out, size_t cap)
{
	if (!*path)
		snprintf(out, cap, "%s", s->root);
	else
		snprintf(out, cap, "%s%s%s", s->root, strcmp(s->root, "/") ? "/" : "", path);
}

/* The SFTP status of a failed call (read it before the next call). */
unsigned long wal_sftp_status(sftp_store *s, int rc)
{
	return rc == LIBSSH2_ERROR_SFTP_PROTOCOL ? libssh2_sftp_last_error(s->sftp) : 0;
}

/* Maps a failed SFTP call on remote, with the status it got, to a wal_err. */
wal_err wal_sftp_op_fail_status(sftp_store *s, int rc, unsigned long status, const char *what,
				const char *remote, wal_error *e)
{
	if (rc != LIBSSH2_ERROR_SFTP_PROTOCOL)
		return wal_sftp_ssh_fail(s, rc, remote, what, e);
	switch (status) {
	case LIBSSH2_FX_NO_SUCH_FILE:
	case LIBSSH2_FX_NO_SUCH_PATH:
		return wal_fail(e, WAL_ENOENT, "%s%s: %s: no such file or directory", s->where,
				remote, what);
	case LIBSSH2_FX_PERMISSION_DENIED:
	case LIBSSH2_FX_WRITE_PROTECT:
		return wal_fail(e, WAL_EPERM, "%s%s: %s: permission denied", s->where, remote,
				what);
	case LIBSSH2_FX_NO_SPACE_ON_FILESYSTEM:
	case LIBSSH2_FX_QUOTA_EXCEEDED:
		return wal_fail(e, WAL_ENOSPC, "%s%s: %s: no space left on the server", s->where,
				remote, what);
	case LIBSSH2_FX_FILE_ALREADY_EXISTS:
		return wal_fail(e, WAL_EEXIST, "%s%s: %s: already exists", s->where, remote, what);
	case LIBSSH2_FX_OP_UNSUPPORTED:
		return wal_fail(e, WAL_EUNSUPPORTED, "%s%s: %s: not supported by the server",
				s->where, remote, what);
	case LIBSSH2_FX_CONNECTION_LOST:
	case LIBSSH2_FX_NO_CONNECTION:
		return wal_fail(e, WAL_ENET, "%s%s: %s: connection lost", s->where, remote, what);
	default:
		return wal_fail(e, WAL_EIO, "%s%s: %s: server reports failure (sftp status %lu)",
				s->where, remote, what, status);
	}
}

/* Closes h; after a failure of the link (rc transient) the socket is shut
 * down first, so that libssh2 frees the handle at once instead of waiting
 * for the timeout again. */
void wal_sftp_close_handle(sftp_store *s, LIBSSH2_SFTP_HANDLE *h, wal_err rc)
{
	if (!h)
		return;
	if (wal_err_transient(rc) && s->sock >= 0)
		shutdown(s->sock, SHUT_RDWR);
	libssh2_sftp_close_handle(h);
}

/* Maps the SFTP call that just failed on remote to a wal_err. */
wal_err wal_sftp_op_fail(sftp_store *s, int rc, const char *what, const char *remote, wal_error *e)
{
	return wal_sftp_op_fail_status(s, rc, wal_sftp_status(s, rc), what, remote, e);
}

/* Stat of a remote path: 1 exists (attrs filled), 0 absent, <0 libssh2 error. */
int wal_sftp_remote_stat(sftp_store *s, const char *remote, LIBSSH2_SFTP_ATTRIBUTES *attrs)
{
	int rc = libssh2_sftp_stat_ex(s->sftp, remote, (unsigned int)strlen(remote),
				      LIBSSH2_SFTP_STAT, attrs);
	if (rc == 0)
		return 1;
	if (rc == LIBSSH2_ERROR_SFTP_PROTOCOL) {
		unsigned long st = libssh2_sftp_last_error(s->sftp);
		if (st == LIBSSH2_FX_NO_SUCH_FILE || st == LIBSSH2_FX_NO_SUCH_PATH)
			return 0;
	}
	return rc;
}

typedef struct get_args {
	const char *path;
	wal_sink *sink;
	int wrote;
} get_args;

static wal_err get_once(sftp_store *s, void *arg, int attempt, wal_error *e)
{
	get_args *a = arg;
	char remote[2048];
	wal_err rc = WAL_OK;
	(void)attempt;
	wal_sftp_remote_path(s, a->path, remote, sizeof(remote));
	if (a->wrote) {
		rc = a->sink->reset(a->sink, e);
		if (rc != WAL_OK)
			return rc;
		a->wrote = 0;
	}
	LIBSSH2_SFTP_HANDLE *h = libssh2_sftp_open_ex(s->sftp, remote, (unsigned int)strlen(remote),
						      LIBSSH2_FXF_READ, 0, LIBSSH2_SFTP_OPENFILE);
	if (!h)
		return wal_sftp_op_fail(s, libssh2_session_last_errno(s->session), "open", remote,
					e);
	for (;;) {
		ssize_t n = libssh2_sftp_read(h, (char *)s->buf, SFTP_READ_SIZE);
		if (n < 0) {
			rc = wal_sftp_op_fail(s, (int)n, "read", remote, e);
			break;
		}
		if (n == 0)
			break;
		a->wrote = 1;
		rc = a->sink->write(a->sink, s->buf, (size_t)n, e);
		if (rc != WAL_OK)
			break;
	}
	wal_sftp_close_handle(s, h, rc);
	return rc;
}

static wal_err stat_once(sftp_store *s, void *arg, int attempt, wal_error *e)
{
	struct {
		const char *path;
		wal_stat *st;
	} *a = arg;
	char remote[2048];
	LIBSSH2_SFTP_ATTRIBUTES attrs;
	(void)attempt;
	wal_sftp_remote_path(s, a->path, remote, sizeof(remote));
	int rc = libssh2_sftp_stat_ex(s->sftp, remote, (unsigned int)strlen(remote),
				      LIBSSH2_SFTP_STAT, &attrs);
	if (rc != 0)
		return wal_sftp_op_fail(s, rc, "stat", remote, e);
	a->st->size = (attrs.flags & LIBSSH2_SFTP_ATTR_SIZE) ? (int64_t)attrs.filesize : -1;
	a->st->mtime = (attrs.flags & LIBSSH2_SFTP_ATTR_ACMODTIME) ? (time_t)attrs.mtime : 0;
	a->st->is_dir = (attrs.flags & LIBSSH2_SFTP_ATTR_PERMISSIONS) &&
			LIBSSH2_SFTP_S_ISDIR(attrs.permissions);
	return WAL_OK;
}

typedef struct list_entry {
	char *name;
	wal_stat st;
} list_entry;

typedef struct list_args {
	const char *dir;
	list_entry *entries;
	size_t count;
	size_t cap;
} list_args;

static void list_clear(list_args *a)
{
	for (size_t i = 0; i < a->count; i++)
		free(a->entries[i].name);
	a->count = 0;
}

/* Reads the whole directory first: a listing cut by a lost link is retried
 * from scratch, and the callback may use the store while it runs. */
static wal_err list_once(sftp_store *s, void *arg, int attempt, wal_error *e)
{
	list_args *a = arg;
	char remote[2048], name[1024];
	wal_err rc = WAL_OK;
	(void)attempt;
	list_clear(a);
	wal_sftp_remote_path(s, a->dir, remote, sizeof(remote));
	LIBSSH2_SFTP_HANDLE *h = libssh2_sftp_open_ex(s->sftp, remote, (unsigned int)strlen(remote),
						      0, 0, LIBSSH2_SFTP_OPENDIR);
	if (!h)
		return wal_sftp_op_fail(s, libssh2_session_last_errno(s->session), "list", remote,
					e);
	for (;;) {
		LIBSSH2_SFTP_ATTRIBUTES attrs;
		int n = libssh2_sftp_readdir_ex(h, name, sizeof(name) - 1, NULL, 0, &attrs);
		if (n < 0) {
			rc = wal_sftp_op_fail(s, n, "list", remote, e);
			break;
		}
		if (n == 0)
			break;
		name[n] = '\0';
		if (!strcmp(name, ".") || !strcmp(name, ".."))
			continue;
		if (a->count == a->cap) {
			size_t cap = a->cap ? a->cap * 2 : 64;
			list_entry *bigger = realloc(a->entries, cap * sizeof(*bigger));
			if (!bigger) {
				rc = wal_fail(e, WAL_ENOMEM, "%s%s: list: out of memory", s->where,
					      remote);
				break;
			}
			a->entries = bigger;
			a->cap = cap;
		}
		list_entry *ent = &a->entries[a->count];
		ent->name = strdup(name);
		if (!ent->name) {
			rc = wal_fail(e, WAL_ENOMEM, "%s%s: list: out of memory", s->where, remote);
			break;
		}
		ent->st.size =
			(attrs.flags & LIBSSH2_SFTP_ATTR_SIZE) ? (int64_t)attrs.filesize : -1;
		ent->st.mtime =
			(attrs.flags & LIBSSH2_SFTP_ATTR_ACMODTIME) ? (time_t)attrs.mtime : 0;
		ent->st.is_dir = (attrs.flags & LIBSSH2_SFTP_ATTR_PERMISSIONS) &&
				 LIBSSH2_SFTP_S_ISDIR(attrs.permissions);
		a->count++;
	}
	wal_sftp_close_handle(s, h, rc);
	return rc;
}

static wal_err remove_once(sftp_store *s, void *arg, int attempt, wal_error *e)
{
	const char *path = arg;
	char remote[2048];
	LIBSSH2_SFTP_ATTRIBUTES attrs;
	wal_sftp_remote_path(s, path, remote, sizeof(remote));
	int rc = libssh2_sftp_stat_ex(s->sftp, remote, (unsigned int)strlen(remote),
				      LIBSSH2_SFTP_LSTAT, &attrs);
	if (rc == 0) {
		if ((attrs.flags & LIBSSH2_SFTP_ATTR_PERMISSIONS) &&
		    LIBSSH2_SFTP_S_ISDIR(attrs.permissions))
			rc = libssh2_sftp_rmdir_ex(s->sftp, remote, (unsigned int)strlen(remote));
		else
			rc = libssh2_sftp_unlink_ex(s->sftp, remote, (unsigned int)strlen(remote));
	}
	if (rc == 0)
		return WAL_OK;
	wal_err err = wal_sftp_op_fail(s, rc, "remove", remote, e);
	/* a retried remove whose first try went through finds nothing */
	if (err == WAL_ENOENT && attempt > 0) {
		wal_error_clear(e);
		return WAL_OK;
	}
	return err;
}

/* Runs op, reconnecting and retrying (with backoff) after transient failures. */
wal_err wal_sftp_with_retries(sftp_store *s, wal_sftp_op_fn op, void *arg, wal_error *e)
{
	for (int attempt = 0;; attempt++) {
		wal_err rc = WAL_OK;
		if (!s->sftp)
			rc = wal_sftp_connect(s, e);
		if (rc == WAL_OK)
			rc = op(s, arg, attempt, e);
		if (rc == WAL_OK || !wal_err_transient(rc))
			return rc;
		/* the link is suspect: the next operation starts a new one */
		wal_sftp_disconnect(s, 1);
		if (attempt >= s->retries)
			return rc;
		wal_retry_backoff(attempt + 1);
	}
}

static wal_err check_path(sftp_store *s, const char *path, wal_error *e)
{
	(void)s;
	return wal_store_path_valid(path, e);
}

static wal_err sftp_put(wal_store *base, const char *path, wal_source *src, wal_error *e)
{
	sftp_store *s = (sftp_store *)base;
	wal_err rc = check_path(s, path, e);
	if (rc != WAL_OK)
		return rc;
	return wal_sftp_put(s, path, src, e);
}

static wal_err sftp_get(wal_store *base, const char *path, wal_sink *sink, wal_error *e)
{
	sftp_store *s = (sftp_store *)base;
	wal_err rc = check_path(s, path, e);
	if (rc != WAL_OK)
		return rc;
	get_args a = { .path = path, .sink = sink };
	return wal_sftp_with_retries(s, get_once, &a, e);
}

static wal_err sftp_stat(wal_store *base, const char *path, wal_stat *st, wal_error *e)
{
	sftp_store *s = (sftp_store *)base;
	wal_err rc = check_path(s, path, e);
	if (rc != WAL_OK)
		return rc;
	struct {
		const char *path;
		wal_stat *st;
	} a = { path, st };
	return wal_sftp_with_retries(s, stat_once, &a, e);
}

static wal_err sftp_list(wal_store *base, const char *dir, wal_list_fn fn, void *arg, wal_error *e)
{
	sftp_store *s = (sftp_store *)base;
	wal_err rc = *dir ? check_path(s, dir, e) : WAL_OK;
	if (rc != WAL_OK)
		return rc;
	list_args a = { .dir = dir };
	rc = wal_sftp_with_retries(s, list_once, &a, e);
	for (size_t i = 0; rc == WAL_OK && i < a.count; i++)
		rc = fn(arg, a.entries[i].name, &a.entries[i].st, e);
	list_clear(&a);
	free(a.entries);
	return rc;
}

static wal_err sftp_remove(wal_store *base, const char *path, wal_error *e)
{
	sftp_store *s = (sftp_store *)base;
	wal_err rc = check_path(s, path, e);
	if (rc != WAL_OK)
		return rc;
	return wal_sftp_with_retries(s, remove_once, (void *)path, e);
}

static wal_err sftp_sync(wal_store *base, const char *path, wal_error *e)
{
	sftp_store *s = (sftp_store *)base;
	wal_err rc = check_path(s, path, e);
	if (rc != WAL_OK)
		return rc;
	return wal_sftp_sync(s, path, e);
}

static void sftp_close(wal_store *base)
{
	sftp_store *s = (sftp_store *)base;
	if (!s)
		return;
	wal_sftp_disconnect(s, 0);
	free(s->user);
	free(s->host);
	free(s->root);
	free(s->key_file);
	free(s->passphrase_file);
	free(s->known_hosts);
	free(s->buf);
	free(s);
}

/* A setting's path with a leading "~/" made absolute (the running user's home). */
static char *expand_home(const char *path)
{
	if (!path || !*path)
		return NULL;
	if (path[0] != '~' || (path[1] != '/' && path[1] != '\0'))
		return strdup(path);
	struct passwd *pw = getpwuid(geteuid());
	const char *home = pw ? pw->pw_dir : getenv("HOME");
	char *out = NULL;
	if (asprintf(&out, "%s%s", home ? home : "", path + 1) < 0)
		return NULL;
	return out;
}

/* The root must exist and be a directory; it is never created here. */
static wal_err check_root(sftp_store *s, void *arg, int attempt, wal_error *e)
{
	LIBSSH2_SFTP_ATTRIBUTES attrs;
	(void)arg;
	(void)attempt;
	int rc = libssh2_sftp_stat_ex(s->sftp, s->root, (unsigned int)strlen(s->root),
				      LIBSSH2_SFTP_STAT, &attrs);
	if (rc != 0) {
		wal_err err = wal_sftp_op_fail(s, rc, "archive root", s->root, e);
		if (err == WAL_ENOENT)
			return wal_fail(e, WAL_ENOENT,
					"%s%s: archive root does not exist on the server", s->where,
					s->root);
		return err;
	}
	if (!LIBSSH2_SFTP_S_ISDIR(attrs.permissions))
		return wal_fail(e, WAL_ECONFIG, "%s%s: archive root is not a directory", s->where,
				s->root);
	return WAL_OK;
}

static wal_err sftp_open(wal_store **out, const wal_url *url, const wal_config *cfg, wal_error *e)
{
	*out = NULL;
	if (!url->host || !*url->host) {
		wal_fail(e, WAL_ECONFIG, "archive: sftp url has no host");
		return wal_config_blame(cfg, "archive", e);
	}
	sftp_store *s = calloc(1, sizeof(*s));
	if (!s)
		return wal_fail(e, WAL_ENOMEM, "sftp store: out of memory");
	s->base.ops = &wal_store_sftp_ops;
	s->sock = -1;
	wal_err rc = WAL_OK;
	if (url->user && *url->user) {
		s->user = strdup(url->user);
	} else {
		struct passwd *pw = getpwuid(geteuid());
		s->user = strdup(pw ? pw->pw_name : "root");
	}
	s->host = strdup(url->host);
	s->port = url->port > 0 ? url->port : 22;
	s->root = strdup(url->path && *url->path ? url->path : "/");
	s->key_file = expand_home(cfg->ssh_key);
	s->passphrase_file = expand_home(cfg->ssh_key_passphrase_file);
	s->known_hosts =
		expand_home(cfg->ssh_known_hosts && *cfg->ssh_known_hosts ? cfg->ssh_known_hosts
									  : "~/.ssh/known_hosts");
	s->use_agent = cfg->ssh_agent;
	s->require_fsync = cfg->sftp_require_fsync;
	s->file_mode = cfg->file_mode > 0 ? cfg->file_mode : 0600;
	s->timeout = cfg->timeout > 0 ? cfg->timeout : 30;
	s->retries = cfg->retries >= 0 ? cfg->retries : 0;
	s->buf = malloc(SFTP_BUF_SIZE > SFTP_READ_SIZE ? SFTP_BUF_SIZE : SFTP_READ_SIZE);
	if (!s->user || !s->host || !s->root || !s->known_hosts || !s->buf ||
	    (cfg->ssh_key && *cfg->ssh_key && !s->key_file) ||
	    (cfg->ssh_key_passphrase_file && *cfg->ssh_key_passphrase_file &&
	     !s->passphrase_file)) {
		rc = wal_fail(e, WAL_ENOMEM, "sftp store: out of memory");
		goto out;
	}
	if (strchr(s->host, ':'))
		snprintf(s->where, sizeof(s->where), "sftp://%s@[%s]:%d", s->user, s->host,
			 s->port);
	else
		snprintf(s->where, sizeof(s->where), "sftp://%s@%s:%d", s->user, s->host, s->port);
	if (s->root[0] != '/') {
		wal_fail(e, WAL_ECONFIG, "%s: archive path must be absolute", s->where);
		rc = wal_config_blame(cfg, "archive", e);
		goto out;
	}
	if (s->key_file && access(s->key_file, R_OK) != 0) {
		wal_fail_errno(e, WAL_ECONFIG, errno, "ssh_key %s", s->key_file);
		rc = wal_config_blame(cfg, "ssh_key", e);
		goto out;
	}
	rc = wal_sftp_with_retries(s, check_root, NULL, e);
	if (rc == WAL_ECONFIG)
		/* the host or the root of the archive, or the passphrase file the
		 * login read (whose messages start with its name) */
		rc = wal_config_blame(cfg,
				      strncmp(e->msg, "ssh_key_passphrase_file", 23) == 0
					      ? "ssh_key_passphrase_file"
					      : "archive",
				      e);
out:
	if (rc != WAL_OK) {
		sftp_close(&s->base);
		return rc;
	}
	*out = &s->base;
	return WAL_OK;
}

const wal_store_ops wal_store_sftp_ops = {
	.scheme = "sftp",
	.open = sftp_open,
	.put = sftp_put,
	.get = sftp_get,
	.stat = sftp_stat,
	.list = sftp_list,
	.remove = sftp_remove,
	.close = sftp_close,
	.sync = sftp_sync,
};
