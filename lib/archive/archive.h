/*
 * The archive's layout and its three jobs (push, fetch, prune):
 *   <root>/<system-id>/walarchive.info
 *   <root>/<system-id>/<TTTTTTTTLLLLLLLL>/<segment>[.partial].lz4
 *   <root>/<system-id>/<TTTTTTTTLLLLLLLL>/<segment>.<offset>.backup.lz4
 *   <root>/<system-id>/<TTTTTTTT>.history.lz4
 * The system id is printed in decimal, as pg_controldata shows it.  Every
 * object is an LZ4 frame with its content checksum (compress = none stores
 * its blocks uncompressed), or with compress = zstd a zstd frame with its
 * content checksum, named ".zst" in place of ".lz4" (io/zstd.h); objects
 * without the suffix are plain files that earlier releases wrote with
 * compress = none, still read.  With encrypt_recipients the frame is then
 * encrypted in the age format and the name ends in ".lz4.age" or ".zst.age"
 * (io/age.h).
 */
#ifndef WAL_ARCHIVE_H
#define WAL_ARCHIVE_H

#include <stdint.h>
#include <stdio.h>
#include "base/config.h"
#include "base/error.h"
#include "io/age.h"
#include "store/store.h"
#include "pg/walname.h"

#define WAL_INFO_NAME "walarchive.info"

/* What an object's suffixes say was done to it, in the order applied. */
#define WAL_OBJ_LZ4 1  /* an LZ4 frame: ".lz4" */
#define WAL_OBJ_AGE 2  /* then encrypted: ".age" */
#define WAL_OBJ_ZSTD 4 /* a zstd frame: ".zst" (never with WAL_OBJ_LZ4) */
#define WAL_OBJ_CODECS (WAL_OBJ_LZ4 | WAL_OBJ_ZSTD)

/* Object path of name under system_id, with the suffixes of form (WAL_OBJ_*). */
void wal_archive_object_path(uint64_t system_id, const wal_name *name, int form, char *out,
			     size_t cap);

/* Strips the suffixes ".lz4", ".zst", each perhaps with ".age", or ".age", from an
 * entry's name; returns its form. */
int wal_archive_object_form(char *entry);

/* The frame walpush writes with cfg's compress: WAL_OBJ_ZSTD or WAL_OBJ_LZ4. */
int wal_archive_codec(const wal_config *cfg);

/* compress_level as it applies to cfg's compress (zstd's default level when unset). */
int wal_archive_level(const wal_config *cfg);

/*
 * The forms to look for, in order, when restoring: the encrypted ones
 * (".lz4.age" or ".zst.age" as walpush writes them, ".age" as `age -r`
 * makes them from a segment) first when an identity is at hand, else last
 * (so that finding only an encrypted object says what is missing).  Among
 * frames, codec's (wal_archive_codec: what this configuration writes)
 * first, so that an archive written with one setting costs one request per
 * object; an object of the other codec costs one miss more.
 */
#define WAL_ARCHIVE_FORMS 6
void wal_archive_forms(int have_identity, int codec, int forms[WAL_ARCHIVE_FORMS]);

/*
 * Loads cfg's encrypt_recipients (walpush) or encrypt_identity (walfetch,
 * walcheck) into keys; *have says whether the setting is set.  WAL_ECONFIG
 * naming the setting and its cause when it is set but unusable: never a
 * fallback to storing or reading in clear.
 */
wal_err wal_archive_recipients(const wal_config *cfg, wal_age_keys *keys, int *have, wal_error *e);
wal_err wal_archive_identities(const wal_config *cfg, wal_age_keys *keys, int *have, wal_error *e);

/* What walpush did. */
typedef enum wal_push_outcome {
	WAL_PUSHED,	    /* stored now */
	WAL_PUSH_DUPLICATE, /* the archive already held identical content */
	WAL_PUSHED_AHEAD    /* stored by an earlier push-ahead; file unchanged since */
} wal_push_outcome;

typedef struct wal_push_result {
	wal_push_outcome outcome;
	uint64_t system_id;
	uint64_t in_bytes;
	uint64_t stored_bytes;
	char object[512]; /* path of the object in the archive */
	char hash[17];	  /* XXH64 of the file's bytes, when asked for */
} wal_push_result;

/*
 * Archives the file at wal_path under file_name (%f): validates the name, the
 * header (for segments and partials) and the system identifier against
 * datadir's pg_control when datadir is not NULL and has one; stores it
 * (compressed as cfg says) so that WAL_OK means a durable copy of exactly
 * these bytes exists.  An existing object with the same content is
 * WAL_OK/WAL_PUSH_DUPLICATE; with different content WAL_EEXIST_DIFFERENT and
 * the object is untouched.
 */
wal_err wal_push(const wal_config *cfg, const char *wal_path, const char *file_name,
		 const char *datadir, wal_push_result *res, wal_error *e);

/*
 * wal_push on an open store (*store NULL: opened here and left open in
 * *store for the next call; the caller closes it).  With want_hash, fills
 * res->hash with the XXH64 of the file's bytes.
 */
wal_err wal_push_with(const wal_config *cfg, wal_store **store, const char *wal_path,
		      const char *file_name, const char *datadir, int want_hash,
		      wal_push_result *res, wal_error *e);

typedef struct wal_fetch_result {
	uint64_t system_id;
	uint64_t bytes;
	uint32_t seg_size;    /* from the header of a restored segment, else 0 */
	int from_spool;	      /* served by fetch-ahead */
	char spool_note[768]; /* why a spooled copy was not used, if it was bad */
	char object[512];
} wal_fetch_result;

