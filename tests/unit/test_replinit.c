/*
 * Unit tests of replinit's pure parts: the configuration it generates for
 * PostgreSQL 11 through 18 (setting names, files, never both keep
 * settings), pg_hba lines and equivalence, conninfo without a password,
 * .pgpass and postgresql.conf quoting, names refused or quoted for
 * pg_hba.conf and libpq, private atomic files with unique backups, and
 * connection error messages.
 */
#include <criterion/criterion.h>
#include <dirent.h>
#include <errno.h>
#include <libpq-fe.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "replinit/replinit.h"
#include "sys/fileio.h"
#include "replinit/scram.h"
#include "replinit/util.h"

static const int versions[] = { 110022, 120022, 130023, 140023, 150020, 160014, 170010, 180004 };
#define NVERSIONS (int)(sizeof versions / sizeof versions[0])

/* The value generated for name, or NULL. */
static const char *find(const rpl_setting *set, int n, const char *name)
{
	for (int i = 0; i < n; i++)
		if (strcmp(set[i].name, name) == 0)
			return set[i].value;
	return NULL;
}

/* A primary straight from initdb of that version, as pg_settings shows it. */
static rpl_primary_state initdb_state(int version)
{
	rpl_primary_state st = {
		.version_num = version,
		.seg_mb = 16,
		.wal_level = "replica",
		.archive_mode = "off",
		.archive_command = version >= 150000 ? "" : "(disabled)",
		.max_wal_senders = "10",
		.keep = "0",
		.hot_standby = "on",
		.listen_addresses = "localhost",
		.senders_in_use = 0,
	};
	return st;
}

Test(replinit_versions, keep_setting_name_per_version)
{
	for (int i = 0; i < NVERSIONS; i++) {
		int v = versions[i];
		cr_expect_str_eq(rpl_keep_setting(v),
				 v < 130000 ? "wal_keep_segments" : "wal_keep_size", "version %d",
				 v);
	}
}

Test(replinit_versions, primary_settings_never_both_keep_settings)
{
	for (int i = 0; i < NVERSIONS; i++) {
		int v = versions[i];
		rpl_primary_state st = initdb_state(v);
		rpl_setting set[RPL_MAX_SETTINGS];
		int n = rpl_primary_settings(&st, "walpush %p %f", 0, NULL, set);
		const char *segments = find(set, n, "wal_keep_segments");
		const char *size = find(set, n, "wal_keep_size");

		cr_expect((segments == NULL) != (size == NULL),
			  "version %d: exactly one keep setting", v);
		if (v < 130000)
			cr_expect_str_eq(segments, "64", "version %d: 1 GB of 16 MB segments", v);
		else
			cr_expect_str_eq(size, "1GB", "version %d", v);
		cr_expect_str_eq(find(set, n, "archive_mode"), "on", "version %d", v);
		cr_expect_str_eq(find(set, n, "archive_command"), "walpush %p %f", "version %d", v);
		/* initdb defaults already stream: nothing else to change */
		cr_expect_null(find(set, n, "wal_level"), "version %d", v);
		cr_expect_null(find(set, n, "max_wal_senders"), "version %d", v);
		cr_expect_null(find(set, n, "hot_standby"), "version %d", v);
		cr_expect_null(find(set, n, "listen_addresses"), "version %d", v);
		cr_expect_eq(n, 3, "version %d: %d settings", v, n);
	}
}

Test(replinit_versions, keep_segments_follow_segment_size)
{
	rpl_primary_state st = initdb_state(110022);
	rpl_setting set[RPL_MAX_SETTINGS];

	st.seg_mb = 64;
	int n = rpl_primary_settings(&st, "walpush %p %f", 0, NULL, set);
	cr_expect_str_eq(find(set, n, "wal_keep_segments"), "16");
}

