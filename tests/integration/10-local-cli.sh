#!/bin/bash
# SANITIZE_OK: also run against the ASan+UBSan build by tests/run.sh
# VALGRIND_OK: also run with every program under valgrind memcheck by tests/run.sh
# The command-line contract of walpush, walfetch and walprune against a local
# archive: bad names, bad input, other clusters, duplicates, corrupt objects,
# missing files, unusable archives, bad configuration, compression on disk,
# pruning semantics (and an archive without WAL yet), the status records
# walpush, walfetch and the prefetcher keep in the spool (and walcheck's
# report of them), --help/--version, and SIGKILL at any moment of walpush.
# A real data directory (global/pg_control and a first WAL segment) comes from
# initdb; other segments are made from it by rewriting the long page header.

. "$(dirname "$0")/../lib/common.sh"
. "$(dirname "$0")/../lib/pg.sh"
. "$(dirname "$0")/../lib/wal.sh"

export LC_ALL=C
BIN=$WALARCHIVE_BIN
T=$WALARCHIVE_TMP
for p in walpush walfetch walprune walcheck; do
	[ -x "$BIN/$p" ] || { t_fail "$BIN/$p is not installed"; t_done; }
done

W=$T/work            # scratch owned by postgres: sources, destinations
ARCH=$T/archive
CONF=$T/walarchive.conf
NODIR=$T/nocontrol   # a directory without global/pg_control
mkdir -p "$W" "$ARCH" "$NODIR" "$T/tl-archive"
chown postgres:postgres "$W" "$ARCH" "$NODIR" "$T/tl-archive"
walarchive_conf "$CONF" "archive=$ARCH"

pg_new c1 || { t_fail "initdb"; t_done; }
DATA=$(pg_data c1)
SEG1=000000010000000000000001
SRC1=$DATA/pg_wal/$SEG1
# a standby's data directory (standby.signal): walfetch's fetch_on_error =
# auto gives the plain exit codes there, and 126 elsewhere
SB=$T/standby
mkdir -p "$SB/global"; cp "$DATA/global/pg_control" "$SB/global/"; touch "$SB/standby.signal"
chown -R postgres:postgres "$SB"
SYSID=$("$PGBIN/pg_controldata" "$DATA" | sed -n 's/^Database system identifier: *//p')
t_match "initdb gives a data directory with a system identifier" "$SYSID" '^[0-9]+$'

# segments made from SRC1 (mkseg, segname: tests/lib/wal.sh)
MKSEG_SRC=$SRC1

# run PROG DIR ARGS...: runs PROG as postgres in DIR (as archive_command and
# restore_command do: in the data directory); sets RC, OUT (stdout), ERR (stderr).
run() {
	local prog=$1 dir=$2; shift 2
	as_pg env -C "$dir" "$BIN/$prog" "$@" >"$T/out" 2>"$T/err"
	RC=$?
	OUT=$(cat "$T/out"); ERR=$(cat "$T/err")
}
# msg_ok (tests/lib/common.sh) matches its REGEX ignoring case here
MSG_OK_ICASE=1
# arch_state (tests/lib/wal.sh) lists every object with its checksum, to prove nothing changed.

# ---- --help / --version -------------------------------------------------
for p in walpush walfetch walprune; do
	run $p "$W" --help
	t_eq "$p --help exits 0" "$RC" 0
	t_check "$p --help prints a usage" test -n "$OUT$ERR"
	run $p "$W" --version
	t_eq "$p --version exits 0" "$RC" 0
	t_match "$p --version prints a version" "$OUT$ERR" '[0-9]+\.[0-9]+'
done
run walpush "$W" --no-such-option
t_eq "walpush with an unknown option exits 2" "$RC" 2
# one message, ours: not getopt's as well, which names the program by its path
msg_ok "an unknown long option" walpush "^walpush: --no-such-option: unknown option \\(see walpush --help\\)\$"
t_check "the message does not name the program by its path" bash -c "! grep -qF -- '$BIN' <<< \"\$1\"" _ "$ERR"
run walfetch "$W" -Z
t_eq "walfetch with an unknown short option exits 2" "$RC" 2
msg_ok "an unknown short option" walfetch "^walfetch: -Z: unknown option"
run walprune "$W" --keep 2
t_eq "walprune with an ambiguous abbreviation exits 2" "$RC" 2
msg_ok "an ambiguous option" walprune "^walprune: --keep: ambiguous option \\(--keep-backups, --keep-days\\)"
run walpush "$W" "$SRC1" "$SEG1" -c
t_eq "walpush -c without its argument exits 2" "$RC" 2
msg_ok "a missing argument" walpush "^walpush: -c: missing argument"
run walprune "$W" --help=x
t_eq "walprune --help=x exits 2" "$RC" 2
msg_ok "an argument to an option that takes none" walprune "^walprune: --help: takes no argument"
run walpush "$W" -c "$CONF" "$SRC1"
t_eq "walpush with one argument exits 2" "$RC" 2
run walprune "$W" -c "$CONF"
t_eq "walprune without a horizon option exits 2" "$RC" 2

# ---- names ----------------------------------------------------------------
cp "$SRC1" "$W/$SEG1"; chown postgres:postgres "$W/$SEG1"
state0=$(arch_state)
for bad in "a/$SEG1" "../$SEG1" ".." "$SEG1/" "0000000100000000000000011" "00000001000000000000001" \
	"$SEG1.gz" "$SEG1.partial.x" "00000001000000000000000a" "000000000000000000000001" \
	"00000001.hist" "$SEG1.0000002G.backup" "" "$SEG1 "; do
	run walpush "$DATA" -c "$CONF" "$W/$SEG1" "$bad"
	t_eq "walpush refuses the name '$bad' with exit 2" "$RC" 2
	run walfetch "$DATA" -c "$CONF" --set fetch_on_error=continue "$bad" "$W/dest"
	t_eq "walfetch refuses the name '$bad' with exit 2" "$RC" 2
