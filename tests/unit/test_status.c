/*
 * Unit tests for ahead/status.h: the status records walpush, walfetch and
 * the prefetcher keep in the spool for walcheck, written only into a trusted
 * spool, replaced atomically, read back without trusting a link or a
 * malformed file.
 */
#include <criterion/criterion.h>
#include <dirent.h>
#include <fcntl.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "ahead/status.h"
#include "base/config.h"

#define SYSID 42
#define SEG "000000010000000000000003"

static char base[256], spool[300], status_dir[400];
static wal_config cfg;

static int rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	return remove(path);
}

static void setup(void)
{
	wal_error e;
	snprintf(base, sizeof(base), "/tmp/walarchive-unit-status.XXXXXX");
	cr_assert_not_null(mkdtemp(base));
	snprintf(spool, sizeof(spool), "%s/spool", base);
	snprintf(status_dir, sizeof(status_dir), "%s/%d/status", spool, SYSID);
	cr_assert_eq(mkdir(spool, 0700), 0);
	wal_config_init(&cfg);
	cr_assert_eq(wal_config_set(&cfg, "spool_dir", spool, "test", 1, &e), WAL_OK, "%s", e.msg);
	cr_assert_eq(wal_config_set(&cfg, "archive", "/nonexistent", "test", 1, &e), WAL_OK);
}

static void teardown(void)
{
	wal_config_free(&cfg);
	nftw(base, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

/* How many entries dir has, -1 if it cannot be listed. */
static int count_entries(const char *dir)
{
	DIR *d = opendir(dir);
	struct dirent *ent;
	int n = 0;
	if (!d)
		return -1;
	while ((ent = readdir(d)))
		if (strcmp(ent->d_name, ".") && strcmp(ent->d_name, ".."))
			n++;
	closedir(d);
	return n;
}

static void write_file(const char *path, const char *text, mode_t mode)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, mode);
	cr_assert_geq(fd, 0, "open %s", path);
	cr_assert_eq(write(fd, text, strlen(text)), (ssize_t)strlen(text));
	close(fd);
	cr_assert_eq(chmod(path, mode), 0);
}

Test(status, success_and_failure_recorded, .init = setup, .fini = teardown)
{
	wal_error e;
	wal_status st;
	time_t before = time(NULL);
	cr_assert_eq(wal_status_read(&cfg, SYSID, "walpush", &st, &e), WAL_ENOENT);
	cr_assert_eq(wal_status_record(&cfg, SYSID, "walpush", SEG, 0,
				       SEG ": archived at 42/x (12 bytes stored)", &e),
		     WAL_OK, "%s", e.msg);
	cr_assert_eq(wal_status_record(&cfg, SYSID, "walpush", SEG, 6,
				       "/nonexistent: archive directory does not exist", &e),
		     WAL_OK, "%s", e.msg);
	cr_assert_eq(wal_status_read(&cfg, SYSID, "walpush", &st, &e), WAL_OK, "%s", e.msg);
	cr_assert(st.have_success && st.have_failure);
	cr_assert_eq(st.success.exit_code, 0);
	cr_assert_str_eq(st.success.file, SEG);
	cr_assert_str_eq(st.success.message, SEG ": archived at 42/x (12 bytes stored)");
	cr_assert_geq(st.success.at, before);
	cr_assert_leq(st.success.at, time(NULL));
	cr_assert_eq(st.failure.exit_code, 6);
	cr_assert_str_eq(st.failure.message, "/nonexistent: archive directory does not exist");
	/* the file format, as an administrator reads it */
	char path[600], text[1024];
	snprintf(path, sizeof(path), "%s/walpush.failure", status_dir);
	FILE *f = fopen(path, "r");
	cr_assert_not_null(f);
	size_t n = fread(text, 1, sizeof(text) - 1, f);
	fclose(f);
	text[n] = '\0';
	long long at;
	int code, used = 0;
	cr_assert_eq(sscanf(text, "%lld %d " SEG "\n%n", &at, &code, &used), 2, "%s", text);
	cr_assert_str_eq(text + used, "/nonexistent: archive directory does not exist\n");
	struct stat sb;
	cr_assert_eq(stat(path, &sb), 0);
	cr_assert_eq(sb.st_mode & 07777, 0600);
	/* other programs and clusters have records of their own */
	cr_assert_eq(wal_status_read(&cfg, SYSID, "walfetch", &st, &e), WAL_ENOENT);
	cr_assert_eq(wal_status_read(&cfg, SYSID + 1, "walpush", &st, &e), WAL_ENOENT);
}

