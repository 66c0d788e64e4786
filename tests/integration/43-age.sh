#!/bin/bash
# SANITIZE_OK: also run against the ASan+UBSan build by tests/run.sh
# Encryption at rest in the age format, read and written by Debian's age
# tool: every object walpush stores with encrypt_recipients opens with
# `age -d -i KEY | lz4 -d` (with either recipient's key), an object made
# with `age -r` is restored by walfetch, nothing is stored in clear, an
# unusable key is a configuration error, a wrong or missing identity and any
# damage deliver nothing, duplicates are told apart without a secret key,
# an archive may mix plain and encrypted objects; then the same over SFTP,
# WebDAV and S3 (push, fetch-ahead, prune, read back with age), and a real
# PostgreSQL 15 point-in-time recovery from an encrypted archive with
# push-ahead and fetch-ahead on.
. "$(dirname "$0")/../lib/common.sh"
. "$WALARCHIVE_SRC/tests/lib/pg.sh"
. "$WALARCHIVE_SRC/tests/lib/wal.sh"
. "$WALARCHIVE_SRC/tests/lib/sshd.sh"
. "$WALARCHIVE_SRC/tests/lib/nginx.sh"
. "$WALARCHIVE_SRC/tests/lib/swift.sh"

export LC_ALL=C
BIN=$WALARCHIVE_BIN
T=$WALARCHIVE_TMP
command -v age >/dev/null && command -v age-keygen >/dev/null ||
	{ t_fail "age and age-keygen are not installed (tests/setup.sh)"; t_done; }
[ -x "$BIN/storectl" ] || { t_fail "$BIN/storectl is not installed (cmake --install BUILD --component tests)"; t_done; }

W=$T/work
ARCH=$T/archive
K=$T/keys
mkdir -p "$W" "$ARCH" "$K"
chown postgres:postgres "$W" "$ARCH" "$K"
chmod 700 "$K"

# ---- keys: the archive's key and an offline recovery key ------------------
as_pg age-keygen -o "$K/key.txt" 2>/dev/null
as_pg age-keygen -o "$K/recovery.txt" 2>/dev/null
as_pg age-keygen -o "$K/stranger.txt" 2>/dev/null
PUB=$(age-keygen -y "$K/key.txt")
REC=$(age-keygen -y "$K/recovery.txt")
printf '# the archive key\n%s\n\n# the offline recovery key\n%s\n' "$PUB" "$REC" > "$K/recipients.txt"
chown postgres: "$K/recipients.txt"
t_match "age-keygen made two keys" "$PUB $REC" '^age1[a-z0-9]{58} age1[a-z0-9]{58}$'

pg_new c1 || { t_fail "initdb"; t_done; }
DATA=$(pg_data c1)
SYSID=$("$PGBIN/pg_controldata" "$DATA" | sed -n 's/^Database system identifier: *//p')
MKSEG_SRC=$DATA/pg_wal/000000010000000000000001
# a standby's data directory: walfetch gives the plain exit codes there
SB=$T/standby
mkdir -p "$SB/global"; cp "$DATA/global/pg_control" "$SB/global/"; touch "$SB/standby.signal"
chown -R postgres:postgres "$SB"

# push-only hosts hold the public keys; restoring hosts the identity
walarchive_conf "$T/push.conf" "archive=$ARCH" "encrypt_recipients=$K/recipients.txt"
walarchive_conf "$T/fetch.conf" "archive=$ARCH" "encrypt_identity=$K/key.txt"
walarchive_conf "$T/recovery.conf" "archive=$ARCH" "encrypt_identity=$K/recovery.txt"
walarchive_conf "$T/stranger.conf" "archive=$ARCH" "encrypt_identity=$K/stranger.txt"
walarchive_conf "$T/plain.conf" "archive=$ARCH"

