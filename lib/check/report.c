/*
 * walcheck's report printed three ways: text for people, one JSON document,
 * and the Prometheus text format for node_exporter's textfile collector
 * (written atomically, so the collector never reads half a file).
 */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include "check/check.h"
#include "check/json.h"
#include "sys/fileio.h"

static const char *when(time_t t, char *buf, size_t cap)
{
	struct tm tm;
	if (!t)
		return "never";
	strftime(buf, cap, "%Y-%m-%d %H:%M:%S UTC", gmtime_r(&t, &tm));
	return buf;
}

static int healthy(const wal_check_report *r)
{
	for (size_t i = 0; i < r->nproblems; i++)
		if (r->problems[i].cls != WAL_CHECK_WARNING)
			return 0;
	return 1;
}

static void seg_name(const wal_check_report *r, uint32_t tli, uint64_t segno, char out[25])
{
	wal_segment_name(tli, segno, r->tree.seg_size ? r->tree.seg_size : WAL_SEG_SIZE_DEFAULT,
			 out);
}

/* "-LAST" after a range's first segment, or nothing for a range of one. */
static void range_end(const wal_check_report *r, uint32_t tli, uint64_t first, uint64_t last,
		      char out[26])
{
	out[0] = '\0';
	if (last != first) {
		out[0] = '-';
		seg_name(r, tli, last, out + 1);
	}
}

static const char *start_why(const wal_continuity *c)
{
	return c->start_from == WAL_START_BACKUP ? "oldest backup"
	       : c->start_from == WAL_START_FROM ? "--from"
						 : "oldest segment";
}

static void text_pg(const wal_check_report *r, FILE *out)
{
	const wal_check_pg *pg = &r->pg;
	char t1[40], t2[40];
	if (!pg->connected) {
		fprintf(out, "postgresql:  not connected (-d CONNSTR or -D DATADIR to check its "
			     "settings)\n");
		return;
	}
	fprintf(out, "postgresql:  %s %d, wal_level %s, archive_mode %s, %s '%s'%s%s%s\n",
		pg->standby ? "standby" : "primary", pg->server_version, pg->wal_level,
		pg->archive_mode, pg->archive_library[0] ? "archive_library" : "archive_command",
		pg->archive_library[0] ? pg->archive_library : pg->archive_command,
		pg->standby ? ", restore_command '" : "", pg->standby ? pg->restore_command : "",
		pg->standby ? "'" : "");
	fprintf(out, "archiver:    last archived %s at %s, last failed %s at %s\n",
		pg->last_archived_wal[0] ? pg->last_archived_wal : "nothing",
		when(pg->last_archived_time, t1, sizeof(t1)),
		pg->last_failed_wal[0] ? pg->last_failed_wal : "nothing",
		when(pg->last_failed_time, t2, sizeof(t2)));
	if (pg->switch_done)
		fprintf(out, "switch-wal:  %s %s after %.1f s\n", pg->switch_segment,
			pg->switch_ok ? "archived" : "NOT archived", pg->switch_wait_s);
}

