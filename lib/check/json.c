/*
 * The JSON writer of json.h: members separated and escaped as they are
 * written, nothing kept but the depth and a count per level.
 */
#include <inttypes.h>
#include <math.h>
#include "check/json.h"

void wal_json_init(wal_json *j, FILE *out)
{
	j->out = out;
	j->depth = 0;
	j->count[0] = 0;
}

/* Length of the valid UTF-8 sequence at s, or 0 if it is not one. */
static int utf8_len(const unsigned char *s)
{
	int len;
	uint32_t cp;
	if (s[0] < 0x80)
		return 1;
	if ((s[0] & 0xE0) == 0xC0) {
		len = 2;
		cp = s[0] & 0x1F;
	} else if ((s[0] & 0xF0) == 0xE0) {
		len = 3;
		cp = s[0] & 0x0F;
	} else if ((s[0] & 0xF8) == 0xF0) {
		len = 4;
		cp = s[0] & 0x07;
	} else {
		return 0;
	}
	for (int i = 1; i < len; i++) {
		if ((s[i] & 0xC0) != 0x80)
			return 0;
		cp = (cp << 6) | (s[i] & 0x3F);
	}
	/* no overlong forms, no surrogates, nothing past U+10FFFF */
	if ((len == 2 && cp < 0x80) || (len == 3 && cp < 0x800) || (len == 4 && cp < 0x10000) ||
	    (cp >= 0xD800 && cp <= 0xDFFF) || cp > 0x10FFFF)
		return 0;
	return len;
}

void wal_json_string(FILE *out, const char *text)
{
	const unsigned char *s = (const unsigned char *)text;
	fputc('"', out);
	while (*s) {
		int len;
		switch (*s) {
		case '"':
			fputs("\\\"", out);
			s++;
			continue;
		case '\\':
			fputs("\\\\", out);
			s++;
			continue;
		case '\n':
			fputs("\\n", out);
			s++;
			continue;
		case '\r':
			fputs("\\r", out);
			s++;
			continue;
		case '\t':
			fputs("\\t", out);
			s++;
			continue;
		default:
			break;
		}
		if (*s < 0x20 || *s == 0x7F) {
			fprintf(out, "\\u%04x", *s);
			s++;
		} else if ((len = utf8_len(s)) == 0) {
			fputs("\\ufffd", out);
			s++;
		} else {
			fwrite(s, 1, (size_t)len, out);
			s += len;
		}
	}
	fputc('"', out);
}

static void member(wal_json *j, const char *key)
{
	if (j->count[j->depth]++)
		fputc(',', j->out);
	if (key) {
		wal_json_string(j->out, key);
		fputc(':', j->out);
	}
}

static void open_level(wal_json *j, const char *key, char open)
{
	member(j, key);
	fputc(open, j->out);
	if (j->depth + 1 < WAL_JSON_DEPTH)
		j->count[++j->depth] = 0;
}

void wal_json_object(wal_json *j, const char *key)
{
	open_level(j, key, '{');
}

void wal_json_array(wal_json *j, const char *key)
{
	open_level(j, key, '[');
}

void wal_json_end(wal_json *j, char close)
{
	fputc(close, j->out);
	if (j->depth > 0)
		j->depth--;
	if (j->depth == 0)
		fputc('\n', j->out);
}

void wal_json_str(wal_json *j, const char *key, const char *value)
{
	member(j, key);
	if (value)
		wal_json_string(j->out, value);
	else
		fputs("null", j->out);
}

void wal_json_int(wal_json *j, const char *key, int64_t value)
{
	member(j, key);
	fprintf(j->out, "%" PRId64, value);
}

void wal_json_uint(wal_json *j, const char *key, uint64_t value)
{
	member(j, key);
	fprintf(j->out, "%" PRIu64, value);
}

void wal_json_num(wal_json *j, const char *key, double value)
{
	member(j, key);
	if (isfinite(value))
		fprintf(j->out, "%.3f", value);
	else
		fputs("null", j->out);
}

void wal_json_bool(wal_json *j, const char *key, int value)
{
	member(j, key);
	fputs(value ? "true" : "false", j->out);
}

void wal_json_null(wal_json *j, const char *key)
{
	member(j, key);
	fputs("null", j->out);
}
