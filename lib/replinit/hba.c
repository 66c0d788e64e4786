/*
 * pg_hba.conf as replinit reads and edits it, without I/O: the networks a
 * standby connects from, quoting a role, the line a standby would match,
 * and a new line put before the first one that would turn it away.
 */
#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>

#include "replinit.h"

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

void rpl_hba_quote(const char *name, char *buf, size_t size)
{
	static const char *const keywords[] = { "all",	     "sameuser",    "samerole",
						"samegroup", "replication", NULL };
	const char *p;
	size_t n = 0;
	int quote = *name == '\0';
	int i;

	if (size == 0)
		return;
	for (p = name; *p && !quote; p++)
		quote = !rpl_plain_char((unsigned char)*p);
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