static void text_tree(const wal_check_report *r, FILE *out)
{
	const wal_continuity *c = &r->cont;
	char a[25], b[26], t[40];
	if (r->new_archive) {
		fprintf(out, "continuity:  no WAL archived for this cluster yet\n");
		return;
	}
	if (!r->listed)
		return;
	fprintf(out,
		"contents:    %zu objects, %" PRIu64 " segments, %" PRId64
		" bytes in %u directories "
		"(segment size %u MiB)\n",
		r->tree.count, r->segments, r->tree.bytes, r->tree.dirs, r->tree.seg_size >> 20);
	if (r->continuity_done && !c->empty) {
		seg_name(r, c->start_tli, c->start_segno, a);
		seg_name(r, c->end_tli, c->end_segno, b);
		fprintf(out,
			"continuity:  timeline %u, from %s (%s) to %s: %" PRIu64 " of %" PRIu64
			" segments present\n",
			c->target_tli, a, start_why(c), b, c->present, c->needed);
	}
	for (size_t i = 0; i < c->nranges; i++) {
		seg_name(r, c->ranges[i].tli, c->ranges[i].first, a);
		range_end(r, c->ranges[i].tli, c->ranges[i].first, c->ranges[i].last, b);
		fprintf(out, "present:     timeline %u: %s%s\n", c->ranges[i].tli, a, b);
	}
	for (size_t i = 0; i < c->ngaps; i++) {
		const wal_range *g = &c->gaps[i];
		if (g->kind == WAL_GAP_HISTORY) {
			fprintf(out, "gap:         timeline %u: %08X.history missing\n", g->tli,
				g->tli);
			continue;
		}
		seg_name(r, g->tli, g->first, a);
		range_end(r, g->tli, g->first, g->last, b);
		fprintf(out, "gap:         timeline %u: %s%s%s\n", g->tli, a, b,
			g->waiting ? " (waiting in pg_wal to be archived)" : "");
	}
	if (r->newest_segment[0])
		fprintf(out, "newest:      %s, archived %s (%ld s ago)\n", r->newest_segment,
			when(r->newest_mtime, t, sizeof(t)),
			(long)(r->checked_at - r->newest_mtime));
	if (r->deep_done)
		fprintf(out, "deep:        %zu objects verified, %zu corrupt\n", r->verified,
			r->ncorrupt);
}

void wal_check_print_text(const wal_check_report *r, FILE *out)
{
	char t1[40], t2[40];
	fprintf(out, "archive:     %s", r->archive ? r->archive : "(none)");
	if (r->system_id)
		fprintf(out, ", cluster %" PRIu64 " (from %s)", r->system_id, r->system_id_from);
	fputc('\n', out);
	if (r->reachable)
		fprintf(out,
			"reachable:   yes: connect %.1f ms, write %.1f ms, read %.1f ms, remove "
			"%.1f ms\n",
			r->open_ms, r->probe.put_ms, r->probe.get_ms, r->probe.remove_ms);
	else
		fprintf(out, "reachable:   no\n");
	if (r->credentials[0])
		fprintf(out, "credentials: %s\n", r->credentials);
	if (r->spool_wanted)
		fprintf(out, "spool:       %s (push-ahead %d, fetch-ahead %d)\n",
			r->spool_ok ? "usable" : "NOT usable: push-ahead and fetch-ahead are off",
			r->push_ahead, r->fetch_ahead);
	text_pg(r, out);
	text_tree(r, out);
	for (int i = 0; i < 3; i++)
		if (r->have_status[i])
			fprintf(out, "%-12s last success %s, last failure %s%s%s\n",
				r->status_progs[i],
				when(r->status[i].have_success ? r->status[i].success.at : 0, t1,
				     sizeof(t1)),
				when(r->status[i].have_failure ? r->status[i].failure.at : 0, t2,
				     sizeof(t2)),
				r->status[i].have_failure ? ": " : "",
				r->status[i].have_failure ? r->status[i].failure.message : "");
	if (r->have_backlog)
		fprintf(out, "backlog:     %d files ready (%" PRIu64 " MiB)%s%s\n",
			r->backlog.count, r->backlog.bytes >> 20,
			r->backlog.oldest[0] ? ", oldest " : "", r->backlog.oldest);
	fprintf(out, "result:      %s\n", healthy(r) ? "healthy" : "NOT healthy");
}

static void json_status(wal_json *j, const char *key, const wal_status_event *ev, int have)
{
	if (!have) {
		wal_json_null(j, key);
		return;
	}
	wal_json_object(j, key);
	wal_json_int(j, "at", (int64_t)ev->at);
	wal_json_int(j, "exit_code", ev->exit_code);
	wal_json_str(j, "file", ev->file);
	wal_json_str(j, "message", ev->message);
	wal_json_end(j, '}');
}

