/*
 * The primitives of the age format from OpenSSL's libcrypto (age_prim.h):
 * the X25519 exchange, HKDF-SHA256, HMAC-SHA256, random bytes and
 * ChaCha20-Poly1305.  Built into walarchive_crypto.so, the one part of the
 * age code that links libcrypto; it calls nothing of the library.
 */
#include <limits.h>
#include <string.h>
#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/kdf.h>
#include <openssl/rand.h>
#include "io/age_prim.h"

#define TAG_LEN 16

static int x25519(const unsigned char secret[32], const unsigned char *peer, unsigned char out[32])
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

static int hkdf(const unsigned char *ikm, size_t ikm_len, const unsigned char *salt,
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

static int hmac(const unsigned char key[32], const void *data, size_t len, unsigned char out[32])
{
	unsigned int out_len = 32;
	return HMAC(EVP_sha256(), key, 32, data, len, out, &out_len) != NULL && out_len == 32;
}

static int random_bytes(void *buf, size_t len)
{
	return len <= INT_MAX && RAND_bytes(buf, (int)len) == 1;
}

static wal_age_aead *aead_new(const unsigned char key[32], int encrypt)
{
	EVP_CIPHER_CTX *ctx = EVP_CIPHER_CTX_new();
	if (ctx && EVP_CipherInit_ex(ctx, EVP_chacha20_poly1305(), NULL, key, NULL, encrypt) != 1) {
		EVP_CIPHER_CTX_free(ctx);
		ctx = NULL;
	}
	return (wal_age_aead *)ctx;
}

static int aead_seal(wal_age_aead *aead, const unsigned char nonce[12], const unsigned char *in,
		     size_t len, unsigned char *out)
{
	EVP_CIPHER_CTX *ctx = (EVP_CIPHER_CTX *)aead;
	int n = 0, fin = 0;
	if (len > INT_MAX || EVP_EncryptInit_ex(ctx, NULL, NULL, NULL, nonce) != 1 ||
	    (len && EVP_EncryptUpdate(ctx, out, &n, in, (int)len) != 1) ||
	    EVP_EncryptFinal_ex(ctx, out + n, &fin) != 1)
		return 0;
	return EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_AEAD_GET_TAG, TAG_LEN, out + len) == 1;
}

static int aead_open(wal_age_aead *aead, const unsigned char nonce[12], const unsigned char *in,
		     size_t len, unsigned char *out)
{
	EVP_CIPHER_CTX *ctx = (EVP_CIPHER_CTX *)aead;
	int n = 0, fin = 0;
	size_t ct_len = len - TAG_LEN;
	if (len < TAG_LEN || ct_len > INT_MAX ||
	    EVP_DecryptInit_ex(ctx, NULL, NULL, NULL, nonce) != 1 ||
	    (ct_len && EVP_DecryptUpdate(ctx, out, &n, in, (int)ct_len) != 1) ||
	    EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_AEAD_SET_TAG, TAG_LEN, (void *)(in + ct_len)) != 1)
		return 0;
	return EVP_DecryptFinal_ex(ctx, out + n, &fin) == 1;
}

static void aead_free(wal_age_aead *aead)
{
	EVP_CIPHER_CTX_free((EVP_CIPHER_CTX *)aead);
}

const wal_age_prim wal_age_prim_openssl = {
	.x25519 = x25519,
	.hkdf = hkdf,
	.hmac = hmac,
	.random = random_bytes,
	.aead_new = aead_new,
	.aead_seal = aead_seal,
	.aead_open = aead_open,
	.aead_free = aead_free,
};
