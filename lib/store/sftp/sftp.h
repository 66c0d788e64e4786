/*
 * What the files of the SFTP store share, and nothing outside this folder
 * includes: the store handle, the session (session.c: connect, handshake,
 * host-key check, authentication), the mapping of libssh2 failures to
 * wal_err and the retry loop (store.c), and uploads (write.c).
 */
#ifndef WAL_STORE_SFTP_SFTP_H
#define WAL_STORE_SFTP_SFTP_H

#include <libssh2.h>
#include <libssh2_sftp.h>

#include "sys/fileio.h"
#include "store/store.h"

/* Bytes handed to libssh2_sftp_write at once: libssh2 1.10 splits them
 * into 30000-byte SFTP writes and keeps all of them in flight.  1 MiB
 * measured fastest on loopback; beyond 2 MiB libssh2's bookkeeping of
 * outstanding writes makes it slower. */
#ifndef SFTP_BUF_SIZE
#define SFTP_BUF_SIZE (4 * WAL_IO_CHUNK)
#endif

/* Bytes asked of libssh2_sftp_read at once; it reads ahead four times that. */
#ifndef SFTP_READ_SIZE
#define SFTP_READ_SIZE WAL_IO_CHUNK
#endif

typedef struct sftp_store {
	wal_store base;
	char *user;
	char *host;
	int port;
	char *root;	 /* absolute remote path of the archive root */
	char where[512]; /* "sftp://user@host:port", for messages */

	char *key_file; /* NULL: the default identities */
	char *passphrase_file;
	char *known_hosts;
	int use_agent;
	int require_fsync;
	int file_mode;
	int timeout; /* seconds */
	int retries;

	int sock;
	LIBSSH2_SESSION *session;
	LIBSSH2_SFTP *sftp;
	int dir_fsync_broken; /* the server cannot fsync a directory handle */
	unsigned char *buf;
} sftp_store;

/* ---- session.c ---------------------------------------------------------- */

/* Connects, verifies the host key against s->known_hosts, authenticates and
 * starts SFTP.  On failure the connection is torn down (s->sftp NULL). */
wal_err wal_sftp_connect(sftp_store *s, wal_error *e);

/* Tears the connection down; a broken one (broken != 0) is not asked to say
 * goodbye.  Leaves s->sock -1 and s->session, s->sftp NULL. */
void wal_sftp_disconnect(sftp_store *s, int broken);

/* A libssh2 failure rc that is not an SFTP status (link, timeout, memory),
 * during what on remote ("" for the session itself): WAL_ETIMEOUT,
 * WAL_ENOMEM or WAL_ENET, with libssh2's message. */
wal_err wal_sftp_ssh_fail(sftp_store *s, int rc, const char *remote, const char *what,
			  wal_error *e);

/* ---- store.c ------------------------------------------------------------ */

/* One try of an operation on a connected store; attempt counts from 0. */
typedef wal_err (*wal_sftp_op_fn)(sftp_store *s, void *arg, int attempt, wal_error *e);

/* Runs op, connecting first if needed, reconnecting and retrying (with
 * backoff, s->retries times) after transient failures. */
wal_err wal_sftp_with_retries(sftp_store *s, wal_sftp_op_fn op, void *arg, wal_error *e);

/* The remote path of a store path ("" is the root). */
void wal_sftp_remote_path(sftp_store *s, const char *path, char *out, size_t cap);

/* The SFTP status of a failed call rc (read it before the next call), 0 if
 * rc is not LIBSSH2_ERROR_SFTP_PROTOCOL. */
unsigned long wal_sftp_status(sftp_store *s, int rc);

/* Maps a failed SFTP call (rc, and the status it got) during what on remote
 * to a wal_err. */
wal_err wal_sftp_op_fail_status(sftp_store *s, int rc, unsigned long status, const char *what,
				const char *remote, wal_error *e);

/* Maps the SFTP call that just failed with rc on remote to a wal_err. */
wal_err wal_sftp_op_fail(sftp_store *s, int rc, const char *what, const char *remote, wal_error *e);

/* Closes h (NULL is allowed); after a failure of the link (rc transient) the
 * socket is shut down first, so that libssh2 frees the handle at once. */
void wal_sftp_close_handle(sftp_store *s, LIBSSH2_SFTP_HANDLE *h, wal_err rc);

/* Stat of a remote path: 1 exists (attrs filled), 0 absent, <0 libssh2 error. */
int wal_sftp_remote_stat(sftp_store *s, const char *remote, LIBSSH2_SFTP_ATTRIBUTES *attrs);

/* ---- write.c ------------------------------------------------------------ */

/* The driver's put (see store.h), with retries; path is valid. */
wal_err wal_sftp_put(sftp_store *s, const char *path, wal_source *src, wal_error *e);

/* The driver's sync (see store.h), with retries; path is valid. */
wal_err wal_sftp_sync(sftp_store *s, const char *path, wal_error *e);

#endif
