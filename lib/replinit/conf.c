/*
 * replinit's pure parts, without I/O: which settings and files each
 * PostgreSQL version needs, checks and quoting for postgresql.conf,
 * conninfo and .pgpass, and the classification of connection errors.
 * pg_hba.conf is in hba.c.
 */
#include <arpa/inet.h>
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>

#include "replinit.h"

const char *rpl_keep_setting(int version_num)
{
	return version_num >= 130000 ? "wal_keep_size" : "wal_keep_segments";
}

long rpl_keep_value(int version_num, int seg_mb)
{
	if (version_num >= 130000)
		return RPL_KEEP_MB;
	if (seg_mb <= 0)
		seg_mb = 16;
	return (RPL_KEEP_MB + seg_mb - 1) / seg_mb;
}

int rpl_uses_recovery_conf(int version_num)
{
	return version_num < 120000;
}

const char *rpl_recovery_file(int version_num)
{
	return rpl_uses_recovery_conf(version_num) ? "recovery.conf" : "postgresql.auto.conf";
}

const char *rpl_auth_method(int version_num)
{
	return version_num >= 100000 ? "scram-sha-256" : "md5";
}

long rpl_size_mb(const char *text)
{
	char *end;
	long num;

	if (text == NULL || !isdigit((unsigned char)*text))
		return -1;
	num = strtol(text, &end, 10);
	while (*end == ' ')
		end++;
	if (*end == '\0' || strcmp(end, "MB") == 0)
		return num;
	if (strcmp(end, "kB") == 0)
		return num / 1024;
	if (strcmp(end, "GB") == 0)
		return num * 1024;
	if (strcmp(end, "TB") == 0)
		return num * 1024 * 1024;
	return -1;
}

static void set_one(rpl_setting *out, int *count, const char *name, const char *value)
{
	if (*count >= RPL_MAX_SETTINGS)
		return;
	snprintf(out[*count].name, sizeof out[*count].name, "%s", name);
	snprintf(out[*count].value, sizeof out[*count].value, "%s", value);
	(*count)++;
}

static int is_on(const char *value)
{
	return value != NULL && (strcasecmp(value, "on") == 0 || strcasecmp(value, "true") == 0 ||
				 strcasecmp(value, "yes") == 0 || strcmp(value, "1") == 0);
}

int rpl_primary_settings(const rpl_primary_state *st, const char *archive_command,
			 int archive_explicit, const char *listen_addresses, rpl_setting *out)
{
	int count = 0;
	char num[32];

	/* replica, or the aliases archive/hot_standby, or logical: all stream */
	if (st->wal_level == NULL || strcasecmp(st->wal_level, "minimal") == 0)
		set_one(out, &count, "wal_level", "replica");
	if (st->archive_mode == NULL ||
	    !(is_on(st->archive_mode) || strcasecmp(st->archive_mode, "always") == 0))
		set_one(out, &count, "archive_mode", "on");
	if (st->archive_command == NULL || strcmp(st->archive_command, archive_command) != 0) {
		int keep = !archive_explicit && st->archive_command != NULL &&
			   strstr(st->archive_command, "walpush") != NULL;
		if (!keep)
			set_one(out, &count, "archive_command", archive_command);
	}
	{
		/* pg_basebackup -X stream takes two senders, the standby one more */
		int have = st->max_wal_senders ? atoi(st->max_wal_senders) : RPL_MIN_WAL_SENDERS;
		int need = st->senders_in_use + 3;
		if (have < need) {
			snprintf(num, sizeof num, "%d",
				 need > RPL_MIN_WAL_SENDERS ? need : RPL_MIN_WAL_SENDERS);
			set_one(out, &count, "max_wal_senders", num);
		}
	}
	if (st->version_num >= 130000) {
		long have = st->keep ? rpl_size_mb(st->keep) : 0;
		if (have < RPL_KEEP_MB)
			set_one(out, &count, "wal_keep_size", "1GB");
	} else {
		long have = st->keep ? atol(st->keep) : 0;
		long need = rpl_keep_value(st->version_num, st->seg_mb);
		if (have < need) {
			snprintf(num, sizeof num, "%ld", need);
			set_one(out, &count, "wal_keep_segments", num);
		}
	}
	if (st->hot_standby != NULL && !is_on(st->hot_standby))
		set_one(out, &count, "hot_standby", "on");
	if (listen_addresses != NULL &&
	    (st->listen_addresses == NULL || strcmp(st->listen_addresses, listen_addresses) != 0))
		set_one(out, &count, "listen_addresses", listen_addresses);
	return count;
}

/* ---- names written into files and connection strings ---- */

