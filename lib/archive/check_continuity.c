/*
 * Which segments a recovery needs, along the history of the newest timeline,
 * and which of them the archive lacks: pure arithmetic on a listing and the
 * history files, so that the unit tests can feed it made-up trees.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "archive/check.h"

wal_err wal_history_parse(uint32_t tli, const char *text, wal_history *h, wal_error *e)
{
	int line_no = 0;
	memset(h, 0, sizeof(*h));
	h->tli = tli;
	for (const char *line = text; line && *line;) {
		const char *nl = strchr(line, '\n');
		size_t len = nl ? (size_t)(nl - line) : strlen(line);
		char buf[512];
		line_no++;
		snprintf(buf, sizeof(buf), "%.*s", (int)(len < sizeof(buf) ? len : sizeof(buf) - 1),
			 line);
		line = nl ? nl + 1 : NULL;
		char *p = buf;
		while (*p == ' ' || *p == '\t' || *p == '\r')
			p++;
		if (*p == '\0' || *p == '#')
			continue;
		unsigned long parent;
		unsigned hi, lo;
		int used = 0;
		if (sscanf(p, "%lu%*[ \t]%X/%X%n", &parent, &hi, &lo, &used) != 3 || parent == 0 ||
		    parent >= tli)
			return wal_fail(
				e, WAL_EINVAL,
				"%08X.history: line %d: not \"timeline<TAB>X/Y<TAB>reason\"", tli,
				line_no);
		uint64_t lsn = ((uint64_t)hi << 32) | lo;
		if (h->count > 0 && (parent <= h->entries[h->count - 1].tli ||
				     lsn < h->entries[h->count - 1].end_lsn))
			return wal_fail(e, WAL_EINVAL,
					"%08X.history: line %d: timelines and switch points "
					"must increase",
					tli, line_no);
		if (h->count == WAL_HISTORY_MAX)
			return wal_fail(e, WAL_EINVAL, "%08X.history: more than %d timelines", tli,
					WAL_HISTORY_MAX);
		h->entries[h->count].tli = (uint32_t)parent;
		h->entries[h->count].end_lsn = lsn;
		h->count++;
	}
	return WAL_OK;
}

static int seg_cmp(const void *a, const void *b)
{
	const wal_check_seg *x = a, *y = b;
	if (x->tli != y->tli)
		return x->tli < y->tli ? -1 : 1;
	return x->segno < y->segno ? -1 : x->segno > y->segno ? 1 : 0;
}

typedef struct builder {
	const wal_continuity_in *in;
	wal_continuity *out;
	size_t gapcap, rangecap;
	wal_error *e;
} builder;

static wal_err push_range(wal_range **arr, size_t *n, size_t *cap, const wal_range *r, wal_error *e)
{
	if (*n == *cap) {
		size_t grown_cap = *cap ? *cap * 2 : 16;
		wal_range *grown = realloc(*arr, grown_cap * sizeof(*grown));
		if (!grown)
			return wal_fail(e, WAL_ENOMEM, "out of memory");
		*arr = grown;
		*cap = grown_cap;
	}
	(*arr)[(*n)++] = *r;
	return WAL_OK;
}

static wal_err add_history_gap(builder *b, uint32_t tli)
{
	for (size_t i = 0; i < b->out->ngaps; i++)
		if (b->out->gaps[i].kind == WAL_GAP_HISTORY && b->out->gaps[i].tli == tli)
			return WAL_OK;
	wal_range r = { .tli = tli, .kind = WAL_GAP_HISTORY };
	return push_range(&b->out->gaps, &b->out->ngaps, &b->gapcap, &r, b->e);
}

static const wal_history *find_history(const wal_continuity_in *in, uint32_t tli)
{
	for (size_t i = 0; i < in->nhistories; i++)
		if (in->histories[i].tli == tli)
			return &in->histories[i];
	return NULL;
}

/* The highest timeline below tli that the tree shows (segments, backups, histories). */
static uint32_t seen_below(const wal_continuity_in *in, uint32_t tli, uint64_t *first_segno)
{
	uint32_t best = 0;
	for (size_t i = 0; i < in->nsegs; i++)
		if (in->segs[i].tli < tli && in->segs[i].tli > best)
			best = in->segs[i].tli;
	for (size_t i = 0; i < in->nbackups; i++)
		if (in->backups[i].tli < tli && in->backups[i].tli > best)
			best = in->backups[i].tli;
	for (size_t i = 0; i < in->nhistories; i++)
		if (in->histories[i].tli < tli && in->histories[i].tli > best)
			best = in->histories[i].tli;
	*first_segno = UINT64_MAX;
	for (size_t i = 0; i < in->nsegs; i++)
		if (in->segs[i].tli == tli && in->segs[i].segno < *first_segno)
			*first_segno = in->segs[i].segno;
	return best;
}

