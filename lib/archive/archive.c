/*
 * The archive's layout and its jobs: push (walpush), fetch (walfetch) and
 * cluster selection.  Pruning is in prune.c.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include "archive/archive.h"
#include "io/compress.h"
#include "sys/fileio.h"
#include "pg/pgcontrol.h"
#include "archive/verify.h"
#include "pg/walheader.h"
#include "io/xxhash.h"

void wal_archive_object_path(uint64_t system_id, const wal_name *name, int compressed,
			     char *out, size_t cap)
{
	const char *suffix = compressed ? WAL_LZ4_SUFFIX : "";
	if (name->kind == WAL_NAME_HISTORY) {
		snprintf(out, cap, "%" PRIu64 "/%s%s", system_id, name->text, suffix);
	} else {
		char dir[17];
		wal_name_dir(name, dir);
		snprintf(out, cap, "%" PRIu64 "/%s/%s%s", system_id, dir, name->text, suffix);
	}
}

/* ---- cluster selection --------------------------------------------------- */

typedef struct clusters {
	uint64_t first;
	int count;
} clusters;

static int parse_u64(const char *text, uint64_t *out)
{
	if (!*text || strlen(text) > 20)
		return -1;
	for (const char *p = text; *p; p++)
		if (*p < '0' || *p > '9')
			return -1;
	errno = 0;
	*out = strtoull(text, NULL, 10);
	return errno || *out == 0 ? -1 : 0;
}

static wal_err count_cluster(void *arg, const char *name, const wal_stat *st, wal_error *e)
{
	(void)e;
	clusters *c = arg;
	uint64_t id;
	if (st->is_dir && parse_u64(name, &id) == 0) {
		if (c->count++ == 0)
			c->first = id;
	}
	return WAL_OK;
}

int wal_local_system_id(const wal_config *cfg, const char *datadir, uint64_t *system_id)
{
	wal_pgcontrol ctl;
	if (datadir && wal_pgcontrol_read(datadir, &ctl, NULL) == WAL_OK)
		*system_id = ctl.system_id;
	else
		*system_id = cfg->system_id;
	return *system_id != 0;
}

wal_err wal_archive_system_id(wal_store *s, const wal_config *cfg, const char *datadir,
			      uint64_t *system_id, wal_error *e)
{
	if (wal_local_system_id(cfg, datadir, system_id))
		return WAL_OK;
	clusters c = { 0, 0 };
	wal_err rc = wal_store_list(s, "", count_cluster, &c, e);
	if (rc == WAL_ENOENT || (rc == WAL_OK && c.count == 0))
		return wal_fail(e, WAL_ENOENT, "the archive holds no cluster yet");
	if (rc != WAL_OK)
		return rc;
	if (c.count > 1)
		return wal_fail(e, WAL_EAMBIGUOUS,
				"the archive holds %d clusters and there is no global/pg_control here "
				"to tell which; set system_id", c.count);
	*system_id = c.first;
	return WAL_OK;
}

/* ---- comparing an archived object with a local file ----------------------- */

typedef struct compare_sink {
	wal_sink base;
	int fd;
	const char *path;
	unsigned char *buf;
	uint64_t offset;
	uint64_t size;         /* the file's size: an object longer than it differs */
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
 * Whether the object at path (compressed or not) holds exactly the bytes of
 * the file open as fd (size bytes).  Sets *same; an unreadable or corrupt
 * object counts as different.
 */
static wal_err object_matches(wal_store *s, const char *path, int compressed, int fd,
			      const char *file, uint64_t size, int *same, wal_error *e)
{
	compare_sink cmp = { { compare_write, compare_reset }, fd, file, NULL, 0, size, 0 };
	wal_lz4_sink *lz = NULL;
	wal_err rc;
	*same = 0;
	cmp.buf = malloc(WAL_IO_CHUNK);
	if (!cmp.buf)
		return wal_fail(e, WAL_ENOMEM, "out of memory");
	if (compressed) {
		rc = wal_lz4_sink_new(&lz, &cmp.base, path, e);
		if (rc != WAL_OK)
			goto out;
	}
	rc = wal_store_get(s, path, compressed ? wal_lz4_sink_base(lz) : &cmp.base, e);
	if (rc == WAL_OK && compressed)
		rc = wal_lz4_sink_finish(lz, e);
	if (rc == WAL_ECORRUPT) {
		rc = WAL_OK;            /* a damaged object is not the same content */
		cmp.differs = 1;
	}
	if (rc == WAL_OK)
		*same = !cmp.differs && cmp.offset == size;
out:
	wal_lz4_sink_free(lz);
	free(cmp.buf);
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
			rc = WAL_OK;    /* another walpush wrote it first */
	}
	if (rc == WAL_OK)
		checked = hdr->system_id;
	return rc;
}