/* "\n", "\v", ... or "0x1b" for a control character. */
static void control_name(unsigned char c, char *buf, size_t size)
{
	static const char names[] = "abtnvfr";

	if (c >= '\a' && c <= '\r')
		snprintf(buf, size, "\\%c", names[c - '\a']);
	else
		snprintf(buf, size, "0x%02x", c);
}

/* value on one line: control characters shown as escapes, cut to fit. */
static void show_value(const char *value, char *buf, size_t size)
{
	size_t n = 0;

	for (; *value && n + 6 < size; value++) {
		unsigned char c = (unsigned char)*value;
		if (c < 0x20 || c == 0x7f) {
			char name[8];
			control_name(c, name, sizeof name);
			n += (size_t)snprintf(buf + n, size - n, "%s", name);
		} else {
			buf[n++] = (char)c;
		}
	}
	buf[n] = '\0';
	if (*value && size > 4)
		snprintf(buf + (n < size - 4 ? n : size - 4), 4, "...");
}

wal_err rpl_check_text(const char *option, const char *value, wal_error *e)
{
	const char *p;

	for (p = value; *p; p++) {
		unsigned char c = (unsigned char)*p;
		char name[8], shown[160];
		if (c >= 0x20 && c != 0x7f)
			continue;
		control_name(c, name, sizeof name);
		show_value(value, shown, sizeof shown);
		return wal_fail(e, WAL_EINVAL,
				"%s '%s': control character %s at byte %d; pg_hba.conf, "
				"configuration files and connection strings cannot carry it",
				option, shown, name, (int)(p - value) + 1);
	}
	return WAL_OK;
}

wal_err rpl_check_role(const char *option, const char *name, wal_error *e)
{
	if (rpl_check_text(option, name, e) != WAL_OK)
		return e->code;
	if (*name == '\0')
		return wal_fail(e, WAL_EINVAL, "%s: empty; give a role name", option);
	if (strlen(name) > RPL_NAME_MAX)
		return wal_fail(e, WAL_EINVAL,
				"%s '%s': longer than %d bytes, PostgreSQL's limit for names",
				option, name, RPL_NAME_MAX);
	/* quoting does not help: PostgreSQL 16 and newer compile it as a regular expression */
	if (*name == '/')
		return wal_fail(e, WAL_EINVAL,
				"%s '%s': starts with '/', which pg_hba.conf reads as a "
				"regular expression; choose another name",
				option, name);
	return WAL_OK;
}

/* Characters pg_hba.conf takes in a bare token and libpq in a bare value. */
int rpl_plain_char(unsigned char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
	       c == '_' || c == '.' || c == '-';
}

/* ---- postgresql.conf-style files, conninfo, .pgpass ---- */

void rpl_guc_quote(const char *value, char *buf, size_t size)
{
	size_t n = 0;

	if (size < 3) {
		if (size)
			buf[0] = '\0';
		return;
	}
	buf[n++] = '\'';
	for (; *value && n + 3 < size; value++) {
		if (*value == '\'' || *value == '\\')
			buf[n++] = *value;
		buf[n++] = *value;
	}
	buf[n++] = '\'';
	buf[n] = '\0';
}

/*
 * Appends key=value to buf, quoting value as libpq's conninfo parser needs:
 * it splits on any isspace() character (\v, \f, \r and \n too, and in some
 * locales bytes above 0x7f) and reads \ and ' specially, so anything but
 * plain characters goes inside '...', where only ' and \ are escaped.
 */
static void conninfo_add(char *buf, size_t size, const char *key, const char *value)
{
	size_t n = strlen(buf);
	int quote = *value == '\0';
	const char *p;

	for (p = value; *p && !quote; p++)
		quote = !rpl_plain_char((unsigned char)*p) && !strchr("/:@,+%~", *p);

	if (n + 1 >= size)
		return;
	n += (size_t)snprintf(buf + n, size - n, "%s%s=%s", n ? " " : "", key, quote ? "'" : "");
	for (; *value && n + 3 < size; value++) {
		if (*value == '\'' || *value == '\\')
			buf[n++] = '\\';
		buf[n++] = *value;
	}
	if (quote && n + 1 < size)
		buf[n++] = '\'';
	buf[n < size ? n : size - 1] = '\0';
}

void rpl_conninfo(const char *host, int port, const char *user, const char *passfile,
		  const char *app_name, char *buf, size_t size)
{
	char port_text[16];

	buf[0] = '\0';
	snprintf(port_text, sizeof port_text, "%d", port);
	conninfo_add(buf, size, "host", host);
	conninfo_add(buf, size, "port", port_text);
	conninfo_add(buf, size, "user", user);
	if (passfile)
		conninfo_add(buf, size, "passfile", passfile);
	if (app_name && *app_name)
		conninfo_add(buf, size, "application_name", app_name);
}

