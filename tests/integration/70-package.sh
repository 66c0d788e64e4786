#!/bin/bash
# The Debian package, as an administrator meets it: built from a clean copy
# of the tree with packaging/build-deb.sh (unit tests run during the build),
# checked with lintian, installed with apt-get, then a PostgreSQL 15 primary
# archives with archive_command = 'walpush %p %f' and a base backup is
# restored with restore_command = 'walfetch %f %p', both the installed
# /usr/bin programs reading the installed /etc/walarchive.conf.  Finally
# dpkg --purge must leave no file behind.  Runs as root; needs dpkg-dev,
# debhelper, lintian, fakeroot and the Build-Depends of deb/control.

. "$(dirname "$0")/../lib/common.sh"
. "$(dirname "$0")/../lib/pg.sh"

SRC=$WALARCHIVE_SRC
T=$WALARCHIVE_TMP
CONF=/etc/walarchive.conf
CRON=/etc/cron.d/walarchive
SPOOL=/var/spool/walarchive
PROGRAMS="walpush walfetch walprune walcheck replinit"
export DEBIAN_FRONTEND=noninteractive
unset WALARCHIVE_CONFIG WALARCHIVE_MODULE_DIR

[ "$(id -u)" = 0 ] || { t_fail "runs as root (installs a package)"; t_done; }
for tool in dpkg-buildpackage dh lintian fakeroot; do
	command -v "$tool" >/dev/null ||
		{ t_fail "$tool is installed (apt-get install dpkg-dev debhelper lintian fakeroot)"; t_done; }
done

# one package test at a time on a machine: they install the same package
exec 9>/run/lock/walarchive-70-package.lock
flock -w 600 9 || { t_fail "another package test holds /run/lock/walarchive-70-package.lock"; t_done; }

if [ "$(dpkg-query -W -f='${db:Status-Status}' walarchive 2>/dev/null)" != "" ] &&
   [ "$(dpkg-query -W -f='${db:Status-Status}' walarchive 2>/dev/null)" != not-installed ]; then
	echo "# walarchive was installed (an earlier run?): purging it first"
	dpkg --purge walarchive >/dev/null
fi
if [ -e "$CONF" ] || [ -e "$CRON" ] || [ -e "$SPOOL" ]; then
	# the purge at the end would delete them
	t_fail "$CONF, $CRON and $SPOOL do not exist before the test (move them away)"
	t_done
fi

# ---- helpers -------------------------------------------------------------

# Every file and directory outside the volatile parts of the system, sorted:
# what the package may add and must take away again.
snapshot() {
	find /etc /usr /var/lib /var/cache /var/spool /var/mail /opt /srv -xdev \
		\( -path /var/lib/apt -o -path /var/cache/apt -o -path /var/cache/man \
		-o -path /var/cache/debconf -o -path /var/cache/ldconfig -o -path /var/lib/dpkg/updates \
		-o -path /var/lib/dpkg/triggers -o -path /var/lib/postgresql -o -path /var/lib/systemd \
		-o -path /var/lib/ucf/cache -o -name __pycache__ -o -name '*-old' \) -prune -o -print 2>/dev/null |
		LC_ALL=C sort
}

# Long and short options that a --help text names.
help_options() {
	grep -oE -- '(--[a-z][a-z-]*|(^|[][ ,/])-[a-zA-Z]([] ,]|$))' |
		sed -E 's/^[][ ,\/]//; s/[] ,]$//' | LC_ALL=C sort -u
}

# The roff source of an installed man page, with \- turned into -.
man_source() { zcat "$1" | sed 's/\\-/-/g'; }

# Options named anywhere in a man page's source.
man_all_options() {
	man_source "$1" | grep -oE -- '(--[a-z][a-z-]*|(^|[^A-Za-z0-9-])-[a-zA-Z]([^A-Za-z0-9-]|$))' |
		sed -E 's/^[^-]//; s/[^A-Za-z-]$//' | LC_ALL=C sort -u
}

# Options a man page describes in .TP entries (the line after .TP).
man_options() {
	man_source "$1" | awk 'prev == ".TP" { print } { prev = $1 }' |
		grep -oE -- '(--[a-z][a-z-]*|(^|[ "])-[a-zA-Z]([ "]|$))' | tr -d ' "' | LC_ALL=C sort -u
}

