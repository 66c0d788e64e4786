/*
 * replinit: the primary and standby halves of a streaming-replication setup.
 * Each half inspects the current state, computes the steps still needed,
 * and either lists them (dry run) or performs them, reporting each step
 * through a callback.  lib never prints: cmd/replinit.c turns reports and
 * wal_error into output and exit codes.
 */
#ifndef RPL_REPLINIT_H
#define RPL_REPLINIT_H

#include <stddef.h>
#include "base/error.h"

/* What a report line is. */
typedef enum rpl_msg {
	RPL_MSG_PLAN,	 /* a numbered step of the plan (dry run) */
	RPL_MSG_STEP,	 /* a step that was just performed */
	RPL_MSG_INFO,	 /* a fact found while inspecting (versions, paths) */
	RPL_MSG_NOTICE,	 /* nothing to do, restart needed, and the like */
	RPL_MSG_WARNING, /* something the operator should look at */
	RPL_MSG_OUTPUT	 /* raw output of a child program (pg_basebackup progress) */
} rpl_msg;

/* Receives every line lib wants shown; text has no trailing newline except for RPL_MSG_OUTPUT. */
typedef void (*rpl_report_fn)(void *ctx, rpl_msg kind, const char *text);

/*
 * Asks the operator for a password (no echo); confirm asks twice.  Returns
 * WAL_OK with a NUL-terminated password in buf, or an error.
 */
typedef wal_err (*rpl_prompt_fn)(void *ctx, const char *what, int confirm, char *buf, size_t size,
				 wal_error *e);

/* Outcome of a run, for the exit code and the last message. */
typedef struct rpl_result {
	int steps_done;		    /* steps performed (0 on a dry run) */
	int steps_planned;	    /* steps in the plan */
	int restart_needed;	    /* primary: settings wait for a restart */
	char restart_settings[256]; /* their names, comma separated */
} rpl_result;

typedef struct rpl_primary_opts {
	const char *conninfo;	      /* libpq connection string; NULL = libpq defaults */
	const char *standby;	      /* ADDRESS[/BITS] of the standby */
	const char *user;	      /* replication role, default "replicator" */
	const char *password_file;    /* first line is the password; NULL = prompt */
	const char *archive_command;  /* NULL = walpush %p %f (path of this install) */
	const char *listen_addresses; /* NULL = leave as is */
	const char *pg_bin;	      /* directory with pg_ctl; NULL = the server's own */
	const char *config_file;      /* -c FILE: passed on as walpush -c FILE */
	int restart;		      /* restart when a setting needs it */
	int dry_run;
	rpl_report_fn report;
	rpl_prompt_fn prompt; /* NULL = no prompting possible */
	void *ctx;
} rpl_primary_opts;

/*
 * Sets up the primary: role, settings, pg_hba line, reload, optional
 * restart.  Stops at the first failing step; what it did before stays done
 * (each step is complete by itself) and a second run continues from there.
 */
wal_err rpl_primary_run(const rpl_primary_opts *o, rpl_result *res, wal_error *e);

typedef struct rpl_standby_opts {
	const char *primary;	     /* HOST[:PORT] */
	const char *pgdata;	     /* data directory of the standby */
	const char *user;	     /* default "replicator" */
	const char *password_file;   /* NULL = prompt */
	const char *passfile;	     /* .pgpass for the standby; NULL = PGDATA/replinit.pgpass */
	const char *slot;	     /* physical slot to create and use; NULL = none */
	const char *restore_command; /* NULL = walfetch %f %p (path of this install) */
	const char *pg_bin;	     /* directory with pg_basebackup / pg_ctl */
	const char *app_name;	     /* application_name; NULL = host name */
	const char *config_file;     /* -c FILE: passed on as walfetch -c FILE */
	int port;		     /* port for the standby, 0 = as copied */
	int replace;		     /* remove a non-empty data directory */
	int start;		     /* start and wait for streaming */
	int timeout;		     /* seconds to wait for streaming, 0 = 60 */
	int dry_run;
	rpl_report_fn report;
	rpl_prompt_fn prompt;
	void *ctx;
} rpl_standby_opts;

