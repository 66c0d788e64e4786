/*
 * The archive module's walarchive half (archiver.h): the configuration and
 * the store, kept for the archiver's lifetime, and walpush's job for one
 * file.  Everything the library allocates for a file is freed before the
 * call returns; what lives between files is the configuration and the
 * store's connection.
 */
#include <dirent.h>
#include <errno.h>
#include <inttypes.h>
#include <stdint.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include "ahead/ahead.h"
#include "ahead/spool.h"
#include "ahead/status.h"
#include "archive/archive.h"
#include "base/log.h"
#include "pgmodule/archiver.h"

/* The archiver runs in the data directory: %p is relative to it. */
#define DATADIR "."

static struct {
	int loaded;	 /* cfg holds a read of path */
	int usable;	 /* and it can archive */
	char path[4096]; /* the file read */
	struct stat st;	 /* its identity then (st_ino 0: it was missing) */
	wal_config cfg;
	char why[768];	  /* why it cannot archive, when not usable */
	wal_store *store; /* kept between files; NULL after a failure */
} am;

/* ---- push-ahead threads ---------------------------------------------------- */

#define AHEAD_THREADS_MAX 16
#define AHEAD_QUEUE_MAX 1024
#define MAIN_SLOT AHEAD_THREADS_MAX

static struct {
	pthread_mutex_t mu;
	pthread_cond_t work; /* a name queued, or stop */
	pthread_cond_t idle; /* a thread finished a name */
	int threads;
	pthread_t tid[AHEAD_THREADS_MAX];
	int stop;
	char (*queue)[WAL_NAME_MAX]; /* names waiting, oldest first */
	size_t queued;
	/* per thread, then the archiver's own (MAIN_SLOT): "" when idle */
	char running[AHEAD_THREADS_MAX + 1][WAL_NAME_MAX];
	char error[768]; /* the first failure not yet said */
	uint64_t system_id;
} ah = { .mu = PTHREAD_MUTEX_INITIALIZER,
	 .work = PTHREAD_COND_INITIALIZER,
	 .idle = PTHREAD_COND_INITIALIZER };

/*
 * Pushes the first queued name on *store, in slot, and records it; called
 * with ah.mu held, which it releases during the push.  A failure closes
 * *store and stops the batch: PostgreSQL asks for those files itself.
 */
static void ahead_push_first(int slot, wal_store **store)
{
	char name[WAL_NAME_MAX], path[WAL_NAME_MAX + 16];
	memcpy(ah.running[slot], ah.queue[0], WAL_NAME_MAX);
	memmove(ah.queue[0], ah.queue[1], (ah.queued - 1) * WAL_NAME_MAX);
	ah.queued--;
	memcpy(name, ah.running[slot], WAL_NAME_MAX);
	uint64_t system_id = ah.system_id;
	pthread_mutex_unlock(&ah.mu);

	wal_push_result pr;
	wal_error err;
	wal_error_clear(&err);
	snprintf(path, sizeof(path), "pg_wal/%s", name);
	wal_err rc = wal_push_with(&am.cfg, store, path, name, DATADIR, 1, &pr, &err);
	if (rc == WAL_OK && pr.outcome != WAL_PUSHED_AHEAD)
		rc = wal_ahead_record(&am.cfg, system_id ? system_id : pr.system_id, name,
				      pr.in_bytes, pr.hash, pr.object, pr.stored_bytes, &err);
	if (rc != WAL_OK) {
		wal_store_close(*store);
		*store = NULL;
	}

	pthread_mutex_lock(&ah.mu);
	if (rc != WAL_OK) {
		ah.queued = 0;
		if (!ah.error[0])
			snprintf(ah.error, sizeof(ah.error), "%s", err.msg);
	}
	ah.running[slot][0] = '\0';
	pthread_cond_broadcast(&ah.idle);
}

static void *ahead_thread(void *arg)
{
	int slot = (int)(intptr_t)arg;
	wal_store *store = NULL;
	pthread_mutex_lock(&ah.mu);
	for (;;) {
		while (!ah.stop && ah.queued == 0)
			pthread_cond_wait(&ah.work, &ah.mu);
		if (ah.stop)
			break;
		ahead_push_first(slot, &store);
	}
	pthread_mutex_unlock(&ah.mu);
	wal_store_close(store);
	return NULL;
}