/* Fills out->path with the timelines a recovery to tli follows. */
static wal_err build_path(builder *b, uint32_t tli, int depth)
{
	const wal_continuity_in *in = b->in;
	wal_continuity *out = b->out;
	const wal_history *h = find_history(in, tli);
	wal_err rc;
	if (tli == 1 || h || depth > WAL_HISTORY_MAX) {
		for (int i = 0; h && i < h->count; i++) {
			out->path[out->npath++] = h->entries[i];
			if (h->entries[i].tli > 1 && !find_history(in, h->entries[i].tli) &&
			    (rc = add_history_gap(b, h->entries[i].tli)) != WAL_OK)
				return rc;
		}
	} else {
		/* no history: guess the next lower timeline, left at this one's first segment */
		uint64_t first;
		uint32_t parent = seen_below(in, tli, &first);
		if ((rc = add_history_gap(b, tli)) != WAL_OK)
			return rc;
		if (parent) {
			if ((rc = build_path(b, parent, depth + 1)) != WAL_OK)
				return rc;
			out->path[out->npath - 1].end_lsn =
				first == UINT64_MAX ? UINT64_MAX : first * in->seg_size;
		}
	}
	if (out->npath < WAL_HISTORY_MAX + 1)
		out->path[out->npath++] = (wal_history_entry){ tli, UINT64_MAX };
	return WAL_OK;
}

uint32_t wal_continuity_tli_at(const wal_continuity *c, uint64_t segno, uint32_t seg_size)
{
	for (int i = 0; i < c->npath; i++)
		if (c->path[i].end_lsn == UINT64_MAX || segno < c->path[i].end_lsn / seg_size)
			return c->path[i].tli;
	return c->npath ? c->path[c->npath - 1].tli : 0;
}

static int on_path(const wal_continuity *c, const wal_check_seg *s, uint32_t seg_size)
{
	return wal_continuity_tli_at(c, s->segno, seg_size) == s->tli;
}

/* Where the check starts and ends; 0 when there is nothing to check. */
static int choose_bounds(const wal_continuity_in *in, wal_continuity *out)
{
	int have_start = 0, have_newest = 0;
	uint64_t newest = 0;
	for (size_t i = 0; i < in->nsegs; i++)
		if (on_path(out, &in->segs[i], in->seg_size) &&
		    (!have_newest || in->segs[i].segno > newest)) {
			newest = in->segs[i].segno;
			have_newest = 1;
		}
	if (in->have_from) {
		out->start_segno = in->from_segno;
		out->start_from = WAL_START_FROM;
		have_start = 1;
	}
	for (size_t i = 0; !have_start && i < in->nbackups; i++)
		if (on_path(out, &in->backups[i], in->seg_size) &&
		    (out->start_from != WAL_START_BACKUP ||
		     in->backups[i].segno < out->start_segno)) {
			out->start_segno = in->backups[i].segno;
			out->start_from = WAL_START_BACKUP;
		}
	have_start = have_start || out->start_from == WAL_START_BACKUP;
	for (size_t i = 0; !have_start && i < in->nsegs; i++)
		if (on_path(out, &in->segs[i], in->seg_size) &&
		    (out->start_from != WAL_START_OLDEST || in->segs[i].segno < out->start_segno)) {
			out->start_segno = in->segs[i].segno;
			out->start_from = WAL_START_OLDEST;
		}
	have_start = have_start || out->start_from == WAL_START_OLDEST;
	if (!have_start)
		return 0;
	if (in->have_end)
		out->end_segno = in->end_segno;
	else if (have_newest)
		out->end_segno = newest;
	else
		out->end_segno = out->start_segno;
	out->start_tli = wal_continuity_tli_at(out, out->start_segno, in->seg_size);
	out->end_tli = wal_continuity_tli_at(out, out->end_segno, in->seg_size);
	return 1;
}

