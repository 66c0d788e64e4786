/*
 * Unit tests for store.h with the local (posix) driver, through the
 * wal_store_* calls: put never replaces and is atomic, get/stat/list/remove
 * report missing objects as WAL_ENOENT, and paths that could escape the
 * archive root are refused.
 */
#include <criterion/criterion.h>
#include <dirent.h>
#include <errno.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "base/config.h"
#include "sys/fileio.h"
#include "store/store.h"
#include "syscall_log.h"

static char base_dir[256]; /* holds root/ and an outside/ directory */
static char root[300];
static wal_config cfg;
static wal_store *store;

static int rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	return remove(path);
}

static void setup_dirs(void)
{
	snprintf(base_dir, sizeof(base_dir), "/tmp/walarchive-unit-store.XXXXXX");
	cr_assert_not_null(mkdtemp(base_dir));
	snprintf(root, sizeof(root), "%s/root", base_dir);
	cr_assert_eq(mkdir(root, 0700), 0);
	wal_config_init(&cfg);
	cfg.archive = strdup(root);
	wal_sys_fault_arm(0, 0, WAL_SYS_COUNT);
}

static void setup(void)
{
	wal_error e;

	setup_dirs();
	cr_assert_eq(wal_store_open(&store, &cfg, &e), WAL_OK, "open %s: %s", root, e.msg);
	cr_assert_not_null(store);
}

