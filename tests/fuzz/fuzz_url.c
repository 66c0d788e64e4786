/*
 * libFuzzer target: archive locations (wal_url_parse).  An accepted URL has
 * one of the known schemes, a port in range, and is freed without leaks.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include "base/url.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *text = malloc(size + 1);
	wal_url url;
	wal_error e;

	if (!text)
		return 0;
	memcpy(text, data, size);
	text[size] = '\0';
	memset(&url, 0, sizeof url);
	if (wal_url_parse(text, &url, &e) == WAL_OK) {
		static const char *const schemes[] = { "file",	"sftp", "http",
						       "https", "s3",	"azure" };
		int known = 0;

		for (size_t i = 0; i < sizeof schemes / sizeof schemes[0]; i++)
			known |= strcmp(url.scheme, schemes[i]) == 0;
		if (!known || url.port < 0 || url.port > 65535 || !url.path)
			abort();
		(void)strlen(url.path);
		if (url.host)
			(void)strlen(url.host);
		if (url.user)
			(void)strlen(url.user);
		wal_url_free(&url);
	} else if (e.msg[0] == '\0') {
		abort();
	}
	free(text);
	return 0;
}