/* Stops and joins the threads; what they had not started stays ready. */
static void ahead_stop(void)
{
	pthread_mutex_lock(&ah.mu);
	ah.stop = 1;
	ah.queued = 0;
	pthread_cond_broadcast(&ah.work);
	pthread_mutex_unlock(&ah.mu);
	for (int i = 0; i < ah.threads; i++)
		pthread_join(ah.tid[i], NULL);
	ah.threads = 0;
	ah.stop = 0;
	free(ah.queue);
	ah.queue = NULL;
}

/* Whether name is queued or being pushed (called with ah.mu held). */
static int ahead_busy(const char *name, int *running)
{
	*running = strcmp(ah.running[MAIN_SLOT], name) == 0;
	for (int i = 0; i < ah.threads; i++)
		if (strcmp(ah.running[i], name) == 0)
			*running = 1;
	for (size_t i = 0; !*running && i < ah.queued; i++)
		if (strcmp(ah.queue[i], name) == 0)
			return 1;
	return *running;
}

/*
 * Takes name off the queue, or, while a thread pushes it, pushes other
 * queued files on the archiver's own connection (a slot as much as the
 * threads, as walpush is in its batch) until that thread is done.
 */
static void ahead_claim(const char *name)
{
	int running;
	pthread_mutex_lock(&ah.mu);
	for (size_t i = 0; i < ah.queued; i++)
		if (strcmp(ah.queue[i], name) == 0) {
			memmove(ah.queue[i], ah.queue[i + 1], (ah.queued - i - 1) * WAL_NAME_MAX);
			ah.queued--;
			break;
		}
	while (ahead_busy(name, &running) && running) {
		if (ah.queued > 0)
			ahead_push_first(MAIN_SLOT, &am.store);
		else
			pthread_cond_wait(&ah.idle, &ah.mu);
	}
	pthread_mutex_unlock(&ah.mu);
}

/* PostgreSQL's order: timeline history files first, then by name. */
static int ready_order(const void *a, const void *b)
{
	const char *x = a, *y = b;
	int xh = strstr(x, ".history") != NULL, yh = strstr(y, ".history") != NULL;
	if (xh != yh)
		return xh ? -1 : 1;
	return strcmp(x, y);
}

/*
 * Queues the next ready files after current that no record covers and no
 * thread has, up to push_ahead in all, and starts the threads at the first
 * batch.  Called after current was archived, so that the transports'
 * global set-up has run on this thread first.
 */
