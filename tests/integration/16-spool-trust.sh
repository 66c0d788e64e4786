#!/bin/bash
# SANITIZE_OK: also run against the ASan+UBSan build by tests/run.sh
# VALGRIND_OK: also run with every program under valgrind memcheck by tests/run.sh
# Who may write to the spool, and links: walpush and walfetch (as postgres)
# use a spool only when it is postgres's and nobody else can write to it;
# the attacker is a second, unprivileged user (nobody).  (a) a spool that
# group or others can write, or that another user owns, is ignored with one
# warning and walfetch restores from the archive; (b) a segment planted by
# nobody, with its right XXH64 name and a valid header, is never delivered;
# (c) a forged push-ahead record never makes walpush skip a file; (d) what
# walfetch takes from the spool is postgres's, mode 0600; (e) a link named
# like a directory of the spool is not followed by the prefetcher's cleanup;
# (f) walprune follows no link inside the local archive (its root may be
# one); (g) the prefetcher stops once its data directory or its server is
# gone, and never makes the directory again.  No server runs: initdb gives a
# pg_control and a first segment, the others are made from it.

. "$(dirname "$0")/../lib/common.sh"
. "$(dirname "$0")/../lib/pg.sh"
. "$(dirname "$0")/../lib/wal.sh"

export LC_ALL=C
BIN=$WALARCHIVE_BIN
T=$WALARCHIVE_TMP
for p in walpush walfetch walprune; do
	[ -x "$BIN/$p" ] || { t_fail "$BIN/$p is not installed"; t_done; }
done
for tool in python3 flock setpriv; do
	command -v $tool >/dev/null || { t_fail "$tool is not installed"; t_done; }
done
XXH64=$(dirname "$0")/../lib/xxh64.py
# under memcheck the programs are wrapper scripts and every call is slow
MEMCHECK=0
[ "$(head -c 2 "$BIN/walfetch")" = "#!" ] && MEMCHECK=1

W=$T/work            # sources and destinations, owned by postgres
ARCH=$T/archive
mkdir -p "$W" "$ARCH"
chown postgres:postgres "$W" "$ARCH"

pg_new c1 || { t_fail "initdb"; t_done; }
DATA=$(pg_data c1)
SEG1=000000010000000000000001
SYSID=$("$PGBIN/pg_controldata" "$DATA" | sed -n 's/^Database system identifier: *//p')

# segments of c1 at other numbers (mkseg, segname: tests/lib/wal.sh)
MKSEG_SRC=$DATA/pg_wal/$SEG1
as_nobody() { setpriv --reuid=nobody --regid=nogroup --clear-groups -- "$@"; }
# run PROG ARGS...: as postgres in the data directory; RC, OUT, ERR
run() {
	local prog=$1; shift
	as_pg env -C "$DATA" "$BIN/$prog" "$@" >"$T/out" 2>"$T/err"
	RC=$?
	OUT=$(cat "$T/out"); ERR=$(cat "$T/err")
}
# conf NAME SPOOL [key=value...]: $T/NAME.conf for the local archive
conf() {
	local name=$1 spool=$2; shift 2
	walarchive_conf "$T/$name.conf" "archive=$ARCH" "spool_dir=$spool" "fetch_ahead=4" \
		"parallel=2" "log_level=info" "$@"
}
# spool DIR MODE [OWNER]: a spool directory
spool() {
	mkdir -p "$1"
	chown "${3:-postgres}:postgres" "$1"
	chmod "$2" "$1"
}
# spool_has SPOOL SEGMENT: whether SEGMENT is spooled there
spool_has() { ls "$1/$SYSID/0000000100000000" 2>/dev/null | grep -q "^$2\."; }
t_cleanup "for s in $T/spool*/*/.prefetch.lock; do timeout 30 flock \$s true; done"
n_warnings() { printf '%s\n' "$ERR" | grep -c "warning: spool"; }

# segments 2..12 are archived (without a spool); 48 is not
walarchive_conf "$T/none.conf" "archive=$ARCH" "push_ahead=0" "fetch_ahead=0"
for n in $(seq 2 12); do
	mkseg "$W/$(segname "$n")" "$n"
	run walpush -c "$T/none.conf" "$W/$(segname "$n")" "$(segname "$n")"
