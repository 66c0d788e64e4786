/*
 * Messages for the user: one line each on stderr, "program: message",
 * lowercase, no trailing period.  Used by cmd/ only; lib reports through
 * wal_error instead.
 */
#ifndef WAL_LOG_H
#define WAL_LOG_H

enum { WAL_LOG_ERROR = 0, WAL_LOG_WARNING, WAL_LOG_NOTICE, WAL_LOG_INFO, WAL_LOG_DEBUG };

/* Sets the program name that prefixes every line. */
void wal_log_init(const char *program);

/* Lines above this level are dropped (default WAL_LOG_NOTICE). */
void wal_log_set_level(int level);
int wal_log_get_level(void);

/* Writes one line at level; warnings say so after the prefix. */
void wal_log(int level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Parses "error|warning|notice|info|debug"; -1 if unknown. */
int wal_log_level_parse(const char *text);

#endif
