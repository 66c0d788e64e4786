/*
 * Push-ahead records, the archive backlog, and the fetch-ahead spool (see
 * ahead.h).  Parallel transfers are child processes, each with its own
 * connection: no threads inside libcurl or libssh2, and a child killed
 * midway takes only its own temporary file with it.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pwd.h>
#include <signal.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include "ahead/ahead.h"
#include "io/compress.h"
#include "sys/fileio.h"
#include "store/store.h"
#include "io/xxhash.h"

#define PUSHED_DIR "pushed"
#define LOCK_NAME ".prefetch.lock"
#define STALE_TMP_SECONDS 600

/* ---- the spool's trust ------------------------------------------------------ */

/*
 * A spool is used only when nobody but the running user (and root) can
 * have written to it, as OpenSSH's StrictModes asks of ~/.ssh: anyone can
 * compute an XXH64, so a segment's name and header prove only that it is
 * well made, not that walarchive made it.
 */

/* A user's name for messages, else "uid N". */
static const char *user_name(uid_t uid, char *buf, size_t cap)
{
	struct passwd *pw = getpwuid(uid);
	if (pw)
		snprintf(buf, cap, "%s", pw->pw_name);
	else
		snprintf(buf, cap, "uid %lu", (unsigned long)uid);
	return buf;
}

/* Whether st (of path) is a directory only the running user can change; WAL_EPERM if not. */
static wal_err check_private_dir(const struct stat *st, const char *path, wal_error *e)
{
	char owner[64], me[64];
	if (!S_ISDIR(st->st_mode))
		return wal_fail(e, WAL_EPERM, "spool %s: not a directory", path);
	if (st->st_uid != geteuid())
		return wal_fail(e, WAL_EPERM, "spool %s: owned by %s, not by %s, who runs this: not "
				"trusted", path,
				user_name(st->st_uid, owner, sizeof(owner)),
				user_name(geteuid(), me, sizeof(me)));
	if (st->st_mode & (S_IWGRP | S_IWOTH))
		return wal_fail(e, WAL_EPERM, "spool %s: writable by %s (mode %04o): not trusted "
				"(chmod go-w %s)", path,
				(st->st_mode & S_IWGRP) && (st->st_mode & S_IWOTH) ? "group and others"
				: st->st_mode & S_IWGRP ? "group" : "others",
				(unsigned)(st->st_mode & 07777), path);
	return WAL_OK;
}

/* Whether a spooled file open as fd (path) is one walarchive could have written. */
static wal_err check_private_file(int fd, const char *path, wal_error *e)
{
	struct stat st;
	char owner[64], me[64];
	if (fstat(fd, &st) < 0)
		return wal_fail_errno(e, WAL_EIO, errno, "%s: cannot stat", path);
	if (!S_ISREG(st.st_mode))
		return wal_fail(e, WAL_EPERM, "%s: not a regular file", path);
	if (st.st_uid != geteuid())
		return wal_fail(e, WAL_EPERM, "%s: owned by %s, not by %s; not written by walarchive",
				path, user_name(st.st_uid, owner, sizeof(owner)),
				user_name(geteuid(), me, sizeof(me)));
	if (st.st_mode & (S_IWGRP | S_IWOTH))
		return wal_fail(e, WAL_EPERM, "%s: writable by group or others (mode %04o); not "
				"written by walarchive", path, (unsigned)(st.st_mode & 07777));
	return WAL_OK;
}

/*
 * Opens spool_dir if it can be trusted.  A symbolic link as spool_dir is
 * followed only when the running user or root owns the link and its target
 * passes the same checks.  WAL_ENOENT when there is no writable spool (the
 * features are quietly off), WAL_EPERM when others could write to it.
 */
static wal_err spool_root_open(const wal_config *cfg, int *out, wal_error *e)
{
	struct stat lst, st;
	const char *dir = cfg->spool_dir;
	char owner[64];
	*out = -1;
	if (!dir || !*dir)
		return wal_fail(e, WAL_ENOENT, "no spool_dir");
	if (lstat(dir, &lst) < 0)
		return wal_fail_errno(e, WAL_ENOENT, errno, "spool %s", dir);
	int flags = O_RDONLY | O_DIRECTORY | O_CLOEXEC;
	if (!S_ISLNK(lst.st_mode))
		flags |= O_NOFOLLOW;
	else if (lst.st_uid != geteuid() && lst.st_uid != 0)
		return wal_fail(e, WAL_EPERM, "spool %s: a symbolic link owned by %s: not followed",
				dir, user_name(lst.st_uid, owner, sizeof(owner)));
	else if (stat(dir, &lst) < 0)
		return wal_fail_errno(e, WAL_ENOENT, errno, "spool %s", dir);
	/* before the open, which another user's mode 0700 would refuse */
	wal_err rc = check_private_dir(&lst, dir, e);
	if (rc != WAL_OK)
		return rc;
	int fd = open(dir, flags);
	if (fd < 0)
		return wal_fail_errno(e, errno == ENOENT || errno == EACCES ? WAL_ENOENT : WAL_EPERM,
				      errno, "spool %s", dir);
	/* and after it: the directory opened is the one checked */
	rc = fstat(fd, &st) < 0 ? wal_fail_errno(e, WAL_EIO, errno, "spool %s", dir)
		: check_private_dir(&st, dir, e);
	/* not writable (a read-only file system, mode 0500): off, as if absent */
	if (rc == WAL_OK && faccessat(fd, ".", W_OK | X_OK, AT_EACCESS) < 0)
		rc = wal_fail_errno(e, WAL_ENOENT, errno, "spool %s", dir);
	if (rc != WAL_OK) {
		close(fd);
		return rc;
	}
	*out = fd;
	return WAL_OK;
}

/*
 * Opens name under dir_fd (path, for messages) as a private directory, made
 * first (0700) if create and it is missing; never through a link.
 */
static wal_err spool_subdir_open(int dir_fd, const char *name, const char *path, int create,
				 int *out, wal_error *e)
{
	struct stat st;
	*out = -1;
	/* another user's directory is named as such, not as one that cannot be opened */
	if (fstatat(dir_fd, name, &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISDIR(st.st_mode) &&
	    check_private_dir(&st, path, e) != WAL_OK)
		return WAL_EPERM;
	int fd = openat(dir_fd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0 && errno == ENOENT && create) {
		if (mkdirat(dir_fd, name, 0700) == 0)
			fsync(dir_fd);  /* the new entry is durable once its parent is */
		else if (errno != EEXIST)
			return wal_fail_errno(e, WAL_OK, errno, "spool %s: cannot create directory",
					      path);
		fd = openat(dir_fd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	}
	if (fd < 0) {
		if (errno == ELOOP || errno == ENOTDIR)
			return wal_fail(e, WAL_EPERM, "spool %s: a symbolic link or not a directory: "
					"not followed", path);
		return wal_fail_errno(e, WAL_OK, errno, "spool %s: cannot open", path);
	}
	wal_err rc = fstat(fd, &st) < 0 ? wal_fail_errno(e, WAL_EIO, errno, "spool %s", path)
		: check_private_dir(&st, path, e);
	if (rc != WAL_OK) {
		close(fd);
		return rc;
	}
	*out = fd;
	return WAL_OK;
}

/*
 * Opens <spool>/<system-id>, or with sub <spool>/<system-id>/<sub>, each
 * checked as private; with create, makes what is missing below a trusted
 * spool (never the spool itself, nor anything above it).
 */
static wal_err spool_open(const wal_config *cfg, uint64_t system_id, const char *sub, int create,
			  int *out, wal_error *e)
{
	char id[32], path[4400];
	int root, cluster;
	*out = -1;
	wal_err rc = spool_root_open(cfg, &root, e);
	if (rc != WAL_OK)
		return rc;
	snprintf(id, sizeof(id), "%" PRIu64, system_id);
	snprintf(path, sizeof(path), "%s/%s", cfg->spool_dir, id);
	rc = spool_subdir_open(root, id, path, create, &cluster, e);
	close(root);
	if (rc != WAL_OK || !sub) {
		*out = cluster;
		return rc;
	}
	snprintf(path, sizeof(path), "%s/%s/%s", cfg->spool_dir, id, sub);
	rc = spool_subdir_open(cluster, sub, path, create, out, e);
	close(cluster);
	return rc;
}

static int spool_usable(const wal_config *cfg)
{
	int fd;
	if (spool_root_open(cfg, &fd, NULL) != WAL_OK)
		return 0;
	close(fd);
	return 1;
}

static int is_seg_dir_name(const char *s)
{
	if (strlen(s) != 16)
		return 0;
	for (int i = 0; i < 16; i++)
		if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'A' && s[i] <= 'F')))
			return 0;
	return 1;
}

