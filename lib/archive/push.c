/*
 * walpush's one-file work: check the file (name, WAL header, cluster), then
 * store it as an LZ4 or zstd frame (encrypted with encrypt_recipients), or find it
 * already there with the same bytes.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include "archive/archive.h"
#include "io/compress.h"
#include "io/zstd.h"
#include "sys/fileio.h"
#include "pg/pgcontrol.h"
#include "archive/verify.h"
#include "io/xxhash.h"

/* ---- comparing an archived object with a local file ----------------------- */

typedef struct compare_sink {
	wal_sink base;
	int fd;
	const char *path;
	unsigned char *buf;
	uint64_t offset;
	uint64_t size; /* the file's size: an object longer than it differs */
	int differs;
} compare_sink;

static wal_err compare_write(wal_sink *base, const void *data, size_t len, wal_error *e)
{
	compare_sink *c = (compare_sink *)base;
	const unsigned char *p = data;
	if (len > c->size - c->offset)
		/* longer than the file: stop reading it (it may expand without end) */
		return wal_fail(e, WAL_ECORRUPT, "%s: the archived object is longer than the file",
				c->path);
	while (len > 0 && !c->differs) {
		size_t n = len < WAL_IO_CHUNK ? len : WAL_IO_CHUNK;
		ssize_t got = pread(c->fd, c->buf, n, (off_t)c->offset);
		if (got < 0)
			return wal_fail_errno(e, WAL_EIO, errno, "%s: cannot read", c->path);
		if ((size_t)got != n || memcmp(c->buf, p, n) != 0)
			c->differs = 1;
		c->offset += n;
		p += n;
		len -= n;
	}
	return WAL_OK;
}

static wal_err compare_reset(wal_sink *base, wal_error *e)
{
	(void)e;
	compare_sink *c = (compare_sink *)base;
	c->offset = 0;
	c->differs = 0;
	return WAL_OK;
}

/*
 * Whether the object at path (of form WAL_OBJ_*; an encrypted one opened
 * with ids) holds exactly the bytes of the file open as fd (size bytes).
 * Sets *same; an unreadable or corrupt object counts as different.
 */
static wal_err object_matches(wal_store *s, const char *path, int form, const wal_age_keys *ids,
			      int fd, const char *file, uint64_t size, int *same, wal_error *e)
{
	compare_sink cmp = { { compare_write, compare_reset }, fd, file, NULL, 0, size, 0 };
	wal_frame_sink frame = { 0 };
	wal_age_sink *age = NULL;
	wal_sink *first = &cmp.base;
	wal_err rc = WAL_OK;
	*same = 0;
	cmp.buf = malloc(WAL_IO_CHUNK);
	if (!cmp.buf)
		return wal_fail(e, WAL_ENOMEM, "out of memory");
	rc = wal_frame_sink_new(&frame, form, first, path, &first, e);
	if (rc == WAL_OK && (form & WAL_OBJ_AGE) &&
	    (rc = wal_age_sink_new(&age, first, ids, path, e)) == WAL_OK)
		first = wal_age_sink_base(age);
	if (rc == WAL_OK)
		rc = wal_store_get(s, path, first, e);
	if (rc == WAL_OK && age)
		rc = wal_age_sink_finish(age, e);
	if (rc == WAL_OK)
		rc = wal_frame_sink_finish(&frame, e);
	if (rc == WAL_ECORRUPT) {
		rc = WAL_OK; /* a damaged object is not the same content */
		cmp.differs = 1;
	}
	if (rc == WAL_OK)
		*same = !cmp.differs && cmp.offset == size;
	wal_age_sink_free(age);
	wal_frame_sink_free(&frame);
	free(cmp.buf);
	return rc;
}

static wal_err ignore_write(wal_sink *sink, const void *buf, size_t len, wal_error *e)
{
	(void)sink, (void)buf, (void)len, (void)e;
	return WAL_OK;
}

static wal_err ignore_reset(wal_sink *sink, wal_error *e)
{
	(void)sink, (void)e;
	return WAL_OK;
}

/*
 * Compares the duplicate tags in the header of the encrypted object at path
 * with want (see wal_age_dup_compute): *verdict 1 same content, 0
 * different (or a damaged header), -1 cannot tell (other recipients).
 */
