/*
 * replinit's pure parts: which settings and files each PostgreSQL version
 * needs, quoting for postgresql.conf, conninfo and .pgpass, pg_hba parsing
 * and equivalence, and the classification of connection errors.  No I/O.
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

/* ---- addresses ---- */

wal_err rpl_net_parse(const char *text, rpl_net *net, wal_error *e)
{
	char addr[128];
	const char *slash = strchr(text, '/');
	size_t len = slash ? (size_t)(slash - text) : strlen(text);
	int max_bits, i;

	memset(net, 0, sizeof *net);
	if (len == 0 || len >= sizeof addr)
		return wal_fail(e, WAL_EINVAL, "standby address '%s': not an ip address", text);
	memcpy(addr, text, len);
	addr[len] = '\0';
	if (inet_pton(AF_INET, addr, net->addr) == 1) {
		net->family = AF_INET;
		max_bits = 32;
	} else if (inet_pton(AF_INET6, addr, net->addr) == 1) {
		net->family = AF_INET6;
		max_bits = 128;
	} else {
		return wal_fail(e, WAL_EINVAL,
				"standby address '%s': not an ip address "
				"(pg_hba needs ADDRESS or ADDRESS/BITS)",
				text);
	}
	net->bits = max_bits;
	if (slash) {
		char *end;
		long bits = strtol(slash + 1, &end, 10);
		if (slash[1] == '\0' || *end != '\0' || bits < 0 || bits > max_bits)
			return wal_fail(e, WAL_EINVAL, "standby address '%s': bits must be 0..%d",
					text, max_bits);
		net->bits = (int)bits;
	}
	for (i = 0; i < 16; i++) {
		int keep = net->bits - i * 8;
		if (keep >= 8)
			continue;
		net->addr[i] &= keep <= 0 ? 0 : (unsigned char)(0xff << (8 - keep));
	}
	return WAL_OK;
}

void rpl_net_format(const rpl_net *net, char *buf, size_t size)
{
	char addr[INET6_ADDRSTRLEN] = "?";

	inet_ntop(net->family, net->addr, addr, sizeof addr);
	snprintf(buf, size, "%s/%d", addr, net->bits);
}

int rpl_net_covers(const rpl_net *outer, const rpl_net *inner)
{
	int i;

	if (outer->family != inner->family || outer->bits > inner->bits)
		return 0;
	for (i = 0; i < outer->bits; i++) {
		int mask = 0x80 >> (i % 8);
		if ((outer->addr[i / 8] & mask) != (inner->addr[i / 8] & mask))
			return 0;
	}
	return 1;
}

