/*
 * Unit tests for walcheck: the continuity of made-up listings along
 * made-up timeline histories (a switch, the parent's segments past the
 * switch point, a missing history file, --from, PostgreSQL's position), the
 * history parser, the JSON writer's escaping; and, on a local archive, the
 * probe, the tree's listing and the deep verification.
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "archive/check.h"
#include "check/json.h"
#include "io/compress.h"
#include "io/stream.h"

#define SEG (16u << 20)
#define LSN(seg) ((uint64_t)(seg)*SEG)

/* Segments first..last of tli appended to segs. */
static size_t add_run(wal_check_seg *segs, size_t n, uint32_t tli, uint64_t first, uint64_t last)
{
	for (uint64_t s = first; s <= last; s++)
		segs[n++] = (wal_check_seg){ tli, s };
	return n;
}

static wal_history history(uint32_t tli, const char *text)
{
	wal_history h;
	cr_assert_eq(wal_history_parse(tli, text, &h, NULL), WAL_OK);
	return h;
}

static void assert_gap(const wal_continuity *c, size_t i, uint32_t tli, uint64_t first,
		       uint64_t last)
{
	cr_assert_lt(i, c->ngaps, "gap %zu of %zu", i, c->ngaps);
	cr_assert_eq(c->gaps[i].kind, WAL_GAP_SEGMENTS);
	cr_assert_eq(c->gaps[i].tli, tli, "gap %zu timeline %u", i, c->gaps[i].tli);
	cr_assert_eq(c->gaps[i].first, first, "gap %zu first %llu", i,
		     (unsigned long long)c->gaps[i].first);
	cr_assert_eq(c->gaps[i].last, last, "gap %zu last %llu", i,
		     (unsigned long long)c->gaps[i].last);
}

Test(history, parses_and_refuses)
{
	wal_history h = history(3, "1\t0/5000000\tno recovery target specified\n\n"
				   "# comment\n2\t0/9000028\tat restore point \"x\"\n");
	cr_assert_eq(h.count, 2);
	cr_assert_eq(h.entries[0].tli, 1);
	cr_assert_eq(h.entries[0].end_lsn, 0x5000000);
	cr_assert_eq(h.entries[1].tli, 2);
	cr_assert_eq(h.entries[1].end_lsn, 0x9000028);
	wal_error e;
	cr_assert_eq(wal_history_parse(2, "garbage\n", &h, &e), WAL_EINVAL);
	cr_assert(strstr(e.msg, "00000002.history: line 1"), "%s", e.msg);
	cr_assert_eq(wal_history_parse(2, "2\t0/1\tself\n", &h, NULL), WAL_EINVAL);
	cr_assert_eq(wal_history_parse(3, "2\t0/9\tx\n1\t0/5\ty\n", &h, NULL), WAL_EINVAL);
	cr_assert_eq(wal_history_parse(2, "1\t1/0\tx\n", &h, NULL), WAL_OK);
	cr_assert_eq(h.entries[0].end_lsn, 1ull << 32);
}

Test(continuity, one_timeline_complete_and_with_a_gap)
{
	wal_check_seg segs[64];
	size_t n = add_run(segs, 0, 1, 1, 10);
	wal_continuity_in in = { .seg_size = SEG, .segs = segs, .nsegs = n };
	wal_continuity c;
	cr_assert_eq(wal_continuity_check(&in, &c, NULL), WAL_OK);
	cr_assert_eq(c.target_tli, 1);
	cr_assert_eq(c.ngaps, 0);
	cr_assert_eq(c.needed, 10);
	cr_assert_eq(c.present, 10);
	cr_assert_eq(c.nranges, 1);
	cr_assert_eq(c.start_from, WAL_START_OLDEST);
	wal_continuity_free(&c);

	/* segments 5 and 6 removed by hand */
	n = add_run(segs, 0, 1, 1, 4);
	n = add_run(segs, n, 1, 7, 10);
	in.nsegs = n;
	cr_assert_eq(wal_continuity_check(&in, &c, NULL), WAL_OK);
	cr_assert_eq(c.ngaps, 1);
	assert_gap(&c, 0, 1, 5, 6);
	cr_assert_eq(c.nranges, 2);
	cr_assert_eq(c.present, 8);
	wal_continuity_free(&c);
}

