/*
 * The XML walker the WebDAV and S3 drivers read listings with: expat
 * underneath, each element reported by its path of local names.
 */
#ifndef WAL_HTTP_XML_H
#define WAL_HTTP_XML_H

#include <stddef.h>
#include "base/error.h"

/*
 * Calls fn at the end of every element of an XML document with its path
 * of local names (namespaces dropped) joined by '/', e.g.
 * "ListBucketResult/Contents/Key", and its text content (trimmed of
 * surrounding white space; "" for elements with children only).  A non-OK
 * return from fn stops the parse and is passed through.  Malformed XML is
 * WAL_ENET ("<what>: malformed xml ...").  Entity declarations are refused.
 */
typedef wal_err (*wal_xml_fn)(void *arg, const char *path, const char *text, wal_error *e);
wal_err wal_xml_parse(const char *xml, size_t len, const char *what, wal_xml_fn fn, void *arg,
		      wal_error *e);

#endif