wal_err wal_ahead_spool_check(const wal_config *cfg, uint64_t system_id, wal_error *e)
{
	int root, cluster;
	wal_err rc = spool_root_open(cfg, &root, e);
	if (rc != WAL_OK || !system_id) {
		if (root >= 0)
			close(root);
		return rc;
	}
	close(root);
	rc = spool_open(cfg, system_id, NULL, 0, &cluster, e);
	if (rc == WAL_ENOENT)
		return WAL_OK;  /* nothing spooled for this cluster yet */
	if (rc != WAL_OK)
		return rc;
	int listing = dup(cluster);
	DIR *d = listing >= 0 ? fdopendir(listing) : NULL;
	struct dirent *ent;
	while (rc == WAL_OK && d && (ent = readdir(d))) {
		struct stat st;
		char path[4400];
		/* the directories walarchive uses; links are never followed, so they do not count */
		if ((strcmp(ent->d_name, PUSHED_DIR) != 0 && !is_seg_dir_name(ent->d_name)) ||
		    fstatat(cluster, ent->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0 ||
		    !S_ISDIR(st.st_mode))
			continue;
		snprintf(path, sizeof(path), "%s/%" PRIu64 "/%s", cfg->spool_dir, system_id,
			 ent->d_name);
		rc = check_private_dir(&st, path, e);
	}
	if (d)
		closedir(d);
	else if (listing >= 0)
		close(listing);
	close(cluster);
	return rc;
}

/*
 * push_ahead = auto: on for archives over a network, where each call pays a
 * connection and round trips; off for a local directory, where walpush is
 * faster than the bookkeeping (measured: 0.8 times the speed on a burst).
 */
int wal_ahead_push_count(const wal_config *cfg)
{
	if (cfg->push_ahead >= 0)
		return cfg->push_ahead;
	int local = cfg->archive && (cfg->archive[0] == '/' || strncmp(cfg->archive, "file:", 5) == 0);
	return local ? 0 : WAL_PUSH_AHEAD_AUTO;
}

int wal_ahead_push_enabled(const wal_config *cfg)
{
	return wal_ahead_push_count(cfg) > 0 && spool_usable(cfg);
}

int wal_ahead_fetch_enabled(const wal_config *cfg)
{
	return cfg->fetch_ahead > 0 && spool_usable(cfg);
}

static void record_path(const wal_config *cfg, uint64_t system_id, const char *name, char *out,
			size_t cap)
{
	snprintf(out, cap, "%s/%" PRIu64 "/" PUSHED_DIR "/%s", cfg->spool_dir, system_id, name);
}

/* ---- push-ahead records -------------------------------------------------- */

wal_err wal_ahead_record(const wal_config *cfg, uint64_t system_id, const char *name,
			 uint64_t size, const char *hash_hex, const char *object, uint64_t stored,
			 wal_error *e)
{
	char path[4096], line[1024];
	int dir;
	/* in a trusted spool only, made there if missing (never above it) */
	wal_err rc = spool_open(cfg, system_id, PUSHED_DIR, 1, &dir, e);
	if (rc != WAL_OK)
		return rc;
	close(dir);
	record_path(cfg, system_id, name, path, sizeof(path));
	/* the archive too: a record says where the file went, not just that it went */
	int len = snprintf(line, sizeof(line), "%" PRIu64 " %s %s %" PRIu64 " %s\n", size, hash_hex,
			   object, stored, cfg->archive);
	if (len < 0 || (size_t)len >= sizeof(line))
		return wal_fail(e, WAL_EINVAL, "%s: archive location too long for a record", name);
	wal_atomic_file f;
	rc = wal_atomic_open(&f, path, 0600, e);
	if (rc != WAL_OK)
		return rc;
	rc = f.sink.write(&f.sink, line, (size_t)len, e);
	if (rc != WAL_OK) {
		wal_atomic_abort(&f);
		return rc;
	}
	return wal_atomic_commit(&f, WAL_ATOMIC_REPLACE, e);
}

int wal_ahead_recorded(const wal_config *cfg, uint64_t system_id, const char *name, int fd,
		       char *object, size_t cap, uint64_t *stored)
{
	char path[4096], line[1024], hash[17], obj[512], have[17];
	unsigned long long size = 0, stored_size = 0;
	uint64_t have_size = 0;
	int archive_at = 0;
	struct stat st;
	record_path(cfg, system_id, name, path, sizeof(path));
	/* a record counts only if walarchive could have written it: no link,
	 * owned by the running user, writable by nobody else, in a private spool */
	int dir;
	if (spool_open(cfg, system_id, PUSHED_DIR, 0, &dir, NULL) != WAL_OK)
		return 0;
	int fd_rec = openat(dir, name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	if (fd_rec < 0 || check_private_file(fd_rec, path, NULL) != WAL_OK) {
		/* used up too (the directory is ours): a link goes as a link */
		if (fd_rec >= 0 || errno == ELOOP)
			unlinkat(dir, name, 0);
		if (fd_rec >= 0)
			close(fd_rec);
		close(dir);
		return 0;
	}
	close(dir);
	FILE *f = fdopen(fd_rec, "r");
	if (!f) {
		close(fd_rec);
		return 0;
	}
	/* a record of an earlier release, without the object's size, fails here */
	int parsed = fgets(line, sizeof(line), f) &&
		     sscanf(line, "%llu %16s %511s %llu %n", &size, hash, obj, &stored_size,
			    &archive_at) == 4 && archive_at > 0;
	fclose(f);
	/* used up either way: PostgreSQL marks the file done after this call */
	unlink(path);
	if (parsed)
		line[strcspn(line, "\n")] = '\0';
	/* pushed to another archive (the setting changed since) proves nothing */
	if (!parsed || strcmp(line + archive_at, cfg->archive) != 0)
		return 0;
	if (fstat(fd, &st) < 0 || (uint64_t)st.st_size != size)
		return 0;
	if (wal_xxh64_fd(fd, name, &have_size, have, NULL) != WAL_OK || have_size != size ||
	    strcmp(have, hash) != 0)
		return 0;
	snprintf(object, cap, "%s", obj);
	*stored = stored_size;
	return 1;
}

/* ---- ready files and the backlog ----------------------------------------- */

typedef struct ready_list {
	char (*names)[WAL_NAME_MAX];
	size_t count, cap;
} ready_list;

/* PostgreSQL archives timeline history files first, then by name. */
static int ready_order(const void *a, const void *b)
{
	const char *x = a, *y = b;
	int xh = strstr(x, ".history") != NULL, yh = strstr(y, ".history") != NULL;
	if (xh != yh)
		return xh ? -1 : 1;
	return strcmp(x, y);
}

/* Lists the names marked ready in wal_dir/archive_status, sorted as above. */
static wal_err read_ready(const char *wal_dir, ready_list *list, wal_error *e)
{
	char dir[4096];
	snprintf(dir, sizeof(dir), "%s/archive_status", wal_dir);
	DIR *d = opendir(dir);
	if (!d)
		return wal_fail_errno(e, WAL_OK, errno, "%s: cannot list", dir);
	struct dirent *ent;
	while ((ent = readdir(d))) {
		size_t len = strlen(ent->d_name);
		if (len <= 6 || len - 6 >= WAL_NAME_MAX || strcmp(ent->d_name + len - 6, ".ready"))
			continue;
		if (list->count == list->cap) {
			size_t cap = list->cap ? list->cap * 2 : 64;
			char (*grown)[WAL_NAME_MAX] = realloc(list->names, cap * sizeof(*grown));
			if (!grown) {
				closedir(d);
				return wal_fail(e, WAL_ENOMEM, "out of memory");
			}
			list->names = grown;
			list->cap = cap;
		}
		memcpy(list->names[list->count], ent->d_name, len - 6);
		list->names[list->count][len - 6] = '\0';
		list->count++;
	}
	closedir(d);
	if (list->count)
		qsort(list->names, list->count, sizeof(*list->names), ready_order);
	return WAL_OK;
}

wal_err wal_backlog_read(const char *wal_path, wal_backlog *b, wal_error *e)
{
	char wal_dir[4096], path[4200];
	ready_list list = { 0 };
	memset(b, 0, sizeof(*b));
	wal_dirname(wal_path, wal_dir, sizeof(wal_dir));
	wal_err rc = read_ready(wal_dir, &list, e);
	if (rc != WAL_OK)
		return rc;
	time_t now = time(NULL);
	for (size_t i = 0; i < list.count; i++) {
		struct stat st;
		snprintf(path, sizeof(path), "%s/%s", wal_dir, list.names[i]);
		if (stat(path, &st) == 0)
			b->bytes += (uint64_t)st.st_size;
		b->count++;
		if (!b->oldest[0] && !strstr(list.names[i], ".history")) {
			snprintf(b->oldest, sizeof(b->oldest), "%s", list.names[i]);
			snprintf(path, sizeof(path), "%s/archive_status/%s.ready", wal_dir, list.names[i]);
			if (stat(path, &st) == 0)
				b->oldest_age = (long)(now - st.st_mtime);
		}
	}
	free(list.names);
	return WAL_OK;
}

/* ---- push-ahead ---------------------------------------------------------- */

/*
 * A batch and its work queue.  The queue is a pipe filled with the batch's
 * indexes, 2 bytes each, before any slot starts, its write end closed: a
 * read of one index from such a pipe is atomic, so each file goes to exactly
 * one slot, and a slot that is quicker takes more (one slow connection does
 * not hold up the end).  The slots are walpush itself, once its own file is
 * archived, on its own connection, and up to parallel - 1 child processes,
 * each with its own connection, that start at once.
 */
typedef struct push_batch {
	ready_list list;
	size_t n;
	char wal_dir[4096];
	uint64_t system_id;
	int queue;             /* read end of the queue, or -1 */
	int msg[2];            /* a failed child's message line */
	pid_t pids[64];
	int started;
} push_batch;

/* Takes the next index off the queue; 0 when it is empty. */
static int queue_next(int fd, size_t *i)
{
	uint16_t v;
	ssize_t got;
	do
		got = read(fd, &v, sizeof(v));
	while (got < 0 && errno == EINTR);
	if (got != (ssize_t)sizeof(v))
		return 0;
	*i = v;
	return 1;
}

/*
 * One slot: pushes files off the queue on *store (opened at the first file,
 * left open for the caller to close) until the queue is empty or a push
 * fails; returns 1 on a failure, described in error.
 */
static int push_from_queue(const wal_config *cfg, const push_batch *b, const char *datadir,
			   wal_store **store, char *error, size_t cap)
{
	size_t i;
	while (b->queue >= 0 && queue_next(b->queue, &i) && i < b->n) {
		char path[4200];
		wal_push_result pr;
		wal_error err;
		snprintf(path, sizeof(path), "%s/%s", b->wal_dir, b->list.names[i]);
		wal_error_clear(&err);
		wal_err rc = wal_push_with(cfg, store, path, b->list.names[i], datadir, 1, &pr, &err);
		if (rc == WAL_OK && pr.outcome != WAL_PUSHED_AHEAD)
			rc = wal_ahead_record(cfg, pr.system_id, b->list.names[i], pr.in_bytes, pr.hash,
					      pr.object, pr.stored_bytes, &err);
		if (rc != WAL_OK) {
			snprintf(error, cap, "%s", err.msg);
			return 1;  /* this slot stops; what it leaves, others or PostgreSQL take */
		}
	}
	return 0;
}

/*
 * Chooses the batch (the next ready files, in order, other than current,
 * that no earlier batch has pushed: their records wait for PostgreSQL's own
 * calls), fills its queue and starts up to workers child slots.
 */
static void batch_start(const wal_config *cfg, const char *wal_path, const char *current,
			const char *datadir, uint64_t system_id, int workers, push_batch *b,
			wal_push_ahead_result *res)
{
	wal_error err;
	b->system_id = system_id;
	wal_dirname(wal_path, b->wal_dir, sizeof(b->wal_dir));
	if (read_ready(b->wal_dir, &b->list, &err) != WAL_OK) {
		snprintf(res->error, sizeof(res->error), "%s", err.msg);
		return;
	}
	size_t n = 0;
	for (size_t i = 0; i < b->list.count && n < (size_t)wal_ahead_push_count(cfg); i++) {
		wal_name name;
		char path[4096];
		if (strcmp(b->list.names[i], current) == 0 ||
		    wal_name_parse(b->list.names[i], &name, NULL) != WAL_OK)
			continue;
		record_path(cfg, system_id, b->list.names[i], path, sizeof(path));
		if (access(path, F_OK) == 0)
			continue;
		memmove(b->list.names[n++], b->list.names[i], WAL_NAME_MAX);
	}
	if (!n)
		return;
	int q[2];
	if (pipe2(q, O_CLOEXEC) < 0) {
		snprintf(res->error, sizeof(res->error), "cannot create a pipe: %s", strerror(errno));
		return;
	}
	/* push_ahead is at most 1024: 2 KiB of indexes, well within a pipe's buffer */
	uint16_t idx[1024];
	for (size_t i = 0; i < n; i++)
		idx[i] = (uint16_t)i;
	if (wal_sys_write_all(q[1], idx, n * sizeof(idx[0])) < 0) {
		snprintf(res->error, sizeof(res->error), "cannot fill the work queue: %s",
			 strerror(errno));
		close(q[0]);
		close(q[1]);
		return;
	}
	close(q[1]);
	b->queue = q[0];
	b->n = n;
	res->candidates = (int)n;

	if (workers > (int)n)
		workers = (int)n;
	if (workers > (int)(sizeof(b->pids) / sizeof(b->pids[0])))
		workers = (int)(sizeof(b->pids) / sizeof(b->pids[0]));
	if (workers <= 0)
		return;
	if (pipe2(b->msg, O_CLOEXEC) < 0)
		b->msg[0] = b->msg[1] = -1;
	fflush(NULL);
	for (int w = 0; w < workers; w++) {
		pid_t pid = fork();
		if (pid == 0) {
			/* a connection the parent may hold is its own: never used here */
			wal_store *store = NULL;
			char error[sizeof(((wal_error *)0)->msg)];
			int failed = push_from_queue(cfg, b, datadir, &store, error, sizeof(error));
			wal_store_close(store);
			if (failed && b->msg[1] >= 0) {
				/* one write under PIPE_BUF bytes: lines from workers never mix */
				char line[sizeof(error) + 1];
				int len = snprintf(line, sizeof(line), "%s\n", error);
				if (len > (int)sizeof(line) - 1)
					len = (int)sizeof(line) - 1;
				if (write(b->msg[1], line, (size_t)len) < 0)
					failed = 1;
			}
			_exit(failed ? 1 : 0);
		}
		if (pid > 0)
			b->pids[b->started++] = pid;
	}
	if (b->msg[1] >= 0)
		close(b->msg[1]);
	b->msg[1] = -1;
}

/* Waits for every child slot and counts what the batch archived. */
static void batch_finish(const wal_config *cfg, push_batch *b, wal_push_ahead_result *res)
{
	int any_failed = 0;
	for (int i = 0; i < b->started; i++) {
		int status = 0;
		while (waitpid(b->pids[i], &status, 0) < 0 && errno == EINTR)
			;
		if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
			any_failed = 1;
	}
	if (b->msg[0] >= 0 && !res->error[0]) {
		/* the first failed worker's message is the one reported */
		ssize_t got = read(b->msg[0], res->error, sizeof(res->error) - 1);
		res->error[got > 0 ? got : 0] = '\0';
		res->error[strcspn(res->error, "\n")] = '\0';
	}
	if (b->msg[0] >= 0)
		close(b->msg[0]);
	if (b->queue >= 0)
		close(b->queue);
	/* what is archived now is what has a record */
	for (size_t i = 0; i < b->n; i++) {
		char path[4096];
		record_path(cfg, b->system_id, b->list.names[i], path, sizeof(path));
		if (access(path, F_OK) == 0)
			res->pushed++;
	}
	if (any_failed && !res->error[0])
		snprintf(res->error, sizeof(res->error), "a push-ahead worker failed");
	free(b->list.names);
}

/*
 * Whether current (at wal_path) was pushed ahead by an earlier call: a
 * record says so, the file still holds exactly those bytes, and the archive
 * still holds the object with its recorded size (a record outlives an
 * object that a lifecycle rule or a hand removed).  Opens *store on the way.
 */
static int pushed_ahead(const wal_config *cfg, wal_store **store, uint64_t system_id,
			const char *wal_path, const char *current, wal_push_result *res)
{
	struct stat st;
	uint64_t stored = 0;
	wal_stat ost;
	/* non-blocking: a FIFO given as %p is refused by the push, not waited on */
	int fd = wal_sys_open(wal_path, O_RDONLY | O_NONBLOCK | O_CLOEXEC, 0);
	if (fd < 0)
		return 0;
	int recorded = fstat(fd, &st) == 0 && S_ISREG(st.st_mode) &&
		       wal_ahead_recorded(cfg, system_id, current, fd, res->object,
					  sizeof(res->object), &stored);
	close(fd);
	if (!recorded)
		return 0;
	if (!*store && wal_store_open(store, cfg, NULL) != WAL_OK)
		return 0;
	if (wal_store_stat(*store, res->object, &ost, NULL) != WAL_OK || ost.size < 0 ||
	    (uint64_t)ost.size != stored)
		return 0;       /* gone or changed: pushed again, and refused if it differs */
	res->outcome = WAL_PUSHED_AHEAD;
	res->system_id = system_id;
	res->in_bytes = (uint64_t)st.st_size;
	return 1;
}

wal_err wal_push_and_ahead(const wal_config *cfg, const char *wal_path, const char *current,
			   const char *datadir, wal_push_result *res, wal_push_ahead_result *ahead,
			   wal_error *e)
{
	wal_store *store = NULL;
	push_batch b;
	uint64_t system_id = 0;
	memset(ahead, 0, sizeof(*ahead));
	memset(&b, 0, sizeof(b));
	b.queue = b.msg[0] = b.msg[1] = -1;
	int enabled = wal_ahead_push_enabled(cfg);
	/* the batch starts before the file asked for when the cluster is known:
	 * the children connect and push while this process pushes its own */
	int early = enabled && wal_local_system_id(cfg, datadir, &system_id);
	wal_err rc = WAL_OK;
	memset(res, 0, sizeof(*res));
	/* pushed ahead by an earlier call: done, once the archive confirms it */
	int done = early && pushed_ahead(cfg, &store, system_id, wal_path, current, res);
	if (early)
		batch_start(cfg, wal_path, current, datadir, system_id, cfg->parallel - 1, &b, ahead);
	if (!done)
		rc = wal_push_with(cfg, &store, wal_path, current, datadir, 0, res, e);
	if (rc == WAL_OK && enabled && !early)
		batch_start(cfg, wal_path, current, datadir, res->system_id, cfg->parallel - 1, &b,
			    ahead);
	if (rc == WAL_OK && b.queue >= 0) {
		/* then this process is a slot too, on its connection, warm by now */
		char error[sizeof(((wal_error *)0)->msg)];
		if (push_from_queue(cfg, &b, datadir, &store, error, sizeof(error)) && !ahead->error[0])
			snprintf(ahead->error, sizeof(ahead->error), "%s", error);
	}
	wal_store_close(store);
	/* exit only after every child: none outlives the call that started it */
	batch_finish(cfg, &b, ahead);
	return rc;
}

/* ---- fetch-ahead --------------------------------------------------------- */

/* The spool directory that holds name's segments (for messages). */
static void spool_seg_dir(const wal_config *cfg, uint64_t system_id, const wal_name *name,
			  char *out, size_t cap)
{
	char dir[17];
	wal_name_dir(name, dir);
	snprintf(out, cap, "%s/%" PRIu64 "/%s", cfg->spool_dir, system_id, dir);
}

/* "<segment>.<xxh64>" and its NUL */
#define SPOOL_ENTRY_SIZE (24 + 1 + 16 + 1)

/*
 * Whether entry is the name of a spooled segment, "<segment>.<xxh64>": the
 * segment restored, verified and ready to be renamed into place, with the
 * XXH64 of its bytes.  Sets base to the segment name and hash to the hash.
 */
static int spool_entry(const char *entry, char base[WAL_NAME_MAX], char hash[17])
{
	size_t len = strlen(entry);
	if (len != SPOOL_ENTRY_SIZE - 1 || entry[24] != '.')
		return 0;
	for (size_t i = 25; i < len; i++)
		if (!((entry[i] >= '0' && entry[i] <= '9') || (entry[i] >= 'a' && entry[i] <= 'f')))
			return 0;
	memcpy(base, entry, 24);
	base[24] = '\0';
	if (hash)
		memcpy(hash, entry + 25, 17);
	return 1;
}

/*
 * Finds name in the spool: in the directory of its segments under the
 * cluster's directory (open as cluster), private and not reached through a
 * link.  1 if it is there: that directory open in *dir_fd (if not NULL; the
 * caller closes it), the entry's name in entry and its hash in hash.
 */
static int find_spooled(int cluster, const wal_name *name, int *dir_fd,
			char entry[SPOOL_ENTRY_SIZE], char hash[17])
{
	char dir[17], base[WAL_NAME_MAX], h[17];
	struct dirent *ent;
	struct stat st;
	int found = 0;
	wal_name_dir(name, dir);
	int fd = openat(cluster, dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		return 0;
	if (fstat(fd, &st) < 0 || check_private_dir(&st, dir, NULL) != WAL_OK) {
		close(fd);
		return 0;
	}
	int listing = dup(fd);
	DIR *d = listing >= 0 ? fdopendir(listing) : NULL;
	while (d && !found && (ent = readdir(d)))
		if (spool_entry(ent->d_name, base, h) && strcmp(base, name->text) == 0) {
			/* spool_entry checked its length */
			memcpy(entry, ent->d_name, SPOOL_ENTRY_SIZE);
			if (hash)
				memcpy(hash, h, sizeof(h));
			found = 1;
		}
	if (d)
		closedir(d);
	else if (listing >= 0)
		close(listing);
	if (found && dir_fd)
		*dir_fd = fd;
	else
		close(fd);
	return found;
}

/*
 * Checks a spooled segment open as fd: its bytes hashed to have (size bytes),
 * which must be the hash its name gives, and its header must name it.
 */
static wal_err check_spooled(int fd, const char *path, const wal_name *name, const char *hash,
			     const char *have, uint64_t size, wal_fetch_result *res, wal_error *e)
{
	if (strcmp(have, hash) != 0)
		return wal_fail(e, WAL_ECORRUPT, "%s: content does not match its hash (xxh64 %s, "
				"expected %s)", path, have, hash);
	wal_err rc = wal_archive_verify_segment(fd, path, name, path, res->system_id, &res->seg_size,
						e);
	if (rc == WAL_OK)
		res->bytes = size;
	return rc;
}

/*
 * Takes a spooled segment (entry in the directory open as dir, path for
 * messages) on another file system than dest_path: copies it through a
 * temporary file, hashing on the way.
 */
static wal_err take_by_copy(const wal_config *cfg, int dir, const char *entry, const char *path,
			    const wal_name *name, const char *hash, const char *dest_path,
			    wal_fetch_result *res, wal_error *e)
{
	wal_atomic_file f;
	wal_fd_source in;
	wal_hash_source hashed;
	int fd = wal_sys_openat(dir, entry, O_RDONLY | O_NOFOLLOW, 0);
	if (fd < 0)
		return wal_fail_errno(e, errno == ENOENT ? WAL_ENOENT : errno == ELOOP ? WAL_EPERM
				      : WAL_EIO, errno, "%s: cannot open", path);
	wal_err rc = check_private_file(fd, path, e);
	if (rc != WAL_OK) {
		close(fd);
		return rc;
	}
	rc = wal_atomic_open(&f, dest_path, 0600, e);
	if (rc != WAL_OK) {
		close(fd);
		/* a missing destination directory is not a missing spooled file */
		if (rc == WAL_ENOENT)
			e->code = rc = WAL_EIO;
		return rc;
	}
	wal_fd_source_init(&in, fd, path, -1);
	rc = wal_hash_source_init(&hashed, &in.base, e);
	if (rc == WAL_OK) {
		rc = wal_source_pump(&hashed.base, &f.sink, e);
		if (rc == WAL_OK)
			rc = wal_atomic_flush(&f, e);
		if (rc == WAL_OK)
			rc = check_spooled(f.fd, f.tmp_path, name, hash, hashed.hex, hashed.bytes, res, e);
		wal_hash_source_free(&hashed);
	}
	close(fd);
	/* what PostgreSQL gets is the running user's, and only theirs to change */
	if (rc == WAL_OK && fchmod(f.fd, 0600) < 0)
		rc = wal_fail_errno(e, WAL_EIO, errno, "%s: cannot chmod", f.tmp_path);
	if (rc != WAL_OK) {
		wal_atomic_abort(&f);
		return rc;
	}
	return wal_atomic_commit(&f, WAL_ATOMIC_REPLACE | (cfg->fetch_fsync ? 0 : WAL_ATOMIC_NO_SYNC),
				 e);
}

/*
 * Takes a spooled segment by renaming it: first to a temporary name beside
 * dest_path (so that of two callers only one gets it), then, checked, into
 * place.  A spool on another file system is WAL_EUNSUPPORTED.  The rename
 * moves a link as a link, and the open that follows refuses one.
 */
static wal_err take_by_rename(const wal_config *cfg, int dir_fd, const char *entry,
			      const char *path, const wal_name *name, const char *hash,
			      const char *dest_path, wal_fetch_result *res, wal_error *e)
{
	char tmp[4200], dir[4096], have[17];
	uint64_t size = 0;
	wal_tmp_name(dest_path, tmp, sizeof(tmp));
	if (wal_sys_renameat(dir_fd, entry, AT_FDCWD, tmp) < 0)
		return wal_fail_errno(e, errno == EXDEV ? WAL_EUNSUPPORTED :
				      errno == ENOENT ? WAL_ENOENT : WAL_EIO, errno,
				      "%s: cannot move to %s", path, tmp);
	int fd = wal_sys_open(tmp, O_RDONLY | O_NOFOLLOW, 0);
	wal_err rc = fd < 0 ? wal_fail_errno(e, errno == ELOOP ? WAL_EPERM : WAL_EIO, errno,
					     "%s: cannot open", path)
		: check_private_file(fd, path, e);
	if (rc == WAL_OK)
		rc = wal_xxh64_fd(fd, tmp, &size, have, e);
	if (rc == WAL_OK)
		rc = check_spooled(fd, tmp, name, hash, have, size, res, e);
	/* what PostgreSQL gets is the running user's, and only theirs to change */
	if (rc == WAL_OK && fchmod(fd, 0600) < 0)
		rc = wal_fail_errno(e, WAL_EIO, errno, "%s: cannot chmod", tmp);
	/* a spooled copy was flushed when it was spooled; this makes sure of it */
	if (rc == WAL_OK && cfg->fetch_fsync && wal_sys_fsync(fd) < 0)
		rc = wal_fail_errno(e, WAL_EIO, errno, "%s: cannot fsync", tmp);
	if (fd >= 0)
		close(fd);
	if (rc == WAL_OK && wal_sys_rename(tmp, dest_path) < 0)
		rc = wal_fail_errno(e, WAL_EIO, errno, "%s: cannot rename into place", dest_path);
	if (rc != WAL_OK) {
		unlink(tmp);
		return rc;
	}
	wal_dirname(dest_path, dir, sizeof(dir));
	return cfg->fetch_fsync ? wal_fsync_dir(dir, e) : WAL_OK;
}

wal_err wal_ahead_take(const wal_config *cfg, uint64_t system_id, const wal_name *name,
		       const char *dest_path, wal_fetch_result *res, wal_error *e)
{
	char path[4400], dir[4096], entry[SPOOL_ENTRY_SIZE], hash[17];
	int cluster, seg_dir = -1;
	wal_error err;
	/* only a trusted spool, and nothing in it reached through a link */
	if (spool_open(cfg, system_id, NULL, 0, &cluster, NULL) != WAL_OK)
		return wal_fail(e, WAL_ENOENT, "%s: not in the spool", name->text);
	int found = find_spooled(cluster, name, &seg_dir, entry, hash);
	close(cluster);
	if (!found)
		return wal_fail(e, WAL_ENOENT, "%s: not in the spool", name->text);
	spool_seg_dir(cfg, system_id, name, dir, sizeof(dir));
	snprintf(path, sizeof(path), "%s/%s", dir, entry);
	wal_error_clear(&err);
	wal_err rc = take_by_rename(cfg, seg_dir, entry, path, name, hash, dest_path, res, &err);
	if (rc == WAL_EUNSUPPORTED) {
		/* the spool is on another file system: a copy, and the spooled file goes */
		rc = take_by_copy(cfg, seg_dir, entry, path, name, hash, dest_path, res, &err);
		if (rc != WAL_ENOENT)
			unlinkat(seg_dir, entry, 0);
	}
	close(seg_dir);
	if (rc == WAL_OK) {
		res->from_spool = 1;
		snprintf(res->object, sizeof(res->object), "%s", path + strlen(cfg->spool_dir) + 1);
		return WAL_OK;
	}
	/* a bad spooled copy is dropped (taken away already); the archive is asked instead */
	if (rc != WAL_ENOENT)
		snprintf(res->spool_note, sizeof(res->spool_note), "%s", err.msg);
	return wal_fail(e, WAL_ENOENT, "%s: not in the spool", name->text);
}

/*
 * Removes from one directory of spooled segments (open as dir) what no
 * later call will ask for: anything but a spooled segment of timeline tli
 * in (first, last], and temporary files that a killed prefetcher left, once
 * they are old.  Works relative to dir and never follows a link (a link is
 * removed as a link).  Returns how many segments it kept.
 */
static int clean_seg_dir(int dir, uint32_t tli, uint64_t first, uint64_t last, uint32_t seg_size)
{
	int kept = 0, listing = dup(dir);
	DIR *d = listing >= 0 ? fdopendir(listing) : NULL;
	struct dirent *ent;
	time_t now = time(NULL);
	if (!d) {
		if (listing >= 0)
			close(listing);
		return 1;              /* not knowing, keep the directory */
	}
	while ((ent = readdir(d))) {
		char base[WAL_NAME_MAX];
		wal_name name;
		uint64_t segno;
		struct stat st;
		size_t len = strlen(ent->d_name);
		if (strcmp(ent->d_name, ".") == 0 || strcmp(ent->d_name, "..") == 0 ||
		    fstatat(dir, ent->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0 || S_ISDIR(st.st_mode))
			continue;
		if (ent->d_name[0] == '.') {
			/* a download under way, or left by a killed one: by age */
			if (len >= 5 && strcmp(ent->d_name + len - 4, ".tmp") == 0 &&
			    now - st.st_mtime > STALE_TMP_SECONDS)
				unlinkat(dir, ent->d_name, 0);
			continue;
		}
		int keep = S_ISREG(st.st_mode) && spool_entry(ent->d_name, base, NULL) &&
			   wal_name_parse(base, &name, NULL) == WAL_OK &&
			   name.kind == WAL_NAME_SEGMENT && name.tli == tli &&
			   wal_name_segno(&name, seg_size, &segno, NULL) == WAL_OK &&
			   segno > first && segno <= last;
		if (keep)
			kept++;
		else
			unlinkat(dir, ent->d_name, 0);
	}
	closedir(d);
	return kept;
}

/*
 * Cleans the cluster's spool (open as cluster) for position name (segno):
 * each directory of segments that is a private directory of its own is
 * cleaned and, once empty, removed; a link named like one is removed as a
 * link, never followed.
 */
static void clean_spool(const wal_config *cfg, int cluster, const wal_name *name, uint64_t segno,
			uint32_t seg_size)
{
	int listing = dup(cluster);
	DIR *d = listing >= 0 ? fdopendir(listing) : NULL;
	struct dirent *ent;
	if (!d) {
		if (listing >= 0)
			close(listing);
		return;
	}
	while ((ent = readdir(d))) {
		struct stat st;
		if (!is_seg_dir_name(ent->d_name))
			continue;
		int dir = openat(cluster, ent->d_name,
				 O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		if (dir < 0) {
			/* a link is removed as a link, never followed: what it points at stays */
			if (fstatat(cluster, ent->d_name, &st, AT_SYMLINK_NOFOLLOW) == 0 &&
			    S_ISLNK(st.st_mode))
				unlinkat(cluster, ent->d_name, 0);
			continue;
		}
		if (fstat(dir, &st) < 0 || check_private_dir(&st, ent->d_name, NULL) != WAL_OK) {
			close(dir);
			continue;
		}
		int kept = clean_seg_dir(dir, name->tli, segno, segno + (uint64_t)cfg->fetch_ahead,
					 seg_size);
		close(dir);
		if (!kept)
			/* fails, harmlessly, if a download is under way; never removes a link */
			unlinkat(cluster, ent->d_name, AT_REMOVEDIR);
	}
	closedir(d);
}

/* Whether the spool (the cluster's directory open as cluster) has name. */
static int spooled(int cluster, const wal_name *name)
{
	char entry[SPOOL_ENTRY_SIZE];
	return find_spooled(cluster, name, NULL, entry, NULL);
}

/*
 * Downloads one object of the archive into the spool, restored: decompressed,
 * checked as walfetch checks it, flushed (with fetch_fsync) and named with
 * its XXH64, so that taking it is a rename.  WAL_ENOENT if absent.
 */
static wal_err spool_one(const wal_config *cfg, wal_store *archive, uint64_t system_id,
			 const wal_name *name, wal_error *e)
{
	char object[512], dir[4096], full[4200], hash[17], seg_dir[17];
	int dir_fd;
	wal_err rc;
	spool_seg_dir(cfg, system_id, name, dir, sizeof(dir));
	/* made only in a trusted spool, and only below it */
	wal_name_dir(name, seg_dir);
	if ((rc = spool_open(cfg, system_id, seg_dir, 1, &dir_fd, e)) != WAL_OK)
		return rc;
	close(dir_fd);
	snprintf(full, sizeof(full), "%s/%s", dir, name->text);
	rc = WAL_ENOENT;
	/* an LZ4 frame, else a plain object of an earlier release (as wal_fetch) */
	for (int framed = 1; framed >= 0 && rc == WAL_ENOENT; framed--) {
		wal_atomic_file f;
		wal_hash_sink hashed;
		uint32_t seg_size = 0;
		wal_archive_object_path(system_id, name, framed, object, sizeof(object));
		if ((rc = wal_atomic_open(&f, full, 0600, e)) != WAL_OK)
			return rc;
		/* the restored bytes are hashed on their way to the file, not read back */
		rc = wal_hash_sink_init(&hashed, &f.sink, e);
		if (rc == WAL_OK)
			rc = wal_archive_restore(archive, object, framed, name, system_id, &hashed.base,
						 &seg_size, e);
		if (rc == WAL_OK)
			rc = wal_atomic_flush(&f, e);
		if (rc == WAL_OK)
			wal_hash_sink_digest(&hashed, hash);
		wal_hash_sink_free(&hashed);
		if (rc == WAL_OK) {
			char named[4300];
			snprintf(named, sizeof(named), "%s.%s", full, hash);
			rc = wal_atomic_retarget(&f, named, e);
		}
		if (rc == WAL_OK)
			rc = wal_atomic_commit(&f, WAL_ATOMIC_REPLACE |
					       (cfg->fetch_fsync ? 0 : WAL_ATOMIC_NO_SYNC), e);
		else
			wal_atomic_abort(&f);
	}
	return rc;
}

/*
 * The prefetcher follows the position walfetch was last asked for, written
 * to .position in the cluster's spool by every walfetch that restores a
 * segment: it keeps the fetch_ahead segments after it spooled, with up to
 * parallel worker processes that each keep their connection for as long as
 * the prefetcher runs, and it exits once it has had nothing to do for
 * PREFETCH_IDLE_MS.  A segment the archive does not have (yet) is asked for
 * again after ABSENT_RETRY_MS, and nothing after it is asked for meanwhile.
 */
#define POSITION_NAME ".position"
#define PREFETCH_IDLE_MS 2000
#define ABSENT_RETRY_MS 1000
#define POLL_MS 50
#define PREFETCH_NICE 10
#define JOB_SIZE 32            /* a segment name, NUL-padded; the last byte a status */

enum { JOB_DONE, JOB_ABSENT, JOB_FAILED };

static long long now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/*
 * Records name as the position the prefetcher follows (replaced
 * atomically), in the cluster's directory of a trusted spool, which it makes
 * if it is missing.  0 if it could not.
 */
static int position_write(const wal_config *cfg, uint64_t system_id, const wal_name *name)
{
	char tmp[64], line[WAL_NAME_MAX + 1];
	int cluster;
	if (spool_open(cfg, system_id, NULL, 1, &cluster, NULL) != WAL_OK)
		return 0;
	snprintf(tmp, sizeof(tmp), POSITION_NAME ".%ld.tmp", (long)getpid());
	int len = snprintf(line, sizeof(line), "%s\n", name->text);
	int fd = openat(cluster, tmp, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0600);
	int ok = fd >= 0 && wal_sys_write_all(fd, line, (size_t)len) == 0;
	if (fd >= 0)
		close(fd);
	if (fd >= 0 && (!ok || renameat(cluster, tmp, cluster, POSITION_NAME) < 0)) {
		unlinkat(cluster, tmp, 0);
		ok = 0;
	}
	close(cluster);
	return ok;
}

/* Reads the position from the cluster's directory (open as cluster); 1 if it names a segment. */
static int position_read(int cluster, wal_name *out)
{
	char line[64];
	int fd = openat(cluster, POSITION_NAME, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		return 0;
	ssize_t n = check_private_file(fd, POSITION_NAME, NULL) == WAL_OK
		? wal_sys_read(fd, line, sizeof(line) - 1) : -1;
	close(fd);
	if (n <= 0)
		return 0;
	line[n] = '\0';
	line[strcspn(line, "\n")] = '\0';
	return wal_name_parse(line, out, NULL) == WAL_OK && out->kind == WAL_NAME_SEGMENT;
}

/*
 * A worker: takes segment names off the shared job pipe (one record per
 * read, as each is written whole and under PIPE_BUF), spools each on its
 * connection, opened at the first and again after a failure, and reports.
 */
static void prefetch_worker(const wal_config *cfg, uint64_t system_id, int jobs, int results)
{
	wal_store *archive = NULL;
	char job[JOB_SIZE];
	ssize_t got;
	for (;;) {
		do
			got = read(jobs, job, sizeof(job));
		while (got < 0 && errno == EINTR);
		if (got != (ssize_t)sizeof(job))
			break;         /* the prefetcher is done */
		wal_name name;
		wal_error err;
		job[JOB_SIZE - 1] = '\0';
		if (wal_name_parse(job, &name, NULL) != WAL_OK)
			continue;
		wal_err rc = archive ? WAL_OK : wal_store_open(&archive, cfg, &err);
		if (rc == WAL_OK)
			rc = spool_one(cfg, archive, system_id, &name, &err);
		if (rc != WAL_OK && rc != WAL_ENOENT) {
			wal_store_close(archive);   /* perhaps the connection: a new one next time */
			archive = NULL;
		}
		job[JOB_SIZE - 1] = (char)(rc == WAL_OK ? JOB_DONE : rc == WAL_ENOENT ? JOB_ABSENT : JOB_FAILED);
		if (wal_sys_write_all(results, job, sizeof(job)) < 0)
			break;
	}
	wal_store_close(archive);
}

typedef struct prefetcher {
	const wal_config *cfg;
	uint64_t system_id;
	uint32_t seg_size;
	int cluster;               /* the cluster's directory in the spool */
	char datadir[4096];        /* the data directory it serves (absolute), or "" */
	dev_t datadir_dev;         /* ... and the directory it was when the prefetcher started */
	ino_t datadir_ino;
	pid_t postmaster;          /* its server (postmaster.pid), or 0 if none ran */
	long long next_check;
	int gone;                  /* the data directory or its server is gone: stop */
	int jobs, results;         /* write end of the jobs, read end of the results */
	pid_t pids[64];
	int workers;
	wal_name *inflight;        /* sent to the workers, not reported yet */
	size_t n_inflight, cap_inflight;
	uint32_t gate_tli;         /* nothing from gate_segno on, until gate_until */
	uint64_t gate_segno;
	long long gate_until;
} prefetcher;

/* Starts the workers, with the pipes between them and p. 0 on failure. */
static int workers_start(prefetcher *p)
{
	int jobs[2], results[2];
	if (pipe2(jobs, O_CLOEXEC) < 0)
		return 0;
	if (pipe2(results, O_CLOEXEC) < 0) {
		close(jobs[0]);
		close(jobs[1]);
		return 0;
	}
	int n = p->cfg->parallel > 0 ? p->cfg->parallel : 1;
	if (n > (int)(sizeof(p->pids) / sizeof(p->pids[0])))
		n = (int)(sizeof(p->pids) / sizeof(p->pids[0]));
	fflush(NULL);
	for (int w = 0; w < n; w++) {
		pid_t pid = fork();
		if (pid == 0) {
			close(jobs[1]);
			close(results[0]);
			prefetch_worker(p->cfg, p->system_id, jobs[0], results[1]);
			_exit(0);
		}
		if (pid > 0)
			p->pids[p->workers++] = pid;
	}
	close(jobs[0]);
	close(results[1]);
	/* at most fetch_ahead records (32 KiB) wait in the pipe; never block on it */
	fcntl(jobs[1], F_SETFL, O_NONBLOCK);
	p->jobs = jobs[1];
	p->results = results[0];
	if (!p->workers) {
		close(p->jobs);
		close(p->results);
		p->jobs = p->results = -1;
	}
	return p->workers > 0;
}

/* Closes the job pipe, so that each worker ends after its current segment, and waits for them. */
static void workers_stop(prefetcher *p)
{
	if (p->jobs >= 0)
		close(p->jobs);
	for (int i = 0; i < p->workers; i++)
		while (p->pids[i] > 0 && waitpid(p->pids[i], NULL, 0) < 0 && errno == EINTR)
			;
	if (p->results >= 0)
		close(p->results);
	p->jobs = p->results = -1;
	p->workers = 0;
	p->n_inflight = 0;
}

/* Whether a worker has exited (killed: they exit only when the job pipe closes). */
static int worker_died(prefetcher *p)
{
	for (int i = 0; i < p->workers; i++) {
		if (p->pids[i] > 0 && waitpid(p->pids[i], NULL, WNOHANG) == p->pids[i]) {
			p->pids[i] = -1;       /* reaped */
			return 1;
		}
	}
	return 0;
}

static int is_inflight(const prefetcher *p, const wal_name *name)
{
	for (size_t i = 0; i < p->n_inflight; i++)
		if (strcmp(p->inflight[i].text, name->text) == 0)
			return 1;
	return 0;
}

/* Sends the workers the segments after pos that are neither spooled nor on their way. */
static void dispatch(prefetcher *p, const wal_name *pos, uint64_t pos_segno)
{
	for (int i = 1; i <= p->cfg->fetch_ahead; i++) {
		uint64_t segno = pos_segno + (uint64_t)i;
		char text[25];
		wal_name next;
		if (p->gate_until && pos->tli == p->gate_tli && segno >= p->gate_segno)
			break;
		wal_segment_name(pos->tli, segno, p->seg_size, text);
		if (wal_name_parse(text, &next, NULL) != WAL_OK || is_inflight(p, &next) ||
		    spooled(p->cluster, &next))
			continue;
		if (p->jobs < 0 && !workers_start(p))
			return;
		if (p->n_inflight == p->cap_inflight) {
			size_t cap = p->cap_inflight ? 2 * p->cap_inflight : 32;
			wal_name *grown = realloc(p->inflight, cap * sizeof(*grown));
			if (!grown)
				return;
			p->inflight = grown;
			p->cap_inflight = cap;
		}
		char job[JOB_SIZE] = { 0 };
		memcpy(job, text, sizeof(text));
		if (write(p->jobs, job, sizeof(job)) != (ssize_t)sizeof(job))
			return;        /* the pipe is full: later */
		p->inflight[p->n_inflight++] = next;
	}
}

/* Handles one worker's report; 1 if a segment was spooled. */
static int report(prefetcher *p, const char *job)
{
	wal_name name;
	char text[JOB_SIZE];
	uint64_t segno;
	memcpy(text, job, sizeof(text));
	int status = text[JOB_SIZE - 1];
	text[JOB_SIZE - 1] = '\0';
	if (wal_name_parse(text, &name, NULL) != WAL_OK)
		return 0;
	for (size_t i = 0; i < p->n_inflight; i++)
		if (strcmp(p->inflight[i].text, name.text) == 0) {
			p->inflight[i] = p->inflight[--p->n_inflight];
			break;
		}
	if (status == JOB_DONE)
		return 1;
	/* not archived yet, or the archive failed: wait before asking again */
	if (wal_name_segno(&name, p->seg_size, &segno, NULL) == WAL_OK &&
	    (!p->gate_until || name.tli != p->gate_tli || segno < p->gate_segno)) {
		p->gate_tli = name.tli;
		p->gate_segno = segno;
	}
	p->gate_until = now_ms() + ABSENT_RETRY_MS;
	return 0;
}

/* ---- the prefetcher's lifetime ---------------------------------------------- */

/*
 * The prefetcher serves one data directory and its server: it stops when
 * the directory is gone (or another one has taken its name) or the
 * postmaster that ran when it started has exited, looked at every
 * WATCH_MS.  A server that was not running (walfetch run by hand) is not
 * waited for; the idle timeout ends that prefetcher.
 */
#define WATCH_MS 200

static int process_runs(pid_t pid)
{
	return kill(pid, 0) == 0 || errno == EPERM;
}

/* The running postmaster of datadir (the first line of postmaster.pid), or 0. */
static pid_t postmaster_of(const char *datadir)
{
	char path[4200], line[32];
	snprintf(path, sizeof(path), "%s/postmaster.pid", datadir);
	int fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		return 0;
	ssize_t n = read(fd, line, sizeof(line) - 1);
	close(fd);
	if (n <= 0)
		return 0;
	line[n] = '\0';
	long pid = strtol(line, NULL, 10);
	if (pid < 0)
		pid = -pid;            /* a single-user backend writes its pid negated */
	return pid > 0 && process_runs((pid_t)pid) ? (pid_t)pid : 0;
}

/* Notes what p serves; 0 if datadir cannot be found. */
static int watch_start(prefetcher *p, const char *datadir)
{
	struct stat st;
	if (!datadir)
		return 1;              /* nothing to watch (a test of the prefetcher alone) */
	if (!realpath(datadir, p->datadir) || stat(p->datadir, &st) < 0 || !S_ISDIR(st.st_mode))
		return 0;
	p->datadir_dev = st.st_dev;
	p->datadir_ino = st.st_ino;
	p->postmaster = postmaster_of(p->datadir);
	return 1;
}

/* Whether the data directory and the server are still there (looked at every WATCH_MS). */
static int watch_alive(prefetcher *p)
{
	struct stat st;
	long long now = now_ms();
	if (p->gone || now < p->next_check)
		return !p->gone;
	p->next_check = now + WATCH_MS;
	if (p->datadir[0] && (stat(p->datadir, &st) < 0 || st.st_dev != p->datadir_dev ||
			      st.st_ino != p->datadir_ino))
		p->gone = 1;
	if (p->postmaster && !process_runs(p->postmaster))
		p->gone = 1;
	return !p->gone;
}

/*
 * Follows the position until there has been nothing to do for
 * PREFETCH_IDLE_MS, or the data directory or its server is gone; *pos is
 * where it started and, on return, the last position it acted on.
 */
static void follow(prefetcher *p, wal_name *pos)
{
	uint64_t segno = 0;
	long long busy = now_ms();
	int moved = 1;
	for (;;) {
		wal_name latest;
		if (!watch_alive(p))
			break;
		if (position_read(p->cluster, &latest) && strcmp(latest.text, pos->text)) {
			*pos = latest;
			moved = 1;
		}
		if (moved) {
			if (wal_name_segno(pos, p->seg_size, &segno, NULL) != WAL_OK)
				break;
			/* recovery has the segment that was missing: no reason to wait */
			if (p->gate_until && pos->tli == p->gate_tli && segno >= p->gate_segno)
				p->gate_until = 0;
			clean_spool(p->cfg, p->cluster, pos, segno, p->seg_size);
			busy = now_ms();
			moved = 0;
		}
		if (p->gate_until && now_ms() >= p->gate_until)
			p->gate_until = 0;
		dispatch(p, pos, segno);
		if (!p->n_inflight && now_ms() - busy >= PREFETCH_IDLE_MS)
			break;
		if (p->results < 0) {
			poll(NULL, 0, POLL_MS);
			continue;
		}
		if (worker_died(p))
			break;         /* its segment would never be reported: start over later */
		struct pollfd pfd = { .fd = p->results, .events = POLLIN };
		int ready = poll(&pfd, 1, POLL_MS);
		if (ready < 0 && errno != EINTR)
			break;
		if (ready <= 0)
			continue;
		char job[JOB_SIZE];
		ssize_t got = wal_sys_read_full(p->results, job, sizeof(job));
		if (got != (ssize_t)sizeof(job))
			break;         /* every worker has gone: stop, the next walfetch starts over */
		if (report(p, job))
			busy = now_ms();
	}
	workers_stop(p);
}

void wal_fetch_ahead_run(const wal_config *cfg, uint64_t system_id, const wal_name *name,
			 uint32_t seg_size, const char *datadir)
{
	prefetcher p;
	wal_name pos = *name, latest;
	int lock_fd = -1;

	if (name->kind != WAL_NAME_SEGMENT || !seg_size)
		return;
	memset(&p, 0, sizeof(p));
	p.cfg = cfg;
	p.system_id = system_id;
	p.seg_size = seg_size;
	p.jobs = p.results = -1;
	p.cluster = -1;
	if (!watch_start(&p, datadir))
		return;
	/* the cluster's directory of a trusted spool; nothing is made above it */
	if (spool_open(cfg, system_id, NULL, 1, &p.cluster, NULL) != WAL_OK)
		return;
	/* one prefetcher per cluster and spool at a time */
	lock_fd = openat(p.cluster, LOCK_NAME, O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (lock_fd < 0)
		goto out;
	while (watch_alive(&p) && flock(lock_fd, LOCK_EX | LOCK_NB) == 0) {
		follow(&p, &pos);     /* which reads the position first */
		flock(lock_fd, LOCK_UN);
		/* a walfetch that found the lock held just now relies on this look */
		if (!position_read(p.cluster, &latest) || strcmp(latest.text, pos.text) == 0)
			break;
	}
out:
	free(p.inflight);
	if (lock_fd >= 0)
		close(lock_fd);
	close(p.cluster);
}

void wal_fetch_ahead_start(const wal_config *cfg, uint64_t system_id, const wal_name *name,
			   uint32_t seg_size, const char *datadir)
{
	if (!wal_ahead_fetch_enabled(cfg) || name->kind != WAL_NAME_SEGMENT || !seg_size)
		return;
	/* first the position: a prefetcher already running follows it */
	if (!position_write(cfg, system_id, name))
		return;        /* no trusted place for it: no prefetcher either */
	fflush(NULL);
	pid_t pid = fork();
	if (pid < 0)
		return;
	if (pid > 0) {
		/* the child forks the worker and exits at once: nothing to wait long for */
		while (waitpid(pid, NULL, 0) < 0 && errno == EINTR)
			;
		return;
	}
	if (fork() != 0)
		_exit(0);
	/* detached: PostgreSQL's restore_command has returned by now */
	setsid();
	/* a pipe to workers that died is an error to handle, not a signal to die of */
	signal(SIGPIPE, SIG_IGN);
	/* work for later: the replay, and the database, come first for the CPU
	 * (if this fails, the prefetcher runs at the caller's priority) */
	setpriority(PRIO_PROCESS, 0, PREFETCH_NICE);
	int devnull = open("/dev/null", O_RDWR);
	if (devnull >= 0) {
		dup2(devnull, 0);
		dup2(devnull, 1);
		dup2(devnull, 2);
		if (devnull > 2)
			close(devnull);
	}
	wal_fetch_ahead_run(cfg, system_id, name, seg_size, datadir);
	_exit(0);
}

wal_err wal_fetch_and_ahead(const wal_config *cfg, const char *file_name, const char *dest_path,
			    const char *datadir, wal_fetch_result *res, wal_error *e)
{
	wal_name name;
	uint64_t system_id = 0;
	char note[sizeof(res->spool_note)] = "";
	wal_err rc = wal_name_parse(file_name, &name, e);
	if (rc != WAL_OK)
		return rc;

	/* fetched ahead by an earlier call: taken from the spool, no connection */
	if (name.kind == WAL_NAME_SEGMENT && wal_ahead_fetch_enabled(cfg) &&
	    wal_local_system_id(cfg, datadir, &system_id)) {
		memset(res, 0, sizeof(*res));
		res->system_id = system_id;
		if (wal_ahead_take(cfg, system_id, &name, dest_path, res, NULL) == WAL_OK)
			goto ahead;
		snprintf(note, sizeof(note), "%s", res->spool_note);
	}
	rc = wal_fetch(cfg, file_name, dest_path, datadir, res, e);
	memcpy(res->spool_note, note, sizeof(note));
	if (rc != WAL_OK)
		return rc;
ahead:
	/* the segments recovery will ask for next, in the background */
	wal_fetch_ahead_start(cfg, res->system_id, &name, res->seg_size, datadir);
	return WAL_OK;
}