done
t_check "segments 2..12 are archived" test -e "$ARCH/$SYSID/0000000100000000/$(segname 12).lz4"
S2=$(segname 2) S3=$(segname 3) S4=$(segname 4) S5=$(segname 5)
ABSENT=$(segname 48)

# ---- (a) a spool others can write to, or another user's -------------------

for kind in other group nobody; do
	SP=$T/spool-$kind
	case $kind in
		other) spool "$SP" 0777 ;;
		group) spool "$SP" 0770 ;;
		nobody) spool "$SP" 0755 nobody ;;
	esac
	conf "a-$kind" "$SP"
	rm -f "$W/d-$S2"
	run walfetch -c "$T/a-$kind.conf" "$S2" "$W/d-$S2"
	t_eq "(a) $kind: walfetch exits 0" "$RC" 0
	t_check "(a) $kind: with the archived bytes" cmp -s "$W/d-$S2" "$W/$S2"
	t_match "(a) $kind: restored from the archive" "$ERR" "$S2: restored from $SYSID/"
	t_eq "(a) $kind: one warning says why the spool is ignored" "$(n_warnings)" 1
	case $kind in
		other) t_match "(a) other: writable by others" "$ERR" \
			"walfetch: warning: spool $SP: writable by group and others \(mode 0777\): not trusted \(chmod go-w $SP\); fetch-ahead is off" ;;
		group) t_match "(a) group: writable by group" "$ERR" \
			"walfetch: warning: spool $SP: writable by group \(mode 0770\): not trusted" ;;
		nobody) t_match "(a) nobody: owned by nobody" "$ERR" \
			"walfetch: warning: spool $SP: owned by nobody, not by postgres, who runs this: not trusted; fetch-ahead is off" ;;
	esac
	sleep 0.3
	t_eq "(a) $kind: no prefetcher wrote to it" "$(ls -A "$SP" | wc -l)" 0
done
# a private spool whose cluster directory others can write to (left from before)
SP=$T/spool-sub
spool "$SP" 0700
spool "$SP/$SYSID" 0777
conf a-sub "$SP"
run walfetch -c "$T/a-sub.conf" "$S2" "$W/d-sub-$S2"
t_eq "(a) cluster directory writable by others: walfetch exits 0" "$RC" 0
t_match "(a) and warns about it" "$ERR" "warning: spool $SP/$SYSID: writable by group and others"
t_eq "(a) once" "$(n_warnings)" 1
t_eq "(a) and no prefetcher wrote to it" "$(ls -A "$SP/$SYSID" | wc -l)" 0
# a link as the spool: followed when postgres or root made it, not when nobody did
SP=$T/spool-target
spool "$SP" 0700
ln -s "$SP" "$T/spool-link-root"
conf a-link-root "$T/spool-link-root"
run walfetch -c "$T/a-link-root.conf" "$S2" "$W/d-lr-$S2"
t_eq "(a) spool_dir a link made by root to a private directory: exit 0, no warning" \
	"$RC $(n_warnings)" "0 0"
t_check "(a) and fetch-ahead used it" t_wait 30 test -d "$SP/$SYSID/0000000100000000"
prefetch_wait "$SP"
SP2=$T/spool-target2
spool "$SP2" 0700
mkdir -p "$T/nobody-dir"; chown nobody "$T/nobody-dir"
as_nobody ln -s "$SP2" "$T/nobody-dir/spool-link"
conf a-link-nobody "$T/nobody-dir/spool-link"
run walfetch -c "$T/a-link-nobody.conf" "$S2" "$W/d-ln-$S2"
t_eq "(a) spool_dir a link made by nobody: exit 0" "$RC" 0
t_match "(a) not followed, and says so" "$ERR" \
	"warning: spool $T/nobody-dir/spool-link: a symbolic link owned by nobody: not followed; fetch-ahead is off"
sleep 0.3
t_eq "(a) nothing written to its target" "$(ls -A "$SP2" | wc -l)" 0
# the Debian package's spool: postgres, 0700
SP=$T/spool-deb
spool "$SP" 0700
conf a-deb "$SP"
run walfetch -c "$T/a-deb.conf" "$S2" "$W/d-deb-$S2"
t_eq "(a) a spool like the package's (postgres, 0700): exit 0, no warning" "$RC $(n_warnings)" "0 0"
t_check "(a) and fetch-ahead spooled $S3 there" t_wait 30 spool_has "$SP" "$S3"
t_wait 30 spool_has "$SP" "$S5"
prefetch_wait "$SP"