# run PROG DIR ARGS...: PROG as postgres in DIR; sets RC, ERR
run() {
	local prog=$1 dir=$2; shift 2
	as_pg env -C "$dir" "$BIN/$prog" "$@" >"$T/out" 2>"$T/err"
	RC=$?
	ERR=$(cat "$T/err")
}
MSG_OK_ICASE=1
# opens OBJ with KEY the way README says to restore by hand
by_hand() { age -d -i "$2" "$1" | lz4 -d -c; }

for n in 1 2 3 4 5 6; do
	eval "S$n=$(segname $n)"
	MKSEG_OWNER=postgres mkseg "$W/$(segname $n)" "$n"
done

# ---- walpush encrypts; age opens -------------------------------------------
run walpush "$DATA" -c "$T/push.conf" "$W/$S1" "$S1"
t_eq "walpush with encrypt_recipients exits 0" "$RC" 0
t_check "the object is named .lz4.age" test -f "$(obj "$S1").lz4.age"
t_check "and nothing of it is stored in clear" test ! -e "$(obj "$S1").lz4" -a ! -e "$(obj "$S1")"
t_eq "it is an age file" "$(head -c 21 "$(obj "$S1").lz4.age")" "age-encryption.org/v1"
t_check "age -d -i KEY | lz4 -d gives the exact segment" \
	cmp -s <(by_hand "$(obj "$S1").lz4.age" "$K/key.txt") "$W/$S1"
t_check "and so does the offline recovery key" \
	cmp -s <(by_hand "$(obj "$S1").lz4.age" "$K/recovery.txt") "$W/$S1"
t_check "a third key opens nothing" bash -c "! age -d -i '$K/stranger.txt' '$(obj "$S1").lz4.age' >/dev/null 2>&1"

# ---- duplicates, with public keys only --------------------------------------
before=$(arch_state)
run walpush "$DATA" -c "$T/push.conf" "$W/$S1" "$S1"
t_eq "an identical retry is success, with public keys only" "$RC" 0
t_match "and says so" "$ERR" "identical content"
cp "$W/$S1" "$W/changed"; printf 'X' | dd of="$W/changed" bs=1 seek=9000000 conv=notrunc 2>/dev/null
chown postgres: "$W/changed"
run walpush "$DATA" -c "$T/push.conf" "$W/changed" "$S1"
t_eq "different content under the same name exits 4" "$RC" 4
msg_ok "with one message naming the object" walpush "different content at .*$S1\.lz4\.age"
t_eq "and the archive is untouched" "$(arch_state)" "$before"
walarchive_conf "$T/other-rcpt.conf" "archive=$ARCH" "encrypt_recipients=$(age-keygen -y "$K/stranger.txt")"
run walpush "$DATA" -c "$T/other-rcpt.conf" "$W/$S1" "$S1"
t_eq "a host with other recipients cannot compare: refused, not overwritten" "$RC" 4
msg_ok "saying why" walpush "encrypted to other recipients.*encrypt_identity"
walarchive_conf "$T/other-both.conf" "archive=$ARCH" "encrypt_recipients=$(age-keygen -y "$K/stranger.txt")" \
	"encrypt_identity=$K/key.txt"
run walpush "$DATA" -c "$T/other-both.conf" "$W/$S1" "$S1"
t_eq "with an identity that opens it, it compares by decryption" "$RC" 0

# ---- walfetch decrypts ---------------------------------------------------------
run walfetch "$SB" -c "$T/fetch.conf" "$S1" "$W/got1"
t_eq "walfetch with encrypt_identity exits 0" "$RC" 0
t_check "and restores the exact segment" cmp -s "$W/got1" "$W/$S1"
run walfetch "$SB" -c "$T/recovery.conf" "$S1" "$W/got1r"
t_check "so does the recovery key" cmp -s "$W/got1r" "$W/$S1"

