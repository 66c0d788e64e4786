/*
 * The long page header at the start of every WAL segment
 * (XLogLongPageHeaderData): magic of the PostgreSQL version that wrote it,
 * timeline, page address, system identifier, segment and block size.
 */
#ifndef WAL_HEADER_H
#define WAL_HEADER_H

#include <stddef.h>
#include <stdint.h>
#include "base/error.h"
#include "pg/walname.h"

#define WAL_LONG_HEADER_SIZE 40

typedef struct wal_header {
	uint16_t magic;
	uint16_t info;
	uint32_t tli;
	uint64_t pageaddr;
	uint64_t system_id;
	uint32_t seg_size;
	uint32_t block_size;
	int pg_version; /* major version from the magic, 0 if unknown */
} wal_header;

/* Major PostgreSQL version (11..18) that writes this magic, or 0. */
int wal_magic_version(uint16_t magic);

/* The magic written by a major version, or 0 if unknown. */
uint16_t wal_version_magic(int pg_version);

/* Decodes the first WAL_LONG_HEADER_SIZE bytes; WAL_ENOTWAL if not a long header of a known version. */
wal_err wal_header_decode(const void *buf, size_t len, wal_header *hdr, wal_error *e);

/*
 * Checks that hdr belongs to a file called name (a segment or partial) of
 * file_size bytes: segment size equal to the file size, timeline and page
 * address matching the name.  WAL_ENOTWAL with the disagreement otherwise.
 */
wal_err wal_header_check(const wal_header *hdr, const wal_name *name, uint64_t file_size,
			 wal_error *e);

#endif
