/*
 * The primitives the age format is built from (OpenSSL's libcrypto), shared
 * by the format (age.c) and its keys (age_keys.c); not for other modules.
 */
#ifndef WAL_AGE_PRIM_H
#define WAL_AGE_PRIM_H

#include <stddef.h>

/*
 * X25519(secret, peer) into out, or with peer NULL the public key of secret.
 * 0 on failure, also for an all-zero shared secret (a low-order point), which
 * age must refuse.
 */
int wal_age_x25519(const unsigned char secret[32], const unsigned char *peer,
		   unsigned char out[32]);

/* HKDF-SHA256(ikm, salt, info) into 32 bytes; salt may be empty.  0 on failure. */
int wal_age_hkdf(const unsigned char *ikm, size_t ikm_len, const unsigned char *salt,
		 size_t salt_len, const char *info, unsigned char out[32]);

/* HMAC-SHA256 under a 32-byte key.  0 on failure. */
int wal_age_hmac(const unsigned char key[32], const void *data, size_t len, unsigned char out[32]);

#endif