# ---- (b) a segment planted by another user ----------------------------------

# a segment that is not in the archive, well made: the header of c1 at 48, 16
# MiB of nobody's bytes, named with its XXH64
mkseg "$T/evil" 48 random
EVIL_HASH=$(python3 "$XXH64" "$T/evil")
# the helper computes XXH64 as walarchive does: a spooled name proves it
OK_NAME=$(ls "$T/spool-deb/$SYSID/0000000100000000" | grep "^$S3\." | head -n 1)
t_eq "(b) the test's XXH64 is walarchive's" "${OK_NAME#*.}" "$(python3 "$XXH64" "$W/$S3")"
plant() {   # plant SPOOL: nobody puts the segment into SPOOL's directory for 48
	as_nobody mkdir -p "$1/$SYSID/0000000100000000" 2>/dev/null
	as_nobody cp "$T/evil" "$1/$SYSID/0000000100000000/$ABSENT.$EVIL_HASH"
}
for kind in other sub; do
	SP=$T/spool-b-$kind
	spool "$SP" 0777
	if [ $kind = sub ]; then chmod 0755 "$SP"; spool "$SP/$SYSID" 0777; fi
	plant "$SP"
	t_check "(b) $kind: nobody planted $ABSENT" test -e "$SP/$SYSID/0000000100000000/$ABSENT.$EVIL_HASH"
	conf "b-$kind" "$SP"
	rm -f "$W/d-$ABSENT"
	run walfetch -c "$T/b-$kind.conf" "$ABSENT" "$W/d-$ABSENT"
	t_eq "(b) $kind: walfetch $ABSENT exits 1 (not in the archive)" "$RC" 1
	t_check "(b) $kind: nothing delivered" test ! -e "$W/d-$ABSENT"
	t_check "(b) $kind: the planted file is not taken either" \
		test -e "$SP/$SYSID/0000000100000000/$ABSENT.$EVIL_HASH"
done
# in a private spool, a file nobody owns (there from before the spool was
# made private): dropped, never delivered
SP=$T/spool-b-file
spool "$SP" 0700
spool "$SP/$SYSID" 0700
spool "$SP/$SYSID/0000000100000000" 0700
cp "$T/evil" "$SP/$SYSID/0000000100000000/$ABSENT.$EVIL_HASH"
chown nobody "$SP/$SYSID/0000000100000000/$ABSENT.$EVIL_HASH"
conf b-file "$SP"
run walfetch -c "$T/b-file.conf" "$ABSENT" "$W/d-$ABSENT"
t_eq "(b) a spooled file owned by nobody: exit 1" "$RC" 1
t_check "(b) nothing delivered" test ! -e "$W/d-$ABSENT"
t_match "(b) the copy is dropped, and why" "$ERR" \
	"warning: $ABSENT: spooled copy dropped: .*$ABSENT.$EVIL_HASH: owned by nobody, not by postgres"
# the same bytes, postgres's but writable by others: dropped too
cp "$T/evil" "$SP/$SYSID/0000000100000000/$ABSENT.$EVIL_HASH"
chown postgres "$SP/$SYSID/0000000100000000/$ABSENT.$EVIL_HASH"
chmod 0666 "$SP/$SYSID/0000000100000000/$ABSENT.$EVIL_HASH"
run walfetch -c "$T/b-file.conf" "$ABSENT" "$W/d-$ABSENT"
t_eq "(b) a spooled file writable by others: exit 1, nothing delivered" \
	"$RC $(test -e "$W/d-$ABSENT" && echo delivered)" "1 "
t_match "(b) and says why" "$ERR" "writable by group or others \(mode 0666\)"
# a link in the spool's place of a segment: never followed
ln -s "$T/evil" "$SP/$SYSID/0000000100000000/$ABSENT.$EVIL_HASH"
run walfetch -c "$T/b-file.conf" "$ABSENT" "$W/d-$ABSENT"
t_eq "(b) a spooled link: exit 1, nothing delivered" \
	"$RC $(test -e "$W/d-$ABSENT" && echo delivered)" "1 "
