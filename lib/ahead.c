/*
 * Push-ahead records, the archive backlog, and the fetch-ahead spool (see
 * ahead.h).  Parallel transfers are child processes, each with its own
 * connection: no threads inside libcurl or libssh2, and a child killed
 * midway takes only its own temporary file with it.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
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
			 uint64_t size, const char *hash_hex, const char *object, wal_error *e)
{
	char path[4096], dir[4096], line[1024];
	snprintf(dir, sizeof(dir), "%s/%" PRIu64 "/" PUSHED_DIR, cfg->spool_dir, system_id);
	wal_err rc = wal_mkdir_p(dir, e);
	if (rc != WAL_OK)
		return rc;
	record_path(cfg, system_id, name, path, sizeof(path));
	/* the archive too: a record says where the file went, not just that it went */
	int len = snprintf(line, sizeof(line), "%" PRIu64 " %s %s %s\n", size, hash_hex, object,
			   cfg->archive);
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
		       char *object, size_t cap)
{
	char path[4096], line[1024], hash[17], obj[512], have[17];
	unsigned long long size = 0;
	uint64_t have_size = 0;
	int archive_at = 0;
	struct stat st;
	record_path(cfg, system_id, name, path, sizeof(path));
	FILE *f = fopen(path, "r");
	if (!f)
		return 0;
	int parsed = fgets(line, sizeof(line), f) &&
		     sscanf(line, "%llu %16s %511s %n", &size, hash, obj, &archive_at) == 3 &&
		     archive_at > 0;
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
	return 1;
}

/* ---- ready files and the backlog ----------------------------------------- */

static void wal_dir_of(const char *wal_path, char *out, size_t cap)
{
	const char *slash = strrchr(wal_path, '/');
	if (slash)
		snprintf(out, cap, "%.*s", (int)(slash - wal_path), wal_path);
	else
		snprintf(out, cap, ".");
}

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
	wal_dir_of(wal_path, wal_dir, sizeof(wal_dir));
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

/* Pushes names[i] for i = first, first + step, ...; returns how many failed. */
static int push_slice(const wal_config *cfg, const char *wal_dir, char (*names)[WAL_NAME_MAX],
		      size_t count, size_t first, size_t step, const char *datadir,
		      wal_push_ahead_result *res)
{
	wal_store *store = NULL;
	int failed = 0;
	for (size_t i = first; i < count; i += step) {
		char path[4200];
		wal_push_result pr;
		wal_error err;
		snprintf(path, sizeof(path), "%s/%s", wal_dir, names[i]);
		wal_error_clear(&err);
		wal_err rc = wal_push_with(cfg, &store, path, names[i], datadir, 1, &pr, &err);
		if (rc == WAL_OK && pr.outcome != WAL_PUSHED_AHEAD)
			rc = wal_ahead_record(cfg, pr.system_id, names[i], pr.in_bytes, pr.hash,
					      pr.object, &err);
		if (rc != WAL_OK) {
			if (!res->error[0])
				snprintf(res->error, sizeof(res->error), "%s", err.msg);
			failed++;
			break;     /* the archive is failing: leave the rest to PostgreSQL */
		}
		res->pushed++;
	}
	wal_store_close(store);
	return failed;
}

