/*
 * SHA-256 (libcrypto) and the SCRAM-SHA-256 verifier check replinit primary uses to
 * see whether a role's password already is the one in the password file.
 */
#ifndef RPL_SCRAM_H
#define RPL_SCRAM_H

#include <stddef.h>

/* SHA-256 of len bytes. */
void rpl_sha256(const void *data, size_t len, unsigned char out[32]);

/* HMAC-SHA-256 of msg under key. */
void rpl_hmac_sha256(const void *key, size_t key_len, const void *msg, size_t msg_len,
		     unsigned char out[32]);

/*
 * Whether password produces the StoredKey of a PostgreSQL verifier
 * "SCRAM-SHA-256$<iterations>:<salt>$<StoredKey>:<ServerKey>"; 0 for any
 * other or malformed verifier.  (No SASLprep: an ASCII password is its own
 * normalization; others may compare unequal and are then simply set again.)
 */
int rpl_scram_matches(const char *stored, const char *password);

#endif