/* Keeps e's message but files it under another kind of error. */
static wal_err recode(wal_error *e, wal_err code)
{
	if (e)
		e->code = code;
	return code;
}

/* Checks what can be checked of a history or backup file: small text. */
static wal_err check_text_file(int fd, const char *wal_path, const wal_name *name, uint64_t size,
			       wal_error *e)
{
	char head[32];
	if (size == 0 || size > WAL_TEXT_FILE_MAX)
		return wal_fail(e, WAL_ENOTWAL, "%s: size %" PRIu64 " is not that of a %s file",
				wal_path, size, name->kind == WAL_NAME_HISTORY ? "history" : "backup");
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

wal_err wal_push_with(const wal_config *cfg, wal_store **store_io, const char *wal_path,
		      const char *file_name, const char *datadir, int want_hash,
		      wal_push_result *res, wal_error *e)
{
	wal_name name;
	wal_header hdr;
	wal_store *store = *store_io;
	wal_lz4_source *lz = NULL;
	wal_hash_source hashing = { 0 };
	wal_fd_source file;
	struct stat st;
	int fd = -1;
	uint64_t system_id = 0;
	char other[512];
	wal_err rc;

	memset(res, 0, sizeof(*res));
	rc = wal_name_parse(file_name, &name, e);
	if (rc != WAL_OK)
		return rc;

	/* non-blocking, so that a FIFO given as %p cannot hold walpush at open */
	fd = wal_sys_open(wal_path, O_RDONLY | O_NONBLOCK | O_CLOEXEC, 0);
	if (fd < 0) {
		/* a missing input is the caller's error, not "not found" */
		rc = wal_fail_errno(e, errno == ENOENT ? WAL_EINVAL : WAL_OK, errno, "%s: cannot open",
				    wal_path);
		goto out;
	}
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
		rc = wal_fail(e, WAL_EINVAL, "%s: not a regular file", wal_path);
		goto out;
	}
	(void)fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK);
	res->in_bytes = (uint64_t)st.st_size;

	if (name.kind == WAL_NAME_SEGMENT || name.kind == WAL_NAME_PARTIAL) {
		unsigned char page[WAL_LONG_HEADER_SIZE];
		ssize_t n = wal_sys_read_full(fd, page, sizeof(page));
		if (n < 0) {
			rc = wal_fail_errno(e, WAL_EIO, errno, "%s: cannot read", wal_path);
			goto out;
		}
		if (wal_header_decode(page, (size_t)n, &hdr, e) != WAL_OK ||
		    wal_header_check(&hdr, &name, (uint64_t)st.st_size, e) != WAL_OK) {
			char why[sizeof(e->msg)];
			snprintf(why, sizeof(why), "%s", e ? e->msg : "");
			rc = wal_fail(e, WAL_ENOTWAL, "%s: not a valid wal segment for %s: %s", wal_path,
				      name.text, why);
			goto out;
		}
		system_id = hdr.system_id;
	} else {
		rc = check_text_file(fd, wal_path, &name, (uint64_t)st.st_size, e);
		if (rc != WAL_OK)
			goto out;
	}

	/* the cluster: the WAL says which; the data directory and setting must agree */
	wal_pgcontrol ctl;
	if (datadir && wal_pgcontrol_read(datadir, &ctl, NULL) == WAL_OK) {
		if (system_id && system_id != ctl.system_id) {
			rc = wal_fail(e, WAL_EFOREIGN,
				      "%s: system identifier %" PRIu64 " is not this cluster's (%" PRIu64
				      " in %s/global/pg_control)", wal_path, system_id, ctl.system_id,
				      datadir);
			goto out;
		}
		system_id = ctl.system_id;
	}
	if (cfg->system_id) {
		if (system_id && system_id != cfg->system_id) {
			rc = wal_fail(e, WAL_EFOREIGN,
				      "%s: system identifier %" PRIu64 " is not the configured system_id %"
				      PRIu64, wal_path, system_id, cfg->system_id);
			goto out;
		}
		system_id = cfg->system_id;
	}
	if (!system_id) {
		rc = wal_fail(e, WAL_EINVAL,
			      "%s: cannot tell which cluster it belongs to: run in the data directory "
			      "or set system_id", wal_path);
		goto out;
	}
	res->system_id = system_id;

	if (!store) {
		rc = wal_store_open(&store, cfg, e);
		if (rc == WAL_ENOENT)
			rc = recode(e, WAL_EIO);        /* no archive root: a broken setup */
		if (rc != WAL_OK)
			goto out;
		*store_io = store;
	}


	if ((name.kind == WAL_NAME_SEGMENT || name.kind == WAL_NAME_PARTIAL) &&
	    (rc = ensure_info(store, &hdr, e)) != WAL_OK)
		goto out;

	/* every object is an LZ4 frame, so that its content checksum travels with
	 * it; compress = none stores the frame's blocks uncompressed */
	int level = cfg->compress == WAL_COMPRESS_LZ4 ? cfg->compress_level : WAL_LZ4_STORED;
	wal_archive_object_path(system_id, &name, 1, res->object, sizeof(res->object));
	wal_archive_object_path(system_id, &name, 0, other, sizeof(other));

	/* the same WAL stored plain by an earlier release counts as the object */
	const char *existing = NULL;
	wal_stat ost = { 0 };
	rc = wal_store_stat(store, other, &ost, e);
	if (rc == WAL_OK)
		existing = other;
	else if (rc != WAL_ENOENT)
		goto out;

	if (!existing) {
		wal_fd_source_init(&file, fd, wal_path, st.st_size);
		wal_source *src = &file.base;
		if (lseek(fd, 0, SEEK_SET) < 0) {
			rc = wal_fail_errno(e, WAL_EIO, errno, "%s: cannot seek", wal_path);
			goto out;
		}
		if (want_hash) {
			rc = wal_hash_source_init(&hashing, src, e);
			if (rc != WAL_OK)
				goto out;
			src = &hashing.base;
		}
		rc = wal_lz4_source_new(&lz, src, st.st_size, level, e);
		if (rc != WAL_OK)
			goto out;
		src = wal_lz4_source_base(lz);
		rc = wal_store_put(store, res->object, src, e);
		if (rc == WAL_OK) {
			res->outcome = WAL_PUSHED;
			res->stored_bytes = src->size >= 0 ? (uint64_t)src->size : 0;
			if (want_hash && hashing.hex[0] && hashing.bytes == (uint64_t)st.st_size)
				memcpy(res->hash, hashing.hex, sizeof(res->hash));
			goto out;
		}
		if (rc != WAL_EEXIST)
			goto out;
		existing = res->object;
	}

	/* the name is taken: success only if it holds these very bytes */
	int same = 0;
	rc = object_matches(store, existing, existing == res->object, fd, wal_path,
			    (uint64_t)st.st_size, &same, e);
	if (rc != WAL_OK)
		goto out;
	if (existing != res->object)
		snprintf(res->object, sizeof(res->object), "%s", other);
	if (!same) {
		rc = wal_fail(e, WAL_EEXIST_DIFFERENT,
			      "%s: archive has different content at %s; refusing to overwrite",
			      name.text, res->object);
		goto out;
	}
	/* found in place, perhaps left by a process that died before its fsync */
	rc = wal_store_sync(store, res->object, e);
	if (rc != WAL_OK)
		goto out;
	res->outcome = WAL_PUSH_DUPLICATE;
	/* a push-ahead record holds the object's size, checked before it is trusted */
	if (want_hash && existing == res->object && wal_store_stat(store, res->object, &ost, NULL) != WAL_OK)
		ost.size = 0;
	if (want_hash && ost.size > 0)
		res->stored_bytes = (uint64_t)ost.size;