/*
 * Sets up the standby: base backup into a staging directory beside PGDATA,
 * recovery configuration, passfile, then a rename into place; optional
 * slot and start.  On failure no directory that looks like a standby is
 * left (the staging directory is removed, a slot made by this run dropped).
 */
wal_err rpl_standby_run(const rpl_standby_opts *o, rpl_result *res, wal_error *e);

/* ---- Pure helpers, exposed for the unit tests ---- */

#define RPL_DEFAULT_USER "replicator"
#define RPL_KEEP_MB 1024 /* WAL kept for standbys, in MB */
#define RPL_MIN_WAL_SENDERS 10

/* "wal_keep_segments" up to 12, "wal_keep_size" from 13. */
const char *rpl_keep_setting(int version_num);

/* Value for the keep setting: segments (16 MB each unless seg_mb) or MB. */
long rpl_keep_value(int version_num, int seg_mb);

/* Whether the standby needs recovery.conf (11 and older) or standby.signal. */
int rpl_uses_recovery_conf(int version_num);

/* Password hashing and pg_hba method: scram-sha-256 from 10, md5 before. */
const char *rpl_auth_method(int version_num);

/* One setting to write: name and value (unquoted). */
typedef struct rpl_setting {
	char name[64];
	char value[1024];
} rpl_setting;

/* What the primary has configured now, per setting (NULL = unknown/default). */
typedef struct rpl_primary_state {
	int version_num;
	int seg_mb; /* wal_segment_size in MB (16) */
	const char *wal_level;
	const char *archive_mode;
	const char *archive_command;
	const char *max_wal_senders;
	const char *keep; /* value of rpl_keep_setting(version) with unit, e.g. "64" or "1GB" */
	const char *hot_standby;
	const char *listen_addresses;
	int senders_in_use;
} rpl_primary_state;

/*
 * The ALTER SYSTEM settings the primary still needs, given its configured
 * values: at most RPL_MAX_SETTINGS entries in out, count returned.  Never
 * both keep settings; values only raised, never lowered.  An existing
 * archive_command that runs walpush is kept unless archive_explicit.
 */
#define RPL_MAX_SETTINGS 8
int rpl_primary_settings(const rpl_primary_state *st, const char *archive_command,
			 int archive_explicit, const char *listen_addresses, rpl_setting *out);

/* Parses "64", "1GB", "512MB", "16384kB" into MB (base unit of wal_keep_size); -1 if not a size. */
long rpl_size_mb(const char *text);

/* A network: address family, 16 address bytes, prefix length. */
typedef struct rpl_net {
	int family; /* AF_INET or AF_INET6 */
	unsigned char addr[16];
	int bits;
} rpl_net;

/* Parses ADDRESS[/BITS] (IPv4 or IPv6); host bits are cleared. */
wal_err rpl_net_parse(const char *text, rpl_net *net, wal_error *e);

/* Prints net as "a.b.c.d/bits" into buf. */
void rpl_net_format(const rpl_net *net, char *buf, size_t size);

/* Whether outer contains every address of inner. */
int rpl_net_covers(const rpl_net *outer, const rpl_net *inner);

/* Longest role or slot name PostgreSQL keeps (NAMEDATALEN - 1). */
#define RPL_NAME_MAX 63

/*
 * Refuses a value that replinit would write into pg_hba.conf, a
 * postgresql.conf-style file, a .pgpass line or a connection string when
 * it holds a control character (a newline ends a line in all of them;
 * libpq splits on \v, \f, \r as on a space).  WAL_EINVAL with a one-line
 * message naming option, the value (escaped) and the character.
 */
wal_err rpl_check_text(const char *option, const char *value, wal_error *e);

/*
 * rpl_check_text for a role name, and what pg_hba.conf cannot express even
 * quoted: empty, longer than RPL_NAME_MAX, or a leading '/' (a regular
 * expression from PostgreSQL 16 on).  WAL_EINVAL naming option.
 */
wal_err rpl_check_role(const char *option, const char *name, wal_error *e);

/*
 * Whether c goes bare into a pg_hba.conf token and a libpq conninfo value
 * (a letter, digit, _ . or -); others are quoted.
 */
int rpl_plain_char(unsigned char c);