# ---- 1. build from a clean copy of the tree ------------------------------

OUT=$T/out
t0=$SECONDS
bash "$SRC/packaging/build-deb.sh" "$OUT" >"$T/build.log" 2>&1
rc=$?
echo "# build: $((SECONDS - t0)) s"
if [ $rc -ne 0 ]; then
	grep -E '\[FAIL\]|error:' "$T/build.log" | head -n 20 | sed 's/^/# /'
	tail -n 5 "$T/build.log" | sed 's/^/# /'
fi
t_eq "packaging/build-deb.sh builds the package (dpkg-buildpackage -us -uc -b)" "$rc" 0
DEB=$(tail -n 1 "$T/build.log")
[ $rc -eq 0 ] && [ -f "$DEB" ] || { t_fail "the build leaves $DEB"; t_done; }
t_match "the .deb is named walarchive_VERSION_ARCH.deb" "$(basename "$DEB")" '^walarchive_[0-9][^_]*_[a-z0-9]+\.deb$'
t_match "the unit tests ran during the build and passed (ctest via dh_auto_test)" \
	"$(grep -E 'tests passed, [0-9]+ tests failed out of' "$T/build.log")" \
	'^100% tests passed, 0 tests failed out of [1-9][0-9]*$'
t_eq "no compiler warning in the package build" "$(grep -c 'warning:' "$T/build.log")" 0

# a release build carries no test seam: nothing reads WALARCHIVE_FAULT
mkdir -p "$T/unpacked" && dpkg-deb -x "$DEB" "$T/unpacked"
t_eq "no program or module of the package has the fault seam (WALARCHIVE_FAULT)" \
	"$(grep -rlaF WALARCHIVE_FAULT "$T/unpacked/usr" | wc -l)" 0
PKG_VERSION=$(dpkg-deb -f "$DEB" Version)
t_eq "the package version is the one in deb/changelog" "$PKG_VERSION" \
	"$(sed -n '1s/^walarchive (\([^)]*\)).*/\1/p' "$SRC/deb/changelog")"
t_match "/etc/walarchive.conf is mode 0640 inside the .deb (never world-readable)" \
	"$(dpkg-deb -c "$DEB" | grep ' ./etc/walarchive.conf$')" '^-rw-r----- root/root '
# the archive module, for the distribution's PostgreSQL, as Debian packages extensions
MODDEB=$(dirname "$DEB")/postgresql-15-walarchive_${PKG_VERSION}_$(dpkg-architecture -qDEB_HOST_ARCH).deb
t_check "the build leaves the archive module's package $(basename "$MODDEB")" test -f "$MODDEB"
t_eq "it holds the module where Debian keeps PostgreSQL 15's extension libraries" \
	"$(dpkg-deb -c "$MODDEB" | awk '{ print $6 }' | grep '\.so$')" "./usr/lib/postgresql/15/lib/walarchive.so"
t_match "it depends on walarchive of the same version and on postgresql-15" \
	"$(dpkg-deb -f "$MODDEB" Depends)" "^walarchive \(= $PKG_VERSION\), postgresql-15"

# ---- 2. lintian ----------------------------------------------------------

lintian --show-overrides "$DEB" "$MODDEB" >"$T/lintian.log" 2>&1
grep -E '^[EWO]:' "$T/lintian.log" | sed 's/^/# lintian: /'
t_eq "lintian: no errors" "$(grep -c '^E:' "$T/lintian.log")" 0
t_eq "lintian: no warnings besides those overridden with a reason in deb/*.lintian-overrides" \
	"$(grep -c '^W:' "$T/lintian.log")" 0

# ---- 3. install ----------------------------------------------------------

snapshot >"$T/files.before"
apt-get install -y -q -o DPkg::Lock::Timeout=120 "$DEB" "$MODDEB" >"$T/install.log" 2>&1
rc=$?
[ $rc -eq 0 ] || tail -n 20 "$T/install.log" | sed 's/^/# /'
t_eq "apt-get install ./walarchive_*.deb ./postgresql-15-walarchive_*.deb" "$rc" 0
t_cleanup "dpkg --purge walarchive"
t_cleanup "dpkg --purge postgresql-15-walarchive"
t_eq "the package is installed" "$(dpkg-query -W -f='${db:Status-Abbrev}' walarchive 2>/dev/null)" "ii "

