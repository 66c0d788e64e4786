/*
 * Loadable modules: the parts of walarchive that need a large library
 * (libcurl, libssh2, libcrypto) are built as modules and loaded on first
 * need, so that a program that does not need them never maps them.
 */
#ifndef WAL_MODULE_H
#define WAL_MODULE_H

#include "base/error.h"

/*
 * Loads module file (e.g. "walarchive_sftp.so") and returns its exported
 * symbol, looking in $WALARCHIVE_MODULE_DIR, then beside the program (a
 * build tree), then the install layout relative to the program, then the
 * configured install directory.  NULL and WAL_EUNSUPPORTED if it cannot be
 * loaded: "<what> <file> cannot be loaded (<why>; looked in <dir>)", what
 * being e.g. "transport module".  A module once loaded stays loaded.
 */
const void *wal_module_load(const char *what, const char *file, const char *symbol, wal_error *e);

#endif
