/*
 * walprune's job: list the whole tree of one cluster first (refusing to go
 * on if any part cannot be listed), work out the horizon the options ask
 * for, then remove what sorts before it.  History files are never removed.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "archive/archive.h"
#include "io/compress.h"

typedef struct object {
	char path[128];
	wal_name name;
	uint64_t pos; /* log << 32 | seg */
	int64_t size;
	time_t mtime;
} object;

/* Temporary files this old are left by writers that died: removed. */
#define STALE_TMP_SECONDS (24 * 3600)

typedef struct tree {
	object *objs;
	size_t count, cap;
	char (*stale)[160]; /* abandoned temporary files */
	size_t nstale, stalecap;
	int64_t stale_bytes;
	char (*dirs)[17];
	size_t ndirs, dircap;
	const char *current_dir;
	uint64_t system_id;
} tree;

static uint64_t name_pos(const wal_name *n)
{
	return ((uint64_t)n->log << 32) | n->seg;
}

static wal_err collect_file(void *arg, const char *entry, const wal_stat *st, wal_error *e)
{
	tree *t = arg;
	char base[WAL_NAME_MAX + 8];
	wal_name name;
	if (st->is_dir)
		return WAL_OK;
	size_t entry_len = strlen(entry);
	if (entry[0] == '.') {
		/* a temporary file: under way if recent, abandoned by a dead writer if old */
		if (entry_len < 5 || strcmp(entry + entry_len - 4, ".tmp") != 0 || st->mtime == 0 ||
		    st->mtime > time(NULL) - STALE_TMP_SECONDS)
			return WAL_OK;
		if (t->nstale == t->stalecap) {
			size_t cap = t->stalecap ? t->stalecap * 2 : 16;
			char(*grown)[160] = realloc(t->stale, cap * sizeof(*grown));
			if (!grown)
				return wal_fail(e, WAL_ENOMEM, "out of memory");
			t->stale = grown;
			t->stalecap = cap;
		}
		if (snprintf(t->stale[t->nstale], sizeof(t->stale[0]), "%llu/%s/%s",
			     (unsigned long long)t->system_id, t->current_dir,
			     entry) < (int)sizeof(t->stale[0])) {
			t->stale_bytes += st->size > 0 ? st->size : 0;
			t->nstale++;
		}
		return WAL_OK;
	}
	snprintf(base, sizeof(base), "%s", entry);
	wal_archive_object_form(base);
	/* anything that is not WAL we did not put there: leave it alone */
	if (wal_name_parse(base, &name, NULL) != WAL_OK || name.kind == WAL_NAME_HISTORY)
		return WAL_OK;
	if (t->count == t->cap) {
		size_t cap = t->cap ? t->cap * 2 : 1024;
		object *grown = realloc(t->objs, cap * sizeof(*grown));
		if (!grown)
			return wal_fail(e, WAL_ENOMEM, "out of memory");
		t->objs = grown;
		t->cap = cap;
	}
	object *o = &t->objs[t->count++];
	snprintf(o->path, sizeof(o->path), "%llu/%s/%s", (unsigned long long)t->system_id,
		 t->current_dir, entry);
	o->name = name;
	o->pos = name_pos(&name);
	o->size = st->size;
	o->mtime = st->mtime;
	return WAL_OK;
}

static wal_err collect_dir(void *arg, const char *entry, const wal_stat *st, wal_error *e)
{
	tree *t = arg;
	if (!st->is_dir || !wal_name_is_dir(entry))
		return WAL_OK;
	if (t->ndirs == t->dircap) {
		size_t cap = t->dircap ? t->dircap * 2 : 64;
		char(*grown)[17] = realloc(t->dirs, cap * sizeof(*grown));
		if (!grown)
			return wal_fail(e, WAL_ENOMEM, "out of memory");
		t->dirs = grown;
		t->dircap = cap;
	}
	memcpy(t->dirs[t->ndirs++], entry, 17);
	return WAL_OK;
}

static int by_pos_desc(const void *a, const void *b)
{
	const object *x = a, *y = b;
	return x->pos < y->pos ? 1 : x->pos > y->pos ? -1 : 0;
}

