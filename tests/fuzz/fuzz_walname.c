/*
 * libFuzzer target: WAL archive file names (wal_name_parse) and the store
 * path check.  Whatever the input, the parser must not crash, and a name it
 * accepts must be one of the four forms with no path tricks in it.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include "store/store.h"
#include "pg/walname.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *text = malloc(size + 1);
	wal_name name;
	wal_error e;

	if (!text)
		return 0;
	memcpy(text, data, size);
	text[size] = '\0';
	if (wal_name_parse(text, &name, &e) == WAL_OK) {
		/* an accepted name never escapes a directory */
		if (strchr(text, '/') || strstr(text, "..") || name.tli == 0 ||
		    strlen(text) >= WAL_NAME_MAX || strcmp(name.text, text) != 0)
			abort();
		if (name.kind != WAL_NAME_HISTORY) {
			char dir[17], seg[25];
			uint64_t segno;

			wal_name_dir(&name, dir);
			if (strlen(dir) != 16)
				abort();
			for (uint32_t seg_size = WAL_SEG_SIZE_MIN;
			     seg_size && seg_size <= WAL_SEG_SIZE_MAX; seg_size <<= 1)
				if (wal_name_segno(&name, seg_size, &segno, &e) == WAL_OK) {
					wal_segment_name(name.tli, segno, seg_size, seg);
					/* the round trip gives back the name's segment part */
					if (strncmp(seg, text, 24) != 0)
						abort();
				}
		}
		(void)wal_name_cmp(&name, &name);
	}
	(void)wal_store_path_valid(text, &e);
	free(text);
	return 0;
}