for p in $PROGRAMS; do
	t_check "/usr/bin/$p is installed, from the package" \
		sh -c "test -x /usr/bin/$p && dpkg -S /usr/bin/$p | grep -q '^walarchive: '"
	t_eq "$p --version is the package version" "$(/usr/bin/$p --version 2>&1)" \
		"$p (walarchive) ${PKG_VERSION%-*}"
done
t_eq "the postgres user finds walpush in /usr/bin" "$(as_pg sh -c 'command -v walpush')" /usr/bin/walpush

# manual pages: one per program and walarchive.conf(5), in step with --help
for p in $PROGRAMS; do
	page=/usr/share/man/man1/$p.1.gz
	if [ ! -f "$page" ]; then
		t_fail "manual page $page is installed"
		continue
	fi
	t_ok "manual page $page is installed"
	warn=$(LC_ALL=C.UTF-8 MANROFFSEQ='' MANWIDTH=80 man --warnings -E UTF-8 -l -Tutf8 -Z "$page" 2>&1 >/dev/null)
	t_eq "man $p renders without groff warnings" "$warn" ""
	missing=$(comm -23 <(/usr/bin/$p --help | help_options) <(man_all_options "$page") | tr '\n' ' ')
	t_eq "every option of $p --help is in $p(1)" "$missing" ""
	extra=$(comm -23 <(man_options "$page") <(/usr/bin/$p --help | help_options) | tr '\n' ' ')
	t_eq "every option $p(1) describes is in $p --help" "$extra" ""
	t_check "man $p finds the installed page" sh -c "man -w $p | grep -qx '$page'"
done
t_check "manual page walarchive.conf(5) is installed" test -f /usr/share/man/man5/walarchive.conf.5.gz

# the configuration file: a conffile, root:postgres 0640, every setting in it
SETTINGS=$(grep -oE '\{ S\([a-z0-9_]+,' "$SRC/lib/base/config.c" | sed -E 's/\{ S\(//; s/,//')
t_check "lib/base/config.c lists settings" test "$(echo "$SETTINGS" | wc -w)" -ge 20
t_eq "$CONF is root:postgres, mode 640" "$(stat -c '%U:%G %a' "$CONF")" "root:postgres 640"
t_match "the ownership is a dpkg-statoverride (kept on upgrades)" \
	"$(dpkg-statoverride --list "$CONF")" "^root postgres 0?640 $CONF\$"
t_eq "the spool directory $SPOOL is postgres:postgres, mode 700" \
	"$(stat -c '%U:%G %a' "$SPOOL" 2>&1)" "postgres:postgres 700"
CONFFILES=$(dpkg-query -W -f='${Conffiles}\n' walarchive)
t_match "$CONF is a conffile" "$CONFFILES" " $CONF [0-9a-f]{32}"
t_match "$CRON is a conffile" "$CONFFILES" " $CRON [0-9a-f]{32}"
missing=""
for s in $SETTINGS; do grep -Eq "^#$s( = .*| =)$|^#$s[[:space:]]+=" "$CONF" || missing+="$s "; done
t_eq "every setting of lib/base/config.c is in $CONF, commented out" "$missing" ""
t_eq "no setting is active in the shipped $CONF" "$(grep -cEv '^[[:space:]]*(#|$)' "$CONF")" 0
missing=""
for s in $SETTINGS; do
	man_source /usr/share/man/man5/walarchive.conf.5.gz | grep -Eq "^\.BR? $s( |$)" || missing+="$s "
done
t_eq "every setting of lib/base/config.c is described in walarchive.conf(5)" "$missing" ""
# numeric defaults written in lib/base/config.c's wal_config_init are the ones shown
wrong=""
BOOLS=$(grep -oE '\{ S\([a-z0-9_]+, T_BOOL' "$SRC/lib/base/config.c" | sed -E 's/\{ S\(//; s/,.*//')
while read -r name value; do
	if grep -qxF "$name" <<<"$BOOLS"; then
		[ "$value" = 1 ] && value=on || value=off
	fi
	grep -Eq "^#$name = $value([[:space:]]|$)" "$CONF" || wrong+="$name=$value "
