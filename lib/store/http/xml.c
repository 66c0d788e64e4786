/*
 * The XML walker both drivers read listings with (expat, namespaces
 * dropped, entity declarations refused), and the extraction of a server's
 * error code and message from an error body.
 */
#include <ctype.h>
#include <expat.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "store/http/http.h"
#include "store/http/xml.h"

typedef struct xml_state {
	XML_Parser parser;
	wal_xml_fn fn;
	void *arg;
	wal_error *e;
	wal_err rc;
	char path[1024];
	size_t path_len;
	size_t path_starts[64]; /* path_len before each open element */
	size_t text_starts[64];
	int depth;
	char *text;
	size_t text_len;
	size_t text_cap;
	int refused; /* a DTD entity declaration was seen */
} xml_state;

static const char *local_name(const char *name)
{
	const char *sep = strrchr(name, '\x01');

	return sep ? sep + 1 : name;
}

static void xml_start(void *arg, const XML_Char *name, const XML_Char **attrs)
{
	xml_state *st = arg;
	const char *local = local_name(name);
	size_t add = strlen(local) + (st->path_len ? 1 : 0);

	(void)attrs;
	if (st->depth >= 64 || st->path_len + add + 1 > sizeof st->path) {
		st->rc = wal_fail(st->e, WAL_ENET, "xml nested too deeply");
		XML_StopParser(st->parser, XML_FALSE);
		return;
	}
	st->path_starts[st->depth] = st->path_len;
	st->text_starts[st->depth] = st->text_len;
	st->depth++;
	if (st->path_len)
		st->path[st->path_len++] = '/';
	memcpy(st->path + st->path_len, local, strlen(local) + 1);
	st->path_len += strlen(local);
}

static void xml_chars(void *arg, const XML_Char *s, int len)
{
	xml_state *st = arg;

	if (st->text_len + (size_t)len + 1 > st->text_cap) {
		size_t cap = st->text_cap ? st->text_cap : 256;
		char *grown;

		while (cap < st->text_len + (size_t)len + 1)
			cap *= 2;
		grown = realloc(st->text, cap);
		if (!grown) {
			st->rc = wal_fail(st->e, WAL_ENOMEM, "xml: out of memory");
			XML_StopParser(st->parser, XML_FALSE);
			return;
		}
		st->text = grown;
		st->text_cap = cap;
	}
	memcpy(st->text + st->text_len, s, (size_t)len);
	st->text_len += (size_t)len;
	st->text[st->text_len] = '\0';
}

static void xml_end(void *arg, const XML_Char *name)
{
	xml_state *st = arg;
	size_t start, end;
	char saved;
	wal_err rc;

	(void)name;
	if (st->depth == 0)
		return;
	st->depth--;
	start = st->text_starts[st->depth];
	end = st->text_len;
	while (start < end && isspace((unsigned char)st->text[start]))
		start++;
	while (end > start && isspace((unsigned char)st->text[end - 1]))
		end--;
	if (!st->text) {
		static char empty[1];

		rc = st->fn(st->arg, st->path, empty, st->e);
	} else {
		saved = st->text[end];
		st->text[end] = '\0';
		rc = st->fn(st->arg, st->path, st->text + start, st->e);
		st->text[end] = saved;
	}
	/* the element's text is not part of its parent's */
	st->text_len = st->text_starts[st->depth];
	if (st->text)
		st->text[st->text_len] = '\0';
	st->path_len = st->path_starts[st->depth];
	st->path[st->path_len] = '\0';
	if (rc != WAL_OK) {
		st->rc = rc;
		XML_StopParser(st->parser, XML_FALSE);
	}
}

static void xml_entity(void *arg, const XML_Char *name, int is_param, const XML_Char *value,
		       int value_len, const XML_Char *base, const XML_Char *system_id,
		       const XML_Char *public_id, const XML_Char *notation)
{
	xml_state *st = arg;

	(void)name;
	(void)is_param;
	(void)value;
	(void)value_len;
	(void)base;
	(void)system_id;
	(void)public_id;
	(void)notation;
	st->refused = 1;
	XML_StopParser(st->parser, XML_FALSE);
}

wal_err wal_xml_parse(const char *xml, size_t len, const char *what, wal_xml_fn fn, void *arg,
		      wal_error *e)
{
	xml_state st;
	wal_err rc = WAL_OK;

	memset(&st, 0, sizeof st);
	st.parser = XML_ParserCreateNS(NULL, '\x01');
	if (!st.parser)
		return wal_fail(e, WAL_ENOMEM, "%s: out of memory", what);
	st.fn = fn;
	st.arg = arg;
	st.e = e;
	XML_SetUserData(st.parser, &st);
	XML_SetElementHandler(st.parser, xml_start, xml_end);
	XML_SetCharacterDataHandler(st.parser, xml_chars);
	XML_SetEntityDeclHandler(st.parser, xml_entity);
	if (XML_Parse(st.parser, xml ? xml : "", (int)len, XML_TRUE) == XML_STATUS_ERROR) {
		if (st.rc != WAL_OK)
			rc = st.rc;
		else if (st.refused)
			rc = wal_fail(e, WAL_ENET, "%s: xml with entity declarations refused",
				      what);
		else
			rc = wal_fail(e, WAL_ENET, "%s: malformed xml at line %lu: %s", what,
				      (unsigned long)XML_GetCurrentLineNumber(st.parser),
				      XML_ErrorString(XML_GetErrorCode(st.parser)));
	} else if (st.rc != WAL_OK) {
		rc = st.rc;
	}
	XML_ParserFree(st.parser);
	free(st.text);
	return rc;
}

typedef struct err_text {
	char code[128];
	char message[256];
} err_text;

static void copy_text(char *dst, size_t cap, const char *src)
{
	size_t i;

	/* one line: control characters become spaces */
	for (i = 0; src[i] && i + 1 < cap; i++)
		dst[i] = iscntrl((unsigned char)src[i]) ? ' ' : src[i];
	dst[i] = '\0';
}

static wal_err collect_error(void *arg, const char *path, const char *text, wal_error *e)
{
	err_text *et = arg;
	const char *leaf = strrchr(path, '/');

	(void)e;
	leaf = leaf ? leaf + 1 : path;
	if (!et->code[0] && strcmp(leaf, "Code") == 0)
		copy_text(et->code, sizeof et->code, text);
	else if (!et->message[0] && (strcmp(leaf, "Message") == 0 || strcmp(leaf, "message") == 0))
		copy_text(et->message, sizeof et->message, text);
	return WAL_OK;
}

void wal_http_error_text(const char *body, size_t len, char *out, size_t cap)
{
	err_text et;
	wal_error ignored;
	size_t i = 0;

	out[0] = '\0';
	if (!body)
		return;
	while (i < len && isspace((unsigned char)body[i]))
		i++;
	if (i >= len || body[i] != '<' || (i + 5 < len && strncasecmp(body + i, "<html", 5) == 0) ||
	    (i + 9 < len && strncasecmp(body + i, "<!doctype", 9) == 0))
		return;
	memset(&et, 0, sizeof et);
	/* a half-parsed body still yields what was seen before the error */
	wal_xml_parse(body, len, "error body", collect_error, &et, &ignored);
	if (et.code[0] && et.message[0])
		snprintf(out, cap, "%s: %s", et.code, et.message);
	else if (et.code[0])
		snprintf(out, cap, "%s", et.code);
	else if (et.message[0])
		snprintf(out, cap, "%s", et.message);
}
