/*
 * walcheck's orchestrator: reachability (the probe), the spool, PostgreSQL's
 * wiring and --switch-wal, the tree's listing and continuity, --deep, the
 * staleness of the newest segment and the programs' status records, each
 * result and each problem into one report.
 */
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include "archive/archive.h"
#include "check/check.h"
#include "pg/pgcontrol.h"

void wal_check_problem_add(wal_check_report *r, wal_check_class cls, wal_err err, const char *fmt,
			   ...)
{
	wal_check_problem *grown = realloc(r->problems, (r->nproblems + 1) * sizeof(*grown));
	if (!grown)
		return;
	r->problems = grown;
	wal_check_problem *p = &r->problems[r->nproblems++];
	p->cls = cls;
	p->err = err;
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(p->text, sizeof(p->text), fmt, ap);
	va_end(ap);
}

static double now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000.0 + ts.tv_nsec / 1e6;
}

/* The data directory whose pg_wal walcheck can see: -D, else the server's own. */
static const char *visible_datadir(const wal_check_opts *opts, const wal_check_report *r)
{
	char path[1100];
	const char *dd = opts->datadir		   ? opts->datadir
			 : r->pg.data_directory[0] ? r->pg.data_directory
						   : NULL;
	if (!dd)
		return NULL;
	snprintf(path, sizeof(path), "%s/pg_wal/archive_status", dd);
	return access(path, R_OK | X_OK) == 0 ? dd : NULL;
}

static void check_spool(const wal_config *cfg, wal_check_report *r)
{
	wal_error err;
	r->push_ahead = wal_ahead_push_count(cfg);
	r->fetch_ahead = cfg->fetch_ahead;
	r->spool_wanted = r->push_ahead > 0 || r->fetch_ahead > 0;
	if (!r->spool_wanted)
		return;
	wal_err rc = wal_ahead_spool_check(cfg, r->system_id, &err);
	r->spool_ok = rc == WAL_OK;
	if (rc == WAL_ENOENT)
		snprintf(r->spool_note, sizeof(r->spool_note),
			 "spool %s: not a writable directory: push-ahead and fetch-ahead are off "
			 "(install -d -o postgres -m 700 %s)",
			 cfg->spool_dir, cfg->spool_dir);
	else if (rc != WAL_OK)
		snprintf(r->spool_note, sizeof(r->spool_note),
			 "%.500s: push-ahead and fetch-ahead are off", err.msg);
	if (rc != WAL_OK)
		wal_check_problem_add(r, WAL_CHECK_WARNING, WAL_OK, "%s", r->spool_note);
}

/* Which cluster: pg_control, the system_id setting, the server, else the only one there. */
static wal_err resolve_system_id(const wal_config *cfg, const wal_check_opts *opts,
				 wal_check_report *r, wal_store *store, wal_error *e)
{
	wal_pgcontrol ctl;
	const char *dd = opts->datadir		   ? opts->datadir
			 : r->pg.data_directory[0] ? r->pg.data_directory
						   : NULL;
	if (dd && wal_pgcontrol_read(dd, &ctl, NULL) == WAL_OK) {
		r->system_id = ctl.system_id;
		r->system_id_from = "pg_control";
	} else if (cfg->system_id) {
		r->system_id = cfg->system_id;
		r->system_id_from = "system_id";
	} else if (r->pg.system_id) {
		r->system_id = r->pg.system_id;
		r->system_id_from = "postgresql";
	} else {
		wal_err rc = wal_archive_system_id(store, cfg, NULL, &r->system_id, e);
		if (rc != WAL_OK)
			return rc;
		r->system_id_from = "archive";
	}
	if (r->pg.system_id && r->pg.system_id != r->system_id)
		wal_check_problem_add(r, WAL_CHECK_NOT_WIRED, WAL_OK,
				      "postgresql: the server is cluster %" PRIu64 ", not %" PRIu64
				      " (from %s)",
				      r->pg.system_id, r->system_id, r->system_id_from);
	return WAL_OK;
}