done < <(sed -n '/^void wal_config_init/,/^}/p' "$SRC/lib/base/config.c" |
	sed -nE 's/^[[:space:]]*c->([a-z0-9_]+) = ([0-9]+);.*/\1 \2/p')
t_eq "$CONF shows the numeric defaults of wal_config_init" "$wrong" ""

# the cron jobs: shipped disabled, examples that run walprune and walcheck as
# postgres, each guarded so that it does nothing once the package is removed
t_eq "$CRON is root:root, mode 644 (as cron requires)" "$(stat -c '%U:%G %a' "$CRON")" "root:root 644"
t_eq "$CRON has no active job (only comments and variables)" \
	"$(grep -Ev '^[[:space:]]*(#|$)|^[A-Z_]+=' "$CRON")" ""
EXAMPLES=$(grep -E '^#[0-9*]' "$CRON" | sed 's/^#//')
t_eq "$CRON has two example job lines" "$(echo "$EXAMPLES" | grep -c .)" 2
for prog in walprune walcheck; do
	read -r _ _ _ _ _ job_user job_cmd <<<"$(grep -F " $prog " <<<"$EXAMPLES")"
	t_eq "the $prog example job runs as postgres" "$job_user" postgres
	t_match "the $prog example job runs $prog only while it is installed" "$job_cmd" \
		"^\\[ -x /usr/bin/$prog \\] && $prog "
done
CRON_CMD=$(grep -F ' walprune ' <<<"$EXAMPLES" | awk '{ $1 = $2 = $3 = $4 = $5 = $6 = ""; sub(/^ +/, ""); print }')

# the systemd units: walprune and walcheck, each a oneshot service as postgres
# and its timer, installed disabled (nothing enables or starts them)
UNITS="walprune.service walprune.timer walcheck.service walcheck.timer"
for u in $UNITS; do
	t_check "/lib/systemd/system/$u is installed, from the package" \
		sh -c "test -f /lib/systemd/system/$u && dpkg -S /lib/systemd/system/$u | grep -q '^walarchive: '"
done
for u in walprune.timer walcheck.timer; do
	t_eq "$u is disabled (systemctl is-enabled)" "$(systemctl is-enabled "$u" 2>&1)" disabled
	t_check "nothing links $u into timers.target.wants" test ! -e "/etc/systemd/system/timers.target.wants/$u"
done
for prog in walprune walcheck; do
	t_eq "$prog.service runs as postgres" \
		"$(sed -n 's/^User=//p' "/lib/systemd/system/$prog.service")" postgres
	t_match "$prog.service runs /usr/bin/$prog" \
		"$(sed -n 's/^ExecStart=//p' "/lib/systemd/system/$prog.service")" "^/usr/bin/$prog "
done
t_eq "walprune.service runs the cron example's command" \
	"$(sed -n 's/^ExecStart=//p' /lib/systemd/system/walprune.service)" "/usr/bin/${CRON_CMD#*&& }"
if command -v systemd-analyze >/dev/null; then
	for u in $UNITS; do
		# a unit whose program is not in this build cannot pass (ExecStart)
		prog=${u%%.*}
		if [ ! -x "/usr/bin/$prog" ]; then
			t_skip "systemd-analyze verify $u: /usr/bin/$prog is not in this build"
			continue
		fi
		out=$(systemd-analyze verify --man=no "/lib/systemd/system/$u" 2>&1)
		t_eq "systemd-analyze verify $u" "$?:$out" "0:"
	done
else
	t_skip "systemd-analyze verify: systemd-analyze is not installed"
fi

for f in copyright changelog.Debian.gz; do
	t_check "/usr/share/doc/walarchive/$f is installed" test -f "/usr/share/doc/walarchive/$f"
done
t_check "README is installed in /usr/share/doc/walarchive" \
	sh -c 'ls /usr/share/doc/walarchive/README.md* >/dev/null 2>&1'

# ---- 4. configure it as an administrator would; an upgrade keeps it ------

