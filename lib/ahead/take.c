/*
 * walfetch's orchestrator: a segment fetched ahead is taken from the spool
 * (a rename, or a copy across file systems), checked again, else the
 * archive is asked; then the prefetcher follows.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <string.h>
#include "ahead/ahead.h"
#include "ahead/spool.h"
#include "io/xxhash.h"
#include "sys/fileio.h"

/*
 * Checks a spooled segment open as fd: its bytes hashed to have (size bytes),
 * which must be the hash its name gives, and its header must name it.
 */
static wal_err check_spooled(int fd, const char *path, const wal_name *name, const char *hash,
			     const char *have, uint64_t size, wal_fetch_result *res, wal_error *e)
{
	if (strcmp(have, hash) != 0)
		return wal_fail(e, WAL_ECORRUPT,
				"%s: content does not match its hash (xxh64 %s, "
				"expected %s)",
				path, have, hash);
	wal_err rc =
		wal_archive_verify_segment(fd, path, name, path, res->system_id, &res->seg_size, e);
	if (rc == WAL_OK)
		res->bytes = size;
	return rc;
}

/*
 * Takes a spooled segment (entry in the directory open as dir, path for
 * messages) on another file system than dest_path: copies it through a
 * temporary file, hashing on the way.
 */
static wal_err take_by_copy(const wal_config *cfg, int dir, const char *entry, const char *path,
			    const wal_name *name, const char *hash, const char *dest_path,
			    wal_fetch_result *res, wal_error *e)
{
	wal_atomic_file f;
	wal_fd_source in;
	wal_hash_source hashed;
	int fd = wal_sys_openat(dir, entry, O_RDONLY | O_NOFOLLOW, 0);
	if (fd < 0)
		return wal_fail_errno(e,
				      errno == ENOENT  ? WAL_ENOENT
				      : errno == ELOOP ? WAL_EPERM
						       : WAL_EIO,
				      errno, "%s: cannot open", path);
	wal_err rc = wal_spool_check_file(fd, path, e);
	if (rc != WAL_OK) {
		close(fd);
		return rc;
	}
	rc = wal_atomic_open(&f, dest_path, 0600, e);
	if (rc != WAL_OK) {
		close(fd);
		/* a missing destination directory is not a missing spooled file */
		if (rc == WAL_ENOENT)
			e->code = rc = WAL_EIO;
		return rc;
	}
	wal_fd_source_init(&in, fd, path, -1);
	rc = wal_hash_source_init(&hashed, &in.base, e);
	if (rc == WAL_OK) {
		rc = wal_source_pump(&hashed.base, &f.sink, e);
		if (rc == WAL_OK)
			rc = wal_atomic_flush(&f, e);
		if (rc == WAL_OK)
			rc = check_spooled(f.fd, f.tmp_path, name, hash, hashed.hex, hashed.bytes,
					   res, e);
		wal_hash_source_free(&hashed);
	}
	close(fd);
	/* what PostgreSQL gets is the running user's, and only theirs to change */
	if (rc == WAL_OK && fchmod(f.fd, 0600) < 0)
		rc = wal_fail_errno(e, WAL_EIO, errno, "%s: cannot chmod", f.tmp_path);
	if (rc != WAL_OK) {
		wal_atomic_abort(&f);
		return rc;
	}
	return wal_atomic_commit(&f,
				 WAL_ATOMIC_REPLACE | (cfg->fetch_fsync ? 0 : WAL_ATOMIC_NO_SYNC),
				 e);
}

/*
 * Takes a spooled segment by renaming it: first to a temporary name beside
 * dest_path (so that of two callers only one gets it), then, checked, into
 * place.  A spool on another file system is WAL_EUNSUPPORTED.  The rename
 * moves a link as a link, and the open that follows refuses one.
 */