static void teardown(void)
{
	wal_sys_fault_arm(0, 0, WAL_SYS_COUNT);
	wal_store_close(store);
	store = NULL;
	wal_config_free(&cfg);
	nftw(base_dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

static void fill(unsigned char *buf, size_t len, uint32_t seed)
{
	uint32_t x = seed * 2654435761u + 5;
	for (size_t i = 0; i < len; i++) {
		x ^= x << 13;
		x ^= x >> 17;
		x ^= x << 5;
		buf[i] = (unsigned char)x;
	}
}

static wal_err put_bytes(const char *path, const void *data, size_t len, wal_error *e)
{
	wal_mem_source src;

	wal_mem_source_init(&src, data, len);
	wal_error_clear(e);
	return wal_store_put(store, path, &src.base, e);
}

static wal_err get_bytes(const char *path, wal_mem_sink *sink, wal_error *e)
{
	wal_mem_sink_init(sink, 0);
	wal_error_clear(e);
	return wal_store_get(store, path, &sink->base, e);
}

static void assert_object(const char *path, const void *data, size_t len)
{
	wal_mem_sink sink;
	wal_error e;

	cr_assert_eq(get_bytes(path, &sink, &e), WAL_OK, "get %s: %s", path, e.msg);
	cr_assert_eq(sink.len, len, "%s: %zu bytes, expected %zu", path, sink.len, len);
	cr_assert(len == 0 || memcmp(sink.buf, data, len) == 0, "%s: content differs", path);
	free(sink.buf);
}

/* Number of entries in the directory root/rel other than "." and "..". */
static int count_files(const char *rel)
{
	char path[600];
	DIR *d;
	struct dirent *de;
	int n = 0;

	snprintf(path, sizeof(path), "%s/%s", root, rel);
	d = opendir(path);
	if (!d)
		return -1;
	while ((de = readdir(d)))
		if (strcmp(de->d_name, ".") && strcmp(de->d_name, ".."))
			n++;
	closedir(d);
	return n;
}

Test(store_posix, put_get_roundtrip, .init = setup, .fini = teardown)
{
	size_t sizes[] = { 0, 1, WAL_IO_CHUNK + 1, 3 * WAL_IO_CHUNK };
	for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
		unsigned char *data = malloc(sizes[i] + 1);
		char path[64];
		wal_error e;

		fill(data, sizes[i], (uint32_t)i);
		snprintf(path, sizeof(path), "7712300585176830670/0000000100000000/obj%zu", i);
		cr_assert_eq(put_bytes(path, data, sizes[i], &e), WAL_OK, "put %s: %s", path,
			     e.msg);
		assert_object(path, data, sizes[i]);
		free(data);
	}
	cr_assert_eq(count_files("7712300585176830670/0000000100000000"), 4,
		     "temporary files left beside the objects");
}

Test(store_posix, put_creates_parents_and_mode, .init = setup, .fini = teardown)
{
	char path[600];
	struct stat st;
	wal_error e;

	cr_assert_eq(put_bytes("a/b/c/d", "x", 1, &e), WAL_OK, "%s", e.msg);
	snprintf(path, sizeof(path), "%s/a/b/c/d", root);
	cr_assert_eq(stat(path, &st), 0, "object not stored under the root");
	cr_assert(S_ISREG(st.st_mode));
	cr_assert_eq(st.st_mode & 0777, 0600, "file_mode default 0600, got %o", st.st_mode & 0777);
}

Test(store_posix, put_honours_file_mode, .init = setup_dirs, .fini = teardown)
{
	char path[600];
	struct stat st;
	wal_error e;

	cfg.file_mode = 0640;
	cr_assert_eq(wal_store_open(&store, &cfg, &e), WAL_OK, "%s", e.msg);
	cr_assert_eq(put_bytes("obj", "x", 1, &e), WAL_OK, "%s", e.msg);
	snprintf(path, sizeof(path), "%s/obj", root);
	cr_assert_eq(stat(path, &st), 0);
	cr_assert_eq(st.st_mode & 0777, 0640, "got %o", st.st_mode & 0777);
}

Test(store_posix, put_never_replaces, .init = setup, .fini = teardown)
{
	wal_error e;
	wal_stat before, after;

	cr_assert_eq(put_bytes("d/obj", "original", 8, &e), WAL_OK, "%s", e.msg);
	cr_assert_eq(wal_store_stat(store, "d/obj", &before, &e), WAL_OK);
	cr_assert_eq(put_bytes("d/obj", "different!", 10, &e), WAL_EEXIST);
	cr_assert(e.msg[0]);
	assert_object("d/obj", "original", 8);
	cr_assert_eq(put_bytes("d/obj", "original", 8, &e), WAL_EEXIST,
		     "put of identical bytes must still say EEXIST");
	assert_object("d/obj", "original", 8);
	cr_assert_eq(wal_store_stat(store, "d/obj", &after, &e), WAL_OK);
	cr_assert_eq(after.size, 8);
	cr_assert_eq(count_files("d"), 1, "temporary file left behind");
}

Test(store_posix, stat, .init = setup, .fini = teardown)
{
	wal_stat st;
	wal_error e;
	time_t now = time(NULL);

	cr_assert_eq(put_bytes("d/obj", "12345", 5, &e), WAL_OK, "%s", e.msg);
	cr_assert_eq(wal_store_stat(store, "d/obj", &st, &e), WAL_OK, "%s", e.msg);
	cr_assert_eq(st.size, 5);
	cr_assert_eq(st.is_dir, 0);
	cr_assert(st.mtime >= now - 5 && st.mtime <= now + 5, "mtime %ld, now %ld", (long)st.mtime,
		  (long)now);
	cr_assert_eq(wal_store_stat(store, "d", &st, &e), WAL_OK, "%s", e.msg);
	cr_assert_eq(st.is_dir, 1);
	cr_assert_eq(wal_store_stat(store, "d/missing", &st, &e), WAL_ENOENT);
	cr_assert_eq(wal_store_stat(store, "nodir/missing", &st, &e), WAL_ENOENT);
}

Test(store_posix, get_missing, .init = setup, .fini = teardown)
{
	wal_mem_sink sink;
	wal_error e;

	cr_assert_eq(get_bytes("missing", &sink, &e), WAL_ENOENT);
	cr_assert(e.msg[0]);
	cr_assert_eq(sink.len, 0);
	free(sink.buf);
	cr_assert_eq(get_bytes("no/such/dir/obj", &sink, &e), WAL_ENOENT);
	free(sink.buf);
}

Test(store_posix, get_sink_error_passes_through, .init = setup, .fini = teardown)
{
	size_t len = 3 * WAL_IO_CHUNK;
	unsigned char *data = malloc(len);
	wal_mem_sink sink;
	wal_error e;

	fill(data, len, 9);
	cr_assert_eq(put_bytes("big", data, len, &e), WAL_OK, "%s", e.msg);
	wal_mem_sink_init(&sink, WAL_IO_CHUNK);
	cr_assert_eq(wal_store_get(store, "big", &sink.base, &e), WAL_ENOMEM);
	free(sink.buf);
	free(data);
}

typedef struct listing {
	int n;
	char names[32][64];
	int is_dir[32];
	int64_t size[32];
	int stop_after;
} listing;

static wal_err collect(void *arg, const char *name, const wal_stat *st, wal_error *e)
{
	listing *l = arg;
	cr_assert_lt(l->n, 32);
	cr_assert_null(strchr(name, '/'), "listed name with '/': %s", name);
	snprintf(l->names[l->n], sizeof(l->names[0]), "%s", name);
	l->is_dir[l->n] = st->is_dir;
	l->size[l->n] = st->size;
	l->n++;
	if (l->stop_after && l->n >= l->stop_after)
		return wal_fail(e, WAL_EAMBIGUOUS, "stop here");
	return WAL_OK;
}

static int find(const listing *l, const char *name)
{
	for (int i = 0; i < l->n; i++)
		if (!strcmp(l->names[i], name))
			return i;
	return -1;
}

Test(store_posix, list, .init = setup, .fini = teardown)
{
	listing l = { 0 };
	wal_error e;
	int i;

	cr_assert_eq(put_bytes("top", "abc", 3, &e), WAL_OK, "%s", e.msg);
	cr_assert_eq(put_bytes("d/one", "1", 1, &e), WAL_OK, "%s", e.msg);
	cr_assert_eq(put_bytes("d/two", "22", 2, &e), WAL_OK, "%s", e.msg);
	cr_assert_eq(put_bytes("d/sub/three", "333", 3, &e), WAL_OK, "%s", e.msg);

	cr_assert_eq(wal_store_list(store, "", collect, &l, &e), WAL_OK, "%s", e.msg);
	cr_assert_eq(l.n, 2, "root lists %d entries", l.n);
	cr_assert_geq(i = find(&l, "top"), 0);
	cr_assert_eq(l.is_dir[i], 0);
	cr_assert_eq(l.size[i], 3);
	cr_assert_geq(i = find(&l, "d"), 0);
	cr_assert_eq(l.is_dir[i], 1);

	memset(&l, 0, sizeof(l));
	cr_assert_eq(wal_store_list(store, "d", collect, &l, &e), WAL_OK, "%s", e.msg);
	cr_assert_eq(l.n, 3, "d lists %d entries", l.n);
	cr_assert_geq(i = find(&l, "two"), 0);
	cr_assert_eq(l.size[i], 2);
	cr_assert_geq(i = find(&l, "sub"), 0);
	cr_assert_eq(l.is_dir[i], 1);

	memset(&l, 0, sizeof(l));
	cr_assert_eq(wal_store_list(store, "missing", collect, &l, &e), WAL_ENOENT);
	cr_assert_eq(l.n, 0);

	/* the callback's error stops the listing and comes back */
	memset(&l, 0, sizeof(l));
	l.stop_after = 1;
	cr_assert_eq(wal_store_list(store, "d", collect, &l, &e), WAL_EAMBIGUOUS);
	cr_assert_eq(l.n, 1);
}

Test(store_posix, remove, .init = setup, .fini = teardown)
{
	wal_stat st;
	wal_error e;

	cr_assert_eq(put_bytes("d/obj", "x", 1, &e), WAL_OK, "%s", e.msg);
	cr_assert_eq(put_bytes("d2/keep", "y", 1, &e), WAL_OK, "%s", e.msg);
	cr_assert_neq(wal_store_remove(store, "d2", &e), WAL_OK,
		      "removing a non-empty directory must fail");
	assert_object("d2/keep", "y", 1);
	cr_assert_eq(wal_store_remove(store, "d/obj", &e), WAL_OK, "%s", e.msg);
	cr_assert_eq(wal_store_stat(store, "d/obj", &st, &e), WAL_ENOENT);
	cr_assert_eq(wal_store_remove(store, "d/obj", &e), WAL_ENOENT);
	cr_assert_eq(wal_store_remove(store, "d", &e), WAL_OK, "empty directory: %s", e.msg);
	cr_assert_eq(wal_store_stat(store, "d", &st, &e), WAL_ENOENT);
	cr_assert_eq(wal_store_remove(store, "never/was", &e), WAL_ENOENT);
}

Test(store_posix, open_missing_root, .init = setup_dirs, .fini = teardown)
{
	wal_config c2;
	wal_error e;
	char missing[400], file_root[400];
	struct stat st;

	snprintf(missing, sizeof(missing), "%s/missing", base_dir);
	wal_config_init(&c2);
	c2.archive = strdup(missing);
	cr_assert_eq(wal_store_open(&store, &c2, &e), WAL_ENOENT, "missing root");
	cr_assert_not_null(strstr(e.msg, missing), "message names the root: %s", e.msg);
	cr_assert_eq(stat(missing, &st), -1, "open created the root");
	wal_store_close(store);
	store = NULL;
	free(c2.archive);

	snprintf(missing, sizeof(missing), "file://%s/missing", base_dir);
	c2.archive = strdup(missing);
	cr_assert_eq(wal_store_open(&store, &c2, &e), WAL_ENOENT, "missing file:// root");
	wal_store_close(store);
	store = NULL;
	free(c2.archive);

	/* a regular file where the root should be */
	snprintf(file_root, sizeof(file_root), "%s/plainfile", base_dir);
	FILE *f = fopen(file_root, "w");
	cr_assert_not_null(f);
	fclose(f);
	c2.archive = strdup(file_root);
	cr_assert_neq(wal_store_open(&store, &c2, &e), WAL_OK, "a file as archive root");
	wal_store_close(store);
	store = NULL;
	wal_config_free(&c2);
}

Test(store_posix, open_file_url, .init = setup_dirs, .fini = teardown)
{
	char url[400];
	wal_error e;

	free(cfg.archive);
	snprintf(url, sizeof(url), "file://%s", root);
	cfg.archive = strdup(url);
	cr_assert_eq(wal_store_open(&store, &cfg, &e), WAL_OK, "%s", e.msg);
	cr_assert_eq(put_bytes("obj", "abc", 3, &e), WAL_OK, "%s", e.msg);
	char path[600];
	snprintf(path, sizeof(path), "%s/obj", root);
	cr_assert_eq(access(path, F_OK), 0);
}

Test(store_posix, open_unset_or_unknown, .init = setup_dirs, .fini = teardown)
{
	wal_config c2;
	wal_error e;

	wal_config_init(&c2);
	cr_assert_eq(wal_store_open(&store, &c2, &e), WAL_ECONFIG, "archive unset");
	c2.archive = strdup("ftp://host/x");
	cr_assert_eq(wal_store_open(&store, &c2, &e), WAL_ECONFIG, "unknown scheme");
	wal_config_free(&c2);
	store = NULL;
}

static const char *bad_paths[] = {
	"../x",	  "..",	  ".",	 "/abs", "/",  "a//b", "a/./b",
	"a/../b", "a/..", "./a", "a/.",	 "a/", "",     "../../etc/passwd",
};

Test(store_posix, invalid_paths_refused, .init = setup, .fini = teardown)
{
	for (size_t i = 0; i < sizeof(bad_paths) / sizeof(bad_paths[0]); i++) {
		const char *p = bad_paths[i];
		wal_mem_sink sink;
		wal_stat st;
		wal_error e;

		cr_assert_eq(wal_store_path_valid(p, &e), WAL_EINVAL, "\"%s\" valid", p);
		cr_assert_eq(put_bytes(p, "x", 1, &e), WAL_EINVAL, "put \"%s\"", p);
		cr_assert_eq(get_bytes(p, &sink, &e), WAL_EINVAL, "get \"%s\"", p);
		free(sink.buf);
		cr_assert_eq(wal_store_stat(store, p, &st, &e), WAL_EINVAL, "stat \"%s\"", p);
		cr_assert_eq(wal_store_remove(store, p, &e), WAL_EINVAL, "remove \"%s\"", p);
		if (p[0]) {
			listing l = { 0 };
			cr_assert_eq(wal_store_list(store, p, collect, &l, &e), WAL_EINVAL,
				     "list \"%s\"", p);
		}
	}
	/* nothing escaped the root */
	char outside[400];
	snprintf(outside, sizeof(outside), "%s/x", base_dir);
	cr_assert_eq(access(outside, F_OK), -1);
	cr_assert_eq(count_files(""), 0);
}

/* store.h: "every driver refuses others", also when called directly. */
Test(store_posix, driver_refuses_invalid_paths, .init = setup, .fini = teardown)
{
	for (size_t i = 0; i < sizeof(bad_paths) / sizeof(bad_paths[0]); i++) {
		const char *p = bad_paths[i];
		wal_mem_source src;
		wal_stat st;
		wal_error e;

		if (!p[0])
			continue;
		wal_mem_source_init(&src, "x", 1);
		wal_error_clear(&e);
		wal_err rc = store->ops->put(store, p, &src.base, &e);
		cr_assert_eq(rc, WAL_EINVAL, "driver put \"%s\": %s (%s)", p, wal_err_name(rc),
			     e.msg);
		cr_assert_eq(store->ops->stat(store, p, &st, &e), WAL_EINVAL, "stat \"%s\"", p);
		cr_assert_eq(store->ops->remove(store, p, &e), WAL_EINVAL, "remove \"%s\"", p);
	}
	char outside[400];
	snprintf(outside, sizeof(outside), "%s/x", base_dir);
	cr_assert_eq(access(outside, F_OK), -1);
}

Test(store_posix, very_long_names_refused, .init = setup, .fini = teardown)
{
	char component[400], path[5000];
	wal_stat st;
	wal_error e;

	memset(component, 'a', 300);
	component[300] = '\0';
	cr_assert_eq(put_bytes(component, "x", 1, &e), WAL_EINVAL, "300-byte name: %s",
		     wal_err_name(e.code));
	cr_assert_eq(wal_store_stat(store, component, &st, &e), WAL_EINVAL);

	path[0] = '\0';
	for (int i = 0; i < 40; i++)
		strcat(path, "012345678901234567890123456789012345678901234567890123456789012345678"
			     "9012345678901234567890123456789/");
	strcat(path, "obj");
	cr_assert_eq(put_bytes(path, "x", 1, &e), WAL_EINVAL, "4 KiB path: %s",
		     wal_err_name(e.code));
	cr_assert_eq(count_files(""), 0);
}

Test(store_posix, control_characters_refused, .init = setup, .fini = teardown)
{
	wal_error e;

	cr_assert_eq(put_bytes("a\nb", "x", 1, &e), WAL_EINVAL);
	cr_assert_eq(put_bytes("a\tb", "x", 1, &e), WAL_EINVAL);
}

/* A source that fails midway: nothing appears under the name. */
typedef struct failing_source {
	wal_source base;
	int reads;
} failing_source;

static wal_err failing_read(wal_source *s, void *buf, size_t cap, size_t *got, wal_error *e)
{
	failing_source *f = (failing_source *)s;
	if (++f->reads >= 3)
		return wal_fail(e, WAL_EIO, "test source: read error");
	memset(buf, 'q', cap);
	*got = cap;
	return WAL_OK;
}

static wal_err failing_rewind(wal_source *s, wal_error *e)
{
	(void)e;
	((failing_source *)s)->reads = 0;
	return WAL_OK;
}

Test(store_posix, put_failure_leaves_nothing, .init = setup, .fini = teardown)
{
	failing_source src = { .base = { failing_read, failing_rewind, -1 } };
	wal_stat st;
	wal_error e;

	cr_assert_eq(wal_store_put(store, "d/obj", &src.base, &e), WAL_EIO);
	cr_assert_eq(wal_store_stat(store, "d/obj", &st, &e), WAL_ENOENT,
		     "partial object under the final name");
}

/* Disk full or I/O error at any call of a put: never a partial object. */
Test(store_posix, put_fault_walk, .init = setup, .fini = teardown)
{
	size_t len = 2 * WAL_IO_CHUNK + 100;
	unsigned char *data = malloc(len);
	wal_error e;
	long total;
	int errs[] = { ENOSPC, EIO };
	wal_err codes[] = { WAL_ENOSPC, WAL_EIO };

	fill(data, len, 21);
	cr_assert_eq(put_bytes("warm/up", "x", 1, &e), WAL_OK, "%s", e.msg);
	wal_sys_fault_arm(0, 0, WAL_SYS_COUNT);
	cr_assert_eq(put_bytes("d/first", data, len, &e), WAL_OK, "%s", e.msg);
	total = wal_sys_fault_calls();
	cr_assert_gt(total, 0, "the posix driver does not go through the fault seam");
	for (size_t k = 0; k < 2; k++) {
		for (long n = 1; n <= total + 2; n++) {
			char path[64];
			wal_mem_sink sink;
			wal_err rc;

			snprintf(path, sizeof(path), "d/obj-%zu-%ld", k, n);
			wal_sys_fault_arm(n, errs[k], WAL_SYS_COUNT);
			rc = put_bytes(path, data, len, &e);
			wal_sys_fault_arm(0, 0, WAL_SYS_COUNT);
			if (rc != WAL_OK)
				cr_assert_eq(rc, codes[k], "fault %ld: %s (%s)", n,
					     wal_err_name(rc), e.msg);
			wal_err g = get_bytes(path, &sink, &e);
			if (g == WAL_OK)
				cr_assert(sink.len == len && memcmp(sink.buf, data, len) == 0,
					  "fault %ld: partial object (%zu of %zu bytes)", n,
					  sink.len, len);
			else
				cr_assert_eq(g, WAL_ENOENT);
			if (rc == WAL_OK)
				cr_assert_eq(g, WAL_OK, "fault %ld: put said OK, object missing",
					     n);
			free(sink.buf);
		}
	}
	free(data);
}

Test(store_posix, tmp_name)
{
	char a[256], b[256];

	wal_store_tmp_name("7712300585176830670/0000000100000000/000000010000000000000001.lz4", a,
			   sizeof(a));
	wal_store_tmp_name("7712300585176830670/0000000100000000/000000010000000000000001.lz4", b,
			   sizeof(b));
	const char *prefix = "7712300585176830670/0000000100000000/.000000010000000000000001.lz4.";
	cr_assert_eq(strncmp(a, prefix, strlen(prefix)), 0, "tmp name %s", a);
	cr_assert_str_eq(a + strlen(a) - 4, ".tmp", "tmp name %s", a);
	cr_assert_gt(strlen(a), strlen(prefix) + 4, "no random part: %s", a);
	cr_assert_str_neq(a, b, "two uploads got the same temporary name");
	cr_assert_eq(wal_store_path_valid(a, NULL), WAL_OK, "tmp name %s not a valid path", a);
}

Test(store_posix, get_or_list_wrong_type, .init = setup, .fini = teardown)
{
	wal_mem_sink sink;
	listing l = { 0 };
	wal_error e;

	cr_assert_eq(put_bytes("d/obj", "x", 1, &e), WAL_OK, "%s", e.msg);
	cr_assert_neq(get_bytes("d", &sink, &e), WAL_OK, "get of a directory");
	free(sink.buf);
	cr_assert_neq(wal_store_list(store, "d/obj", collect, &l, &e), WAL_OK, "list of a file");
}

/* Counts the entries of a directory outside the store (other than . and ..). */
static int count_at(const char *dir)
{
	DIR *d = opendir(dir);
	struct dirent *de;
	int n = 0;
	if (!d)
		return -1;
	while ((de = readdir(d)))
		if (strcmp(de->d_name, ".") && strcmp(de->d_name, ".."))
			n++;
	closedir(d);
	return n;
}

static wal_err count_entry(void *arg, const char *entry, const wal_stat *st, wal_error *e)
{
	(void)entry;
	(void)st;
	(void)e;
	(*(int *)arg)++;
	return WAL_OK;
}

/* A link inside the tree is never followed: get, stat, list and remove act on
 * the link or refuse; what it points at is untouched. */
Test(store_posix, links_inside_not_followed, .init = setup, .fini = teardown)
{
	char outside[400], link[600], file[600];
	wal_mem_sink sink;
	wal_stat st;
	wal_error e;
	int n = 0;

	snprintf(outside, sizeof(outside), "%s/outside", base_dir);
	cr_assert_eq(mkdir(outside, 0700), 0);
	snprintf(file, sizeof(file), "%s/000000010000000000000001", outside);
	FILE *f = fopen(file, "w");
	cr_assert_not_null(f);
	fputs("outside", f);
	fclose(f);
	cr_assert_eq(put_bytes("1/0000000100000000/000000010000000000000002", "x", 1, &e), WAL_OK);
	/* a directory-like link, and a file-like link, inside the tree */
	snprintf(link, sizeof(link), "%s/1/0000000100000001", root);
	cr_assert_eq(symlink(outside, link), 0);
	snprintf(link, sizeof(link), "%s/1/0000000100000000/000000010000000000000003", root);
	cr_assert_eq(symlink(file, link), 0);

	cr_assert_neq(get_bytes("1/0000000100000001/000000010000000000000001", &sink, &e), WAL_OK);
	cr_assert_neq(e.code, WAL_ENOENT, "a link on the way is not \"not in the archive\"");
	cr_assert(strstr(e.msg, "symbolic link"), "%s", e.msg);
	free(sink.buf);
	cr_assert_neq(get_bytes("1/0000000100000000/000000010000000000000003", &sink, &e), WAL_OK);
	free(sink.buf);
	cr_assert_neq(wal_store_stat(store, "1/0000000100000001/000000010000000000000001", &st, &e),
		      WAL_OK);
	cr_assert_neq(wal_store_stat(store, "1/0000000100000000/000000010000000000000003", &st, &e),
		      WAL_OK);
	cr_assert_neq(wal_store_list(store, "1/0000000100000001", count_entry, &n, &e), WAL_OK);
	cr_assert_eq(n, 0, "nothing behind the link is listed");
	cr_assert_neq(wal_store_remove(store, "1/0000000100000001/000000010000000000000001", &e),
		      WAL_OK);
	cr_assert_eq(count_at(outside), 1, "the file behind the link is still there");
	/* removing a link removes the link */
	cr_assert_eq(wal_store_remove(store, "1/0000000100000000/000000010000000000000003", &e),
		     WAL_OK, "%s", e.msg);
	cr_assert_eq(wal_store_remove(store, "1/0000000100000001", &e), WAL_OK, "%s", e.msg);
	cr_assert_eq(count_at(outside), 1);
	cr_assert_eq(access(file, F_OK), 0);
	/* the real objects still work */
	assert_object("1/0000000100000000/000000010000000000000002", "x", 1);
}

/* The archive root may be a link the administrator made. */
Test(store_posix, root_may_be_a_link, .init = setup_dirs, .fini = teardown)
{
	char link[400];
	wal_stat st;
	wal_error e;
	int n = 0;

	snprintf(link, sizeof(link), "%s/root-link", base_dir);
	cr_assert_eq(symlink(root, link), 0);
	free(cfg.archive);
	cfg.archive = strdup(link);
	cr_assert_eq(wal_store_open(&store, &cfg, &e), WAL_OK, "%s", e.msg);
	cr_assert_eq(put_bytes("1/a", "abc", 3, &e), WAL_OK, "%s", e.msg);
	assert_object("1/a", "abc", 3);
	cr_assert_eq(wal_store_stat(store, "1/a", &st, &e), WAL_OK, "%s", e.msg);
	cr_assert_eq(st.size, 3);
	cr_assert_eq(wal_store_list(store, "", count_entry, &n, &e), WAL_OK, "%s", e.msg);
	cr_assert_eq(n, 1);
	cr_assert_eq(wal_store_remove(store, "1/a", &e), WAL_OK, "%s", e.msg);
}

/* Whether the log holds an fsync of the directory path. */
static int fsynced(const char *path)
{
	for (int i = 0; i < syslog_rec.n; i++)
		if (syslog_rec.ev[i].kind == WAL_SYS_FSYNC &&
		    strcmp(syslog_rec.ev[i].fd_path, path) == 0)
			return 1;
	return 0;
}

/*
 * The directories above an object's are fsynced while that directory is
 * young (an earlier process may have made it and died before syncing them),
 * and no longer once it is settled: on ext4 each fsync of a clean directory
 * still flushes the disk's cache.
 */
Test(store_posix, put_syncs_the_parents_of_a_young_directory_only, .init = setup, .fini = teardown)
{
	char cluster[600], object[600];
	wal_error e;

	snprintf(cluster, sizeof(cluster), "%s/c", root);
	cr_assert_eq(put_bytes("c/t/obj1", "1", 1, &e), WAL_OK, "%s", e.msg);

	/* c/t was made just now */
	syslog_start(NULL);
	cr_assert_eq(put_bytes("c/t/obj2", "2", 1, &e), WAL_OK, "%s", e.msg);
	syslog_stop();
	cr_assert(fsynced(cluster) && fsynced(root), "young directory, parents not synced:\n%s",
		  syslog_dump(0, syslog_rec.n));

	/* every entry settled: only the object and its own directory */
	wal_posix_settled_seconds = -1;
	snprintf(object, sizeof(object), "%s/c/t/obj3", root);
	syslog_start(object);
	cr_assert_eq(put_bytes("c/t/obj3", "3", 1, &e), WAL_OK, "%s", e.msg);
	syslog_stop();
	wal_posix_settled_seconds = 60;
	cr_assert(!fsynced(cluster) && !fsynced(root), "settled directory, parents synced:\n%s",
		  syslog_dump(0, syslog_rec.n));
	syslog_assert_durable(object, 1);
}