static wal_err tags_match(wal_store *s, const char *path, const wal_age_dup *want, int *verdict,
			  wal_error *e)
{
	wal_sink ignore = { ignore_write, ignore_reset };
	wal_age_sink *age = NULL;
	wal_err rc = wal_age_sink_new(&age, &ignore, NULL, path, e);
	if (rc == WAL_OK)
		rc = wal_store_get(s, path, wal_age_sink_base(age), e);
	if (rc == WAL_OK)
		rc = wal_age_sink_finish(age, e);
	*verdict = 0;
	if (rc == WAL_OK)
		*verdict = wal_age_dup_match(wal_age_sink_dup(age), want);
	else if (rc == WAL_ECORRUPT)
		rc = WAL_OK; /* a damaged object is not the same content */
	wal_age_sink_free(age);
	return rc;
}

/* ---- push ---------------------------------------------------------------- */

/*
 * Writes <system-id>/walarchive.info (PostgreSQL version, segment and block
 * size) the first time a cluster's segment is pushed, for people and tools
 * that look at the archive.  Checked once per process.
 */
static wal_err ensure_info(wal_store *store, const wal_header *hdr, wal_error *e)
{
	static uint64_t checked;
	char path[64], text[256];
	wal_stat st;
	if (checked == hdr->system_id)
		return WAL_OK;
	snprintf(path, sizeof(path), "%" PRIu64 "/" WAL_INFO_NAME, hdr->system_id);
	wal_err rc = wal_store_stat(store, path, &st, e);
	if (rc == WAL_ENOENT) {
		int len = snprintf(text, sizeof(text),
				   "# walarchive: the cluster whose WAL this tree holds\n"
				   "system_id = %" PRIu64 "\npg_version = %d\n"
				   "wal_seg_size = %u\nwal_block_size = %u\n",
				   hdr->system_id, hdr->pg_version, hdr->seg_size, hdr->block_size);
		wal_mem_source src;
		wal_mem_source_init(&src, text, (size_t)len);
		rc = wal_store_put(store, path, &src.base, e);
		if (rc == WAL_EEXIST)
			rc = WAL_OK; /* another walpush wrote it first */
	}
	if (rc == WAL_OK)
		checked = hdr->system_id;
	return rc;
}

/* Checks what can be checked of a history or backup file: small text. */
static wal_err check_text_file(int fd, const char *wal_path, const wal_name *name, uint64_t size,
			       wal_error *e)
{
	char head[32];
	if (size == 0 || size > WAL_TEXT_FILE_MAX)
		return wal_fail(e, WAL_ENOTWAL, "%s: size %" PRIu64 " is not that of a %s file",
				wal_path, size,
				name->kind == WAL_NAME_HISTORY ? "history" : "backup");
	if (name->kind == WAL_NAME_BACKUP) {
		ssize_t n = pread(fd, head, sizeof(head), 0);
		if (n < 0)
			return wal_fail_errno(e, WAL_EIO, errno, "%s: cannot read", wal_path);
		if (n < 18 || memcmp(head, "START WAL LOCATION", 18) != 0)
			return wal_fail(e, WAL_ENOTWAL, "%s: not a backup history file", wal_path);
	}
	return WAL_OK;
}

wal_err wal_push(const wal_config *cfg, const char *wal_path, const char *file_name,
		 const char *datadir, wal_push_result *res, wal_error *e)
{
	wal_store *store = NULL;
	wal_err rc = wal_push_with(cfg, &store, wal_path, file_name, datadir, 0, res, e);
	wal_store_close(store);
	return rc;
}

/* Opens the file to archive: a regular file, never waited on (a FIFO). */
static wal_err open_input(const char *wal_path, int *fd_out, struct stat *st, wal_error *e)
{
	/* non-blocking, so that a FIFO given as %p cannot hold walpush at open */
	int fd = wal_sys_open(wal_path, O_RDONLY | O_NONBLOCK | O_CLOEXEC, 0);
	if (fd < 0) {
		int err = errno;
		/* a socket cannot be opened at all (ENXIO): say what it is */
		if (err != ENOENT && stat(wal_path, st) == 0 && !S_ISREG(st->st_mode))
			return wal_fail(e, WAL_EINVAL, "%s: not a regular file", wal_path);
		/* a missing input is the caller's error, not "not found" */
		return wal_fail_errno(e, err == ENOENT ? WAL_EINVAL : WAL_OK, err,
				      "%s: cannot open", wal_path);
	}
	if (fstat(fd, st) < 0 || !S_ISREG(st->st_mode)) {
		close(fd);
		return wal_fail(e, WAL_EINVAL, "%s: not a regular file", wal_path);
	}
	(void)fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK);
	*fd_out = fd;
	return WAL_OK;
}

