/*
 * PostgreSQL WAL file names as archive_command and restore_command see them:
 * segments (TTTTTTTTLLLLLLLLSSSSSSSS), partial segments (.partial), timeline
 * history files (TTTTTTTT.history) and backup history files
 * (SEGMENT.OOOOOOOO.backup).  Also segment arithmetic for every segment size
 * PostgreSQL allows (a power of two from 1 MiB to 1 GiB).
 */
#ifndef WAL_NAME_H
#define WAL_NAME_H

#include <stdint.h>
#include "base/error.h"

#define WAL_SEG_NAME_LEN 24
#define WAL_NAME_MAX 64
#define WAL_SEG_SIZE_MIN (1u << 20)
#define WAL_SEG_SIZE_MAX (1u << 30)
#define WAL_SEG_SIZE_DEFAULT (16u << 20)

typedef enum wal_name_kind {
	WAL_NAME_SEGMENT,
	WAL_NAME_PARTIAL,
	WAL_NAME_HISTORY,
	WAL_NAME_BACKUP
} wal_name_kind;

typedef struct wal_name {
	wal_name_kind kind;
	uint32_t tli;
	uint32_t log;	     /* high 32 bits of the segment's position (not history) */
	uint32_t seg;	     /* low part as written in the name (not history) */
	uint32_t backup_off; /* offset in .backup names */
	char text[WAL_NAME_MAX];
} wal_name;

/*
 * Parses an archive file name.  Anything that is not exactly one of the four
 * forms (path separators, "..", other suffixes, wrong length, lowercase hex,
 * timeline 0) is WAL_EINVAL with a message saying why.
 */
wal_err wal_name_parse(const char *text, wal_name *name, wal_error *e);

/* Whether seg_size is a power of two from 1 MiB to 1 GiB. */
int wal_seg_size_valid(uint64_t seg_size);

/* Segments per "log" (xlogid): 2^32 / seg_size. */
uint64_t wal_segs_per_log(uint32_t seg_size);

/*
 * Segment number of a segment, partial or backup name for seg_size; fails
 * with WAL_EINVAL if the name's low part is out of range for that size.
 */
wal_err wal_name_segno(const wal_name *name, uint32_t seg_size, uint64_t *segno, wal_error *e);

/* Writes the 24-hex segment name of (tli, segno) for seg_size into out[25]. */
void wal_segment_name(uint32_t tli, uint64_t segno, uint32_t seg_size, char out[25]);

/* Byte position where segment segno starts. */
uint64_t wal_segno_to_lsn(uint64_t segno, uint32_t seg_size);

/* Orders names by log/segment position, then timeline, then kind. */
int wal_name_cmp(const wal_name *a, const wal_name *b);

/* The 16-hex archive directory of a segment-like name (TTTTTTTTLLLLLLLL). */
void wal_name_dir(const wal_name *name, char out[17]);

/* Whether s names such a directory: 16 uppercase hex digits. */
int wal_name_is_dir(const char *s);

#endif