Test(replinit_settings, values_are_only_raised)
{
	rpl_primary_state st = initdb_state(150020);
	rpl_setting set[RPL_MAX_SETTINGS];

	st.wal_level = "logical";
	st.archive_mode = "always";
	st.max_wal_senders = "20";
	st.keep = "2GB";
	int n = rpl_primary_settings(&st, "walpush %p %f", 0, NULL, set);
	cr_expect_null(find(set, n, "wal_level"), "logical streams too");
	cr_expect_null(find(set, n, "archive_mode"), "always archives too");
	cr_expect_null(find(set, n, "max_wal_senders"));
	cr_expect_null(find(set, n, "wal_keep_size"), "2GB is more than 1GB");

	st.keep = "512MB";
	st.wal_level = "minimal";
	st.max_wal_senders = "0";
	st.senders_in_use = 9;
	n = rpl_primary_settings(&st, "walpush %p %f", 0, NULL, set);
	cr_expect_str_eq(find(set, n, "wal_keep_size"), "1GB");
	cr_expect_str_eq(find(set, n, "wal_level"), "replica");
	cr_expect_str_eq(find(set, n, "max_wal_senders"), "12",
			 "9 in use + base backup (2) + standby");
}

Test(replinit_settings, existing_walpush_kept_unless_explicit)
{
	rpl_primary_state st = initdb_state(150020);
	rpl_setting set[RPL_MAX_SETTINGS];

	st.archive_command = "/usr/bin/walpush -c /etc/x.conf %p %f";
	int n = rpl_primary_settings(&st, "walpush %p %f", 0, NULL, set);
	cr_expect_null(find(set, n, "archive_command"));
	n = rpl_primary_settings(&st, "walpush %p %f", 1, NULL, set);
	cr_expect_str_eq(find(set, n, "archive_command"), "walpush %p %f");
	st.archive_command = "cp %p /mnt/archive/%f";
	n = rpl_primary_settings(&st, "walpush %p %f", 0, "*", set);
	cr_expect_str_eq(find(set, n, "archive_command"), "walpush %p %f", "cp is replaced");
	cr_expect_str_eq(find(set, n, "listen_addresses"), "*");
}

Test(replinit_settings, size_units)
{
	cr_expect_eq(rpl_size_mb("1024"), 1024);
	cr_expect_eq(rpl_size_mb("1GB"), 1024);
	cr_expect_eq(rpl_size_mb("512MB"), 512);
	cr_expect_eq(rpl_size_mb("2048kB"), 2);
	cr_expect_eq(rpl_size_mb("1TB"), 1024 * 1024);
	cr_expect_eq(rpl_size_mb("lots"), -1);
	cr_expect_eq(rpl_size_mb("5 XB"), -1);
}

Test(replinit_versions, recovery_configuration_per_version)
{
	rpl_recovery r = { "host=10.0.0.1 port=5432 user=replicator passfile=/d/replinit.pgpass",
			   "walfetch %f %p", "standby1" };

	for (int i = 0; i < NVERSIONS; i++) {
		int v = versions[i];
		rpl_setting set[RPL_MAX_SETTINGS];
		int n = rpl_recovery_settings(v, &r, set);

		if (v < 120000) {
			cr_expect(rpl_uses_recovery_conf(v), "version %d", v);
			cr_expect_str_eq(rpl_recovery_file(v), "recovery.conf");
			cr_expect_str_eq(find(set, n, "standby_mode"), "on", "version %d", v);
		} else {
			cr_expect(!rpl_uses_recovery_conf(v), "version %d", v);
			cr_expect_str_eq(rpl_recovery_file(v), "postgresql.auto.conf");
			cr_expect_null(find(set, n, "standby_mode"),
				       "version %d: 12+ refuses standby_mode", v);
		}
		cr_expect_str_eq(find(set, n, "primary_conninfo"), r.conninfo);
		cr_expect_str_eq(find(set, n, "restore_command"), "walfetch %f %p");
		cr_expect_str_eq(find(set, n, "recovery_target_timeline"), "latest");
		cr_expect_str_eq(find(set, n, "primary_slot_name"), "standby1");
		cr_expect_str_eq(rpl_auth_method(v), "scram-sha-256");
	}
	r.slot = NULL;
	rpl_setting set[RPL_MAX_SETTINGS];
	int n = rpl_recovery_settings(150020, &r, set);
	cr_expect_null(find(set, n, "primary_slot_name"));
}