# objects made by hand with the age tool
lz4 -1 -q -c "$W/$S2" | age -r "$PUB" > "$(obj "$S2").lz4.age"
age -r "$PUB" "$W/$S3" > "$(obj "$S3").age"
chown postgres: "$(obj "$S2").lz4.age" "$(obj "$S3").age"
run walfetch "$SB" -c "$T/fetch.conf" "$S2" "$W/got2"
t_check "an object made with lz4 -1 | age -r is restored" cmp -s "$W/got2" "$W/$S2"
run walfetch "$SB" -c "$T/fetch.conf" "$S3" "$W/got3"
t_check "and one made with age -r from the segment alone (.age)" cmp -s "$W/got3" "$W/$S3"

# ---- no identity, wrong identity: nothing delivered -----------------------------
run walfetch "$SB" -c "$T/plain.conf" "$S1" "$W/none"
t_eq "walfetch without encrypt_identity exits 3" "$RC" 3
msg_ok "naming the object and what is missing" walfetch "$S1\.lz4\.age: the object is encrypted and encrypt_identity is not set"
t_check "and delivers nothing" test ! -e "$W/none"
run walfetch "$SB" -c "$T/stranger.conf" "$S1" "$W/none"
t_eq "walfetch with an identity that does not match exits 3" "$RC" 3
msg_ok "saying so" walfetch "encrypted to other recipients: no identity in encrypt_identity opens it"
t_check "and delivers nothing" test ! -e "$W/none"

# ---- damage: any chunk, the header, its MAC, a truncation ------------------------
O=$(obj "$S1").lz4.age
cp "$O" "$T/saved"
damage() { # damage DESC PYTHON-EXPR-ON-d
	python3 -c "d=bytearray(open('$O','rb').read()); $2; open('$O','wb').write(d)"
	run walfetch "$SB" -c "$T/fetch.conf" "$S1" "$W/bad"
	t_eq "$1: exit 7" "$RC" 7
	t_check "$1: nothing delivered, no temporary file left" \
		bash -c "! ls -A '$W' | grep -q -e '^bad' -e '^\.bad'"
	cp "$T/saved" "$O"
}
damage "a flipped bit in the middle chunk" "d[len(d)//2] ^= 1"
damage "a flipped bit in the last chunk's tag" "d[-1] ^= 0x80"
damage "the header mac changed" "i=d.index(b'\n--- ')+6; d[i] = ord('A') if d[i] != ord('A') else ord('B')"
damage "a truncation at a chunk boundary" "i=d.index(b'\n--- '); j=d.index(b'\n', i+1)+1+16; del d[j+65552:]"
damage "a truncation in the middle" "del d[len(d)//3:]"
damage "trailing data" "d += b'x'"
msg_ok "the message names the object and the cause" walfetch "$S1\.lz4\.age: not a valid age file"

# ---- fail closed: unusable keys are configuration errors ---------------------------
before=$(arch_state)
run walpush "$DATA" -c "$T/push.conf" --set "encrypt_recipients=$K/missing.txt" "$W/$S4" "$S4"
t_eq "a missing recipients file exits 3" "$RC" 3
msg_ok "naming the file" walpush "missing\.txt: cannot open encrypt_recipients file"
run walpush "$DATA" -c "$T/push.conf" --set "encrypt_recipients=age1notakey" "$W/$S4" "$S4"
t_eq "a malformed recipient exits 3" "$RC" 3
echo "AGE-SECRET-KEY-1QQQ" > "$K/bad-rcpt.txt"; chown postgres: "$K/bad-rcpt.txt"
run walpush "$DATA" -c "$T/push.conf" --set "encrypt_recipients=$K/bad-rcpt.txt" "$W/$S4" "$S4"
t_eq "a recipients file holding something else exits 3" "$RC" 3
msg_ok "naming the file and line" walpush "bad-rcpt\.txt:1: "
chmod 000 "$K/recipients.txt"
run walpush "$DATA" -c "$T/push.conf" "$W/$S4" "$S4"
t_eq "an unreadable recipients file exits 3" "$RC" 3
chmod 644 "$K/recipients.txt"
t_eq "and nothing was stored, in clear or not" "$(arch_state)" "$before"
chmod 640 "$K/key.txt"
run walfetch "$SB" -c "$T/fetch.conf" "$S1" "$W/none"
t_eq "an identity file others can read exits 3" "$RC" 3
msg_ok "saying what to do" walfetch "key\.txt: encrypt_identity file is accessible by group or others.*chmod 600"
chmod 600 "$K/key.txt"
t_check "and delivers nothing" test ! -e "$W/none"