Test(status, replaced_atomically, .init = setup, .fini = teardown)
{
	wal_error e;
	wal_status st;
	char path[600], tmp[700];
	for (int i = 0; i < 5; i++) {
		char msg[64];
		snprintf(msg, sizeof(msg), "failure %d", i);
		cr_assert_eq(wal_status_record(&cfg, SYSID, "walfetch", SEG, 7, msg, &e), WAL_OK,
			     "%s", e.msg);
	}
	cr_assert_eq(wal_status_read(&cfg, SYSID, "walfetch", &st, &e), WAL_OK);
	cr_assert_not(st.have_success);
	cr_assert_str_eq(st.failure.message, "failure 4");
	cr_assert_eq(st.failure.exit_code, 7);
	/* one file, no temporary left behind */
	cr_assert_eq(count_entries(status_dir), 1);
	/* a link in place of a record is replaced, never written through */
	snprintf(path, sizeof(path), "%s/walfetch.success", status_dir);
	snprintf(tmp, sizeof(tmp), "%s/target", base);
	write_file(tmp, "untouched\n", 0600);
	cr_assert_eq(symlink(tmp, path), 0);
	cr_assert_eq(wal_status_read(&cfg, SYSID, "walfetch", &st, &e), WAL_OK);
	cr_assert_not(st.have_success, "a link is not read as a record");
	cr_assert_eq(wal_status_record(&cfg, SYSID, "walfetch", SEG, 0, "restored", &e), WAL_OK);
	struct stat sb;
	cr_assert_eq(lstat(path, &sb), 0);
	cr_assert(S_ISREG(sb.st_mode));
	FILE *f = fopen(tmp, "r");
	char text[64] = "";
	cr_assert_not_null(fgets(text, sizeof(text), f));
	fclose(f);
	cr_assert_str_eq(text, "untouched\n");
	cr_assert_eq(wal_status_read(&cfg, SYSID, "walfetch", &st, &e), WAL_OK);
	cr_assert(st.have_success && st.have_failure);
}

Test(status, untrusted_spool_ignored, .init = setup, .fini = teardown)
{
	wal_error e;
	wal_status st;
	char cluster[400];
	/* writable by others: nothing written, nothing read */
	cr_assert_eq(chmod(spool, 0777), 0);
	cr_assert_eq(wal_status_record(&cfg, SYSID, "walpush", SEG, 0, "archived", &e), WAL_EPERM);
	cr_assert(strstr(e.msg, "not trusted"), "%s", e.msg);
	cr_assert_eq(count_entries(spool), 0, "nothing is made in an untrusted spool");
	cr_assert_eq(chmod(spool, 0700), 0);
	cr_assert_eq(wal_status_record(&cfg, SYSID, "walpush", SEG, 0, "archived", &e), WAL_OK);
	cr_assert_eq(chmod(spool, 0770), 0);
	cr_assert_eq(wal_status_read(&cfg, SYSID, "walpush", &st, &e), WAL_EPERM);
	cr_assert_not(st.have_success);
	cr_assert_eq(chmod(spool, 0700), 0);
	/* the cluster's or the status directory writable by others: the same */
	snprintf(cluster, sizeof(cluster), "%s/%d", spool, SYSID);
	cr_assert_eq(chmod(status_dir, 0777), 0);
	cr_assert_eq(wal_status_read(&cfg, SYSID, "walpush", &st, &e), WAL_EPERM);
	cr_assert_eq(wal_status_record(&cfg, SYSID, "walpush", SEG, 6, "x", &e), WAL_EPERM);
	cr_assert_eq(chmod(status_dir, 0700), 0);
	cr_assert_eq(chmod(cluster, 0777), 0);
	cr_assert_eq(wal_status_record(&cfg, SYSID, "walpush", SEG, 6, "x", &e), WAL_EPERM);
	cr_assert_eq(chmod(cluster, 0700), 0);
	cr_assert_eq(count_entries(status_dir), 1, "only the success recorded while trusted");
	/* a record writable by others, or not parsing, counts as absent */
	char path[600];
	snprintf(path, sizeof(path), "%s/walpush.failure", status_dir);
	write_file(path, "1700000000 6 " SEG "\nforged\n", 0666);
	cr_assert_eq(wal_status_read(&cfg, SYSID, "walpush", &st, &e), WAL_OK);
	cr_assert_not(st.have_failure);
	write_file(path, "garbage\n", 0600);
	cr_assert_eq(wal_status_read(&cfg, SYSID, "walpush", &st, &e), WAL_OK);
	cr_assert_not(st.have_failure);
	write_file(path, "1700000000 6 " SEG "\nwell made\n", 0600);
	cr_assert_eq(wal_status_read(&cfg, SYSID, "walpush", &st, &e), WAL_OK);
	cr_assert(st.have_failure);
	cr_assert_eq(st.failure.at, 1700000000);
	cr_assert_str_eq(st.failure.message, "well made");
}

