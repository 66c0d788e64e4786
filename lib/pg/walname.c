/*
 * Parsing and ordering of WAL archive file names, and segment arithmetic.
 */
#include <stdio.h>
#include <string.h>
#include "pg/walname.h"

static int is_upper_hex(const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'A' && s[i] <= 'F')))
			return 0;
	return 1;
}

static uint32_t hex32(const char *s)
{
	uint32_t v = 0;
	for (int i = 0; i < 8; i++)
		v = (v << 4) | (uint32_t)(s[i] <= '9' ? s[i] - '0' : s[i] - 'A' + 10);
	return v;
}

wal_err wal_name_parse(const char *text, wal_name *name, wal_error *e)
{
	size_t len = strlen(text);
	memset(name, 0, sizeof(*name));

	if (len == 0)
		return wal_fail(e, WAL_EINVAL, "empty wal file name");
	if (strchr(text, '/') || strstr(text, ".."))
		return wal_fail(e, WAL_EINVAL, "%.80s: not a wal file name (contains a path)",
				text);
	if (len >= WAL_NAME_MAX)
		return wal_fail(e, WAL_EINVAL, "%.80s...: not a wal file name (too long)", text);

	if (len == 16 && strcmp(text + 8, ".history") == 0 && is_upper_hex(text, 8)) {
		name->kind = WAL_NAME_HISTORY;
		name->tli = hex32(text);
	} else if (len >= 24 && is_upper_hex(text, 24)) {
		name->tli = hex32(text);
		name->log = hex32(text + 8);
		name->seg = hex32(text + 16);
		if (len == 24)
			name->kind = WAL_NAME_SEGMENT;
		else if (strcmp(text + 24, ".partial") == 0)
			name->kind = WAL_NAME_PARTIAL;
		else if (len == 40 && text[24] == '.' && is_upper_hex(text + 25, 8) &&
			 strcmp(text + 33, ".backup") == 0) {
			name->kind = WAL_NAME_BACKUP;
			name->backup_off = hex32(text + 25);
		} else
			return wal_fail(
				e, WAL_EINVAL,
				"%s: not a wal file name (unknown suffix after the segment)", text);
	} else
		return wal_fail(e, WAL_EINVAL,
				"%s: not a wal file name (want 24 uppercase hex digits, "
				"with .partial or .OFFSET.backup, or TIMELINE.history)",
				text);

	if (name->tli == 0)
		return wal_fail(e, WAL_EINVAL, "%s: not a wal file name (timeline 0)", text);
	memcpy(name->text, text, len + 1);
	return WAL_OK;
}

int wal_seg_size_valid(uint64_t seg_size)
{
	return seg_size >= WAL_SEG_SIZE_MIN && seg_size <= WAL_SEG_SIZE_MAX &&
	       (seg_size & (seg_size - 1)) == 0;
}

uint64_t wal_segs_per_log(uint32_t seg_size)
{
	return (UINT64_C(1) << 32) / seg_size;
}

wal_err wal_name_segno(const wal_name *name, uint32_t seg_size, uint64_t *segno, wal_error *e)
{
	if (name->kind == WAL_NAME_HISTORY)
		return wal_fail(e, WAL_EINVAL, "%s: a history file has no segment number",
				name->text);
	if (!wal_seg_size_valid(seg_size))
		return wal_fail(e, WAL_EINVAL, "%u: not a valid wal segment size", seg_size);
	uint64_t per_log = wal_segs_per_log(seg_size);
	if (name->seg >= per_log)
		return wal_fail(e, WAL_EINVAL, "%s: segment part out of range for %u MiB segments",
				name->text, seg_size >> 20);
	*segno = (uint64_t)name->log * per_log + name->seg;
	return WAL_OK;
}

void wal_segment_name(uint32_t tli, uint64_t segno, uint32_t seg_size, char out[25])
{
	uint64_t per_log = wal_segs_per_log(seg_size);
	snprintf(out, 25, "%08X%08X%08X", tli, (uint32_t)(segno / per_log),
		 (uint32_t)(segno % per_log));
}

uint64_t wal_segno_to_lsn(uint64_t segno, uint32_t seg_size)
{
	return segno * seg_size;
}

int wal_name_cmp(const wal_name *a, const wal_name *b)
{
	/* history files have no position: they sort first, by timeline */
	int ah = a->kind == WAL_NAME_HISTORY, bh = b->kind == WAL_NAME_HISTORY;
	if (ah != bh)
		return ah ? -1 : 1;
	if (!ah) {
		if (a->log != b->log)
			return a->log < b->log ? -1 : 1;
		if (a->seg != b->seg)
			return a->seg < b->seg ? -1 : 1;
	}
	if (a->tli != b->tli)
		return a->tli < b->tli ? -1 : 1;
	if (a->kind != b->kind)
		return a->kind < b->kind ? -1 : 1;
	if (a->backup_off != b->backup_off)
		return a->backup_off < b->backup_off ? -1 : 1;
	return 0;
}

void wal_name_dir(const wal_name *name, char out[17])
{
	snprintf(out, 17, "%08X%08X", name->tli, name->log);
}

int wal_name_is_dir(const char *s)
{
	if (strlen(s) != 16)
		return 0;
	for (int i = 0; i < 16; i++)
		if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'A' && s[i] <= 'F')))
			return 0;
	return 1;
}