/* Prefix length of a netmask such as 255.255.255.0; -1 if not contiguous. */
static int mask_bits(const rpl_net *mask, int max_bits)
{
	int bits = 0, i;

	while (bits < max_bits && (mask->addr[bits / 8] & (0x80 >> (bits % 8))))
		bits++;
	for (i = bits; i < max_bits; i++)
		if (mask->addr[i / 8] & (0x80 >> (i % 8)))
			return -1;
	return bits;
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
static int plain_char(unsigned char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
	       c == '_' || c == '.' || c == '-';
}

void rpl_hba_quote(const char *name, char *buf, size_t size)
{
	static const char *const keywords[] = { "all", "sameuser", "samerole", "samegroup",
						"replication", NULL };
	const char *p;
	size_t n = 0;
	int quote = *name == '\0';
	int i;

	if (size == 0)
		return;
	for (p = name; *p && !quote; p++)
		quote = !plain_char((unsigned char)*p);
	for (i = 0; keywords[i] && !quote; i++)
		quote = strcmp(name, keywords[i]) == 0;
	if (!quote) {
		snprintf(buf, size, "%s", name);
		return;
	}
	/* as in SQL: a double quote inside is written twice */
	if (n + 1 < size)
		buf[n++] = '"';
	for (p = name; *p && n + 3 < size; p++) {
		if (*p == '"')
			buf[n++] = '"';
		buf[n++] = *p;
	}
	if (n + 1 < size)
		buf[n++] = '"';
	buf[n] = '\0';
}

void rpl_hba_line(const char *user, const rpl_net *net, const char *method, char *buf, size_t size)
{
	char net_text[64], user_token[2 * RPL_NAME_MAX + 8];

	rpl_net_format(net, net_text, sizeof net_text);
	rpl_hba_quote(user, user_token, sizeof user_token);
	snprintf(buf, size, "host    replication     %s %s %s", user_token, net_text, method);
}

/* ---- pg_hba.conf ---- */

#define HBA_MAX_FIELDS 16
#define HBA_MAX_ITEMS 32

typedef struct hba_item {
	char text[128];
	int quoted;
} hba_item;

typedef struct hba_field {
	hba_item item[HBA_MAX_ITEMS];
	int count;
} hba_field;

/* Splits one pg_hba line into fields, each a comma list of items. */
static int hba_split(const char *line, hba_field *fields, int max_fields)
{
	int nfields = 0;
	const char *p = line;

	for (;;) {
		hba_field *f;
		while (*p == ' ' || *p == '\t' || *p == '\r')
			p++;
		if (*p == '\0' || *p == '#' || *p == '\n')
			break;
		if (nfields == max_fields)
			break;
		f = &fields[nfields++];
		f->count = 0;
		for (;;) {
			hba_item *it = f->count < HBA_MAX_ITEMS ? &f->item[f->count] : NULL;
			size_t len = 0;
			int quoted = 0, in_quote = 0;
			while (*p && *p != '\n' &&
			       (in_quote || (*p != ' ' && *p != '\t' && *p != ',' && *p != '#' &&
					     *p != '\r'))) {
				char c = *p++;
				if (c == '"' && in_quote && *p == '"') {
					p++; /* "" inside quotes is one double quote */
				} else if (c == '"') {
					quoted = 1;
					in_quote = !in_quote;
					continue;
				}
				if (it && len + 1 < sizeof it->text)
					it->text[len++] = c;
			}
			if (it) {
				it->text[len] = '\0';
				it->quoted = quoted;
				f->count++;
			}
			if (*p != ',')
				break;
			p++;
		}
	}
	return nfields;
}

static int item_is(const hba_item *it, const char *keyword)
{
	return !it->quoted && strcmp(it->text, keyword) == 0;
}

/* Whether the address part (fields from index a) covers net; *method_at gets the method's index. */
static int hba_addr_covers(const hba_field *fields, int nfields, int a, const rpl_net *net,
			   int *method_at)
{
	const hba_item *it;
	rpl_net line_net;

	if (a >= nfields)
		return 0;
	it = &fields[a].item[0];
	*method_at = a + 1;
	if (item_is(it, "all"))
		return 1;
	if (strchr(it->text, '/')) {
		if (rpl_net_parse(it->text, &line_net, NULL) != WAL_OK)
			return 0;
		return rpl_net_covers(&line_net, net);
	}
	/* an address followed by a netmask */
	if (rpl_net_parse(it->text, &line_net, NULL) == WAL_OK && a + 1 < nfields) {
		rpl_net mask;
		int bits;
		if (rpl_net_parse(fields[a + 1].item[0].text, &mask, NULL) != WAL_OK ||
		    mask.family != line_net.family)
			return 0;
		bits = mask_bits(&mask, line_net.family == AF_INET ? 32 : 128);
		if (bits < 0)
			return 0;
		*method_at = a + 2;
		line_net.bits = bits;
		return rpl_net_covers(&line_net, net);
	}
	/* host names, samehost, samenet: cannot be judged here */
	return 0;
}

void rpl_hba_find(const char *hba_text, const char *user, const rpl_net *net, int ssl_on,
		  rpl_hba_match *m)
{
	static hba_field fields[HBA_MAX_FIELDS];
	const char *line = hba_text;
	int lineno = 0;

	memset(m, 0, sizeof *m);
	while (line && *line) {
		const char *next = strchr(line, '\n');
		char buf[2048];
		size_t len = next ? (size_t)(next - line) : strlen(line);
		int nfields, i, db_ok = 0, user_ok = 0, method_at = 0;
		const char *type;

		lineno++;
		if (len >= sizeof buf)
			len = sizeof buf - 1;
		memcpy(buf, line, len);
		buf[len] = '\0';
		line = next ? next + 1 : NULL;

		nfields = hba_split(buf, fields, HBA_MAX_FIELDS);
		if (nfields < 5)
			continue;
		type = fields[0].item[0].text;
		if (!(strcmp(type, "host") == 0 || strcmp(type, "hostnogssenc") == 0 ||
		      (strcmp(type, "hostssl") == 0 && ssl_on) ||
		      (strcmp(type, "hostnossl") == 0 && !ssl_on)))
			continue;
		for (i = 0; i < fields[1].count; i++)
			if (item_is(&fields[1].item[i], "replication"))
				db_ok = 1;
		for (i = 0; i < fields[2].count; i++)
			if (item_is(&fields[2].item[i], "all") ||
			    ((fields[2].item[i].quoted || (fields[2].item[i].text[0] != '+' &&
							   fields[2].item[i].text[0] != '@')) &&
			     strcmp(fields[2].item[i].text, user) == 0))
				user_ok = 1;
		if (!db_ok || !user_ok)
			continue;
		if (!hba_addr_covers(fields, nfields, 3, net, &method_at) || method_at >= nfields)
			continue;
		m->line = lineno;
		snprintf(m->method, sizeof m->method, "%s", fields[method_at].item[0].text);
		m->usable = strcmp(m->method, "scram-sha-256") == 0 ||
			    strcmp(m->method, "md5") == 0 || strcmp(m->method, "password") == 0 ||
			    strcmp(m->method, "trust") == 0;
		return;
	}
}

char *rpl_hba_insert(const char *hba_text, const char *line, int before_line)
{
	size_t text_len = strlen(hba_text), line_len = strlen(line);
	char *out = malloc(text_len + line_len + 64);
	const char *at = hba_text + text_len;
	size_t head;

	if (out == NULL)
		return NULL;
	if (before_line > 0) {
		const char *p = hba_text;
		int n = 1;
		while (n < before_line && p) {
			p = strchr(p, '\n');
			if (p)
				p++;
			n++;
		}
		if (p)
			at = p;
	}
	head = (size_t)(at - hba_text);
	memcpy(out, hba_text, head);
	if (head > 0 && out[head - 1] != '\n')
		out[head++] = '\n';
	if (before_line == 0)
		head += (size_t)sprintf(out + head, "# added by replinit\n");
	memcpy(out + head, line, line_len);
	head += line_len;
	out[head++] = '\n';
	memcpy(out + head, at, text_len - (size_t)(at - hba_text));
	head += text_len - (size_t)(at - hba_text);
	out[head] = '\0';
	return out;
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
		quote = !plain_char((unsigned char)*p) && !strchr("/:@,+%~", *p);

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