static void ahead_fill(const char *current)
{
	int want = wal_ahead_push_count(&am.cfg);
	int threads = am.cfg.parallel - 1;
	if (threads > AHEAD_THREADS_MAX)
		threads = AHEAD_THREADS_MAX;
	if (want <= 0 || threads <= 0 || !wal_ahead_push_enabled(&am.cfg))
		return;
	if (want > AHEAD_QUEUE_MAX)
		want = AHEAD_QUEUE_MAX;
	uint64_t system_id = 0;
	if (!wal_local_system_id(&am.cfg, DATADIR, &system_id))
		return;
	DIR *d = opendir("pg_wal/archive_status");
	if (!d)
		return;
	char(*names)[WAL_NAME_MAX] = NULL;
	size_t n = 0, cap = 0;
	struct dirent *ent;
	while ((ent = readdir(d))) {
		size_t len = strlen(ent->d_name);
		if (len <= 6 || len - 6 >= WAL_NAME_MAX || strcmp(ent->d_name + len - 6, ".ready"))
			continue;
		if (n == cap) {
			size_t grown_cap = cap ? cap * 2 : 64;
			char(*grown)[WAL_NAME_MAX] = realloc(names, grown_cap * WAL_NAME_MAX);
			if (!grown)
				break;
			names = grown;
			cap = grown_cap;
		}
		memcpy(names[n], ent->d_name, len - 6);
		names[n][len - 6] = '\0';
		n++;
	}
	closedir(d);
	if (n)
		qsort(names, n, WAL_NAME_MAX, ready_order);

	pthread_mutex_lock(&ah.mu);
	if (!ah.queue)
		ah.queue = calloc(AHEAD_QUEUE_MAX, WAL_NAME_MAX);
	ah.system_id = system_id;
	int busy = (int)ah.queued;
	for (int i = 0; i < ah.threads; i++)
		busy += ah.running[i][0] != '\0';
	for (size_t i = 0; ah.queue && i < n && busy < want; i++) {
		wal_name parsed;
		char record[4096];
		int running;
		if (strcmp(names[i], current) == 0 ||
		    wal_name_parse(names[i], &parsed, NULL) != WAL_OK ||
		    ahead_busy(names[i], &running))
			continue;
		wal_spool_record_path(&am.cfg, system_id, names[i], record, sizeof(record));
		if (access(record, F_OK) == 0)
			continue;
		memcpy(ah.queue[ah.queued++], names[i], WAL_NAME_MAX);
		busy++;
	}
	if (ah.queued)
		pthread_cond_broadcast(&ah.work);
	pthread_mutex_unlock(&ah.mu);
	free(names);

	if (ah.threads == 0 && ah.queue) {
		/* the threads take no signal: the archiver's handlers stay its own */
		sigset_t all, old;
		sigfillset(&all);
		pthread_sigmask(SIG_SETMASK, &all, &old);
		for (int i = 0; i < threads; i++) {
			ah.running[i][0] = '\0';
			if (pthread_create(&ah.tid[ah.threads], NULL, ahead_thread,
					   (void *)(intptr_t)ah.threads) != 0)
				break;
			ah.threads++;
		}
		pthread_sigmask(SIG_SETMASK, &old, NULL);
	}
}

int wam_ahead_error(char *out, size_t cap)
{
	pthread_mutex_lock(&ah.mu);
	int any = ah.error[0] != '\0';
	if (any)
		snprintf(out, cap, "push-ahead stopped: %s", ah.error);
	ah.error[0] = '\0';
	pthread_mutex_unlock(&ah.mu);
	return any;
}

/* ---- configuration and the file asked for --------------------------------------- */

static int same_file(const struct stat *a, const struct stat *b)
{
	return a->st_dev == b->st_dev && a->st_ino == b->st_ino && a->st_size == b->st_size &&
	       a->st_mtim.tv_sec == b->st_mtim.tv_sec && a->st_mtim.tv_nsec == b->st_mtim.tv_nsec &&
	       a->st_ctim.tv_sec == b->st_ctim.tv_sec && a->st_ctim.tv_nsec == b->st_ctim.tv_nsec;
}

static void forget(void)
{
	ahead_stop();
	wal_store_close(am.store);
	am.store = NULL;
	if (am.loaded)
		wal_config_free(&am.cfg);
	am.loaded = am.usable = 0;
}

int wam_configured(const char *config_path, char *why, size_t cap, int *changed)
{
	struct stat st;
	*changed = 0;
	if (!config_path || !*config_path)
		config_path = "/etc/walarchive.conf";
	if (stat(config_path, &st) != 0)
		memset(&st, 0, sizeof(st));
	if (!am.loaded || strcmp(am.path, config_path) != 0 || !same_file(&am.st, &st)) {
		wal_error err;
		char warning[768] = "";
		forget();
		*changed = 1;
		snprintf(am.path, sizeof(am.path), "%s", config_path);
		am.st = st;
		wal_config_init(&am.cfg);
		am.loaded = 1;
		wal_error_clear(&err);
		wal_err rc = wal_config_load(&am.cfg, config_path, &err);
		if (rc == WAL_OK)
			rc = wal_config_check(&am.cfg, warning, sizeof(warning), &err);
		am.usable = rc == WAL_OK;
		if (!am.usable)
			snprintf(am.why, sizeof(am.why), "%s", err.msg);
		else
			snprintf(am.why, sizeof(am.why), "%s", warning);
		/* a spool others could write to is ignored: said with the warnings */
		wal_error spool_err;
		if (am.usable && wal_ahead_push_count(&am.cfg) > 0 &&
		    wal_ahead_spool_check(&am.cfg, 0, &spool_err) == WAL_EPERM) {
			size_t used = strlen(am.why);
			snprintf(am.why + used, sizeof(am.why) - used, "%s%s; push-ahead is off",
				 used ? "; " : "", spool_err.msg);
		}
	}
	snprintf(why, cap, "%s", am.why);
	return am.usable;
}

