/*
 * Unit tests for log.h: one line per message on stderr, "program: message",
 * warnings tagged, levels filtered and parsed.
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/log.h"

static char captured[8192];

/* Runs fn with stderr sent to a temporary file; leaves the text in captured. */
static void capture(void (*fn)(void))
{
	char path[] = "/tmp/walarchive-unit-log.XXXXXX";
	int fd = mkstemp(path);
	int saved;
	ssize_t n;

	cr_assert_geq(fd, 0);
	unlink(path);
	fflush(stderr);
	saved = dup(2);
	dup2(fd, 2);
	fn();
	fflush(stderr);
	dup2(saved, 2);
	close(saved);
	lseek(fd, 0, SEEK_SET);
	n = read(fd, captured, sizeof(captured) - 1);
	close(fd);
	captured[n < 0 ? 0 : n] = '\0';
}

static void log_error(void)
{
	wal_log(WAL_LOG_ERROR, "%s: archive has different content", "000000010000000000000005");
}
static void log_warning(void)
{
	wal_log(WAL_LOG_WARNING, "backlog of %d segments", 12);
}
static void log_notice(void)
{
	wal_log(WAL_LOG_NOTICE, "000000010000000000000005 already archived");
}
static void log_info(void)
{
	wal_log(WAL_LOG_INFO, "info line");
}
static void log_debug(void)
{
	wal_log(WAL_LOG_DEBUG, "debug line");
}

static int count_lines(const char *s)
{
	int n = 0;
	for (; *s; s++)
		n += *s == '\n';
	return n;
}

/* log.h: "program: message"; only warnings are tagged after the prefix. */
Test(log, error_line)
{
	wal_log_init("walpush");
	capture(log_error);
	cr_assert_str_eq(captured,
			 "walpush: 000000010000000000000005: archive has different content\n");
}

Test(log, program_name_without_directory)
{
	wal_log_init("/usr/bin/walpush");
	capture(log_notice);
	cr_assert_str_eq(captured, "walpush: 000000010000000000000005 already archived\n");
}

Test(log, warning_line)
{
	wal_log_init("walfetch");
	capture(log_warning);
	cr_assert_eq(count_lines(captured), 1, "got \"%s\"", captured);
	cr_assert_eq(strncmp(captured, "walfetch: ", 10), 0, "got \"%s\"", captured);
	cr_assert_eq(strncmp(captured, "walfetch: warning: ", 19), 0,
		     "warnings say so after the prefix: \"%s\"", captured);
	cr_assert_not_null(strstr(captured, "backlog of 12 segments\n"), "got \"%s\"", captured);
}

Test(log, notice_line_is_plain)
{
	wal_log_init("walpush");
	capture(log_notice);
	cr_assert_str_eq(captured, "walpush: 000000010000000000000005 already archived\n");
}

Test(log, levels_filter)
{
	wal_log_init("walprune");
	cr_assert_eq(wal_log_get_level(), WAL_LOG_NOTICE, "default level");
	capture(log_info);
	cr_assert_str_eq(captured, "", "info shown at default level");
	capture(log_debug);
	cr_assert_str_eq(captured, "");
	capture(log_notice);
	cr_assert_neq(captured[0], '\0');

	wal_log_set_level(WAL_LOG_DEBUG);
	cr_assert_eq(wal_log_get_level(), WAL_LOG_DEBUG);
	capture(log_debug);
	cr_assert_str_eq(captured, "walprune: debug line\n");
	capture(log_info);
	cr_assert_str_eq(captured, "walprune: info line\n");

	wal_log_set_level(WAL_LOG_ERROR);
	capture(log_warning);
	cr_assert_str_eq(captured, "");
	capture(log_notice);
	cr_assert_str_eq(captured, "");
	capture(log_error);
	cr_assert_eq(count_lines(captured), 1);
}

Test(log, level_parse)
{
	cr_assert_eq(wal_log_level_parse("error"), WAL_LOG_ERROR);
	cr_assert_eq(wal_log_level_parse("warning"), WAL_LOG_WARNING);
	cr_assert_eq(wal_log_level_parse("notice"), WAL_LOG_NOTICE);
	cr_assert_eq(wal_log_level_parse("info"), WAL_LOG_INFO);
	cr_assert_eq(wal_log_level_parse("debug"), WAL_LOG_DEBUG);
	cr_assert_eq(wal_log_level_parse("loud"), -1);
	cr_assert_eq(wal_log_level_parse(""), -1);
	cr_assert_eq(wal_log_level_parse("debug2"), -1);
}

static void log_long(void)
{
	char big[3000];
	memset(big, 'x', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	wal_log(WAL_LOG_ERROR, "%s", big);
}

Test(log, long_message_stays_one_line)
{
	wal_log_init("walpush");
	capture(log_long);
	cr_assert_eq(count_lines(captured), 1);
	cr_assert_eq(strncmp(captured, "walpush: ", 9), 0);
}

static void log_multiline(void)
{
	wal_log(WAL_LOG_ERROR, "server said: %s", "line one\nline two\r\n");
}

/* A detail from a server may carry newlines: still one line. */
Test(log, embedded_newlines_stay_one_line)
{
	wal_log_init("walfetch");
	capture(log_multiline);
	cr_assert_eq(count_lines(captured), 1, "got \"%s\"", captured);
	cr_assert_not_null(strstr(captured, "line one"));
	cr_assert_not_null(strstr(captured, "line two"));
}

/* stdout and stderr into one file (>log 2>&1): a message comes after all
 * that was printed on stdout before it, so that it never lands inside a
 * line that stdio had written only in part (its buffer is 4096 bytes). */
Test(log, message_after_stdout_printed_before)
{
	char path[] = "/tmp/walarchive-unit-log.XXXXXX";
	static char text[16384], want[16384];
	size_t used = 0;
	int fd = mkstemp(path);
	cr_assert_geq(fd, 0);
	unlink(path);
	fflush(stdout);
	fflush(stderr);
	int out = dup(1), err = dup(2);
	dup2(fd, 1);
	dup2(fd, 2);
	setvbuf(stdout, NULL, _IOFBF, 4096); /* as when stdout is a file */
	wal_log_init("walprune");
	wal_log_set_level(WAL_LOG_NOTICE);
	for (int i = 0; i < 100; i++) {
		char line[128];
		snprintf(line, sizeof(line),
			 "would remove 1/0000000100000000/%024d (16777216 bytes)\n", i);
		fputs(line, stdout);
		used += (size_t)snprintf(want + used, sizeof(want) - used, "%s", line);
	}
	wal_log(WAL_LOG_NOTICE, "would remove 100 objects");
	snprintf(want + used, sizeof(want) - used, "walprune: would remove 100 objects\n");
	fflush(stdout);
	dup2(out, 1);
	dup2(err, 2);
	close(out);
	close(err);
	lseek(fd, 0, SEEK_SET);
	ssize_t n = read(fd, text, sizeof(text) - 1);
	close(fd);
	text[n < 0 ? 0 : n] = '\0';
	cr_assert_str_eq(text, want, "the listing whole, then the summary");
}