ARCH=$T/archive
mkdir -p "$ARCH"
chown postgres:postgres "$ARCH"
chmod 700 "$ARCH"
sed -i "s|^#archive = .*|archive = '$ARCH'|" "$CONF"
t_eq "$CONF now sets archive" "$(grep -c "^archive = '$ARCH'$" "$CONF")" 1
dpkg -i "$DEB" >"$T/reinstall.log" 2>&1
t_eq "installing the package again (an upgrade) succeeds without a prompt" "$?" 0
t_eq "the upgrade keeps the administrator's archive setting" \
	"$(grep -c "^archive = '$ARCH'$" "$CONF")" 1
t_eq "the upgrade keeps root:postgres 640" "$(stat -c '%U:%G %a' "$CONF")" "root:postgres 640"
t_eq "the upgrade leaves no .dpkg-* copies in /etc" \
	"$(ls /etc/walarchive.conf.* /etc/cron.d/walarchive.* 2>/dev/null)" ""

# ---- 5. a primary archives with the installed walpush --------------------

pg_new prim || { t_fail "initdb"; t_done; }
pg_conf prim "archive_mode = on" "archive_command = 'walpush %p %f'" "wal_level = replica"
t_setup "a PostgreSQL 15 primary starts with archive_command = 'walpush %p %f'" pg_start prim || t_done
SYSID=$(pg_sql prim "select system_identifier from pg_control_system()")

pg_pgbench prim -i -s 2 -q >"$T/pgbench.log" 2>&1
t_setup "pgbench -i -s 2" test $? -eq 0
# -X none: the backup has no WAL of its own, recovery must fetch it all
switch_wal prim >/dev/null  # so that walprune has WAL from before the backup to remove
pg_take_basebackup prim backup -X none
t_check "pg_basebackup -X none (waits until its WAL is archived)" test $? -eq 0
pg_sql prim "create table marker (v text)" "insert into marker values ('archived by walpush')" >/dev/null
LAST=$(switch_wal prim)
pg_wait_sql prim 90 "select coalesce(last_archived_wal, '') >= '$LAST' from pg_stat_archiver"
t_check "the archiver reaches $LAST" test $? -eq 0
t_eq "pg_stat_archiver.failed_count is 0" "$(pg_sql prim 'select failed_count from pg_stat_archiver')" 0
t_check "$LAST is in the archive under the cluster's system identifier" \
	test -f "$ARCH/$SYSID/${LAST:0:16}/$LAST.lz4"
t_eq "the backup history file is in the archive" \
	"$(find "$ARCH/$SYSID" -name '*.backup*' | wc -l)" 1
t_eq "archived objects belong to postgres, mode 600" \
	"$(stat -c '%U %a' "$ARCH/$SYSID/${LAST:0:16}/$LAST.lz4")" "postgres 600"

# every default written in $CONF is a valid value: uncommented, they load
ALLDEF=$T/all-defaults.conf
sed -E "s/^#([a-z_0-9]+ = .+)$/\1/" "$CONF" | grep -v "^archive = ''" >"$ALLDEF"
chown root:postgres "$ALLDEF"
chmod 640 "$ALLDEF"
t_check "the defaults shown in $CONF are uncommented in the copy" \
	test "$(grep -cE '^[a-z]' "$ALLDEF")" -ge 25
out=$(as_pg /usr/bin/walfetch -c "$ALLDEF" -D "$(pg_data prim)" 00000001000000FF000000FF \
	"$(pg_dir prim)/nothing" 2>&1)
rc=$?
[ -z "$out" ] || echo "# walfetch: $out"
t_eq "walfetch reads $CONF with every default uncommented (exit 1: not in the archive)" "$rc" 1

