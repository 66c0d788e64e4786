/*
 * replinit standby: base backup of the primary into a staging directory
 * beside PGDATA, recovery configuration for the primary's version, a 0600
 * passfile, then one rename into place; optional slot and start.  A
 * failure leaves nothing that looks like a standby.  This file checks the
 * options and what is in PGDATA, plans and runs the steps.
 */
#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "sys/fileio.h"
#include "standby.h"

/* ---- local state ---- */

static long live_postmaster(const char *dir)
{
	char path[PATH_MAX + 32];
	FILE *f;
	long pid = 0;

	rpl_fmt(path, sizeof path, "%s/postmaster.pid", dir);
	f = fopen(path, "r");
	if (f == NULL)
		return 0;
	if (fscanf(f, "%ld", &pid) != 1)
		pid = 0;
	fclose(f);
	if (pid > 0 && (kill((pid_t)pid, 0) == 0 || errno == EPERM))
		return pid;
	return 0;
}

/* Counts the entries of dir and names the first few. */
static int list_entries(const char *dir, char *names, size_t size)
{
	DIR *d = opendir(dir);
	struct dirent *de;
	int count = 0;
	size_t n = 0;

	names[0] = '\0';
	if (d == NULL)
		return -1;
	while ((de = readdir(d)) != NULL) {
		if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
			continue;
		if (count < 8 && n + strlen(de->d_name) + 3 < size)
			n += (size_t)snprintf(names + n, size - n, "%s%s", n ? ", " : "",
					      de->d_name);
		count++;
	}
	closedir(d);
	if (count > 8 && n + 20 < size)
		rpl_fmt(names + n, size - n, " and %d more", count - 8);
	return count;
}

int rpl_standby_data_major(const char *dir)
{
	char path[PATH_MAX + 32], *text;
	wal_error e;
	int major;

	rpl_fmt(path, sizeof path, "%s/PG_VERSION", dir);
	if (rpl_read_file(path, &text, &e) != WAL_OK)
		return 0;
	major = atoi(text);
	free(text);
	return major;
}

/* Whether dir already is a standby configured exactly as this run would configure it. */
static int already_set_up(standby *s)
{
	char path[PATH_MAX + 64], value[2048];
	char *text = NULL;
	rpl_setting set[RPL_MAX_SETTINGS];
	int version, n, i, ok = 0;
	struct stat st;
	wal_error e;

	version = rpl_standby_data_major(s->pgdata) * 10000;
	if (version < 100000)
		return 0;
	rpl_fmt(path, sizeof path, "%s/standby.signal", s->pgdata);
	if (!rpl_uses_recovery_conf(version) && access(path, F_OK) != 0)
		return 0;
	rpl_fmt(path, sizeof path, "%s/%s", s->pgdata, rpl_recovery_file(version));
	if (rpl_read_file(path, &text, &e) != WAL_OK)
		return 0;
	n = rpl_standby_settings(s, version, set);
	for (i = 0; i < n; i++)
		if (!rpl_conf_get(text, set[i].name, value, sizeof value) ||
		    strcmp(value, set[i].value) != 0)
			goto out;
	if (s->o->port) {
		free(text);
		text = NULL;
		rpl_fmt(path, sizeof path, "%s/postgresql.auto.conf", s->pgdata);
		rpl_fmt(value, sizeof value, "%d", s->o->port);
		if (rpl_read_file(path, &text, &e) != WAL_OK)
			goto out;
		if (!rpl_conf_get(text, "port", path, sizeof path) || strcmp(path, value) != 0)
			goto out;
	}
	if (stat(s->passfile, &st) != 0 || (st.st_mode & 077))
		goto out;
	ok = 1;
out:
	free(text);
	return ok;
}

