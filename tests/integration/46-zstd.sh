#!/bin/bash
# SANITIZE_OK: also run against the ASan+UBSan build by tests/run.sh
# compress = zstd, read back by Debian's zstd tool: every object walpush
# stores is a zstd frame with its content checksum that `zstd -d` restores
# to the exact segment; an object made by hand with `zstd --check` is
# restored by walfetch, one made with --no-check or damaged is refused and
# delivers nothing; an archive that mixes lz4 and zstd objects (compress
# changed) keeps one object per segment, restores, prunes and passes
# walcheck --deep; encrypted, the frame is .zst.age (age -d | zstd -d)
# and counts against .lz4.age duplicates; then the same over SFTP
# (push-ahead, fetch-ahead, prune), and a real PostgreSQL 15 archiving under
# pgbench with compress = zstd and a point-in-time recovery from that archive.
. "$(dirname "$0")/../lib/common.sh"
. "$WALARCHIVE_SRC/tests/lib/pg.sh"
. "$WALARCHIVE_SRC/tests/lib/wal.sh"
. "$WALARCHIVE_SRC/tests/lib/sshd.sh"

export LC_ALL=C
BIN=$WALARCHIVE_BIN
T=$WALARCHIVE_TMP
command -v zstd >/dev/null || { t_fail "zstd is not installed (tests/setup.sh)"; t_done; }
[ -x "$BIN/storectl" ] || { t_fail "$BIN/storectl is not installed (cmake --install BUILD --component tests)"; t_done; }

W=$T/work
ARCH=$T/archive
mkdir -p "$W" "$ARCH"
chown postgres:postgres "$W" "$ARCH"

pg_new c1 || { t_fail "initdb"; t_done; }
DATA=$(pg_data c1)
SYSID=$("$PGBIN/pg_controldata" "$DATA" | sed -n 's/^Database system identifier: *//p')
MKSEG_SRC=$DATA/pg_wal/000000010000000000000001
SB=$T/standby
mkdir -p "$SB/global"; cp "$DATA/global/pg_control" "$SB/global/"; touch "$SB/standby.signal"
chown -R postgres:postgres "$SB"

walarchive_conf "$T/zstd.conf" "archive=$ARCH" "compress=zstd"
walarchive_conf "$T/zstd9.conf" "archive=$ARCH" "compress=zstd" "compress_level=9"
walarchive_conf "$T/lz4.conf" "archive=$ARCH" "compress=lz4"

run() {
	local prog=$1 dir=$2; shift 2
	as_pg env -C "$dir" "$BIN/$prog" "$@" >"$T/out" 2>"$T/err"
	RC=$?
	ERR=$(cat "$T/err")
}
MSG_OK_ICASE=1
obj() { echo "$ARCH/$SYSID/0000000100000000/$1"; }

for n in 1 2 3 4 5 6 7 8; do
	eval "S$n=$(segname $n)"
	MKSEG_OWNER=postgres mkseg "$W/$(segname $n)" "$n"
done
# a segment as PostgreSQL writes it: mostly zeros after the records
cp "$DATA/pg_wal/$S1" "$W/$S1"; chown postgres: "$W/$S1"

# ---- walpush writes zstd frames that zstd -d reads ----------------------------
run walpush "$DATA" -c "$T/zstd.conf" "$W/$S1" "$S1"
t_eq "walpush with compress = zstd exits 0" "$RC" 0
t_check "the object is named .zst, and no .lz4 is made" test -f "$(obj "$S1").zst" -a ! -e "$(obj "$S1").lz4"
t_check "zstd -d gives the exact segment" cmp -s <(zstd -q -d -c "$(obj "$S1").zst") "$W/$S1"
zstd -lv "$(obj "$S1").zst" >"$T/zl" 2>&1
t_match "the frame carries its XXH64 content checksum" "$(cat "$T/zl")" "Check: XXH64"
t_match "and the content size (16 MiB)" "$(cat "$T/zl")" "Decompressed Size: .*\(16777216 B\)"
t_check "a real segment shrinks (pg_wal after initdb: $(stat -c %s "$(obj "$S1").zst") bytes)" \
	test "$(stat -c %s "$(obj "$S1").zst")" -lt 4000000
