/*
 * The archive store: one table of operations per transport, chosen from the
 * URL scheme (store.c holds the table).  Paths are relative to the archive
 * root, '/'-separated, never starting with '/' and never containing "..";
 * wal_store_path_valid() checks that, and every driver refuses others.
 *
 * Every operation returns a wal_err and fills e.  A driver retries transient
 * failures itself (cfg->retries, with backoff) and bounds every network wait
 * by cfg->timeout; what it returns is final.
 */
#ifndef WAL_STORE_H
#define WAL_STORE_H

#include <stdint.h>
#include <time.h>
#include "base/config.h"
#include "base/error.h"
#include "io/stream.h"
#include "base/url.h"

typedef struct wal_store wal_store;

typedef struct wal_stat {
	int64_t size; /* bytes, -1 if unknown */
	time_t mtime; /* seconds since the epoch, 0 if unknown */
	int is_dir;
} wal_stat;

/* Called once per entry of a listing: the entry's name (no '/'), its stat.
 * Returning non-WAL_OK stops the listing and is passed through. */
typedef wal_err (*wal_list_fn)(void *arg, const char *name, const wal_stat *st, wal_error *e);

typedef struct wal_store_ops {
	const char *scheme; /* URL scheme(s) this driver serves, for messages */

	/* Connects and checks that the archive root exists and is usable.
	 * WAL_ENOENT if the root is missing; it is never created here. */
	wal_err (*open)(wal_store **out, const wal_url *url, const wal_config *cfg, wal_error *e);

	/* Stores src under path atomically: the name appears only with all the
	 * bytes, durable (fsync or the server's equivalent) when this returns
	 * WAL_OK.  Parent directories are created as needed.  If path exists it is
	 * left untouched and the result is WAL_EEXIST.  On failure nothing
	 * appears under path (a temporary name may be left for a later cleanup). */
	wal_err (*put)(wal_store *s, const char *path, wal_source *src, wal_error *e);

	/* Streams the object at path into sink.  WAL_ENOENT if it does not exist.
	 * On a retry after a partial transfer the sink is reset first. */
	wal_err (*get)(wal_store *s, const char *path, wal_sink *sink, wal_error *e);

	/* Size and mtime of path.  WAL_ENOENT if it does not exist. */
	wal_err (*stat)(wal_store *s, const char *path, wal_stat *st, wal_error *e);

	/* Calls fn for each entry directly under dir ("" = the root), in no
	 * particular order; directories have is_dir set.  Names starting with
	 * '.' are temporary files of unfinished (or abandoned) writes.
	 * WAL_ENOENT if dir does not exist.  Never reports a partial listing as
	 * success. */
	wal_err (*list)(wal_store *s, const char *dir, wal_list_fn fn, void *arg, wal_error *e);

	/* Removes the object at path (WAL_ENOENT if absent).  Removing an empty
	 * directory is allowed where the transport has directories. */
	wal_err (*remove)(wal_store *s, const char *path, wal_error *e);

	/* Disconnects and frees s (NULL is allowed). */
	void (*close)(wal_store *s);

	/* Makes the existing object at path durable, with the directory entries
	 * that lead to it: called before an object found in place (a retry
	 * after a crash) is accepted as the archived copy.  NULL when the
	 * server makes every stored object durable by itself. */
	wal_err (*sync)(wal_store *s, const char *path, wal_error *e);

	/* One line on where the credentials s signs with came from (no
	 * secret in it), for walcheck; NULL when the transport has nothing
	 * to say. */
	const char *(*auth)(wal_store *s);
} wal_store_ops;

/* Every store handle starts with this, so the generic calls find the table. */
struct wal_store {
	const wal_store_ops *ops;
};

/* Opens the store that cfg->archive names.  WAL_ECONFIG if unset or unknown scheme. */
wal_err wal_store_open(wal_store **out, const wal_config *cfg, wal_error *e);

wal_err wal_store_put(wal_store *s, const char *path, wal_source *src, wal_error *e);
wal_err wal_store_get(wal_store *s, const char *path, wal_sink *sink, wal_error *e);
wal_err wal_store_stat(wal_store *s, const char *path, wal_stat *st, wal_error *e);
wal_err wal_store_list(wal_store *s, const char *dir, wal_list_fn fn, void *arg, wal_error *e);
wal_err wal_store_remove(wal_store *s, const char *path, wal_error *e);
void wal_store_close(wal_store *s);
wal_err wal_store_sync(wal_store *s, const char *path, wal_error *e);
/* Where s's credentials came from (see wal_store_ops.auth), or NULL. */
const char *wal_store_auth(wal_store *s);

/* Whether path is a valid relative store path (see above); WAL_EINVAL if not. */
wal_err wal_store_path_valid(const char *path, wal_error *e);

/* Driver tables, one per transport file. */
extern const wal_store_ops wal_store_posix_ops;	 /* store_posix.c: file, plain paths */
extern const wal_store_ops wal_store_sftp_ops;	 /* store/sftp/: sftp */
extern const wal_store_ops wal_store_webdav_ops; /* store_webdav.c: http, https */
extern const wal_store_ops wal_store_s3_ops;	 /* store_s3.c: s3 */
extern const wal_store_ops wal_store_azure_ops;	 /* store/azure/: azure */

#ifdef WALARCHIVE_TEST_SEAMS
/* posix/: how old, in seconds, an entry must be for the directories above
 * it to be taken as synced (60; a test sets -1 for "all", or more) */
extern long wal_posix_settled_seconds;
#endif

/*
 * Retry pacing shared by the network drivers: sleeps before attempt number
 * attempt (1 = the first retry) with exponential backoff and jitter, capped.
 */
void wal_retry_backoff(int attempt);

/* Name for an upload's temporary object beside path: "<dir>/.<base>.<random>.tmp". */
void wal_store_tmp_name(const char *path, char *out, size_t cap);

#endif