static void json_pg(wal_json *j, const wal_check_pg *pg)
{
	wal_json_object(j, "postgresql");
	wal_json_bool(j, "connected", pg->connected);
	if (pg->connected) {
		wal_json_bool(j, "standby", pg->standby);
		wal_json_int(j, "server_version", pg->server_version);
		wal_json_str(j, "wal_level", pg->wal_level);
		wal_json_str(j, "archive_mode", pg->archive_mode);
		wal_json_str(j, "archive_command", pg->archive_command);
		wal_json_str(j, "archive_library", pg->archive_library);
		wal_json_str(j, "restore_command", pg->restore_command);
		wal_json_str(j, "current_wal", pg->current_wal[0] ? pg->current_wal : NULL);
		wal_json_str(j, "last_archived_wal",
			     pg->last_archived_wal[0] ? pg->last_archived_wal : NULL);
		wal_json_int(j, "last_archived_time", (int64_t)pg->last_archived_time);
		wal_json_str(j, "last_failed_wal",
			     pg->last_failed_wal[0] ? pg->last_failed_wal : NULL);
		wal_json_int(j, "last_failed_time", (int64_t)pg->last_failed_time);
		wal_json_int(j, "archived_count", pg->archived_count);
		wal_json_int(j, "failed_count", pg->failed_count);
	}
	if (pg->switch_done) {
		wal_json_object(j, "switch_wal");
		wal_json_str(j, "segment", pg->switch_segment);
		wal_json_bool(j, "archived", pg->switch_ok);
		wal_json_num(j, "wait_seconds", pg->switch_wait_s);
		wal_json_end(j, '}');
	}
	wal_json_end(j, '}');
}

static void json_ranges(wal_json *j, const wal_check_report *r, const char *key,
			const wal_range *ranges, size_t n)
{
	char a[25], b[25];
	wal_json_array(j, key);
	for (size_t i = 0; i < n; i++) {
		wal_json_object(j, NULL);
		wal_json_uint(j, "timeline", ranges[i].tli);
		if (ranges[i].kind == WAL_GAP_HISTORY) {
			snprintf(a, sizeof(a), "%08X.history", ranges[i].tli);
			wal_json_str(j, "history", a);
		} else {
			seg_name(r, ranges[i].tli, ranges[i].first, a);
			seg_name(r, ranges[i].tli, ranges[i].last, b);
			wal_json_str(j, "first", a);
			wal_json_str(j, "last", b);
			wal_json_uint(j, "segments", ranges[i].last - ranges[i].first + 1);
		}
		if (ranges == r->cont.gaps)
			wal_json_bool(j, "waiting", ranges[i].waiting);
		wal_json_end(j, '}');
	}
	wal_json_end(j, ']');
}

static void json_tree(wal_json *j, const wal_check_report *r)
{
	const wal_continuity *c = &r->cont;
	char a[25];
	wal_json_object(j, "archive_contents");
	wal_json_bool(j, "listed", r->listed);
	wal_json_uint(j, "objects", r->tree.count);
	wal_json_uint(j, "segments", r->segments);
	wal_json_int(j, "bytes", r->tree.bytes);
	wal_json_uint(j, "seg_size", r->tree.seg_size);
	wal_json_str(j, "newest_segment", r->newest_segment[0] ? r->newest_segment : NULL);
	wal_json_int(j, "newest_segment_time", (int64_t)r->newest_mtime);
	wal_json_end(j, '}');
	wal_json_object(j, "continuity");
	wal_json_bool(j, "checked", r->continuity_done && !c->empty);
	if (r->continuity_done && !c->empty) {
		wal_json_uint(j, "timeline", c->target_tli);
		seg_name(r, c->start_tli, c->start_segno, a);
		wal_json_str(j, "start", a);
		wal_json_str(j, "start_from", start_why(c));
		seg_name(r, c->end_tli, c->end_segno, a);
		wal_json_str(j, "end", a);
		wal_json_uint(j, "needed", c->needed);
		wal_json_uint(j, "present", c->present);
		wal_json_uint(j, "missing", r->missing);
	}
	json_ranges(j, r, "ranges", c->ranges, c->nranges);
	json_ranges(j, r, "gaps", c->gaps, c->ngaps);
	wal_json_end(j, '}');
	wal_json_object(j, "deep");
	wal_json_bool(j, "done", r->deep_done);
	wal_json_uint(j, "verified", r->verified);
	wal_json_array(j, "corrupt");
	for (size_t i = 0; i < r->ncorrupt; i++) {
		wal_json_object(j, NULL);
		wal_json_str(j, "object", r->corrupt[i].path);
		wal_json_str(j, "why", r->corrupt[i].why);
		wal_json_end(j, '}');
	}
	wal_json_end(j, ']');
	wal_json_end(j, '}');
}

