/*
 * What the files of the S3 credential chain share, and nothing outside
 * this folder includes: the helpers of credentials.c (the environment,
 * small secret files, one request to a credentials endpoint, the process's
 * cache) and the sources the host serves, in credentials_host.c (a
 * container's credentials endpoint and the EC2 instance metadata service).
 */
#ifndef WAL_STORE_S3_SOURCES_H
#define WAL_STORE_S3_SOURCES_H

#include <stddef.h>
#include "base/config.h"
#include "base/error.h"
#include "store/http/http.h"
#include "store/s3/credentials.h"

/* The variable name's value, or NULL when it is unset or empty. */
const char *wal_s3_cred_env(const char *name);

/* Reads a small file whole into *text (NUL-terminated, to be freed and
 * wiped by the caller).  Returns 0 with errno set on failure. */
int wal_s3_cred_read_small(const char *path, char **text, size_t *len);

/* Wipes and frees a NUL-terminated text (NULL: nothing). */
void wal_s3_cred_wipe_text(char *text);

/* One request to a credentials endpoint on a handle of its own. */
wal_err wal_s3_cred_call(const wal_config *cfg, const char *method, const char *url,
			 const char *what, const char *const *headers, const char *body,
			 int timeout, int retries, wal_http_resp *resp, wal_error *e);

/* Fills the bookkeeping of freshly fetched credentials and caches them
 * under key. */
void wal_s3_cred_fetched(wal_s3_creds *out, wal_s3_source source, const char *key);

/* The cached credentials for key when they are not yet due: 1 and *out. */
int wal_s3_cred_cached(const char *key, wal_s3_creds *out);

/* The container credentials endpoint (AWS_CONTAINER_CREDENTIALS_*_URI);
 * *found says whether it is configured. */
wal_err wal_s3_cred_from_container(const wal_config *cfg, int use_cache, wal_s3_creds *out,
				   int *found, wal_error *e);

/* The instance metadata service (IMDSv2); why an endpoint nobody set did
 * not answer goes into cause, for the chain's final message. */
wal_err wal_s3_cred_from_imds(const wal_config *cfg, int use_cache, wal_s3_creds *out, int *found,
			      char *cause, size_t cause_cap, wal_error *e);

#endif