/* Runs of segments present, by timeline. */
static wal_err collect_ranges(builder *b, const wal_check_seg *sorted, size_t n)
{
	for (size_t i = 0; i < n;) {
		size_t j = i;
		while (j + 1 < n && sorted[j + 1].tli == sorted[i].tli &&
		       sorted[j + 1].segno == sorted[j].segno + 1)
			j++;
		wal_range r = { .tli = sorted[i].tli,
				.first = sorted[i].segno,
				.last = sorted[j].segno };
		wal_err rc = push_range(&b->out->ranges, &b->out->nranges, &b->rangecap, &r, b->e);
		if (rc != WAL_OK)
			return rc;
		i = j + 1;
	}
	return WAL_OK;
}

/* The gaps of one timeline's stretch lo..hi of the path. */
static wal_err stretch_gaps(builder *b, const wal_check_seg *sorted, size_t n, uint32_t tli,
			    uint64_t lo, uint64_t hi)
{
	wal_check_seg key = { tli, lo };
	size_t i = 0, top = n;
	while (i < top) { /* the first segment at or after (tli, lo) */
		size_t mid = i + (top - i) / 2;
		if (seg_cmp(&sorted[mid], &key) < 0)
			i = mid + 1;
		else
			top = mid;
	}
	uint64_t expect = lo;
	wal_err rc;
	b->out->needed += hi - lo + 1;
	for (; i < n && sorted[i].tli == tli && sorted[i].segno <= hi; i++) {
		if (sorted[i].segno > expect) {
			wal_range r = { .tli = tli, .first = expect, .last = sorted[i].segno - 1 };
			if ((rc = push_range(&b->out->gaps, &b->out->ngaps, &b->gapcap, &r,
					     b->e)) != WAL_OK)
				return rc;
		}
		expect = sorted[i].segno + 1;
		b->out->present++;
	}
	if (expect <= hi) {
		wal_range r = { .tli = tli, .first = expect, .last = hi };
		return push_range(&b->out->gaps, &b->out->ngaps, &b->gapcap, &r, b->e);
	}
	return WAL_OK;
}

wal_err wal_continuity_check(const wal_continuity_in *in, wal_continuity *out, wal_error *e)
{
	builder b = { .in = in, .out = out, .e = e };
	wal_check_seg *sorted = NULL;
	size_t n = 0;
	wal_err rc;

	memset(out, 0, sizeof(*out));
	out->start_from = -1;
	out->target_tli = in->target_tli;
	for (size_t i = 0; !in->target_tli && i < in->nsegs; i++)
		if (in->segs[i].tli > out->target_tli)
			out->target_tli = in->segs[i].tli;
	for (size_t i = 0; !in->target_tli && i < in->nhistories; i++)
		if (in->histories[i].tli > out->target_tli)
			out->target_tli = in->histories[i].tli;
	if (out->target_tli == 0) {
		out->empty = 1;
		return WAL_OK;
	}
	if ((rc = build_path(&b, out->target_tli, 0)) != WAL_OK)
		goto out;

	if (in->nsegs && !(sorted = malloc(in->nsegs * sizeof(*sorted)))) {
		rc = wal_fail(e, WAL_ENOMEM, "out of memory");
		goto out;
	}
	if (in->nsegs) {
		memcpy(sorted, in->segs, in->nsegs * sizeof(*sorted));
		qsort(sorted, in->nsegs, sizeof(*sorted), seg_cmp);
	}
	for (size_t i = 0; i < in->nsegs; i++) /* a segment both framed and plain counts once */
		if (n == 0 || seg_cmp(&sorted[i], &sorted[n - 1]) != 0)
			sorted[n++] = sorted[i];
	if ((rc = collect_ranges(&b, sorted, n)) != WAL_OK)
		goto out;

	if (!choose_bounds(in, out)) {
		out->empty = 1;
		goto out;
	}
	uint64_t begin = 0;
	for (int i = 0; i < out->npath && out->end_segno >= out->start_segno; i++) {
		uint64_t next = out->path[i].end_lsn == UINT64_MAX
					? UINT64_MAX
					: out->path[i].end_lsn / in->seg_size;
		uint64_t lo = begin > out->start_segno ? begin : out->start_segno;
		uint64_t hi =
			next == UINT64_MAX || next - 1 > out->end_segno ? out->end_segno : next - 1;
		if (next > begin && lo <= hi &&
		    (rc = stretch_gaps(&b, sorted, n, out->path[i].tli, lo, hi)) != WAL_OK)
			goto out;
		if (next > begin)
			begin = next;
	}
	rc = WAL_OK;
out:
	free(sorted);
	return rc;
}

void wal_continuity_free(wal_continuity *c)
{
	free(c->ranges);
	free(c->gaps);
	c->ranges = c->gaps = NULL;
	c->nranges = c->ngaps = 0;
}