static wal_err take_by_rename(const wal_config *cfg, int dir_fd, const char *entry,
			      const char *path, const wal_name *name, const char *hash,
			      const char *dest_path, wal_fetch_result *res, wal_error *e)
{
	char tmp[4200], dir[4096], have[17];
	uint64_t size = 0;
	wal_tmp_name(dest_path, tmp, sizeof(tmp));
	if (wal_sys_renameat(dir_fd, entry, AT_FDCWD, tmp) < 0)
		return wal_fail_errno(e,
				      errno == EXDEV	? WAL_EUNSUPPORTED
				      : errno == ENOENT ? WAL_ENOENT
							: WAL_EIO,
				      errno, "%s: cannot move to %s", path, tmp);
	int fd = wal_sys_open(tmp, O_RDONLY | O_NOFOLLOW, 0);
	wal_err rc = fd < 0 ? wal_fail_errno(e, errno == ELOOP ? WAL_EPERM : WAL_EIO, errno,
					     "%s: cannot open", path)
			    : wal_spool_check_file(fd, path, e);
	if (rc == WAL_OK)
		rc = wal_xxh64_fd(fd, tmp, &size, have, e);
	if (rc == WAL_OK)
		rc = check_spooled(fd, tmp, name, hash, have, size, res, e);
	/* what PostgreSQL gets is the running user's, and only theirs to change */
	if (rc == WAL_OK && fchmod(fd, 0600) < 0)
		rc = wal_fail_errno(e, WAL_EIO, errno, "%s: cannot chmod", tmp);
	/* a spooled copy was flushed when it was spooled; this makes sure of it */
	if (rc == WAL_OK && cfg->fetch_fsync && wal_sys_fsync(fd) < 0)
		rc = wal_fail_errno(e, WAL_EIO, errno, "%s: cannot fsync", tmp);
	if (fd >= 0)
		close(fd);
	if (rc == WAL_OK && wal_sys_rename(tmp, dest_path) < 0)
		rc = wal_fail_errno(e, WAL_EIO, errno, "%s: cannot rename into place", dest_path);
	if (rc != WAL_OK) {
		unlink(tmp);
		return rc;
	}
	wal_dirname(dest_path, dir, sizeof(dir));
	return cfg->fetch_fsync ? wal_fsync_dir(dir, e) : WAL_OK;
}

wal_err wal_ahead_take(const wal_config *cfg, uint64_t system_id, const wal_name *name,
		       const char *dest_path, wal_fetch_result *res, wal_error *e)
{
	char path[4400], dir[4096], entry[SPOOL_ENTRY_SIZE], hash[17];
	int cluster, seg_dir = -1;
	wal_error err;
	/* only a trusted spool, and nothing in it reached through a link */
	if (wal_spool_open(cfg, system_id, NULL, 0, &cluster, NULL) != WAL_OK)
		return wal_fail(e, WAL_ENOENT, "%s: not in the spool", name->text);
	int found = wal_spool_find(cluster, name, &seg_dir, entry, hash);
	close(cluster);
	if (!found)
		return wal_fail(e, WAL_ENOENT, "%s: not in the spool", name->text);
	wal_spool_seg_dir(cfg, system_id, name, dir, sizeof(dir));
	snprintf(path, sizeof(path), "%s/%s", dir, entry);
	wal_error_clear(&err);
	wal_err rc = take_by_rename(cfg, seg_dir, entry, path, name, hash, dest_path, res, &err);
	if (rc == WAL_EUNSUPPORTED) {
		/* the spool is on another file system: a copy, and the spooled file goes */
		rc = take_by_copy(cfg, seg_dir, entry, path, name, hash, dest_path, res, &err);
		if (rc != WAL_ENOENT)
			unlinkat(seg_dir, entry, 0);
	}
	close(seg_dir);
	if (rc == WAL_OK) {
		res->from_spool = 1;
		snprintf(res->object, sizeof(res->object), "%s", path + strlen(cfg->spool_dir) + 1);
		return WAL_OK;
	}
	/* a bad spooled copy is dropped (taken away already); the archive is asked instead */
	if (rc != WAL_ENOENT)
		snprintf(res->spool_note, sizeof(res->spool_note), "%s", err.msg);
	return wal_fail(e, WAL_ENOENT, "%s: not in the spool", name->text);
}

wal_err wal_fetch_and_ahead(const wal_config *cfg, const char *file_name, const char *dest_path,
			    const char *datadir, wal_fetch_result *res, wal_error *e)
{
	wal_name name;
	uint64_t system_id = 0;
	char note[sizeof(res->spool_note)] = "";
	wal_err rc = wal_name_parse(file_name, &name, e);
	if (rc != WAL_OK)
		return rc;

	/* fetched ahead by an earlier call: taken from the spool, no connection */
	if (name.kind == WAL_NAME_SEGMENT && wal_ahead_fetch_enabled(cfg) &&
	    wal_local_system_id(cfg, datadir, &system_id)) {
		memset(res, 0, sizeof(*res));
		res->system_id = system_id;
		if (wal_ahead_take(cfg, system_id, &name, dest_path, res, NULL) == WAL_OK)
			goto ahead;
		snprintf(note, sizeof(note), "%s", res->spool_note);
	}
	rc = wal_fetch(cfg, file_name, dest_path, datadir, res, e);
	memcpy(res->spool_note, note, sizeof(note));
	if (rc != WAL_OK)
		return rc;
ahead:
	/* the segments recovery will ask for next, in the background */
	wal_fetch_ahead_start(cfg, res->system_id, &name, res->seg_size, datadir);
	return WAL_OK;
}