Test(continuity, starts_at_the_oldest_backup_or_from)
{
	wal_check_seg segs[64], backups[2] = { { 1, 6 }, { 1, 4 } };
	size_t n = add_run(segs, 0, 1, 4, 10);
	wal_continuity_in in = {
		.seg_size = SEG, .segs = segs, .nsegs = n, .backups = backups, .nbackups = 2
	};
	wal_continuity c;
	/* the backup at 4 needs 4..10, all there; older segments were pruned */
	cr_assert_eq(wal_continuity_check(&in, &c, NULL), WAL_OK);
	cr_assert_eq(c.start_from, WAL_START_BACKUP);
	cr_assert_eq(c.start_segno, 4);
	cr_assert_eq(c.ngaps, 0);
	wal_continuity_free(&c);
	/* --from 2: segments 2 and 3 are missing */
	in.have_from = 1;
	in.from_segno = 2;
	cr_assert_eq(wal_continuity_check(&in, &c, NULL), WAL_OK);
	cr_assert_eq(c.start_from, WAL_START_FROM);
	assert_gap(&c, 0, 1, 2, 3);
	wal_continuity_free(&c);
	/* a backup whose start segment was removed is a gap */
	backups[1].segno = 3;
	in.have_from = 0;
	cr_assert_eq(wal_continuity_check(&in, &c, NULL), WAL_OK);
	cr_assert_eq(c.ngaps, 1);
	assert_gap(&c, 0, 1, 3, 3);
	wal_continuity_free(&c);
}

Test(continuity, timeline_switch_and_the_parent_past_its_switch_point)
{
	/* timeline 1 ran to 0/7800000 (in segment 7); the promoted standby writes
	 * timeline 2 from segment 7 on; timeline 1's 7, 8 (a .partial, or written
	 * on by the old primary) are not needed */
	wal_check_seg segs[64];
	size_t n = add_run(segs, 0, 1, 1, 9);
	n = add_run(segs, n, 2, 7, 12);
	wal_history h = history(2, "1\t0/7800000\tno recovery target specified\n");
	wal_continuity_in in = {
		.seg_size = SEG, .segs = segs, .nsegs = n, .histories = &h, .nhistories = 1
	};
	wal_continuity c;
	cr_assert_eq(wal_continuity_check(&in, &c, NULL), WAL_OK);
	cr_assert_eq(c.target_tli, 2);
	cr_assert_eq(c.ngaps, 0, "%zu gaps", c.ngaps);
	cr_assert_eq(c.needed, 12); /* 1..6 on timeline 1, 7..12 on timeline 2 */
	cr_assert_eq(wal_continuity_tli_at(&c, 6, SEG), 1);
	cr_assert_eq(wal_continuity_tli_at(&c, 7, SEG), 2);
	cr_assert_eq(c.nranges, 2);
	wal_continuity_free(&c);

	/* without timeline 1's segments 8 and 9 nothing changes; without its 6, a gap */
	n = add_run(segs, 0, 1, 1, 5);
	n = add_run(segs, n, 1, 7, 7);
	n = add_run(segs, n, 2, 7, 12);
	in.nsegs = n;
	cr_assert_eq(wal_continuity_check(&in, &c, NULL), WAL_OK);
	cr_assert_eq(c.ngaps, 1);
	assert_gap(&c, 0, 1, 6, 6);
	wal_continuity_free(&c);

	/* the new timeline's first segment is needed even if the parent's is there */
	n = add_run(segs, 0, 1, 1, 9);
	n = add_run(segs, n, 2, 8, 12);
	in.nsegs = n;
	cr_assert_eq(wal_continuity_check(&in, &c, NULL), WAL_OK);
	cr_assert_eq(c.ngaps, 1);
	assert_gap(&c, 0, 2, 7, 7);
	wal_continuity_free(&c);
}

