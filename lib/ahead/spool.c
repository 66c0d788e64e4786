/*
 * The spool's trust (owned by the running user, writable by nobody else, no
 * link followed), whether push-ahead and fetch-ahead are on, and where
 * records and spooled segments are found in it.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pwd.h>
#include <signal.h>
#include <string.h>
#include "ahead/ahead.h"
#include "ahead/spool.h"

/* ---- the spool's trust ------------------------------------------------------ */

/*
 * A spool is used only when nobody but the running user (and root) can
 * have written to it, as OpenSSH's StrictModes asks of ~/.ssh: anyone can
 * compute an XXH64, so a segment's name and header prove only that it is
 * well made, not that walarchive made it.
 */

/* A user's name for messages, else "uid N". */
static const char *user_name(uid_t uid, char *buf, size_t cap)
{
	struct passwd *pw = getpwuid(uid);
	if (pw)
		snprintf(buf, cap, "%s", pw->pw_name);
	else
		snprintf(buf, cap, "uid %lu", (unsigned long)uid);
	return buf;
}

/* Whether st (of path) is a directory only the running user can change; WAL_EPERM if not. */
wal_err wal_spool_check_dir(const struct stat *st, const char *path, wal_error *e)
{
	char owner[64], me[64];
	if (!S_ISDIR(st->st_mode))
		return wal_fail(e, WAL_EPERM, "spool %s: not a directory", path);
	if (st->st_uid != geteuid())
		return wal_fail(e, WAL_EPERM,
				"spool %s: owned by %s, not by %s, who runs this: not "
				"trusted",
				path, user_name(st->st_uid, owner, sizeof(owner)),
				user_name(geteuid(), me, sizeof(me)));
	if (st->st_mode & (S_IWGRP | S_IWOTH))
		return wal_fail(e, WAL_EPERM,
				"spool %s: writable by %s (mode %04o): not trusted "
				"(chmod go-w %s)",
				path,
				(st->st_mode & S_IWGRP) && (st->st_mode & S_IWOTH)
					? "group and others"
				: st->st_mode & S_IWGRP ? "group"
							: "others",
				(unsigned)(st->st_mode & 07777), path);
	return WAL_OK;
}

/* Whether a spooled file open as fd (path) is one walarchive could have written. */
wal_err wal_spool_check_file(int fd, const char *path, wal_error *e)
{
	struct stat st;
	char owner[64], me[64];
	if (fstat(fd, &st) < 0)
		return wal_fail_errno(e, WAL_EIO, errno, "%s: cannot stat", path);
	if (!S_ISREG(st.st_mode))
		return wal_fail(e, WAL_EPERM, "%s: not a regular file", path);
	if (st.st_uid != geteuid())
		return wal_fail(e, WAL_EPERM,
				"%s: owned by %s, not by %s; not written by walarchive", path,
				user_name(st.st_uid, owner, sizeof(owner)),
				user_name(geteuid(), me, sizeof(me)));
	if (st.st_mode & (S_IWGRP | S_IWOTH))
		return wal_fail(e, WAL_EPERM,
				"%s: writable by group or others (mode %04o); not "
				"written by walarchive",
				path, (unsigned)(st.st_mode & 07777));
	return WAL_OK;
}

/*
 * Opens spool_dir if it can be trusted.  A symbolic link as spool_dir is
 * followed only when the running user or root owns the link and its target
 * passes the same checks.  WAL_ENOENT when there is no writable spool (the
 * features are quietly off), WAL_EPERM when others could write to it.
 */
static wal_err spool_root_open(const wal_config *cfg, int *out, wal_error *e)
{
	struct stat lst, st;
	const char *dir = cfg->spool_dir;
	char owner[64];
	*out = -1;
	if (!dir || !*dir)
		return wal_fail(e, WAL_ENOENT, "no spool_dir");
	if (lstat(dir, &lst) < 0)
		return wal_fail_errno(e, WAL_ENOENT, errno, "spool %s", dir);
	int flags = O_RDONLY | O_DIRECTORY | O_CLOEXEC;
	if (!S_ISLNK(lst.st_mode))
		flags |= O_NOFOLLOW;
	else if (lst.st_uid != geteuid() && lst.st_uid != 0)
		return wal_fail(e, WAL_EPERM, "spool %s: a symbolic link owned by %s: not followed",
				dir, user_name(lst.st_uid, owner, sizeof(owner)));
	else if (stat(dir, &lst) < 0)
		return wal_fail_errno(e, WAL_ENOENT, errno, "spool %s", dir);
	/* before the open, which another user's mode 0700 would refuse */
	wal_err rc = wal_spool_check_dir(&lst, dir, e);
	if (rc != WAL_OK)
		return rc;
	int fd = open(dir, flags);
	if (fd < 0)
		return wal_fail_errno(e,
				      errno == ENOENT || errno == EACCES ? WAL_ENOENT : WAL_EPERM,
				      errno, "spool %s", dir);
	/* and after it: the directory opened is the one checked */
	rc = fstat(fd, &st) < 0 ? wal_fail_errno(e, WAL_EIO, errno, "spool %s", dir)
				: wal_spool_check_dir(&st, dir, e);
	/* not writable (a read-only file system, mode 0500): off, as if absent */
	if (rc == WAL_OK && faccessat(fd, ".", W_OK | X_OK, AT_EACCESS) < 0)
		rc = wal_fail_errno(e, WAL_ENOENT, errno, "spool %s", dir);
	if (rc != WAL_OK) {
		close(fd);
		return rc;
	}
	*out = fd;
	return WAL_OK;
}

