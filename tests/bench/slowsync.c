/*
 * A disk whose flush is slow, for tests/bench/run.sh: preloaded
 * (LD_PRELOAD) into walpush and pgbackrest alike, it makes every fsync and
 * fdatasync wait SLOWSYNC_MS milliseconds (default 10) before it flushes,
 * as a disk with a slow write-cache flush does.  Built by run.sh with cc.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <stdlib.h>
#include <time.h>

static void slow(void)
{
	const char *ms = getenv("SLOWSYNC_MS");
	long n = ms ? atol(ms) : 10;
	struct timespec ts = { n / 1000, (n % 1000) * 1000000L };
	while (nanosleep(&ts, &ts) != 0)
		;
}

int fsync(int fd)
{
	static int (*real)(int);
	if (!real)
		real = (int (*)(int))dlsym(RTLD_NEXT, "fsync");
	slow();
	return real(fd);
}

int fdatasync(int fd)
{
	static int (*real)(int);
	if (!real)
		real = (int (*)(int))dlsym(RTLD_NEXT, "fdatasync");
	slow();
	return real(fd);
}