Test(replinit_conninfo, no_password_and_quoted_values)
{
	char buf[512];

	rpl_conninfo("10.0.0.1", 5433, "replicator", "/var/lib/postgresql/15/main/replinit.pgpass",
		     "db2", buf, sizeof buf);
	cr_expect_str_eq(
		buf, "host=10.0.0.1 port=5433 user=replicator "
		     "passfile=/var/lib/postgresql/15/main/replinit.pgpass application_name=db2");
	cr_expect_null(strstr(buf, "password="));
	rpl_conninfo("h", 5432, "rep user", "/a dir/it's", NULL, buf, sizeof buf);
	cr_expect_str_eq(buf, "host=h port=5432 user='rep user' passfile='/a dir/it\\'s'");
}

Test(replinit_conninfo, pgpass_escapes_colons_and_backslashes)
{
	char buf[256];

	rpl_pgpass_line("::1", 5432, "replicator", "a:b\\c", buf, sizeof buf);
	cr_expect_str_eq(buf, "\\:\\:1:5432:replication:replicator:a\\:b\\\\c");
}

Test(replinit_conf, guc_quoting)
{
	char buf[128];

	rpl_guc_quote("walfetch %f %p", buf, sizeof buf);
	cr_expect_str_eq(buf, "'walfetch %f %p'");
	rpl_guc_quote("it's a\\b", buf, sizeof buf);
	cr_expect_str_eq(buf, "'it''s a\\\\b'");
}

Test(replinit_conf, merge_replaces_and_round_trips)
{
	const char *text = "# Do not edit this file manually!\n"
			   "archive_mode = 'on'\n"
			   "restore_command = 'cp /old/%f %p'\n"
			   "Primary_Conninfo = 'host=old password=secret'\n";
	rpl_setting set[2] = { { "primary_conninfo", "host=new user=it's" },
			       { "restore_command", "walfetch %f %p" } };
	char *out = rpl_conf_merge(text, set, 2);
	char value[256];

	cr_assert_not_null(out);
	cr_expect_null(strstr(out, "password=secret"), "the old conninfo line is gone");
	cr_expect_null(strstr(out, "cp /old"));
	cr_expect_not_null(strstr(out, "archive_mode = 'on'\n"));
	cr_expect_not_null(strstr(out, "# Do not edit this file manually!\n"));
	cr_expect(rpl_conf_get(out, "primary_conninfo", value, sizeof value));
	cr_expect_str_eq(value, "host=new user=it's");
	cr_expect(rpl_conf_get(out, "restore_command", value, sizeof value));
	cr_expect_str_eq(value, "walfetch %f %p");
	cr_expect(!rpl_conf_get(out, "primary_slot_name", value, sizeof value));
	free(out);
}

Test(replinit_hba, line_and_network)
{
	rpl_net net;
	char buf[256];

	cr_assert_eq(rpl_net_parse("10.1.2.3/24", &net, NULL), WAL_OK);
	rpl_net_format(&net, buf, sizeof buf);
	cr_expect_str_eq(buf, "10.1.2.0/24", "host bits are cleared");
	cr_assert_eq(rpl_net_parse("192.168.1.101", &net, NULL), WAL_OK);
	rpl_hba_line("replicator", &net, "scram-sha-256", buf, sizeof buf);
	cr_expect_str_eq(buf, "host    replication     replicator 192.168.1.101/32 scram-sha-256");
	cr_assert_eq(rpl_net_parse("fd00::5/64", &net, NULL), WAL_OK);
	rpl_net_format(&net, buf, sizeof buf);
	cr_expect_str_eq(buf, "fd00::/64");
	cr_expect_eq(rpl_net_parse("standby.example.com", &net, NULL), WAL_EINVAL);
	cr_expect_eq(rpl_net_parse("10.0.0.1/33", &net, NULL), WAL_EINVAL);
}

static rpl_hba_match hba_find(const char *text, const char *user, const char *addr, int ssl)
{
	rpl_net net;
	rpl_hba_match m;

	cr_assert_eq(rpl_net_parse(addr, &net, NULL), WAL_OK);
	rpl_hba_find(text, user, &net, ssl, &m);
	return m;
}