/*
 * Restores file_name (%f) into dest_path (%p): the bytes go to a temporary file in
 * dest_path's directory, are verified (LZ4 checksum; cluster, timeline,
 * position and size from the WAL header of segments) and renamed into place, so dest_path never holds a partial or
 * corrupt file.  They are fsynced with cfg->fetch_fsync; without it (the
 * default) PostgreSQL makes what it keeps durable itself (durable_rename
 * fsyncs the file before renaming it) and fetches again after a crash
 * whatever it had not kept.  WAL_ENOENT only
 * when the archive holds this cluster's tree and no such object
 * (wal_archive_absent).  The cluster is datadir's pg_control system id, else
 * cfg->system_id, else the only cluster in the archive (WAL_EAMBIGUOUS if
 * several).
 */
wal_err wal_fetch(const wal_config *cfg, const char *file_name, const char *dest_path,
		  const char *datadir, wal_fetch_result *res, wal_error *e);

typedef struct wal_prune_opts {
	const char *before; /* --before WAL_NAME, or NULL */
	int keep_backups;   /* --keep-backups N, 0 = unset */
	int keep_days;	    /* --keep-days D, -1 = unset */
	int dry_run;
	uint64_t system_id; /* 0 = from datadir, cfg, or the only cluster */
	const char *datadir;
	/* Called for each object removed (or that would be, in a dry run). */
	void (*on_object)(void *arg, const char *path, int64_t size);
	void *arg;
} wal_prune_opts;

typedef struct wal_prune_result {
	uint64_t objects;
	uint64_t bytes;
	uint64_t dirs;
	int backups;	    /* backups found (with keep_backups) */
	uint64_t stale_tmp; /* temporary files of writers dead for a day, removed */
	uint64_t stale_tmp_bytes;
	char horizon[WAL_NAME_MAX]; /* first segment kept */
	uint64_t system_id;	    /* the cluster pruned, 0 if the archive holds none */
	int empty; /* the archive holds no WAL of the cluster yet (or no cluster) */
} wal_prune_result;

/*
 * Removes archived WAL that sorts before the horizon the options define (the
 * most conservative of those given), and temporary files that writers left
 * more than a day ago.  History files are always kept.  Refuses
 * (without removing anything) if any directory cannot be listed.  When
 * keep_backups asks for more backups than the archive has, nothing is removed.
 * An archive that is reachable but holds no WAL of the cluster yet (no
 * cluster at all, no tree for this one, or a tree without segments) is
 * WAL_OK with res->empty set; an archive root that does not exist is WAL_EIO.
 */
wal_err wal_prune(const wal_config *cfg, const wal_prune_opts *opts, wal_prune_result *res,
		  wal_error *e);

/*
 * Streams object (form: an LZ4 frame, perhaps encrypted, which ids must then
 * open; else a plain file as earlier releases stored with compress = none)
 * from store into `into`, checked on the way: each encrypted chunk's
 * authentication before its bytes go on, the frame's content checksum, and the identity of what it
 * restores to (wal_verify_sink: cluster system_id, timeline, position, size,
 * at most one segment's worth of bytes).  cluster_seg_size is the cluster's
 * segment size when known (from its pg_control), else 0: a segment of
 * another size is refused, and nothing beyond it expands, whatever its
 * header claims.  Sets *seg_size for a segment or
 * partial.  WAL_ENOENT if the object is not there, WAL_ECORRUPT if it is not
 * exactly name's file; `into` may then hold part of it.  An encrypted object
 * without ids, or that none of them opens, is WAL_ECONFIG.
 */
wal_err wal_archive_restore(wal_store *store, const char *object, int form, const wal_name *name,
			    uint64_t system_id, uint32_t cluster_seg_size, const wal_age_keys *ids,
			    wal_sink *into, uint32_t *seg_size, wal_error *e);

/*
 * Restores one object into dest_path as wal_fetch does (wal_archive_restore
 * into a temporary file beside it, renamed into place), filling res->bytes,
 * seg_size and object; fsyncs it when durable.  WAL_ENOENT if the object is
 * not there; dest_path is untouched on any failure.
 */
wal_err wal_archive_fetch_object(wal_store *store, const char *object, int form,
				 const wal_name *name, uint64_t system_id,
				 uint32_t cluster_seg_size, const wal_age_keys *ids,
				 const char *dest_path, int durable, wal_fetch_result *res,
				 wal_error *e);

/*
 * After name's object was not found: WAL_ENOENT ("not in the archive") only
 * on evidence that this is the cluster's archive, its walarchive.info, which
 * the first push writes; without it (an unmounted file system, a wrong
 * prefix) WAL_EIO, since the answer would end a recovery early.
 */
wal_err wal_archive_absent(wal_store *store, uint64_t system_id, const wal_name *name,
			   wal_error *e);

/*
 * Verifies a restored segment or partial open as fd (at tmp_path, from
 * object): its long header must name this segment of this size, of the
 * cluster system_id when not 0 (WAL_ECORRUPT if not); sets *seg_size from
 * the header.
 */
wal_err wal_archive_verify_segment(int fd, const char *tmp_path, const wal_name *name,
				   const char *object, uint64_t system_id, uint32_t *seg_size,
				   wal_error *e);

/*
 * The cluster, when it can be told without asking the archive: from
 * datadir's global/pg_control, else the system_id setting.  0 if neither.
 */
int wal_local_system_id(const wal_config *cfg, const char *datadir, uint64_t *system_id);

/*
 * wal_local_system_id, and the cluster's segment size from the same read of
 * its pg_control (0 when it gives none, or without a data directory).
 */
int wal_local_cluster(const wal_config *cfg, const char *datadir, uint64_t *system_id,
		      uint32_t *seg_size);

/* Resolves which cluster's tree to use (see wal_fetch). */
wal_err wal_archive_system_id(wal_store *s, const wal_config *cfg, const char *datadir,
			      uint64_t *system_id, wal_error *e);

#endif
