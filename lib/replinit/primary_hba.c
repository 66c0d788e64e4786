/*
 * replinit primary and pg_hba.conf: the line added (the old file kept as
 * a backup), and the backup put back when the server refuses the new file.
 */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <libpq-fe.h>

#include "sys/fileio.h"
#include "primary.h"

/*
 * pg_hba_file_rules reads the file as it is on disk now.  A line it could
 * not parse has no type; one with a type was loaded and its error is only a
 * warning (hostssl with ssl off).  The server loads a file only when every
 * line parses.
 */
int rpl_primary_hba_refused(primary *p, char *buf, size_t size, wal_error *e)
{
	return rpl_primary_value(p,
				 "SELECT 'line ' || line_number || ': ' || error "
				 "FROM pg_hba_file_rules WHERE error IS NOT NULL AND type IS NULL "
				 "ORDER BY line_number LIMIT 1",
				 NULL, buf, size, e);
}

wal_err rpl_primary_do_hba(primary *p, wal_error *e)
{
	char backup[PATH_MAX + 32], stamp[32];
	char *now_text = NULL, *text = NULL;
	time_t now = time(NULL);
	struct tm tm;
	wal_err rc;

	/* read again: what was there when the plan was made may have been edited since */
	if ((rc = rpl_read_file(p->hba_file, &now_text, e)) != WAL_OK)
		return rc;
	if (strcmp(now_text, p->hba_text) != 0) {
		free(p->hba_text);
		p->hba_text = now_text;
		now_text = NULL;
		rpl_hba_find(p->hba_text, p->user, &p->net, p->ssl_on, &p->hba);
		if (p->hba.line && p->hba.usable) {
			rpl_say(&p->out, RPL_MSG_STEP,
				"%s was changed meanwhile; line %d now lets %s in from %s (%s)",
				p->hba_file, p->hba.line, p->user, p->net_text, p->hba.method);
			return WAL_OK;
		}
	}
	localtime_r(&now, &tm);
	strftime(stamp, sizeof stamp, "%Y%m%d-%H%M%S", &tm);
	rpl_fmt(backup, sizeof backup, "%s.replinit-%s", p->hba_file, stamp);
	text = rpl_hba_insert(p->hba_text, p->hba_line,
			      p->hba.line && !p->hba.usable ? p->hba.line : 0);
	if (text == NULL) {
		rc = wal_fail(e, WAL_ENOMEM, "%s: out of memory", p->hba_file);
		goto out;
	}
	/* same mode and owner as before; the old file stays as a backup under a name of its own */
	rc = rpl_write_atomic(p->hba_file, text, 0600, 1, backup, p->hba_backup,
			      sizeof p->hba_backup, e);
	if (rc != WAL_OK)
		goto out;
	rpl_say(&p->out, RPL_MSG_STEP, "added to %s: %s (previous file kept as %s)", p->hba_file,
		p->hba_line, p->hba_backup);
out:
	free(now_text);
	free(text);
	return rc;
}

/*
 * Puts the previous pg_hba.conf back after the server refused the new one:
 * the backup is renamed over it (the old file itself, with its mode and
 * owner), and the server reloads it.  Returns the error to report.
 */
static wal_err rollback_hba(primary *p, const char *refused, wal_error *e)
{
	char dir[PATH_MAX];
	wal_error ignore;
	PGresult *r;

	if (wal_sys_rename(p->hba_backup, p->hba_file) != 0)
		return wal_fail_errno(e, WAL_ECONFIG, errno,
				      "%s %s; the server refused the new file, and "
				      "putting back the previous one failed (mv %s %s)",
				      p->hba_file, refused, p->hba_backup, p->hba_file);
	p->hba_backup[0] = '\0';
	wal_dirname(p->hba_file, dir, sizeof dir);
	wal_fsync_dir(dir, &ignore);
	/* the reload that read the refused file changed nothing; this one reads the old again */
	r = rpl_primary_query(p, "SELECT pg_reload_conf()", NULL, NULL, &ignore);
	PQclear(r);
	return wal_fail(e, WAL_ECONFIG,
			"%s %s; the server refused the new file, so it was rolled back "
			"to the previous one",
			p->hba_file, refused);
}

/*
 * After a reload: a pg_hba.conf the server refuses.  The file replinit
 * wrote is rolled back; one it did not touch gets a warning (the reload
 * of the settings still happened).
 */
wal_err rpl_primary_check_hba(primary *p, wal_error *e)
{
	char buf[1024];
	int found = rpl_primary_hba_refused(p, buf, sizeof buf, e);

	if (found < 0 && p->hba_backup[0]) {
		/* the server cannot even read it (owner, mode): no better than a refused line */
		rpl_fmt(buf, sizeof buf, "cannot be read back: %s", e->msg);
		found = 1;
	}
	if (found < 0)
		return e->code;
	if (found && p->hba_backup[0])
		return rollback_hba(p, buf, e);
	if (found)
		rpl_say(&p->out, RPL_MSG_WARNING,
			"%s %s; the server refuses to load this file and keeps "
			"the rules it loaded before until this is fixed",
			p->hba_file, buf);
	return WAL_OK;
}
