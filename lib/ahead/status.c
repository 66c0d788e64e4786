/*
 * Status records in the spool: the last success and the last failure of
 * each program, one small text file per outcome, replaced atomically and
 * read back without trusting more than the spool's other files.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "ahead/spool.h"
#include "ahead/status.h"
#include "sys/fileio.h"

/* What a record may hold: its first line, the message, and room to spare. */
#define STATUS_READ_MAX 2048
#define PROG_MAX 16

static int prog_valid(const char *prog)
{
	size_t len = prog ? strlen(prog) : 0;
	if (len == 0 || len > PROG_MAX)
		return 0;
	for (size_t i = 0; i < len; i++)
		if (prog[i] < 'a' || prog[i] > 'z')
			return 0;
	return 1;
}

/*
 * Copies at most len bytes of src into out (cap bytes, NUL-terminated),
 * control characters made spaces (with no_space, for the file name on the
 * first line, they and spaces become '?'); cut short, it ends before a whole UTF-8
 * character, never inside one.
 */
static void clean_copy(char *out, size_t cap, const char *src, size_t len, int no_space)
{
	size_t n = len < cap - 1 ? len : cap - 1;
	/* the byte after the cut must start a character */
	if (n < len)
		while (n > 0 && ((unsigned char)src[n] & 0xC0) == 0x80)
			n--;
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)src[i];
		if (c < 0x20 || c == 0x7f || (no_space && c == ' '))
			out[i] = no_space ? '?' : ' ';
		else
			out[i] = (char)c;
	}
	out[n] = '\0';
}

wal_err wal_status_record(const wal_config *cfg, uint64_t system_id, const char *prog,
			  const char *file, int exit_code, const char *message, wal_error *e)
{
	char path[4400], text[64 + sizeof(((wal_status_event *)0)->file) +
			      sizeof(((wal_status_event *)0)->message)];
	char clean_file[sizeof(((wal_status_event *)0)->file)];
	char clean_msg[sizeof(((wal_status_event *)0)->message)];
	int dir;
	if (!prog_valid(prog) || !system_id)
		return wal_fail(e, WAL_EINVAL, "status record: bad program name or cluster");
	/* a trusted spool only; the status directory is made there if missing */
	wal_err rc = wal_spool_open(cfg, system_id, WAL_STATUS_DIR, 1, &dir, e);
	if (rc != WAL_OK)
		return rc;
	close(dir);
	clean_copy(clean_file, sizeof(clean_file), file ? file : "", file ? strlen(file) : 0, 1);
	clean_copy(clean_msg, sizeof(clean_msg), message ? message : "",
		   message ? strlen(message) : 0, 0);
	int len = snprintf(text, sizeof(text), "%lld %d %s\n%s\n", (long long)time(NULL), exit_code,
			   clean_file[0] ? clean_file : "-", clean_msg);
	snprintf(path, sizeof(path), "%s/%" PRIu64 "/" WAL_STATUS_DIR "/%s.%s", cfg->spool_dir,
		 system_id, prog, exit_code == 0 ? "success" : "failure");
	wal_atomic_file f;
	if ((rc = wal_atomic_open(&f, path, 0600, e)) != WAL_OK)
		return rc;
	rc = f.sink.write(&f.sink, text, (size_t)len, e);
	if (rc != WAL_OK) {
		wal_atomic_abort(&f);
		return rc;
	}
	/* advisory: a rename, so that no reader sees half a record, but no fsync */
	return wal_atomic_commit(&f, WAL_ATOMIC_REPLACE | WAL_ATOMIC_NO_SYNC, e);
}

/* Reads the record name in the status directory open as dir; 1 if there is a good one. */
static int status_load(int dir, const char *name, wal_status_event *ev)
{
	char buf[STATUS_READ_MAX + 1], file[sizeof(ev->file)];
	long long at;
	int code, used = 0;
	/* no link followed, no FIFO waited on; then only a file walarchive could have written */
	int fd = openat(dir, name, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
	if (fd < 0)
		return 0;
	ssize_t n = wal_spool_check_file(fd, name, NULL) == WAL_OK
			    ? wal_sys_read_full(fd, buf, STATUS_READ_MAX)
			    : -1;
	close(fd);
	if (n <= 0)
		return 0;
	buf[n] = '\0';
	if (sscanf(buf, "%lld %d %63s%n", &at, &code, file, &used) != 3 || buf[used] != '\n')
		return 0;
	memset(ev, 0, sizeof(*ev));
	ev->at = (time_t)at;
	ev->exit_code = code;
	if (strcmp(file, "-") != 0)
		snprintf(ev->file, sizeof(ev->file), "%s", file);
	const char *msg = buf + used + 1;
	clean_copy(ev->message, sizeof(ev->message), msg, strcspn(msg, "\n"), 0);
	return 1;
}

wal_err wal_status_read(const wal_config *cfg, uint64_t system_id, const char *prog, wal_status *st,
			wal_error *e)
{
	char name[PROG_MAX + 16];
	int dir;
	memset(st, 0, sizeof(*st));
	if (!prog_valid(prog) || !system_id)
		return wal_fail(e, WAL_EINVAL, "status record: bad program name or cluster");
	wal_err rc = wal_spool_open(cfg, system_id, WAL_STATUS_DIR, 0, &dir, e);
	if (rc != WAL_OK)
		return rc;
	snprintf(name, sizeof(name), "%s.success", prog);
	st->have_success = status_load(dir, name, &st->success);
	snprintf(name, sizeof(name), "%s.failure", prog);
	st->have_failure = status_load(dir, name, &st->failure);
	close(dir);
	if (!st->have_success && !st->have_failure)
		return wal_fail(e, WAL_ENOENT, "%s: no status recorded for cluster %" PRIu64, prog,
				system_id);
	return WAL_OK;
}