Test(status, missing_spool_quietly_nothing, .init = setup, .fini = teardown)
{
	wal_error e;
	wal_status st;
	char missing[400];
	snprintf(missing, sizeof(missing), "%s/missing", base);
	cr_assert_eq(wal_config_set(&cfg, "spool_dir", missing, "test", 1, &e), WAL_OK);
	cr_assert_eq(wal_status_record(&cfg, SYSID, "walpush", SEG, 0, "archived", &e), WAL_ENOENT);
	cr_assert_neq(access(missing, F_OK), 0, "the spool is never made");
	cr_assert_eq(wal_status_read(&cfg, SYSID, "walpush", &st, &e), WAL_ENOENT);
	/* names that are not programs, and an unknown cluster, are refused */
	cr_assert_eq(wal_status_record(&cfg, SYSID, "../x", SEG, 0, "", &e), WAL_EINVAL);
	cr_assert_eq(wal_status_record(&cfg, SYSID, "", SEG, 0, "", &e), WAL_EINVAL);
	cr_assert_eq(wal_status_record(&cfg, 0, "walpush", SEG, 0, "", &e), WAL_EINVAL);
}

/* Whether s is valid UTF-8 without control characters. */
static int clean_utf8(const char *s)
{
	const unsigned char *p = (const unsigned char *)s;
	while (*p) {
		int follow = *p < 0x80		   ? 0
			     : (*p & 0xE0) == 0xC0 ? 1
			     : (*p & 0xF0) == 0xE0 ? 2
			     : (*p & 0xF8) == 0xF0 ? 3
						   : -1;
		if (follow < 0 || *p < 0x20 || *p == 0x7f)
			return 0;
		p++;
		for (int i = 0; i < follow; i++, p++)
			if ((*p & 0xC0) != 0x80)
				return 0;
	}
	return 1;
}

Test(status, long_message_truncated_safely, .init = setup, .fini = teardown)
{
	wal_error e;
	wal_status st;
	char msg[2000] = "x", file[200];
	/* one ASCII byte, then two-byte characters: a cut at 511 bytes would split one */
	for (int i = 0; i < 600; i++)
		strcat(msg, "\xc3\xa9");
	strcat(msg, "\nsecond line");
	memset(file, 'A', sizeof(file) - 1);
	file[sizeof(file) - 1] = '\0';
	file[3] = ' ';
	file[5] = '\n';
	cr_assert_eq(wal_status_record(&cfg, SYSID, "walfetch", file, 126, msg, &e), WAL_OK, "%s",
		     e.msg);
	cr_assert_eq(wal_status_read(&cfg, SYSID, "walfetch", &st, &e), WAL_OK, "%s", e.msg);
	cr_assert(st.have_failure);
	cr_assert_eq(st.failure.exit_code, 126);
	size_t len = strlen(st.failure.message);
	cr_assert_leq(len, sizeof(st.failure.message) - 1);
	cr_assert_geq(len, sizeof(st.failure.message) - 3, "cut near the end, not emptied (%zu)",
		      len);
	cr_assert(clean_utf8(st.failure.message), "no character cut in half");
	cr_assert_eq(strncmp(st.failure.message, msg, len), 0);
	/* the file name stays one token on one line, cut to fit */
	cr_assert_eq(strlen(st.failure.file), sizeof(st.failure.file) - 1);
	cr_assert_eq(strchr(st.failure.file, ' '), NULL);
	cr_assert_eq(strchr(st.failure.file, '\n'), NULL);
	/* a short message with a line break: one line */
	cr_assert_eq(wal_status_record(&cfg, SYSID, "walfetch", SEG, 6, "first\nsecond", &e),
		     WAL_OK);
	cr_assert_eq(wal_status_read(&cfg, SYSID, "walfetch", &st, &e), WAL_OK);
	cr_assert_str_eq(st.failure.message, "first second");
	/* no file: read back as empty */
	cr_assert_eq(wal_status_record(&cfg, SYSID, "walfetch", NULL, 0, "ok", &e), WAL_OK);
	cr_assert_eq(wal_status_read(&cfg, SYSID, "walfetch", &st, &e), WAL_OK);
	cr_assert_str_eq(st.success.file, "");
}
