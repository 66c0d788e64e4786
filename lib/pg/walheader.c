/*
 * Decoding and checking the WAL long page header that starts each segment.
 * Layout (XLogLongPageHeaderData, native byte order):
 *   0 uint16 xlp_magic, 2 uint16 xlp_info, 4 uint32 xlp_tli,
 *   8 uint64 xlp_pageaddr, 16 uint32 xlp_rem_len, (pad),
 *   24 uint64 xlp_sysid, 32 uint32 xlp_seg_size, 36 uint32 xlp_xlog_blcksz
 */
#include <string.h>
#include "pg/walheader.h"

#define XLP_LONG_HEADER 0x0002
#define XLP_ALL_FLAGS 0x000F

static const struct {
	int version;
	uint16_t magic;
} magics[] = {
	{ 11, 0xD098 }, { 12, 0xD101 }, { 13, 0xD106 }, { 14, 0xD10D },
	{ 15, 0xD110 }, { 16, 0xD113 }, { 17, 0xD116 }, { 18, 0xD118 },
};

int wal_magic_version(uint16_t magic)
{
	for (size_t i = 0; i < sizeof(magics) / sizeof(magics[0]); i++)
		if (magics[i].magic == magic)
			return magics[i].version;
	return 0;
}

uint16_t wal_version_magic(int pg_version)
{
	for (size_t i = 0; i < sizeof(magics) / sizeof(magics[0]); i++)
		if (magics[i].version == pg_version)
			return magics[i].magic;
	return 0;
}

wal_err wal_header_decode(const void *buf, size_t len, wal_header *hdr, wal_error *e)
{
	const unsigned char *p = buf;
	memset(hdr, 0, sizeof(*hdr));
	if (len < WAL_LONG_HEADER_SIZE)
		return wal_fail(e, WAL_ENOTWAL, "too short for a wal header (%zu bytes)", len);
	memcpy(&hdr->magic, p + 0, 2);
	memcpy(&hdr->info, p + 2, 2);
	memcpy(&hdr->tli, p + 4, 4);
	memcpy(&hdr->pageaddr, p + 8, 8);
	memcpy(&hdr->system_id, p + 24, 8);
	memcpy(&hdr->seg_size, p + 32, 4);
	memcpy(&hdr->block_size, p + 36, 4);
	hdr->pg_version = wal_magic_version(hdr->magic);
	if (hdr->pg_version == 0)
		return wal_fail(e, WAL_ENOTWAL,
				"not wal of a known postgresql version (magic 0x%04X)", hdr->magic);
	if (!(hdr->info & XLP_LONG_HEADER) || (hdr->info & ~XLP_ALL_FLAGS))
		return wal_fail(e, WAL_ENOTWAL, "no long page header (info 0x%04X)", hdr->info);
	if (!wal_seg_size_valid(hdr->seg_size))
		return wal_fail(e, WAL_ENOTWAL, "invalid segment size %u in wal header",
				hdr->seg_size);
	if (hdr->block_size < 1024 || hdr->block_size > 32768 ||
	    (hdr->block_size & (hdr->block_size - 1)))
		return wal_fail(e, WAL_ENOTWAL, "invalid block size %u in wal header",
				hdr->block_size);
	if (hdr->tli == 0)
		return wal_fail(e, WAL_ENOTWAL, "timeline 0 in wal header");
	return WAL_OK;
}

wal_err wal_header_check(const wal_header *hdr, const wal_name *name, uint64_t file_size,
			 wal_error *e)
{
	uint64_t segno;
	if (hdr->seg_size != file_size)
		return wal_fail(e, WAL_ENOTWAL,
				"file size %llu differs from the segment size %u in its header "
				"(truncated or not a segment)",
				(unsigned long long)file_size, hdr->seg_size);
	if (wal_name_segno(name, hdr->seg_size, &segno, e) != WAL_OK)
		return WAL_ENOTWAL;
	/* the first segment of a new timeline is a copy of the old timeline's
	 * segment up to the switch, so its first page may carry an older timeline */
	if (hdr->tli > name->tli)
		return wal_fail(e, WAL_ENOTWAL, "header has timeline %u, later than the name's %u",
				hdr->tli, name->tli);
	uint64_t want = wal_segno_to_lsn(segno, hdr->seg_size);
	if (hdr->pageaddr != want)
		return wal_fail(e, WAL_ENOTWAL, "header is of position %X/%X, the name says %X/%X",
				(unsigned)(hdr->pageaddr >> 32), (unsigned)hdr->pageaddr,
				(unsigned)(want >> 32), (unsigned)want);
	return WAL_OK;
}