# the transport modules are installed and load
for url in "sftp://nobody@127.0.0.1:1/wal" "http://127.0.0.1:1/wal" "s3://bucket/wal"; do
	# S3 keys come from the environment: --set refuses secrets
	out=$(as_pg env AWS_ACCESS_KEY_ID=k AWS_SECRET_ACCESS_KEY=s /usr/bin/walfetch \
		-D "$(pg_data prim)" --set "archive=$url" --set timeout=2 \
		--set retries=0 --set s3_endpoint=http://127.0.0.1:1 --set s3_uri_style=path \
		--set fetch_on_error=continue \
		000000010000000000000001 "$(pg_dir prim)/nothing" 2>&1)
	rc=$?
	if [ $rc -eq 6 ] && ! grep -q 'cannot be loaded' <<<"$out"; then
		t_ok "walfetch loads the transport module for ${url%%:*} (unreachable: exit 6)"
	else
		t_fail "walfetch loads the transport module for ${url%%:*} (exit $rc: $out)"
	fi
done

# the encryption module is installed and loads; the programs do not link libcrypto
for prog in walpush walfetch walprune; do
	t_check "/usr/bin/$prog does not link libcrypto" bash -c "! ldd /usr/bin/$prog | grep -q libcrypto"
done
mkdir -p "$T/agekey" && age-keygen -o "$T/agekey/key.txt" 2>/dev/null
chown -R postgres: "$T/agekey" && chmod 600 "$T/agekey/key.txt"
out=$(as_pg /usr/bin/walfetch -c "$ALLDEF" -D "$(pg_data prim)" \
	--set "encrypt_identity=$T/agekey/key.txt" 00000001000000FF000000FF "$(pg_dir prim)/nothing" 2>&1)
rc=$?
[ -z "$out" ] || echo "# walfetch: $out"
t_eq "walfetch with encrypt_identity loads walarchive_crypto.so (exit 1: not in the archive)" "$rc" 1

# ---- 6. restore the backup with the installed walfetch -------------------

pg_conf backup "archive_mode = off" "restore_command = 'walfetch %f %p'"
as_pg touch "$(pg_data backup)/recovery.signal"
t_eq "the backup has no WAL segment of its own" \
	"$(find "$(pg_data backup)/pg_wal" -maxdepth 1 -name '0*' -type f | wc -l)" 0
pg_start backup || { t_fail "the restored copy starts"; t_done; }
pg_wait_sql backup 120 "select not pg_is_in_recovery()"
t_check "archive recovery with restore_command = 'walfetch %f %p' ends and promotes" test $? -eq 0
t_eq "the restored cluster has the row written before $LAST was archived" \
	"$(pg_sql backup 'select v from marker')" "archived by walpush"
t_check "the server log shows WAL restored from the archive" \
	grep -q 'restored log file "0000000100000000000000' "$(pg_dir backup)/server.log"
t_check "the programs keep their push/fetch-ahead state in the packaged spool_dir $SPOOL" \
	test -d "$SPOOL/$SYSID"
for prog in walpush walfetch; do
	t_match "$prog recorded its last success in $SPOOL/$SYSID/status (for walcheck)" \
		"$(head -n 1 "$SPOOL/$SYSID/status/$prog.success" 2>&1)" '^[0-9]+ 0 [0-9A-F]{24}$'
done

# ---- 6b. the same primary through the installed archive module ------------

pg_sql prim "alter system set archive_command = ''" "alter system set archive_library = 'walarchive'" \
	"select pg_reload_conf()" >/dev/null
sleep 1
pg_sql prim "insert into marker values ('archived by the module')" >/dev/null
LAST=$(switch_wal prim)
pg_wait_sql prim 90 "select coalesce(last_archived_wal, '') >= '$LAST' from pg_stat_archiver"
t_check "with archive_library = 'walarchive', the archiver reaches $LAST" test $? -eq 0
t_eq "pg_stat_archiver.failed_count is still 0" "$(pg_sql prim 'select failed_count from pg_stat_archiver')" 0
t_check "$LAST is in the archive $CONF names" test -f "$ARCH/$SYSID/${LAST:0:16}/$LAST.lz4"
t_check "... and decodes to the segment in pg_wal" \
	sh -c "lz4 -dc '$ARCH/$SYSID/${LAST:0:16}/$LAST.lz4' | cmp -s - '$(pg_data prim)/pg_wal/$LAST'"
apid=$(ps -o pid=,args= --ppid "$(head -n 1 "$(pg_data prim)/postmaster.pid")" | awk '/archiver/ { print $1 }')
t_check "the archiver mapped /usr/lib/postgresql/15/lib/walarchive.so" \
	grep -q ' /usr/lib/postgresql/15/lib/walarchive.so$' "/proc/$apid/maps"