Test(continuity, three_timelines_and_an_abandoned_branch)
{
	/* 1 -> 2 at segment 5 -> 3 at segment 9; timeline 2's 9..11 were
	 * written on after the point-in-time recovery branched off: not needed */
	wal_check_seg segs[64], backups[1] = { { 1, 2 } };
	size_t n = add_run(segs, 0, 1, 2, 6);
	n = add_run(segs, n, 2, 5, 11);
	n = add_run(segs, n, 3, 9, 14);
	wal_history hs[2] = { history(2, "1\t0/5000000\tx\n"),
			      history(3, "1\t0/5000000\tx\n2\t0/9100000\ty\n") };
	wal_continuity_in in = { .seg_size = SEG,
				 .segs = segs,
				 .nsegs = n,
				 .histories = hs,
				 .nhistories = 2,
				 .backups = backups,
				 .nbackups = 1 };
	wal_continuity c;
	cr_assert_eq(wal_continuity_check(&in, &c, NULL), WAL_OK);
	cr_assert_eq(c.target_tli, 3);
	cr_assert_eq(c.ngaps, 0);
	cr_assert_eq(c.needed, 13); /* 2..14 */
	cr_assert_eq(c.start_tli, 1);
	cr_assert_eq(c.end_tli, 3);
	wal_continuity_free(&c);

	/* a backup taken on timeline 2 past the branch is not where recovery to 3 starts */
	wal_check_seg more[2] = { { 2, 10 }, { 1, 2 } };
	in.backups = more;
	in.nbackups = 2;
	cr_assert_eq(wal_continuity_check(&in, &c, NULL), WAL_OK);
	cr_assert_eq(c.start_segno, 2);
	wal_continuity_free(&c);
}

Test(continuity, missing_history_is_a_gap)
{
	wal_check_seg segs[64];
	size_t n = add_run(segs, 0, 1, 1, 6);
	n = add_run(segs, n, 2, 5, 11);
	n = add_run(segs, n, 3, 9, 14);
	/* 00000002.history lost: 3's history still names the way, 2's is a gap */
	wal_history h3 = history(3, "1\t0/5000000\tx\n2\t0/9100000\ty\n");
	wal_continuity_in in = {
		.seg_size = SEG, .segs = segs, .nsegs = n, .histories = &h3, .nhistories = 1
	};
	wal_continuity c;
	cr_assert_eq(wal_continuity_check(&in, &c, NULL), WAL_OK);
	cr_assert_eq(c.ngaps, 1);
	cr_assert_eq(c.gaps[0].kind, WAL_GAP_HISTORY);
	cr_assert_eq(c.gaps[0].tli, 2);
	wal_continuity_free(&c);

	/* no history at all for 3: a gap, and the way guessed through 2 */
	wal_history h2 = history(2, "1\t0/5000000\tx\n");
	in.histories = &h2;
	cr_assert_eq(wal_continuity_check(&in, &c, NULL), WAL_OK);
	cr_assert_eq(c.ngaps, 1);
	cr_assert_eq(c.gaps[0].kind, WAL_GAP_HISTORY);
	cr_assert_eq(c.gaps[0].tli, 3);
	cr_assert_eq(wal_continuity_tli_at(&c, 8, SEG), 2);
	cr_assert_eq(wal_continuity_tli_at(&c, 9, SEG), 3);
	wal_continuity_free(&c);
}

Test(continuity, postgres_position_and_an_empty_archive)
{
	wal_check_seg segs[64];
	size_t n = add_run(segs, 0, 1, 1, 6);
	wal_continuity_in in = { .seg_size = SEG,
				 .segs = segs,
				 .nsegs = n,
				 .have_end = 1,
				 .end_segno = 8,
				 .target_tli = 1 };
	wal_continuity c;
	cr_assert_eq(wal_continuity_check(&in, &c, NULL), WAL_OK);
	assert_gap(&c, 0, 1, 7, 8);
	wal_continuity_free(&c);

	wal_continuity_in none = { .seg_size = SEG };
	cr_assert_eq(wal_continuity_check(&none, &c, NULL), WAL_OK);
	cr_assert(c.empty);
	cr_assert_eq(c.ngaps, 0);
	wal_continuity_free(&c);
}

