/*
 * replinit internals: atomic files, removing trees, running pg_basebackup
 * and pg_ctl with their output forwarded, password files, install paths.
 */
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <libgen.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "sys/fileio.h"
#include "util.h"

extern char **environ;

void rpl_say(const rpl_out *out, rpl_msg kind, const char *fmt, ...)
{
	char line[2048];
	va_list ap;

	if (out == NULL || out->fn == NULL)
		return;
	va_start(ap, fmt);
	vsnprintf(line, sizeof line, fmt, ap);
	va_end(ap);
	out->fn(out->ctx, kind, line);
}

void rpl_fmt(char *buf, size_t size, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(buf, size, fmt, ap);
	va_end(ap);
}

wal_err rpl_read_file(const char *path, char **text, wal_error *e)
{
	FILE *f = fopen(path, "r");
	char *buf = NULL;
	size_t len = 0, cap = 0;
	wal_err rc = WAL_OK;

	*text = NULL;
	if (f == NULL)
		return wal_fail_errno(e, WAL_OK, errno, "%s: cannot open", path);
	for (;;) {
		size_t got;
		if (cap - len < 4096) {
			char *grown = realloc(buf, cap + 65536);
			if (grown == NULL) {
				rc = wal_fail(e, WAL_ENOMEM, "%s: out of memory", path);
				goto out;
			}
			buf = grown;
			cap += 65536;
		}
		got = fread(buf + len, 1, cap - len - 1, f);
		len += got;
		if (got == 0)
			break;
	}
	if (ferror(f)) {
		rc = wal_fail_errno(e, WAL_OK, errno, "%s: cannot read", path);
		goto out;
	}
	buf[len] = '\0';
	*text = buf;
	buf = NULL;
out:
	free(buf);
	fclose(f);
	return rc;
}

/* Links path to a name that nobody has yet: base, else base.1, base.2, ... */
static wal_err link_backup(const char *path, const char *base, char *out, size_t size, wal_error *e)
{
	int i;

	for (i = 0; i < 1000; i++) {
		if (i == 0)
			rpl_fmt(out, size, "%s", base);
		else
			rpl_fmt(out, size, "%s.%d", base, i);
		/* link() never replaces: two runs in one second get two names */
		if (wal_sys_link(path, out) == 0)
			return WAL_OK;
		if (errno != EEXIST)
			return wal_fail_errno(e, WAL_OK, errno, "%s: cannot keep a backup as %s",
					      path, out);
	}
	return wal_fail(e, WAL_EEXIST, "%s: cannot keep a backup: %s and %d more names are taken",
			path, base, i - 1);
}

wal_err rpl_write_atomic(const char *path, const char *text, mode_t mode, int keep,
			 const char *backup, char *backup_out, size_t backup_size, wal_error *e)
{
	wal_atomic_file f;
	struct stat old, now;
	int have_old = stat(path, &old) == 0;
	char backup_name[PATH_MAX + 64] = "";
	wal_err rc;

	if (backup_out && backup_size)
		backup_out[0] = '\0';
	/* created 0600 (umask-proof, O_EXCL), then given its final mode before any byte is in it */
	if ((rc = wal_atomic_open(&f, path, 0600, e)) != WAL_OK)
		return rc;
	if (keep && have_old) {
		if (fchmod(f.fd, old.st_mode & 07777) != 0) {
			rc = wal_fail_errno(e, WAL_OK, errno, "%s: cannot set mode", f.tmp_path);
			goto fail;
		}
		/* root editing postgres' files: the server must still own what it reads */
		if (geteuid() == 0 && fchown(f.fd, old.st_uid, old.st_gid) != 0) {
			rc = wal_fail_errno(e, WAL_OK, errno, "%s: cannot set owner", f.tmp_path);
			goto fail;
		}
	} else if (fchmod(f.fd, mode) != 0) {
		rc = wal_fail_errno(e, WAL_OK, errno, "%s: cannot set mode", f.tmp_path);
		goto fail;
	}
	if (wal_sys_write_all(f.fd, text, strlen(text)) != 0) {
		rc = wal_fail_errno(e, WAL_OK, errno, "%s: cannot write", f.tmp_path);
		goto fail;
	}
	if (have_old && backup != NULL &&
	    (rc = link_backup(path, backup, backup_name, sizeof backup_name, e)) != WAL_OK)
		goto fail;
	rc = wal_atomic_commit(&f, WAL_ATOMIC_REPLACE, e);
	if (rc != WAL_OK) {
		/*
		 * the backup goes only if the rename did not happen (a failed
		 * directory fsync comes after it)
		 */
		if (backup_name[0] && stat(path, &now) == 0 && now.st_ino == old.st_ino &&
		    now.st_dev == old.st_dev)
			unlink(backup_name);
		return rc;
	}
	if (backup_out && backup_size)
		rpl_fmt(backup_out, backup_size, "%s", backup_name);
	return WAL_OK;
fail:
	wal_atomic_abort(&f);
	return rc;
}

