/*
 * walcheck's listing of a cluster's tree: the root once, each 16-hex
 * directory once (over the network, one request each), and the small
 * objects it must read: walarchive.info and the history files.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "archive/archive.h"
#include "archive/check.h"
#include "io/compress.h"
#include "io/stream.h"

typedef struct lister {
	wal_check_tree *tree;
	uint64_t system_id;
	const char *dir; /* the 16-hex directory being listed, or NULL at the root */
	char (*dirs)[17];
	size_t ndirs, dircap;
} lister;

static wal_err add_object(lister *l, const char *entry, const wal_stat *st, wal_error *e)
{
	char base[WAL_NAME_MAX + 8];
	wal_name name;
	snprintf(base, sizeof(base), "%s", entry);
	int framed = wal_archive_object_form(base);
	/* temporary files (a dot first) and anything else that is not WAL: not ours to judge */
	if (entry[0] == '.' || wal_name_parse(base, &name, NULL) != WAL_OK)
		return WAL_OK;
	/* a history file belongs at the root, everything else in its 16-hex directory */
	if ((name.kind == WAL_NAME_HISTORY) != (l->dir == NULL))
		return WAL_OK;
	wal_check_tree *t = l->tree;
	if (t->count == t->cap) {
		size_t cap = t->cap ? t->cap * 2 : 1024;
		wal_check_object *grown = realloc(t->objs, cap * sizeof(*grown));
		if (!grown)
			return wal_fail(e, WAL_ENOMEM, "out of memory");
		t->objs = grown;
		t->cap = cap;
	}
	wal_check_object *o = &t->objs[t->count++];
	memset(o, 0, sizeof(*o));
	o->name = name;
	o->framed = framed;
	o->size = st->size;
	o->mtime = st->mtime;
	if (l->dir)
		snprintf(o->path, sizeof(o->path), "%" PRIu64 "/%s/%s", l->system_id, l->dir,
			 entry);
	else
		snprintf(o->path, sizeof(o->path), "%" PRIu64 "/%s", l->system_id, entry);
	t->bytes += st->size > 0 ? st->size : 0;
	return WAL_OK;
}

static wal_err on_root(void *arg, const char *entry, const wal_stat *st, wal_error *e)
{
	lister *l = arg;
	if (!st->is_dir) {
		if (strcmp(entry, WAL_INFO_NAME) == 0)
			l->tree->have_info = 1;
		return add_object(l, entry, st, e);
	}
	if (!wal_name_is_dir(entry))
		return WAL_OK;
	if (l->ndirs == l->dircap) {
		size_t cap = l->dircap ? l->dircap * 2 : 64;
		char(*grown)[17] = realloc(l->dirs, cap * sizeof(*grown));
		if (!grown)
			return wal_fail(e, WAL_ENOMEM, "out of memory");
		l->dirs = grown;
		l->dircap = cap;
	}
	memcpy(l->dirs[l->ndirs++], entry, 17);
	return WAL_OK;
}

static wal_err on_dir(void *arg, const char *entry, const wal_stat *st, wal_error *e)
{
	return st->is_dir ? WAL_OK : add_object(arg, entry, st, e);
}

/* wal_seg_size from walarchive.info; the default when it cannot be read. */
static uint32_t info_seg_size(wal_store *store, uint64_t system_id)
{
	char path[64];
	wal_mem_sink sink;
	uint32_t seg_size = WAL_SEG_SIZE_DEFAULT;
	snprintf(path, sizeof(path), "%" PRIu64 "/" WAL_INFO_NAME, system_id);
	wal_mem_sink_init(&sink, 64 * 1024);
	if (wal_store_get(store, path, &sink.base, NULL) == WAL_OK &&
	    sink.base.write(&sink.base, "", 1, NULL) == WAL_OK) {
		const char *at = strstr((const char *)sink.buf, "wal_seg_size = ");
		unsigned long v = at ? strtoul(at + 15, NULL, 10) : 0;
		if (wal_seg_size_valid(v))
			seg_size = (uint32_t)v;
	}
	free(sink.buf);
	return seg_size;
}

wal_err wal_check_list_tree(wal_store *store, uint64_t system_id, wal_check_tree *tree,
			    wal_error *e)
{
	lister l = { .tree = tree, .system_id = system_id };
	char root[32];
	memset(tree, 0, sizeof(*tree));
	snprintf(root, sizeof(root), "%" PRIu64, system_id);
	wal_err rc = wal_store_list(store, root, on_root, &l, e);
	for (size_t i = 0; rc == WAL_OK && i < l.ndirs; i++) {
		char dir[64];
		snprintf(dir, sizeof(dir), "%s/%s", root, l.dirs[i]);
		l.dir = l.dirs[i];
		rc = wal_store_list(store, dir, on_dir, &l, e);
		/* a directory walprune removed meanwhile is simply empty */
		if (rc == WAL_ENOENT)
			rc = WAL_OK;
		tree->dirs++;
	}
	free(l.dirs);
	if (rc == WAL_OK && tree->have_info)
		tree->seg_size = info_seg_size(store, system_id);
	else if (rc == WAL_OK)
		tree->seg_size = WAL_SEG_SIZE_DEFAULT;
	if (rc != WAL_OK)
		wal_check_tree_free(tree);
	return rc;
}

void wal_check_tree_free(wal_check_tree *tree)
{
	free(tree->objs);
	tree->objs = NULL;
	tree->count = tree->cap = 0;
}

wal_err wal_check_read_text(wal_store *store, const wal_check_object *obj, uint64_t system_id,
			    const wal_age_keys *ids, char **text, wal_error *e)
{
	wal_mem_sink sink;
	uint32_t seg_size;
	*text = NULL;
	wal_mem_sink_init(&sink, 0);
	wal_err rc = wal_archive_restore(store, obj->path, obj->framed, &obj->name, system_id, 0,
					 ids, &sink.base, &seg_size, e);
	if (rc == WAL_OK)
		rc = sink.base.write(&sink.base, "", 1, e);
	if (rc == WAL_OK)
		*text = (char *)sink.buf;
	else
		free(sink.buf);
	return rc;
}