t_check "(b) what it pointed at is untouched" test -f "$T/evil"

# ---- (c) a forged push-ahead record ------------------------------------------

# segment 40 is not archived; nobody writes a record saying it is, with its
# right size and XXH64, for this archive
S40=$(segname 40)
mkseg "$W/$S40" 40
mkdir -p "$W/archive_status"; chown postgres "$W/archive_status"
H40=$(python3 "$XXH64" "$W/$S40")
forge() {   # forge DIR: nobody's record of S40 in DIR
	as_nobody sh -c "mkdir -p '$1' 2>/dev/null; printf '%s %s %s %s\n' 16777216 $H40 \
		'$SYSID/0000000100000000/$S40.lz4' '$ARCH' > '$1/$S40'"
}
obj40=$ARCH/$SYSID/0000000100000000/$S40.lz4
for kind in spool pushed file; do
	SP=$T/spool-c-$kind
	rm -f "$obj40"
	case $kind in
		spool) spool "$SP" 0777; forge "$SP/$SYSID/pushed" ;;
		pushed) spool "$SP" 0755; spool "$SP/$SYSID" 0755; spool "$SP/$SYSID/pushed" 0777
			forge "$SP/$SYSID/pushed" ;;
		file) spool "$SP" 0755; spool "$SP/$SYSID" 0755; spool "$SP/$SYSID/pushed" 0777
			forge "$SP/$SYSID/pushed"; chmod 0700 "$SP/$SYSID/pushed" ;;
	esac
	t_check "(c) $kind: nobody's record of $S40 is there" test -s "$SP/$SYSID/pushed/$S40"
	conf "c-$kind" "$SP" "push_ahead=4"
	run walpush -c "$T/c-$kind.conf" "$W/$S40" "$S40"
	t_eq "(c) $kind: walpush $S40 exits 0" "$RC" 0
	t_match "(c) $kind: it archived the file, not the record" "$ERR" "$S40: archived at "
	t_check "(c) $kind: $S40 is in the archive" test -s "$obj40"
done
t_match "(c) the record in a private spool but nobody's: ignored, no warning" "$(n_warnings)" "^0$"
t_check "(c) and used up" test ! -e "$T/spool-c-file/$SYSID/pushed/$S40"
t_check "(c) nobody's record in a spool others can write to is left alone" \
	test -s "$T/spool-c-spool/$SYSID/pushed/$S40"
# a link as the record, to a record postgres wrote: not followed either
SP=$T/spool-c-link
spool "$SP" 0700; spool "$SP/$SYSID" 0700; spool "$SP/$SYSID/pushed" 0700
printf '%s %s %s %s\n' 16777216 "$H40" "$SYSID/0000000100000000/$S40.lz4" "$ARCH" > "$T/rec40"
chown postgres "$T/rec40"; chmod 0600 "$T/rec40"
ln -s "$T/rec40" "$SP/$SYSID/pushed/$S40"
conf c-link "$SP" "push_ahead=4"
rm -f "$obj40"
run walpush -c "$T/c-link.conf" "$W/$S40" "$S40"
t_eq "(c) a record that is a link: walpush exits 0" "$RC" 0
t_match "(c) and archives the file" "$ERR" "$S40: archived at "
t_check "(c) $S40 is in the archive" test -s "$obj40"
t_check "(c) the link is removed as a link, its target kept" \
	test ! -L "$SP/$SYSID/pushed/$S40" -a -s "$T/rec40"

# ---- (d) what is taken from the spool: postgres's, mode 0600 ----------------

