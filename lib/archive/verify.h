/*
 * What an archived object must be before walfetch hands it to PostgreSQL:
 * a sink that checks the restored bytes as they stream past, on their way
 * to the temporary file.  It bounds how much an object may expand to (one
 * segment of the cluster's size, else of its header's, or WAL_TEXT_FILE_MAX
 * for a history or backup file), and checks the identity of a segment from
 * its long page header as soon as the first 40 bytes arrive: a known
 * PostgreSQL version, the cluster (system identifier and, when known, its
 * segment size), the timeline and position of its name, and, at the end,
 * the size.  The content itself is checked by the container around it (the LZ4
 * frame's content checksum, the hash of a spooled copy).
 */
#ifndef WAL_VERIFY_H
#define WAL_VERIFY_H

#include <stdint.h>
#include "base/error.h"
#include "io/stream.h"
#include "pg/walheader.h"
#include "pg/walname.h"

/* History and backup files are small text files; anything bigger is not one. */
#define WAL_TEXT_FILE_MAX (1u << 20)

typedef struct wal_verify_sink {
	wal_sink base;
	wal_sink *inner;
	const wal_name *name;
	uint64_t system_id; /* the cluster the object must belong to; 0: not checked */
	uint32_t seg_size;  /* the cluster's segment size; 0: unknown, the header's bounds */
	const char *object; /* names the object in messages */
	unsigned char head[WAL_LONG_HEADER_SIZE];
	wal_header hdr;
	int have_hdr;
	uint64_t limit; /* most bytes the object may restore to */
	uint64_t written;
} wal_verify_sink;

/*
 * Starts checking the bytes of object, restored as name for the cluster
 * system_id, whose segments are seg_size bytes (0: not known here), on their
 * way to inner.  Any disagreement, as soon as it shows, is WAL_ECORRUPT with
 * the reason; nothing past the limit reaches inner.
 */
void wal_verify_sink_init(wal_verify_sink *v, wal_sink *inner, const wal_name *name,
			  uint64_t system_id, uint32_t seg_size, const char *object);

/*
 * After the last byte: checks that the object was complete (a segment of
 * exactly its header's size, a non-empty text file).  Sets *seg_size from
 * the header of a segment or partial, else 0.
 */
wal_err wal_verify_sink_finish(wal_verify_sink *v, uint32_t *seg_size, wal_error *e);

/*
 * Checks the identity of a segment or partial from its decoded header, for
 * a file of file_size bytes: name, timeline, position, size, and the
 * cluster when system_id is not 0.  WAL_ENOTWAL or WAL_EFOREIGN with the
 * reason.
 */
wal_err wal_verify_header(const wal_header *hdr, const wal_name *name, uint64_t file_size,
			  uint64_t system_id, wal_error *e);

/*
 * The decompressing sink for an object's frame (form & WAL_OBJ_CODECS: LZ4
 * or zstd, or none), in front of inner: *first is where the object's bytes
 * go (inner itself without a frame).
 */
typedef struct wal_frame_sink {
	struct wal_lz4_sink *lz4;
	struct wal_zstd_sink *zstd;
} wal_frame_sink;
wal_err wal_frame_sink_new(wal_frame_sink *f, int form, wal_sink *inner, const char *what,
			   wal_sink **first, wal_error *e);
/* Checks that the frame ended exactly, its checksum verified. */
wal_err wal_frame_sink_finish(wal_frame_sink *f, wal_error *e);
void wal_frame_sink_free(wal_frame_sink *f);

#endif