Test(continuity, large_positions_do_not_walk_segment_by_segment)
{
	/* --from far before anything: one gap, computed without a loop per segment */
	wal_check_seg segs[4] = { { 1, 1ull << 40 }, { 1, (1ull << 40) + 1 } };
	wal_continuity_in in = {
		.seg_size = SEG, .segs = segs, .nsegs = 2, .have_from = 1, .from_segno = 1
	};
	wal_continuity c;
	cr_assert_eq(wal_continuity_check(&in, &c, NULL), WAL_OK);
	assert_gap(&c, 0, 1, 1, (1ull << 40) - 1);
	wal_continuity_free(&c);
}

static char *json_of(void (*fn)(wal_json *j, const char *text), const char *text)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);
	wal_json j;
	wal_json_init(&j, f);
	fn(&j, text);
	fclose(f);
	return buf;
}

static void one_member(wal_json *j, const char *text)
{
	wal_json_object(j, NULL);
	wal_json_str(j, "k\"ey", text);
	wal_json_array(j, "list");
	wal_json_int(j, NULL, -1);
	wal_json_bool(j, NULL, 1);
	wal_json_null(j, NULL);
	wal_json_end(j, ']');
	wal_json_end(j, '}');
}

Test(json, escapes_strings)
{
	char *out = json_of(one_member, "a\"b\\c\nd\te\x01"
					"f/\x7f");
	cr_assert_str_eq(
		out,
		"{\"k\\\"ey\":\"a\\\"b\\\\c\\nd\\te\\u0001f/\\u007f\",\"list\":[-1,true,null]}\n");
	free(out);
	/* UTF-8 passes, a byte that is not UTF-8 becomes U+FFFD, an overlong form too */
	out = json_of(one_member, "caf\xc3\xa9 \xff \xc0\xaf \xe2\x82");
	cr_assert_str_eq(out, "{\"k\\\"ey\":\"caf\xc3\xa9 \\ufffd \\ufffd\\ufffd "
			      "\\ufffd\\ufffd\",\"list\":[-1,true,null]}\n");
	free(out);
}

/* ---- on a local archive ---------------------------------------------------- */

#define SYSID "7712300585176830670"

static char root[64];
static wal_config cfg;
static wal_store *store;

static void put_raw(const char *path, const char *text)
{
	wal_mem_source src;
	wal_mem_source_init(&src, text, strlen(text));
	cr_assert_eq(wal_store_put(store, path, &src.base, NULL), WAL_OK, "%s", path);
}

static void put_framed(const char *path, const char *text)
{
	wal_mem_source src;
	wal_lz4_source *lz;
	wal_mem_source_init(&src, text, strlen(text));
	cr_assert_eq(wal_lz4_source_new(&lz, &src.base, (int64_t)strlen(text), 1, NULL), WAL_OK);
	cr_assert_eq(wal_store_put(store, path, wal_lz4_source_base(lz), NULL), WAL_OK, "%s", path);
	wal_lz4_source_free(lz);
}

static void setup_archive(void)
{
	snprintf(root, sizeof(root), "/tmp/test_check.XXXXXX");
	cr_assert_not_null(mkdtemp(root));
	wal_config_init(&cfg);
	cr_assert_eq(wal_config_set(&cfg, "archive", root, "test", 0, NULL), WAL_OK);
	cr_assert_eq(wal_store_open(&store, &cfg, NULL), WAL_OK);
	put_raw(SYSID "/walarchive.info", "system_id = " SYSID "\nwal_seg_size = 33554432\n");
	put_framed(SYSID "/00000002.history.lz4", "1\t0/5000000\tno recovery target specified\n");
	put_raw(SYSID "/0000000100000000/000000010000000000000001.lz4", "not an lz4 frame");
	put_raw(SYSID "/0000000100000000/000000010000000000000002.lz4", "");
	put_raw(SYSID "/0000000100000000/000000010000000000000002.00000028.backup.lz4", "");
	put_raw(SYSID "/0000000100000000/.000000010000000000000003.lz4.1234.tmp", "");
	put_raw(SYSID "/0000000100000000/README", "not WAL");
	put_raw(SYSID "/0000000100000000/00000003.history.lz4", "a history in the wrong place");
}