static size_t pgpass_field(char *buf, size_t n, size_t size, const char *value)
{
	for (; *value && n + 3 < size; value++) {
		if (*value == ':' || *value == '\\')
			buf[n++] = '\\';
		buf[n++] = *value;
	}
	return n;
}

void rpl_pgpass_line(const char *host, int port, const char *user, const char *password, char *buf,
		     size_t size)
{
	size_t n = 0;
	char port_text[16];

	snprintf(port_text, sizeof port_text, "%d", port);
	n = pgpass_field(buf, n, size, host);
	buf[n++] = ':';
	n = pgpass_field(buf, n, size, port_text);
	buf[n++] = ':';
	n = pgpass_field(buf, n, size, "replication");
	buf[n++] = ':';
	n = pgpass_field(buf, n, size, user);
	buf[n++] = ':';
	n = pgpass_field(buf, n, size, password);
	buf[n] = '\0';
}

int rpl_recovery_settings(int version_num, const rpl_recovery *r, rpl_setting *out)
{
	int count = 0;

	if (rpl_uses_recovery_conf(version_num))
		set_one(out, &count, "standby_mode", "on");
	set_one(out, &count, "primary_conninfo", r->conninfo);
	set_one(out, &count, "restore_command", r->restore_command);
	set_one(out, &count, "recovery_target_timeline", "latest");
	if (r->slot && *r->slot)
		set_one(out, &count, "primary_slot_name", r->slot);
	return count;
}

/*
 * Parses one line "name [=] value [# comment]"; fills name and the
 * unquoted value.  Returns 1 for an assignment, 0 otherwise.
 */
static int conf_parse_line(const char *line, char *name, size_t name_size, char *value,
			   size_t value_size)
{
	const char *p = line;
	size_t n = 0;

	while (*p == ' ' || *p == '\t')
		p++;
	if (!(isalpha((unsigned char)*p) || *p == '_'))
		return 0;
	while ((isalnum((unsigned char)*p) || *p == '_' || *p == '.') && n + 1 < name_size)
		name[n++] = *p++;
	name[n] = '\0';
	while (*p == ' ' || *p == '\t')
		p++;
	if (*p == '=')
		p++;
	while (*p == ' ' || *p == '\t')
		p++;
	n = 0;
	if (*p == '\'') {
		p++;
		while (*p && *p != '\n') {
			if (*p == '\'' && p[1] == '\'') {
				p++;
			} else if (*p == '\\' && p[1]) {
				p++;
			} else if (*p == '\'') {
				break;
			}
			if (n + 1 < value_size)
				value[n++] = *p;
			p++;
		}
	} else {
		while (*p && *p != '\n' && *p != '#' && *p != ' ' && *p != '\t' && *p != '\r')
			if (n + 1 < value_size)
				value[n++] = *p++;
			else
				p++;
	}
	value[n] = '\0';
	return 1;
}

int rpl_conf_get(const char *text, const char *name, char *buf, size_t size)
{
	const char *line = text;
	int found = 0;

	while (line && *line) {
		char key[64], *value = malloc(size + 1);
		if (value == NULL)
			return found;
		if (conf_parse_line(line, key, sizeof key, value, size + 1) &&
		    strcasecmp(key, name) == 0) {
			snprintf(buf, size, "%s", value);
			found = 1;
		}
		free(value);
		line = strchr(line, '\n');
		if (line)
			line++;
	}
	return found;
}

char *rpl_conf_merge(const char *text, const rpl_setting *set, int n)
{
	size_t cap = strlen(text) + 64;
	char *out, *value;
	const char *line = text;
	size_t len = 0;
	int i;

	for (i = 0; i < n; i++)
		cap += strlen(set[i].name) + 2 * strlen(set[i].value) + 16;
	out = malloc(cap);
	value = malloc(4096);
	if (out == NULL || value == NULL) {
		free(out);
		free(value);
		return NULL;
	}
	while (line && *line) {
		const char *next = strchr(line, '\n');
		size_t line_len = next ? (size_t)(next - line + 1) : strlen(line);
		char key[64];
		int drop = 0;
		if (conf_parse_line(line, key, sizeof key, value, 4096))
			for (i = 0; i < n; i++)
				if (strcasecmp(key, set[i].name) == 0)
					drop = 1;
		if (!drop) {
			memcpy(out + len, line, line_len);
			len += line_len;
			if (!next)
				out[len++] = '\n';
		}
		line = next ? next + 1 : NULL;
	}
	for (i = 0; i < n; i++) {
		char quoted[2100];
		rpl_guc_quote(set[i].value, quoted, sizeof quoted);
		len += (size_t)sprintf(out + len, "%s = %s\n", set[i].name, quoted);
	}
	out[len] = '\0';
	free(value);
	return out;
}