SP=$T/spool-deb
prefetch_wait "$SP"
f4=$(ls "$SP/$SYSID/0000000100000000/" | grep "^$S4\." | head -n 1)
t_check "(d) $S4 is spooled" test -n "$f4"
# a spooled file readable by others (an umask, an administrator's chmod)
chmod 0644 "$SP/$SYSID/0000000100000000/$f4"
run walfetch -c "$T/a-deb.conf" "$S4" "$W/d-$S4"
t_eq "(d) walfetch $S4 exits 0" "$RC" 0
t_match "(d) from the spool" "$ERR" "$S4: restored from the spool"
t_eq "(d) the restored file is postgres's, mode 0600" "$(stat -c '%U %a' "$W/d-$S4")" "postgres 600"
t_check "(d) with the segment's bytes" cmp -s "$W/d-$S4" "$W/$S4"
prefetch_wait "$SP"
# onto another file system (a copy)
XDEV=$(mktemp -d /dev/shm/walarchive-xdev.XXXXXX)
chown postgres:postgres "$XDEV"
t_cleanup "rm -rf '$XDEV'"
f5=$(ls "$SP/$SYSID/0000000100000000/" | grep "^$S5\." | head -n 1)
[ -n "$f5" ] && chmod 0644 "$SP/$SYSID/0000000100000000/$f5"
run walfetch -c "$T/a-deb.conf" "$S5" "$XDEV/$S5"
t_eq "(d) walfetch $S5 onto another file system exits 0" "$RC" 0
t_match "(d) from the spool" "$ERR" "$S5: restored from the spool"
t_eq "(d) the copy is postgres's, mode 0600" "$(stat -c '%U %a' "$XDEV/$S5")" "postgres 600"
prefetch_wait "$SP"

# ---- (e) a link named like a directory of the spool --------------------------

SP=$T/spool-e
spool "$SP" 0700
spool "$SP/$SYSID" 0700
VICTIM=$T/victim         # a directory postgres can write to
mkdir -p "$VICTIM"
cp "$DATA/global/pg_control" "$VICTIM/pg_control"
cp "$W/$S3" "$VICTIM/$S3.$(python3 "$XXH64" "$W/$S3")"
echo keep > "$VICTIM/notes"
: > "$VICTIM/.old.tmp"; touch -d '2 hours ago' "$VICTIM/.old.tmp"
chown -R postgres:postgres "$VICTIM"
before=$(ls -A "$VICTIM" | sort | tr '\n' ' ')
# as postgres could have made it, and as nobody could, in a spool nobody may write
as_pg ln -s "$VICTIM" "$SP/$SYSID/0000000100000000"
conf e "$SP"
run walfetch -c "$T/e.conf" "$S2" "$W/d-e-$S2"
t_eq "(e) walfetch $S2 exits 0" "$RC" 0
t_check "(e) the link was removed as a link" t_wait 30 test ! -L "$SP/$SYSID/0000000100000000"
prefetch_wait "$SP"
t_eq "(e) every file of the link's target survives the prefetcher's cleanup" \
	"$(ls -A "$VICTIM" | sort | tr '\n' ' ')" "$before"
t_check "(e) pg_control's copy is intact" cmp -s "$VICTIM/pg_control" "$DATA/global/pg_control"
# the next call spools again, into a directory of its own
run walfetch -c "$T/e.conf" "$S3" "$W/d-e-$S3"
t_eq "(e) walfetch $S3 exits 0" "$RC" 0
t_check "(e) and fetch-ahead works again, in a real directory" t_wait 30 spool_has "$SP" "$S4"
t_check "(e) not a link" test ! -L "$SP/$SYSID/0000000100000000"
prefetch_wait "$SP"
t_eq "(e) the target still has its files" "$(ls -A "$VICTIM" | sort | tr '\n' ' ')" "$before"

# ---- (f) walprune and links inside the local archive -------------------------

