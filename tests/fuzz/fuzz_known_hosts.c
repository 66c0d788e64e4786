/*
 * libFuzzer target: known_hosts matching (lib/store/sftp/known_hosts.c), which
 * decides the SFTP store's host-key check.  The input is "HOST\nPORT\nKEY\n"
 * (KEY the base64 of the key blob the server offers) followed by the text of
 * a known_hosts file.  The result is one of the four, names a line of the
 * text exactly when an entry decided it, and is the same when asked twice;
 * the host key methods and the fingerprint stay within their buffers.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "store/sftp/known_hosts.h"

/* The next '\n'-terminated part of [*p, end) as a NUL-terminated copy. */
static char *take_line(const char **p, const char *end)
{
	const char *nl = memchr(*p, '\n', (size_t)(end - *p));
	size_t len = nl ? (size_t)(nl - *p) : (size_t)(end - *p);
	char *out = malloc(len + 1);
	if (!out)
		abort();
	memcpy(out, *p, len);
	out[len] = '\0';
	*p = nl ? nl + 1 : end;
	return out;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *p = (const char *)data, *end = p + size;
	char *host = take_line(&p, end);
	char *port_text = take_line(&p, end);
	char *key_text = take_line(&p, end);
	size_t text_len = strnlen(p, (size_t)(end - p)); /* the rest, up to a NUL */
	char *text = malloc(text_len + 1);
	int port = atoi(port_text) % 70000;
	unsigned char blob[4096];
	size_t blob_len = wal_ssh_base64_decode(key_text, strlen(key_text), blob, sizeof(blob));
	int lines = 1;

	if (!text)
		abort();
	memcpy(text, p, text_len);
	text[text_len] = '\0';

	for (const char *c = text; *c; c++)
		lines += *c == '\n';
	int line = -1, again_line = -1;
	int result = wal_known_hosts_check(text, host, port, blob, blob_len, &line);
	if (result < WAL_KH_MATCH || result > WAL_KH_REVOKED || line < 0 || line > lines)
		abort();
	if ((line == 0) != (result == WAL_KH_NOTFOUND))
		abort();
	if (wal_known_hosts_check(text, host, port, blob, blob_len, &again_line) != result ||
	    again_line != line)
		abort();
	(void)wal_known_hosts_check(text, host, port, blob, blob_len, NULL);

	char methods[256], small[8], fp[80], type[64], name[300];
	wal_known_hosts_methods(text, host, port, methods, sizeof(methods));
	if (strnlen(methods, sizeof(methods)) == sizeof(methods) ||
	    strspn(methods, "abcdefghijklmnopqrstuvwxyz0123456789-,") != strlen(methods))
		abort();
	wal_known_hosts_methods(text, host, port, small, sizeof(small));
	if (strnlen(small, sizeof(small)) == sizeof(small) ||
	    strncmp(small, methods, strlen(small)) != 0)
		abort();
	wal_ssh_key_fingerprint(blob, blob_len, fp, sizeof(fp));
	if (strncmp(fp, "SHA256:", 7) != 0 || strlen(fp) != 7 + 43)
		abort();
	wal_ssh_key_type(blob, blob_len, type, sizeof(type));
	if (strnlen(type, sizeof(type)) == sizeof(type))
		abort();
	wal_known_hosts_name(host, port, name, sizeof(name));
	if (strnlen(name, sizeof(name)) == sizeof(name))
		abort();
	free(host);
	free(port_text);
	free(key_text);
	free(text);
	return 0;
}