/* The horizon of --keep-backups: start of the Nth newest backup, or 0 (keep all). */
static uint64_t backups_horizon(const tree *t, int keep, int *found)
{
	object *backups = malloc((t->count + 1) * sizeof(*backups));
	size_t n = 0;
	uint64_t horizon = 0;
	if (!backups)
		return 0;
	for (size_t i = 0; i < t->count; i++)
		if (t->objs[i].name.kind == WAL_NAME_BACKUP)
			backups[n++] = t->objs[i];
	qsort(backups, n, sizeof(*backups), by_pos_desc);
	*found = (int)n;
	if ((size_t)keep <= n)
		horizon = backups[keep - 1].pos;
	free(backups);
	return horizon;
}

/* The horizon of --keep-days: the oldest segment written within the window. */
static uint64_t days_horizon(const tree *t, int days)
{
	time_t cutoff = time(NULL) - (time_t)days * 86400;
	uint64_t oldest_recent = UINT64_MAX, newest = 0;
	for (size_t i = 0; i < t->count; i++) {
		const object *o = &t->objs[i];
		if (o->name.kind == WAL_NAME_BACKUP)
			continue;
		if (o->pos > newest)
			newest = o->pos;
		if (o->mtime >= cutoff && o->pos < oldest_recent)
			oldest_recent = o->pos;
	}
	/* everything is older than the window: still keep the newest segment */
	return oldest_recent != UINT64_MAX ? oldest_recent : newest;
}

/*
 * Step 1: the cluster's whole tree into t, or an error and nothing is
 * removed.  A reachable archive without any cluster, or without this
 * cluster's tree, holds no WAL of it yet: WAL_OK with res->empty set.
 */
static wal_err list_tree(wal_store *store, const wal_config *cfg, const wal_prune_opts *opts,
			 tree *t, wal_prune_result *res, wal_error *e)
{
	char root[32];
	wal_err rc;
	t->system_id = opts->system_id;
	if (!t->system_id) {
		rc = wal_archive_system_id(store, cfg, opts->datadir, &t->system_id, e);
		if (rc == WAL_ENOENT) {
			res->empty = 1; /* a new archive that no cluster has pushed to yet */
			return WAL_OK;
		}
		if (rc != WAL_OK)
			return rc;
	}
	res->system_id = t->system_id;
	snprintf(root, sizeof(root), "%llu", (unsigned long long)t->system_id);
	rc = wal_store_list(store, root, collect_dir, t, e);
	if (rc == WAL_ENOENT) {
		res->empty = 1;
		return WAL_OK;
	}
	for (size_t i = 0; rc == WAL_OK && i < t->ndirs; i++) {
		char dir[64];
		snprintf(dir, sizeof(dir), "%s/%s", root, t->dirs[i]);
		t->current_dir = t->dirs[i];
		rc = wal_store_list(store, dir, collect_file, t, e);
	}
	if (rc == WAL_OK)
		res->empty = t->count == 0;
	return rc;
}

/*
 * Step 2: the most conservative horizon of the options given (UINT64_MAX:
 * none), named in res->horizon as a file: the first segment kept, else the
 * option's name.
 */
static uint64_t choose_horizon(const tree *t, const wal_prune_opts *opts, uint64_t before_pos,
			       wal_prune_result *res)
{
	uint64_t horizon = UINT64_MAX;
	if (opts->before)
		horizon = before_pos;
	if (opts->keep_backups > 0) {
		int found = 0;
		uint64_t h = backups_horizon(t, opts->keep_backups, &found);
		res->backups = found;
		if (h < horizon)
			horizon = h;
	}
	if (opts->keep_days >= 0) {
		uint64_t h = days_horizon(t, opts->keep_days);
		if (h < horizon)
			horizon = h;
	}
	if (horizon == UINT64_MAX || horizon == 0)
		return horizon;
	const object *first_kept = NULL;
	for (size_t i = 0; i < t->count; i++) {
		const object *o = &t->objs[i];
		if (o->pos == horizon &&
		    (!first_kept || o->name.kind < first_kept->name.kind ||
		     (o->name.kind == first_kept->name.kind && o->name.tli < first_kept->name.tli)))
			first_kept = o;
	}
	if (first_kept)
		snprintf(res->horizon, sizeof(res->horizon), "%.24s", first_kept->name.text);
	else if (opts->before)
		snprintf(res->horizon, sizeof(res->horizon), "%s", opts->before);
	else
		snprintf(res->horizon, sizeof(res->horizon), "%08X%08X", (unsigned)(horizon >> 32),
			 (unsigned)horizon);
	return horizon;
}

