/*
 * What the two halves of the age format share (age.c writes, age_read.c
 * reads), and nothing outside them includes: the constants of age v1 and
 * of walarchive's duplicate stanza, base64 as age writes it, and the
 * ChaCha20-Poly1305 calls both sides make.
 */
#ifndef WAL_IO_AGE_FORMAT_H
#define WAL_IO_AGE_FORMAT_H

#include <stddef.h>
#include <stdint.h>

#define AGE_VERSION_LINE "age-encryption.org/v1"
#define X25519_LABEL "age-encryption.org/v1/X25519"
#define DUP_TYPE "walarchive-dup"
#define FILE_KEY_LEN 16
#define NONCE_LEN 16
#define TAG_LEN 16
#define COLUMNS 64

/*
 * Decodes len characters of unpadded base64 into out (cap bytes); returns the
 * decoded length, or -1 unless the text is canonical (as age requires: no
 * padding, no stray bits).
 */
long wal_age_b64_decode(const char *in, size_t len, unsigned char *out, size_t cap);

/* Seals or opens 32 or 16 bytes under key with the all-zero nonce (a stanza body). */
int wal_age_aead_once(const unsigned char key[32], int encrypt, const unsigned char *in, size_t len,
		      unsigned char *out);

/* The chunk nonce: an 11-byte big-endian counter and the last-chunk flag. */
void wal_age_chunk_nonce(uint64_t counter, int last, unsigned char nonce[12]);

#endif
