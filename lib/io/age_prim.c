/*
 * The primitives of the age format (age_prim.h): the module that holds them
 * is loaded once, on first need; the wrappers call through its table.
 */
#include <pthread.h>
#include <string.h>
#include "io/age_prim.h"
#include "sys/module.h"

/* A binary that links the primitives in (the unit tests) uses them directly. */
extern const wal_age_prim wal_age_prim_openssl __attribute__((weak));

static pthread_once_t once = PTHREAD_ONCE_INIT;
static const wal_age_prim *prim;
static wal_error load_error;

static void load(void)
{
	if (&wal_age_prim_openssl)
		prim = &wal_age_prim_openssl;
	else
		prim = wal_module_load("encryption module", WAL_AGE_PRIM_MODULE,
				       WAL_AGE_PRIM_SYMBOL, &load_error);
}

const wal_age_prim *wal_age_prim_load(wal_error *e)
{
	pthread_once(&once, load);
	if (!prim && e)
		*e = load_error;
	return prim;
}

int wal_age_x25519(const unsigned char secret[32], const unsigned char *peer, unsigned char out[32])
{
	const wal_age_prim *p = wal_age_prim_load(NULL);
	return p && p->x25519(secret, peer, out);
}

int wal_age_hkdf(const unsigned char *ikm, size_t ikm_len, const unsigned char *salt,
		 size_t salt_len, const char *info, unsigned char out[32])
{
	const wal_age_prim *p = wal_age_prim_load(NULL);
	return p && p->hkdf(ikm, ikm_len, salt, salt_len, info, out);
}

int wal_age_hmac(const unsigned char key[32], const void *data, size_t len, unsigned char out[32])
{
	const wal_age_prim *p = wal_age_prim_load(NULL);
	return p && p->hmac(key, data, len, out);
}

int wal_age_random(void *buf, size_t len)
{
	const wal_age_prim *p = wal_age_prim_load(NULL);
	return p && p->random(buf, len);
}

wal_age_aead *wal_age_aead_new(const unsigned char key[32], int encrypt)
{
	const wal_age_prim *p = wal_age_prim_load(NULL);
	return p ? p->aead_new(key, encrypt) : NULL;
}

int wal_age_aead_seal(wal_age_aead *aead, const unsigned char nonce[12], const unsigned char *in,
		      size_t len, unsigned char *out)
{
	/* an aead exists only once the table is loaded */
	return prim->aead_seal(aead, nonce, in, len, out);
}

int wal_age_aead_open(wal_age_aead *aead, const unsigned char nonce[12], const unsigned char *in,
		      size_t len, unsigned char *out)
{
	return prim->aead_open(aead, nonce, in, len, out);
}

void wal_age_aead_free(wal_age_aead *aead)
{
	if (aead)
		prim->aead_free(aead);
}

int wal_age_memcmp(const void *a, const void *b, size_t n)
{
	const volatile unsigned char *x = a, *y = b;
	unsigned char diff = 0;
	for (size_t i = 0; i < n; i++)
		diff |= x[i] ^ y[i];
	return diff != 0;
}

void wal_age_wipe(void *p, size_t n)
{
	explicit_bzero(p, n);
}