run walpush "$DATA" -c "$T/zstd9.conf" "$W/$S2" "$S2"
t_eq "compress_level = 9 is zstd's level 9 (exit 0)" "$RC" 0
t_check "zstd -d reads that one too" cmp -s <(zstd -q -d -c "$(obj "$S2").zst") "$W/$S2"
run walpush "$DATA" -c "$T/lz4.conf" --set compress_level=13 "$W/$S3" "$S3"
t_eq "compress_level = 13 with lz4 is a configuration error (exit 3)" "$RC" 3
msg_ok "naming the setting" walpush "compress_level.*lz4's levels are 1 to 12"
t_check "and nothing is stored" test ! -e "$(obj "$S3").lz4" -a ! -e "$(obj "$S3").zst"

run walfetch "$SB" -c "$T/zstd.conf" "$S1" "$W/got1"
t_eq "walfetch restores a zstd object (exit 0)" "$RC" 0
t_check "to the exact segment" cmp -s "$W/got1" "$W/$S1"

# ---- made by hand with the zstd tool ------------------------------------------
zstd -q -f --check -19 "$W/$S3" -o "$(obj "$S3").zst"
chown postgres: "$(obj "$S3").zst"
run walfetch "$SB" -c "$T/lz4.conf" "$S3" "$W/got3"
t_eq "an object made with zstd --check is restored (exit 0), even with compress = lz4" "$RC" 0
t_check "exactly" cmp -s "$W/got3" "$W/$S3"
zstd -q -f --no-check "$W/$S4" -o "$(obj "$S4").zst"
run walfetch "$SB" -c "$T/zstd.conf" "$S4" "$W/got4"
t_eq "an object made with --no-check is refused (exit 7: corrupt)" "$RC" 7
msg_ok "one message naming the object and the cause" walfetch "$S4\.zst: zstd frame without a content checksum"
t_check "and nothing is delivered" test ! -e "$W/got4"
zstd -q -f --check "$W/$S4" -o "$(obj "$S4").zst"
size=$(stat -c %s "$(obj "$S4").zst")
printf 'X' | dd of="$(obj "$S4").zst" bs=1 seek=$((size / 2)) conv=notrunc 2>/dev/null
run walfetch "$SB" -c "$T/zstd.conf" "$S4" "$W/got4"
t_eq "a damaged zstd object is refused (exit 7: corrupt)" "$RC" 7
t_check "and nothing is delivered" test ! -e "$W/got4"
rm -f "$(obj "$S4").zst"

# ---- a mixed archive: compress changed from lz4 to zstd -------------------------
for s in "$S4" "$S5"; do run walpush "$DATA" -c "$T/lz4.conf" "$W/$s" "$s"; done
t_check "lz4 objects for two segments" test -f "$(obj "$S4").lz4" -a -f "$(obj "$S5").lz4"
before=$(arch_state)
run walpush "$DATA" -c "$T/zstd.conf" "$W/$S5" "$S5"
t_eq "with compress = zstd, an identical retry of an lz4-archived segment exits 0" "$RC" 0
t_match "and says so" "$ERR" "identical content"
cp "$W/$S5" "$W/changed"; printf 'X' | dd of="$W/changed" bs=1 seek=9000000 conv=notrunc 2>/dev/null
chown postgres: "$W/changed"
run walpush "$DATA" -c "$T/zstd.conf" "$W/changed" "$S5"
t_eq "different content exits 4" "$RC" 4
msg_ok "naming the lz4 object" walpush "different content at .*$S5\.lz4"
t_eq "no second object, the archive untouched" "$(arch_state)" "$before"
run walpush "$DATA" -c "$T/lz4.conf" "$W/$S1" "$S1"
t_eq "and the other way: compress = lz4 finds the zstd object (exit 0)" "$RC" 0
t_check "without making a .lz4" test ! -e "$(obj "$S1").lz4"
for s in "$S6" "$S7" "$S8"; do run walpush "$DATA" -c "$T/zstd.conf" "$W/$s" "$s"; done
ok=1
for c in zstd lz4; do
	for n in 1 2 3 4 5 6 7 8; do
		s=$(segname $n)
		run walfetch "$SB" -c "$T/$c.conf" "$s" "$W/mixed"
		[ "$RC" = 0 ] && cmp -s "$W/mixed" "$W/$s" || { ok=0; echo "# $c $s: $RC $ERR"; }
	done
