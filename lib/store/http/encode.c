/*
 * Text forms HTTP needs: RFC 3986 percent-encoding of names in URLs, its
 * reverse for names a server sends back, and HTTP dates.
 */
#include <ctype.h>
#include <curl/curl.h>
#include <string.h>
#include <time.h>

#include "store/http/http.h"

wal_err wal_http_encode(const char *s, int keep_slash, char *out, size_t cap, wal_error *e)
{
	static const char hex[] = "0123456789ABCDEF";
	size_t n = strlen(out);

	for (; *s; s++) {
		unsigned char ch = (unsigned char)*s;
		int plain = isalnum(ch) || ch == '-' || ch == '.' || ch == '_' || ch == '~' ||
			    (keep_slash && ch == '/');

		if (n + (plain ? 1 : 3) >= cap)
			return wal_fail(e, WAL_EINVAL, "url too long");
		if (plain) {
			out[n++] = (char)ch;
		} else {
			out[n++] = '%';
			out[n++] = hex[ch >> 4];
			out[n++] = hex[ch & 15];
		}
	}
	out[n] = '\0';
	return WAL_OK;
}

static int hexval(int ch)
{
	if (ch >= '0' && ch <= '9')
		return ch - '0';
	if (ch >= 'a' && ch <= 'f')
		return ch - 'a' + 10;
	if (ch >= 'A' && ch <= 'F')
		return ch - 'A' + 10;
	return -1;
}

void wal_http_decode(char *s)
{
	char *w = s;

	for (; *s; s++) {
		if (s[0] == '%' && hexval((unsigned char)s[1]) >= 0 &&
		    hexval((unsigned char)s[2]) >= 0) {
			*w++ = (char)(hexval((unsigned char)s[1]) * 16 +
				      hexval((unsigned char)s[2]));
			s += 2;
		} else {
			*w++ = *s;
		}
	}
	*w = '\0';
}

time_t wal_http_parse_date(const char *text)
{
	time_t t = curl_getdate(text, NULL);

	return t > 0 ? t : 0;
}
