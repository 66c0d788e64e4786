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
#include "ahead.h"
#include "compress.h"
#include "fileio.h"
#include "store.h"
#include "xxhash.h"

#define PUSHED_DIR "pushed"
#define LOCK_NAME ".prefetch.lock"
#define STALE_TMP_SECONDS 600

static int spool_usable(const wal_config *cfg)
{
	return cfg->spool_dir && *cfg->spool_dir && access(cfg->spool_dir, W_OK | X_OK) == 0;
}

/*
 * push_ahead = auto: on for archives over a network, where each call pays a
 * connection and round trips; off for a local directory, where walpush is
 * faster than the bookkeeping (measured: 0.8 times the speed on a burst).
 */
static int push_ahead_count(const wal_config *cfg)
{
	if (cfg->push_ahead >= 0)
		return cfg->push_ahead;
	int local = cfg->archive && (cfg->archive[0] == '/' || strncmp(cfg->archive, "file:", 5) == 0);
	return local ? 0 : WAL_PUSH_AHEAD_AUTO;
}

int wal_ahead_push_enabled(const wal_config *cfg)
{
	return push_ahead_count(cfg) > 0 && spool_usable(cfg);
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
	char path[4096], dir[4096], line[1024];
	snprintf(dir, sizeof(dir), "%s/%" PRIu64 "/" PUSHED_DIR, cfg->spool_dir, system_id);
	wal_err rc = wal_mkdir_p(dir, e);
	if (rc != WAL_OK)
		return rc;
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
	FILE *f = fopen(path, "r");
	if (!f)
		return 0;
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
	for (size_t i = 0; i < b->list.count && n < (size_t)push_ahead_count(cfg); i++) {
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
	if (early)
		batch_start(cfg, wal_path, current, datadir, system_id, cfg->parallel - 1, &b, ahead);
	wal_err rc = wal_push_with(cfg, &store, wal_path, current, datadir, 0, res, e);
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

/* The spool, opened as a local directory store (for listing it). */
static wal_err open_spool(const wal_config *cfg, wal_store **spool, wal_error *e)
{
	wal_config spool_cfg = *cfg;
	spool_cfg.archive = cfg->spool_dir;
	return wal_store_open(spool, &spool_cfg, e);
}

/* The spool directory that holds name's segments. */
static void spool_seg_dir(const wal_config *cfg, uint64_t system_id, const wal_name *name,
			  char *out, size_t cap)
{
	char dir[17];
	wal_name_dir(name, dir);
	snprintf(out, cap, "%s/%" PRIu64 "/%s", cfg->spool_dir, system_id, dir);
}

/*
 * Whether entry is the name of a spooled segment, "<segment>.<xxh64>": the
 * segment restored, verified and ready to be renamed into place, with the
 * XXH64 of its bytes.  Sets base to the segment name and hash to the hash.
 */
static int spool_entry(const char *entry, char base[WAL_NAME_MAX], char hash[17])
{
	size_t len = strlen(entry);
	if (len != 24 + 1 + 16 || entry[24] != '.')
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

/* Finds name in the spool: 1 and its path and hash if it is there. */
static int find_spooled(const wal_config *cfg, uint64_t system_id, const wal_name *name,
			char *path, size_t cap, char hash[17])
{
	char dir[4096], base[WAL_NAME_MAX], h[17];
	struct dirent *ent;
	int found = 0;
	spool_seg_dir(cfg, system_id, name, dir, sizeof(dir));
	DIR *d = opendir(dir);
	while (d && !found && (ent = readdir(d)))
		if (spool_entry(ent->d_name, base, h) && strcmp(base, name->text) == 0 &&
		    (size_t)snprintf(path, cap, "%s/%s", dir, ent->d_name) < cap) {
			if (hash)
				memcpy(hash, h, sizeof(h));
			found = 1;
		}
	if (d)
		closedir(d);
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
 * Takes a spooled segment on another file system than dest_path: copies it
 * through a temporary file, hashing on the way.
 */
static wal_err take_by_copy(const wal_config *cfg, const char *path, const wal_name *name,
			    const char *hash, const char *dest_path, wal_fetch_result *res,
			    wal_error *e)
{
	wal_atomic_file f;
	wal_fd_source in;
	wal_hash_source hashed;
	int fd = wal_sys_open(path, O_RDONLY | O_CLOEXEC, 0);
	if (fd < 0)
		return wal_fail_errno(e, errno == ENOENT ? WAL_ENOENT : WAL_EIO, errno,
				      "%s: cannot open", path);
	wal_err rc = wal_atomic_open(&f, dest_path, 0600, e);
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
 * place.  A spool on another file system is WAL_EUNSUPPORTED.
 */
static wal_err take_by_rename(const wal_config *cfg, const char *path, const wal_name *name,
			      const char *hash, const char *dest_path, wal_fetch_result *res,
			      wal_error *e)
{
	char tmp[4200], dir[4096], have[17];
	uint64_t size = 0;
	wal_tmp_name(dest_path, tmp, sizeof(tmp));
	if (wal_sys_rename(path, tmp) < 0)
		return wal_fail_errno(e, errno == EXDEV ? WAL_EUNSUPPORTED :
				      errno == ENOENT ? WAL_ENOENT : WAL_EIO, errno,
				      "%s: cannot move to %s", path, tmp);
	int fd = wal_sys_open(tmp, O_RDONLY | O_CLOEXEC, 0);
	wal_err rc = fd < 0 ? wal_fail_errno(e, WAL_EIO, errno, "%s: cannot open", tmp)
		: wal_xxh64_fd(fd, tmp, &size, have, e);
	if (rc == WAL_OK)
		rc = check_spooled(fd, tmp, name, hash, have, size, res, e);
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
	char path[4200], hash[17];
	wal_error err;
	if (!find_spooled(cfg, system_id, name, path, sizeof(path), hash))
		return wal_fail(e, WAL_ENOENT, "%s: not in the spool", name->text);
	wal_error_clear(&err);
	wal_err rc = take_by_rename(cfg, path, name, hash, dest_path, res, &err);
	if (rc == WAL_EUNSUPPORTED) {
		/* the spool is on another file system: a copy, and the spooled file goes */
		rc = take_by_copy(cfg, path, name, hash, dest_path, res, &err);
		if (rc != WAL_ENOENT)
			unlink(path);
	}
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

typedef struct spool_scan {
	const wal_config *cfg;
	uint64_t system_id;
	const char *dir;
	uint32_t tli;
	uint64_t first, last;  /* positions worth keeping: (current, current + ahead] */
	uint32_t seg_size;
	int kept;
} spool_scan;

/* Drops spooled files that no later call will ask for. */
static wal_err scan_file(void *arg, const char *entry, const wal_stat *st, wal_error *e)
{
	(void)e;
	spool_scan *scan = arg;
	char base[WAL_NAME_MAX], full[4096];
	wal_name name;
	uint64_t segno;
	if (entry[0] == '.')
		return WAL_OK;     /* a download under way, or left by a killed one: by age */
	snprintf(full, sizeof(full), "%s/%" PRIu64 "/%s/%s", scan->cfg->spool_dir, scan->system_id,
		 scan->dir, entry);
	int keep = spool_entry(entry, base, NULL) && wal_name_parse(base, &name, NULL) == WAL_OK &&
		   name.kind == WAL_NAME_SEGMENT && name.tli == scan->tli &&
		   wal_name_segno(&name, scan->seg_size, &segno, NULL) == WAL_OK &&
		   segno > scan->first && segno <= scan->last;
	if (keep)
		scan->kept++;
	else if (!st->is_dir)
		unlink(full);
	return WAL_OK;
}

/* Removes temporary files that a killed prefetcher left, once they are old. */
static void drop_stale_tmp(const char *dir)
{
	DIR *d = opendir(dir);
	struct dirent *ent;
	time_t now = time(NULL);
	while (d && (ent = readdir(d))) {
		char full[4700];
		struct stat st;
		size_t len = strlen(ent->d_name);
		if (ent->d_name[0] != '.' || len < 5 || strcmp(ent->d_name + len - 4, ".tmp"))
			continue;
		snprintf(full, sizeof(full), "%s/%s", dir, ent->d_name);
		if (stat(full, &st) == 0 && now - st.st_mtime > STALE_TMP_SECONDS)
			unlink(full);
	}
	if (d)
		closedir(d);
}

static void clean_spool(const wal_config *cfg, wal_store *spool, uint64_t system_id,
			const wal_name *name, uint64_t segno, uint32_t seg_size)
{
	char root[32], dir[320];
	DIR *d;
	struct dirent *ent;
	snprintf(root, sizeof(root), "%" PRIu64, system_id);
	char full_root[4096];
	snprintf(full_root, sizeof(full_root), "%s/%s", cfg->spool_dir, root);
	d = opendir(full_root);
	while (d && (ent = readdir(d))) {
		if (strlen(ent->d_name) != 16)
			continue;
		spool_scan scan = { cfg, system_id, ent->d_name, name->tli, segno,
				    segno + (uint64_t)cfg->fetch_ahead, seg_size, 0 };
		snprintf(dir, sizeof(dir), "%s/%s", root, ent->d_name);
		wal_store_list(spool, dir, scan_file, &scan, NULL);
		char full_dir[4400];
		snprintf(full_dir, sizeof(full_dir), "%s/%s", full_root, ent->d_name);
		drop_stale_tmp(full_dir);
		if (!scan.kept)
			rmdir(full_dir);   /* fails, harmlessly, if a download is under way */
	}
	if (d)
		closedir(d);
}

/* Whether the spool has name. */
static int spooled(const wal_config *cfg, uint64_t system_id, const wal_name *name)
{
	char path[4200];
	return find_spooled(cfg, system_id, name, path, sizeof(path), NULL);
}

/*
 * Downloads one object of the archive into the spool, restored: decompressed,
 * checked as walfetch checks it, flushed (with fetch_fsync) and named with
 * its XXH64, so that taking it is a rename.  WAL_ENOENT if absent.
 */
static wal_err spool_one(const wal_config *cfg, wal_store *archive, uint64_t system_id,
			 const wal_name *name, wal_error *e)
{
	char object[512], dir[4096], full[4200], hash[17];
	wal_err rc;
	spool_seg_dir(cfg, system_id, name, dir, sizeof(dir));
	if ((rc = wal_mkdir_p(dir, e)) != WAL_OK)
		return rc;
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

/* Records name as the position the prefetcher follows (replaced atomically). */
static void position_write(const wal_config *cfg, uint64_t system_id, const wal_name *name)
{
	char dir[4096], path[4200], tmp[4300], line[WAL_NAME_MAX + 1];
	snprintf(dir, sizeof(dir), "%s/%" PRIu64, cfg->spool_dir, system_id);
	snprintf(path, sizeof(path), "%s/" POSITION_NAME, dir);
	snprintf(tmp, sizeof(tmp), "%s.%ld.tmp", path, (long)getpid());
	int len = snprintf(line, sizeof(line), "%s\n", name->text);
	int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	/* the cluster's spool directory is made once, not on every call */
	if (fd < 0 && errno == ENOENT && wal_mkdir_p(dir, NULL) == WAL_OK)
		fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0)
		return;
	int ok = wal_sys_write_all(fd, line, (size_t)len) == 0;
	close(fd);
	if (!ok || rename(tmp, path) < 0)
		unlink(tmp);
}

/* Reads the position; 1 if it names a segment. */
static int position_read(const wal_config *cfg, uint64_t system_id, wal_name *out)
{
	char path[4096], line[64];
	snprintf(path, sizeof(path), "%s/%" PRIu64 "/" POSITION_NAME, cfg->spool_dir, system_id);
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return 0;
	ssize_t n = wal_sys_read(fd, line, sizeof(line) - 1);
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
	wal_store *spool;
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
		    spooled(p->cfg, p->system_id, &next))
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

/*
 * Follows the position until there has been nothing to do for
 * PREFETCH_IDLE_MS; *pos is where it started and, on return, the last
 * position it acted on.
 */
static void follow(prefetcher *p, wal_name *pos)
{
	uint64_t segno = 0;
	long long busy = now_ms();
	int moved = 1;
	for (;;) {
		wal_name latest;
		if (position_read(p->cfg, p->system_id, &latest) && strcmp(latest.text, pos->text)) {
			*pos = latest;
			moved = 1;
		}
		if (moved) {
			if (wal_name_segno(pos, p->seg_size, &segno, NULL) != WAL_OK)
				break;
			/* recovery has the segment that was missing: no reason to wait */
			if (p->gate_until && pos->tli == p->gate_tli && segno >= p->gate_segno)
				p->gate_until = 0;
			clean_spool(p->cfg, p->spool, p->system_id, pos, segno, p->seg_size);
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
			 uint32_t seg_size)
{
	char path[4096];
	prefetcher p;
	wal_error err;
	wal_name pos = *name, latest;

	if (name->kind != WAL_NAME_SEGMENT || !seg_size)
		return;
	memset(&p, 0, sizeof(p));
	p.cfg = cfg;
	p.system_id = system_id;
	p.seg_size = seg_size;
	p.jobs = p.results = -1;
	snprintf(path, sizeof(path), "%s/%" PRIu64, cfg->spool_dir, system_id);
	if (wal_mkdir_p(path, &err) != WAL_OK)
		return;
	/* one prefetcher per cluster and spool at a time */
	snprintf(path, sizeof(path), "%s/%" PRIu64 "/" LOCK_NAME, cfg->spool_dir, system_id);
	int lock_fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	if (lock_fd < 0 || open_spool(cfg, &p.spool, &err) != WAL_OK)
		goto out;
	while (flock(lock_fd, LOCK_EX | LOCK_NB) == 0) {
		follow(&p, &pos);     /* which reads the position first */
		flock(lock_fd, LOCK_UN);
		/* a walfetch that found the lock held just now relies on this look */
		if (!position_read(cfg, system_id, &latest) || strcmp(latest.text, pos.text) == 0)
			break;
	}
out:
	free(p.inflight);
	wal_store_close(p.spool);
	if (lock_fd >= 0)
		close(lock_fd);
}

void wal_fetch_ahead_start(const wal_config *cfg, uint64_t system_id, const wal_name *name,
			   uint32_t seg_size)
{
	if (!wal_ahead_fetch_enabled(cfg) || name->kind != WAL_NAME_SEGMENT || !seg_size)
		return;
	/* first the position: a prefetcher already running follows it */
	position_write(cfg, system_id, name);
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
	wal_fetch_ahead_run(cfg, system_id, name, seg_size);
	_exit(0);
}