# ---- a mixed archive: encryption turned on later ---------------------------------
run walpush "$DATA" -c "$T/plain.conf" "$W/$S4" "$S4"
t_check "before encryption, walpush stored $S4 as .lz4" test -f "$(obj "$S4").lz4"
run walpush "$DATA" -c "$T/push.conf" "$W/$S4" "$S4"
t_eq "pushed again with encryption on, the plain object counts as the duplicate" "$RC" 0
t_check "and no second, encrypted copy is made" test ! -e "$(obj "$S4").lz4.age"
run walpush "$DATA" -c "$T/push.conf" "$W/$S5" "$S5"
run walfetch "$SB" -c "$T/fetch.conf" "$S4" "$W/got4"
t_check "walfetch with an identity restores the plain object" cmp -s "$W/got4" "$W/$S4"
run walfetch "$SB" -c "$T/fetch.conf" "$S5" "$W/got5"
t_check "and the encrypted one beside it" cmp -s "$W/got5" "$W/$S5"
run walfetch "$SB" -c "$T/plain.conf" "$S4" "$W/got4p"
t_check "without an identity, the plain one still restores" cmp -s "$W/got4p" "$W/$S4"

# ---- libcrypto only for encryption: the module is loaded on first need ------------
for prog in walpush walfetch walprune; do
	t_check "$prog does not link libcrypto" bash -c "! ldd '$BIN/$prog' | grep -q libcrypto"
done
# LD_DEBUG=files names every object the dynamic loader opens
as_pg env -C "$SB" LD_DEBUG=files "$BIN/walfetch" -c "$T/plain.conf" "$S4" "$W/ld4" \
	>/dev/null 2>"$T/ld.err"
t_check "a walfetch of a plain object restores it" cmp -s "$W/ld4" "$W/$S4"
t_check "without loading walarchive_crypto.so or libcrypto" \
	bash -c "! grep -q -e walarchive_crypto -e libcrypto '$T/ld.err'"
as_pg env -C "$SB" LD_DEBUG=files "$BIN/walfetch" -c "$T/fetch.conf" "$S5" "$W/ld5" \
	>/dev/null 2>"$T/ld.err"
t_check "a walfetch with encrypt_identity restores the encrypted object" cmp -s "$W/ld5" "$W/$S5"
t_check "loading walarchive_crypto.so, which maps libcrypto" \
	bash -c "grep -q 'file=.*walarchive_crypto.so' '$T/ld.err' && grep -q 'file=libcrypto' '$T/ld.err'"
# hidden in a mount namespace of its own, the module cannot be loaded
mkdir -p "$T/archive2" && chown postgres: "$T/archive2"
MOD=$(find "$BIN/.." -name walarchive_crypto.so -print -quit)
hidden() { # hidden PROG DIR ARGS...: run with the module's folder empty
	local prog=$1 dir=$2; shift 2
	unshare -m bash -c 'mount -t tmpfs none "$1" && shift && exec "$@"' _ "$(dirname "$MOD")" \
		runuser -u postgres -- env -C "$dir" "$BIN/$prog" "$@" >"$T/out" 2>"$T/err"
	RC=$?
	ERR=$(cat "$T/err")
}
if [ -z "$MOD" ] || ! unshare -m true 2>/dev/null; then
	t_skip "without the module (no module beside $BIN, or no mount namespace)"
