/*
 * The identity checks of a restored object, on the stream (see verify.h).
 */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include "archive/archive.h"
#include "archive/verify.h"
#include "io/compress.h"
#include "io/zstd.h"

static int is_segment(const wal_name *name)
{
	return name->kind == WAL_NAME_SEGMENT || name->kind == WAL_NAME_PARTIAL;
}

wal_err wal_verify_header(const wal_header *hdr, const wal_name *name, uint64_t file_size,
			  uint64_t system_id, wal_error *e)
{
	if (system_id && hdr->system_id != system_id)
		return wal_fail(e, WAL_EFOREIGN,
				"it belongs to another cluster (system identifier %" PRIu64
				", this cluster's is %" PRIu64 ")",
				hdr->system_id, system_id);
	return wal_header_check(hdr, name, file_size, e);
}

/* Files the reason in e as a refusal of the object. */
static wal_err refuse(wal_verify_sink *v, wal_error *e)
{
	char why[sizeof(e->msg)];
	snprintf(why, sizeof(why), "%s", e->msg);
	return wal_fail(e, WAL_ECORRUPT, "%s: archived object is not a valid %s: %s", v->object,
			v->name->text, why);
}

static wal_err verify_write(wal_sink *base, const void *buf, size_t len, wal_error *e)
{
	wal_verify_sink *v = (wal_verify_sink *)base;
	wal_error local;
	if (!e)
		e = &local;
	if (len > v->limit - v->written)
		return wal_fail(e, WAL_ECORRUPT,
				"%s: archived object expands beyond %" PRIu64
				" bytes, more than a %s "
				"can hold; refused",
				v->object, v->limit,
				is_segment(v->name) ? "segment of its header's size"
						    : "history or backup file");
	if (v->written < sizeof(v->head)) {
		size_t n = sizeof(v->head) - (size_t)v->written;
		if (n > len)
			n = len;
		memcpy(v->head + v->written, buf, n);
		if (is_segment(v->name) && v->written + n == sizeof(v->head)) {
			/* the identity is known from the first 40 bytes: refuse early */
			if (wal_header_decode(v->head, sizeof(v->head), &v->hdr, e) != WAL_OK ||
			    wal_verify_header(&v->hdr, v->name, v->hdr.seg_size, v->system_id, e) !=
				    WAL_OK)
				return refuse(v, e);
			/* a header may claim up to 1 GiB: only the cluster's own size bounds */
			if (v->seg_size && v->hdr.seg_size != v->seg_size) {
				wal_fail(e, WAL_ENOTWAL,
					 "its header gives segments of %" PRIu32
					 " bytes, this cluster's are %" PRIu32 " bytes",
					 v->hdr.seg_size, v->seg_size);
				return refuse(v, e);
			}
			v->have_hdr = 1;
			v->limit = v->hdr.seg_size;
			if (len > v->limit - v->written)
				return verify_write(base, buf, len, e);
		}
	}
	v->written += len;
	return v->inner->write(v->inner, buf, len, e);
}

/* Before the header: the cluster's segment size, else PostgreSQL's largest. */
static uint64_t initial_limit(const wal_verify_sink *v)
{
	if (!is_segment(v->name))
		return WAL_TEXT_FILE_MAX;
	return v->seg_size ? v->seg_size : WAL_SEG_SIZE_MAX;
}

static wal_err verify_reset(wal_sink *base, wal_error *e)
{
	wal_verify_sink *v = (wal_verify_sink *)base;
	v->written = 0;
	v->have_hdr = 0;
	v->limit = initial_limit(v);
	return v->inner->reset(v->inner, e);
}

void wal_verify_sink_init(wal_verify_sink *v, wal_sink *inner, const wal_name *name,
			  uint64_t system_id, uint32_t seg_size, const char *object)
{
	memset(v, 0, sizeof(*v));
	v->base.write = verify_write;
	v->base.reset = verify_reset;
	v->inner = inner;
	v->name = name;
	v->system_id = system_id;
	v->seg_size = wal_seg_size_valid(seg_size) ? seg_size : 0;
	v->object = object;
	v->limit = initial_limit(v);
}

wal_err wal_verify_sink_finish(wal_verify_sink *v, uint32_t *seg_size, wal_error *e)
{
	wal_error local;
	if (!e)
		e = &local;
	*seg_size = 0;
	if (is_segment(v->name)) {
		if (!v->have_hdr) {
			wal_fail(e, WAL_ENOTWAL, "%" PRIu64 " bytes, too short for a wal segment",
				 v->written);
			return refuse(v, e);
		}
		if (wal_verify_header(&v->hdr, v->name, v->written, v->system_id, e) != WAL_OK)
			return refuse(v, e);
		*seg_size = v->hdr.seg_size;
		return WAL_OK;
	}
	if (v->written == 0) {
		wal_fail(e, WAL_ENOTWAL, "the object is empty");
		return refuse(v, e);
	}
	if (v->name->kind == WAL_NAME_BACKUP &&
	    (v->written < 18 || memcmp(v->head, "START WAL LOCATION", 18) != 0)) {
		wal_fail(e, WAL_ENOTWAL, "not a backup history file");
		return refuse(v, e);
	}
	return WAL_OK;
}

wal_err wal_frame_sink_new(wal_frame_sink *f, int form, wal_sink *inner, const char *what,
			   wal_sink **first, wal_error *e)
{
	wal_err rc = WAL_OK;
	memset(f, 0, sizeof(*f));
	*first = inner;
	if ((form & WAL_OBJ_ZSTD) && (rc = wal_zstd_sink_new(&f->zstd, inner, what, e)) == WAL_OK)
		*first = wal_zstd_sink_base(f->zstd);
	else if ((form & WAL_OBJ_LZ4) && (rc = wal_lz4_sink_new(&f->lz4, inner, what, e)) == WAL_OK)
		*first = wal_lz4_sink_base(f->lz4);
	return rc;
}

wal_err wal_frame_sink_finish(wal_frame_sink *f, wal_error *e)
{
	if (f->zstd)
		return wal_zstd_sink_finish(f->zstd, e);
	if (f->lz4)
		return wal_lz4_sink_finish(f->lz4, e);
	return WAL_OK;
}

void wal_frame_sink_free(wal_frame_sink *f)
{
	wal_zstd_sink_free(f->zstd);
	wal_lz4_sink_free(f->lz4);
	memset(f, 0, sizeof(*f));
}