/*
 * Opens name under dir_fd (path, for messages) as a private directory, made
 * first (0700) if create and it is missing; never through a link.
 */
static wal_err spool_subdir_open(int dir_fd, const char *name, const char *path, int create,
				 int *out, wal_error *e)
{
	struct stat st;
	*out = -1;
	/* another user's directory is named as such, not as one that cannot be opened */
	if (fstatat(dir_fd, name, &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISDIR(st.st_mode) &&
	    wal_spool_check_dir(&st, path, e) != WAL_OK)
		return WAL_EPERM;
	int fd = openat(dir_fd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0 && errno == ENOENT && create) {
		if (mkdirat(dir_fd, name, 0700) == 0)
			fsync(dir_fd); /* the new entry is durable once its parent is */
		else if (errno != EEXIST)
			return wal_fail_errno(e, WAL_OK, errno, "spool %s: cannot create directory",
					      path);
		fd = openat(dir_fd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	}
	if (fd < 0) {
		if (errno == ELOOP || errno == ENOTDIR)
			return wal_fail(e, WAL_EPERM,
					"spool %s: a symbolic link or not a directory: "
					"not followed",
					path);
		return wal_fail_errno(e, WAL_OK, errno, "spool %s: cannot open", path);
	}
	wal_err rc = fstat(fd, &st) < 0 ? wal_fail_errno(e, WAL_EIO, errno, "spool %s", path)
					: wal_spool_check_dir(&st, path, e);
	if (rc != WAL_OK) {
		close(fd);
		return rc;
	}
	*out = fd;
	return WAL_OK;
}

/*
 * Opens <spool>/<system-id>, or with sub <spool>/<system-id>/<sub>, each
 * checked as private; with create, makes what is missing below a trusted
 * spool (never the spool itself, nor anything above it).
 */
wal_err wal_spool_open(const wal_config *cfg, uint64_t system_id, const char *sub, int create,
		       int *out, wal_error *e)
{
	char id[32], path[4400];
	int root, cluster;
	*out = -1;
	wal_err rc = spool_root_open(cfg, &root, e);
	if (rc != WAL_OK)
		return rc;
	snprintf(id, sizeof(id), "%" PRIu64, system_id);
	snprintf(path, sizeof(path), "%s/%s", cfg->spool_dir, id);
	rc = spool_subdir_open(root, id, path, create, &cluster, e);
	close(root);
	if (rc != WAL_OK || !sub) {
		*out = cluster;
		return rc;
	}
	snprintf(path, sizeof(path), "%s/%s/%s", cfg->spool_dir, id, sub);
	rc = spool_subdir_open(cluster, sub, path, create, out, e);
	close(cluster);
	return rc;
}

static int spool_usable(const wal_config *cfg)
{
	int fd;
	if (spool_root_open(cfg, &fd, NULL) != WAL_OK)
		return 0;
	close(fd);
	return 1;
}

wal_err wal_ahead_spool_check(const wal_config *cfg, uint64_t system_id, wal_error *e)
{
	int root, cluster;
	wal_err rc = spool_root_open(cfg, &root, e);
	if (rc != WAL_OK || !system_id) {
		if (root >= 0)
			close(root);
		return rc;
	}
	close(root);
	rc = wal_spool_open(cfg, system_id, NULL, 0, &cluster, e);
	if (rc == WAL_ENOENT)
		return WAL_OK; /* nothing spooled for this cluster yet */
	if (rc != WAL_OK)
		return rc;
	int listing = dup(cluster);
	DIR *d = listing >= 0 ? fdopendir(listing) : NULL;
	struct dirent *ent;
	while (rc == WAL_OK && d && (ent = readdir(d))) {
		struct stat st;
		char path[4400];
		/* the directories walarchive uses; links are never followed, so they do not count */
		if ((strcmp(ent->d_name, PUSHED_DIR) != 0 && !wal_name_is_dir(ent->d_name)) ||
		    fstatat(cluster, ent->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0 ||
		    !S_ISDIR(st.st_mode))
			continue;
		snprintf(path, sizeof(path), "%s/%" PRIu64 "/%s", cfg->spool_dir, system_id,
			 ent->d_name);
		rc = wal_spool_check_dir(&st, path, e);
	}
	if (d)
		closedir(d);
	else if (listing >= 0)
		close(listing);
	close(cluster);
	return rc;
}

/*
 * push_ahead = auto: on for archives over a network, where each call pays a
 * connection and round trips; off for a local directory, where walpush is
 * faster than the bookkeeping (measured: 0.8 times the speed on a burst).
 */
int wal_ahead_push_count(const wal_config *cfg)
{
	if (cfg->push_ahead >= 0)
		return cfg->push_ahead;
	int local =
		cfg->archive && (cfg->archive[0] == '/' || strncmp(cfg->archive, "file:", 5) == 0);
	return local ? 0 : WAL_PUSH_AHEAD_AUTO;
}

int wal_ahead_push_enabled(const wal_config *cfg)
{
	return wal_ahead_push_count(cfg) > 0 && spool_usable(cfg);
}

int wal_ahead_fetch_enabled(const wal_config *cfg)
{
	return cfg->fetch_ahead > 0 && spool_usable(cfg);
}

void wal_spool_record_path(const wal_config *cfg, uint64_t system_id, const char *name, char *out,
			   size_t cap)
{
	snprintf(out, cap, "%s/%" PRIu64 "/" PUSHED_DIR "/%s", cfg->spool_dir, system_id, name);
}

/* The spool directory that holds name's segments (for messages). */
void wal_spool_seg_dir(const wal_config *cfg, uint64_t system_id, const wal_name *name, char *out,
		       size_t cap)
{
	char dir[17];
	wal_name_dir(name, dir);
	snprintf(out, cap, "%s/%" PRIu64 "/%s", cfg->spool_dir, system_id, dir);
}

/* "<segment>.<xxh64>" and its NUL */

/*
 * Whether entry is the name of a spooled segment, "<segment>.<xxh64>": the
 * segment restored, verified and ready to be renamed into place, with the
 * XXH64 of its bytes.  Sets base to the segment name and hash to the hash.
 */
int wal_spool_entry(const char *entry, char base[WAL_NAME_MAX], char hash[17])
{
	size_t len = strlen(entry);
	if (len != SPOOL_ENTRY_SIZE - 1 || entry[24] != '.')
		return 0;
	for (size_t i = 25; i < len; i++)
		if (!((entry[i] >= '0' && entry[i] <= '9') || (entry[i] >= 'a' && entry[i] <= 'f')))
			return 0;
	memcpy(base, entry, 24);
	base[24] = '\0';
	if (hash)
		memcpy(hash, entry + 25, 17);
	return 1;
}

/*
 * Finds name in the spool: in the directory of its segments under the
 * cluster's directory (open as cluster), private and not reached through a
 * link.  1 if it is there: that directory open in *dir_fd (if not NULL; the
 * caller closes it), the entry's name in entry and its hash in hash.
 */
int wal_spool_find(int cluster, const wal_name *name, int *dir_fd, char entry[SPOOL_ENTRY_SIZE],
		   char hash[17])
{
	char dir[17], base[WAL_NAME_MAX], h[17];
	struct dirent *ent;
	struct stat st;
	int found = 0;
	wal_name_dir(name, dir);
	int fd = openat(cluster, dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		return 0;
	if (fstat(fd, &st) < 0 || wal_spool_check_dir(&st, dir, NULL) != WAL_OK) {
		close(fd);
		return 0;
	}
	int listing = dup(fd);
	DIR *d = listing >= 0 ? fdopendir(listing) : NULL;
	while (d && !found && (ent = readdir(d)))
		if (wal_spool_entry(ent->d_name, base, h) && strcmp(base, name->text) == 0) {
			/* spool_entry checked its length */
			memcpy(entry, ent->d_name, SPOOL_ENTRY_SIZE);
			if (hash)
				memcpy(hash, h, sizeof(h));
			found = 1;
		}
	if (d)
		closedir(d);
	else if (listing >= 0)
		close(listing);
	if (found && dir_fd)
		*dir_fd = fd;
	else
		close(fd);
	return found;
}