# an archive whose root is a link (as an administrator makes one): works
PA=$T/prune-real
mkdir -p "$PA"; chown postgres:postgres "$PA"
ln -s "$PA" "$T/prune-root"
walarchive_conf "$T/f.conf" "archive=$T/prune-root" "push_ahead=0" "fetch_ahead=0"
for n in 2 3 4 5 6; do run walpush -c "$T/f.conf" "$W/$(segname "$n")" "$(segname "$n")"; done
t_check "(f) walpush through an archive root that is a link" test -s "$PA/$SYSID/0000000100000000/$S5.lz4"
V2=$T/victim2
mkdir -p "$V2/dir"
for n in 2 3; do cp "$W/$(segname "$n")" "$V2/dir/$(segname "$n")"; done
echo target > "$V2/file"
chown -R postgres:postgres "$V2"
# a directory-like link, and a segment-like link to a file
as_pg ln -s "$V2/dir" "$PA/$SYSID/0000000100000001"
as_pg ln -s "$V2/file" "$PA/$SYSID/0000000100000000/000000010000000000000001"
run walprune -c "$T/f.conf" --before "$S5"
t_eq "(f) walprune --before $S5 exits 0" "$RC" 0
t_check "(f) it removed what sorts before $S5" test ! -e "$PA/$SYSID/0000000100000000/$S2.lz4"
t_check "(f) and kept $S5" test -s "$PA/$SYSID/0000000100000000/$S5.lz4"
t_eq "(f) the files behind the links survive" "$(ls "$V2/dir" | wc -l) $(cat "$V2/file")" "2 target"
# the cluster's directory itself a link: refused, nothing behind it removed
mv "$PA/$SYSID" "$T/moved-cluster"
ln -s "$T/moved-cluster" "$PA/$SYSID"
n_before=$(find "$T/moved-cluster" -type f | wc -l)
run walprune -c "$T/f.conf" --before "$(segname 6)"
t_check "(f) a link as the cluster's directory: walprune fails (exit $RC)" test "$RC" -ne 0
t_match "(f) and says why" "$ERR" "symbolic link"
t_eq "(f) nothing behind the link is removed" "$(find "$T/moved-cluster" -type f | wc -l)" "$n_before"

# ---- (g) the prefetcher stops with its data directory or its server ---------

# its data directory removed, with the spool inside it: it stops and does not
# make either again
DD=$T/gone/data
mkdir -p "$T/gone"; cp -a "$DATA" "$DD"
chown postgres:postgres "$T/gone"
spool "$DD/spool" 0700
conf g "$DD/spool" "fetch_ahead=8"
as_pg env -C "$DD" "$BIN/walfetch" -c "$T/g.conf" "$S2" "$W/d-g-$S2" 2>"$T/err"
t_eq "(g) walfetch $S2 exits 0" "$?" 0
# (a worker may be writing into it: again until it is gone)
for i in 1 2 3 4 5 6 7 8 9 10; do rm -rf "$DD" 2>/dev/null; [ -e "$DD" ] || break; sleep 0.2; done
gone() { ! pgrep -u postgres -f "$T/g.conf" >/dev/null; }
t_check "(g) the prefetcher exits after its data directory is removed" t_wait 30 gone
sleep 0.5
t_check "(g) and the data directory is not made again" test ! -e "$DD"
# a server whose postmaster exits: a stand-in process named in postmaster.pid
DD=$T/srv/data
mkdir -p "$T/srv"; cp -a "$DATA" "$DD"
chown postgres:postgres "$T/srv"
spool "$T/spool-g2" 0700
conf g2 "$T/spool-g2" "fetch_ahead=8"
# setpriv execs sleep in place: $! is the stand-in itself (no pgrep, which
# could pick another test's process)
setpriv --reuid="$(id -u postgres)" --regid="$(id -g postgres)" --clear-groups sleep 300 \
	>/dev/null 2>&1 & PMPID=$!
disown "$PMPID"
t_cleanup "kill $PMPID"
printf '%s\n%s\n' "$PMPID" "$DD" > "$DD/postmaster.pid"; chown postgres "$DD/postmaster.pid"
# its next segments are not archived: the prefetcher only waits for them
as_pg env -C "$DD" "$BIN/walfetch" -c "$T/g2.conf" "$(segname 12)" "$W/d-g2" 2>"$T/err"
t_eq "(g) walfetch $(segname 12) with a server running exits 0" "$?" 0
t_check "(g) its prefetcher runs" t_wait 10 bash -c "! flock -n '$T/spool-g2/$SYSID/.prefetch.lock' true"
t0=$(date +%s%N)
kill "$PMPID"
timeout 30 flock "$T/spool-g2/$SYSID/.prefetch.lock" true
ms=$(( ($(date +%s%N) - t0) / 1000000 ))
if [ "$MEMCHECK" = 1 ]; then
	t_skip "(g) the prefetcher ends once its server exits: not timed under memcheck (it ended ${ms} ms after its server)"
else
	# idle, it would wait 2 s: it ended because the server did
	t_check "(g) the prefetcher ends once its server exits (${ms} ms)" test "$ms" -lt 1500
fi

t_done