done
t_eq "the mixed archive restores every segment exactly, with either setting" "$ok" 1
as_pg "$BIN/walcheck" -c "$T/zstd.conf" --deep >"$T/check.out" 2>&1
rc=$?
t_eq "walcheck --deep reads every object of the mixed archive (exit 0)" "$rc" 0 ||
	cat "$T/check.out"
zstd -q -f --check "$W/$S6" -o "$W/bad.zst"
printf 'X' | dd of="$W/bad.zst" bs=1 seek=100 conv=notrunc 2>/dev/null
cp "$(obj "$S6").zst" "$W/good.zst"; cp "$W/bad.zst" "$(obj "$S6").zst"
as_pg "$BIN/walcheck" -c "$T/zstd.conf" --deep >"$T/check.out" 2>&1
rc=$?
t_check "walcheck --deep finds a damaged zstd object (exit $rc)" test "$rc" -ne 0
t_match "and names it" "$(cat "$T/check.out")" "$S6\.zst"
cp "$W/good.zst" "$(obj "$S6").zst"
run walprune "$SB" -c "$T/zstd.conf" --before "$S5"
t_eq "walprune exits 0" "$RC" 0
t_eq "and removes the lz4 and zstd objects before the horizon" \
	"$(find "$ARCH/$SYSID/0000000100000000" -type f -printf '%f\n' | sort | tr '\n' ' ')" \
	"$S5.lz4 $S6.zst $S7.zst $S8.zst "

# ---- encrypted: compressed with zstd, then encrypted (.zst.age) ----------------
if command -v age >/dev/null && command -v age-keygen >/dev/null; then
	K=$T/keys; mkdir -p "$K"; chown postgres: "$K"; chmod 700 "$K"
	as_pg age-keygen -o "$K/key.txt" 2>/dev/null
	walarchive_conf "$T/enc-zstd.conf" "archive=$ARCH" "compress=zstd" \
		"encrypt_recipients=$(age-keygen -y "$K/key.txt")" "encrypt_identity=$K/key.txt"
	walarchive_conf "$T/enc-lz4.conf" "archive=$ARCH" "compress=lz4" \
		"encrypt_recipients=$(age-keygen -y "$K/key.txt")" "encrypt_identity=$K/key.txt"
	S9=$(segname 9) S10=$(segname 10)
	MKSEG_OWNER=postgres mkseg "$W/$S9" 9
	MKSEG_OWNER=postgres mkseg "$W/$S10" 10
	cp "$W/$S10" "$W/changed10"; printf 'X' | dd of="$W/changed10" bs=1 seek=9000000 conv=notrunc 2>/dev/null
	chown postgres: "$W/changed10"
	run walpush "$DATA" -c "$T/enc-zstd.conf" "$W/$S9" "$S9"
	t_eq "compress = zstd with encrypt_recipients exits 0" "$RC" 0
	t_check "the object is .zst.age, nothing in clear" test -f "$(obj "$S9").zst.age" -a ! -e "$(obj "$S9").zst"
	t_check "age -d | zstd -d gives the exact segment" \
		cmp -s <(age -d -i "$K/key.txt" "$(obj "$S9").zst.age" | zstd -q -d -c) "$W/$S9"
	run walpush "$DATA" -c "$T/enc-lz4.conf" "$W/$S9" "$S9"
	t_eq "an identical retry with lz4 finds the .zst.age object (exit 0)" "$RC" 0
	t_check "without a .lz4.age" test ! -e "$(obj "$S9").lz4.age"
	run walpush "$DATA" -c "$T/enc-lz4.conf" "$W/$S10" "$S10"
	run walpush "$DATA" -c "$T/enc-zstd.conf" "$W/changed10" "$S10"
	t_eq "different content over a .lz4.age object exits 4 with compress = zstd" "$RC" 4
	run walfetch "$SB" -c "$T/enc-zstd.conf" "$S10" "$W/got10"
	t_eq "and walfetch with compress = zstd restores the .lz4.age one (exit 0)" "$RC" 0
	t_check "exactly" cmp -s "$W/got10" "$W/$S10"
	rm -f "$(obj "$S9").zst.age" "$(obj "$S10").lz4.age"
