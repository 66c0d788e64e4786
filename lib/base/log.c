/*
 * One-line messages on stderr, "program: [error: ]message".
 */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include "base/log.h"

static const char *log_program = "walarchive";
static int log_level = WAL_LOG_NOTICE;
static const char *const level_names[] = { "error", "warning", "notice", "info", "debug" };

void wal_log_init(const char *program)
{
	const char *slash = strrchr(program, '/');
	log_program = slash ? slash + 1 : program;
}

void wal_log_set_level(int level)
{
	log_level = level;
}

int wal_log_get_level(void)
{
	return log_level;
}

int wal_log_level_parse(const char *text)
{
	for (int i = 0; i < (int)(sizeof(level_names) / sizeof(level_names[0])); i++)
		if (strcmp(text, level_names[i]) == 0)
			return i;
	return -1;
}

void wal_log(int level, const char *fmt, ...)
{
	if (level > log_level)
		return;
	char line[2048];
	int used = snprintf(line, sizeof(line), "%s: %s", log_program,
			    level == WAL_LOG_WARNING ? "warning: " : "");
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(line + used, sizeof(line) - (size_t)used, fmt, ap);
	va_end(ap);
	/* one message, one line: a detail from a server may carry newlines */
	for (char *p = line; *p; p++)
		if (*p == '\n' || *p == '\r')
			*p = ' ';
	/* what the program printed on stdout so far comes first, so that
	 * both streams into one file (>log 2>&1) keep their order and no
	 * message lands inside a half-written line */
	fflush(stdout);
	/* a single write keeps lines from concurrent processes whole */
	fprintf(stderr, "%s\n", line);
	fflush(stderr);
}
