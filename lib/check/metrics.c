/*
 * walcheck --metrics: the report in Prometheus' text exposition format,
 * every metric named walarchive_* and labelled with the cluster, written
 * through the durable atomic file so node_exporter never reads half of it.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "check/check.h"
#include "io/stream.h"
#include "sys/fileio.h"

typedef struct metrics {
	FILE *out;
	char labels[160]; /* system_id="...", escaped */
} metrics;

/* A label value as the format wants it: \, " and newline escaped. */
static void escape_label(const char *text, char *out, size_t cap)
{
	size_t used = 0;
	for (const char *p = text; *p && used + 3 < cap; p++) {
		if (*p == '\\' || *p == '"') {
			out[used++] = '\\';
			out[used++] = *p;
		} else if (*p == '\n') {
			out[used++] = '\\';
			out[used++] = 'n';
		} else {
			out[used++] = *p;
		}
	}
	out[used] = '\0';
}

static void family(metrics *m, const char *name, const char *type, const char *help)
{
	fprintf(m->out, "# HELP walarchive_%s %s\n# TYPE walarchive_%s %s\n", name, help, name,
		type);
}

static void sample(metrics *m, const char *name, const char *extra, double value)
{
	fprintf(m->out, "walarchive_%s{%s%s%s} %.17g\n", name, m->labels, extra ? "," : "",
		extra ? extra : "", value);
}

static void gauge(metrics *m, const char *name, const char *help, double value)
{
	family(m, name, "gauge", help);
	sample(m, name, NULL, value);
}

static int healthy(const wal_check_report *r)
{
	for (size_t i = 0; i < r->nproblems; i++)
		if (r->problems[i].cls != WAL_CHECK_WARNING)
			return 0;
	return 1;
}

static void program_times(metrics *m, const wal_check_report *r, int failure)
{
	const char *name =
		failure ? "last_failure_timestamp_seconds" : "last_success_timestamp_seconds";
	family(m, name, "gauge",
	       failure ? "time of the last failure a program recorded (0: none)"
		       : "time of the last success a program recorded (0: none)");
	for (int i = 0; i < 3; i++) {
		char extra[64];
		const wal_status *st = &r->status[i];
		time_t at = !r->have_status[i] ? 0
			    : failure	       ? (st->have_failure ? st->failure.at : 0)
					       : (st->have_success ? st->success.at : 0);
		snprintf(extra, sizeof(extra), "program=\"%s\"",
			 r->status_progs[i] ? r->status_progs[i] : "");
		sample(m, name, extra, (double)at);
	}
}

void wal_check_print_metrics(const wal_check_report *r, FILE *out)
{
	metrics m = { .out = out };
	char sysid[24], esc[96];
	size_t gaps = 0;
	snprintf(sysid, sizeof(sysid), "%" PRIu64, r->system_id);
	escape_label(sysid, esc, sizeof(esc));
	snprintf(m.labels, sizeof(m.labels), "system_id=\"%s\"", esc);
	for (size_t i = 0; i < r->cont.ngaps; i++)
		gaps += !r->cont.gaps[i].waiting;

	gauge(&m, "up", "1 if the archive was reachable (probe written, read back, removed)",
	      r->reachable);
	gauge(&m, "healthy", "1 if walcheck found nothing wrong", healthy(r));
	gauge(&m, "check_timestamp_seconds", "time of this check", (double)r->checked_at);
	gauge(&m, "gaps", "gaps in the WAL a recovery needs (missing segments or history files)",
	      (double)gaps);
	gauge(&m, "missing_segments", "segments a recovery needs that the archive lacks",
	      (double)r->missing);
	gauge(&m, "corrupt_objects", "objects that failed verification (--deep)",
	      (double)r->ncorrupt);
	gauge(&m, "segments", "WAL segments in the archive", (double)r->segments);
	gauge(&m, "objects", "objects in the cluster's tree", (double)r->tree.count);
	gauge(&m, "bytes", "bytes stored in the cluster's tree", (double)r->tree.bytes);
	gauge(&m, "newest_segment_timestamp_seconds",
	      "when the newest segment was archived (0: none)", (double)r->newest_mtime);
	gauge(&m, "newest_segment_age_seconds", "age of the newest archived segment (-1: none)",
	      r->newest_mtime ? (double)(r->checked_at - r->newest_mtime) : -1);
	program_times(&m, r, 0);
	program_times(&m, r, 1);
	gauge(&m, "backlog_files", "files ready in pg_wal, not archived yet (-1: not visible)",
	      r->have_backlog ? r->backlog.count : -1);
	gauge(&m, "backlog_bytes", "bytes of the files ready in pg_wal (-1: not visible)",
	      r->have_backlog ? (double)r->backlog.bytes : -1);
	family(&m, "probe_seconds", "gauge", "time of each step of the reachability probe");
	sample(&m, "probe_seconds", "step=\"connect\"", r->open_ms / 1000.0);
	sample(&m, "probe_seconds", "step=\"write\"", r->probe.put_ms / 1000.0);
	sample(&m, "probe_seconds", "step=\"read\"", r->probe.get_ms / 1000.0);
	sample(&m, "probe_seconds", "step=\"remove\"", r->probe.remove_ms / 1000.0);
	if (r->pg.connected) {
		gauge(&m, "postgresql_archived_count", "pg_stat_archiver.archived_count",
		      (double)r->pg.archived_count);
		gauge(&m, "postgresql_failed_count", "pg_stat_archiver.failed_count",
		      (double)r->pg.failed_count);
		gauge(&m, "postgresql_last_archived_timestamp_seconds",
		      "pg_stat_archiver.last_archived_time", (double)r->pg.last_archived_time);
		gauge(&m, "postgresql_last_failed_timestamp_seconds",
		      "pg_stat_archiver.last_failed_time", (double)r->pg.last_failed_time);
	}
}

wal_err wal_check_write_metrics(const wal_check_report *r, const char *path, wal_error *e)
{
	char *text = NULL;
	size_t len = 0;
	FILE *mem = open_memstream(&text, &len);
	if (!mem)
		return wal_fail(e, WAL_ENOMEM, "out of memory");
	wal_check_print_metrics(r, mem);
	fclose(mem);
	wal_atomic_file f;
	wal_err rc = wal_atomic_open(&f, path, 0644, e);
	if (rc == WAL_OK) {
		rc = f.sink.write(&f.sink, text, len, e);
		if (rc == WAL_OK)
			rc = wal_atomic_flush(&f, e);
		if (rc == WAL_OK)
			rc = wal_atomic_commit(&f, WAL_ATOMIC_REPLACE, e);
		else
			wal_atomic_abort(&f);
	}
	free(text);
	return rc;
}