/* --switch-wal: switch, then wait until the closed segment is in the archive. */
static void switch_wal(const wal_check_opts *opts, wal_check_report *r, wal_store *store,
		       void *conn)
{
	wal_error err;
	wal_name name;
	wal_check_pg *pg = &r->pg;
	if (!conn || pg->standby) {
		wal_check_problem_add(r, WAL_CHECK_NOT_WIRED, WAL_OK, "--switch-wal: %s",
				      conn ? "the server is a standby: switch WAL on the primary"
					   : "needs a connection to the primary (-d or -D)");
		return;
	}
	pg->switch_done = 1;
	if (wal_check_pg_switch(conn, pg->switch_segment, &err) != WAL_OK ||
	    wal_name_parse(pg->switch_segment, &name, &err) != WAL_OK) {
		wal_check_problem_add(r, WAL_CHECK_NOT_WIRED, WAL_OK, "%s", err.msg);
		return;
	}
	double t0 = now_ms();
	for (;;) {
		char object[512];
		wal_stat st;
		int forms[WAL_ARCHIVE_FORMS];
		wal_archive_forms(0, WAL_OBJ_LZ4, forms); /* any form: encrypted ones last */
		for (int i = 0; i < WAL_ARCHIVE_FORMS && !pg->switch_ok; i++) {
			wal_archive_object_path(r->system_id, &name, forms[i], object,
						sizeof(object));
			pg->switch_ok = wal_store_stat(store, object, &st, NULL) == WAL_OK;
		}
		pg->switch_wait_s = (now_ms() - t0) / 1000.0;
		if (pg->switch_ok || pg->switch_wait_s >= opts->timeout)
			break;
		usleep(200 * 1000);
	}
	if (pg->switch_ok)
		return;
	wal_check_pg_archiver(conn, r);
	if (pg->last_failed_wal[0]) {
		char when[32];
		struct tm tm;
		strftime(when, sizeof(when), "%Y-%m-%d %H:%M:%S UTC",
			 gmtime_r(&pg->last_failed_time, &tm));
		wal_check_problem_add(
			r, WAL_CHECK_NOT_WIRED, WAL_OK,
			"--switch-wal: %s not in the archive after %d s; PostgreSQL's archiver "
			"last failed on %s at %s (see its log)",
			pg->switch_segment, opts->timeout, pg->last_failed_wal, when);
		return;
	}
	/* The archiver has not failed: it archives somewhere else, or is slow. */
	wal_check_problem_add(
		r, WAL_CHECK_NOT_WIRED, WAL_OK,
		"--switch-wal: %s not in the archive after %d s; PostgreSQL's archiver has "
		"not failed and last archived %s: does archive_command store into this archive?",
		pg->switch_segment, opts->timeout,
		pg->last_archived_wal[0] ? pg->last_archived_wal : "nothing");
}

/* Every segment of gaps a running server still has to archive is only waiting. */
static void mark_waiting(const wal_check_opts *opts, wal_check_report *r, uint64_t newest_segno)
{
	const char *dd = visible_datadir(opts, r);
	uint32_t seg_size = r->tree.seg_size;
	for (size_t i = 0; i < r->cont.ngaps; i++) {
		wal_range *g = &r->cont.gaps[i];
		if (g->kind != WAL_GAP_SEGMENTS)
			continue;
		if (dd && g->last - g->first < 100000) {
			g->waiting = 1;
			for (uint64_t s = g->first; s <= g->last && g->waiting; s++) {
				char seg[25], path[1200];
				struct stat st;
				wal_segment_name(g->tli, s, seg_size, seg);
				snprintf(path, sizeof(path), "%s/pg_wal/archive_status/%s.ready",
					 dd, seg);
				g->waiting = stat(path, &st) == 0;
			}
		} else if (!dd && r->pg.connected && g->last == r->cont.end_segno &&
			   g->first > newest_segno) {
			/* past everything archived, before the server's position: its backlog */
			g->waiting = 1;
		}
		if (!g->waiting)
			r->missing += g->last - g->first + 1;
	}
}

/* The continuity problems, one line per gap (the first 20). */
static void report_gaps(wal_check_report *r)
{
	size_t shown = 0, hidden = 0;
	for (size_t i = 0; i < r->cont.ngaps; i++) {
		const wal_range *g = &r->cont.gaps[i];
		char first[25], last[25];
		if (g->waiting)
			continue;
		if (shown++ >= 20) {
			hidden++;
			continue;
		}
		if (g->kind == WAL_GAP_HISTORY) {
			wal_check_problem_add(r, WAL_CHECK_INCOMPLETE, WAL_OK,
					      "gap: timeline %u: %08X.history is missing", g->tli,
					      g->tli);
			continue;
		}
		wal_segment_name(g->tli, g->first, r->tree.seg_size, first);
		wal_segment_name(g->tli, g->last, r->tree.seg_size, last);
		wal_check_problem_add(r, WAL_CHECK_INCOMPLETE, WAL_OK,
				      "gap: timeline %u: %s%s%s missing (%" PRIu64 " segment%s)",
				      g->tli, first, g->first == g->last ? "" : "-",
				      g->first == g->last ? "" : last, g->last - g->first + 1,
				      g->last == g->first ? "" : "s");
	}
	if (hidden)
		wal_check_problem_add(r, WAL_CHECK_INCOMPLETE, WAL_OK, "gap: and %zu more gaps",
				      hidden);
}