/*
 * Checks that the file open as fd is a WAL file called name: a segment's or
 * partial's long header (hdr, and *system_id from it), or a small text file.
 */
static wal_err check_input(int fd, const char *wal_path, const wal_name *name, uint64_t size,
			   wal_header *hdr, uint64_t *system_id, wal_error *e)
{
	unsigned char page[WAL_LONG_HEADER_SIZE];
	*system_id = 0;
	if (name->kind != WAL_NAME_SEGMENT && name->kind != WAL_NAME_PARTIAL)
		return check_text_file(fd, wal_path, name, size, e);
	ssize_t n = wal_sys_read_full(fd, page, sizeof(page));
	if (n < 0)
		return wal_fail_errno(e, WAL_EIO, errno, "%s: cannot read", wal_path);
	if (wal_header_decode(page, (size_t)n, hdr, e) != WAL_OK ||
	    wal_header_check(hdr, name, size, e) != WAL_OK) {
		char why[sizeof(e->msg)];
		snprintf(why, sizeof(why), "%s", e ? e->msg : "");
		return wal_fail(e, WAL_ENOTWAL, "%s: not a valid wal segment for %s: %s", wal_path,
				name->text, why);
	}
	*system_id = hdr->system_id;
	return WAL_OK;
}

/*
 * The cluster: the WAL says which (*system_id, 0 for a text file); the data
 * directory's pg_control and the system_id setting must agree, and tell it
 * when the WAL cannot.
 */
static wal_err choose_cluster(const wal_config *cfg, const char *datadir, const char *wal_path,
			      uint64_t *system_id, wal_error *e)
{
	wal_pgcontrol ctl;
	if (datadir && wal_pgcontrol_read(datadir, &ctl, NULL) == WAL_OK) {
		if (*system_id && *system_id != ctl.system_id)
			return wal_fail(e, WAL_EFOREIGN,
					"%s: system identifier %" PRIu64
					" is not this cluster's (%" PRIu64
					" in %s/global/pg_control)",
					wal_path, *system_id, ctl.system_id, datadir);
		*system_id = ctl.system_id;
	}
	if (cfg->system_id) {
		if (*system_id && *system_id != cfg->system_id)
			return wal_fail(e, WAL_EFOREIGN,
					"%s: system identifier %" PRIu64 " is not the configured "
					"system_id %" PRIu64,
					wal_path, *system_id, cfg->system_id);
		*system_id = cfg->system_id;
	}
	if (!*system_id)
		return wal_fail(e, WAL_EINVAL,
				"%s: cannot tell which cluster it belongs to: run in the data "
				"directory or set system_id",
				wal_path);
	return WAL_OK;
}

/* What walpush encrypts to, and what it knows to compare encrypted objects. */
typedef struct push_keys {
	wal_age_keys recipients; /* count 0: no encryption */
	wal_age_keys ids;	 /* count 0: encrypt_identity not set here */
	wal_age_dup dup;	 /* the file's duplicate tags (with recipients) */
} push_keys;

/*
 * Stores the file open as fd (size bytes) as res->object, an LZ4 frame or
 * with codec WAL_OBJ_ZSTD a zstd frame at level, encrypted when keys has
 * recipients, hashing its bytes on the way with want_hash.  WAL_EEXIST if
 * the name is taken.
 */