else
	t_skip "encrypted zstd objects: age is not installed (tests/setup.sh)"
fi

# ---- SFTP: push-ahead, read back with zstd, fetch-ahead, prune -------------------
D=$T/sshd
if t_setup "sshd" sshd_setup "$D" postgres && sshd_start "$D" && sshd_known_hosts "$D"; then
	mkdir -p "$T/sftp-root" "$T/spool-sftp" "$T/hand/pg_wal/archive_status"
	chown "$SSHD_USER" "$T/sftp-root"; chown postgres: "$T/spool-sftp"; chmod 700 "$T/spool-sftp"
	walarchive_conf "$T/sftp.conf" "archive=$(sshd_url "$D" "$T/sftp-root")" "ssh_key=$D/id_ed25519" \
		"ssh_known_hosts=$D/known_hosts" "compress=zstd" "spool_dir=$T/spool-sftp" \
		"push_ahead=4" "fetch_ahead=4" "log_level=info"
	H=$T/hand
	for n in 10 11 12 13; do MKSEG_OWNER= mkseg "$H/pg_wal/$(segname $n)" "$n"; done
	for n in 11 12 13; do touch "$H/pg_wal/archive_status/$(segname $n).ready"; done
	chown -R postgres: "$H"
	out=$(as_pg "$BIN/walpush" -c "$T/sftp.conf" -D "$DATA" "$H/pg_wal/$(segname 10)" "$(segname 10)" 2>&1)
	t_eq "sftp: walpush exits 0" "$?" 0
	t_match "sftp: and pushes the three ready files ahead" "$out" "pushed ahead 3 of 3 ready files"
	dir=$SYSID/0000000100000000
	"$BIN/storectl" "$T/sftp.conf" list "$dir" >"$T/list" 2>&1
	t_eq "sftp: every object is .zst" "$(grep -c '\.zst$' "$T/list") $(grep -vc '\.zst$' "$T/list")" "4 0"
	ok=1
	for n in 10 11 12 13; do
		"$BIN/storectl" "$T/sftp.conf" get "$dir/$(segname $n).zst" >"$T/obj" 2>/dev/null
		cmp -s <(zstd -q -d -c "$T/obj") "$H/pg_wal/$(segname $n)" || ok=0
	done
	t_eq "sftp: each object read back opens with zstd -d to the exact segment" "$ok" 1
	ok=1
	for n in 10 11 12 13; do
		run walfetch "$SB" -c "$T/sftp.conf" "$(segname $n)" "$W/sftp-$n"
		[ "$RC" = 0 ] && cmp -s "$W/sftp-$n" "$H/pg_wal/$(segname $n)" || { ok=0; echo "# $n: $RC $ERR"; }
	done
	t_eq "sftp: walfetch (fetch-ahead on) restores all four exactly" "$ok" 1
	t_match "sftp: later ones come from the spool the prefetcher filled" "$ERR" "restored from the spool"
	run walprune "$SB" -c "$T/sftp.conf" --before "$(segname 12)"
	"$BIN/storectl" "$T/sftp.conf" list "$dir" >"$T/list" 2>&1
	t_eq "sftp: walprune removes the zstd objects before the horizon" "$(grep -c '\.zst$' "$T/list")" 2