out:
	if (rc == WAL_OK && want_hash && !res->hash[0] && res->outcome != WAL_PUSHED_AHEAD) {
		uint64_t hashed = 0;
		rc = wal_xxh64_fd(fd, wal_path, &hashed, res->hash, e);
	}
	wal_lz4_source_free(lz);
	wal_hash_source_free(&hashing);
	if (fd >= 0)
		close(fd);
	return rc;
}

/* ---- fetch --------------------------------------------------------------- */

/* Verifies a restored segment or partial in a file (a spooled copy). */
wal_err wal_archive_verify_segment(int fd, const char *tmp_path, const wal_name *name,
				   const char *object, uint64_t system_id, uint32_t *seg_size,
				   wal_error *e)
{
	unsigned char page[WAL_LONG_HEADER_SIZE];
	wal_header hdr;
	struct stat st;
	if (fstat(fd, &st) < 0)
		return wal_fail_errno(e, WAL_EIO, errno, "%s: cannot stat", tmp_path);
	ssize_t n = pread(fd, page, sizeof(page), 0);
	if (n < 0)
		return wal_fail_errno(e, WAL_EIO, errno, "%s: cannot read", tmp_path);
	if (wal_header_decode(page, (size_t)n, &hdr, e) != WAL_OK ||
	    wal_verify_header(&hdr, name, (uint64_t)st.st_size, system_id, e) != WAL_OK) {
		char why[sizeof(e->msg)];
		snprintf(why, sizeof(why), "%s", e ? e->msg : "");
		return wal_fail(e, WAL_ECORRUPT, "%s: archived object is not a valid %s: %s", object,
				name->text, why);
	}
	*seg_size = hdr.seg_size;
	return WAL_OK;
}