static wal_err store_file(wal_store *store, int fd, const char *wal_path, uint64_t size, int codec,
			  int level, const push_keys *keys, int want_hash, wal_push_result *res,
			  wal_error *e)
{
	wal_fd_source file;
	wal_hash_source hashing = { 0 };
	wal_lz4_source *lz = NULL;
	wal_zstd_source *zs = NULL;
	wal_age_source *age = NULL;
	wal_source *src = &file.base;
	wal_err rc = WAL_OK;
	wal_fd_source_init(&file, fd, wal_path, (int64_t)size);
	if (lseek(fd, 0, SEEK_SET) < 0)
		return wal_fail_errno(e, WAL_EIO, errno, "%s: cannot seek", wal_path);
	if (want_hash) {
		if ((rc = wal_hash_source_init(&hashing, src, e)) != WAL_OK)
			return rc;
		src = &hashing.base;
	}
	if (codec == WAL_OBJ_ZSTD) {
		if ((rc = wal_zstd_source_new(&zs, src, (int64_t)size, level, e)) == WAL_OK)
			src = wal_zstd_source_base(zs);
	} else if ((rc = wal_lz4_source_new(&lz, src, (int64_t)size, level, e)) == WAL_OK)
		src = wal_lz4_source_base(lz);
	/* compressed, then encrypted: nothing leaves in clear once recipients are set */
	if (rc == WAL_OK && keys->recipients.count &&
	    (rc = wal_age_source_new(&age, src, &keys->recipients, &keys->dup, e)) == WAL_OK)
		src = wal_age_source_base(age);
	if (rc == WAL_OK)
		rc = wal_store_put(store, res->object, src, e);
	if (rc == WAL_OK) {
		res->outcome = WAL_PUSHED;
		res->stored_bytes = src->size >= 0 ? (uint64_t)src->size : 0;
		if (want_hash && hashing.hex[0] && hashing.bytes == size)
			memcpy(res->hash, hashing.hex, sizeof(res->hash));
	}
	wal_age_source_free(age);
	wal_lz4_source_free(lz);
	wal_zstd_source_free(zs);
	wal_hash_source_free(&hashing);
	return rc;
}

/*
 * The name is taken by existing (res->object, or a plain object of an
 * earlier release): success only if it holds the very bytes of the file
 * open as fd, made durable in place (perhaps left by a process that died
 * before its fsync).
 */
static wal_err check_existing(wal_store *store, const char *existing, int form,
			      const push_keys *keys, int fd, const char *wal_path, uint64_t size,
			      const wal_name *name, int want_hash, wal_push_result *res,
			      wal_error *e)
{
	int same = 0;
	wal_stat ost;
	wal_err rc;
	if (form & WAL_OBJ_AGE) {
		/* the tags tell without a secret key; an identity here, if any, by decryption */
		rc = tags_match(store, existing, &keys->dup, &same, e);
		if (rc == WAL_OK && same < 0 && keys->ids.count)
			rc = object_matches(store, existing, form, &keys->ids, fd, wal_path, size,
					    &same, e);
		if (rc == WAL_OK && same < 0)
			return wal_fail(e, WAL_EEXIST_DIFFERENT,
					"%s: archive has an object at %s encrypted to other "
					"recipients, which this host cannot compare (set "
					"encrypt_identity to compare by decryption); refusing to "
					"overwrite",
					name->text, existing);
	} else
		rc = object_matches(store, existing, form, NULL, fd, wal_path, size, &same, e);
	if (rc != WAL_OK)
		return rc;
	snprintf(res->object, sizeof(res->object), "%s", existing);
	if (!same)
		return wal_fail(e, WAL_EEXIST_DIFFERENT,
				"%s: archive has different content at %s; refusing to overwrite",
				name->text, res->object);
	if ((rc = wal_store_sync(store, res->object, e)) != WAL_OK)
		return rc;
	res->outcome = WAL_PUSH_DUPLICATE;
	/* a push-ahead record holds the object's size, checked before it is trusted */
	if (want_hash && wal_store_stat(store, res->object, &ost, NULL) == WAL_OK && ost.size > 0)
		res->stored_bytes = (uint64_t)ost.size;
	return WAL_OK;
}

/*
 * The core push of one file, read top to bottom: the name, the keys, the
 * input checked against its name, the store, then the file looked for in
 * every form it may already be stored in, else stored.  Longer than most
 * functions here because each step is one call sharing the same dozen
 * locals; split, the halves would pass them all between them.
 */