typedef struct tree_input {
	wal_check_seg *segs, *backups;
	size_t nsegs, nbackups;
	wal_history *histories;
	size_t nhistories;
	uint64_t newest_segno;
} tree_input;

static void tree_input_free(tree_input *in)
{
	free(in->segs);
	free(in->backups);
	free(in->histories);
}

/* The segments, backups and histories of the tree, for wal_continuity_check. */
static wal_err gather(const wal_config *cfg, wal_check_report *r, wal_store *store, tree_input *in,
		      wal_error *e)
{
	wal_age_keys ids;
	int have_ids;
	/* history files are read: encrypted ones with encrypt_identity */
	wal_err id_rc = wal_archive_identities(cfg, &ids, &have_ids, e);
	if (id_rc != WAL_OK)
		return id_rc;
	const wal_check_tree *t = &r->tree;
	size_t nhist = 0;
	for (size_t i = 0; i < t->count; i++)
		nhist += t->objs[i].name.kind == WAL_NAME_HISTORY;
	in->segs = malloc((t->count + 1) * sizeof(*in->segs));
	in->backups = malloc((t->count + 1) * sizeof(*in->backups));
	in->histories = malloc((nhist + 1) * sizeof(*in->histories));
	if (!in->segs || !in->backups || !in->histories)
		return wal_fail(e, WAL_ENOMEM, "out of memory");
	for (size_t i = 0; i < t->count; i++) {
		const wal_check_object *o = &t->objs[i];
		uint64_t segno;
		if (o->name.kind == WAL_NAME_HISTORY) {
			char *text = NULL;
			wal_error err;
			wal_err rc = wal_check_read_text(store, o, r->system_id,
							 have_ids ? &ids : NULL, &text, &err);
			if (rc == WAL_OK)
				rc = wal_history_parse(o->name.tli, text,
						       &in->histories[in->nhistories], &err);
			free(text);
			if (rc == WAL_OK)
				in->nhistories++;
			else if (rc == WAL_EINVAL || rc == WAL_ECORRUPT)
				wal_check_problem_add(r, WAL_CHECK_INCOMPLETE, WAL_OK,
						      "%s: unreadable: %s", o->path, err.msg);
			else {
				*e = err;
				wal_age_keys_wipe(&ids);
				return rc;
			}
			continue;
		}
		if (o->name.kind == WAL_NAME_PARTIAL ||
		    wal_name_segno(&o->name, t->seg_size, &segno, NULL) != WAL_OK)
			continue;
		wal_check_seg s = { o->name.tli, segno };
		if (o->name.kind == WAL_NAME_BACKUP) {
			in->backups[in->nbackups++] = s;
			continue;
		}
		in->segs[in->nsegs++] = s;
		r->segments++;
		if (o->mtime > r->newest_mtime)
			r->newest_mtime = o->mtime;
		if (!r->newest_segment[0] || segno > in->newest_segno ||
		    (segno == in->newest_segno && strcmp(o->name.text, r->newest_segment) > 0)) {
			in->newest_segno = segno;
			snprintf(r->newest_segment, sizeof(r->newest_segment), "%s", o->name.text);
		}
	}
	wal_age_keys_wipe(&ids);
	return WAL_OK;
}

/* The newest segment is the newest a recovery along the path reads, when there is one
 * (a parent's segments past its switch point may sort later). */
static void newest_on_path(wal_check_report *r, tree_input *in)
{
	int found = 0;
	uint64_t newest = 0;
	uint32_t tli = 0;
	for (size_t i = 0; i < in->nsegs; i++)
		if (wal_continuity_tli_at(&r->cont, in->segs[i].segno, r->tree.seg_size) ==
			    in->segs[i].tli &&
		    (!found || in->segs[i].segno > newest)) {
			found = 1;
			newest = in->segs[i].segno;
			tli = in->segs[i].tli;
		}
	if (!found)
		return;
	in->newest_segno = newest;
	wal_segment_name(tli, newest, r->tree.seg_size, r->newest_segment);
}