done
run walpush "$DATA" -c "$CONF" "$W/$SEG1" "../$SEG1"
msg_ok "a bad name" walpush
run walfetch "$DATA" -c "$CONF" "../$SEG1" "$W/dest"
t_eq "walfetch with a bad name, fetch_on_error=auto outside standby mode: exit 126" "$RC" 126
msg_ok "walfetch bad name" walfetch "\\.\\./$SEG1"
run walfetch "$SB" -c "$CONF" "../$SEG1" "$W/dest"
t_eq "walfetch with a bad name, fetch_on_error=auto in standby mode: exit 2" "$RC" 2
t_eq "bad names leave the archive untouched" "$(arch_state)" "$state0"
t_check "walfetch with a bad name creates no destination" test ! -e "$W/dest"

# ---- input that is not WAL of that name -----------------------------------
head -c 16777216 /dev/urandom > "$W/random"; chown postgres:postgres "$W/random"
run walpush "$DATA" -c "$CONF" "$W/random" "$SEG1"
t_eq "a 16 MiB file that is not WAL: exit 5" "$RC" 5
msg_ok "not WAL" walpush "$SEG1"
echo "hello" > "$W/text"; chown postgres:postgres "$W/text"
run walpush "$DATA" -c "$CONF" "$W/text" "$SEG1"
t_eq "a small text file: exit 5" "$RC" 5
msg_ok "text file" walpush
head -c 8388608 "$SRC1" > "$W/trunc"; chown postgres:postgres "$W/trunc"
run walpush "$DATA" -c "$CONF" "$W/trunc" "$SEG1"
t_eq "a segment truncated to 8 MiB: exit 5" "$RC" 5
msg_ok "truncated" walpush "$SEG1"
run walpush "$DATA" -c "$CONF" "$SRC1" 000000010000000000000002
t_eq "segment 1 pushed as segment 2 (header disagrees): exit 5" "$RC" 5
msg_ok "header vs name" walpush
mkseg "$W/tl2" 1 tli=2
run walpush "$DATA" -c "$CONF" "$W/tl2" "$SEG1"
t_eq "a timeline 2 segment pushed under a timeline 1 name: exit 5" "$RC" 5
msg_ok "header timeline above the name's" walpush "timeline"
# The first segment of a new timeline is a copy of the old timeline's
# segment up to the switch: its first page header carries the old timeline,
# and PostgreSQL archives and restores it under the new timeline's name.
run walpush "$DATA" -c "$CONF" --set "archive=$T/tl-archive" "$SRC1" 000000020000000000000001
t_eq "a segment whose header has an older timeline than its name (new timeline's first segment): exit 0" "$RC" 0
run walfetch "$SB" -c "$CONF" --set "archive=$T/tl-archive" 000000020000000000000001 "$W/tl2-back"
t_check "and walfetch returns it" cmp -s "$W/tl2-back" "$SRC1"
run walpush "$DATA" -c "$CONF" "$SRC1" "$SEG1.partial"
t_eq "a partial is checked like a segment: $SEG1 as $SEG1.partial exits 0" "$RC" 0
run walpush "$DATA" -c "$CONF" "$SRC1" 000000010000000000000003.partial
t_eq "segment 1 pushed as partial of segment 3: exit 5" "$RC" 5
mkseg "$W/foreign" 1 tli=1 sysid=$((SYSID + 1))
run walpush "$DATA" -c "$CONF" "$W/foreign" "$SEG1"
t_eq "a segment of another cluster (system id differs from global/pg_control): exit 5" "$RC" 5
msg_ok "other cluster" walpush "system|identifier|cluster"
run walpush "$DATA" -c "$CONF" "$W/nonexistent" "$SEG1"
t_check "a missing source file: exit in 1..125 (got $RC)" test "$RC" -ge 1 -a "$RC" -le 125
msg_ok "missing source" walpush "nonexistent"
rm -f "$(obj "$SEG1.partial").lz4" "$(obj "$SEG1.partial")"
t_eq "refused input leaves the archive untouched" "$(arch_state | grep -v walarchive.info)" \
	"$(echo "$state0" | grep -v walarchive.info)"

# ---- a good push, duplicates, a different file under the same name --------
run walpush "$DATA" -c "$CONF" "$SRC1" "$SEG1"
t_eq "walpush of a real segment exits 0" "$RC" 0
t_eq "walpush is silent on success" "$ERR" ""
t_check "the object is at <archive>/<sysid>/<tli+log>/<seg>.lz4" test -f "$(obj $SEG1).lz4"
t_check "walarchive.info exists" test -f "$ARCH/$SYSID/walarchive.info"
t_check "the object is an LZ4 frame that lz4 -d decodes to the segment" \
	sh -c "lz4 -dc '$(obj $SEG1).lz4' | cmp -s - '$SRC1'"
t_check "the object is readable for recovery without walarchive: no other file in its directory" \
	test "$(ls "$ARCH/$SYSID/${SEG1:0:16}")" = "$SEG1.lz4"
state1=$(arch_state)
run walpush "$DATA" -c "$CONF" "$SRC1" "$SEG1"
t_eq "pushing the same segment twice exits 0" "$RC" 0
msg_ok "duplicate notice" walpush "$SEG1"
cp "$SRC1" "$W/different"
printf 'X' | dd of="$W/different" bs=1 seek=$((8 * 1024 * 1024)) conv=notrunc status=none
chown postgres:postgres "$W/different"
run walpush "$DATA" -c "$CONF" "$W/different" "$SEG1"
t_eq "a different file under the same name: exit 4" "$RC" 4
msg_ok "different content" walpush "$SEG1"
t_eq "the archived object is unchanged (bytes before = after)" "$(arch_state)" "$state1"
run walpush "$DATA" -c "$CONF" --set compress=none "$W/different" "$SEG1"
t_eq "a different file under the same name with compress=none: exit 4" "$RC" 4
t_eq "the archive is unchanged" "$(arch_state)" "$state1"
run walpush "$DATA" -c "$CONF" --set compress=none "$SRC1" "$SEG1"
t_eq "the same segment again with compress=none (stored as lz4): exit 0" "$RC" 0
t_eq "the archive is unchanged" "$(arch_state)" "$state1"

# ---- not a regular file: refused at once, never waited on -------------------
mkfifo "$W/fifo"; chown postgres "$W/fifo"
SECONDS_BEFORE=$SECONDS
run walpush "$DATA" -c "$CONF" "$W/fifo" "$SEG1"
t_eq "walpush of a FIFO with no writer: exit 2" "$RC" 2
t_check "walpush of a FIFO returns at once (took $((SECONDS - SECONDS_BEFORE)) s)" \
	test $((SECONDS - SECONDS_BEFORE)) -le 5