/* The exit code walpush would have had, for the status record walcheck reads. */
static int exit_code(wal_err rc)
{
	switch (rc) {
	case WAL_OK:
		return 0;
	case WAL_EINVAL:
		return 2;
	case WAL_ECONFIG:
	case WAL_EAMBIGUOUS:
		return 3;
	case WAL_EEXIST:
	case WAL_EEXIST_DIFFERENT:
		return 4;
	case WAL_ENOTWAL:
	case WAL_EFOREIGN:
		return 5;
	case WAL_EAUTH:
	case WAL_EHOSTKEY:
		return 8;
	default:
		return 6;
	}
}

/* Whether a failure may pass on a new connection (the kept one went stale). */
static int worth_reconnecting(wal_err rc)
{
	return rc == WAL_ENET || rc == WAL_ETIMEOUT || rc == WAL_EIO;
}

int wam_archive(const char *config_path, const char *path, const char *name, char *line, size_t cap,
		int *level)
{
	char why[768];
	int changed;
	*level = WAM_LOG_WARNING;
	if (!wam_configured(config_path, why, sizeof(why), &changed)) {
		snprintf(line, cap, "%s", why);
		return 0;
	}
	wal_push_result res;
	wal_error err;
	wal_error_clear(&err);
	/* a thread pushing it ahead finishes first; its record then answers */
	ahead_claim(name);
	int reused = am.store != NULL;
	wal_err rc = wal_push_one(&am.cfg, &am.store, path, name, DATADIR, &res, &err);
	if (rc != WAL_OK) {
		/* a failed connection is not used again */
		wal_store_close(am.store);
		am.store = NULL;
		/* a connection kept across an idle time may have been dropped by
		 * the server: one more try, on a new one, before a failure */
		if (reused && worth_reconnecting(rc)) {
			wal_error_clear(&err);
			rc = wal_push_one(&am.cfg, &am.store, path, name, DATADIR, &res, &err);
			if (rc != WAL_OK) {
				wal_store_close(am.store);
				am.store = NULL;
			}
		}
	}
	int shown = WAL_LOG_ERROR;
	if (rc != WAL_OK) {
		snprintf(line, cap, "%s", err.msg);
	} else if (res.outcome == WAL_PUSH_DUPLICATE) {
		snprintf(line, cap, "%s: already archived with identical content at %s", name,
			 res.object);
		shown = WAL_LOG_NOTICE;
	} else if (res.outcome == WAL_PUSHED_AHEAD) {
		snprintf(line, cap, "%s: archived ahead at %s, file unchanged since", name,
			 res.object);
		shown = WAL_LOG_INFO;
	} else {
		snprintf(line, cap, "%s: archived at %s (%" PRIu64 " bytes stored)", name,
			 res.object, res.stored_bytes);
		shown = WAL_LOG_INFO;
	}
	/* the next ready files, while PostgreSQL notes this one */
	if (rc == WAL_OK)
		ahead_fill(name);
	*level = rc != WAL_OK		     ? WAM_LOG_WARNING
		 : shown <= am.cfg.log_level ? WAM_LOG_INFO
					     : WAM_LOG_NONE;
	/* for walcheck: the outcome, in the spool, as walpush records it */
	uint64_t system_id = 0;
	if (!wal_local_system_id(&am.cfg, DATADIR, &system_id))
		system_id = res.system_id;
	if (system_id)
		wal_status_record(&am.cfg, system_id, "walpush", name, exit_code(rc), line, NULL);
	return rc == WAL_OK;
}

void wam_shutdown(void)
{
	forget();
}