/* Removes staging directories left by an interrupted run (their pid is gone). */
static void remove_leftovers(standby *s)
{
	DIR *d = opendir(s->parent);
	struct dirent *de;
	char prefix[300], path[PATH_MAX + 300];
	wal_error e;

	if (d == NULL)
		return;
	rpl_fmt(prefix, sizeof prefix, ".%s.replinit-", s->base);
	while ((de = readdir(d)) != NULL) {
		const char *rest;
		long pid;
		if (strncmp(de->d_name, prefix, strlen(prefix)) != 0)
			continue;
		rest = de->d_name + strlen(prefix);
		if (strncmp(rest, "old-", 4) == 0)
			rest += 4;
		pid = atol(rest);
		if (pid <= 0 || kill((pid_t)pid, 0) == 0 || errno == EPERM)
			continue;
		rpl_fmt(path, sizeof path, "%s/%s", s->parent, de->d_name);
		if (rpl_remove_tree(path, &e) == WAL_OK)
			rpl_say(&s->out, RPL_MSG_NOTICE, "removed %s, left by an interrupted run",
				path);
	}
	closedir(d);
}

/* ---- the run ---- */

/* Checks the options: every name below ends up in a file or in primary_conninfo. */
static wal_err check_options(standby *s, wal_error *e)
{
	const rpl_standby_opts *o = s->o;
	const char *c;

	if (o->primary == NULL || o->pgdata == NULL)
		return wal_fail(e, WAL_EINVAL,
				"--primary HOST[:PORT] and --pgdata DIR are required");
	/* postgresql.auto.conf, recovery.conf, the passfile or primary_conninfo */
	if (rpl_check_text("--primary", o->primary, e) != WAL_OK ||
	    rpl_check_text("--pgdata", o->pgdata, e) != WAL_OK ||
	    (o->user && rpl_check_role("--user", o->user, e) != WAL_OK) ||
	    (o->passfile && rpl_check_text("--passfile", o->passfile, e) != WAL_OK) ||
	    (o->slot && rpl_check_text("--slot", o->slot, e) != WAL_OK) ||
	    (o->app_name && rpl_check_text("--application-name", o->app_name, e) != WAL_OK) ||
	    (o->restore_command &&
	     rpl_check_text("--restore-command", o->restore_command, e) != WAL_OK) ||
	    (o->config_file && rpl_check_text("--config", o->config_file, e) != WAL_OK))
		return e->code;
	if (rpl_hostport_parse(o->primary, s->host, sizeof s->host, &s->port, e) != WAL_OK)
		return e->code;
	rpl_fmt(s->user, sizeof s->user, "%s", o->user ? o->user : RPL_DEFAULT_USER);
	if (o->slot) {
		if (!*o->slot || strlen(o->slot) > RPL_NAME_MAX)
			return wal_fail(e, WAL_EINVAL, "--slot '%s': 1 to 63 characters", o->slot);
		for (c = o->slot; *c; c++)
			if (!((*c >= 'a' && *c <= 'z') || (*c >= '0' && *c <= '9') || *c == '_'))
				return wal_fail(e, WAL_EINVAL,
						"--slot '%s': only a-z, 0-9 and _ are allowed",
						o->slot);
	}
	if (geteuid() == 0)
		return wal_fail(e, WAL_EPERM,
				"standby: running as root would leave root-owned files the server "
				"refuses; run as the postgres os user "
				"(runuser -u postgres -- replinit ...)");
	return WAL_OK;
}

/*
 * PGDATA made absolute without trailing slashes, its parent (which must
 * exist) and base name, and whether it is a Debian cluster.
 */