void wal_push_ahead(const wal_config *cfg, const char *wal_path, const char *current,
		    const char *datadir, uint64_t system_id, wal_push_ahead_result *res)
{
	char wal_dir[4096];
	ready_list list = { 0 };
	wal_error err;
	memset(res, 0, sizeof(*res));
	if (!wal_ahead_push_enabled(cfg))
		return;
	wal_dir_of(wal_path, wal_dir, sizeof(wal_dir));
	if (read_ready(wal_dir, &list, &err) != WAL_OK) {
		snprintf(res->error, sizeof(res->error), "%s", err.msg);
		return;
	}
	/* the batch: the next ready files, in order, that no earlier batch has
	 * pushed already (their records wait for PostgreSQL's own calls) */
	size_t n = 0;
	for (size_t i = 0; i < list.count && n < (size_t)push_ahead_count(cfg); i++) {
		wal_name name;
		char path[4096];
		if (strcmp(list.names[i], current) == 0 ||
		    wal_name_parse(list.names[i], &name, NULL) != WAL_OK)
			continue;
		record_path(cfg, system_id, list.names[i], path, sizeof(path));
		if (access(path, F_OK) == 0)
			continue;
		memmove(list.names[n++], list.names[i], WAL_NAME_MAX);
	}
	res->candidates = (int)n;
	int workers = cfg->parallel < (int)n ? cfg->parallel : (int)n;
	if (workers <= 1) {
		if (n)
			push_slice(cfg, wal_dir, list.names, n, 0, 1, datadir, res);
		free(list.names);
		return;
	}

	/* one child per connection; each reports through its records, its exit
	 * code and, on failure, one message line on a pipe */
	pid_t pids[64];
	int started = 0;
	int msg_pipe[2] = { -1, -1 };
	if (pipe2(msg_pipe, O_CLOEXEC) < 0)
		msg_pipe[0] = msg_pipe[1] = -1;
	fflush(NULL);
	for (int w = 0; w < workers && w < 64; w++) {
		pid_t pid = fork();
		if (pid == 0) {
			wal_push_ahead_result mine;
			memset(&mine, 0, sizeof(mine));
			int failed = push_slice(cfg, wal_dir, list.names, n, (size_t)w, (size_t)workers,
						datadir, &mine);
			if (failed && msg_pipe[1] >= 0) {
				/* one write under PIPE_BUF bytes: lines from workers never mix */
				char line[512];
				int len = snprintf(line, sizeof(line), "%s\n", mine.error);
				if (len > (int)sizeof(line) - 1)
					len = (int)sizeof(line) - 1;
				if (write(msg_pipe[1], line, (size_t)len) < 0)
					failed = 1;
			}
			_exit(failed ? 1 : 0);
		}
		if (pid > 0)
			pids[started++] = pid;
	}
	if (msg_pipe[1] >= 0)
		close(msg_pipe[1]);
	int any_failed = 0;
	for (int i = 0; i < started; i++) {
		int status = 0;
		while (waitpid(pids[i], &status, 0) < 0 && errno == EINTR)
			;
		if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
			any_failed = 1;
	}
	if (msg_pipe[0] >= 0) {
		/* the first worker's message is the one reported */
		ssize_t got = read(msg_pipe[0], res->error, sizeof(res->error) - 1);
		res->error[got > 0 ? got : 0] = '\0';
		res->error[strcspn(res->error, "\n")] = '\0';
		close(msg_pipe[0]);
	}
	/* what is archived now is what has a record */
	for (size_t i = 0; i < n; i++) {
		char path[4096];
		record_path(cfg, system_id, list.names[i], path, sizeof(path));
		if (access(path, F_OK) == 0)
			res->pushed++;
	}
	if (any_failed && !res->error[0])
		snprintf(res->error, sizeof(res->error), "a push-ahead worker failed");
	free(list.names);
}

/* ---- fetch-ahead --------------------------------------------------------- */

/* The spool, opened as a local archive with the same layout. */
static wal_err open_spool(const wal_config *cfg, wal_store **spool, wal_error *e)
{
	wal_config spool_cfg = *cfg;
	spool_cfg.archive = cfg->spool_dir;
	return wal_store_open(spool, &spool_cfg, e);
}

