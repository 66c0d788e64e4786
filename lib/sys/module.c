/*
 * Loadable modules (see module.h): the search for a module and its table.
 */
#include <dlfcn.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "sys/module.h"

const void *wal_module_load(const char *what, const char *file, const char *symbol, wal_error *e)
{
	char exe[PATH_MAX], path[PATH_MAX + 64];
	const char *dirs[4];
	int ndirs = 0;
	char rel[PATH_MAX + 64];
	const char *env = getenv("WALARCHIVE_MODULE_DIR");
	if (env && *env)
		dirs[ndirs++] = env;
	ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
	if (n > 0) {
		exe[n] = '\0';
		char *slash = strrchr(exe, '/');
		if (slash) {
			*slash = '\0';
			dirs[ndirs++] = exe;
			snprintf(rel, sizeof(rel), "%s/%s", exe, WALARCHIVE_MODULE_RELDIR);
			dirs[ndirs++] = rel;
		}
	}
	dirs[ndirs++] = WALARCHIVE_MODULE_DIR;

	const char *why = "not found";
	for (int i = 0; i < ndirs; i++) {
		snprintf(path, sizeof(path), "%s/%s", dirs[i], file);
		if (access(path, F_OK) != 0)
			continue;
		void *handle = dlopen(path, RTLD_NOW | RTLD_LOCAL);
		if (!handle) {
			why = dlerror();
			continue;
		}
		const void *table = dlsym(handle, symbol);
		if (table)
			return table;
		why = "symbol missing";
	}
	wal_fail(e, WAL_EUNSUPPORTED, "%s %s cannot be loaded (%s; looked in %s)", what, file, why,
		 WALARCHIVE_MODULE_DIR);
	return NULL;
}
