/*
 * Unit tests for age.h: keys in bech32 as age-keygen writes them, objects
 * that round-trip through the source and the sink, that the age tool opens
 * (and that it makes and the sink opens), the test kit's header vectors, and
 * every damage (header, MAC, any chunk, truncation, trailing data, another
 * identity) refused before a byte of it is passed on.
 */
#include <criterion/criterion.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "io/age.h"
#include "io/stream.h"

/* The test kit's X25519 identity and the recipient `age-keygen -y` prints for it. */
#define KIT_IDENTITY "AGE-SECRET-KEY-1XMWWC06LY3EE5RYTXM9MFLAZ2U56JJJ36S0MYPDRWSVLUL66MV4QX3S7F6"
#define KIT_RECIPIENT "age1w3tyke4gev25vaxxsvcgqu4484rf6ejpmavs57p6yz6lhy2sfs5swrvwyn"
#define KIT2_IDENTITY "AGE-SECRET-KEY-1EGTZVFFV20835NWYV6270LXYVK2VKNX2MMDKWYKLMGR48UAWX40Q2P2LM0"
#define KIT2_RECIPIENT "age1xmwwc06ly3ee5rytxm9mflaz2u56jjj36s0mypdrwsvlul66mv4q47ryef"

static char dir[256];

static int rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st, (void)flag, (void)ftw;
	return remove(path);
}

static void setup(void)
{
	snprintf(dir, sizeof(dir), "/tmp/walarchive-unit-age.XXXXXX");
	cr_assert_not_null(mkdtemp(dir));
}