static void teardown_archive(void)
{
	char cmd[128];
	wal_store_close(store);
	wal_config_free(&cfg);
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", root);
	cr_assert_eq(system(cmd), 0);
}

Test(local, lists_the_tree, .init = setup_archive, .fini = teardown_archive)
{
	wal_check_tree t;
	wal_error e;
	cr_assert_eq(wal_check_list_tree(store, 7712300585176830670ull, &t, &e), WAL_OK, "%s",
		     e.msg);
	cr_assert(t.have_info);
	cr_assert_eq(t.seg_size, 32u << 20, "segment size from walarchive.info");
	cr_assert_eq(t.dirs, 1);
	/* the history, two segments, the backup: not the temporary file, README,
	 * or a history file outside the root */
	cr_assert_eq(t.count, 4, "%zu objects", t.count);
	int histories = 0;
	for (size_t i = 0; i < t.count; i++) {
		cr_assert(t.objs[i].framed);
		histories += t.objs[i].name.kind == WAL_NAME_HISTORY;
	}
	cr_assert_eq(histories, 1);
	for (size_t i = 0; i < t.count; i++)
		if (t.objs[i].name.kind == WAL_NAME_HISTORY) {
			char *text;
			cr_assert_eq(wal_check_read_text(store, &t.objs[i], 7712300585176830670ull,
							 NULL, &text, &e),
				     WAL_OK, "%s", e.msg);
			cr_assert_str_eq(text, "1\t0/5000000\tno recovery target specified\n");
			free(text);
		}
	wal_check_tree_free(&t);
	cr_assert_eq(wal_check_list_tree(store, 1234, &t, NULL), WAL_ENOENT,
		     "no tree for that cluster");
}

static void count_bad(void *arg, size_t index, wal_err code, const char *why)
{
	size_t *bad = arg;
	(void)code;
	cr_assert(strstr(why, "000000010000000000000001") ||
			  strstr(why, "000000010000000000000002"),
		  "index %zu: %s", index, why);
	(*bad)++;
}

Test(local, deep_names_what_fails_verification, .init = setup_archive, .fini = teardown_archive)
{
	wal_check_tree t;
	wal_error e;
	size_t verified = 0, bad = 0;
	cr_assert_eq(wal_check_list_tree(store, 7712300585176830670ull, &t, &e), WAL_OK);
	/* the history is a good frame; both segments and the backup file are not */
	cr_assert_eq(wal_check_deep(&cfg, 7712300585176830670ull, t.objs, t.count, 2, count_bad,
				    &bad, &verified, &e),
		     WAL_OK, "%s", e.msg);
	cr_assert_eq(verified, 1);
	cr_assert_eq(bad, 3);
	wal_check_tree_free(&t);
}

Test(local, probe_leaves_nothing, .init = setup_archive, .fini = teardown_archive)
{
	wal_probe_result res;
	wal_error e;
	char path[512];
	cr_assert_eq(wal_check_probe(store, SYSID, &res, &e), WAL_OK, "%s", e.msg);
	cr_assert(res.put_ok && res.get_ok && res.remove_ok);
	cr_assert(strncmp(res.path, SYSID "/.walcheck-probe-", strlen(SYSID) + 17) == 0, "%s",
		  res.path);
	snprintf(path, sizeof(path), "%s/%s", root, res.path);
	cr_assert_neq(access(path, F_OK), 0, "the probe is removed");
	cr_assert_eq(wal_check_probe(store, "", &res, &e), WAL_OK, "%s", e.msg);
	cr_assert(strncmp(res.path, ".walcheck-probe-", 16) == 0, "%s", res.path);
}