/* Lists the tree and checks continuity; WAL_ENOENT when the cluster has no tree yet. */
static wal_err check_tree(const wal_config *cfg, const wal_check_opts *opts, wal_check_report *r,
			  wal_store *store, wal_error *e)
{
	tree_input in = { 0 };
	wal_continuity_in ci = { 0 };
	wal_err rc = wal_check_list_tree(store, r->system_id, &r->tree, e);
	if (rc != WAL_OK)
		return rc;
	r->listed = 1;
	if ((rc = gather(cfg, r, store, &in, e)) != WAL_OK)
		goto out;
	ci.seg_size = r->tree.seg_size;
	ci.segs = in.segs;
	ci.nsegs = in.nsegs;
	ci.backups = in.backups;
	ci.nbackups = in.nbackups;
	ci.histories = in.histories;
	ci.nhistories = in.nhistories;
	if (opts->from) {
		wal_name from;
		if (wal_name_parse(opts->from, &from, e) != WAL_OK ||
		    from.kind == WAL_NAME_HISTORY ||
		    wal_name_segno(&from, ci.seg_size, &ci.from_segno, e) != WAL_OK) {
			rc = wal_fail(e, WAL_EINVAL, "--from %s: want a segment name", opts->from);
			goto out;
		}
		ci.have_from = 1;
	}
	wal_name cur;
	uint64_t cur_segno = r->pg.current_lsn / ci.seg_size;
	if (r->pg.connected && r->pg.system_id == r->system_id && cur_segno > 0 &&
	    wal_name_parse(r->pg.current_wal, &cur, NULL) == WAL_OK) {
		/* the server's position: every segment before the one it writes (at a
		 * boundary, pg_walfile_name names the one before: the position counts) */
		ci.target_tli = cur.tli;
		ci.have_end = 1;
		ci.end_segno = cur_segno - 1;
	}
	if ((rc = wal_continuity_check(&ci, &r->cont, e)) != WAL_OK)
		goto out;
	r->continuity_done = 1;
	newest_on_path(r, &in);
	mark_waiting(opts, r, in.newest_segno);
	report_gaps(r);
out:
	tree_input_free(&in);
	return rc;
}

static void on_bad(void *arg, size_t index, wal_err code, const char *why)
{
	wal_check_report *r = arg;
	(void)code;
	wal_check_corrupt *grown = realloc(r->corrupt, (r->ncorrupt + 1) * sizeof(*grown));
	if (!grown)
		return;
	r->corrupt = grown;
	wal_check_corrupt *c = &r->corrupt[r->ncorrupt++];
	snprintf(c->path, sizeof(c->path), "%s", r->tree.objs[index].path);
	snprintf(c->why, sizeof(c->why), "%s", why);
	wal_check_problem_add(r, WAL_CHECK_INCOMPLETE, WAL_OK, "corrupt: %s", why);
}

/* --max-age: nothing archived for that long while the server wrote WAL. */
static void check_staleness(const wal_check_opts *opts, wal_check_report *r)
{
	time_t now = r->checked_at;
	if (opts->max_age < 0)
		return;
	const wal_check_pg *pg = &r->pg;
	time_t last = r->newest_mtime;
	int wrote = r->have_backlog && r->backlog.count > 0;
	if (pg->connected && pg->system_id == r->system_id && !pg->standby) {
		wal_name done;
		uint32_t seg_size = r->tree.seg_size ? r->tree.seg_size : WAL_SEG_SIZE_DEFAULT;
		uint64_t done_segno;
		if (pg->last_archived_time > last)
			last = pg->last_archived_time;
		/* a segment finished since the last one archived: WAL was written */
		if (pg->current_lsn &&
		    wal_name_parse(pg->last_archived_wal, &done, NULL) == WAL_OK &&
		    done.kind != WAL_NAME_HISTORY &&
		    wal_name_segno(&done, seg_size, &done_segno, NULL) == WAL_OK)
			wrote = wrote || pg->current_lsn / seg_size > done_segno + 1;
	} else if (!pg->connected && r->segments > 0) {
		wrote = 1; /* no server to ask: the newest segment's age alone */
	}
	if (wrote && last > 0 && now - last > opts->max_age)
		wal_check_problem_add(r, WAL_CHECK_STALE, WAL_OK,
				      "stale: nothing archived for %ld s (--max-age %ld)%s%s",
				      (long)(now - last), opts->max_age,
				      r->newest_segment[0] ? "; newest segment " : "",
				      r->newest_segment);
	else if (wrote && last == 0 && r->have_backlog && r->backlog.oldest_age > opts->max_age)
		wal_check_problem_add(
			r, WAL_CHECK_STALE, WAL_OK,
			"stale: nothing archived yet, %s waiting for %ld s (--max-age %ld)",
			r->backlog.oldest, r->backlog.oldest_age, opts->max_age);
}