void wal_check_print_json(const wal_check_report *r, FILE *out)
{
	static const char *classes[] = { "failed", "incomplete", "not_wired", "stale", "warning" };
	wal_json j;
	char sysid[24];
	wal_json_init(&j, out);
	wal_json_object(&j, NULL);
	wal_json_str(&j, "archive", r->archive);
	snprintf(sysid, sizeof(sysid), "%" PRIu64, r->system_id);
	wal_json_str(&j, "system_id", r->system_id ? sysid : NULL);
	wal_json_int(&j, "checked_at", (int64_t)r->checked_at);
	wal_json_bool(&j, "healthy", healthy(r));
	wal_json_bool(&j, "new_archive", r->new_archive);
	wal_json_object(&j, "reachability");
	wal_json_bool(&j, "reachable", r->reachable);
	wal_json_num(&j, "connect_ms", r->open_ms);
	wal_json_str(&j, "credentials", r->credentials[0] ? r->credentials : NULL);
	wal_json_str(&j, "probe", r->probe.path[0] ? r->probe.path : NULL);
	wal_json_num(&j, "put_ms", r->probe.put_ms);
	wal_json_num(&j, "get_ms", r->probe.get_ms);
	wal_json_num(&j, "remove_ms", r->probe.remove_ms);
	wal_json_end(&j, '}');
	wal_json_object(&j, "spool");
	wal_json_bool(&j, "wanted", r->spool_wanted);
	wal_json_bool(&j, "usable", r->spool_ok);
	wal_json_int(&j, "push_ahead", r->push_ahead);
	wal_json_int(&j, "fetch_ahead", r->fetch_ahead);
	wal_json_str(&j, "note", r->spool_note[0] ? r->spool_note : NULL);
	wal_json_end(&j, '}');
	json_pg(&j, &r->pg);
	json_tree(&j, r);
	wal_json_object(&j, "status");
	for (int i = 0; i < 3; i++) {
		wal_json_object(&j, r->status_progs[i] ? r->status_progs[i] : "?");
		json_status(&j, "last_success", &r->status[i].success,
			    r->have_status[i] && r->status[i].have_success);
		json_status(&j, "last_failure", &r->status[i].failure,
			    r->have_status[i] && r->status[i].have_failure);
		wal_json_end(&j, '}');
	}
	wal_json_end(&j, '}');
	if (r->have_backlog) {
		wal_json_object(&j, "backlog");
		wal_json_int(&j, "files", r->backlog.count);
		wal_json_uint(&j, "bytes", r->backlog.bytes);
		wal_json_str(&j, "oldest", r->backlog.oldest[0] ? r->backlog.oldest : NULL);
		wal_json_int(&j, "oldest_age_seconds", r->backlog.oldest_age);
		wal_json_end(&j, '}');
	} else {
		wal_json_null(&j, "backlog");
	}
	wal_json_array(&j, "problems");
	for (size_t i = 0; i < r->nproblems; i++) {
		wal_json_object(&j, NULL);
		wal_json_str(&j, "class", classes[r->problems[i].cls]);
		wal_json_str(&j, "message", r->problems[i].text);
		wal_json_end(&j, '}');
	}
	wal_json_end(&j, ']');
	wal_json_end(&j, '}');
}
