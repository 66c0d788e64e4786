/*
 * walpush's orchestrator and the push-ahead batch: the file asked for (or
 * its record), and beside it the next ready files, pushed by child
 * processes with a connection each off a shared queue; and the backlog.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include "ahead/ahead.h"
#include "ahead/spool.h"
#include "sys/fileio.h"

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
			char(*grown)[WAL_NAME_MAX] = realloc(list->names, cap * sizeof(*grown));
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
			snprintf(path, sizeof(path), "%s/archive_status/%s.ready", wal_dir,
				 list.names[i]);
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
	int queue;  /* read end of the queue, or -1 */
	int msg[2]; /* a failed child's message line */
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
		wal_err rc =
			wal_push_with(cfg, store, path, b->list.names[i], datadir, 1, &pr, &err);
		if (rc == WAL_OK && pr.outcome != WAL_PUSHED_AHEAD)
			rc = wal_ahead_record(cfg, pr.system_id, b->list.names[i], pr.in_bytes,
					      pr.hash, pr.object, pr.stored_bytes, &err);
		if (rc != WAL_OK) {
			snprintf(error, cap, "%s", err.msg);
			return 1; /* this slot stops; what it leaves, others or PostgreSQL take */
		}
	}
	return 0;
}

/* Starts up to workers child slots on the batch's queue; each pushes with
 * a connection of its own and reports a failure as one line on b->msg. */
static void batch_fork(const wal_config *cfg, push_batch *b, const char *datadir, int workers)
{
	if (workers > (int)b->n)
		workers = (int)b->n;
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
		wal_spool_record_path(cfg, system_id, b->list.names[i], path, sizeof(path));
		if (access(path, F_OK) == 0)
			continue;
		memmove(b->list.names[n++], b->list.names[i], WAL_NAME_MAX);
	}
	if (!n)
		return;
	int q[2];
	if (pipe2(q, O_CLOEXEC) < 0) {
		snprintf(res->error, sizeof(res->error), "cannot create a pipe: %s",
			 strerror(errno));
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

	batch_fork(cfg, b, datadir, workers);
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
		wal_spool_record_path(cfg, b->system_id, b->list.names[i], path, sizeof(path));
		if (access(path, F_OK) == 0)
			res->pushed++;
	}
	if (any_failed && !res->error[0])
		snprintf(res->error, sizeof(res->error), "a push-ahead worker failed");
	free(b->list.names);
}

/*
 * A record this young is taken without asking the archive: the batch that
 * wrote it saw the object with its size just before, and PostgreSQL asks
 * for the files of a batch within seconds.  Asking would cost a connection
 * per call (an SSH handshake, a TLS session): what push-ahead saves.
 */
#define RECORD_FRESH_SECONDS 60

/*
 * Whether current (at wal_path) was pushed ahead by an earlier call: a
 * record says so, the file still holds exactly those bytes, and, for a
 * record older than RECORD_FRESH_SECONDS, the archive still holds the
 * object with its recorded size (a record outlives an object that a
 * lifecycle rule or a hand removed).  Opens *store when it asks.
 */
static int pushed_ahead(const wal_config *cfg, wal_store **store, uint64_t system_id,
			const char *wal_path, const char *current, wal_push_result *res)
{
	struct stat st, rst;
	char record[4096];
	uint64_t stored = 0;
	wal_stat ost;
	/* the record's age, before wal_ahead_recorded uses it up */
	wal_spool_record_path(cfg, system_id, current, record, sizeof(record));
	time_t now = time(NULL);
	int fresh = lstat(record, &rst) == 0 && rst.st_mtime <= now &&
		    now - rst.st_mtime <= RECORD_FRESH_SECONDS;
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
	if (!fresh) {
		if (!*store && wal_store_open(store, cfg, NULL) != WAL_OK)
			return 0;
		if (wal_store_stat(*store, res->object, &ost, NULL) != WAL_OK || ost.size < 0 ||
		    (uint64_t)ost.size != stored)
			return 0; /* gone or changed: pushed again, and refused if it differs */
	}
	res->outcome = WAL_PUSHED_AHEAD;
	res->system_id = system_id;
	res->in_bytes = (uint64_t)st.st_size;
	return 1;
}

wal_err wal_push_one(const wal_config *cfg, wal_store **store, const char *wal_path,
		     const char *current, const char *datadir, wal_push_result *res, wal_error *e)
{
	uint64_t system_id = 0;
	memset(res, 0, sizeof(*res));
	if (wal_ahead_push_enabled(cfg) && wal_local_system_id(cfg, datadir, &system_id) &&
	    pushed_ahead(cfg, store, system_id, wal_path, current, res))
		return WAL_OK;
	return wal_push_with(cfg, store, wal_path, current, datadir, 0, res, e);
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
	/* pushed ahead by an earlier call: done, once the archive confirms it.
	 * Such a call starts no batch: PostgreSQL's calls for the files of the
	 * last batch return at once, so that it marks them archived (and may
	 * recycle them) as fast as they were pushed; under a load that outruns
	 * the archive, a batch per call would hold each of them for a whole
	 * batch, and the backlog PostgreSQL sees would grow while the archive
	 * kept up. */
	int done = early && pushed_ahead(cfg, &store, system_id, wal_path, current, res);
	if (early && !done)
		batch_start(cfg, wal_path, current, datadir, system_id, cfg->parallel - 1, &b,
			    ahead);
	if (!done)
		rc = wal_push_with(cfg, &store, wal_path, current, datadir, 0, res, e);
	if (rc == WAL_OK && enabled && !early)
		batch_start(cfg, wal_path, current, datadir, res->system_id, cfg->parallel - 1, &b,
			    ahead);
	if (rc == WAL_OK && b.queue >= 0) {
		/* then this process is a slot too, on its connection, warm by now */
		char error[sizeof(((wal_error *)0)->msg)];
		if (push_from_queue(cfg, &b, datadir, &store, error, sizeof(error)) &&
		    !ahead->error[0])
			snprintf(ahead->error, sizeof(ahead->error), "%s", error);
	}
	wal_store_close(store);
	/* exit only after every child: none outlives the call that started it */
	batch_finish(cfg, &b, ahead);
	return rc;
}
