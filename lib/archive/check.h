/*
 * walcheck's work on the archive itself: a probe object written, read back
 * and removed; the cluster's tree listed (one listing per 16-hex
 * directory); the continuity of the WAL a recovery along the timeline
 * history needs; and a deep check that reads every object as walfetch does.
 */
#ifndef WAL_ARCHIVE_CHECK_H
#define WAL_ARCHIVE_CHECK_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>
#include "base/config.h"
#include "base/error.h"
#include "io/age.h"
#include "pg/walname.h"
#include "store/store.h"

/* ---- the probe ------------------------------------------------------------ */

typedef struct wal_probe_result {
	char path[256]; /* the probe object's name in the archive */
	double put_ms, get_ms, remove_ms;
	int put_ok, get_ok, remove_ok;
} wal_probe_result;

/*
 * Writes a small probe object under dir ("" = the archive root, else a
 * cluster's tree), named ".walcheck-probe-HOST-PID.tmp": a temporary name
 * that no program reads as WAL and walprune's cleanup of dead writers' files
 * would take; reads it back, compares, removes it, timing each step.  The
 * first failure is returned (WAL_ECORRUPT when the bytes read back differ);
 * the probe is removed whenever it was written.
 */
wal_err wal_check_probe(wal_store *store, const char *dir, wal_probe_result *res, wal_error *e);

/* ---- the tree ------------------------------------------------------------- */

typedef struct wal_check_object {
	wal_name name;
	char path[128]; /* in the archive */
	/* its form: WAL_OBJ_LZ4 (".lz4") or WAL_OBJ_ZSTD (".zst"), perhaps with
	 * WAL_OBJ_AGE (".age"), or 0 (plain) */
	int framed;
	int64_t size;
	time_t mtime;
} wal_check_object;

typedef struct wal_check_tree {
	wal_check_object *objs; /* segments, partials, backup and history files */
	size_t count, cap;
	int have_info;	   /* walarchive.info is there */
	uint32_t seg_size; /* from walarchive.info, else 16 MiB */
	int64_t bytes;	   /* stored bytes of all objects */
	unsigned dirs;	   /* 16-hex directories listed */
} wal_check_tree;

/*
 * Lists system_id's tree: its root, then each 16-hex directory once, and
 * reads the segment size from walarchive.info.  Names that are not WAL and
 * temporary files are left out.  WAL_ENOENT when the cluster has no tree.
 * The caller frees with wal_check_tree_free.
 */
wal_err wal_check_list_tree(wal_store *store, uint64_t system_id, wal_check_tree *tree,
			    wal_error *e);
void wal_check_tree_free(wal_check_tree *tree);

/*
 * Restores a small text object (history or backup file) through walfetch's
 * checks into a NUL-terminated heap buffer *text (the caller frees it).
 */
wal_err wal_check_read_text(wal_store *store, const wal_check_object *obj, uint64_t system_id,
			    const wal_age_keys *ids, char **text, wal_error *e);

/* ---- continuity ----------------------------------------------------------- */

/* One line of a timeline history file: tli ran until end_lsn. */
typedef struct wal_history_entry {
	uint32_t tli;
	uint64_t end_lsn;
} wal_history_entry;

#define WAL_HISTORY_MAX 256

typedef struct wal_history {
	uint32_t tli; /* the timeline whose history this is */
	int count;
	wal_history_entry entries[WAL_HISTORY_MAX]; /* its ancestors, oldest first */
} wal_history;

/*
 * Parses the text of tli's history file ("parentTLI<TAB>X/Y<TAB>reason"
 * lines; blank and '#' lines skipped).  WAL_EINVAL naming the line when one
 * is malformed, or when timelines or switch points do not increase.
 */
wal_err wal_history_parse(uint32_t tli, const char *text, wal_history *h, wal_error *e);

typedef struct wal_check_seg {
	uint32_t tli;
	uint64_t segno;
} wal_check_seg;

typedef struct wal_continuity_in {
	uint32_t seg_size;
	const wal_check_seg *segs; /* complete segments in the archive, any order */
	size_t nsegs;
	const wal_check_seg *backups; /* start of each base backup (.backup files) */
	size_t nbackups;
	const wal_history *histories; /* every history file the archive holds */
	size_t nhistories;
	uint32_t target_tli; /* 0: the newest timeline seen */
	int have_from;	     /* --from: start there instead of the oldest backup */
	uint64_t from_segno;
	int have_end; /* the last segment that must be there (PostgreSQL's position) */
	uint64_t end_segno;
} wal_continuity_in;

typedef enum wal_gap_kind {
	WAL_GAP_SEGMENTS, /* segments first..last of tli are missing */
	WAL_GAP_HISTORY	  /* tli's history file is missing */
} wal_gap_kind;

typedef struct wal_range {
	uint32_t tli;
	uint64_t first, last;
	wal_gap_kind kind; /* for gaps */
	int waiting;	   /* for gaps: every segment of it is still .ready in pg_wal */
} wal_range;

typedef struct wal_continuity {
	uint32_t target_tli;
	int empty; /* no segment to check: a new archive */
	uint64_t start_segno, end_segno;
	uint32_t start_tli, end_tli;
	enum { WAL_START_BACKUP, WAL_START_FROM, WAL_START_OLDEST } start_from;
	uint64_t needed, present; /* segments needed from start to end, and of those present */
	wal_range *ranges;	  /* runs of complete segments present, by timeline and position */
	size_t nranges;
	wal_range *gaps;
	size_t ngaps;
	wal_history_entry path[WAL_HISTORY_MAX + 1]; /* the timelines recovery follows */
	int npath;
} wal_continuity;

/*
 * Works out which segments a recovery from the start (--from, else the
 * oldest base backup on the target's history, else the oldest segment) to
 * the end (have_end, else the newest segment on that history) needs along
 * the history of the target timeline, and which of them are missing.  A
 * segment of a parent timeline from its switch point's segment on is not
 * needed.  A timeline above 1 on the way whose history file is missing is a
 * gap of its own; its parent is then taken to be the next lower timeline
 * seen, switched from at its first segment.  WAL_ENOMEM only; free with
 * wal_continuity_free.
 */
wal_err wal_continuity_check(const wal_continuity_in *in, wal_continuity *out, wal_error *e);
void wal_continuity_free(wal_continuity *c);

/* The timeline a recovery along c's path reads segment segno from. */
uint32_t wal_continuity_tli_at(const wal_continuity *c, uint64_t segno, uint32_t seg_size);

/* ---- deep verification ---------------------------------------------------- */

/* Called in the calling process for each object that failed verification. */
typedef void (*wal_check_bad_fn)(void *arg, size_t index, wal_err code, const char *why);

/*
 * Reads every object of objs[0..n) and verifies it exactly as walfetch does
 * (wal_archive_restore: decryption with encrypt_identity, LZ4 content
 * checksum, cluster, timeline, position, size) into a sink that discards the bytes, with up to workers processes,
 * each with its own store connection.  Calls bad for each object that
 * fails; *verified counts those that passed.  Returns WAL_OK when every
 * object could be read, corrupt or not; else the first failure to reach
 * the archive (or to start a worker).
 */
wal_err wal_check_deep(const wal_config *cfg, uint64_t system_id, const wal_check_object *objs,
		       size_t n, int workers, wal_check_bad_fn bad, void *arg, size_t *verified,
		       wal_error *e);

#endif
