/*
 * What the prefetcher does to the spool: downloads one segment, restored and
 * verified, under its XXH64 name; and removes what no later call will ask
 * for, never following a link.
 */
#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include "ahead/ahead.h"
#include "ahead/spool.h"
#include "sys/fileio.h"

/*
 * Removes from one directory of spooled segments (open as dir) what no
 * later call will ask for: anything but a spooled segment of timeline tli
 * in (first, last], and temporary files that a killed prefetcher left, once
 * they are old.  Works relative to dir and never follows a link (a link is
 * removed as a link).  Returns how many segments it kept.
 */
static int clean_seg_dir(int dir, uint32_t tli, uint64_t first, uint64_t last, uint32_t seg_size)
{
	int kept = 0, listing = dup(dir);
	DIR *d = listing >= 0 ? fdopendir(listing) : NULL;
	struct dirent *ent;
	time_t now = time(NULL);
	if (!d) {
		if (listing >= 0)
			close(listing);
		return 1; /* not knowing, keep the directory */
	}
	while ((ent = readdir(d))) {
		char base[WAL_NAME_MAX];
		wal_name name;
		uint64_t segno;
		struct stat st;
		size_t len = strlen(ent->d_name);
		if (strcmp(ent->d_name, ".") == 0 || strcmp(ent->d_name, "..") == 0 ||
		    fstatat(dir, ent->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0 || S_ISDIR(st.st_mode))
			continue;
		if (ent->d_name[0] == '.') {
			/* a download under way, or left by a killed one: by age */
			if (len >= 5 && strcmp(ent->d_name + len - 4, ".tmp") == 0 &&
			    now - st.st_mtime > STALE_TMP_SECONDS)
				unlinkat(dir, ent->d_name, 0);
			continue;
		}
		int keep = S_ISREG(st.st_mode) && wal_spool_entry(ent->d_name, base, NULL) &&
			   wal_name_parse(base, &name, NULL) == WAL_OK &&
			   name.kind == WAL_NAME_SEGMENT && name.tli == tli &&
			   wal_name_segno(&name, seg_size, &segno, NULL) == WAL_OK &&
			   segno > first && segno <= last;
		if (keep)
			kept++;
		else
			unlinkat(dir, ent->d_name, 0);
	}
	closedir(d);
	return kept;
}

/*
 * Cleans the cluster's spool (open as cluster) for position name (segno):
 * each directory of segments that is a private directory of its own is
 * cleaned and, once empty, removed; a link named like one is removed as a
 * link, never followed.
 */
void wal_spool_clean(const wal_config *cfg, int cluster, const wal_name *name, uint64_t segno,
		     uint32_t seg_size)
{
	int listing = dup(cluster);
	DIR *d = listing >= 0 ? fdopendir(listing) : NULL;
	struct dirent *ent;
	if (!d) {
		if (listing >= 0)
			close(listing);
		return;
	}
	while ((ent = readdir(d))) {
		struct stat st;
		if (!wal_name_is_dir(ent->d_name))
			continue;
		int dir = openat(cluster, ent->d_name,
				 O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		if (dir < 0) {
			/* a link is removed as a link, never followed: what it points at stays */
			if (fstatat(cluster, ent->d_name, &st, AT_SYMLINK_NOFOLLOW) == 0 &&
			    S_ISLNK(st.st_mode))
				unlinkat(cluster, ent->d_name, 0);
			continue;
		}
		if (fstat(dir, &st) < 0 || wal_spool_check_dir(&st, ent->d_name, NULL) != WAL_OK) {
			close(dir);
			continue;
		}
		int kept = clean_seg_dir(dir, name->tli, segno, segno + (uint64_t)cfg->fetch_ahead,
					 seg_size);
		close(dir);
		if (!kept)
			/* fails, harmlessly, if a download is under way; never removes a link */
			unlinkat(cluster, ent->d_name, AT_REMOVEDIR);
	}
	closedir(d);
}

/* Whether the spool (the cluster's directory open as cluster) has name. */
int wal_spool_has(int cluster, const wal_name *name)
{
	char entry[SPOOL_ENTRY_SIZE];
	return wal_spool_find(cluster, name, NULL, entry, NULL);
}

/*
 * Downloads one object of the archive into the spool, restored: decompressed,
 * checked as walfetch checks it, flushed (with fetch_fsync) and named with
 * its XXH64, so that taking it is a rename.  WAL_ENOENT if absent.
 */
wal_err wal_spool_fetch(const wal_config *cfg, wal_store *archive, uint64_t system_id,
			uint32_t cluster_seg_size, const wal_name *name, wal_error *e)
{
	char object[512], dir[4096], full[4200], hash[17], seg_dir[17];
	int dir_fd, have_ids = 0, forms[WAL_ARCHIVE_FORMS];
	wal_age_keys *ids = malloc(sizeof(*ids));
	wal_err rc;
	if (!ids)
		return wal_fail(e, WAL_ENOMEM, "out of memory");
	if ((rc = wal_archive_identities(cfg, ids, &have_ids, e)) != WAL_OK)
		goto out;
	wal_spool_seg_dir(cfg, system_id, name, dir, sizeof(dir));
	/* made only in a trusted spool, and only below it */
	wal_name_dir(name, seg_dir);
	if ((rc = wal_spool_open(cfg, system_id, seg_dir, 1, &dir_fd, e)) != WAL_OK)
		goto out;
	close(dir_fd);
	snprintf(full, sizeof(full), "%s/%s", dir, name->text);
	rc = WAL_ENOENT;
	/* an LZ4 or zstd frame, encrypted or not, else a plain object of an
	 * earlier release (as wal_fetch) */
	wal_archive_forms(have_ids, wal_archive_codec(cfg), forms);
	for (int i = 0; i < WAL_ARCHIVE_FORMS && rc == WAL_ENOENT; i++) {
		wal_atomic_file f;
		wal_hash_sink hashed;
		uint32_t seg_size = 0;
		wal_archive_object_path(system_id, name, forms[i], object, sizeof(object));
		if ((rc = wal_atomic_open(&f, full, 0600, e)) != WAL_OK)
			break;
		/* the restored bytes are hashed on their way to the file, not read back */
		rc = wal_hash_sink_init(&hashed, &f.sink, e);
		if (rc == WAL_OK)
			rc = wal_archive_restore(archive, object, forms[i], name, system_id,
						 cluster_seg_size, have_ids ? ids : NULL,
						 &hashed.base, &seg_size, e);
		if (rc == WAL_OK)
			rc = wal_atomic_flush(&f, e);
		if (rc == WAL_OK)
			wal_hash_sink_digest(&hashed, hash);
		wal_hash_sink_free(&hashed);
		if (rc == WAL_OK) {
			char named[4300];
			snprintf(named, sizeof(named), "%s.%s", full, hash);
			rc = wal_atomic_retarget(&f, named, e);
		}
		if (rc == WAL_OK)
			rc = wal_atomic_commit(&f,
					       WAL_ATOMIC_REPLACE |
						       (cfg->fetch_fsync ? 0 : WAL_ATOMIC_NO_SYNC),
					       e);
		else
			wal_atomic_abort(&f);
	}
out:
	wal_age_keys_wipe(ids);
	free(ids);
	return rc;
}
