/*
 * The primitives of the age format, from OpenSSL's libcrypto (age_prim.h):
 * the X25519 exchange, HKDF-SHA256 and HMAC-SHA256.
 */
#include <string.h>
#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/kdf.h>
#include "io/age_prim.h"

int wal_age_x25519(const unsigned char secret[32], const unsigned char *peer, unsigned char out[32])
{
	EVP_PKEY *key = EVP_PKEY_new_raw_private_key(EVP_PKEY_X25519, NULL, secret, 32);
	EVP_PKEY *other = NULL;
	EVP_PKEY_CTX *ctx = NULL;
	size_t len = 32;
	int ok = 0;
	if (!key)
		goto out;
	if (!peer) { /* the public key of secret */
		ok = EVP_PKEY_get_raw_public_key(key, out, &len) == 1 && len == 32;
		goto out;
	}
	other = EVP_PKEY_new_raw_public_key(EVP_PKEY_X25519, NULL, peer, 32);
	ctx = other ? EVP_PKEY_CTX_new(key, NULL) : NULL;
	/* OpenSSL refuses an all-zero shared secret (a low-order point), as age must */
	ok = ctx && EVP_PKEY_derive_init(ctx) == 1 && EVP_PKEY_derive_set_peer(ctx, other) == 1 &&
	     EVP_PKEY_derive(ctx, out, &len) == 1 && len == 32;
out:
	EVP_PKEY_CTX_free(ctx);
	EVP_PKEY_free(other);
	EVP_PKEY_free(key);
	return ok;
}

int wal_age_hkdf(const unsigned char *ikm, size_t ikm_len, const unsigned char *salt,
		 size_t salt_len, const char *info, unsigned char out[32])
{
	EVP_KDF *kdf = EVP_KDF_fetch(NULL, "HKDF", NULL);
	EVP_KDF_CTX *ctx = kdf ? EVP_KDF_CTX_new(kdf) : NULL;
	OSSL_PARAM params[5], *p = params;
	int ok = 0;
	if (!ctx)
		goto out;
	*p++ = OSSL_PARAM_construct_utf8_string(OSSL_KDF_PARAM_DIGEST, (char *)"SHA256", 0);
	*p++ = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_KEY, (void *)ikm, ikm_len);
	/* no salt is HMAC's zero key, the same as an empty salt (RFC 5869) */
	if (salt_len)
		*p++ = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_SALT, (void *)salt,
							 salt_len);
	*p++ = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_INFO, (void *)info, strlen(info));
	*p = OSSL_PARAM_construct_end();
	ok = EVP_KDF_derive(ctx, out, 32, params) == 1;
out:
	EVP_KDF_CTX_free(ctx);
	EVP_KDF_free(kdf);
	return ok;
}

int wal_age_hmac(const unsigned char key[32], const void *data, size_t len, unsigned char out[32])
{
	unsigned int out_len = 32;
	return HMAC(EVP_sha256(), key, 32, data, len, out, &out_len) != NULL && out_len == 32;
}