static wal_err resolve_pgdata(standby *s, wal_error *e)
{
	const rpl_standby_opts *o = s->o;
	char buf[PATH_MAX], *slash;
	struct stat st;
	size_t len;

	if (o->pgdata[0] == '/')
		rpl_fmt(buf, sizeof buf, "%s", o->pgdata);
	else {
		char cwd[PATH_MAX];
		if (getcwd(cwd, sizeof cwd) == NULL)
			return wal_fail_errno(e, WAL_OK, errno, "cannot get the current directory");
		rpl_fmt(buf, sizeof buf, "%s/%s", cwd, o->pgdata);
		if (rpl_check_text("--pgdata", buf, e) != WAL_OK)
			return e->code;
	}
	len = strlen(buf);
	while (len > 1 && buf[len - 1] == '/')
		buf[--len] = '\0';
	rpl_fmt(s->pgdata, sizeof s->pgdata, "%s", buf);
	slash = strrchr(buf, '/');
	if (slash == NULL || slash[1] == '\0')
		return wal_fail(e, WAL_EINVAL, "--pgdata '%s': not a directory below /", o->pgdata);
	rpl_fmt(s->base, sizeof s->base, "%s", slash + 1);
	*slash = '\0';
	rpl_fmt(s->parent, sizeof s->parent, "%s", buf[0] ? buf : "/");
	if (stat(s->parent, &st) != 0 || !S_ISDIR(st.st_mode))
		return wal_fail(e, WAL_ENOENT, "--pgdata %s: parent directory %s does not exist",
				s->pgdata, s->parent);

	/* Debian: /var/lib/postgresql/V/C with its configuration in /etc/postgresql/V/C */
	if (sscanf(s->pgdata, "/var/lib/postgresql/%15[0-9]/%127[^/]", s->deb_version,
		   s->deb_cluster) == 2) {
		rpl_fmt(buf, sizeof buf, "/etc/postgresql/%s/%s/postgresql.conf", s->deb_version,
			s->deb_cluster);
		s->debian = access(buf, R_OK) == 0 && access("/usr/bin/pg_ctlcluster", X_OK) == 0;
	}
	return WAL_OK;
}

