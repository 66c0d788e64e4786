/*
 * A small JSON writer for walcheck --json: objects, arrays, and strings
 * escaped as RFC 8259 asks (quotes, backslashes, control characters; bytes
 * that are not UTF-8 become U+FFFD), so any name or message makes a
 * document a parser reads.
 */
#ifndef WAL_CHECK_JSON_H
#define WAL_CHECK_JSON_H

#include <stdint.h>
#include <stdio.h>

#define WAL_JSON_DEPTH 16

typedef struct wal_json {
	FILE *out;
	int depth;
	int count[WAL_JSON_DEPTH]; /* members written at each level */
} wal_json;

void wal_json_init(wal_json *j, FILE *out);

/* Writes text as a JSON string, quotes included. */
void wal_json_string(FILE *out, const char *text);

/* Opens an object or array as the value of key (NULL inside an array or at the top). */
void wal_json_object(wal_json *j, const char *key);
void wal_json_array(wal_json *j, const char *key);
/* Closes the innermost object or array; after the top one, a newline. */
void wal_json_end(wal_json *j, char close);

void wal_json_str(wal_json *j, const char *key, const char *value); /* NULL: null */
void wal_json_int(wal_json *j, const char *key, int64_t value);
void wal_json_uint(wal_json *j, const char *key, uint64_t value);
void wal_json_num(wal_json *j, const char *key, double value);
void wal_json_bool(wal_json *j, const char *key, int value);
void wal_json_null(wal_json *j, const char *key);

#endif