wal_err wal_ahead_take(const wal_config *cfg, uint64_t system_id, const wal_name *name,
		       const char *dest_path, wal_fetch_result *res, wal_error *e)
{
	wal_store *spool = NULL;
	char object[512];
	wal_err rc = open_spool(cfg, &spool, e);
	if (rc != WAL_OK)
		return WAL_ENOENT;
	rc = WAL_ENOENT;
	for (int compressed = 1; compressed >= 0; compressed--) {
		wal_error err;
		wal_archive_object_path(system_id, name, compressed, object, sizeof(object));
		rc = wal_archive_fetch_object(spool, object, compressed, name, dest_path,
					      cfg->fetch_fsync, res, &err);
		if (rc == WAL_ENOENT)
			continue;
		if (rc == WAL_OK) {
			res->from_spool = 1;
		} else {
			/* a bad spooled copy is dropped; the archive is asked instead */
			snprintf(res->spool_note, sizeof(res->spool_note), "%s", err.msg);
			rc = WAL_ENOENT;
		}
		char full[4096];
		snprintf(full, sizeof(full), "%s/%s", cfg->spool_dir, object);
		unlink(full);
		if (res->from_spool)
			break;
	}
	wal_store_close(spool);
	if (rc != WAL_OK)
		return wal_fail(e, WAL_ENOENT, "%s: not in the spool", name->text);
	return WAL_OK;
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
	char base[WAL_NAME_MAX + 8], full[4096];
	wal_name name;
	uint64_t segno;
	if (entry[0] == '.')
		return WAL_OK;     /* a download under way, or left by a killed one: by age */
	snprintf(full, sizeof(full), "%s/%" PRIu64 "/%s/%s", scan->cfg->spool_dir, scan->system_id,
		 scan->dir, entry);
	snprintf(base, sizeof(base), "%s", entry);
	size_t len = strlen(base);
	if (len > 4 && strcmp(base + len - 4, WAL_LZ4_SUFFIX) == 0)
		base[len - 4] = '\0';
	int keep = wal_name_parse(base, &name, NULL) == WAL_OK && name.kind == WAL_NAME_SEGMENT &&
		   name.tli == scan->tli &&
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

/* Whether the spool has name in either form. */
static int spooled(const wal_config *cfg, uint64_t system_id, const wal_name *name)
{
	char object[512], full[4700];
	for (int compressed = 0; compressed < 2; compressed++) {
		wal_archive_object_path(system_id, name, compressed, object, sizeof(object));
		snprintf(full, sizeof(full), "%s/%s", cfg->spool_dir, object);
		if (access(full, F_OK) == 0)
			return 1;
	}
	return 0;
}

/* Downloads one object of the archive into the spool; WAL_ENOENT if absent. */
static wal_err spool_one(const wal_config *cfg, wal_store *archive, uint64_t system_id,
			 const wal_name *name, wal_error *e)
{
	char object[512], full[4096], dir[4096];
	int first = cfg->compress == WAL_COMPRESS_LZ4;
	wal_err rc = WAL_ENOENT;
	for (int attempt = 0; attempt < 2 && rc == WAL_ENOENT; attempt++) {
		int compressed = attempt == 0 ? first : !first;
		wal_archive_object_path(system_id, name, compressed, object, sizeof(object));
		snprintf(full, sizeof(full), "%s/%s", cfg->spool_dir, object);
		snprintf(dir, sizeof(dir), "%s", full);
		*strrchr(dir, '/') = '\0';
		if ((rc = wal_mkdir_p(dir, e)) != WAL_OK)
			return rc;
		wal_atomic_file f;
		if ((rc = wal_atomic_open(&f, full, 0600, e)) != WAL_OK)
			return rc;
		rc = wal_store_get(archive, object, &f.sink, e);
		if (rc == WAL_OK)
			rc = wal_atomic_commit(&f, WAL_ATOMIC_REPLACE, e);
		else
			wal_atomic_abort(&f);
	}
	return rc;
}

static void fetch_slice(const wal_config *cfg, uint64_t system_id, wal_name *targets,
			size_t count, size_t first, size_t step)
{
	wal_store *archive = NULL;
	wal_error err;
	if (wal_store_open(&archive, cfg, &err) != WAL_OK)
		return;
	for (size_t i = first; i < count; i += step)
		if (spool_one(cfg, archive, system_id, &targets[i], &err) != WAL_OK)
			break;     /* not archived yet, or the archive fails: stop here */
	wal_store_close(archive);
}

void wal_fetch_ahead_run(const wal_config *cfg, uint64_t system_id, const wal_name *name,
			 uint32_t seg_size)
{
	char path[4096];
	wal_store *spool = NULL;
	wal_error err;
	uint64_t segno;
	int lock_fd = -1;
	wal_name *targets = NULL;

	if (name->kind != WAL_NAME_SEGMENT || wal_name_segno(name, seg_size, &segno, NULL) != WAL_OK)
		return;
	snprintf(path, sizeof(path), "%s/%" PRIu64, cfg->spool_dir, system_id);
	if (wal_mkdir_p(path, &err) != WAL_OK)
		return;
	/* one prefetcher per cluster and spool at a time */
	snprintf(path, sizeof(path), "%s/%" PRIu64 "/" LOCK_NAME, cfg->spool_dir, system_id);
	lock_fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	if (lock_fd < 0 || flock(lock_fd, LOCK_EX | LOCK_NB) < 0)
		goto out;
	if (open_spool(cfg, &spool, &err) != WAL_OK)
		goto out;
	clean_spool(cfg, spool, system_id, name, segno, seg_size);

	targets = calloc((size_t)cfg->fetch_ahead, sizeof(*targets));
	size_t n = 0;
	for (int i = 1; targets && i <= cfg->fetch_ahead; i++) {
		char next[25];
		wal_segment_name(name->tli, segno + (uint64_t)i, seg_size, next);
		if (wal_name_parse(next, &targets[n], NULL) == WAL_OK &&
		    !spooled(cfg, system_id, &targets[n]))
			n++;
	}
	int workers = cfg->parallel < (int)n ? cfg->parallel : (int)n;
	if (workers <= 1) {
		if (n)
			fetch_slice(cfg, system_id, targets, n, 0, 1);
		goto out;
	}
	pid_t pids[64];
	int started = 0;
	for (int w = 0; w < workers && w < 64; w++) {
		pid_t pid = fork();
		if (pid == 0) {
			fetch_slice(cfg, system_id, targets, n, (size_t)w, (size_t)workers);
			_exit(0);
		}
		if (pid > 0)
			pids[started++] = pid;
	}
	for (int i = 0; i < started; i++)
		while (waitpid(pids[i], NULL, 0) < 0 && errno == EINTR)
			;
out:
	free(targets);
	wal_store_close(spool);
	if (lock_fd >= 0)
		close(lock_fd);
}

void wal_fetch_ahead_start(const wal_config *cfg, uint64_t system_id, const wal_name *name,
			   uint32_t seg_size)
{
	if (!wal_ahead_fetch_enabled(cfg) || name->kind != WAL_NAME_SEGMENT || !seg_size)
		return;
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