Test(replinit_hba, equivalent_lines)
{
	const char *debian =
		"# comment\n"
		"local   all             postgres                                peer\n"
		"host    all             all             0.0.0.0/0               scram-sha-256\n"
		"local   replication     all                                     peer\n"
		"host    replication     all             127.0.0.1/32            scram-sha-256\n";
	rpl_hba_match m = hba_find(debian, "replicator", "127.0.0.1", 0);
	cr_expect_eq(m.line, 5, "'all' users from 127.0.0.1 already match");
	cr_expect(m.usable);
	cr_expect_str_eq(m.method, "scram-sha-256");

	m = hba_find(debian, "replicator", "10.0.0.2", 0);
	cr_expect_eq(m.line, 0, "database 'all' does not cover replication connections");

	m = hba_find("host replication replicator 10.0.0.0/8 md5\n", "replicator", "10.0.0.2/32",
		     0);
	cr_expect_eq(m.line, 1, "a wider network covers the standby");
	cr_expect(m.usable);
	m = hba_find("host replication replicator 10.0.0.0/8 md5\n", "replicator", "11.0.0.0/7", 0);
	cr_expect_eq(m.line, 0, "a narrower network does not");
	m = hba_find("host replication,\"other\" \"replicator\" 10.0.0.2 255.255.255.255 trust\n",
		     "replicator", "10.0.0.2", 0);
	cr_expect_eq(m.line, 1, "address with netmask, quoted user, database list");
	m = hba_find("host \"replication\" replicator 10.0.0.2/32 md5\n", "replicator", "10.0.0.2",
		     0);
	cr_expect_eq(m.line, 0, "a quoted \"replication\" is a database name");
	m = hba_find("host replication replicator2 10.0.0.2/32 md5\n", "replicator", "10.0.0.2", 0);
	cr_expect_eq(m.line, 0, "another role");
	m = hba_find("host replication all ::1/128 md5\n", "replicator", "127.0.0.1", 0);
	cr_expect_eq(m.line, 0, "another family");
}

Test(replinit_hba, ssl_variants_and_reject)
{
	const char *text = "hostssl replication all 10.0.0.0/24 scram-sha-256\n"
			   "hostnossl replication all 10.0.0.0/24 reject\n";
	rpl_hba_match m = hba_find(text, "replicator", "10.0.0.7", 1);
	cr_expect_eq(m.line, 1, "with ssl on, hostssl matches first");
	m = hba_find(text, "replicator", "10.0.0.7", 0);
	cr_expect_eq(m.line, 2, "with ssl off, hostnossl matches");
	cr_expect(!m.usable, "reject does not let the standby in");
	cr_expect_str_eq(m.method, "reject");
}

Test(replinit_hba, insert_before_or_append)
{
	const char *text = "a\nb\nc";
	char *out = rpl_hba_insert(text, "NEW", 2);

	cr_assert_not_null(out);
	cr_expect_str_eq(out, "a\nNEW\nb\nc");
	free(out);
	out = rpl_hba_insert(text, "NEW", 0);
	cr_expect_str_eq(out, "a\nb\nc\n# added by replinit\nNEW\n");
	free(out);
}

Test(replinit_misc, host_and_port)
{
	char host[64];
	int port;

	cr_expect_eq(rpl_hostport_parse("db1.example.com", host, sizeof host, &port, NULL), WAL_OK);
	cr_expect_str_eq(host, "db1.example.com");
	cr_expect_eq(port, 5432);
	cr_expect_eq(rpl_hostport_parse("10.0.0.1:5433", host, sizeof host, &port, NULL), WAL_OK);
	cr_expect_str_eq(host, "10.0.0.1");
	cr_expect_eq(port, 5433);
	cr_expect_eq(rpl_hostport_parse("[fd00::1]:6000", host, sizeof host, &port, NULL), WAL_OK);
	cr_expect_str_eq(host, "fd00::1");
	cr_expect_eq(port, 6000);
	cr_expect_eq(rpl_hostport_parse("fd00::1", host, sizeof host, &port, NULL), WAL_OK);
	cr_expect_str_eq(host, "fd00::1");
	cr_expect_eq(rpl_hostport_parse("h:99999", host, sizeof host, &port, NULL), WAL_EINVAL);
}