static int remove_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)ftw;
	if (flag == FTW_DP)
		return rmdir(path) != 0 && errno != ENOENT ? -1 : 0;
	return unlink(path) != 0 && errno != ENOENT ? -1 : 0;
}

wal_err rpl_remove_tree(const char *path, wal_error *e)
{
	struct stat st;

	if (lstat(path, &st) != 0)
		return errno == ENOENT ? WAL_OK
				       : wal_fail_errno(e, WAL_OK, errno, "%s: cannot stat", path);
	if (nftw(path, remove_one, 32, FTW_DEPTH | FTW_PHYS) != 0)
		return wal_fail_errno(e, WAL_OK, errno, "%s: cannot remove", path);
	return WAL_OK;
}

wal_err rpl_read_password_file(const char *path, char *buf, size_t size, const rpl_out *out,
			       wal_error *e)
{
	FILE *f;
	struct stat st;
	size_t len;
	wal_err rc = WAL_OK;

	f = fopen(path, "r");
	if (f == NULL)
		return wal_fail_errno(e, WAL_OK, errno, "password file %s: cannot open", path);
	if (fstat(fileno(f), &st) == 0 && (st.st_mode & 077))
		rpl_say(out, RPL_MSG_WARNING,
			"password file %s: others can read it (mode %04o); "
			"chmod 600 it",
			path, (unsigned)(st.st_mode & 07777));
	if (fgets(buf, (int)size, f) == NULL) {
		rc = wal_fail(e, WAL_EINVAL, "password file %s: empty", path);
		goto out;
	}
	len = strcspn(buf, "\r\n");
	buf[len] = '\0';
	if (len == 0)
		rc = wal_fail(e, WAL_EINVAL, "password file %s: first line is empty", path);
out:
	fclose(f);
	return rc;
}

int rpl_run(char *const argv[], char *const env[], int show, const rpl_out *out, rpl_child_out *co,
	    wal_error *e)
{
	int pipe_fd[2];
	pid_t pid;
	int status;
	size_t tail_len = 0;

	co->tail[0] = '\0';
	if (pipe2(pipe_fd, O_CLOEXEC) != 0) {
		wal_fail_errno(e, WAL_OK, errno, "%s: cannot make a pipe", argv[0]);
		return -1;
	}
	pid = fork();
	if (pid < 0) {
		wal_fail_errno(e, WAL_OK, errno, "%s: cannot fork", argv[0]);
		close(pipe_fd[0]);
		close(pipe_fd[1]);
		return -1;
	}
	if (pid == 0) {
		int i;
		int devnull = open("/dev/null", O_RDONLY);
		if (devnull >= 0)
			dup2(devnull, 0);
		dup2(pipe_fd[1], 1);
		dup2(pipe_fd[1], 2);
		for (i = 0; env && env[i]; i++)
			putenv(env[i]);
		execv(argv[0], argv);
		fprintf(stderr, "cannot run %s: %s\n", argv[0], strerror(errno));
		_exit(127);
	}
	close(pipe_fd[1]);
	for (;;) {
		char chunk[1024];
		ssize_t got = read(pipe_fd[0], chunk, sizeof chunk - 1);
		if (got < 0 && errno == EINTR)
			continue;
		if (got <= 0)
			break;
		chunk[got] = '\0';
		if (show && out && out->fn)
			out->fn(out->ctx, RPL_MSG_OUTPUT, chunk);
		/* keep the last part for the error message */
		if (tail_len + (size_t)got >= sizeof co->tail) {
			size_t drop = tail_len + (size_t)got - (sizeof co->tail - 1);
			if (drop > tail_len)
				drop = tail_len;
			memmove(co->tail, co->tail + drop, tail_len - drop);
			tail_len -= drop;
		}
		if ((size_t)got > sizeof co->tail - 1 - tail_len)
			got = (ssize_t)(sizeof co->tail - 1 - tail_len);
		memcpy(co->tail + tail_len, chunk, (size_t)got);
		tail_len += (size_t)got;
		co->tail[tail_len] = '\0';
	}
	close(pipe_fd[0]);
	while (waitpid(pid, &status, 0) < 0) {
		if (errno != EINTR) {
			wal_fail_errno(e, WAL_OK, errno, "%s: cannot wait", argv[0]);
			return -1;
		}
	}
	if (WIFEXITED(status))
		return WEXITSTATUS(status);
	return 256 + WTERMSIG(status);
}

