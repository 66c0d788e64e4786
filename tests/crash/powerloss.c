/*
 * LD_PRELOAD shim for the power-loss simulation in
 * tests/integration/80-crash.sh.  It records, in the order they happen,
 * the calls that decide what survives a power loss:
 *   C <ino> <path>            open(O_CREAT) made a new file
 *   M <path>                  a directory was made
 *   R <ino> <from> <to>       a rename (renameat2 too, whatever the flags)
 *   L <ino> <from> <to>       a hard link
 *   U <path>                  an unlink or rmdir
 *   F <ino> <snapshot>        fsync/fdatasync of a regular file: its content
 *                             at that moment is copied to <snapshot>
 *   D <path>                  fsync of a directory
 * Only calls that succeeded are logged.  Each line is one write(2) to
 * $POWERLOSS_LOG opened O_APPEND, so lines of several processes never mix.
 * Snapshots go to $POWERLOSS_SNAP/.  Paths are made absolute.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/sendfile.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <unistd.h>

#define REAL(name)                                                                                 \
	static __typeof__(name) *real_##name;                                                      \
	if (!real_##name)                                                                          \
	real_##name = (__typeof__(name) *)dlsym(RTLD_NEXT, #name)

static int log_fd = -1;
static unsigned long snap_seq;

static void log_line(const char *fmt, ...)
{
	char line[3 * PATH_MAX + 64];
	va_list ap;
	int n;

	if (log_fd < 0) {
		const char *path = getenv("POWERLOSS_LOG");
		if (!path)
			return;
		log_fd = (int)syscall(SYS_open, path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC,
				      0600);
		if (log_fd < 0)
			return;
	}
	va_start(ap, fmt);
	n = vsnprintf(line, sizeof line, fmt, ap);
	va_end(ap);
	if (n > 0 && n < (int)sizeof line)
		(void)!write(log_fd, line, (size_t)n);
}

/* The absolute form of path relative to dirfd. */
static void absolute(int dirfd, const char *path, char *out)
{
	char base[PATH_MAX / 2], link[64];
	ssize_t n;

	if (path[0] == '/') {
		snprintf(out, PATH_MAX, "%s", path);
		return;
	}
	if (dirfd == AT_FDCWD) {
		if (!getcwd(base, sizeof base))
			strcpy(base, "?");
	} else {
		snprintf(link, sizeof link, "/proc/self/fd/%d", dirfd);
		n = readlink(link, base, sizeof base - 1);
		base[n > 0 ? n : 0] = '\0';
	}
	snprintf(out, PATH_MAX, "%s/%s", base, path);
}

static unsigned long ino_of(int dirfd, const char *path)
{
	struct stat st;

	return fstatat(dirfd, path, &st, AT_SYMLINK_NOFOLLOW) == 0 ? (unsigned long)st.st_ino : 0;
}

static void after_open(int fd, int dirfd, const char *path, int flags, int existed)
{
	char abs[PATH_MAX + 8];
	struct stat st;

	if (fd < 0 || !(flags & O_CREAT) || existed || fstat(fd, &st) != 0)
		return;
	absolute(dirfd, path, abs);
	log_line("C %lu %s\n", (unsigned long)st.st_ino, abs);
}

static int get_mode(int flags, va_list ap)
{
	return (flags & (O_CREAT | __O_TMPFILE)) ? va_arg(ap, int) : 0;
}

int open(const char *path, int flags, ...)
{
	REAL(open);
	va_list ap;
	va_start(ap, flags);
	int mode = get_mode(flags, ap);
	va_end(ap);
	int existed = (flags & O_CREAT) && ino_of(AT_FDCWD, path) != 0;
	int fd = real_open(path, flags, mode);
	after_open(fd, AT_FDCWD, path, flags, existed);
	return fd;
}

int open64(const char *path, int flags, ...)
{
	REAL(open64);
	va_list ap;
	va_start(ap, flags);
	int mode = get_mode(flags, ap);
	va_end(ap);
	int existed = (flags & O_CREAT) && ino_of(AT_FDCWD, path) != 0;
	int fd = real_open64(path, flags, mode);
	after_open(fd, AT_FDCWD, path, flags, existed);
	return fd;
}

int openat(int dirfd, const char *path, int flags, ...)
{
	REAL(openat);
	va_list ap;
	va_start(ap, flags);
	int mode = get_mode(flags, ap);
	va_end(ap);
	int existed = (flags & O_CREAT) && ino_of(dirfd, path) != 0;
	int fd = real_openat(dirfd, path, flags, mode);
	after_open(fd, dirfd, path, flags, existed);
	return fd;
}

int openat64(int dirfd, const char *path, int flags, ...)
{
	REAL(openat64);
	va_list ap;
	va_start(ap, flags);
	int mode = get_mode(flags, ap);
	va_end(ap);
	int existed = (flags & O_CREAT) && ino_of(dirfd, path) != 0;
	int fd = real_openat64(dirfd, path, flags, mode);
	after_open(fd, dirfd, path, flags, existed);
	return fd;
}

