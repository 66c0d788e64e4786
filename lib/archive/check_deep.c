/*
 * walcheck --deep: every object read and verified with walfetch's own code
 * (wal_archive_restore) into a sink that keeps nothing, by worker processes
 * with a store connection each, as push-ahead's batch runs (libcurl and
 * libssh2 handles are never shared across a fork).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>
#include "archive/archive.h"
#include "archive/check.h"

static wal_err discard_write(wal_sink *sink, const void *buf, size_t len, wal_error *e)
{
	(void)sink, (void)buf, (void)len, (void)e;
	return WAL_OK;
}

static wal_err discard_reset(wal_sink *sink, wal_error *e)
{
	(void)sink, (void)e;
	return WAL_OK;
}

/* Verifies one object; a failure to reach the archive is not a verdict on it. */
static wal_err verify_one(wal_store *store, const wal_check_object *o, uint64_t system_id,
			  const wal_age_keys *ids, int *bad, wal_error *e)
{
	wal_sink discard = { discard_write, discard_reset };
	uint32_t seg_size;
	wal_err rc = wal_archive_restore(store, o->path, o->framed, &o->name, system_id, 0, ids,
					 &discard, &seg_size, e);
	*bad = rc == WAL_ECORRUPT || rc == WAL_ENOTWAL || rc == WAL_EFOREIGN || rc == WAL_ENOENT;
	return *bad ? WAL_OK : rc;
}

/* A worker's stripe of objs, reported as lines on fd:
 * "B index code why" for a bad object, "E code why" to stop, "V count" at the end. */
static int worker(const wal_config *cfg, uint64_t system_id, const wal_age_keys *ids,
		  const wal_check_object *objs, size_t n, int w, int workers, int fd)
{
	wal_store *store = NULL;
	wal_error err;
	char line[1024];
	size_t verified = 0;
	int len;
	wal_err rc = wal_store_open(&store, cfg, &err);
	for (size_t i = (size_t)w; rc == WAL_OK && i < n; i += (size_t)workers) {
		int bad;
		rc = verify_one(store, &objs[i], system_id, ids, &bad, &err);
		if (rc == WAL_OK && bad) {
			/* one write under PIPE_BUF bytes: lines from workers never mix */
			len = snprintf(line, sizeof(line), "B %zu %d %.900s\n", i, (int)err.code,
				       err.msg);
			if (write(fd, line,
				  (size_t)(len < (int)sizeof(line) ? len : (int)sizeof(line) - 1)) <
			    0)
				rc = WAL_EIO;
		} else if (rc == WAL_OK) {
			verified++;
		}
	}
	if (rc != WAL_OK)
		len = snprintf(line, sizeof(line), "E %d %.900s\n", (int)rc, err.msg);
	else
		len = snprintf(line, sizeof(line), "V %zu\n", verified);
	int wrote = write(fd, line,
			  (size_t)(len < (int)sizeof(line) ? len : (int)sizeof(line) - 1)) > 0;
	wal_store_close(store);
	return rc == WAL_OK && wrote ? 0 : 1;
}

wal_err wal_check_deep(const wal_config *cfg, uint64_t system_id, const wal_check_object *objs,
		       size_t n, int workers, wal_check_bad_fn bad, void *arg, size_t *verified,
		       wal_error *e)
{
	pid_t pids[64];
	int started = 0, fds[2], reports = 0, have_ids;
	wal_age_keys ids;
	wal_err rc = WAL_OK;
	char line[1100];

	*verified = 0;
	if (n == 0)
		return WAL_OK;
	/* encrypted objects are verified only with the identity that opens them */
	if ((rc = wal_archive_identities(cfg, &ids, &have_ids, e)) != WAL_OK)
		return rc;
	if (workers < 1)
		workers = 1;
	if (workers > (int)(sizeof(pids) / sizeof(pids[0])))
		workers = (int)(sizeof(pids) / sizeof(pids[0]));
	if ((size_t)workers > n)
		workers = (int)n;
	if (pipe(fds) < 0) {
		wal_age_keys_wipe(&ids);
		return wal_fail_errno(e, WAL_EIO, errno,
				      "cannot make a pipe for the verification workers");
	}
	fflush(NULL);
	for (int w = 0; w < workers; w++) {
		pid_t pid = fork();
		if (pid == 0) {
			close(fds[0]);
			_exit(worker(cfg, system_id, have_ids ? &ids : NULL, objs, n, w, workers,
				     fds[1]));
		}
		if (pid < 0) {
			rc = wal_fail_errno(e, WAL_EIO, errno,
					    "cannot start a verification worker");
			break;
		}
		pids[started++] = pid;
	}
	close(fds[1]);
	FILE *in = fdopen(fds[0], "r");
	while (in && fgets(line, sizeof(line), in)) {
		line[strcspn(line, "\n")] = '\0';
		char *end;
		if (line[0] == 'B') {
			size_t index = strtoull(line + 2, &end, 10);
			int code = (int)strtol(end, &end, 10);
			if (index < n)
				bad(arg, index, (wal_err)code, *end ? end + 1 : "");
		} else if (line[0] == 'V') {
			*verified += strtoull(line + 2, NULL, 10);
			reports++;
		} else if (line[0] == 'E') {
			int code = (int)strtol(line + 2, &end, 10);
			if (rc == WAL_OK)
				rc = wal_fail(e, (wal_err)code, "%s", *end ? end + 1 : "");
			reports++;
		}
	}
	if (in)
		fclose(in);
	else
		close(fds[0]);
	for (int i = 0; i < started; i++)
		while (waitpid(pids[i], NULL, 0) < 0 && errno == EINTR)
			;
	wal_age_keys_wipe(&ids);
	if (rc == WAL_OK && reports < workers)
		rc = wal_fail(e, WAL_EIO, "a verification worker ended without reporting");
	return rc;
}