void rpl_self_dir(char *buf, size_t size)
{
	char exe[PATH_MAX];
	ssize_t len = readlink("/proc/self/exe", exe, sizeof exe - 1);

	if (len <= 0) {
		buf[0] = '\0';
		return;
	}
	exe[len] = '\0';
	snprintf(buf, size, "%s", dirname(exe));
}

/* Appends word to buf at n for sh, with % doubled for the server's %p/%f substitution. */
static size_t command_word(char *buf, size_t n, size_t size, const char *word)
{
	const char *p;
	int quote = *word == '\0';

	for (p = word; *p && !quote; p++)
		quote = !((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
			  (*p >= '0' && *p <= '9') || strchr("_./-,:@+=%", *p));
	if (quote && n + 1 < size)
		buf[n++] = '\'';
	for (p = word; *p && n + 5 < size; p++) {
		if (*p == '\'' && quote) {
			memcpy(buf + n, "'\\''", 4);
			n += 4;
			continue;
		}
		if (*p == '%')
			buf[n++] = '%';
		buf[n++] = *p;
	}
	if (quote && n + 1 < size)
		buf[n++] = '\'';
	if (n < size)
		buf[n] = '\0';
	return n;
}

void rpl_default_command(const char *prog, const char *args, const char *config_file, char *buf,
			 size_t size)
{
	char dir[PATH_MAX], path[PATH_MAX + 64];
	size_t n;

	if (size == 0)
		return;
	rpl_self_dir(dir, sizeof dir);
	snprintf(path, sizeof path, "%s/%s", dir, prog);
	/* on the usual PATH the bare name reads best; elsewhere the server needs the path */
	if (dir[0] == '\0' || access(path, X_OK) != 0 || strcmp(dir, "/usr/bin") == 0 ||
	    strcmp(dir, "/bin") == 0 || strcmp(dir, "/usr/local/bin") == 0)
		snprintf(path, sizeof path, "%s", prog);
	buf[0] = '\0';
	n = command_word(buf, 0, size, path);
	if (config_file && n + 4 < size) {
		memcpy(buf + n, " -c ", 5);
		n = command_word(buf, n + 4, size, config_file);
	}
	if (n < size)
		snprintf(buf + n, size - n, " %s", args);
}

int rpl_program_major(const char *path)
{
	char *argv[] = { (char *)path, "--version", NULL };
	rpl_child_out co;
	wal_error e;
	const char *p;

	if (access(path, X_OK) != 0)
		return -1;
	if (rpl_run(argv, NULL, 0, NULL, &co, &e) != 0)
		return -1;
	p = strstr(co.tail, "(PostgreSQL) ");
	if (p == NULL)
		return -1;
	return atoi(p + 13);
}

/* Whether the program at path runs as major (or newer when newer_ok). */
static int program_fits(const char *path, int major, int newer_ok)
{
	int have;

	if (access(path, X_OK) != 0)
		return 0;
	have = rpl_program_major(path);
	return newer_ok ? have >= major : have == major;
}

int rpl_find_program(const char *prog, const char *pg_bin, int major, int newer_ok, char *buf,
		     size_t size)
{
	const char *path, *end;
	int m;

	if (pg_bin) {
		snprintf(buf, size, "%s/%s", pg_bin, prog);
		if (program_fits(buf, major, newer_ok))
			return 1;
	}
	for (m = major; m <= (newer_ok ? 30 : major); m++) {
		snprintf(buf, size, "/usr/lib/postgresql/%d/bin/%s", m, prog);
		if (program_fits(buf, major, newer_ok))
			return 1;
	}
	/* then PATH, e.g. a PGDG build in /usr/pgsql-18/bin or a private one */
	for (path = getenv("PATH"); path && *path; path = *end ? end + 1 : end) {
		end = strchr(path, ':');
		if (end == NULL)
			end = path + strlen(path);
		if (end > path && path[0] == '/' &&
		    (size_t)snprintf(buf, size, "%.*s/%s", (int)(end - path), path, prog) < size &&
		    program_fits(buf, major, newer_ok))
			return 1;
	}
	buf[0] = '\0';
	return 0;
}