/* The passfile's path, application_name, restore_command and so primary_conninfo. */
static wal_err derive_names(standby *s, wal_error *e)
{
	const rpl_standby_opts *o = s->o;

	/* the standby reads primary_conninfo in PGDATA: a relative passfile would move */
	if (o->passfile && o->passfile[0] != '/') {
		char cwd[PATH_MAX];
		if (getcwd(cwd, sizeof cwd) == NULL)
			return wal_fail_errno(e, WAL_OK, errno, "cannot get the current directory");
		rpl_fmt(s->passfile, sizeof s->passfile, "%s/%s", cwd, o->passfile);
		if (rpl_check_text("--passfile", s->passfile, e) != WAL_OK)
			return e->code;
	} else if (o->passfile)
		rpl_fmt(s->passfile, sizeof s->passfile, "%s", o->passfile);
	else
		rpl_fmt(s->passfile, sizeof s->passfile, "%s/replinit.pgpass", s->pgdata);
	if (o->app_name)
		rpl_fmt(s->app_name, sizeof s->app_name, "%s", o->app_name);
	else {
		char *c;
		if (gethostname(s->app_name, sizeof s->app_name - 1) != 0)
			rpl_fmt(s->app_name, sizeof s->app_name, "standby");
		s->app_name[sizeof s->app_name - 1] = '\0';
		for (c = s->app_name; *c; c++)
			if (!((*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z') ||
			      (*c >= '0' && *c <= '9') || *c == '-' || *c == '_' || *c == '.'))
				*c = '_';
	}
	if (o->restore_command)
		rpl_fmt(s->restore_command, sizeof s->restore_command, "%s", o->restore_command);
	else
		rpl_default_command("walfetch", "%f %p", o->config_file, s->restore_command,
				    sizeof s->restore_command);
	rpl_conninfo(s->host, s->port, s->user, s->passfile, s->app_name, s->conninfo,
		     sizeof s->conninfo);
	return WAL_OK;
}

/* What is in PGDATA now: its entries, a running server, whether it is set up already. */
static wal_err look_at_pgdata(standby *s, wal_error *e)
{
	struct stat st;

	if (lstat(s->pgdata, &st) == 0) {
		struct stat parent_st;
		if (!S_ISDIR(st.st_mode))
			return wal_fail(e, WAL_EINVAL, "--pgdata %s: exists and is not a directory",
					s->pgdata);
		s->exists = 1;
		s->entries = list_entries(s->pgdata, s->entry_names, sizeof s->entry_names);
		if (s->entries < 0)
			return wal_fail_errno(e, WAL_OK, errno, "%s: cannot list", s->pgdata);
		s->running_pid = live_postmaster(s->pgdata);
		s->running = s->running_pid > 0;
		/* a mount point cannot be renamed over: back up into it directly */
		if (stat(s->parent, &parent_st) == 0 && parent_st.st_dev != st.st_dev)
			s->in_place = 1;
	} else if (errno != ENOENT) {
		return wal_fail_errno(e, WAL_OK, errno, "%s: cannot stat", s->pgdata);
	}
	if (access(s->parent, W_OK) != 0) {
		if (!s->exists)
			return wal_fail(e, WAL_EPERM,
					"--pgdata %s: cannot create it: %s is not writable for "
					"this user",
					s->pgdata, s->parent);
		s->in_place = 1;
	}
	s->set_up = s->exists && already_set_up(s);
	return WAL_OK;
}

static wal_err prepare(standby *s, wal_error *e)
{
	if (check_options(s, e) != WAL_OK || resolve_pgdata(s, e) != WAL_OK ||
	    derive_names(s, e) != WAL_OK || look_at_pgdata(s, e) != WAL_OK)
		return e->code;
	return WAL_OK;
}

static void plan_line(standby *s, const char *fmt, const char *a, const char *b)
{
	char text[2048];
	rpl_fmt(text, sizeof text, fmt, a, b);
	rpl_say(&s->out, RPL_MSG_PLAN, "%d. %s", ++s->step_no, text);
}

static void print_plan(standby *s)
{
	char buf[2600];

	rpl_say(&s->out, RPL_MSG_NOTICE, "dry run: the plan, nothing is changed");
	if (s->exists && s->entries > 0) {
		rpl_fmt(buf, sizeof buf, "remove the %d entries of %s (%s)", s->entries, s->pgdata,
			s->entry_names);
		plan_line(s, "%s%s", buf,
			  s->in_place ? " before the base backup"
				      : " after the new copy is complete");
	}
	if (s->o->slot)
		plan_line(s,
			  "create physical replication slot %s on the primary "
			  "(or use it if it exists)%s",
			  s->o->slot, "");
	rpl_fmt(buf, sizeof buf, "%s:%d (PostgreSQL %d) with %s -X stream -c fast -P into %s",
		s->host, s->port, s->version / 10000, s->basebackup, s->target);
	plan_line(s, "take a base backup of %s%s", buf, "");
	plan_line(s, "write passfile %s (mode 0600) with the password of role %s", s->passfile,
		  s->user);
	if (s->o->port) {
		rpl_fmt(buf, sizeof buf, "%d", s->o->port);
		plan_line(s, "set port = %s in postgresql.auto.conf%s", buf, "");
	}
	rpl_fmt(buf, sizeof buf,
		"primary_conninfo = '%s', restore_command = '%s', recovery_target_timeline = "
		"'latest'%s%s",
		s->conninfo, s->restore_command, s->o->slot ? ", primary_slot_name = " : "",
		s->o->slot ? s->o->slot : "");
	if (rpl_uses_recovery_conf(s->version))
		plan_line(s, "write recovery.conf: standby_mode = 'on', %s%s", buf, "");
	else
		plan_line(s, "write standby.signal and, in postgresql.auto.conf, %s%s", buf, "");
	if (!s->in_place)
		plan_line(s, "rename %s to %s", s->target, s->pgdata);
	if (s->o->start)
		plan_line(s,
			  "start the standby with %s and wait until pg_stat_wal_receiver "
			  "shows it streaming%s",
			  s->debian ? "pg_ctlcluster" : s->pg_ctl, "");
}

/* Refuses a PGDATA in use, or one not empty without --replace. */
static wal_err check_target(standby *s, wal_error *e)
{
	if (s->running)
		return wal_fail(e, WAL_EEXIST,
				"--pgdata %s: in use by a running server (pid %ld); stop it "
				"first, then use --replace",
				s->pgdata, s->running_pid);
	if (s->exists && s->entries > 0 && !s->o->replace)
		return wal_fail(e, WAL_EEXIST,
				"--pgdata %s: not empty (%d entries: %s); give --replace "
				"to remove them",
				s->pgdata, s->entries, s->entry_names);
	return WAL_OK;
}

/* The steps that make the standby, up to the rename into place. */
static wal_err make_standby(standby *s, wal_error *e)
{
	wal_err rc;

	if (s->in_place && s->entries > 0) {
		if ((rc = rpl_standby_empty_dir(s->pgdata, e)) != WAL_OK)
			return rc;
		rpl_say(&s->out, RPL_MSG_STEP, "removed the %d entries of %s (%s)", s->entries,
			s->pgdata, s->entry_names);
	}
	if (s->o->slot && (rc = rpl_standby_slot(s, 1, e)) != WAL_OK)
		return rc;
	if ((rc = rpl_standby_basebackup(s, e)) != WAL_OK)
		return rc;
	if ((rc = rpl_standby_write_passfile(s, e)) != WAL_OK)
		return rc;
	if ((rc = rpl_standby_write_recovery(s, e)) != WAL_OK)
		return rc;
	if (!s->in_place && (rc = rpl_standby_move_into_place(s, e)) != WAL_OK)
		return rc;
	return WAL_OK;
}

/*
 * After a failed step: removes what the run made (the copy, the slot) and
 * says what is left in PGDATA, after the cause rc.
 */
static void undo(standby *s, wal_err rc, wal_error *e)
{
	wal_error cleanup;
	char cause[768];

	rpl_fmt(cause, sizeof cause, "%s", e->msg);
	if (s->made_target) {
		if (s->in_place)
			rpl_standby_empty_dir(s->target, &cleanup);
		else
			rpl_remove_tree(s->target, &cleanup);
	}
	if (s->created_slot && rpl_standby_slot(s, 0, &cleanup) == WAL_OK)
		rpl_fmt(cause + strlen(cause), sizeof cause - strlen(cause),
			"; dropped slot %s again", s->o->slot);
	if (s->in_place)
		wal_fail(e, rc, "%s; %s was left empty", cause, s->pgdata);
	else
		wal_fail(e, rc, "%s; %s is unchanged", cause, s->pgdata);
}

wal_err rpl_standby_run(const rpl_standby_opts *o, rpl_result *res, wal_error *e)
{
	standby *s = calloc(1, sizeof *s);
	wal_err rc = WAL_OK;

	memset(res, 0, sizeof *res);
	if (s == NULL)
		return wal_fail(e, WAL_ENOMEM, "out of memory");
	s->o = o;
	s->out.fn = o->report;
	s->out.ctx = o->ctx;
	if ((rc = prepare(s, e)) != WAL_OK)
		goto out;

	if (s->set_up) {
		rpl_say(&s->out, RPL_MSG_NOTICE,
			"standby %s is already set up for %s:%d as user %s%s; nothing to do",
			s->pgdata, s->host, s->port, s->user, s->running ? " and running" : "");
		if (o->start && !o->dry_run)
			rc = rpl_standby_start_existing(s, res, e);
		goto out;
	}
	if ((rc = check_target(s, e)) != WAL_OK)
		goto out;
	if (!s->in_place)
		remove_leftovers(s);
	if ((rc = rpl_standby_password(s, e)) != WAL_OK)
		goto out;
	if ((rc = rpl_standby_inspect_primary(s, e)) != WAL_OK)
		goto out;
	rpl_say(&s->out, RPL_MSG_INFO,
		"primary %s:%d: PostgreSQL %d.%d, system identifier %s; %s layout", s->host,
		s->port, s->version / 10000, s->version % 10000, s->system_id,
		s->debian ? "Debian" : "plain data directory");
	if (s->in_place)
		rpl_fmt(s->target, sizeof s->target, "%s", s->pgdata);
	else
		rpl_fmt(s->target, sizeof s->target, "%s/.%s.replinit-%ld", s->parent, s->base,
			(long)getpid());

	if (o->dry_run) {
		print_plan(s);
		res->steps_planned = s->step_no;
		goto out;
	}
	if ((rc = make_standby(s, e)) != WAL_OK) {
		undo(s, rc, e);
		goto out;
	}
	res->steps_done = 1;
	/* a failed start leaves the standby: it is complete and keeps retrying */
	if (o->start)
		rc = rpl_standby_start(s, e);
out:
	explicit_bzero(s->password, sizeof s->password);
	free(s);
	return rc;
}
