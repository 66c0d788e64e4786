/*
 * The test seam behind the system calls of fileio.c and the network
 * transports: fail the Nth call (armed by a test, or for a whole process by
 * WALARCHIVE_FAULT="N:ERRNO[:KIND]"), and record the calls that succeed.
 * Compiled only with WALARCHIVE_TEST_SEAMS (the tests' build): a release
 * program carries no switch that changes its behaviour from the
 * environment.
 */
#ifdef WALARCHIVE_TEST_SEAMS
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "sys/fileio.h"

/* ---- fault seam ---------------------------------------------------------- */

static long fault_nth; /* fail the call with this count; 0 = off */
static int fault_errno;
static wal_sys_call fault_kind = WAL_SYS_COUNT;
static long fault_calls;
static int fault_env_read;

static const char *const call_names[WAL_SYS_COUNT] = { "open", "read",	 "write", "fsync", "rename",
						       "link", "unlink", "mkdir", "send",  "recv" };

static int errno_by_name(const char *name)
{
	static const struct {
		const char *name;
		int value;
	} names[] = {
		{ "ENOSPC", ENOSPC },	    { "EIO", EIO },	{ "EACCES", EACCES },
		{ "EDQUOT", EDQUOT },	    { "EROFS", EROFS }, { "ECONNRESET", ECONNRESET },
		{ "ETIMEDOUT", ETIMEDOUT }, { "EPIPE", EPIPE }, { "ENOMEM", ENOMEM },
		{ "EINTR", EINTR },
	};
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
		if (strcmp(name, names[i].name) == 0)
			return names[i].value;
	return atoi(name);
}

/* WALARCHIVE_FAULT="N:ERRNO[:KIND]" arms the seam for a whole process run. */
static void fault_from_env(void)
{
	fault_env_read = 1;
	const char *spec = getenv("WALARCHIVE_FAULT");
	if (!spec || !*spec)
		return;
	char copy[64];
	snprintf(copy, sizeof(copy), "%s", spec);
	char *nth = strtok(copy, ":");
	char *err = strtok(NULL, ":");
	char *kind = strtok(NULL, ":");
	wal_sys_call k = WAL_SYS_COUNT;
	if (kind)
		for (int i = 0; i < WAL_SYS_COUNT; i++)
			if (strcmp(kind, call_names[i]) == 0)
				k = (wal_sys_call)i;
	wal_sys_fault_arm(nth ? atol(nth) : 0, err ? errno_by_name(err) : EIO, k);
}

void wal_sys_fault_arm(long nth, int err, wal_sys_call kind)
{
	fault_env_read = 1;
	fault_nth = nth;
	fault_errno = err;
	fault_kind = kind;
	fault_calls = 0;
}

long wal_sys_fault_calls(void)
{
	return __atomic_load_n(&fault_calls, __ATOMIC_SEQ_CST);
}

int wal_sys_fault(wal_sys_call kind)
{
	if (!fault_env_read)
		fault_from_env();
	if (fault_kind != WAL_SYS_COUNT && kind != fault_kind)
		return 0;
	long call = __atomic_add_fetch(&fault_calls, 1, __ATOMIC_SEQ_CST);
	if (fault_nth > 0 && call == fault_nth)
		return fault_errno;
	return 0;
}

/* ---- call recorder ------------------------------------------------------- */

static wal_sys_recorder recorder;
static void *recorder_arg;

void wal_sys_record(wal_sys_recorder fn, void *arg)
{
	__atomic_store_n(&recorder_arg, arg, __ATOMIC_SEQ_CST);
	__atomic_store_n(&recorder, fn, __ATOMIC_SEQ_CST);
}

void wal_sys_record_call(wal_sys_call kind, int fd, const char *path, const char *path2)
{
	wal_sys_recorder fn = __atomic_load_n(&recorder, __ATOMIC_SEQ_CST);
	if (fn)
		fn(kind, fd, path, path2, __atomic_load_n(&recorder_arg, __ATOMIC_SEQ_CST));
}

#endif
