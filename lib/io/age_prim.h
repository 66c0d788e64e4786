/*
 * The primitives the age format is built from, shared by the format (age.c)
 * and its keys (age_keys.c); not for other modules.  They come from OpenSSL's
 * libcrypto through a table of functions that a loadable module exports
 * (walarchive_crypto.so, lib/io/crypto/), loaded on first need, so that a
 * program that never encrypts nor decrypts never maps libcrypto.
 */
#ifndef WAL_AGE_PRIM_H
#define WAL_AGE_PRIM_H

#include <stddef.h>
#include "base/error.h"

#define WAL_AGE_PRIM_MODULE "walarchive_crypto.so"
#define WAL_AGE_PRIM_SYMBOL "wal_age_prim_openssl"

/* A ChaCha20-Poly1305 key set up for sealing or opening. */
typedef struct wal_age_aead wal_age_aead;

/* The table the module exports; every function returns 0 on failure. */
typedef struct wal_age_prim {
	/* X25519(secret, peer), or with peer NULL the public key of secret;
	 * 0 also for an all-zero shared secret (a low-order point) */
	int (*x25519)(const unsigned char secret[32], const unsigned char *peer,
		      unsigned char out[32]);
	/* HKDF-SHA256(ikm, salt, info) into 32 bytes; salt may be empty */
	int (*hkdf)(const unsigned char *ikm, size_t ikm_len, const unsigned char *salt,
		    size_t salt_len, const char *info, unsigned char out[32]);
	/* HMAC-SHA256 under a 32-byte key */
	int (*hmac)(const unsigned char key[32], const void *data, size_t len,
		    unsigned char out[32]);
	/* len bytes from the cryptographic random generator */
	int (*random)(void *buf, size_t len);
	/* ChaCha20-Poly1305 under key; NULL on failure */
	wal_age_aead *(*aead_new)(const unsigned char key[32], int encrypt);
	/* seals len bytes: out = ciphertext || 16-byte tag */
	int (*aead_seal)(wal_age_aead *aead, const unsigned char nonce[12], const unsigned char *in,
			 size_t len, unsigned char *out);
	/* opens len bytes (ciphertext || tag) into out; 0 if it does not authenticate */
	int (*aead_open)(wal_age_aead *aead, const unsigned char nonce[12], const unsigned char *in,
			 size_t len, unsigned char *out);
	void (*aead_free)(wal_age_aead *aead);
} wal_age_prim;

/*
 * The primitives, loaded on the first call (thread-safe); later calls return
 * the same table.  NULL and WAL_EUNSUPPORTED if the module cannot be loaded:
 * then nothing is encrypted nor decrypted.  Every entry point of age.h that
 * needs a primitive calls it first; the wrappers below then find it loaded.
 */
const wal_age_prim *wal_age_prim_load(wal_error *e);

/* The primitives of the table loaded; each returns 0 if none is. */
int wal_age_x25519(const unsigned char secret[32], const unsigned char *peer,
		   unsigned char out[32]);
int wal_age_hkdf(const unsigned char *ikm, size_t ikm_len, const unsigned char *salt,
		 size_t salt_len, const char *info, unsigned char out[32]);
int wal_age_hmac(const unsigned char key[32], const void *data, size_t len, unsigned char out[32]);
int wal_age_random(void *buf, size_t len);
wal_age_aead *wal_age_aead_new(const unsigned char key[32], int encrypt);
int wal_age_aead_seal(wal_age_aead *aead, const unsigned char nonce[12], const unsigned char *in,
		      size_t len, unsigned char *out);
int wal_age_aead_open(wal_age_aead *aead, const unsigned char nonce[12], const unsigned char *in,
		      size_t len, unsigned char *out);
void wal_age_aead_free(wal_age_aead *aead);

/* Compares n bytes in a time that does not depend on where they differ: 0 if equal. */
int wal_age_memcmp(const void *a, const void *b, size_t n);

/* Overwrites n bytes with zeros, in a way the compiler does not remove. */
void wal_age_wipe(void *p, size_t n);

#endif
