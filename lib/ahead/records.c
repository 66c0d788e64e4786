/*
 * Push-ahead records: "this file was archived as that object", written by
 * the batch and used up by PostgreSQL's own call for the file.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include "ahead/ahead.h"
#include "ahead/spool.h"
#include "io/xxhash.h"
#include "sys/fileio.h"

wal_err wal_ahead_record(const wal_config *cfg, uint64_t system_id, const char *name, uint64_t size,
			 const char *hash_hex, const char *object, uint64_t stored, wal_error *e)
{
	char path[4096], line[1024];
	int dir;
	/* in a trusted spool only, made there if missing (never above it) */
	wal_err rc = wal_spool_open(cfg, system_id, PUSHED_DIR, 1, &dir, e);
	if (rc != WAL_OK)
		return rc;
	close(dir);
	wal_spool_record_path(cfg, system_id, name, path, sizeof(path));
	/* the archive too: a record says where the file went, not just that it went */
	int len = snprintf(line, sizeof(line), "%" PRIu64 " %s %s %" PRIu64 " %s\n", size, hash_hex,
			   object, stored, cfg->archive);
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
		       char *object, size_t cap, uint64_t *stored)
{
	char path[4096], line[1024], hash[17], obj[512], have[17];
	unsigned long long size = 0, stored_size = 0;
	uint64_t have_size = 0;
	int archive_at = 0;
	struct stat st;
	wal_spool_record_path(cfg, system_id, name, path, sizeof(path));
	/* a record counts only if walarchive could have written it: no link,
	 * owned by the running user, writable by nobody else, in a private spool */
	int dir;
	if (wal_spool_open(cfg, system_id, PUSHED_DIR, 0, &dir, NULL) != WAL_OK)
		return 0;
	int fd_rec = openat(dir, name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	if (fd_rec < 0 || wal_spool_check_file(fd_rec, path, NULL) != WAL_OK) {
		/* used up too (the directory is ours): a link goes as a link */
		if (fd_rec >= 0 || errno == ELOOP)
			unlinkat(dir, name, 0);
		if (fd_rec >= 0)
			close(fd_rec);
		close(dir);
		return 0;
	}
	close(dir);
	FILE *f = fdopen(fd_rec, "r");
	if (!f) {
		close(fd_rec);
		return 0;
	}
	/* a record of an earlier release, without the object's size, fails here */
	int parsed = fgets(line, sizeof(line), f) &&
		     sscanf(line, "%llu %16s %511s %llu %n", &size, hash, obj, &stored_size,
			    &archive_at) == 4 &&
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
	*stored = stored_size;
	return 1;
}
