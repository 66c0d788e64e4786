/*
 * Encryption at rest in the age v1 format (age-encryption.org/v1): X25519
 * recipients, an HMAC-SHA256 over the header, and a ChaCha20-Poly1305
 * STREAM payload in 64 KiB chunks, so that `age -d -i KEY` opens every
 * object and `age -r PUBKEY` makes objects walfetch restores.  The
 * primitives come from OpenSSL in a module loaded on first need
 * (age_prim.h); only the format is written here.  Every function below
 * that needs them (loading keys, a source, a sink that decrypts) fails with
 * WAL_EUNSUPPORTED, naming the module, if it cannot be loaded.
 *
 * A source encrypts a stream (walpush); a sink decrypts one and passes on
 * only plaintext whose chunk authenticated (walfetch).  Both keep one chunk
 * in memory.  Keys: `age1...` recipients (bech32) and `AGE-SECRET-KEY-1...`
 * identities in age-keygen's file format.
 */
#ifndef WAL_AGE_H
#define WAL_AGE_H

#include <stddef.h>
#include <stdint.h>
#include "base/error.h"
#include "base/stream.h"

#define WAL_AGE_SUFFIX ".age"
#define WAL_AGE_CHUNK (64 * 1024)
#define WAL_AGE_MAX_KEYS 16
/* Longest header the sink accepts (many recipients fit; a stream that never
 * ends its header does not). */
#define WAL_AGE_HEADER_MAX (64 * 1024)

/* A set of X25519 keys: public keys always, secret keys for identities. */
typedef struct wal_age_keys {
	int count;
	int has_secret;
	unsigned char pub[WAL_AGE_MAX_KEYS][32];
	unsigned char secret[WAL_AGE_MAX_KEYS][32];
} wal_age_keys;

/* Decodes one `age1...` recipient into its public key.  WAL_EINVAL if not one. */
wal_err wal_age_recipient_parse(const char *text, unsigned char pub[32], wal_error *e);

/* Encodes a public key as an `age1...` recipient (out: 63 bytes and NUL). */
void wal_age_recipient_format(const unsigned char pub[32], char out[64]);

/* Decodes one `AGE-SECRET-KEY-1...` identity (and its public key). */
wal_err wal_age_identity_parse(const char *text, unsigned char secret[32], unsigned char pub[32],
			       wal_error *e);

/*
 * Loads the recipients of a setting: `age1...` keys separated by spaces or
 * commas, or else the path of a file holding one per line (`#` comments and
 * blank lines allowed, as `age -R` reads).  WAL_ECONFIG naming the key, the
 * file and line, or the cause (missing, unreadable, malformed, none).
 */
wal_err wal_age_recipients_load(wal_age_keys *keys, const char *setting, wal_error *e);

/*
 * Loads the identities of an age-keygen file at path.  The file must not be
 * readable or writable by group or others (WAL_ECONFIG otherwise, as for a
 * missing, unreadable or malformed file, or one without any identity).
 */
wal_err wal_age_identities_load(wal_age_keys *keys, const char *path, wal_error *e);

/* Wipes secret keys from memory. */
void wal_age_keys_wipe(wal_age_keys *keys);

/*
 * Duplicate tags: for each recipient r, a key K_r derived from r's public
 * key, its id HMAC(K_r, "id") (8 bytes) and the tag HMAC(K_r, name || 0 ||
 * digest), digest the XXH3-128 of the plaintext (wal_age_digest_fd).  Stored as `walarchive-dup` stanzas in the header,
 * which age ignores; a push host with the same recipients recomputes them
 * to tell an identical retry from different content without a secret key.
 */
#define WAL_AGE_DIGEST_LEN 16

typedef struct wal_age_dup {
	int count;
	unsigned char key_id[WAL_AGE_MAX_KEYS][8];
	unsigned char tag[WAL_AGE_MAX_KEYS][32];
} wal_age_dup;

void wal_age_dup_compute(const wal_age_keys *recipients, const char *name,
			 const unsigned char digest[WAL_AGE_DIGEST_LEN], wal_age_dup *out);

/*
 * Compares the tags of an object's header (have) with the ones computed here
 * (want): 1 if a tag under a shared key id matches, 0 if one differs, -1 if
 * no key id is shared (the object was encrypted to other recipients).
 */
int wal_age_dup_match(const wal_age_dup *have, const wal_age_dup *want);

/*
 * The digest of the file open as fd that duplicate tags cover: XXH3-128,
 * read from offset 0.  Not a cryptographic hash: the tags are keyed (HMAC),
 * and the two contents they compare are both written by PostgreSQL under
 * one name, which nobody chooses to collide (see README, "Duplicates").
 */
wal_err wal_age_digest_fd(int fd, const char *path, unsigned char out[WAL_AGE_DIGEST_LEN],
			  wal_error *e);

typedef struct wal_age_source wal_age_source;
typedef struct wal_age_sink wal_age_sink;

/*
 * Creates a source producing inner's bytes encrypted to recipients, with
 * dup's stanzas (NULL: none) in the header.  The file key, ephemeral keys
 * and nonce are drawn once: a rewind produces the same bytes again.
 */
wal_err wal_age_source_new(wal_age_source **out, wal_source *inner, const wal_age_keys *recipients,
			   const wal_age_dup *dup, wal_error *e);
wal_source *wal_age_source_base(wal_age_source *src);
void wal_age_source_free(wal_age_source *src);

/*
 * Creates a sink that decrypts an age file with identities into inner,
 * passing on each chunk only once it authenticated.  With identities NULL
 * it reads the header only (its walarchive-dup stanzas, wal_age_sink_dup)
 * and ignores the rest.  what names the object in messages.  A header no
 * identity opens is WAL_ECONFIG; a damaged header, MAC, chunk, a
 * truncation or trailing data WAL_ECORRUPT.
 */
wal_err wal_age_sink_new(wal_age_sink **out, wal_sink *inner, const wal_age_keys *identities,
			 const char *what, wal_error *e);
wal_sink *wal_age_sink_base(wal_age_sink *sink);

/* After the last byte: checks that the last chunk came and authenticated. */
wal_err wal_age_sink_finish(wal_age_sink *sink, wal_error *e);

/* The walarchive-dup stanzas of the header read (count 0 until then). */
const wal_age_dup *wal_age_sink_dup(const wal_age_sink *sink);
void wal_age_sink_free(wal_age_sink *sink);

#endif