msg_ok "FIFO" walpush "not a regular file"
run walpush "$DATA" -c "$CONF" /dev/null "$SEG1"
t_eq "walpush of a character device: exit 2" "$RC" 2
# a socket cannot even be opened: still "not a regular file", not an I/O error
python3 -c 'import socket, sys; socket.socket(socket.AF_UNIX).bind(sys.argv[1])' "$W/sock"
chown postgres "$W/sock"
run walpush "$DATA" -c "$CONF" "$W/sock" "$SEG1"
t_eq "walpush of a socket: exit 2" "$RC" 2
msg_ok "socket" walpush "sock: not a regular file"
rm -f "$W/fifo" "$W/sock"

# ---- compress = none ------------------------------------------------------
SEG2=$(segname 1 2)
mkseg "$W/$SEG2" 2 tli=1
run walpush "$DATA" -c "$CONF" --set compress=none "$W/$SEG2" "$SEG2"
t_eq "walpush --set compress=none exits 0" "$RC" 0
t_check "compress = none stores an LZ4 frame that lz4 -d decodes to the segment" \
	sh -c "lz4 -dc '$(obj $SEG2).lz4' | cmp -s - '$W/$SEG2'"
t_check "compress = none stores the blocks uncompressed (object >= 16 MiB)" \
	test "$(stat -c %s "$(obj $SEG2).lz4")" -ge 16777216
t_check "compress = none stores no plain object" test ! -e "$(obj $SEG2)"
cnone=$T/none.conf
walarchive_conf "$cnone" "archive=$ARCH" "compress=none"
SEG3=$(segname 1 3)
mkseg "$W/$SEG3" 3 tli=1
# a plain object, as earlier releases stored with compress = none
install -o postgres -g postgres -m 600 "$W/$SEG3" "$(obj $SEG3)"
run walpush "$DATA" -c "$cnone" "$W/$SEG3" "$SEG3"
t_eq "a duplicate of a plain object of an earlier release: exit 0" "$RC" 0
t_check "and no second copy beside it" test ! -e "$(obj $SEG3).lz4"
run walpush "$DATA" -c "$cnone" "$W/$SEG2" "$SEG2"
t_eq "a duplicate of a stored-block object: exit 0" "$RC" 0