wal_err rpl_hostport_parse(const char *text, char *host, size_t size, int *port, wal_error *e)
{
	const char *colon;
	size_t len;

	*port = 5432;
	if (text == NULL || *text == '\0')
		return wal_fail(e, WAL_EINVAL, "--primary: empty; give HOST[:PORT]");
	if (*text == '[') {
		const char *close = strchr(text, ']');
		if (close == NULL)
			return wal_fail(e, WAL_EINVAL, "--primary '%s': missing ']'", text);
		len = (size_t)(close - text - 1);
		colon = close[1] == ':' ? close + 1 : NULL;
		if (close[1] != '\0' && colon == NULL)
			return wal_fail(e, WAL_EINVAL, "--primary '%s': expected :PORT after ']'",
					text);
		text++;
	} else {
		colon = strrchr(text, ':');
		if (colon && strchr(text, ':') != colon)
			colon = NULL; /* a bare IPv6 address */
		len = colon ? (size_t)(colon - text) : strlen(text);
	}
	if (len == 0 || len >= size)
		return wal_fail(e, WAL_EINVAL, "--primary '%s': bad host", text);
	memcpy(host, text, len);
	host[len] = '\0';
	if (colon) {
		char *end;
		long value = strtol(colon + 1, &end, 10);
		if (colon[1] == '\0' || *end != '\0' || value < 1 || value > 65535)
			return wal_fail(e, WAL_EINVAL, "--primary '%s': port must be 1..65535",
					text);
		*port = (int)value;
	}
	return WAL_OK;
}

/* Copies the most telling part of a libpq message, on one line. */
static void one_line(const char *msg, char *buf, size_t size)
{
	const char *fatal = NULL, *p;
	size_t n = 0;
	int space = 0;

	/* the server's reason follows its last "FATAL:" */
	for (p = msg; (p = strstr(p, "FATAL:")) != NULL; p++)
		fatal = p + 6;
	if (fatal == NULL && (p = strstr(msg, "error: ")) != NULL)
		fatal = p + 7;
	p = fatal ? fatal : msg;
	while (*p == ' ')
		p++;
	for (; *p && n + 1 < size; p++) {
		/* the reason is one line; what follows is other output */
		if (*p == '\n' && fatal != NULL)
			break;
		if (isspace((unsigned char)*p)) {
			space = 1;
			continue;
		}
		if (space && n > 0)
			buf[n++] = ' ';
		space = 0;
		if (n + 1 < size)
			buf[n++] = *p;
	}
	while (n > 0 && (buf[n - 1] == '.' || buf[n - 1] == ' '))
		n--;
	buf[n] = '\0';
}

wal_err rpl_classify_conn_error(const char *msg, char *buf, size_t size)
{
	char reason[512];

	one_line(msg ? msg : "", reason, sizeof reason);
	if (strstr(msg, "password authentication failed") || strstr(msg, "no password supplied") ||
	    (strstr(msg, "role \"") && strstr(msg, "does not exist"))) {
		snprintf(buf, size,
			 "%s; check the password file against the password "
			 "replinit primary set for the role",
			 reason);
		return WAL_EAUTH;
	}
	if (strstr(msg, "no pg_hba.conf entry") || strstr(msg, "pg_hba.conf rejects")) {
		snprintf(buf, size, "%s; run replinit primary --standby ADDRESS on the primary",
			 reason);
		return WAL_EPERM;
	}
	if (strstr(msg, "exceeds max_wal_senders")) {
		snprintf(buf, size,
			 "%s; raise max_wal_senders on the primary (replinit primary does) "
			 "and restart it",
			 reason);
		return WAL_ECONFIG;
	}
	if (strstr(msg, "must be superuser or replication") ||
	    strstr(msg, "permission denied to start WAL sender") ||
	    strstr(msg, "REPLICATION attribute")) {
		snprintf(buf, size,
			 "%s; the role needs REPLICATION LOGIN (replinit primary grants it)",
			 reason);
		return WAL_EPERM;
	}
	if (strstr(msg, "the database system is starting up") || strstr(msg, "shutting down")) {
		snprintf(buf, size, "%s; try again when the primary is up", reason);
		return WAL_ENET;
	}
	snprintf(buf, size,
		 "%s; check the address and port, the primary's listen_addresses "
		 "and any firewall",
		 reason);
	return WAL_ENET;
}
