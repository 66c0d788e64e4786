/*
 * libFuzzer target: the WAL long page header (wal_header_decode and
 * wal_header_check).  The input is a 24-character candidate name, then the
 * header bytes; the file size checked is the input's length or the header's
 * own segment size.  Nothing may crash and nothing is read past the buffer.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include "pg/walheader.h"
#include "pg/walname.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char text[WAL_SEG_NAME_LEN + 1];
	wal_header hdr;
	wal_name name;
	wal_error e;
	uint8_t *page;
	size_t page_len;

	if (size < WAL_SEG_NAME_LEN)
		return 0;
	memcpy(text, data, WAL_SEG_NAME_LEN);
	text[WAL_SEG_NAME_LEN] = '\0';
	/* an exact-size copy so ASan catches any read past the end */
	page_len = size - WAL_SEG_NAME_LEN;
	page = malloc(page_len ? page_len : 1);
	if (!page)
		return 0;
	memcpy(page, data + WAL_SEG_NAME_LEN, page_len);
	if (wal_header_decode(page, page_len, &hdr, &e) == WAL_OK) {
		if (page_len < WAL_LONG_HEADER_SIZE || hdr.pg_version == 0)
			abort();
		if (wal_name_parse(text, &name, &e) != WAL_OK) {
			/* any valid name will do for the check itself */
			wal_name_parse("000000010000000000000001", &name, &e);
		}
		if (wal_header_check(&hdr, &name, hdr.seg_size, &e) == WAL_OK &&
		    !wal_seg_size_valid(hdr.seg_size))
			abort();
		(void)wal_header_check(&hdr, &name, page_len, &e);
		(void)wal_header_check(&hdr, &name, 0, &e);
		(void)wal_header_check(&hdr, &name, UINT64_MAX, &e);
	}
	free(page);
	return 0;
}