/*
 * Step 3: removes what sorts before horizon, then temporary files that
 * writers killed long ago left behind, then directories whose every
 * segment is before it.
 */
static wal_err remove_before(wal_store *store, const tree *t, uint64_t horizon,
			     const wal_prune_opts *opts, wal_prune_result *res, wal_error *e)
{
	for (size_t i = 0; i < t->count; i++) {
		const object *o = &t->objs[i];
		if (o->pos >= horizon)
			continue;
		if (!opts->dry_run) {
			wal_err rc = wal_store_remove(store, o->path, e);
			if (rc != WAL_OK && rc != WAL_ENOENT)
				return rc;
		}
		if (opts->on_object)
			opts->on_object(opts->arg, o->path, o->size);
		res->objects++;
		res->bytes += o->size > 0 ? (uint64_t)o->size : 0;
	}
	for (size_t i = 0; i < t->nstale; i++) {
		if (!opts->dry_run && wal_store_remove(store, t->stale[i], NULL) != WAL_OK)
			continue;
		res->stale_tmp++;
	}
	if (res->stale_tmp)
		res->stale_tmp_bytes = (uint64_t)t->stale_bytes;
	for (size_t i = 0; i < t->ndirs && !opts->dry_run; i++) {
		unsigned tli, log;
		if (sscanf(t->dirs[i], "%8X%8X", &tli, &log) != 2)
			continue;
		uint64_t last = ((uint64_t)log << 32) | 0xFFFFFFFFu;
		if (last >= horizon)
			continue;
		char dir[64];
		snprintf(dir, sizeof(dir), "%llu/%s", (unsigned long long)t->system_id, t->dirs[i]);
		/* a leftover temporary file keeps it; that is harmless */
		if (wal_store_remove(store, dir, NULL) == WAL_OK)
			res->dirs++;
	}
	return WAL_OK;
}

wal_err wal_prune(const wal_config *cfg, const wal_prune_opts *opts, wal_prune_result *res,
		  wal_error *e)
{
	wal_store *store = NULL;
	tree t;
	wal_err rc;

	memset(res, 0, sizeof(*res));
	memset(&t, 0, sizeof(t));
	if (!opts->before && opts->keep_backups <= 0 && opts->keep_days < 0)
		return wal_fail(e, WAL_EINVAL,
				"nothing to do: give --before, --keep-backups or --keep-days");

	uint64_t before_pos = 0;
	if (opts->before) {
		wal_name b;
		rc = wal_name_parse(opts->before, &b, e);
		if (rc != WAL_OK)
			return rc;
		if (b.kind == WAL_NAME_HISTORY)
			return wal_fail(e, WAL_EINVAL, "--before %s: want a segment name",
					opts->before);
		before_pos = name_pos(&b);
	}

	rc = wal_store_open(&store, cfg, e);
	if (rc == WAL_ENOENT)
		rc = wal_error_recode(e, WAL_EIO); /* no archive root: a broken setup */
	/* 1. the whole listing, or nothing is removed */
	if (rc == WAL_OK)
		rc = list_tree(store, cfg, opts, &t, res, e);
	/* 2. the horizon, 3. what sorts before it */
	if (rc == WAL_OK && res->system_id)
		rc = remove_before(store, &t, choose_horizon(&t, opts, before_pos, res), opts, res,
				   e);
	free(t.objs);
	free(t.dirs);
	free(t.stale);
	wal_store_close(store);
	return rc;
}