wal_err wal_archive_restore(wal_store *store, const char *object, int framed,
			    const wal_name *name, uint64_t system_id, wal_sink *into,
			    uint32_t *seg_size, wal_error *e)
{
	wal_verify_sink verify;
	wal_lz4_sink *lz = NULL;
	wal_err rc;
	*seg_size = 0;
	wal_verify_sink_init(&verify, into, name, system_id, object);
	if (framed && (rc = wal_lz4_sink_new(&lz, &verify.base, object, e)) != WAL_OK)
		return rc;
	rc = wal_store_get(store, object, framed ? wal_lz4_sink_base(lz) : &verify.base, e);
	if (rc == WAL_OK && framed)
		rc = wal_lz4_sink_finish(lz, e);
	if (rc == WAL_OK)
		rc = wal_verify_sink_finish(&verify, seg_size, e);
	wal_lz4_sink_free(lz);
	return rc;
}

wal_err wal_archive_fetch_object(wal_store *store, const char *object, int framed,
				 const wal_name *name, uint64_t system_id, const char *dest_path,
				 int durable, wal_fetch_result *res, wal_error *e)
{
	wal_atomic_file f;
	wal_err rc = wal_atomic_open(&f, dest_path, 0600, e);
	if (rc != WAL_OK)
		/* a missing destination directory is not a missing archive file */
		return rc == WAL_ENOENT ? recode(e, WAL_EIO) : rc;
	rc = wal_archive_restore(store, object, framed, name, system_id, &f.sink, &res->seg_size, e);
	if (rc == WAL_OK)
		rc = wal_atomic_flush(&f, e);
	if (rc != WAL_OK) {
		wal_atomic_abort(&f);
		return rc;
	}
	struct stat st;
	res->bytes = fstat(f.fd, &st) == 0 ? (uint64_t)st.st_size : 0;
	snprintf(res->object, sizeof(res->object), "%s", object);
	return wal_atomic_commit(&f, WAL_ATOMIC_REPLACE | (durable ? 0 : WAL_ATOMIC_NO_SYNC), e);
}

wal_err wal_archive_absent(wal_store *store, uint64_t system_id, const wal_name *name,
			   wal_error *e)
{
	char info[64];
	wal_stat st;
	wal_error err;
	snprintf(info, sizeof(info), "%" PRIu64 "/" WAL_INFO_NAME, system_id);
	wal_err rc = wal_store_stat(store, info, &st, &err);
	if (rc == WAL_OK)
		return wal_fail(e, WAL_ENOENT, "%s: not in the archive", name->text);
	if (rc == WAL_ENOENT)
		return wal_fail(e, WAL_EIO,
				"%s: cannot tell whether the archive has it: no tree for cluster %" PRIu64
				" there (%s is missing); check that the archive is mounted and that "
				"archive names where this cluster pushes", name->text, system_id, info);
	if (e)
		*e = err;
	return rc;
}

wal_err wal_fetch(const wal_config *cfg, const char *file_name, const char *dest_path,
		  const char *datadir, wal_fetch_result *res, wal_error *e)
{
	wal_name name;
	wal_store *store = NULL;
	wal_err rc;
	char object[512];

	memset(res, 0, sizeof(*res));
	rc = wal_name_parse(file_name, &name, e);
	if (rc != WAL_OK)
		return rc;

	int known = wal_local_system_id(cfg, datadir, &res->system_id);
	rc = wal_store_open(&store, cfg, e);
	if (rc == WAL_ENOENT)
		/* no archive root is a broken setup, not a missing file */
		rc = recode(e, WAL_EIO);
	if (rc != WAL_OK)
		goto out;
	if (!known) {
		rc = wal_archive_system_id(store, cfg, datadir, &res->system_id, e);
		if (rc == WAL_ENOENT)
			/* an archive without any cluster is no evidence that the file is absent */
			rc = recode(e, WAL_EIO);
		if (rc != WAL_OK)
			goto out;
	}

	/* an LZ4 frame, as walpush writes every object; else plain, as earlier
	 * releases wrote with compress = none */
	for (int framed = 1; framed >= 0; framed--) {
		wal_archive_object_path(res->system_id, &name, framed, object, sizeof(object));
		rc = wal_archive_fetch_object(store, object, framed, &name, res->system_id, dest_path,
					      cfg->fetch_fsync, res, e);
		if (rc != WAL_ENOENT)
			break;
	}
	if (rc == WAL_ENOENT)
		rc = wal_archive_absent(store, res->system_id, &name, e);
out:
	wal_store_close(store);
	return rc;
}