Test(replinit_misc, connection_errors_say_what_to_fix)
{
	char buf[1024];

	cr_expect_eq(rpl_classify_conn_error(
			     "connection to server at \"10.0.0.1\", port 5432 failed: "
			     "FATAL:  password authentication failed for user \"replicator\"\n",
			     buf, sizeof buf),
		     WAL_EAUTH);
	cr_expect_str_eq(
		buf, "password authentication failed for user \"replicator\"; check the password "
		     "file against the password replinit primary set for the role");
	cr_expect_eq(rpl_classify_conn_error(
			     "FATAL:  no pg_hba.conf entry for replication connection from "
			     "host \"10.0.0.2\", user \"replicator\", no encryption\n",
			     buf, sizeof buf),
		     WAL_EPERM);
	cr_expect_not_null(strstr(buf, "; run replinit primary --standby ADDRESS on the primary"));
	cr_expect_eq(
		rpl_classify_conn_error(
			"pg_basebackup: error: connection to server at \"h\", port 1 "
			"failed: FATAL:  number of requested standby connections exceeds "
			"max_wal_senders (currently 1)\npg_basebackup: removing data directory\n",
			buf, sizeof buf),
		WAL_ECONFIG);
	cr_expect_str_eq(
		buf,
		"number of requested standby connections exceeds max_wal_senders (currently 1); "
		"raise max_wal_senders on the primary (replinit primary does) and restart it");
	cr_expect_eq(rpl_classify_conn_error(
			     "connection to server at \"10.0.0.1\", port 5432 failed: "
			     "Connection refused\n\tIs the server running on that host?\n",
			     buf, sizeof buf),
		     WAL_ENET);
	cr_expect_null(strchr(buf, '\n'), "one line");
}

Test(replinit_misc, scram_verifier_check)
{
	/* made with Python's hashlib.pbkdf2_hmac for salt "0123456789abcdef", 4096 iterations */
	const char *stored = "SCRAM-SHA-256$4096:MDEyMzQ1Njc4OWFiY2RlZg==$"
			     "wGZq2orSMoS4I0HgVdenE8ZGpjGGV2xWgAOgJy3CRKM=:"
			     "N1jjM5Y2/5i9Z0K4WdL22own3GVivPzoDLQF8VQSlFo=";
	unsigned char digest[32];

	cr_expect(rpl_scram_matches(stored, "correct horse battery"));
	cr_expect(!rpl_scram_matches(stored, "correct horse batterY"));
	cr_expect(!rpl_scram_matches("md5abcdef", "correct horse battery"));
	cr_expect(!rpl_scram_matches("SCRAM-SHA-256$4096:xx$yy", "x"));
	rpl_sha256("abc", 3, digest);
	cr_expect_eq(digest[0], 0xba);
	cr_expect_eq(digest[31], 0xad);
}

/* ---- names written into pg_hba.conf, configuration files and conninfo ---- */