else
	hidden walfetch "$SB" -c "$T/plain.conf" "$S4" "$W/hid4"
	t_eq "without the module, walfetch of a plain object exits 0" "$RC" 0
	t_check "and restores it" cmp -s "$W/hid4" "$W/$S4"
	hidden walpush "$DATA" -c "$T/plain.conf" --set "archive=$T/archive2" "$W/$S6" "$S6"
	t_eq "and walpush without encryption stores a segment (exit 0)" "$RC" 0
	hidden walfetch "$SB" -c "$T/fetch.conf" "$S5" "$W/hid5"
	t_eq "walfetch with encrypt_identity exits 6, as without a transport module" "$RC" 6
	msg_ok "naming the module" walfetch "encryption module walarchive_crypto\.so cannot be loaded"
	t_check "and delivers nothing" test ! -e "$W/hid5"
	before=$(arch_state)
	hidden walpush "$DATA" -c "$T/push.conf" "$W/$S6" "$S6"
	t_eq "walpush with encrypt_recipients exits 6" "$RC" 6
	msg_ok "naming the module" walpush "encryption module walarchive_crypto\.so cannot be loaded"
	t_eq "and stores nothing, in clear or not" "$(arch_state)" "$before"
fi

# ---- walcheck --deep and walprune ----------------------------------------------
as_pg "$BIN/walcheck" -c "$T/fetch.conf" --deep >"$T/check.out" 2>&1
t_eq "walcheck --deep with the identity verifies every object (exit 0)" "$?" 0
as_pg "$BIN/walcheck" -c "$T/plain.conf" --deep >"$T/check.out" 2>&1
rc=$?
t_check "walcheck --deep without it is not healthy (exit $rc)" test "$rc" -ne 0
t_match "and names what is missing" "$(cat "$T/check.out")" "encrypt_identity is not set"
run walprune "$SB" -c "$T/push.conf" --before "$S3"
t_eq "walprune on a push host (public keys only) exits 0" "$RC" 0
t_eq "and removes the encrypted objects before the horizon" \
	"$(find "$ARCH/$SYSID/0000000100000000" -type f -printf '%f\n' | sort | tr '\n' ' ')" \
	"$S3.age $S4.lz4 $S5.lz4.age "

