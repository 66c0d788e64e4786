/*
 * Where things are in the archive: the path of each object, and which
 * cluster's tree a program works in.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include "archive/archive.h"
#include "io/compress.h"
#include "io/zstd.h"
#include "pg/pgcontrol.h"

void wal_archive_object_path(uint64_t system_id, const wal_name *name, int form, char *out,
			     size_t cap)
{
	char suffix[16];
	snprintf(suffix, sizeof(suffix), "%s%s",
		 (form & WAL_OBJ_ZSTD)	? WAL_ZSTD_SUFFIX
		 : (form & WAL_OBJ_LZ4) ? WAL_LZ4_SUFFIX
					: "",
		 (form & WAL_OBJ_AGE) ? WAL_AGE_SUFFIX : "");
	if (name->kind == WAL_NAME_HISTORY) {
		snprintf(out, cap, "%" PRIu64 "/%s%s", system_id, name->text, suffix);
	} else {
		char dir[17];
		wal_name_dir(name, dir);
		snprintf(out, cap, "%" PRIu64 "/%s/%s%s", system_id, dir, name->text, suffix);
	}
}

/* Strips suffix from the end of entry (of length *len) if it is there. */
static int strip(char *entry, size_t *len, const char *suffix)
{
	size_t n = strlen(suffix);
	if (*len <= n || strcmp(entry + *len - n, suffix) != 0)
		return 0;
	*len -= n;
	entry[*len] = '\0';
	return 1;
}

int wal_archive_object_form(char *entry)
{
	size_t len = strlen(entry);
	int form = 0;
	if (strip(entry, &len, WAL_AGE_SUFFIX))
		form |= WAL_OBJ_AGE;
	if (strip(entry, &len, WAL_LZ4_SUFFIX))
		form |= WAL_OBJ_LZ4;
	else if (strip(entry, &len, WAL_ZSTD_SUFFIX))
		form |= WAL_OBJ_ZSTD;
	return form;
}

int wal_archive_codec(const wal_config *cfg)
{
	return cfg->compress == WAL_COMPRESS_ZSTD ? WAL_OBJ_ZSTD : WAL_OBJ_LZ4;
}

int wal_archive_level(const wal_config *cfg)
{
	if (cfg->compress == WAL_COMPRESS_ZSTD && !wal_config_origin(cfg, "compress_level"))
		return WAL_ZSTD_LEVEL_DEFAULT;
	return cfg->compress_level;
}

void wal_archive_forms(int have_identity, int codec, int forms[WAL_ARCHIVE_FORMS])
{
	int other = codec == WAL_OBJ_ZSTD ? WAL_OBJ_LZ4 : WAL_OBJ_ZSTD;
	int framed[2] = { codec, other };
	int n = 0;
	for (int pass = 0; pass < 2; pass++) {
		int age = (pass == 0) == (have_identity != 0) ? WAL_OBJ_AGE : 0;
		forms[n++] = framed[0] | age;
		forms[n++] = framed[1] | age;
		forms[n++] = age; /* plain, or encrypted by `age -r` */
	}
}

/* ---- encryption keys ------------------------------------------------------ */

wal_err wal_archive_recipients(const wal_config *cfg, wal_age_keys *keys, int *have, wal_error *e)
{
	memset(keys, 0, sizeof(*keys));
	*have = cfg->encrypt_recipients && cfg->encrypt_recipients[0];
	if (!*have)
		return WAL_OK;
	wal_err rc = wal_age_recipients_load(keys, cfg->encrypt_recipients, e);
	return rc == WAL_OK ? rc : wal_config_blame(cfg, "encrypt_recipients", e);
}

wal_err wal_archive_identities(const wal_config *cfg, wal_age_keys *keys, int *have, wal_error *e)
{
	memset(keys, 0, sizeof(*keys));
	*have = cfg->encrypt_identity && cfg->encrypt_identity[0];
	if (!*have)
		return WAL_OK;
	wal_err rc = wal_age_identities_load(keys, cfg->encrypt_identity, e);
	return rc == WAL_OK ? rc : wal_config_blame(cfg, "encrypt_identity", e);
}

/* ---- cluster selection --------------------------------------------------- */

typedef struct clusters {
	uint64_t first;
	int count;
} clusters;

static int parse_u64(const char *text, uint64_t *out)
{
	if (!*text || strlen(text) > 20)
		return -1;
	for (const char *p = text; *p; p++)
		if (*p < '0' || *p > '9')
			return -1;
	errno = 0;
	*out = strtoull(text, NULL, 10);
	return errno || *out == 0 ? -1 : 0;
}

static wal_err count_cluster(void *arg, const char *name, const wal_stat *st, wal_error *e)
{
	(void)e;
	clusters *c = arg;
	uint64_t id;
	if (st->is_dir && parse_u64(name, &id) == 0) {
		if (c->count++ == 0)
			c->first = id;
	}
	return WAL_OK;
}

int wal_local_cluster(const wal_config *cfg, const char *datadir, uint64_t *system_id,
		      uint32_t *seg_size)
{
	wal_pgcontrol ctl;
	if (seg_size)
		*seg_size = 0;
	if (datadir && wal_pgcontrol_read(datadir, &ctl, NULL) == WAL_OK) {
		*system_id = ctl.system_id;
		if (seg_size)
			*seg_size = ctl.seg_size;
	} else {
		*system_id = cfg->system_id;
	}
	return *system_id != 0;
}

int wal_local_system_id(const wal_config *cfg, const char *datadir, uint64_t *system_id)
{
	return wal_local_cluster(cfg, datadir, system_id, NULL);
}

wal_err wal_archive_system_id(wal_store *s, const wal_config *cfg, const char *datadir,
			      uint64_t *system_id, wal_error *e)
{
	if (wal_local_system_id(cfg, datadir, system_id))
		return WAL_OK;
	clusters c = { 0, 0 };
	wal_err rc = wal_store_list(s, "", count_cluster, &c, e);
	if (rc == WAL_ENOENT || (rc == WAL_OK && c.count == 0))
		return wal_fail(e, WAL_ENOENT, "the archive holds no cluster yet");
	if (rc != WAL_OK)
		return rc;
	if (c.count > 1)
		return wal_fail(
			e, WAL_EAMBIGUOUS,
			"the archive holds %d clusters and there is no global/pg_control here "
			"to tell which; set system_id",
			c.count);
	*system_id = c.first;
	return WAL_OK;
}