Test(replinit_names, control_characters_refused_with_option_and_character)
{
	static const struct {
		const char *value;
		const char *shown;
	} bad[] = {
		{ "db2\vport=6699", "\\v" }, { "a\nb", "\\n" }, { "a\rb", "\\r" },
		{ "a\fb", "\\f" },	     { "a\tb", "\\t" }, { "a\033b", "0x1b" },
		{ "a\177", "0x7f" },	     { "\bx", "\\b" },
	};
	wal_error e;

	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		char want[64];
		cr_expect_eq(rpl_check_text("--application-name", bad[i].value, &e), WAL_EINVAL,
			     "case %zu", i);
		cr_expect_eq(strncmp(e.msg, "--application-name '", 20), 0, "names the option: %s",
			     e.msg);
		snprintf(want, sizeof want, "control character %s at byte", bad[i].shown);
		cr_expect_not_null(strstr(e.msg, want), "names the character: %s", e.msg);
		cr_expect_null(strpbrk(e.msg, "\n\r\v\f\t"), "one line: %s", e.msg);
	}
	cr_expect_eq(rpl_check_text("--user", "r 0.0.0.0/0 trust\nhost all all 0.0.0.0/0 trust #",
				    &e),
		     WAL_EINVAL);
	cr_expect_str_eq(
		e.msg, "--user 'r 0.0.0.0/0 trust\\nhost all all 0.0.0.0/0 trust #': control "
		       "character \\n at byte 18; pg_hba.conf, configuration files and connection "
		       "strings cannot carry it");
	cr_expect_eq(rpl_check_text("--passfile", "/var/lib/postgresql/15/main/replinit.pgpass",
				    &e),
		     WAL_OK);
	cr_expect_eq(rpl_check_text("--user", "rép user \"x\", 'y' \\z #", &e), WAL_OK,
		     "quotes, backslash, blanks and UTF-8 can be quoted");
	cr_expect_eq(rpl_check_text("--application-name", "", &e), WAL_OK);
}

Test(replinit_names, roles_pg_hba_cannot_express)
{
	char long_name[80];
	wal_error e;

	memset(long_name, 'r', sizeof long_name - 1);
	long_name[sizeof long_name - 1] = '\0';
	cr_expect_eq(rpl_check_role("--user", "", &e), WAL_EINVAL);
	cr_expect_str_eq(e.msg, "--user: empty; give a role name");
	cr_expect_eq(rpl_check_role("--user", long_name, &e), WAL_EINVAL);
	long_name[RPL_NAME_MAX] = '\0';
	cr_expect_eq(rpl_check_role("--user", long_name, &e), WAL_OK, "63 bytes fit");
	cr_expect_eq(rpl_check_role("--user", "/.*", &e), WAL_EINVAL,
		     "a regular expression from 16 on");
	cr_expect_not_null(strstr(e.msg, "starts with '/'"));
	cr_expect_eq(rpl_check_role("--user", "a\nb", &e), WAL_EINVAL);
	cr_expect_eq(rpl_check_role("--user", "+members", &e), WAL_OK, "quoted, + is literal");
	cr_expect_eq(rpl_check_role("--user", "all", &e), WAL_OK, "quoted, all is literal");
}

Test(replinit_names, pg_hba_tokens)
{
	static const struct {
		const char *name;
		const char *token;
	} cases[] = {
		{ "replicator", "replicator" },
		{ "repl_2.x-y", "repl_2.x-y" },
		{ "rep user", "\"rep user\"" },
		{ "a\"b", "\"a\"\"b\"" },
		{ "a,b", "\"a,b\"" },
		{ "x#y", "\"x#y\"" },
		{ "all", "\"all\"" },
		{ "samerole", "\"samerole\"" },
		{ "replication", "\"replication\"" },
		{ "+group", "\"+group\"" },
		{ "@file", "\"@file\"" },
		{ "back\\slash", "\"back\\slash\"" },
		{ "it's", "\"it's\"" },
		{ "rép", "\"rép\"" },
		{ "", "\"\"" },
	};
	char buf[160];

	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		rpl_hba_quote(cases[i].name, buf, sizeof buf);
		cr_expect_str_eq(buf, cases[i].token, "%s", cases[i].name);
	}
}

Test(replinit_names, pg_hba_line_round_trips)
{
	static const char *const names[] = { "replicator", "rep user", "odd \"user\", #x",
					     "all",	   "+g",       "@f",
					     "a\\b",	   "it's" };
	rpl_net net;
	char line[512];

	cr_assert_eq(rpl_net_parse("10.0.0.2", &net, NULL), WAL_OK);
	for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
		rpl_hba_line(names[i], &net, "scram-sha-256", line, sizeof line);
		cr_expect_null(strchr(line, '\n'));
		rpl_hba_match m;
		rpl_hba_find(line, names[i], &net, 0, &m);
		cr_expect_eq(m.line, 1, "%s: the line written matches its role: %s", names[i],
			     line);
		rpl_hba_find(line, "someone_else", &net, 0, &m);
		cr_expect_eq(m.line, 0, "%s: and no other role: %s", names[i], line);
	}
	rpl_hba_line("rep user", &net, "scram-sha-256", line, sizeof line);
	cr_expect_str_eq(line, "host    replication     \"rep user\" 10.0.0.2/32 scram-sha-256");
}