pg_sql prim "alter system set archive_library = ''" "alter system set archive_command = 'walpush %p %f'" \
	"select pg_reload_conf()" >/dev/null

# ---- 7. walprune, as the cron example runs it ----------------------------

before=$(find "$ARCH" -type f | wc -l)
out=$(as_pg env -i PATH=/usr/bin:/bin HOME=/var/lib/postgresql sh -c "cd && $CRON_CMD --dry-run" 2>&1)
rc=$?
echo "$out" | sed 's/^/# /'
t_eq "the cron example's command runs as postgres with cron's PATH (with --dry-run)" "$rc" 0
out=$(as_pg env -i PATH=/usr/bin:/bin HOME=/var/lib/postgresql sh -c "cd && walprune --keep-backups 1" 2>&1)
rc=$?
echo "$out" | sed 's/^/# /'
t_eq "walprune --keep-backups 1 as postgres, from its home directory" "$rc" 0
after=$(find "$ARCH" -type f | wc -l)
t_check "walprune removed the WAL from before the only backup ($before -> $after objects)" \
	test "$after" -lt "$before"

# ---- 8. remove, then purge ----------------------------------------------

pg_stop backup
pg_stop prim
# the restored copy's prefetcher follows what the primary archived since:
# it stops once its server is gone, and must be done before the purge
[ -e "$SPOOL/$SYSID/.prefetch.lock" ] && timeout 60 flock "$SPOOL/$SYSID/.prefetch.lock" true
dpkg -L postgresql-15-walarchive >"$T/module.files"
dpkg --purge postgresql-15-walarchive >"$T/purge-module.log" 2>&1
t_eq "dpkg --purge postgresql-15-walarchive" "$?" 0
t_check "/usr/lib/postgresql/15/lib/walarchive.so is gone" test ! -e /usr/lib/postgresql/15/lib/walarchive.so
dpkg -L walarchive >"$T/package.files"
# removed but not purged, the cron file stays (a conffile): an enabled job
# must then do nothing, and say nothing that cron would mail
dpkg -r walarchive >"$T/remove.log" 2>&1
t_eq "dpkg -r walarchive" "$?" 0
t_check "$CRON stays after dpkg -r (a conffile)" test -f "$CRON"
t_check "/usr/bin/walprune is gone after dpkg -r" test ! -e /usr/bin/walprune
while read -r _ _ _ _ _ job_user job_cmd; do
	out=$(as_pg env -i PATH=/usr/bin:/bin HOME=/var/lib/postgresql sh -c "cd && $job_cmd" 2>&1)
	t_eq "once removed, the enabled job '$job_cmd' runs nothing and prints nothing" "$out" ""
done <<<"$(grep -E '^#[0-9*]' "$CRON" | sed 's/^#//')"
dpkg --purge walarchive >"$T/purge.log" 2>&1
rc=$?
[ $rc -eq 0 ] || sed 's/^/# /' "$T/purge.log"
t_eq "dpkg --purge walarchive" "$rc" 0
status=$(dpkg-query -W -f='${db:Status-Status}' walarchive 2>/dev/null)
t_check "the package is gone from dpkg's database (status '$status')" \
	test -z "$status" -o "$status" = not-installed
left=""
while read -r f; do
	[ -d "$f" ] && continue
	[ -e "$f" ] || [ -L "$f" ] && left+="$f "
done <"$T/package.files"
t_eq "no file of the package is left" "$left" ""
t_check "$CONF is gone" test ! -e "$CONF"
t_check "$CRON is gone" test ! -e "$CRON"
t_check "$SPOOL is gone" test ! -e "$SPOOL"
t_eq "the dpkg-statoverride of $CONF is gone" "$(dpkg-statoverride --list "$CONF")" ""
snapshot >"$T/files.after"
diff "$T/files.before" "$T/files.after" >"$T/files.diff"
sed 's/^/# /' "$T/files.diff" | head -n 20
t_eq "the files on the system are those before the install (none added, none lost)" \
	"$(grep -c '^[<>]' "$T/files.diff")" 0

t_done
