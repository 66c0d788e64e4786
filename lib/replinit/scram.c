/*
 * The SCRAM-SHA-256 StoredKey check, so that replinit can tell whether a
 * role's stored verifier already matches the password file without sending
 * the password anywhere.  The digests come from libcrypto.
 */
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <stdlib.h>
#include <string.h>

#include "scram.h"

void rpl_sha256(const void *data, size_t len, unsigned char out[32])
{
	unsigned int out_len = 32;
	EVP_Digest(data, len, out, &out_len, EVP_sha256(), NULL);
}

void rpl_hmac_sha256(const void *key, size_t key_len, const void *msg, size_t msg_len,
		     unsigned char out[32])
{
	unsigned int out_len = 32;
	HMAC(EVP_sha256(), key, (int)key_len, msg, msg_len, out, &out_len);
}

/* Decodes standard base64 into out (size bytes); returns the byte count or -1. */
static int b64_decode(const char *text, size_t len, unsigned char *out, size_t size)
{
	unsigned char buf[256];
	if (len == 0 || len % 4 != 0 || len / 4 * 3 > sizeof(buf))
		return -1;
	int n = EVP_DecodeBlock(buf, (const unsigned char *)text, (int)len);
	if (n < 0)
		return -1;
	/* EVP_DecodeBlock counts the padding as zero bytes */
	for (size_t i = len; i > 0 && text[i - 1] == '='; i--)
		n--;
	if ((size_t)n > size)
		return -1;
	memcpy(out, buf, (size_t)n);
	return n;
}

int rpl_scram_matches(const char *stored, const char *password)
{
	/* SCRAM-SHA-256$<iterations>:<salt>$<StoredKey>:<ServerKey> */
	const char *iter_at, *salt_at, *key_at, *server_at;
	unsigned char salt[128], stored_key[64], salted[32], client_key[32], computed[32];
	long iterations;
	int salt_len, key_len;

	if (strncmp(stored, "SCRAM-SHA-256$", 14) != 0)
		return 0;
	iter_at = stored + 14;
	iterations = strtol(iter_at, NULL, 10);
	salt_at = strchr(iter_at, ':');
	key_at = salt_at ? strchr(salt_at, '$') : NULL;
	server_at = key_at ? strchr(key_at, ':') : NULL;
	if (!salt_at || !key_at || !server_at || iterations <= 0 || iterations > 10000000)
		return 0;
	salt_at++;
	salt_len = b64_decode(salt_at, (size_t)(key_at - salt_at), salt, sizeof salt);
	key_at++;
	key_len = b64_decode(key_at, (size_t)(server_at - key_at), stored_key, sizeof stored_key);
	if (salt_len <= 0 || key_len != 32)
		return 0;
	/* SaltedPassword = PBKDF2-HMAC-SHA-256(password, salt, iterations) */
	if (PKCS5_PBKDF2_HMAC(password, (int)strlen(password), salt, salt_len, (int)iterations,
			      EVP_sha256(), sizeof(salted), salted) != 1)
		return 0;
	rpl_hmac_sha256(salted, sizeof(salted), "Client Key", 10, client_key);
	rpl_sha256(client_key, sizeof(client_key), computed);
	return memcmp(computed, stored_key, sizeof(computed)) == 0;
}