/* What libpq reads back for key in conninfo, or NULL; *count gets the number of options set. */
static char *conninfo_value(const char *conninfo, const char *key, int *count)
{
	char *err = NULL, *value = NULL;
	PQconninfoOption *opts = PQconninfoParse(conninfo, &err);

	*count = 0;
	cr_assert_not_null(opts, "libpq refuses '%s': %s", conninfo, err ? err : "?");
	for (PQconninfoOption *o = opts; o->keyword; o++) {
		if (o->val == NULL)
			continue;
		(*count)++;
		if (strcmp(o->keyword, key) == 0)
			value = strdup(o->val);
	}
	PQconninfoFree(opts);
	return value;
}

Test(replinit_conninfo, every_value_reads_back_as_given)
{
	static const char *const values[] = {
		"db2",
		"db2\vport=6699",
		"db2\fport=6699",
		"db2\rport=6699",
		"db2\nport=6699",
		"db2\tport=6699",
		"db 2 port=6699",
		"it's",
		"back\\slash",
		"'",
		"\\",
		"",
		"a=b",
		"rép",
		"x\xa0port=6699",
		"/a dir/it's \\ 'x'",
	};
	char buf[1024];

	for (size_t i = 0; i < sizeof values / sizeof values[0]; i++) {
		int count;
		rpl_conninfo("10.0.0.1", 5432, values[i], values[i], values[i], buf, sizeof buf);
		char *app = conninfo_value(buf, "application_name", &count);
		char *user = conninfo_value(buf, "user", &count);
		char *port = conninfo_value(buf, "port", &count);
		cr_expect_str_eq(port, "5432", "case %zu: %s", i, buf);
		cr_expect_eq(count, values[i][0] ? 5 : 4, "case %zu: no extra keyword in %s", i,
			     buf);
		if (values[i][0]) {
			cr_expect_str_eq(app, values[i], "case %zu: %s", i, buf);
		}
		cr_expect_str_eq(user, values[i], "case %zu: %s", i, buf);
		free(app);
		free(user);
		free(port);
	}
	rpl_conninfo("h", 5432, "replicator", "", "db2\vport=6699", buf, sizeof buf);
	cr_expect_str_eq(
		buf,
		"host=h port=5432 user=replicator passfile='' application_name='db2\vport=6699'");
}

Test(replinit_conninfo, commands_quote_paths_for_sh_and_percent)
{
	char buf[1024];
	const char *tail;

	rpl_default_command("walfetch", "%f %p", "/etc/wal archive/it's 100%.conf", buf,
			    sizeof buf);
	tail = strstr(buf, " -c ");
	cr_assert_not_null(tail, "%s", buf);
	cr_expect_str_eq(tail, " -c '/etc/wal archive/it'\\''s 100%%.conf' %f %p");
	rpl_default_command("walpush", "%p %f", "/etc/walarchive.conf", buf, sizeof buf);
	tail = strstr(buf, " -c ");
	cr_expect_str_eq(tail, " -c /etc/walarchive.conf %p %f");
}

/* ---- private atomic files and their backups ---- */

static char *make_dir(void)
{
	char *dir = strdup("/tmp/test_replinit.XXXXXX");
	cr_assert_not_null(mkdtemp(dir));
	return dir;
}

static int count_entries(const char *dir)
{
	DIR *d = opendir(dir);
	struct dirent *de;
	int n = 0;

	while (d && (de = readdir(d)) != NULL)
		if (strcmp(de->d_name, ".") != 0 && strcmp(de->d_name, ".."))
			n++;
	if (d)
		closedir(d);
	return n;
}

