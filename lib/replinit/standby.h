/*
 * replinit standby's state, shared by its parts: the checks, the plan and
 * the run (standby.c), the primary and the base backup (standby_backup.c),
 * the standby's configuration (standby_config.c), its start
 * (standby_start.c).
 */
#ifndef RPL_STANDBY_H
#define RPL_STANDBY_H

#include <limits.h>

#include "util.h"

/* One run of replinit standby: the options, the names derived from them, what was found. */
typedef struct standby {
	const rpl_standby_opts *o;
	rpl_out out;
	char host[256];
	int port;
	char user[64];
	char pgdata[PATH_MAX];
	char parent[PATH_MAX];
	char base[256];
	char passfile[PATH_MAX];
	char app_name[64];
	char restore_command[1024];
	char conninfo[2048];
	char password[1024];
	int have_password;

	int debian;
	char deb_version[16], deb_cluster[128];

	int exists, entries, running, set_up;
	long running_pid;
	char entry_names[512];
	int in_place; /* no staging: PGDATA is a mount point or its parent is read-only */

	int version; /* primary's server_version_num */
	char system_id[32];
	char basebackup[PATH_MAX];
	char pg_ctl[PATH_MAX];
	char target[PATH_MAX]; /* where pg_basebackup writes: staging or PGDATA */
	char old_dir[PATH_MAX];
	int created_slot;
	int made_target;
	int step_no;
	char log[PATH_MAX + 32];
} standby;

/* The major version in dir/PG_VERSION (15, 11, ...); 0 if it cannot be read. */
int rpl_standby_data_major(const char *dir);

/*
 * The settings this run wants for a server of version (the recovery
 * settings, see rpl_recovery_settings) into set; returns their count.
 */
int rpl_standby_settings(standby *s, int version, rpl_setting *set);

/*
 * The password of the role into s->password, from --password-file or the
 * prompt, once per run.
 */
wal_err rpl_standby_password(standby *s, wal_error *e);

/*
 * Connects to the primary as the standby will: its version and system
 * identifier, and the pg_basebackup (and pg_ctl for --start) to use.
 */
wal_err rpl_standby_inspect_primary(standby *s, wal_error *e);

/*
 * Creates (create) or drops --slot on the primary; an existing slot is
 * used.  s->created_slot says whether this run created it.
 */
wal_err rpl_standby_slot(standby *s, int create, wal_error *e);

/*
 * pg_basebackup of the primary into s->target, the password passed in a
 * passfile that is never on disk.  Sets s->made_target before it starts.
 */
wal_err rpl_standby_basebackup(standby *s, wal_error *e);

/*
 * Renames the staging copy over PGDATA: the old PGDATA moved aside first
 * and removed once the new one is in place; on failure the old one is
 * put back.
 */
wal_err rpl_standby_move_into_place(standby *s, wal_error *e);

/* Empties dir, keeping dir itself (in-place mode). */
wal_err rpl_standby_empty_dir(const char *dir, wal_error *e);

/* Writes the standby's passfile (mode 0600) with the role's password. */
wal_err rpl_standby_write_passfile(standby *s, wal_error *e);

/*
 * Writes the recovery settings into s->target: recovery.conf up to 11,
 * else postgresql.auto.conf and standby.signal last; and --port.
 */
wal_err rpl_standby_write_recovery(standby *s, wal_error *e);

/*
 * Starts the standby (pg_ctlcluster or pg_ctl, its log into s->log) and
 * waits until it streams.
 */
wal_err rpl_standby_start(standby *s, wal_error *e);

/*
 * Polls pg_stat_wal_receiver on the standby until it streams or --timeout
 * seconds pass (WAL_ENET, with the reason from the server log if any).
 */
wal_err rpl_standby_wait_streaming(standby *s, wal_error *e);

/*
 * --start for a standby that is already set up: waits for it to stream
 * when it runs, else starts it.  Counts a start in res.
 */
wal_err rpl_standby_start_existing(standby *s, rpl_result *res, wal_error *e);

#endif
