/*
 * The prefetcher: a detached process that follows the position recovery
 * has reached and keeps the next fetch_ahead segments spooled, with worker
 * processes that keep their connections, for as long as its server runs.
 * Parallel transfers are child processes, each with its own connection:
 * no threads inside libcurl or libssh2.
 */
#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include "ahead/ahead.h"
#include "ahead/spool.h"
#include "ahead/status.h"
#include "sys/fileio.h"

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
#define JOB_SIZE 32 /* a segment name, NUL-padded; the last byte a status */

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
	if (wal_spool_open(cfg, system_id, NULL, 1, &cluster, NULL) != WAL_OK)
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
	ssize_t n = wal_spool_check_file(fd, POSITION_NAME, NULL) == WAL_OK
			    ? wal_sys_read(fd, line, sizeof(line) - 1)
			    : -1;
	close(fd);
	if (n <= 0)
		return 0;
	line[n] = '\0';
	line[strcspn(line, "\n")] = '\0';
	return wal_name_parse(line, out, NULL) == WAL_OK && out->kind == WAL_NAME_SEGMENT;
}

/*
 * The exit code walfetch gives for code (cmd/common.c), for the status
 * record of a prefetcher's failure, which has no exit code of its own.
 */
static int fetch_exit_code(wal_err code)
{
	switch (code) {
	case WAL_ECONFIG:
	case WAL_EAMBIGUOUS:
		return 3;
	case WAL_ECORRUPT:
		return 7;
	case WAL_EAUTH:
	case WAL_EHOSTKEY:
		return 8;
	default:
		return 6;
	}
}

/*
 * Records a worker's outcome for name in the status records ("prefetch"):
 * its stderr is /dev/null, so a fetch-ahead that keeps failing is seen
 * only there.  A segment not archived yet is neither success nor failure.
 */
static void prefetch_status(const wal_config *cfg, uint64_t system_id, const wal_name *name,
			    wal_err rc, const wal_error *err)
{
	char said[128];
	if (rc == WAL_OK) {
		snprintf(said, sizeof(said), "%s: fetched ahead into the spool", name->text);
		wal_status_record(cfg, system_id, "prefetch", name->text, 0, said, NULL);
	} else if (rc != WAL_ENOENT) {
		wal_status_record(cfg, system_id, "prefetch", name->text, fetch_exit_code(rc),
				  err->msg, NULL);
	}
}

/*
 * A worker: takes segment names off the shared job pipe (one record per
 * read, as each is written whole and under PIPE_BUF), spools each on its
 * connection, opened at the first and again after a failure, and reports.
 */
static void prefetch_worker(const wal_config *cfg, uint64_t system_id, uint32_t seg_size, int jobs,
			    int results)
{
	wal_store *archive = NULL;
	char job[JOB_SIZE];
	ssize_t got;
	for (;;) {
		do
			got = read(jobs, job, sizeof(job));
		while (got < 0 && errno == EINTR);
		if (got != (ssize_t)sizeof(job))
			break; /* the prefetcher is done */
		wal_name name;
		wal_error err;
		job[JOB_SIZE - 1] = '\0';
		if (wal_name_parse(job, &name, NULL) != WAL_OK)
			continue;
		wal_err rc = archive ? WAL_OK : wal_store_open(&archive, cfg, &err);
		if (rc == WAL_OK)
			rc = wal_spool_fetch(cfg, archive, system_id, seg_size, &name, &err);
		if (rc != WAL_OK && rc != WAL_ENOENT) {
			wal_store_close(archive); /* perhaps the connection: a new one next time */
			archive = NULL;
		}
		prefetch_status(cfg, system_id, &name, rc, &err);
		job[JOB_SIZE - 1] = (char)(rc == WAL_OK	      ? JOB_DONE
					   : rc == WAL_ENOENT ? JOB_ABSENT
							      : JOB_FAILED);
		if (wal_sys_write_all(results, job, sizeof(job)) < 0)
			break;
	}
	wal_store_close(archive);
}

typedef struct prefetcher {
	const wal_config *cfg;
	uint64_t system_id;
	uint32_t seg_size;
	int cluster;	    /* the cluster's directory in the spool */
	char datadir[4096]; /* the data directory it serves (absolute), or "" */
	dev_t datadir_dev;  /* ... and the directory it was when the prefetcher started */
	ino_t datadir_ino;
	pid_t postmaster; /* its server (postmaster.pid), or 0 if none ran */
	long long next_check;
	int gone;	   /* the data directory or its server is gone: stop */
	int jobs, results; /* write end of the jobs, read end of the results */
	pid_t pids[64];
	int workers;
	wal_name *inflight; /* sent to the workers, not reported yet */
	size_t n_inflight, cap_inflight;
	uint32_t gate_tli; /* nothing from gate_segno on, until gate_until */
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
			prefetch_worker(p->cfg, p->system_id, p->seg_size, jobs[0], results[1]);
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
			p->pids[i] = -1; /* reaped */
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
		    wal_spool_has(p->cluster, &next))
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
			return; /* the pipe is full: later */
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
		pid = -pid; /* a single-user backend writes its pid negated */
	return pid > 0 && process_runs((pid_t)pid) ? (pid_t)pid : 0;
}

/* Notes what p serves; 0 if datadir cannot be found. */
static int watch_start(prefetcher *p, const char *datadir)
{
	struct stat st;
	if (!datadir)
		return 1; /* nothing to watch (a test of the prefetcher alone) */
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
			wal_spool_clean(p->cfg, p->cluster, pos, segno, p->seg_size);
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
			break; /* its segment would never be reported: start over later */
		struct pollfd pfd = { .fd = p->results, .events = POLLIN };
		int ready = poll(&pfd, 1, POLL_MS);
		if (ready < 0 && errno != EINTR)
			break;
		if (ready <= 0)
			continue;
		char job[JOB_SIZE];
		ssize_t got = wal_sys_read_full(p->results, job, sizeof(job));
		if (got != (ssize_t)sizeof(job))
			break; /* every worker has gone: stop, the next walfetch starts over */
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
	if (wal_spool_open(cfg, system_id, NULL, 1, &p.cluster, NULL) != WAL_OK)
		return;
	/* one prefetcher per cluster and spool at a time */
	lock_fd = openat(p.cluster, LOCK_NAME, O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (lock_fd < 0)
		goto out;
	while (watch_alive(&p) && flock(lock_fd, LOCK_EX | LOCK_NB) == 0) {
		follow(&p, &pos); /* which reads the position first */
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
		return; /* no trusted place for it: no prefetcher either */
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
