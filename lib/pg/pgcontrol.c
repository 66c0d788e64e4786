/*
 * Reading the system identifier and segment size from global/pg_control.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>
#include "sys/fileio.h"
#include "pg/pgcontrol.h"
#include "pg/walname.h"

/* pg_control_version of PostgreSQL 11 to 18 */
static const uint32_t known_versions[] = { 1100, 1201, 1300, 1700, 1800 };

wal_err wal_pgcontrol_read(const char *datadir, wal_pgcontrol *ctl, wal_error *e)
{
	char path[4096];
	unsigned char buf[232]; /* up to xlog_seg_size */
	snprintf(path, sizeof(path), "%s/global/pg_control", datadir);
	memset(ctl, 0, sizeof(*ctl));

	int fd = wal_sys_open(path, O_RDONLY, 0);
	if (fd < 0)
		return wal_fail_errno(e, WAL_OK, errno, "%s: cannot open", path);
	ssize_t n = wal_sys_read_full(fd, buf, sizeof(buf));
	int saved = errno;
	close(fd);
	if (n < 0)
		return wal_fail_errno(e, WAL_EIO, saved, "%s: cannot read", path);
	if (n < 16)
		return wal_fail(e, WAL_ECORRUPT, "%s: too short (%zd bytes)", path, n);
	memcpy(&ctl->system_id, buf, 8);
	memcpy(&ctl->control_version, buf + 8, 4);
	memcpy(&ctl->catalog_version, buf + 12, 4);
	for (size_t i = 0; i < sizeof(known_versions) / sizeof(known_versions[0]); i++)
		if (ctl->control_version == known_versions[i]) {
			size_t at = ctl->control_version == 1100 ? 220 : 228;
			if ((size_t)n >= at + 4)
				memcpy(&ctl->seg_size, buf + at, 4);
			if (!wal_seg_size_valid(ctl->seg_size))
				ctl->seg_size = 0;
			return WAL_OK;
		}
	return wal_fail(e, WAL_ECORRUPT, "%s: unknown control file version %u", path,
			ctl->control_version);
}

int wal_datadir_is_standby(const char *datadir)
{
	char path[4096], line[1024];
	snprintf(path, sizeof(path), "%s/standby.signal", datadir);
	if (access(path, F_OK) == 0)
		return 1;
	snprintf(path, sizeof(path), "%s/recovery.conf", datadir);
	FILE *f = fopen(path, "r");
	if (!f)
		return 0;
	int standby = 0;
	while (fgets(line, sizeof(line), f)) {
		char *p = line;
		while (*p == ' ' || *p == '\t')
			p++;
		if (strncmp(p, "standby_mode", 12) != 0)
			continue;
		p += 12;
		while (*p == ' ' || *p == '\t' || *p == '=' || *p == '\'')
			p++;
		standby = strncasecmp(p, "on", 2) == 0 || strncasecmp(p, "true", 4) == 0 ||
			  strncasecmp(p, "yes", 3) == 0 || *p == '1';
	}
	fclose(f);
	return standby;
}