static void read_local_state(const wal_config *cfg, const wal_check_opts *opts, wal_check_report *r)
{
	static const char *progs[3] = { "walpush", "walfetch", "prefetch" };
	wal_error err;
	for (int i = 0; i < 3; i++) {
		r->status_progs[i] = progs[i];
		r->have_status[i] = r->system_id && wal_status_read(cfg, r->system_id, progs[i],
								    &r->status[i], &err) == WAL_OK;
	}
	const char *dd = visible_datadir(opts, r);
	if (dd) {
		char wal_path[1200];
		snprintf(wal_path, sizeof(wal_path), "%s/pg_wal/walcheck", dd);
		r->have_backlog = wal_backlog_read(wal_path, &r->backlog, &err) == WAL_OK;
	}
}

wal_err wal_check_run(const wal_config *cfg, const wal_check_opts *opts, wal_check_report *r,
		      wal_error *e)
{
	wal_store *store = NULL;
	void *conn = NULL;
	wal_error err;
	wal_err rc;

	memset(r, 0, sizeof(*r));
	r->archive = cfg->archive;
	r->checked_at = time(NULL);
	wal_check_pg_inspect(opts, r, &conn);

	double t0 = now_ms();
	rc = wal_store_open(&store, cfg, &err);
	r->open_ms = now_ms() - t0;
	if (rc == WAL_OK && wal_store_auth(store))
		snprintf(r->credentials, sizeof(r->credentials), "%s", wal_store_auth(store));
	if (rc == WAL_ENOENT)
		rc = wal_error_recode(&err, WAL_EIO); /* no archive root: unreachable, not empty */
	if (rc != WAL_OK) {
		wal_check_problem_add(r, WAL_CHECK_FAILED, rc, "%s", err.msg);
		goto local;
	}
	rc = resolve_system_id(cfg, opts, r, store, &err);
	if (rc == WAL_ENOENT) {
		r->new_archive = 1; /* no cluster at all yet: healthy */
	} else if (rc != WAL_OK) {
		wal_check_problem_add(r, WAL_CHECK_FAILED, rc, "%s", err.msg);
		goto local;
	}

	/* the probe goes into the cluster's tree when there is one, else the root,
	 * so that it never leaves an empty tree behind that would count as a cluster */
	char tree_dir[32] = "", info[64];
	wal_stat st;
	snprintf(info, sizeof(info), "%" PRIu64 "/" WAL_INFO_NAME, r->system_id);
	if (r->system_id && wal_store_stat(store, info, &st, NULL) == WAL_OK)
		snprintf(tree_dir, sizeof(tree_dir), "%" PRIu64, r->system_id);
	rc = wal_check_probe(store, tree_dir, &r->probe, &err);
	if (rc != WAL_OK) {
		wal_check_problem_add(r, WAL_CHECK_FAILED, rc == WAL_ECORRUPT ? WAL_EIO : rc, "%s",
				      err.msg);
		goto local;
	}
	r->reachable = 1;

	if (opts->switch_wal && !r->new_archive)
		switch_wal(opts, r, store, conn);
	if (!r->new_archive) {
		rc = check_tree(cfg, opts, r, store, &err);
		if (rc == WAL_ENOENT)
			r->new_archive = 1;
		else if (rc == WAL_EINVAL)
			wal_check_problem_add(r, WAL_CHECK_FAILED, WAL_EINVAL, "%s", err.msg);
		else if (rc != WAL_OK)
			wal_check_problem_add(r, WAL_CHECK_FAILED, rc, "%s", err.msg);
	}
	if (opts->deep && r->listed && rc == WAL_OK) {
		rc = wal_check_deep(cfg, r->system_id, r->tree.objs, r->tree.count, cfg->parallel,
				    on_bad, r, &r->verified, &err);
		r->deep_done = rc == WAL_OK;
		if (rc != WAL_OK)
			wal_check_problem_add(r, WAL_CHECK_FAILED, rc, "--deep: %s", err.msg);
	}
local:
	check_spool(cfg, r);
	read_local_state(cfg, opts, r);
	check_staleness(opts, r);
	wal_store_close(store);
	wal_check_pg_close(conn);
	(void)e;
	return WAL_OK;
}

void wal_check_report_free(wal_check_report *r)
{
	wal_check_tree_free(&r->tree);
	wal_continuity_free(&r->cont);
	free(r->corrupt);
	free(r->problems);
	r->corrupt = NULL;
	r->problems = NULL;
}