static void teardown(void)
{
	nftw(dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

TestSuite(age, .init = setup, .fini = teardown);

static void write_file(const char *path, const void *data, size_t len, mode_t mode)
{
	FILE *f = fopen(path, "wb");
	cr_assert_not_null(f);
	cr_assert_eq(fwrite(data, 1, len, f), len);
	fclose(f);
	cr_assert_eq(chmod(path, mode), 0);
}

static unsigned char *read_file(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	cr_assert_not_null(f, "%s", path);
	fseek(f, 0, SEEK_END);
	*len = (size_t)ftell(f);
	fseek(f, 0, SEEK_SET);
	unsigned char *buf = malloc(*len + 1);
	cr_assert_eq(fread(buf, 1, *len, f), *len);
	fclose(f);
	return buf;
}

static unsigned char *make_data(size_t len, uint32_t seed)
{
	unsigned char *d = malloc(len ? len : 1);
	for (size_t i = 0; i < len; i++) {
		seed = seed * 1103515245u + 12345u;
		d[i] = (unsigned char)(seed >> 16);
	}
	return d;
}

static void keys_of(wal_age_keys *rcpt, wal_age_keys *ids, const char *const *identities, int n)
{
	memset(rcpt, 0, sizeof(*rcpt));
	memset(ids, 0, sizeof(*ids));
	ids->has_secret = 1;
	for (int i = 0; i < n; i++) {
		wal_error e;
		cr_assert_eq(wal_age_identity_parse(identities[i], ids->secret[i], ids->pub[i], &e),
			     WAL_OK, "%s", e.msg);
		memcpy(rcpt->pub[i], ids->pub[i], 32);
	}
	rcpt->count = ids->count = n;
}

/* Encrypts data to rcpt (with dup's stanzas) into a heap buffer. */
static unsigned char *encrypt(const void *data, size_t len, const wal_age_keys *rcpt,
			      const wal_age_dup *dup, size_t *out_len)
{
	wal_mem_source src;
	wal_mem_sink out;
	wal_age_source *age;
	wal_error e;
	wal_mem_source_init(&src, data, len);
	wal_mem_sink_init(&out, 0);
	cr_assert_eq(wal_age_source_new(&age, &src.base, rcpt, dup, &e), WAL_OK, "%s", e.msg);
	cr_assert_eq(wal_source_pump(wal_age_source_base(age), &out.base, &e), WAL_OK, "%s", e.msg);
	cr_assert_eq(wal_age_source_base(age)->size, (int64_t)out.len);
	wal_age_source_free(age);
	*out_len = out.len;
	return out.buf;
}

/* Decrypts enc with ids, written in pieces of step bytes; returns the code. */
static wal_err decrypt(const unsigned char *enc, size_t len, const wal_age_keys *ids, size_t step,
		       wal_mem_sink *out, wal_error *e)
{
	wal_age_sink *age;
	wal_mem_sink_init(out, 0);
	cr_assert_eq(wal_age_sink_new(&age, &out->base, ids, "obj", e), WAL_OK);
	wal_err rc = WAL_OK;
	for (size_t off = 0; off < len && rc == WAL_OK; off += step)
		rc = wal_age_sink_base(age)->write(wal_age_sink_base(age), enc + off,
						   len - off < step ? len - off : step, e);
	if (rc == WAL_OK)
		rc = wal_age_sink_finish(age, e);
	wal_age_sink_free(age);
	return rc;
}

Test(age, keys_as_age_keygen_writes_them)
{
	unsigned char secret[32], pub[32], parsed[32];
	char text[64];
	wal_error e;
	cr_assert_eq(wal_age_identity_parse(KIT_IDENTITY, secret, pub, &e), WAL_OK, "%s", e.msg);
	wal_age_recipient_format(pub, text);
	cr_assert_str_eq(text, KIT_RECIPIENT);
	cr_assert_eq(wal_age_recipient_parse(KIT_RECIPIENT, parsed, &e), WAL_OK);
	cr_assert_eq(memcmp(parsed, pub, 32), 0);
	cr_assert_eq(wal_age_identity_parse(KIT2_IDENTITY, secret, pub, &e), WAL_OK);
	wal_age_recipient_format(pub, text);
	cr_assert_str_eq(text, KIT2_RECIPIENT);

	/* a changed character fails the checksum; mixed case and other kinds are refused */
	char bad[80];
	snprintf(bad, sizeof(bad), "%s", KIT_RECIPIENT);
	bad[10] = bad[10] == 'q' ? 'p' : 'q';
	cr_assert_eq(wal_age_recipient_parse(bad, parsed, &e), WAL_EINVAL);
	cr_assert_eq(
		wal_age_recipient_parse("AGE1W3TYKE4GEV25VAXXSVCGQU4484RF6EJPMAVS57P6YZ6LHY2SFS5"
					"SWRVWYN",
					parsed, &e),
		WAL_EINVAL);
	cr_assert_eq(wal_age_recipient_parse(KIT_IDENTITY, parsed, &e), WAL_EINVAL);
	cr_assert_eq(wal_age_identity_parse(KIT_RECIPIENT, secret, pub, &e), WAL_EINVAL);
	cr_assert_eq(wal_age_recipient_parse("age1", parsed, &e), WAL_EINVAL);
	cr_assert_eq(wal_age_recipient_parse("", parsed, &e), WAL_EINVAL);
}

Test(age, recipients_inline_or_in_a_file)
{
	wal_age_keys k;
	wal_error e;
	char path[300], setting[300];
	cr_assert_eq(wal_age_recipients_load(&k, KIT_RECIPIENT ", " KIT2_RECIPIENT, &e), WAL_OK,
		     "%s", e.msg);
	cr_assert_eq(k.count, 2);
	snprintf(path, sizeof(path), "%s/recipients.txt", dir);
	const char *text = "# the archive's keys\n\n" KIT_RECIPIENT "\n" KIT2_RECIPIENT "\r\n";
	write_file(path, text, strlen(text), 0644);
	cr_assert_eq(wal_age_recipients_load(&k, path, &e), WAL_OK, "%s", e.msg);
	cr_assert_eq(k.count, 2);

	/* fail closed: missing, malformed, empty */
	cr_assert_eq(wal_age_recipients_load(&k, "age1qqqq", &e), WAL_ECONFIG);
	snprintf(setting, sizeof(setting), "%s/missing.txt", dir);
	cr_assert_eq(wal_age_recipients_load(&k, setting, &e), WAL_ECONFIG);
	cr_assert(strstr(e.msg, "missing.txt"), "%s", e.msg);
	write_file(path, "# none\n", 7, 0644);
	cr_assert_eq(wal_age_recipients_load(&k, path, &e), WAL_ECONFIG);
	write_file(path, KIT_RECIPIENT "\nage1nope\n", strlen(KIT_RECIPIENT) + 11, 0644);
	cr_assert_eq(wal_age_recipients_load(&k, path, &e), WAL_ECONFIG);
	cr_assert(strstr(e.msg, ":2:"), "the line is named: %s", e.msg);
}

Test(age, identity_file_must_be_private_and_valid)
{
	wal_age_keys k;
	wal_error e;
	char path[300];
	snprintf(path, sizeof(path), "%s/key.txt", dir);
	const char *text =
		"# created: 2026-11-30\n# public key: " KIT_RECIPIENT "\n" KIT_IDENTITY "\n";
	write_file(path, text, strlen(text), 0600);
	cr_assert_eq(wal_age_identities_load(&k, path, &e), WAL_OK, "%s", e.msg);
	cr_assert_eq(k.count, 1);
	chmod(path, 0640);
	cr_assert_eq(wal_age_identities_load(&k, path, &e), WAL_ECONFIG);
	cr_assert(strstr(e.msg, "chmod 600"), "%s", e.msg);
	write_file(path, "AGE-SECRET-KEY-1NOPE\n", 21, 0600);
	cr_assert_eq(wal_age_identities_load(&k, path, &e), WAL_ECONFIG);
	cr_assert_null(strstr(e.msg, "NOPE"), "a mistyped secret is never echoed: %s", e.msg);
	write_file(path, "\n", 1, 0600);
	cr_assert_eq(wal_age_identities_load(&k, path, &e), WAL_ECONFIG);
	cr_assert_eq(wal_age_identities_load(&k, "/nonexistent/key.txt", &e), WAL_ECONFIG);
}

Test(age, round_trip_at_chunk_boundaries)
{
	const char *const idents[] = { KIT_IDENTITY, KIT2_IDENTITY };
	wal_age_keys rcpt, ids;
	size_t sizes[] = { 0, 1, 65535, 65536, 65537, 3 * 65536, 3 * 65536 + 7, 1000000 };
	keys_of(&rcpt, &ids, idents, 2);
	for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
		unsigned char *data = make_data(sizes[i], (uint32_t)i);
		size_t len;
		unsigned char *enc = encrypt(data, sizes[i], &rcpt, NULL, &len);
		/* each identity alone opens it, in large and in odd small pieces */
		for (int who = 0; who < 2; who++) {
			wal_age_keys one = ids;
			one.count = 1;
			memcpy(one.secret[0], ids.secret[who], 32);
			memcpy(one.pub[0], ids.pub[who], 32);
			size_t steps[] = { 1 << 20, 4093 };
			for (int s = 0; s < 2; s++) {
				wal_mem_sink out;
				wal_error e;
				cr_assert_eq(decrypt(enc, len, &one, steps[s], &out, &e), WAL_OK,
					     "size %zu: %s", sizes[i], e.msg);
				cr_assert_eq(out.len, sizes[i]);
				cr_assert(sizes[i] == 0 || memcmp(out.buf, data, sizes[i]) == 0);
				free(out.buf);
			}
		}
		free(enc);
		free(data);
	}
}

Test(age, rewind_gives_the_same_bytes)
{
	const char *const idents[] = { KIT_IDENTITY };
	wal_age_keys rcpt, ids;
	keys_of(&rcpt, &ids, idents, 1);
	unsigned char *data = make_data(200000, 7);
	wal_mem_source src;
	wal_mem_sink a, b;
	wal_age_source *age;
	wal_error e;
	wal_mem_source_init(&src, data, 200000);
	wal_mem_sink_init(&a, 0);
	wal_mem_sink_init(&b, 0);
	cr_assert_eq(wal_age_source_new(&age, &src.base, &rcpt, NULL, &e), WAL_OK);
	cr_assert_eq(wal_source_pump(wal_age_source_base(age), &a.base, &e), WAL_OK);
	cr_assert_eq(wal_age_source_base(age)->rewind(wal_age_source_base(age), &e), WAL_OK);
	cr_assert_eq(wal_source_pump(wal_age_source_base(age), &b.base, &e), WAL_OK);
	cr_assert_eq(a.len, b.len);
	cr_assert_eq(memcmp(a.buf, b.buf, a.len), 0);
	wal_age_source_free(age);
	free(a.buf), free(b.buf), free(data);
}

/* Where the payload starts: after the MAC line and the 16-byte nonce. */
static size_t payload_offset(const unsigned char *enc, size_t len)
{
	const unsigned char *mac = memmem(enc, len, "\n--- ", 5);
	cr_assert_not_null(mac);
	const unsigned char *nl = memchr(mac + 1, '\n', len - (size_t)(mac + 1 - enc));
	return (size_t)(nl + 1 - enc) + 16;
}

Test(age, any_damage_is_refused_and_nothing_unauthenticated_passes)
{
	const char *const idents[] = { KIT_IDENTITY };
	const char *const others[] = { KIT2_IDENTITY };
	wal_age_keys rcpt, ids, orcpt, oids;
	keys_of(&rcpt, &ids, idents, 1);
	keys_of(&orcpt, &oids, others, 1);
	size_t size = 3 * 65536 + 100, len;
	unsigned char *data = make_data(size, 3);
	unsigned char *enc = encrypt(data, size, &rcpt, NULL, &len);
	size_t pay = payload_offset(enc, len), chunk = 65536 + 16;
	wal_mem_sink out;
	wal_error e;

	/* a flipped bit anywhere: the version line, a stanza body, the MAC, the
	 * nonce, each chunk and each tag */
	size_t spots[] = {
		3,	 pay - 16 - 30,	  pay - 20,	   pay - 1,
		pay + 5, pay + chunk - 1, pay + chunk + 9, pay + 2 * chunk + 70000 % chunk,
		len - 1
	};
	for (size_t i = 0; i < sizeof(spots) / sizeof(spots[0]); i++) {
		unsigned char *bad = malloc(len);
		memcpy(bad, enc, len);
		bad[spots[i]] ^= 0x04;
		wal_err rc = decrypt(bad, len, &ids, 1 << 20, &out, &e);
		cr_assert_eq(rc, WAL_ECORRUPT, "byte %zu: %d %s", spots[i], rc, e.msg);
		/* what was passed on is whole chunks that authenticated, before the damage */
		cr_assert(out.len % 65536 == 0 && out.len <= (spots[i] > pay ? spots[i] - pay : 0),
			  "byte %zu: %zu bytes passed on", spots[i], out.len);
		cr_assert(out.len == 0 || memcmp(out.buf, data, out.len) == 0);
		free(out.buf);
		free(bad);
	}
	/* truncated anywhere, at a chunk boundary too; extended by a byte or a chunk */
	size_t cuts[] = { 0,	  10,	       pay - 16,	pay - 3,
			  pay,	  pay + chunk, pay + 2 * chunk, pay + 3 * chunk,
			  len - 1 };
	for (size_t i = 0; i < sizeof(cuts) / sizeof(cuts[0]); i++) {
		wal_err rc = decrypt(enc, cuts[i], &ids, 1 << 20, &out, &e);
		cr_assert_eq(rc, WAL_ECORRUPT, "cut at %zu: %s", cuts[i], e.msg);
		free(out.buf);
	}
	unsigned char *longer = malloc(len + chunk);
	memcpy(longer, enc, len);
	memset(longer + len, 0, chunk);
	cr_assert_eq(decrypt(longer, len + 1, &ids, 1 << 20, &out, &e), WAL_ECORRUPT);
	free(out.buf);
	cr_assert_eq(decrypt(longer, len + chunk, &ids, 1 << 20, &out, &e), WAL_ECORRUPT);
	free(out.buf);
	free(longer);

	/* another identity opens nothing: a configuration error, not corruption */
	cr_assert_eq(decrypt(enc, len, &oids, 1 << 20, &out, &e), WAL_ECONFIG);
	cr_assert_eq(out.len, 0);
	cr_assert(strstr(e.msg, "no identity"), "%s", e.msg);
	free(out.buf);
	free(enc);
	free(data);
}

Test(age, duplicate_tags_tell_same_from_different)
{
	const char *const idents[] = { KIT_IDENTITY, KIT2_IDENTITY };
	wal_age_keys rcpt, ids;
	keys_of(&rcpt, &ids, idents, 2);
	unsigned char digest[WAL_AGE_DIGEST_LEN], other[WAL_AGE_DIGEST_LEN];
	memset(digest, 0x11, sizeof(digest));
	memset(other, 0x22, sizeof(other));
	wal_age_dup dup, same, differs, moved, stranger;
	wal_age_dup_compute(&rcpt, "000000010000000000000001", digest, &dup);
	cr_assert_eq(dup.count, 2);
	size_t len;
	unsigned char *enc = encrypt("abc", 3, &rcpt, &dup, &len);

	/* the header alone gives the tags back, without any secret key */
	wal_mem_sink ignored;
	wal_age_sink *hdr;
	wal_error e;
	wal_mem_sink_init(&ignored, 0);
	cr_assert_eq(wal_age_sink_new(&hdr, &ignored.base, NULL, "obj", &e), WAL_OK);
	cr_assert_eq(wal_age_sink_base(hdr)->write(wal_age_sink_base(hdr), enc, len, &e), WAL_OK);
	cr_assert_eq(wal_age_sink_finish(hdr, &e), WAL_OK);
	cr_assert_eq(ignored.len, 0);
	wal_age_dup_compute(&rcpt, "000000010000000000000001", digest, &same);
	wal_age_dup_compute(&rcpt, "000000010000000000000001", other, &differs);
	wal_age_dup_compute(&rcpt, "000000010000000000000002", digest, &moved);
	cr_assert_eq(wal_age_dup_match(wal_age_sink_dup(hdr), &same), 1);
	cr_assert_eq(wal_age_dup_match(wal_age_sink_dup(hdr), &differs), 0);
	cr_assert_eq(wal_age_dup_match(wal_age_sink_dup(hdr), &moved), 0);
	/* a host with other recipients cannot tell */
	wal_age_keys one = rcpt;
	one.count = 1;
	wal_age_dup_compute(&one, "x", digest, &stranger);
	memset(&one, 0, sizeof(one));
	one.count = 1;
	one.pub[0][0] = 9;
	wal_age_dup_compute(&one, "000000010000000000000001", digest, &stranger);
	cr_assert_eq(wal_age_dup_match(wal_age_sink_dup(hdr), &stranger), -1);
	wal_age_sink_free(hdr);

	/* the tags are inside the MAC'd header: the object still opens */
	wal_mem_sink out;
	cr_assert_eq(decrypt(enc, len, &ids, 100, &out, &e), WAL_OK, "%s", e.msg);
	cr_assert_eq(out.len, 3);
	free(out.buf);
	free(enc);
}

/* The MAC covers every stanza: a changed tag, still well-formed, is refused. */
Test(age, header_mac_covers_every_stanza)
{
	const char *const idents[] = { KIT_IDENTITY };
	wal_age_keys rcpt, ids;
	keys_of(&rcpt, &ids, idents, 1);
	unsigned char digest[WAL_AGE_DIGEST_LEN] = { 1 };
	wal_age_dup dup;
	wal_age_dup_compute(&rcpt, "000000010000000000000001", digest, &dup);
	size_t len;
	unsigned char *enc = encrypt("wal", 3, &rcpt, &dup, &len);
	unsigned char *stanza = memmem(enc, len, "-> walarchive-dup ", 18);
	cr_assert_not_null(stanza);
	unsigned char *body = memchr(stanza, '\n', len - (size_t)(stanza - enc)) + 1;
	*body = *body == 'A' ? 'B' : 'A'; /* the first character: still canonical base64 */
	wal_mem_sink out;
	wal_error e;
	cr_assert_eq(decrypt(enc, len, &ids, 1 << 20, &out, &e), WAL_ECORRUPT);
	cr_assert(strstr(e.msg, "mac"), "%s", e.msg);
	cr_assert_eq(out.len, 0);
	free(out.buf);
	free(enc);
}

/* The age tool opens what the source makes, and the sink opens what age makes. */
Test(age, interoperates_with_the_age_tool)
{
	const char *const idents[] = { KIT_IDENTITY };
	wal_age_keys rcpt, ids;
	keys_of(&rcpt, &ids, idents, 1);
	char key[300], enc_path[300], plain[300], back[300], cmd[1400];
	snprintf(key, sizeof(key), "%s/key.txt", dir);
	snprintf(enc_path, sizeof(enc_path), "%s/obj.age", dir);
	snprintf(plain, sizeof(plain), "%s/plain", dir);
	snprintf(back, sizeof(back), "%s/back", dir);
	write_file(key, KIT_IDENTITY "\n", strlen(KIT_IDENTITY) + 1, 0600);
	size_t sizes[] = { 0, 65536, 300001 };
	for (size_t i = 0; i < 3; i++) {
		unsigned char *data = make_data(sizes[i], 11);
		wal_age_dup dup;
		unsigned char digest[WAL_AGE_DIGEST_LEN] = { 0 };
		wal_age_dup_compute(&rcpt, "name", digest, &dup);
		size_t len, got;
		unsigned char *enc = encrypt(data, sizes[i], &rcpt, &dup, &len);
		write_file(enc_path, enc, len, 0600);
		snprintf(cmd, sizeof(cmd), "age -d -i '%s' '%s' > '%s'", key, enc_path, back);
		cr_assert_eq(system(cmd), 0, "age -d failed on %zu bytes", sizes[i]);
		unsigned char *read = read_file(back, &got);
		cr_assert_eq(got, sizes[i]);
		cr_assert(got == 0 || memcmp(read, data, got) == 0);
		free(read);
		free(enc);

		write_file(plain, data, sizes[i], 0600);
		snprintf(cmd, sizeof(cmd), "age -r %s -o '%s' '%s'", KIT_RECIPIENT, enc_path,
			 plain);
		cr_assert_eq(system(cmd), 0);
		enc = read_file(enc_path, &len);
		wal_mem_sink out;
		wal_error e;
		cr_assert_eq(decrypt(enc, len, &ids, 5000, &out, &e), WAL_OK, "%s", e.msg);
		cr_assert_eq(out.len, sizes[i]);
		cr_assert(out.len == 0 || memcmp(out.buf, data, out.len) == 0);
		free(out.buf);
		free(enc);
		free(data);
	}
}

/* The specification's header vectors: the verdict each one expects. */
Test(age, test_kit_header_vectors)
{
	const char *names[] = {
		"x25519",	"x25519_bad_tag", "x25519_extra_argument", "stanza_not_canonical",
		"hmac_garbage", "hmac_truncated"
	};
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		char path[512], identity[128] = "", expect[64] = "";
		size_t len;
		snprintf(path, sizeof(path), "%s/age-testkit/%s", WAL_TEST_FIXTURES, names[i]);
		unsigned char *text = read_file(path, &len);
		text[len] = 0;
		char *hdr = strstr((char *)text, "\n\n");
		cr_assert_not_null(hdr);
		*hdr = 0;
		hdr += 2;
		for (char *l = strtok((char *)text, "\n"); l; l = strtok(NULL, "\n")) {
			if (strncmp(l, "expect: ", 8) == 0)
				snprintf(expect, sizeof(expect), "%s", l + 8);
			if (strncmp(l, "identity: ", 10) == 0)
				snprintf(identity, sizeof(identity), "%s", l + 10);
		}
		wal_age_keys ids = { .count = 1, .has_secret = 1 };
		wal_error e;
		cr_assert_eq(wal_age_identity_parse(identity, ids.secret[0], ids.pub[0], &e),
			     WAL_OK);
		/* the vectors' payloads are not copied: one of zeros stands in */
		size_t hlen = strlen(hdr);
		unsigned char *obj = calloc(1, hlen + 16 + 19);
		memcpy(obj, hdr, hlen);
		wal_mem_sink out;
		wal_err rc = decrypt(obj, hlen + 16 + 19, &ids, 1 << 20, &out, &e);
		if (strcmp(expect, "success") == 0) {
			/* the header opened and its MAC matched: only the stand-in fails */
			cr_assert_eq(rc, WAL_ECORRUPT, "%s", names[i]);
			cr_assert(strstr(e.msg, "chunk 0"), "%s: %s", names[i], e.msg);
		} else if (strcmp(expect, "no match") == 0) {
			cr_assert_eq(rc, WAL_ECONFIG, "%s: %s", names[i], e.msg);
		} else {
			cr_assert_eq(rc, WAL_ECORRUPT, "%s", names[i]);
			cr_assert_null(strstr(e.msg, "chunk"), "%s: %s", names[i], e.msg);
		}
		cr_assert_eq(out.len, 0);
		free(out.buf);
		free(obj);
		free(text);
	}
}