# ---- every transport: push, fetch-ahead, prune, read back with age ------------------
# whether the spool SPOOL holds segment NAME, restored and named with its hash
spooled() { ls "$1"/*/"${2:0:16}" 2>/dev/null | grep -q "^$2\."; }

# transport NAME CONF: segments 10-13 through the store of CONF: 10 pushed
# by hand from a pg_wal where 11-13 are ready (push-ahead takes them), read
# back with age, fetched with fetch-ahead, pruned
transport() {
	local name=$1 conf=$2 n seg out rc
	local dir=$SYSID/0000000100000000 H=$T/hand-$name
	mkdir -p "$T/spool-$name" "$H/pg_wal/archive_status"
	chown postgres: "$T/spool-$name"; chmod 700 "$T/spool-$name"
	for n in 10 11 12 13; do MKSEG_OWNER= mkseg "$H/pg_wal/$(segname $n)" "$n"; done
	for n in 11 12 13; do touch "$H/pg_wal/archive_status/$(segname $n).ready"; done
	cp "$H/pg_wal/$(segname 11)" "$W/$name-11x"
	printf 'X' | dd of="$W/$name-11x" bs=1 seek=9000000 conv=notrunc 2>/dev/null
	chown -R postgres: "$H" "$W/$name-11x"
	out=$(as_pg "$BIN/walpush" -c "$conf" -D "$DATA" "$H/pg_wal/$(segname 10)" "$(segname 10)" 2>&1)
	rc=$?
	t_eq "$name: walpush exits 0" "$rc" 0
	t_match "$name: and pushes the three ready files ahead" "$out" "pushed ahead 3 of 3 ready files"
	"$BIN/storectl" "$conf" list "$dir" > "$T/list" 2>&1
	t_eq "$name: every object is .lz4.age, none in clear" \
		"$(grep -c '\.lz4\.age$' "$T/list") $(grep -vc '\.lz4\.age$' "$T/list")" "4 0"
	for n in 10 12; do
		"$BIN/storectl" "$conf" get "$dir/$(segname $n).lz4.age" > "$T/obj" 2>/dev/null
		t_check "$name: $(segname $n) (pushed $([ $n = 10 ] && echo "by hand" || echo ahead)) read back opens with age -d | lz4 -d" \
			cmp -s <(by_hand "$T/obj" "$K/key.txt") "$H/pg_wal/$(segname $n)"
	done
	run walpush "$DATA" -c "$conf" "$H/pg_wal/$(segname 11)" "$(segname 11)"
	t_eq "$name: an identical retry exits 0" "$RC" 0
	run walpush "$DATA" -c "$conf" "$W/$name-11x" "$(segname 11)"
	t_eq "$name: different content exits 4" "$RC" 4
	local ok=1
	for n in 10 11 12 13; do
		seg=$(segname $n)
		run walfetch "$SB" -c "$conf" "$seg" "$W/$name-got-$n"
		[ "$RC" = 0 ] && cmp -s "$W/$name-got-$n" "$H/pg_wal/$seg" || { ok=0; echo "# $seg: $RC $ERR"; }
		# the first call started the prefetcher: on a loaded machine it may
		# need a while to spool the last one, which is then asked for
		if [ "$n" = 10 ]; then t_wait 60 spooled "$T/spool-$name" "$(segname 13)"; fi
	done
	t_eq "$name: walfetch (fetch-ahead on) restores all four exactly" "$ok" 1
	t_match "$name: later ones come from the spool the prefetcher filled" "$ERR" "restored from the spool"
	run walprune "$SB" -c "$conf" --before "$(segname 12)"
	"$BIN/storectl" "$conf" list "$dir" > "$T/list" 2>&1
	t_eq "$name: walprune removes the encrypted objects before the horizon" \
		"$(grep -c '\.lz4\.age$' "$T/list")" 2
}

D=$T/sshd
if t_setup "sshd" sshd_setup "$D" postgres && sshd_start "$D" && sshd_known_hosts "$D"; then
	mkdir -p "$T/sftp-root"; chown "$SSHD_USER" "$T/sftp-root"
	walarchive_conf "$T/sftp.conf" "archive=$(sshd_url "$D" "$T/sftp-root")" "ssh_key=$D/id_ed25519" \
		"ssh_known_hosts=$D/known_hosts" "encrypt_recipients=$K/recipients.txt" \
		"encrypt_identity=$K/key.txt" "spool_dir=$T/spool-sftp" "push_ahead=4" "fetch_ahead=4" \
		"log_level=info"
	transport sftp "$T/sftp.conf"
fi
if t_setup "nginx webdav" nginx_start dav; then
	walarchive_conf "$T/webdav.conf" "archive=$NGINX_URL" "http_user=$NGINX_USER" \
		"http_password=$NGINX_PASS" "tls_ca_file=$NGINX_CA" "timeout=10" \
		"encrypt_recipients='$PUB, $REC'" "encrypt_identity=$K/key.txt" \
		"spool_dir=$T/spool-webdav" "push_ahead=4" "fetch_ahead=4" "log_level=info"
	transport webdav "$T/webdav.conf"
fi
if t_setup "swift s3api" swift_start swift walarchive; then
	walarchive_conf "$T/s3.conf" "archive=s3://$SWIFT_BUCKET/enc" \
		"s3_endpoint=http://127.0.0.1:$SWIFT_PORT" "s3_uri_style=path" \
		"s3_access_key=$SWIFT_ACCESS" "s3_secret_key=$SWIFT_SECRET" "timeout=10" \
		"encrypt_recipients=$K/recipients.txt" "encrypt_identity=$K/key.txt" \
		"spool_dir=$T/spool-s3" "push_ahead=4" "fetch_ahead=4" "log_level=info"
	transport s3 "$T/s3.conf"
fi

# ---- PostgreSQL 15: archive encrypted, recover to a restore point ---------------------
PARCH=$T/pg-archive
mkdir -p "$PARCH" "$T/spool-pg"; chown postgres: "$PARCH" "$T/spool-pg"; chmod 700 "$T/spool-pg"
walarchive_conf "$T/pg-push.conf" "archive=$PARCH" "encrypt_recipients=$K/recipients.txt" \
	"spool_dir=$T/spool-pg" "push_ahead=8" "log_level=info"
walarchive_conf "$T/pg-fetch.conf" "archive=$PARCH" "encrypt_identity=$K/recovery.txt" \
	"spool_dir=$T/spool-pg" "fetch_ahead=8" "log_level=info"
pg_new prim || t_fail "initdb the primary"
pg_conf prim "archive_mode = on" "wal_level = replica" \
	"archive_command = '$BIN/walpush -c $T/pg-push.conf %p %f'" "archive_timeout = 0"
if t_setup "start the primary" pg_start prim && t_setup "base backup" pg_take_basebackup prim rest; then
	# archiving paused while pgbench writes, so that a backlog is pushed ahead
	pg_sql prim "alter system set archive_command = ''" "select pg_reload_conf()" >/dev/null
	pg_pgbench prim -i -s 5 -q >/dev/null 2>&1 || t_fail "pgbench -i"
	pg_pgbench prim -T 5 -c 2 >/dev/null 2>&1 || t_fail "pgbench -T 5"
	pg_sql prim "create table marker(what text)" "insert into marker values ('before')" >/dev/null
	accounts=$(pg_sql prim "select sum(abalance) from pgbench_accounts")
	pg_sql prim "select pg_create_restore_point('age_target')" >/dev/null
	pg_sql prim "insert into marker values ('after')" "select pg_switch_wal()" >/dev/null
	pg_sql prim "alter system set archive_command = '$BIN/walpush -c $T/pg-push.conf %p %f'" \
		"select pg_reload_conf()" >/dev/null
	last=$(pg_sql prim "select pg_walfile_name(pg_current_wal_lsn() - 1)")
	if pg_wait_sql prim 120 "select last_archived_wal >= '$last' from pg_stat_archiver"; then
		t_ok "postgresql 15 archived every segment encrypted ($(pg_sql prim \
			"select archived_count from pg_stat_archiver") archived)"
	else
		t_fail "archiving did not catch up ($(pg_sql prim \
			"select archived_count, failed_count, last_failed_wal from pg_stat_archiver"))"
	fi
	t_eq "no failed archive attempts" "$(pg_sql prim "select failed_count from pg_stat_archiver")" 0
	t_eq "no segment is stored in clear" \
		"$(find "$PARCH" -type f -name '0000*' ! -name '*.age' | wc -l)" 0
	pg_stop prim
	pg_conf rest "archive_mode = off" "restore_command = '$BIN/walfetch -c $T/pg-fetch.conf %f %p'" \
		"recovery_target_name = 'age_target'" "recovery_target_action = 'promote'"
	touch "$(pg_data rest)/recovery.signal"; chown postgres: "$(pg_data rest)/recovery.signal"
	if t_setup "start the recovery" pg_start rest && pg_wait_sql rest 180 "select not pg_is_in_recovery()"; then
		t_ok "point-in-time recovery from the encrypted archive reached its target (with the recovery key)"
		t_eq "data committed before the target is there, none after" \
			"$(pg_sql rest "select string_agg(what, ',') from marker")" before
		t_eq "pgbench balances as of the target" \
			"$(pg_sql rest "select sum(abalance) from pgbench_accounts")" "$accounts"
	else
		t_fail "recovery did not finish"
		tail -n 10 "$(pg_dir rest)/server.log"
	fi
	log_has "the primary's walpush pushed the backlog ahead" prim \
		'walpush: pushed ahead [1-9][0-9]* of [0-9]+ ready files'
	log_has "the recovery's walfetch restored segments from the spool (fetch-ahead)" rest \
		'walfetch: [0-9A-F]{24}: restored from the spool'
	pg_stop rest
fi

t_done