static void log_move(char kind, int fromfd, const char *from, int tofd, const char *to)
{
	char a[PATH_MAX + 8], b[PATH_MAX + 8];

	absolute(fromfd, from, a);
	absolute(tofd, to, b);
	log_line("%c %lu %s %s\n", kind, ino_of(tofd, to), a, b);
}

int rename(const char *from, const char *to)
{
	REAL(rename);
	int rc = real_rename(from, to);
	if (rc == 0)
		log_move('R', AT_FDCWD, from, AT_FDCWD, to);
	return rc;
}

int renameat(int fromfd, const char *from, int tofd, const char *to)
{
	REAL(renameat);
	int rc = real_renameat(fromfd, from, tofd, to);
	if (rc == 0)
		log_move('R', fromfd, from, tofd, to);
	return rc;
}

int renameat2(int fromfd, const char *from, int tofd, const char *to, unsigned int flags)
{
	REAL(renameat2);
	int rc = real_renameat2(fromfd, from, tofd, to, flags);
	if (rc == 0)
		log_move('R', fromfd, from, tofd, to);
	return rc;
}

int link(const char *from, const char *to)
{
	REAL(link);
	int rc = real_link(from, to);
	if (rc == 0)
		log_move('L', AT_FDCWD, from, AT_FDCWD, to);
	return rc;
}

int linkat(int fromfd, const char *from, int tofd, const char *to, int flags)
{
	REAL(linkat);
	int rc = real_linkat(fromfd, from, tofd, to, flags);
	if (rc == 0)
		log_move('L', fromfd, from, tofd, to);
	return rc;
}

static void log_path(char kind, int dirfd, const char *path)
{
	char a[PATH_MAX + 8];

	absolute(dirfd, path, a);
	log_line("%c %s\n", kind, a);
}

int unlink(const char *path)
{
	REAL(unlink);
	int rc = real_unlink(path);
	if (rc == 0)
		log_path('U', AT_FDCWD, path);
	return rc;
}

int unlinkat(int dirfd, const char *path, int flags)
{
	REAL(unlinkat);
	int rc = real_unlinkat(dirfd, path, flags);
	if (rc == 0)
		log_path('U', dirfd, path);
	return rc;
}

int rmdir(const char *path)
{
	REAL(rmdir);
	int rc = real_rmdir(path);
	if (rc == 0)
		log_path('U', AT_FDCWD, path);
	return rc;
}

int mkdir(const char *path, mode_t mode)
{
	REAL(mkdir);
	int rc = real_mkdir(path, mode);
	if (rc == 0)
		log_path('M', AT_FDCWD, path);
	return rc;
}

int mkdirat(int dirfd, const char *path, mode_t mode)
{
	REAL(mkdirat);
	int rc = real_mkdirat(dirfd, path, mode);
	if (rc == 0)
		log_path('M', dirfd, path);
	return rc;
}

/* After a successful sync of fd: snapshot a file, or note a directory. */
static void synced(int fd)
{
	struct stat st;
	char link[64], path[PATH_MAX], snap[PATH_MAX];
	const char *dir = getenv("POWERLOSS_SNAP");
	ssize_t n;

	if (fstat(fd, &st) != 0)
		return;
	if (S_ISDIR(st.st_mode)) {
		snprintf(link, sizeof link, "/proc/self/fd/%d", fd);
		n = readlink(link, path, sizeof path - 1);
		path[n > 0 ? n : 0] = '\0';
		log_line("D %s\n", path);
		return;
	}
	if (!S_ISREG(st.st_mode) || !dir)
		return;
	snprintf(snap, sizeof snap, "%s/%d.%lu", dir, (int)getpid(), ++snap_seq);
	int out = (int)syscall(SYS_open, snap, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (out < 0)
		return;
	/* read through a new descriptor: fd may be write-only */
	snprintf(link, sizeof link, "/proc/self/fd/%d", fd);
	int in = (int)syscall(SYS_open, link, O_RDONLY | O_CLOEXEC);
	off_t off = 0;
	while (in >= 0 && off < st.st_size &&
	       sendfile(out, in, &off, (size_t)(st.st_size - off)) > 0)
		;
	if (in >= 0)
		close(in);
	close(out);
	log_line("F %lu %s\n", (unsigned long)st.st_ino, snap);
}

int fsync(int fd)
{
	REAL(fsync);
	int rc = real_fsync(fd);
	if (rc == 0)
		synced(fd);
	return rc;
}

int fdatasync(int fd)
{
	REAL(fdatasync);
	int rc = real_fdatasync(fd);
	if (rc == 0)
		synced(fd);
	return rc;
}