fi

# ---- PostgreSQL 15 under pgbench with compress = zstd; recover to a restore point ----
PARCH=$T/pg-archive
mkdir -p "$PARCH"; chown postgres: "$PARCH"
walarchive_conf "$T/pg.conf" "archive=$PARCH" "compress=zstd"
pg_new prim || t_fail "initdb the primary"
pg_conf prim "archive_mode = on" "wal_level = replica" \
	"archive_command = '$BIN/walpush -c $T/pg.conf %p %f'" "archive_timeout = 0"
if t_setup "start the primary" pg_start prim && t_setup "base backup" pg_take_basebackup prim rest; then
	pg_pgbench prim -i -s 5 -q >/dev/null 2>&1 || t_fail "pgbench -i"
	pg_pgbench prim -T 5 -c 2 >/dev/null 2>&1 || t_fail "pgbench -T 5"
	pg_sql prim "create table marker(what text)" "insert into marker values ('before')" >/dev/null
	accounts=$(pg_sql prim "select sum(abalance) from pgbench_accounts")
	pg_sql prim "select pg_create_restore_point('zstd_target')" >/dev/null
	pg_sql prim "insert into marker values ('after')" "select pg_switch_wal()" >/dev/null
	last=$(pg_sql prim "select pg_walfile_name(pg_current_wal_lsn() - 1)")
	if pg_wait_sql prim 120 "select last_archived_wal >= '$last' from pg_stat_archiver"; then
		t_ok "postgresql 15 archived every segment as zstd ($(pg_sql prim \
			"select archived_count from pg_stat_archiver") archived)"
	else
		t_fail "archiving did not catch up ($(pg_sql prim \
			"select archived_count, failed_count, last_failed_wal from pg_stat_archiver"))"
	fi
	t_eq "no failed archive attempts" "$(pg_sql prim "select failed_count from pg_stat_archiver")" 0
	t_eq "every segment object is .zst" \
		"$(find "$PARCH" -type f -name '0000*' ! -name '*.zst' | wc -l)" 0
	# each object against the segment still in pg_wal (those PostgreSQL has not recycled)
	checked=0 ok=1
	for o in $(find "$PARCH" -type f -name '0000000100000000000000??.zst'); do
		s=$(pg_data prim)/pg_wal/$(basename "$o" .zst)
		zstd -q -t "$o" || ok=0
		[ -f "$s" ] || continue
		cmp -s <(zstd -q -d -c "$o") "$s" && checked=$((checked + 1)) || ok=0
	done
	t_eq "zstd -t passes on every object, zstd -d gives pg_wal's bytes ($checked compared)" "$ok" 1
	pg_stop prim
	pg_conf rest "archive_mode = off" "restore_command = '$BIN/walfetch -c $T/pg.conf %f %p'" \
		"recovery_target_name = 'zstd_target'" "recovery_target_action = 'promote'"
	touch "$(pg_data rest)/recovery.signal"; chown postgres: "$(pg_data rest)/recovery.signal"
	if t_setup "start the recovery" pg_start rest && pg_wait_sql rest 180 "select not pg_is_in_recovery()"; then
		t_ok "point-in-time recovery from the zstd archive reached its target"
		t_eq "data committed before the target is there, none after" \
			"$(pg_sql rest "select string_agg(what, ',') from marker")" before
		t_eq "pgbench balances as of the target" \
			"$(pg_sql rest "select sum(abalance) from pgbench_accounts")" "$accounts"
	else
		t_fail "recovery did not finish"
		tail -n 10 "$(pg_dir rest)/server.log"
	fi
	pg_stop rest
fi

t_done