/*
 * A role name as a pg_hba.conf token: bare when it is only letters,
 * digits, _ . - and no keyword (all, sameuser, samerole, samegroup,
 * replication); else in double quotes with each " doubled, which keeps
 * blanks, commas, '#', a leading + or @ and keywords literal.  The name
 * must have passed rpl_check_role.  buf needs 2 * strlen(name) + 3 bytes.
 */
void rpl_hba_quote(const char *name, char *buf, size_t size);

/*
 * The pg_hba line for a replication role from net: "host replication ROLE NET METHOD",
 * ROLE quoted by rpl_hba_quote.
 */
void rpl_hba_line(const char *user, const rpl_net *net, const char *method, char *buf, size_t size);

/* Result of looking through pg_hba.conf for the line a standby would match. */
typedef struct rpl_hba_match {
	int line;	 /* 1-based line of the first matching rule, 0 = none */
	char method[32]; /* its method */
	int usable;	 /* it lets the role in with a password (or trust) */
} rpl_hba_match;

/*
 * Finds the first rule in hba_text that a replication connection of user
 * from every address of net would match (host, hostssl when ssl_on,
 * hostnossl when not; database list with the replication keyword; user
 * list with the role or all; an address covering net).
 */
void rpl_hba_find(const char *hba_text, const char *user, const rpl_net *net, int ssl_on,
		  rpl_hba_match *m);

/*
 * New pg_hba text with line inserted before rule before_line (1-based), or
 * appended when before_line is 0.  Returns malloc'd text or NULL.
 */
char *rpl_hba_insert(const char *hba_text, const char *line, int before_line);

/* Quotes a value for postgresql.conf / recovery.conf: '...' with ' and \ doubled. */
void rpl_guc_quote(const char *value, char *buf, size_t size);

/*
 * The conninfo for primary_conninfo: host, port, user, passfile,
 * application_name; never a password.  A value that is empty or holds
 * anything but letters, digits and _ . - / : @ , + % ~ is quoted as libpq
 * needs ('...' with ' and \ escaped), so no whitespace (\v and \f
 * included) can start another keyword.
 */
void rpl_conninfo(const char *host, int port, const char *user, const char *passfile,
		  const char *app_name, char *buf, size_t size);

/* One .pgpass line "host:port:replication:user:password" with : and \ escaped. */
void rpl_pgpass_line(const char *host, int port, const char *user, const char *password, char *buf,
		     size_t size);

/* Settings of a standby's recovery configuration. */
typedef struct rpl_recovery {
	const char *conninfo;
	const char *restore_command;
	const char *slot; /* NULL = none */
} rpl_recovery;

/*
 * The recovery settings for version_num into out (count returned, at most
 * RPL_MAX_SETTINGS): standby_mode on 11 and older, primary_conninfo,
 * restore_command, recovery_target_timeline, primary_slot_name.
 */
int rpl_recovery_settings(int version_num, const rpl_recovery *r, rpl_setting *out);

/* The name of the file recovery settings go to: "recovery.conf" or "postgresql.auto.conf". */
const char *rpl_recovery_file(int version_num);

/*
 * Merges settings into the text of a postgresql.conf-style file: earlier
 * lines setting the same names are dropped, the settings appended.
 * Returns malloc'd text or NULL.
 */
char *rpl_conf_merge(const char *text, const rpl_setting *set, int n);

/*
 * The value the file text gives name (last assignment wins), unquoted,
 * into buf; returns 1 if found, 0 if not.
 */
int rpl_conf_get(const char *text, const char *name, char *buf, size_t size);

/* Splits HOST[:PORT] or [V6]:PORT; port defaults to 5432. */
wal_err rpl_hostport_parse(const char *text, char *host, size_t size, int *port, wal_error *e);

/*
 * Turns a libpq or pg_basebackup error about connecting to the primary
 * into a one-line cause with what to do, e.g. "no pg_hba.conf entry ...;
 * run replinit primary --standby ADDRESS on the primary".  Returns the
 * wal_err class (WAL_EAUTH, WAL_EPERM, WAL_ENET, WAL_EUNSUPPORTED).
 */
wal_err rpl_classify_conn_error(const char *msg, char *buf, size_t size);

#endif
