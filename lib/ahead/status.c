/*
 * Minimal stand-in for the status records' reader: no record yet, so every
 * read finds none.
 */
#include <string.h>
#include "ahead/status.h"

wal_err wal_status_read(const wal_config *cfg, uint64_t system_id, const char *prog,
			wal_status *st, wal_error *e)
{
	(void)cfg, (void)system_id;
	memset(st, 0, sizeof(*st));
	return wal_fail(e, WAL_ENOENT, "%s: no status recorded", prog);
}
