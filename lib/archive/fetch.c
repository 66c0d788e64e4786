/*
 * walfetch's one-file work: restore an object into a temporary file beside
 * the destination, checked on the way, and rename it into place; and say
 * "not in the archive" only on evidence.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include "archive/archive.h"
#include "io/compress.h"
#include "sys/fileio.h"
#include "archive/verify.h"

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
		return wal_fail(e, WAL_ECORRUPT, "%s: archived object is not a valid %s: %s",
				object, name->text, why);
	}
	*seg_size = hdr.seg_size;
	return WAL_OK;
}

wal_err wal_archive_restore(wal_store *store, const char *object, int form, const wal_name *name,
			    uint64_t system_id, uint32_t cluster_seg_size, const wal_age_keys *ids,
			    wal_sink *into, uint32_t *seg_size, wal_error *e)
{
	wal_verify_sink verify;
	wal_frame_sink frame = { 0 };
	wal_age_sink *age = NULL;
	wal_sink *first = &verify.base;
	wal_stat st;
	wal_err rc = WAL_OK;
	*seg_size = 0;
	wal_verify_sink_init(&verify, into, name, system_id, cluster_seg_size, object);
	if ((form & WAL_OBJ_AGE) && !ids) {
		/* said only of an object that is there: absent is still "not found" */
		if ((rc = wal_store_stat(store, object, &st, e)) == WAL_OK)
			rc = wal_fail(
				e, WAL_ECONFIG,
				"%s: the object is encrypted and encrypt_identity is not set: "
				"nothing restored",
				object);
		return rc;
	}
	rc = wal_frame_sink_new(&frame, form, first, object, &first, e);
	/* the decrypting sink passes on only chunks that authenticated */
	if (rc == WAL_OK && (form & WAL_OBJ_AGE) &&
	    (rc = wal_age_sink_new(&age, first, ids, object, e)) == WAL_OK)
		first = wal_age_sink_base(age);
	if (rc == WAL_OK)
		rc = wal_store_get(store, object, first, e);
	if (rc == WAL_OK && age)
		rc = wal_age_sink_finish(age, e);
	if (rc == WAL_OK)
		rc = wal_frame_sink_finish(&frame, e);
	if (rc == WAL_OK)
		rc = wal_verify_sink_finish(&verify, seg_size, e);
	wal_age_sink_free(age);
	wal_frame_sink_free(&frame);
	return rc;
}

wal_err wal_archive_fetch_object(wal_store *store, const char *object, int form,
				 const wal_name *name, uint64_t system_id,
				 uint32_t cluster_seg_size, const wal_age_keys *ids,
				 const char *dest_path, int durable, wal_fetch_result *res,
				 wal_error *e)
{
	wal_atomic_file f;
	wal_err rc = wal_atomic_open(&f, dest_path, 0600, e);
	if (rc != WAL_OK)
		/* a missing destination directory is not a missing archive file */
		return rc == WAL_ENOENT ? wal_error_recode(e, WAL_EIO) : rc;
	rc = wal_archive_restore(store, object, form, name, system_id, cluster_seg_size, ids,
				 &f.sink, &res->seg_size, e);
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

wal_err wal_archive_absent(wal_store *store, uint64_t system_id, const wal_name *name, wal_error *e)
{
	char info[64];
	wal_stat st;
	wal_error err;
	snprintf(info, sizeof(info), "%" PRIu64 "/" WAL_INFO_NAME, system_id);
	wal_err rc = wal_store_stat(store, info, &st, &err);
	if (rc == WAL_OK)
		return wal_fail(e, WAL_ENOENT, "%s: not in the archive", name->text);
	if (rc == WAL_ENOENT) {
		char tree[32];
		snprintf(tree, sizeof(tree), "%" PRIu64, system_id);
		if (wal_store_stat(store, tree, &st, &err) == WAL_OK)
			/* the tree is there, its marker is not: removed by hand? */
			return wal_fail(e, WAL_EIO,
					"%s: cannot tell whether the archive has it: the tree of "
					"cluster %" PRIu64 " is there but %s is missing (walpush "
					"writes it again on its next push)",
					name->text, system_id, info);
		return wal_fail(
			e, WAL_EIO,
			"%s: cannot tell whether the archive has it: no tree for cluster %" PRIu64
			" there (%s is missing); check that the archive is mounted and that "
			"archive names where this cluster pushes",
			name->text, system_id, info);
	}
	if (e)
		*e = err;
	return rc;
}

wal_err wal_fetch(const wal_config *cfg, const char *file_name, const char *dest_path,
		  const char *datadir, wal_fetch_result *res, wal_error *e)
{
	wal_name name;
	wal_store *store = NULL;
	wal_age_keys *ids = NULL;
	int have_ids = 0, forms[WAL_ARCHIVE_FORMS];
	wal_err rc;
	char object[512];

	memset(res, 0, sizeof(*res));
	rc = wal_name_parse(file_name, &name, e);
	if (rc != WAL_OK)
		return rc;
	if (!(ids = malloc(sizeof(*ids))))
		return wal_fail(e, WAL_ENOMEM, "out of memory");
	if ((rc = wal_archive_identities(cfg, ids, &have_ids, e)) != WAL_OK)
		goto out;

	/* the data directory's segment size bounds what any object may expand to */
	uint32_t cluster_seg_size;
	int known = wal_local_cluster(cfg, datadir, &res->system_id, &cluster_seg_size);
	rc = wal_store_open(&store, cfg, e);
	if (rc == WAL_ENOENT)
		/* no archive root is a broken setup, not a missing file */
		rc = wal_error_recode(e, WAL_EIO);
	if (rc != WAL_OK)
		goto out;
	if (!known) {
		rc = wal_archive_system_id(store, cfg, datadir, &res->system_id, e);
		if (rc == WAL_ENOENT)
			/* an archive without any cluster is no evidence that the file is absent */
			rc = wal_error_recode(e, WAL_EIO);
		if (rc != WAL_OK)
			goto out;
	}

	/* an LZ4 or zstd frame (what this configuration writes first),
	 * encrypted or not, as walpush writes every object; else plain, as
	 * earlier releases wrote with compress = none */
	wal_archive_forms(have_ids, wal_archive_codec(cfg), forms);
	for (int i = 0; i < WAL_ARCHIVE_FORMS; i++) {
		wal_archive_object_path(res->system_id, &name, forms[i], object, sizeof(object));
		rc = wal_archive_fetch_object(store, object, forms[i], &name, res->system_id,
					      cluster_seg_size, have_ids ? ids : NULL, dest_path,
					      cfg->fetch_fsync, res, e);
		if (rc != WAL_ENOENT)
			break;
	}
	if (rc == WAL_ENOENT)
		rc = wal_archive_absent(store, res->system_id, &name, e);
out:
	wal_store_close(store);
	wal_age_keys_wipe(ids);
	free(ids);
	return rc;
}