wal_err wal_push_with(const wal_config *cfg, wal_store **store_io, const char *wal_path,
		      const char *file_name, const char *datadir, int want_hash,
		      wal_push_result *res, wal_error *e)
{
	wal_name name;
	wal_header hdr;
	wal_stat ost;
	struct stat st;
	int fd = -1, encrypt = 0, have_ids = 0;
	char object[512], other[512];
	unsigned char digest[WAL_AGE_DIGEST_LEN];
	push_keys *keys = NULL;
	wal_err rc;

	memset(res, 0, sizeof(*res));
	if ((rc = wal_name_parse(file_name, &name, e)) != WAL_OK)
		return rc;
	/* a key that cannot be used is a configuration error, never a plain push */
	if (!(keys = calloc(1, sizeof(*keys))))
		return wal_fail(e, WAL_ENOMEM, "out of memory");
	if ((rc = wal_archive_recipients(cfg, &keys->recipients, &encrypt, e)) != WAL_OK ||
	    (encrypt && (rc = wal_archive_identities(cfg, &keys->ids, &have_ids, e)) != WAL_OK))
		goto out_keys;
	if ((rc = open_input(wal_path, &fd, &st, e)) != WAL_OK)
		goto out_keys;
	res->in_bytes = (uint64_t)st.st_size;
	if ((rc = check_input(fd, wal_path, &name, res->in_bytes, &hdr, &res->system_id, e)) !=
		    WAL_OK ||
	    (rc = choose_cluster(cfg, datadir, wal_path, &res->system_id, e)) != WAL_OK)
		goto out;

	if (!*store_io) {
		rc = wal_store_open(store_io, cfg, e);
		if (rc == WAL_ENOENT)
			rc = wal_error_recode(e, WAL_EIO); /* no archive root: a broken setup */
		if (rc != WAL_OK)
			goto out;
	}
	if ((name.kind == WAL_NAME_SEGMENT || name.kind == WAL_NAME_PARTIAL) &&
	    (rc = ensure_info(*store_io, &hdr, e)) != WAL_OK)
		goto out;

	/* every object is an LZ4 or zstd frame, so that its content checksum
	 * travels with it; compress = none stores an LZ4 frame's blocks
	 * uncompressed */
	int codec = wal_archive_codec(cfg);
	int level = cfg->compress == WAL_COMPRESS_NONE ? WAL_LZ4_STORED : wal_archive_level(cfg);
	int form = codec | (encrypt ? WAL_OBJ_AGE : 0);
	int recodec = codec ^ WAL_OBJ_CODECS; /* the other frame */
	wal_archive_object_path(res->system_id, &name, form, object, sizeof(object));
	snprintf(res->object, sizeof(res->object), "%s", object);
	if (encrypt) {
		if ((rc = wal_age_digest_fd(fd, wal_path, digest, e)) != WAL_OK)
			goto out;
		wal_age_dup_compute(&keys->recipients, name.text, digest, &keys->dup);
	}

	/* the same WAL stored plain by an earlier release counts as the object,
	 * and so does one in the other frame (pushed before compress changed)
	 * and an unencrypted frame pushed before encryption was set: one object
	 * per file, whatever the settings were */
	const int others[4] = { 0, recodec | (form & WAL_OBJ_AGE), codec, recodec };
	rc = WAL_ENOENT;
	for (int i = 0; i < (encrypt ? 4 : 2) && rc == WAL_ENOENT; i++) {
		wal_archive_object_path(res->system_id, &name, others[i], other, sizeof(other));
		rc = wal_store_stat(*store_io, other, &ost, e);
		if (rc == WAL_OK)
			rc = check_existing(*store_io, other, others[i], keys, fd, wal_path,
					    res->in_bytes, &name, want_hash, res, e);
	}
	if (rc == WAL_ENOENT) {
		rc = store_file(*store_io, fd, wal_path, res->in_bytes, codec, level, keys,
				want_hash, res, e);
		if (rc == WAL_EEXIST)
			rc = check_existing(*store_io, object, form, keys, fd, wal_path,
					    res->in_bytes, &name, want_hash, res, e);
	}
out:
	if (rc == WAL_OK && want_hash && !res->hash[0]) {
		uint64_t hashed = 0;
		rc = wal_xxh64_fd(fd, wal_path, &hashed, res->hash, e);
	}
	close(fd);
out_keys:
	wal_age_keys_wipe(&keys->ids);
	free(keys);
	return rc;
}