# ---- walfetch ---------------------------------------------------------------
D=$W/restore
mkdir -p "$D"; chown postgres:postgres "$D"
run walfetch "$DATA" -c "$CONF" "$SEG1" "$D/RECOVERYXLOG"
t_eq "walfetch of an lz4 object exits 0" "$RC" 0
t_check "walfetch delivers exactly the archived bytes" cmp -s "$D/RECOVERYXLOG" "$SRC1"
run walfetch "$DATA" -c "$CONF" "$SEG2" "$D/RECOVERYXLOG"
t_eq "walfetch over an existing destination (PostgreSQL reuses RECOVERYXLOG) exits 0" "$RC" 0
t_check "walfetch of a stored-block object delivers exactly its bytes" cmp -s "$D/RECOVERYXLOG" "$W/$SEG2"
run walfetch "$DATA" -c "$CONF" "$SEG3" "$D/RECOVERYXLOG"
t_eq "walfetch of a plain object of an earlier release exits 0" "$RC" 0
t_check "and delivers exactly its bytes" cmp -s "$D/RECOVERYXLOG" "$W/$SEG3"
run walfetch "$NODIR" -c "$CONF" "$SEG1" "$D/x"
t_eq "walfetch without pg_control and one cluster in the archive exits 0" "$RC" 0
t_check "walfetch without pg_control delivers the bytes" cmp -s "$D/x" "$SRC1"
rm -f "$D"/*
run walfetch "$DATA" -c "$CONF" 000000010000000000000009 "$D/RECOVERYXLOG"
t_eq "walfetch of a missing segment exits 1" "$RC" 1
quiet=yes
printf '%s' "$ERR" | grep -Eqi 'error|warning|fatal' && quiet=no
[ "$(printf '%s' "$ERR" | grep -c '')" -le 1 ] || quiet=no
t_eq "a missing file is logged quietly: no error or warning, at most one line ('$ERR')" "$quiet" yes
t_check "walfetch of a missing file creates no destination" test ! -e "$D/RECOVERYXLOG"
run walfetch "$DATA" -c "$CONF" 00000002.history "$D/RECOVERYHISTORY"
t_eq "walfetch of a missing history file exits 1" "$RC" 1
run walfetch "$DATA" -c "$CONF" "$SEG1" "$W/no/such/dir/RECOVERYXLOG"
t_check "walfetch into a missing directory fails, not as 'not found' (exit $RC)" \
	test "$RC" -ne 0 -a "$RC" -ne 1
msg_ok "missing destination directory" walfetch "no/such/dir|directory"
t_check "nothing is created for a missing destination directory" test ! -e "$W/no"
t_eq "walfetch leaves no temporary files in the destination directory" "$(ls -A "$D")" ""

# corrupt objects: a flipped byte in an lz4 frame, in its content checksum,
# a truncated plain object
cp -p "$(obj $SEG1).lz4" "$T/seg1.keep"
size=$(stat -c %s "$(obj $SEG1).lz4")
python3 - "$(obj $SEG1).lz4" "$size" <<'PY'
import sys
p, n = sys.argv[1], int(sys.argv[2])
with open(p, "r+b") as f:
    f.seek(n // 2); b = f.read(1); f.seek(n // 2); f.write(bytes([b[0] ^ 0x55]))
PY
run walfetch "$DATA" -c "$CONF" --set fetch_on_error=continue "$SEG1" "$D/RECOVERYXLOG"
t_eq "a corrupt lz4 object, fetch_on_error=continue: exit 7" "$RC" 7
msg_ok "corrupt object" walfetch "$SEG1"
t_check "a corrupt object is not delivered" test ! -e "$D/RECOVERYXLOG"
run walfetch "$DATA" -c "$CONF" --set fetch_on_error=stop "$SEG1" "$D/RECOVERYXLOG"
t_eq "a corrupt lz4 object, fetch_on_error=stop: exit 126" "$RC" 126
t_check "a corrupt object is not delivered" test ! -e "$D/RECOVERYXLOG"
run walfetch "$DATA" -c "$CONF" "$SEG1" "$D/RECOVERYXLOG"
t_check "a corrupt lz4 object with the default setting: neither 0 nor 1 (got $RC)" \
	test "$RC" -ne 0 -a "$RC" -ne 1
t_eq "no temporary files left after corrupt fetches" "$(ls -A "$D")" ""
# a flipped byte in the frame's content checksum (its last 4 bytes): every
# block decodes, only the checksum tells
cp -p "$T/seg1.keep" "$(obj $SEG1).lz4"
python3 - "$(obj $SEG1).lz4" "$size" <<'PY'
import sys
p, n = sys.argv[1], int(sys.argv[2])
with open(p, "r+b") as f:
    f.seek(n - 2); b = f.read(1); f.seek(n - 2); f.write(bytes([b[0] ^ 0x01]))
PY
run walfetch "$DATA" -c "$CONF" --set fetch_on_error=continue "$SEG1" "$D/RECOVERYXLOG"
t_eq "an lz4 object whose content checksum does not match: exit 7" "$RC" 7
t_check "and it is not delivered" test ! -e "$D/RECOVERYXLOG"
cp -p "$T/seg1.keep" "$(obj $SEG1).lz4"
head -c 1000000 "$(obj $SEG3)" > "$T/trunc3" && cat "$T/trunc3" > "$(obj $SEG3)"
run walfetch "$DATA" -c "$CONF" --set fetch_on_error=continue "$SEG3" "$D/RECOVERYXLOG"
t_eq "a truncated plain object: exit 7" "$RC" 7
t_check "a truncated object is not delivered" test ! -e "$D/RECOVERYXLOG"
cat "$W/$SEG3" > "$(obj $SEG3)"
# compress = none: one flipped byte in the middle of a stored-block object
cp -p "$(obj $SEG2).lz4" "$T/seg2.keep"
python3 - "$(obj $SEG2).lz4" <<'PY'
import os, sys
p = sys.argv[1]; n = os.path.getsize(p)
with open(p, "r+b") as f:
    f.seek(n // 2); b = f.read(1); f.seek(n // 2); f.write(bytes([b[0] ^ 0x01]))
PY
run walfetch "$DATA" -c "$CONF" --set fetch_on_error=continue "$SEG2" "$D/RECOVERYXLOG"
t_eq "one flipped byte in an uncompressed (stored-block) object: exit 7" "$RC" 7
t_check "the damaged object is not delivered" test ! -e "$D/RECOVERYXLOG"
cp -p "$T/seg2.keep" "$(obj $SEG2).lz4"
# the right segment framed by hand without its content checksum: no check of
# its bytes travels with it, so it is refused too
lz4 -q -f --no-frame-crc "$W/$SEG2" "$(obj $SEG2).lz4"
run walfetch "$DATA" -c "$CONF" --set fetch_on_error=continue "$SEG2" "$D/RECOVERYXLOG"
t_eq "an lz4 object without a content checksum (lz4 --no-frame-crc): exit 7" "$RC" 7
msg_ok "unchecked lz4 frame" walfetch "without a content checksum"
t_check "the unchecked object is not delivered" test ! -e "$D/RECOVERYXLOG"
lz4 -q -f "$W/$SEG2" "$(obj $SEG2).lz4"
run walfetch "$DATA" -c "$CONF" --set fetch_on_error=continue "$SEG2" "$D/RECOVERYXLOG"
t_eq "the same segment framed by lz4 with its checksum (its default): exit 0" "$RC" 0
t_check "and delivered" cmp -s "$D/RECOVERYXLOG" "$W/$SEG2"
rm -f "$D/RECOVERYXLOG"
cp -p "$T/seg2.keep" "$(obj $SEG2).lz4"
# another cluster's valid segment of the same name, swapped in, framed and plain
mkseg "$W/foreign" 2 tli=1 sysid=$((SYSID + 777))
lz4 -q -f "$W/foreign" "$(obj $SEG2).lz4"
run walfetch "$DATA" -c "$CONF" --set fetch_on_error=continue "$SEG2" "$D/RECOVERYXLOG"
t_eq "another cluster's segment under this name (lz4): exit 7" "$RC" 7
msg_ok "foreign object" walfetch "$SEG2.*another cluster"
t_check "another cluster's segment is not delivered" test ! -e "$D/RECOVERYXLOG"
run walfetch "$DATA" -c "$CONF" "$SEG2" "$D/RECOVERYXLOG"
t_eq "another cluster's segment, default fetch_on_error outside a standby: exit 126" "$RC" 126
rm -f "$(obj $SEG2).lz4"; install -o postgres -g postgres -m 600 "$W/foreign" "$(obj $SEG2)"
run walfetch "$DATA" -c "$CONF" --set fetch_on_error=continue "$SEG2" "$D/RECOVERYXLOG"
t_eq "another cluster's segment under this name (plain): exit 7" "$RC" 7
rm -f "$(obj $SEG2)"; cp -p "$T/seg2.keep" "$(obj $SEG2).lz4"
# an archive root without this cluster's tree (an unmounted mount point)
EMPTY=$T/empty-archive
mkdir -p "$EMPTY"; chown postgres "$EMPTY"
run walfetch "$DATA" -c "$CONF" --set "archive=$EMPTY" "$SEG1" "$D/RECOVERYXLOG"
t_eq "walfetch from a root without this cluster's tree: 126, not 1 (recovery stops)" "$RC" 126
msg_ok "missing tree" walfetch "walarchive.info"
run walfetch "$SB" -c "$CONF" --set "archive=$EMPTY" "$SEG1" "$D/RECOVERYXLOG"
t_eq "the same on a standby: 6, which it retries" "$RC" 6
run walfetch "$DATA" -c "$CONF" --set "archive=$EMPTY" 00000002.history "$D/RECOVERYHISTORY"
t_eq "a history file from a root without the tree: 126, not 1" "$RC" 126
t_eq "nothing delivered from a root without the tree" "$(ls -A "$D")" ""
# the tree is there but its walarchive.info was removed by hand: still no "not found"
mkdir -p "$EMPTY/$SYSID/0000000100000000"; chown -R postgres "$EMPTY/$SYSID"
run walfetch "$DATA" -c "$CONF" --set "archive=$EMPTY" "$SEG1" "$D/RECOVERYXLOG"
t_eq "a tree without its walarchive.info: 126, not 1" "$RC" 126
msg_ok "tree without its marker" walfetch "the tree of cluster $SYSID is there but $SYSID/walarchive.info is missing"
rm -rf "${EMPTY:?}/$SYSID"

# ---- several clusters in one archive ------------------------------------------
OTHER=$((SYSID + 12345))
mkseg "$W/other" 1 tli=1 sysid=$OTHER
run walpush "$NODIR" -c "$CONF" "$W/other" "$SEG1"
t_eq "walpush outside a data directory takes the system id from the header: exit 0" "$RC" 0
t_check "the other cluster has its own tree" test -f "$ARCH/$OTHER/${SEG1:0:16}/$SEG1.lz4"
run walfetch "$NODIR" -c "$CONF" "$SEG1" "$D/RECOVERYXLOG"
t_check "walfetch without pg_control, two clusters in the archive: neither 0 nor 1 (got $RC)" \
	test "$RC" -ne 0 -a "$RC" -ne 1
msg_ok "ambiguous cluster" walfetch "system|cluster"
t_check "nothing delivered when the cluster is ambiguous" test ! -e "$D/RECOVERYXLOG"
run walfetch "$NODIR" -c "$CONF" --set system_id=$OTHER "$SEG1" "$D/RECOVERYXLOG"
t_eq "walfetch --set system_id picks the cluster" "$RC" 0
t_check "and delivers that cluster's segment" cmp -s "$D/RECOVERYXLOG" "$W/other"
run walfetch "$DATA" -c "$CONF" "$SEG1" "$D/RECOVERYXLOG"
t_check "walfetch in the data directory picks its cluster by pg_control" cmp -s "$D/RECOVERYXLOG" "$SRC1"
rm -f "$D"/*
rm -rf "${ARCH:?}/$OTHER"

# ---- unusable archives -------------------------------------------------------
RO=$T/ro-archive
mkdir -p "$RO"; chmod 755 "$RO"   # owned by root: postgres cannot write
run walpush "$DATA" -c "$CONF" --set "archive=$RO" "$SRC1" "$SEG1"
t_eq "an unwritable archive directory: exit 6" "$RC" 6
msg_ok "unwritable archive" walpush "$RO|permission"
t_eq "nothing is written into it" "$(find "$RO" -mindepth 1 | wc -l)" 0
run walpush "$DATA" -c "$CONF" --set "archive=$T/missing-archive" "$SRC1" "$SEG1"
t_eq "a missing archive directory: exit 6" "$RC" 6
msg_ok "missing archive" walpush "missing-archive"
t_check "walpush does not create a missing archive root" test ! -e "$T/missing-archive"
run walfetch "$DATA" -c "$CONF" --set "archive=$T/missing-archive" "$SEG1" "$D/RECOVERYXLOG"
t_check "walfetch from a missing archive directory: not 1, which would end recovery (got $RC)" \
	test "$RC" -ne 0 -a "$RC" -ne 1
msg_ok "walfetch missing archive" walfetch "missing-archive"
run walprune "$DATA" -c "$CONF" --set "archive=$T/missing-archive" --before "$SEG2"
t_check "walprune on a missing archive directory fails (got $RC)" test "$RC" -ne 0

# ---- configuration errors ---------------------------------------------------------
bad=$T/bad-key.conf
walarchive_conf "$bad" "archive=$ARCH" "no_such_key=1"
for p in walpush walfetch walprune; do
	case $p in
	walpush) run $p "$DATA" -c "$bad" "$SRC1" "$SEG1" ;;
	walfetch) run $p "$SB" -c "$bad" "$SEG1" "$D/RECOVERYXLOG" ;;
	walprune) run $p "$DATA" -c "$bad" --before "$SEG1" ;;
	esac
	t_eq "$p: an unknown key in the config file: exit 3 (walfetch: in standby mode)" "$RC" 3
	msg_ok "$p unknown key" $p "$bad:2"
done
bad=$T/bad-value.conf
walarchive_conf "$bad" "archive=$ARCH" "compress=zip"
run walpush "$DATA" -c "$bad" "$SRC1" "$SEG1"
t_eq "compress = zip: exit 3" "$RC" 3
msg_ok "bad compress value" walpush "$bad:2"
printf '# comment\narchive = %s\n\ntimeout = soon\n' "$ARCH" > "$bad"
run walfetch "$SB" -c "$bad" "$SEG1" "$D/RECOVERYXLOG"
t_eq "timeout = soon: exit 3" "$RC" 3
msg_ok "bad timeout value" walfetch "$bad:4"
printf "archive = '%s\n" "$ARCH" > "$bad"; chown postgres "$bad"
run walpush "$DATA" -c "$bad" "$SRC1" "$SEG1"
t_eq "an unterminated quoted value: exit 3" "$RC" 3
msg_ok "syntax error" walpush "$bad:1"
# archive is checked once the file is read, and named by its line (or --set)
for value in ftp://x relative/path "sftp://host:0/wal"; do
	printf '# walarchive\ntimeout = 5\narchive = %s\n' "$value" > "$bad"; chown postgres "$bad"
	for p in walpush walfetch walprune; do
		case $p in
		walpush) run $p "$DATA" -c "$bad" "$SRC1" "$SEG1" ;;
		walfetch) run $p "$SB" -c "$bad" "$SEG1" "$D/RECOVERYXLOG" ;;
		walprune) run $p "$DATA" -c "$bad" --before "$SEG1" ;;
		esac
		t_eq "$p: archive = $value: exit 3" "$RC" 3
		msg_ok "$p: archive = $value" $p "^$p: $bad:3: archive \"$value\": "
	done
done
run walprune "$DATA" -c "$CONF" --set archive=ftp://x --before "$SEG1"
t_eq "--set archive=ftp://x: exit 3" "$RC" 3
msg_ok "--set archive=ftp://x" walprune '^walprune: --set: archive "ftp://x": unknown scheme'
printf 'archive = %s\n' "$W/$SEG1" > "$bad"; chown postgres "$bad"
run walprune "$DATA" -c "$bad" --before "$SEG1"
t_eq "archive naming a file: exit 3" "$RC" 3
msg_ok "archive naming a file" walprune "^walprune: $bad:1: archive .*: not a directory"
run walfetch "$DATA" -c "$T/bad-key.conf" "$SEG1" "$D/RECOVERYXLOG"
t_eq "walfetch with a bad config outside standby mode: exit 126 (recovery stops)" "$RC" 126
run walpush "$DATA" -c "$T/no-such.conf" "$SRC1" "$SEG1"
t_eq "a missing explicit config file: exit 3" "$RC" 3
msg_ok "missing config" walpush "no-such.conf"
run walpush "$DATA" -c "$CONF" --set no_such_key=1 "$SRC1" "$SEG1"
t_eq "--set with an unknown key: exit 3" "$RC" 3
as_pg env -C "$DATA" WALARCHIVE_CONFIG="$T/bad-key.conf" "$BIN/walpush" "$SRC1" "$SEG1" >/dev/null 2>"$T/err"
t_eq "WALARCHIVE_CONFIG is read (its unknown key: exit 3)" "$?" 3
as_pg env -C "$DATA" WALARCHIVE_CONFIG="$CONF" "$BIN/walpush" "$SRC1" "$SEG1" >/dev/null 2>&1
t_eq "WALARCHIVE_CONFIG with a good file: the duplicate push exits 0" "$?" 0
t_eq "no configuration error changed the archive" "$(arch_state | grep -v "$SEG2\|$SEG3")" \
	"$(echo "$state1" | grep -v "$SEG2\|$SEG3")"

# ---- walprune --before / --keep-days / --dry-run ---------------------------------
PA=$T/prune-archive
mkdir -p "$PA"; chown postgres:postgres "$PA"
pconf=$T/prune.conf
walarchive_conf "$pconf" "archive=$PA" "compress=none"
for s in 1 2 3 4 5 6; do mkseg "$W/p" $s tli=1; run walpush "$DATA" -c "$pconf" "$W/p" "$(segname 1 $s)"; done
for s in 4 5 6 7 8; do mkseg "$W/p" $s tli=2; run walpush "$DATA" -c "$pconf" "$W/p" "$(segname 2 $s)"; done
mkseg "$W/p" 3 tli=1; run walpush "$DATA" -c "$pconf" "$W/p" "$(segname 1 3).partial"
mkseg "$W/p" 4 tli=1; run walpush "$DATA" -c "$pconf" "$W/p" "$(segname 1 4).partial"
printf '1\t0/4000000\tno recovery target specified\n' > "$W/00000002.history"
chown postgres "$W/00000002.history"
run walpush "$DATA" -c "$pconf" "$W/00000002.history" 00000002.history
t_eq "a history file is pushed" "$RC" 0
# object names without the .lz4 every object carries
pnames() { find "$PA/$SYSID" -type f ! -name walarchive.info -printf '%f\n' | sed 's/\.lz4$//' | sort; }
t_eq "the prune archive holds 14 objects" "$(pnames | wc -l)" 14
before=$(pnames)
pstate=$(cd "$PA" && find . -type f | sort | xargs sha256sum)
H=$(segname 2 5)
run walprune "$DATA" -c "$pconf" --before "$H" --dry-run
t_eq "walprune --before --dry-run exits 0" "$RC" 0
t_eq "--dry-run removes nothing" "$(cd "$PA" && find . -type f | sort | xargs sha256sum)" "$pstate"
expect_gone="$(segname 1 1)
$(segname 1 2)
$(segname 1 3)
$(segname 1 3).partial
$(segname 1 4)
$(segname 1 4).partial
$(segname 2 4)"
miss=""
for n in $expect_gone; do printf '%s\n%s' "$OUT" "$ERR" | grep -qF "$n" || miss="$miss $n"; done
t_eq "--dry-run lists every object it would remove" "$miss" ""
extra=$(printf '%s\n%s' "$OUT" "$ERR" | grep -vE '[0-9]+ objects? \(' | grep -oE '[0-9A-F]{24}(\.partial)?|[0-9A-F]{8}\.history' | sort -u |
	grep -vxF -f <(echo "$expect_gone") || true)
t_eq "--dry-run lists nothing else" "$extra" ""
t_match "--dry-run prints a summary with the object count" "$OUT$ERR" '(^|[^0-9])7 objects?'
echo "# walprune --dry-run said: $(printf '%s\n%s' "$OUT" "$ERR" | tail -n 1)"
run walprune "$DATA" -c "$pconf" --before "$H"
t_eq "walprune --before exits 0" "$RC" 0
t_eq "--before removes segments and partials sorting before it, whatever their timeline" \
	"$(comm -23 <(echo "$before") <(pnames))" "$(echo "$expect_gone" | sort)"
t_check "--before keeps the history file" test -f "$PA/$SYSID/00000002.history.lz4"
t_check "--before keeps the horizon segment itself" test -f "$PA/$SYSID/${H:0:16}/$H.lz4"
t_match "walprune prints a summary with the object count" "$OUT$ERR" '(^|[^0-9])7 objects?'
# --keep-days: positions 5 and 6 ten days old, 7 and 8 new
for n in $(segname 1 5) $(segname 1 6) $(segname 2 5) $(segname 2 6); do
	touch -d '10 days ago' "$PA/$SYSID/${n:0:16}/$n.lz4"
done
before=$(pnames)
run walprune "$DATA" -c "$pconf" --keep-days 5 --dry-run
t_eq "walprune --keep-days --dry-run exits 0" "$RC" 0
t_eq "--keep-days --dry-run removes nothing" "$(pnames)" "$before"
run walprune "$DATA" -c "$pconf" --keep-days 5
t_eq "walprune --keep-days 5 exits 0" "$RC" 0
t_eq "--keep-days 5 removes what sorts before the oldest recent segment" \
	"$(comm -23 <(echo "$before") <(pnames) | tr '\n' ' ')" \
	"$(printf '%s\n' "$(segname 1 5)" "$(segname 1 6)" "$(segname 2 5)" "$(segname 2 6)" | sort | tr '\n' ' ')"
t_eq "what remains" "$(pnames | tr '\n' ' ')" "00000002.history $(segname 2 7) $(segname 2 8) "
run walprune "$DATA" -c "$pconf" --keep-backups 1
t_match "--keep-backups 1 with no backup in the archive says so" "$ERR" 'backup'
t_eq "--keep-backups 1 with no backup in the archive removes nothing" "$(pnames | tr '\n' ' ')" "00000002.history $(segname 2 7) $(segname 2 8) "
run walprune "$DATA" -c "$pconf" --before "$(segname 2 7)"
t_eq "walprune with nothing to remove exits 0" "$RC" 0

# --dry-run with many objects and both streams into one file: the listing
# (stdout) whole, line by line, and the summary (stderr) after it
MA=$T/many-archive
for s in $(seq 256 555); do
	n=$(segname 1 "$s")
	mkdir -p "$MA/$SYSID/${n:0:16}"
	: > "$MA/$SYSID/${n:0:16}/$n"
done
chown -R postgres:postgres "$MA"
as_pg env -C "$DATA" "$BIN/walprune" -c "$CONF" --set "archive=$MA" --dry-run \
	--before "$(segname 1 600)" >"$T/prune.log" 2>&1
t_eq "walprune --dry-run of 300 objects into one file: exit 0" "$?" 0
t_eq "every line is a whole listed object or the summary" \
	"$(grep -cvE '^(would remove [0-9]+/[0-9A-F]{16}/[0-9A-F]{24} \(0 bytes\)|walprune: would remove 300 objects \(0 bytes\) before [0-9A-F]{24})$' "$T/prune.log")" 0
t_eq "300 listed lines" "$(grep -c '^would remove' "$T/prune.log")" 300
t_match "then the summary, as the last line" "$(tail -n 1 "$T/prune.log")" \
	'^walprune: would remove 300 objects \(0 bytes\) before '

# ---- walprune on an archive that holds no WAL yet ------------------------------
# a new archive before the first push: exit 0 and a note, nothing cron would
# mail as an error every night; an archive root that does not exist stays 6
EP=$T/empty-prune
mkdir -p "$EP"; chown postgres:postgres "$EP"
run walprune "$DATA" -c "$CONF" --set "archive=$EP" --keep-backups 2
t_eq "walprune on an archive without the cluster's tree: exit 0" "$RC" 0
msg_ok "no tree for the cluster" walprune "^walprune: the archive holds no WAL of cluster $SYSID yet; nothing to remove\$"
run walprune "$NODIR" -c "$CONF" --set "archive=$EP" --before "$SEG2"
t_eq "walprune on an empty archive, no cluster known: exit 0" "$RC" 0
msg_ok "no cluster in the archive" walprune "^walprune: the archive holds no WAL yet \\(no cluster has pushed to it\\); nothing to remove\$"
as_pg mkdir "$EP/$SYSID"; as_pg touch "$EP/$SYSID/walarchive.info"
run walprune "$DATA" -c "$CONF" --set "archive=$EP" --keep-days 3
t_eq "walprune on a tree without segments (walarchive.info only): exit 0" "$RC" 0
msg_ok "a tree without segments" walprune "holds no WAL of cluster $SYSID yet"
t_eq "walprune removed nothing from it" "$(find "$EP" -mindepth 1 | wc -l)" 2
run walprune "$DATA" -c "$CONF" --set "archive=$T/missing-archive" --keep-backups 2
t_eq "walprune on an archive root that does not exist: still exit 6" "$RC" 6

# ---- status records: each run's outcome, in the spool, for walcheck --------------
SA=$T/status-archive
SP=$T/status-spool
mkdir -p "$SA" "$SP"; chown postgres:postgres "$SA" "$SP"; chmod 700 "$SP"
sconf=$T/status.conf
walarchive_conf "$sconf" "archive=$SA" "spool_dir=$SP" "push_ahead=0" "fetch_ahead=4" "parallel=2"
ST=$SP/$SYSID/status
# line N of a status record
rec() { sed -n "${2}p" "$ST/$1" 2>/dev/null; }
run walpush "$DATA" -c "$sconf" -v "$SRC1" "$SEG1"
t_eq "walpush into the status archive: exit 0" "$RC" 0
t_match "walpush.success: time, exit code 0, the file" "$(rec walpush.success 1)" "^[0-9]{10} 0 $SEG1\$"
t_eq "walpush.success: the message walpush printed" "walpush: $(rec walpush.success 2)" \
	"$(printf '%s\n' "$ERR" | grep -F "$SEG1: archived at")"
t_eq "the record is postgres's, mode 600" "$(stat -c '%U %a' "$ST/walpush.success" 2>&1)" "postgres 600"
t_eq "no walpush failure recorded yet" "$(ls "$ST")" "walpush.success"
run walpush "$DATA" -c "$sconf" "$W/different" "$SEG1"
t_eq "walpush of different content: exit 4" "$RC" 4
t_match "walpush.failure: exit code 4, the file" "$(rec walpush.failure 1)" "^[0-9]{10} 4 $SEG1\$"
t_eq "walpush.failure: the message walpush printed" "walpush: $(rec walpush.failure 2)" "$ERR"
t_match "walpush.success is kept beside it" "$(rec walpush.success 1)" " 0 $SEG1\$"
run walfetch "$DATA" -c "$sconf" "$SEG1" "$W/no/such/dir/RECOVERYXLOG"
t_eq "walfetch into a missing directory: exit 126" "$RC" 126
t_match "walfetch.failure: exit code 126, the file" "$(rec walfetch.failure 1)" "^[0-9]{10} 126 $SEG1\$"
t_eq "walfetch.failure: the message walfetch printed, with its '; stopping recovery'" \
	"walfetch: $(rec walfetch.failure 2)" "$ERR"
failure_before=$(cat "$ST/walfetch.failure")
run walfetch "$DATA" -c "$sconf" 000000010000000000000009 "$D/RECOVERYXLOG"
t_eq "walfetch of a segment not archived: exit 1" "$RC" 1
t_eq "not in the archive (routine) is recorded as neither success nor failure" \
	"$(cat "$ST/walfetch.failure") $(ls "$ST" | grep -c walfetch.success)" "$failure_before 0"
# the prefetcher: the segment after the one restored is damaged in the archive
run walpush "$DATA" -c "$sconf" "$W/$SEG2" "$SEG2"
t_eq "walpush of $SEG2: exit 0" "$RC" 0
python3 - "$SA/$SYSID/${SEG2:0:16}/$SEG2.lz4" <<'PY'
import os, sys
p = sys.argv[1]; n = os.path.getsize(p)
with open(p, "r+b") as f:
    f.seek(n // 2); b = f.read(1); f.seek(n // 2); f.write(bytes([b[0] ^ 0x55]))
PY
run walfetch "$DATA" -c "$sconf" "$SEG1" "$D/RECOVERYXLOG"
t_eq "walfetch of $SEG1 with fetch-ahead: exit 0" "$RC" 0
t_match "walfetch.success: exit code 0, the file" "$(rec walfetch.success 1)" "^[0-9]{10} 0 $SEG1\$"
# (the prefetcher runs at nice 10: under the sanitizers, beside the memcheck
# pass on a two-core machine, it may wait long for a core)
t_wait 120 test -s "$ST/prefetch.failure"
t_match "the prefetcher records its worker's failure: exit code 7, $SEG2" \
	"$(rec prefetch.failure 1)" "^[0-9]{10} 7 $SEG2\$"
t_match "with the error it met (its stderr is /dev/null)" "$(rec prefetch.failure 2)" "^.*$SEG2.*"
t_check "no prefetch success: nothing else was there to fetch" test ! -e "$ST/prefetch.success"
# walcheck reports the prefetcher's failure, which nothing else shows
run walcheck "$DATA" -c "$sconf" --json --metrics "$W/status.prom"
t_check "walcheck --json reports the prefetcher's last failure: exit code 7, $SEG2, its message" \
	python3 -c 'import json,sys; f=json.load(open(sys.argv[1]))["status"]["prefetch"]["last_failure"]
assert f and f["exit_code"] == 7 and f["file"] == sys.argv[2] and sys.argv[2] in f["message"], f' \
	"$T/out" "$SEG2"
t_eq "walcheck --metrics: the prefetcher's last failure time is the record's" \
	"$(sed -n 's/^walarchive_last_failure_timestamp_seconds{.*program="prefetch"} //p' "$W/status.prom")" \
	"$(rec prefetch.failure 1 | cut -d' ' -f1)"
t_wait 30 flock -n "$SP/$SYSID/.prefetch.lock" true
rm -f "$D"/*
# an untrusted spool: nothing written
success_before=$(cat "$ST/walpush.success")
chmod 777 "$SP"
run walpush "$DATA" -c "$sconf" "$SRC1" "$SEG1"
t_eq "walpush with a spool others can write: exit 0 all the same" "$RC" 0
t_eq "and its status record is not written there" "$(cat "$ST/walpush.success")" "$success_before"
chmod 700 "$SP"
run walpush "$DATA" -c "$sconf" "$SRC1" "$SEG1"
t_match "a trusted spool again: the duplicate is recorded" "$(rec walpush.success 2)" \
	"already archived with identical content"
t_eq "no temporary file is left in the status directory" "$(ls -A "$ST" | grep -c '^\.')" 0

# ---- SIGKILL at any moment of walpush ---------------------------------------------
KA=$T/kill-archive
mkdir -p "$KA"; chown postgres:postgres "$KA"
KS=$(segname 1 2)
mkseg "$W/k" 2 tli=1
PGUID=$(id -u postgres); PGGID=$(id -g postgres)
# how long one push takes here, so the kills land anywhere from start to end
dur_ms=0
for comp in lz4 none; do
	t0=${EPOCHREALTIME/./}
	(cd "$DATA" && setpriv --reuid="$PGUID" --regid="$PGGID" --clear-groups "$BIN/walpush" -c "$CONF" \
		--set "archive=$KA" --set "compress=$comp" "$W/k" "$KS")
	t1=${EPOCHREALTIME/./}
	[ $(( (t1 - t0) / 1000 )) -gt "$dur_ms" ] && dur_ms=$(( (t1 - t0) / 1000 ))
	rm -f "$KA/$SYSID/${KS:0:16}/$KS"*
done
[ "$dur_ms" -ge 5 ] || dur_ms=5
echo "# one walpush takes about $dur_ms ms here; kill delays from 1 to $((dur_ms * 12 / 10)) ms"
complete=0 none=0 badretry=0 badobj=0
for i in $(seq 1 30); do
	if [ $((i % 2)) = 0 ]; then comp=lz4; else comp=none; fi
	ms=$((RANDOM % (dur_ms * 12 / 10) + 1))
	delay=$(printf '%d.%03d' $((ms / 1000)) $((ms % 1000)))
	# setpriv execs walpush in place, so the KILL reaches walpush itself
	(cd "$DATA" && timeout -s KILL "$delay" setpriv --reuid="$PGUID" --regid="$PGGID" --clear-groups \
		"$BIN/walpush" -c "$CONF" --set "archive=$KA" --set "compress=$comp" "$W/k" "$KS" \
		>/dev/null 2>&1) 2>/dev/null
	o="$KA/$SYSID/${KS:0:16}/$KS.lz4"
	if [ -e "$o" ]; then
		if lz4 -dc "$o" 2>/dev/null | cmp -s - "$W/k"; then complete=$((complete + 1)); else badobj=$((badobj + 1)); echo "# trial $i ($delay s, $comp): incomplete object under its final name"; fi
	else
		none=$((none + 1))
	fi
	run walpush "$DATA" -c "$CONF" --set "archive=$KA" --set "compress=$comp" "$W/k" "$KS"
	[ "$RC" = 0 ] || { badretry=$((badretry + 1)); echo "# trial $i ($delay s, $comp): retry exit $RC: $ERR"; }
	lz4 -dc "$o" 2>/dev/null | cmp -s - "$W/k" || {
		badretry=$((badretry + 1)); echo "# trial $i: object after retry differs"; }
	rm -f "$o"
done
left=$(find "$KA/$SYSID" -type f ! -name walarchive.info | wc -l)
echo "# SIGKILL trials: $none with no object under the final name, $complete with the complete object; $left temporary files left in the archive"
t_eq "SIGKILL at random moments (30 trials) never leaves a partial object under the final name" "$badobj" 0
t_eq "after every SIGKILL the next walpush exits 0 with an identical object" "$badretry" 0
t_check "the trials killed walpush before it finished at least once" test "$none" -gt 0

t_done