static char *slurp(const char *path)
{
	char *text = NULL;
	wal_error e;
	cr_assert_eq(rpl_read_file(path, &text, &e), WAL_OK, "%s", e.msg);
	return text;
}

Test(replinit_files, private_file_is_0600_whatever_umask_and_old_mode)
{
	char *dir = make_dir(), path[512];
	mode_t old_umask = umask(0);
	struct stat st;
	wal_error e;
	FILE *f;

	snprintf(path, sizeof path, "%s/replinit.pgpass", dir);
	cr_expect_eq(rpl_write_atomic(path, "h:1:replication:r:pw\n", 0600, 0, NULL, NULL, 0, &e),
		     WAL_OK);
	cr_assert_eq(stat(path, &st), 0);
	cr_expect_eq(st.st_mode & 07777, 0600, "umask 0 does not widen it: %o", st.st_mode & 07777);
	/* an older file that others could read: the new one is still private */
	f = fopen(path, "w");
	fputs("old\n", f);
	fclose(f);
	chmod(path, 0644);
	cr_expect_eq(rpl_write_atomic(path, "new\n", 0600, 0, NULL, NULL, 0, &e), WAL_OK);
	cr_assert_eq(stat(path, &st), 0);
	cr_expect_eq(st.st_mode & 07777, 0600);
	char *text = slurp(path);
	cr_expect_str_eq(text, "new\n");
	free(text);
	cr_expect_eq(count_entries(dir), 1, "no temporary file left");
	umask(old_umask);
	unlink(path);
	rmdir(dir);
	free(dir);
}

Test(replinit_files, kept_mode_and_unique_backups)
{
	char *dir = make_dir(), path[512], base[600], first[700], second[700];
	struct stat st;
	wal_error e;
	FILE *f;

	snprintf(path, sizeof path, "%s/pg_hba.conf", dir);
	snprintf(base, sizeof base, "%s.replinit-20250101-120000", path);
	f = fopen(path, "w");
	fputs("one\n", f);
	fclose(f);
	chmod(path, 0640);
	/* two runs in the same second ask for the same backup name */
	cr_assert_eq(rpl_write_atomic(path, "two\n", 0600, 1, base, first, sizeof first, &e),
		     WAL_OK, "%s", e.msg);
	cr_assert_eq(rpl_write_atomic(path, "three\n", 0600, 1, base, second, sizeof second, &e),
		     WAL_OK, "%s", e.msg);
	cr_expect_str_eq(first, base);
	cr_expect_neq(strcmp(first, second), 0, "a second name: %s", second);
	char *text = slurp(first);
	cr_expect_str_eq(text, "one\n");
	free(text);
	text = slurp(second);
	cr_expect_str_eq(text, "two\n");
	free(text);
	text = slurp(path);
	cr_expect_str_eq(text, "three\n");
	free(text);
	cr_assert_eq(stat(path, &st), 0);
	cr_expect_eq(st.st_mode & 07777, 0640, "the existing mode is kept");
	cr_expect_eq(count_entries(dir), 3, "file and two backups, no temporary file");
	unlink(first);
	unlink(second);
	unlink(path);
	rmdir(dir);
	free(dir);
}

Test(replinit_files, failed_write_leaves_file_and_no_backup)
{
	char *dir = make_dir(), path[512], base[600], backup[700];
	wal_error e;
	FILE *f;

	snprintf(path, sizeof path, "%s/pg_hba.conf", dir);
	snprintf(base, sizeof base, "%s.replinit-x", path);
	f = fopen(path, "w");
	fputs("one\n", f);
	fclose(f);
	/* the rename into place fails */
	wal_sys_fault_arm(1, EIO, WAL_SYS_RENAME);
	cr_expect_neq(rpl_write_atomic(path, "two\n", 0600, 1, base, backup, sizeof backup, &e),
		      WAL_OK);
	wal_sys_fault_arm(0, 0, WAL_SYS_COUNT);
	char *text = slurp(path);
	cr_expect_str_eq(text, "one\n");
	free(text);
	cr_expect_eq(count_entries(dir), 1, "no backup, no temporary file");
	unlink(path);
	rmdir(dir);
	free(dir);
}
