/*
 * walarchive.conf: `key = value` lines, `#` comments, quoted values allowed,
 * as in postgresql.conf.  Unknown keys and bad values are errors naming the
 * file and line.  The file comes from -c, else $WALARCHIVE_CONFIG, else
 * /etc/walarchive.conf (which may be absent); `--set key=value` overrides.
 */
#ifndef WAL_CONFIG_H
#define WAL_CONFIG_H

#include <stdint.h>
#include "base/error.h"

#define WAL_CONFIG_DEFAULT_PATH "/etc/walarchive.conf"
#define WAL_SPOOL_DEFAULT "/var/spool/walarchive"

typedef enum { WAL_COMPRESS_NONE = 0, WAL_COMPRESS_LZ4 = 1, WAL_COMPRESS_ZSTD = 2 } wal_compress;
typedef enum { WAL_ONERR_AUTO = 0, WAL_ONERR_STOP, WAL_ONERR_CONTINUE } wal_on_error;
typedef enum { WAL_S3_HOST = 0, WAL_S3_PATH = 1 } wal_s3_style;
typedef enum { WAL_CLEARTEXT_WARN = 0, WAL_CLEARTEXT_REFUSE = 1 } wal_cleartext;

typedef struct wal_config {
	char *archive;	       /* path, file://, sftp://, http(s)://, s3:// */
	wal_compress compress; /* default lz4 */
	int compress_level;    /* default 1 (lz4); zstd: 3 when unset */
	int file_mode;	       /* mode of archived objects, default 0600 */

	char *ssh_key;		       /* private key file */
	char *ssh_key_passphrase_file; /* first line is the passphrase */
	char *ssh_known_hosts;	       /* default ~/.ssh/known_hosts */
	int ssh_agent;		       /* on|off, default off */
	int sftp_require_fsync; /* on|off, default on: refuse servers without fsync@openssh.com */

	char *http_user;
	char *http_password; /* secret */
	char *tls_ca_file;
	int tls_verify; /* on|off, default on */
	wal_cleartext
		http_cleartext_auth; /* http_password over http://: warn (default) or refuse */

	char *s3_endpoint;	   /* host[:port] or URL; default s3.<region>.amazonaws.com */
	char *s3_region;	   /* default us-east-1 */
	wal_s3_style s3_uri_style; /* default host */
	char *s3_access_key;	   /* secret-ish; else AWS_ACCESS_KEY_ID */
	char *s3_secret_key;	   /* secret; else AWS_SECRET_ACCESS_KEY */
	char *s3_session_token;	   /* secret; else AWS_SESSION_TOKEN */
	char *s3_sts_endpoint;	   /* STS for a web identity; else AWS_ENDPOINT_URL_STS */
	char *s3_sse;		   /* "AES256" or "aws:kms" on every PUT; NULL = none */
	char *s3_sse_kms_key_id;   /* with s3_sse = aws:kms; NULL = the bucket's default */
	char *s3_storage_class;	   /* x-amz-storage-class on every PUT; NULL = none */

	char *azure_endpoint; /* blob service URL; default https://<account>.blob.core.windows.net */
	char *azure_account_key; /* secret, only from the file: Shared Key (base64) */
	char *azure_sas_token;	 /* secret, only from the file: a SAS query string */

	int timeout; /* seconds for any one network operation, default 30 */
	int retries; /* attempts after the first on transient errors, default 3 */

	uint64_t system_id;	     /* 0 = not set */
	wal_on_error fetch_on_error; /* walfetch hard errors: auto|stop|continue */
	int fetch_fsync;	     /* on|off, default off: PostgreSQL fsyncs what it keeps */

	/* age encryption (io/age.h): walpush encrypts to these public keys
	   (age1... inline, or a file of them); walfetch, walprune and walcheck
	   --deep decrypt with this age-keygen identity file (mode 0600) */
	char *encrypt_recipients;
	char *encrypt_identity;

	int push_ahead;	  /* ready files pushed beyond the one asked for;
					   -1 = auto (default): 64 over a network, 0 locally */
	int fetch_ahead;  /* segments fetched beyond the one asked for, default 16 */
	int parallel;	  /* transfers at once, default 4 */
	char *spool_dir;  /* push/fetch-ahead state, outside the data directory;
					   default /var/spool/walarchive; off if not writable */
	int backlog_warn; /* ready segments before walpush reports a backlog */

	int log_level; /* WAL_LOG_* from log.h, default notice */

	char *source;			   /* the file that was read, or NULL */
	struct wal_config_origin *origins; /* per setting, where its value was set (config.c) */
} wal_config;

/* Fills c with the defaults of every setting. */
void wal_config_init(wal_config *c);

/* Frees what c owns (secrets are wiped first). */
void wal_config_free(wal_config *c);

/*
 * Resolves the config path (explicit, else $WALARCHIVE_CONFIG, else the
 * default) and reads it into c.  A missing default file is not an error; a
 * missing explicit one is.  A file holding secrets that others can read is
 * refused (WAL_ECONFIG).
 */
wal_err wal_config_load(wal_config *c, const char *explicit_path, wal_error *e);

/* Reads one file into c; errors name "path:line". */
wal_err wal_config_read_file(wal_config *c, const char *path, wal_error *e);

/* Applies one "key=value" (as given to --set); origin names it in errors. */
wal_err wal_config_set_arg(wal_config *c, const char *key_value, wal_error *e);

/* Applies one key and value; origin and line (0 = none) name it in errors. */
wal_err wal_config_set(wal_config *c, const char *key, const char *value, const char *origin,
		       int line, wal_error *e);

/* Whether key names a setting. */
int wal_config_known(const char *key);

/*
 * Where key's value was set: "FILE:LINE" or "--set".  NULL for a default,
 * and for a value the caller has replaced since (a copy of c pointed at
 * another string), which no line of the file holds.
 */
const char *wal_config_origin(const wal_config *c, const char *key);

/*
 * Names where key was set in e's message: "FILE:LINE: " (or "--set: ") goes
 * before it when wal_config_origin knows.  Returns e->code, so that a check
 * can end with `return wal_config_blame(c, "archive", e);`.
 */
wal_err wal_config_blame(const wal_config *c, const char *key, wal_error *e);

/*
 * Checks what needs the settings together, once the file and the --set
 * overrides are read: archive is set and parses (url.h), and where a
 * password would go over plain http://.  WAL_ECONFIG naming the file and
 * line on failure.  warning (cap bytes) receives one line the caller
 * should show, or "" when there is nothing to say.
 */
wal_err wal_config_check(const wal_config *c, char *warning, size_t cap, wal_error *e);

#endif
