#!/bin/bash
# SANITIZE_OK (runs initdb for a pg_control and a first segment, but no server)
# VALGRIND_OK: also run with every program under valgrind memcheck by tests/run.sh
# walpush, walfetch and walprune with archive = sftp://... against a private
# OpenSSH sshd on 127.0.0.1: put/get/list/remove, duplicates, host keys
# (hashed, changed, unknown, missing file), user keys (unknown, passphrase
# file, ssh-agent), missing and forbidden remote directories, a server that
# refuses fsync@openssh.com, a frozen server and a closed port (bounded
# time), the fault seam on the SSH socket, and sshd killed or frozen in the
# middle of an upload or a download (through a throttling proxy).  The
# programs run as the postgres user, as archive_command and restore_command do.

. "$(dirname "$0")/../lib/common.sh"
. "$(dirname "$0")/../lib/pg.sh"
. "$(dirname "$0")/../lib/wal.sh"
. "$(dirname "$0")/../lib/sshd.sh"

export LC_ALL=C
BIN=$WALARCHIVE_BIN
T=$WALARCHIVE_TMP
for p in walpush walfetch walprune walcheck; do
	[ -x "$BIN/$p" ] || { t_fail "$BIN/$p is not installed"; t_done; }
done

W=$T/work            # sources and destinations, owned by postgres
SARCH=$T/sftp-archive # the archive root on the "server" side, owned by the ssh user
D=$T/sshd
CONF=$T/walarchive.conf
mkdir -p "$W" "$W/dest"
chown postgres:postgres "$W" "$W/dest"

sshd_setup "$D" postgres || { t_fail "sshd setup"; t_done; }
sshd_start "$D" || { t_fail "sshd start"; t_done; }
sshd_known_hosts "$D" || { t_fail "ssh-keyscan"; t_done; }
mkdir -p "$SARCH"
chown "$SSHD_USER" "$SARCH"
chmod 700 "$SARCH"
URL=$(sshd_url "$D" "$SARCH")
walarchive_conf "$CONF" "archive=$URL" "ssh_key=$D/id_ed25519" "ssh_known_hosts=$D/known_hosts" \
	"timeout=5" "retries=1"

pg_new c1 || { t_fail "initdb"; t_done; }
DATA=$(pg_data c1)
SEG1=000000010000000000000001
SRC1=$DATA/pg_wal/$SEG1
SYSID=$("$PGBIN/pg_controldata" "$DATA" | sed -n 's/^Database system identifier: *//p')

# segments made from SRC1, objects on the server's side (mkseg, segname,
# obj: tests/lib/wal.sh)
MKSEG_SRC=$SRC1
ARCH=$SARCH
# no_obj NAME: nothing under NAME's final name, framed or plain
no_obj() { test ! -e "$(obj "$1")" -a ! -e "$(obj "$1").lz4"; }
# obj_is NAME FILE: the object of NAME decodes to exactly FILE's bytes
obj_is() { lz4 -dc "$(obj "$1").lz4" 2>/dev/null | cmp -s - "$2"; }
tmp_files() { find "$SARCH" -name '.*.tmp' | wc -l; }

# run PROG ARGS...: as postgres in the data directory; sets RC, ERR, SECS.
run() {
	local prog=$1; shift
	local start=$SECONDS
	as_pg env -C "$DATA" "$BIN/$prog" -c "$CONF" "$@" >"$T/out" 2>"$T/err"
	RC=$?
	SECS=$((SECONDS - start))
	ERR=$(cat "$T/err")
}
in_range() { [ "$1" -ge 1 ] && [ "$1" -le 125 ]; }

# ---- put / get / list / remove through the programs -----------------------
SEG2=$(segname 2); SEG3=$(segname 3); SEG4=$(segname 4)
for n in 2 3 4; do mkseg "$W/$(segname $n)" "$n"; done

run walpush "$SRC1" "$SEG1"
t_eq "walpush over sftp exits 0" "$RC" 0
t_check "the object is on the server, compressed" test -f "$(obj $SEG1).lz4"
t_check "it is a valid lz4 frame holding exactly the segment" \
	bash -c "lz4 -dc '$(obj $SEG1).lz4' | cmp -s - '$SRC1'"
t_eq "the object has mode 0600" "$(stat -c %a "$(obj $SEG1).lz4")" 600
t_eq "no temporary file is left" "$(tmp_files)" 0

run walpush "$SRC1" "$SEG1"
t_eq "pushing the same segment again exits 0" "$RC" 0
t_match "and says it was already archived" "$ERR" "already archived"

mkseg "$W/other1" 1 random
before=$(sha256sum < "$(obj $SEG1).lz4")
run walpush "$W/other1" "$SEG1"
t_eq "pushing different content under an archived name exits 4" "$RC" 4
t_eq "the archived object is untouched" "$(sha256sum < "$(obj $SEG1).lz4")" "$before"
t_eq "no temporary file is left after the refused push" "$(tmp_files)" 0

for s in $SEG2 $SEG3 $SEG4; do run walpush "$W/$s" "$s"; [ "$RC" = 0 ] || break; done
t_eq "three more segments pushed over one connection each" "$RC" 0

run walfetch "$SEG2" "$W/dest/$SEG2"
t_eq "walfetch over sftp exits 0" "$RC" 0
t_check "the fetched segment is identical" cmp -s "$W/dest/$SEG2" "$W/$SEG2"

run walfetch "$(segname 9)" "$W/dest/x"
t_eq "walfetch of a segment the archive does not have exits 1" "$RC" 1
t_check "and leaves no destination file" test ! -e "$W/dest/x"
run walfetch 00000002.history "$W/dest/h"
t_eq "walfetch of a missing history file exits 1" "$RC" 1

run walprune --dry-run --before "$SEG3"
t_eq "walprune --dry-run lists the sftp archive" "$RC" 0
t_check "and removes nothing" test -f "$(obj $SEG1).lz4"
run walprune --before "$SEG3"
t_eq "walprune --before over sftp exits 0" "$RC" 0
t_check "segments before the horizon are removed" test ! -e "$(obj $SEG1).lz4" -a ! -e "$(obj $SEG2).lz4"
t_check "the horizon and later are kept" test -f "$(obj $SEG3).lz4" -a -f "$(obj $SEG4).lz4"

# ---- host keys and user keys ----------------------------------------------
# fingerprints as ssh-keygen prints them, escaped for the regular expressions
re_escape() { sed 's/[][\.*^$+?(){}|/]/\\&/g'; }
HOSTFP=$(ssh-keygen -lf "$D/host_ed25519.pub" | awk '{print $2}' | re_escape)
ECDSAFP=$(ssh-keygen -lf "$D/host_ecdsa.pub" | awk '{print $2}' | re_escape)
PORT=$(sshd_port "$D")

ssh-keyscan -H -t ed25519 -p "$PORT" 127.0.0.1 > "$T/kh_hashed" 2>/dev/null
chmod 644 "$T/kh_hashed"
run walfetch --set "ssh_known_hosts=$T/kh_hashed" "$SEG3" "$W/dest/$SEG3"
t_eq "a hashed known_hosts entry (ssh-keyscan -H) is accepted" "$RC" 0

ssh-keygen -q -t ed25519 -N '' -f "$T/other_host" && chmod 644 "$T/other_host.pub"
echo "[127.0.0.1]:$PORT $(cut -d' ' -f1,2 "$T/other_host.pub")" > "$T/kh_wrong"
chmod 644 "$T/kh_wrong"
run walpush --set "ssh_known_hosts=$T/kh_wrong" "$W/$SEG2" "$SEG2"
t_eq "a changed host key: walpush exits 8" "$RC" 8
msg_ok "a changed host key" walpush "host key changed.*$HOSTFP"
t_check "nothing was uploaded past a wrong host key" test ! -e "$(obj $SEG2).lz4"
PUSH_ERR=$ERR
# walcheck meets it with the same message and exit code (no spool: one line)
run walcheck --set "ssh_known_hosts=$T/kh_wrong" --set push_ahead=0 --set fetch_ahead=0
t_eq "a changed host key: walcheck exits 8" "$RC" 8
t_eq "walcheck says what walpush says" "${ERR#walcheck: }" "${PUSH_ERR#walpush: }"
t_check "walcheck left no probe past a wrong host key" \
	sh -c "! find '$SARCH' -name '.walcheck-probe*' | grep -q ."

echo "[127.0.0.1]:$((PORT + 1)) $(cut -d' ' -f1,2 "$D/host_ed25519.pub")" > "$T/kh_otherport"
chmod 644 "$T/kh_otherport"
run walfetch --set "ssh_known_hosts=$T/kh_otherport" "$SEG3" "$W/dest/y"
# walfetch's hard errors exit 8 here, or 126 when fetch_on_error stops recovery; never 1
t_check "an unknown host: walfetch fails, not with 1 (exit $RC)" test "$RC" -eq 8 -o "$RC" -eq 126
msg_ok "an unknown host" walfetch "unknown host key.*server offered .*($HOSTFP|$ECDSAFP)"

run walpush --set "ssh_known_hosts=$T/no-such-file" "$W/$SEG2" "$SEG2"
t_eq "a missing known_hosts file: walpush exits 8" "$RC" 8
msg_ok "a missing known_hosts file" walpush "known_hosts file .*no-such-file.*no such file"

ssh-keygen -q -t ed25519 -N '' -f "$T/stranger" && chown postgres "$T/stranger"
run walpush --set "ssh_key=$T/stranger" "$W/$SEG2" "$SEG2"
t_eq "a user key the server does not know: walpush exits 8" "$RC" 8
msg_ok "a user key the server does not know" walpush "authentication refused for user $SSHD_USER .*stranger"

ssh-keygen -q -t ed25519 -N 'correct horse' -f "$T/locked" && chown postgres "$T/locked"
cat "$T/locked.pub" >> "$D/authorized_keys"
printf 'correct horse\n' > "$T/pass" && chown postgres "$T/pass" && chmod 600 "$T/pass"
run walpush --set "ssh_key=$T/locked" --set "ssh_key_passphrase_file=$T/pass" "$W/$SEG2" "$SEG2"
t_eq "a key with a passphrase read from ssh_key_passphrase_file works" "$RC" 0
run walfetch --set "ssh_key=$T/locked" "$SEG2" "$W/dest/z"
t_check "the same key without its passphrase: walfetch fails, not with 1 (exit $RC)" \
	test "$RC" -eq 8 -o "$RC" -eq 126
msg_ok "a key without its passphrase" walfetch "cannot use private key .*locked.*passphrase"

# ssh-agent instead of a key file (ssh_agent = on, no ssh_key)
as_pg ssh-agent -a "$W/agent.sock" -s > "$T/agent.env" 2>/dev/null
AGENT_PID=$(sed -n 's/^SSH_AGENT_PID=\([0-9]*\);.*/\1/p' "$T/agent.env")
t_cleanup "kill $AGENT_PID"
as_pg env SSH_AUTH_SOCK="$W/agent.sock" ssh-add -q "$D/id_ed25519" 2>/dev/null
AGENT_CONF=$T/agent.conf
walarchive_conf "$AGENT_CONF" "archive=$URL" "ssh_known_hosts=$D/known_hosts" "ssh_agent=on" \
	"timeout=5" "retries=1"
as_pg env -C "$DATA" SSH_AUTH_SOCK="$W/agent.sock" "$BIN/walfetch" -c "$AGENT_CONF" "$SEG3" "$W/dest/agent" \
	2>"$T/err"
t_eq "ssh_agent = on authenticates with the agent's key" "$?" 0
as_pg env -C "$DATA" "$BIN/walfetch" -c "$AGENT_CONF" "$SEG3" "$W/dest/agent2" 2>"$T/err"
RC=$?; ERR=$(cat "$T/err")
t_check "ssh_agent = on without SSH_AUTH_SOCK: walfetch fails, not with 1 (exit $RC)" \
	test "$RC" -eq 8 -o "$RC" -eq 126
msg_ok "ssh_agent = on without an agent" walfetch "authentication refused .*ssh-agent \(SSH_AUTH_SOCK is not set\)"

# ---- remote directories ---------------------------------------------------
run walpush --set "archive=$(sshd_url "$D" "$T/nowhere")" "$W/$SEG4" "$SEG4"
t_check "a missing remote directory: walpush fails (exit $RC)" in_range "$RC"
msg_ok "a missing remote directory" walpush "$T/nowhere: archive root does not exist"
run walfetch --set "archive=$(sshd_url "$D" "$T/nowhere")" "$SEG4" "$W/dest/$SEG4"
t_check "a missing remote directory: walfetch fails but not with 1 (exit $RC)" test "$RC" -gt 1
t_check "it is not created" test ! -e "$T/nowhere"

mkdir -p "$T/forbidden" && chmod 755 "$T/forbidden"   # root's, not writable by the ssh user
run walpush --set "archive=$(sshd_url "$D" "$T/forbidden")" "$W/$SEG4" "$SEG4"
t_check "a remote directory the ssh user cannot write: walpush fails (exit $RC)" in_range "$RC"
msg_ok "permission denied" walpush "forbidden.*permission denied"

# ---- a server that refuses fsync@openssh.com ------------------------------
D2=$T/sshd-nofsync
mkdir -p "$D2"
cp -p "$D"/host_* "$D"/id_ed25519* "$D/authorized_keys" "$D2/"
sshd_start "$D2" "-P fsync" || t_fail "second sshd start"
sshd_known_hosts "$D2"
NF=$(sshd_url "$D2" "$SARCH")
mkseg "$W/$(segname 5)" 5
run walpush --set "archive=$NF" --set "ssh_known_hosts=$D2/known_hosts" "$W/$(segname 5)" "$(segname 5)"
t_check "a server without fsync@openssh.com is refused (exit $RC)" in_range "$RC"
msg_ok "a server without fsync@openssh.com" walpush "fsync@openssh.com.*sftp_require_fsync"
t_check "nothing appears under the final name" test ! -e "$(obj "$(segname 5)").lz4"
t_eq "and its temporary file is removed" "$(tmp_files)" 0
run walpush --set "archive=$NF" --set "ssh_known_hosts=$D2/known_hosts" --set sftp_require_fsync=off \
	"$W/$(segname 5)" "$(segname 5)"
t_eq "sftp_require_fsync = off accepts that risk" "$RC" 0
sshd_stop "$D2"

# ---- a frozen server and a closed port: bounded time ----------------------
mkseg "$W/$(segname 6)" 6
kill -STOP "$(cat "$D/pid")"
run walpush --set timeout=2 --set retries=1 "$W/$(segname 6)" "$(segname 6)"
kill -CONT "$(cat "$D/pid")"
t_check "a server that never answers: walpush fails (exit $RC)" in_range "$RC"
t_check "after the timeout and one retry, not before (${SECS}s)" test "$SECS" -ge 4 -a "$SECS" -le 12
msg_ok "a server that never answers" walpush "timed out after 2 s"

CLOSED=$(t_free_port)
run walfetch --set "archive=$(sshd_url "$D" "$SARCH" | sed "s/:$PORT\//:$CLOSED\//")" --set retries=1 \
	"$SEG3" "$W/dest/c"
t_check "connection refused: walfetch fails but not with 1 (exit $RC)" test "$RC" -gt 1
msg_ok "connection refused" walfetch "cannot connect: connection refused"

# ---- the fault seam on the SSH socket -------------------------------------
mkseg "$W/$(segname 7)" 7 random
as_pg env -C "$DATA" WALARCHIVE_FAULT=300:ECONNRESET:send "$BIN/walpush" -c "$CONF" --set retries=0 \
	--set compress=none "$W/$(segname 7)" "$(segname 7)" 2>"$T/err"
RC=$?; ERR=$(cat "$T/err")
t_check "a connection reset in mid-upload without retries: walpush fails (exit $RC)" in_range "$RC"
msg_ok "a connection reset in mid-upload" walpush "connection lost"
t_check "nothing appears under the final name" no_obj "$(segname 7)"
as_pg env -C "$DATA" WALARCHIVE_FAULT=300:ECONNRESET:send "$BIN/walpush" -c "$CONF" --set retries=1 \
	--set compress=none "$W/$(segname 7)" "$(segname 7)" 2>"$T/err"
t_eq "with one retry the same reset is survived" "$?" 0
t_check "and the object holds exactly the segment" obj_is "$(segname 7)" "$W/$(segname 7)"

# ---- sshd killed during an upload and during a download -------------------
# A proxy at 4 MB/s makes a 16 MiB incompressible segment take ~4 s.
sshd_throttle_proxy "$D" 4000000 || t_fail "proxy start"
PPORT=$(cat "$D/proxy_port")
{ cat "$D/known_hosts"; sed "s/:$PORT /:$PPORT /" "$D/known_hosts"; } > "$T/kh_both"
chmod 644 "$T/kh_both"
SLOW=(--set "archive=$(sshd_url "$D" "$SARCH" | sed "s/:$PORT\//:$PPORT\//")"
      --set "ssh_known_hosts=$T/kh_both" --set compress=none --set timeout=5 --set retries=1)

# wait_tmp SEGMENT: waits until the segment's upload has put 1 MB in its
# temporary file (up to 60 s: under memcheck on a busy machine the SSH
# handshake alone can take many seconds)
wait_tmp() {
	t_wait 60 bash -c "find '$SARCH' -name '.$1.*.tmp' -size +1000k | grep -q ."
}

S8=$(segname 8)
mkseg "$W/$S8" 8 random
as_pg env -C "$DATA" "$BIN/walpush" -c "$CONF" "${SLOW[@]}" "$W/$S8" "$S8" 2>"$T/err" &
PUSH=$!
if wait_tmp "$S8"; then
	sshd_kill "$D" KILL
	wait "$PUSH"; RC=$?; ERR=$(cat "$T/err")
	t_check "sshd killed during an upload: walpush fails (exit $RC)" in_range "$RC"
	msg_ok "sshd killed during an upload" walpush "$S8|connection|connect"
	t_check "nothing appears under the final name" no_obj "$S8"
else
	kill "$PUSH"; wait "$PUSH"
	t_fail "the upload through the proxy never started"
fi
sshd_restart "$D"
run walpush "$W/$S8" "$S8"
t_eq "after sshd is back the next push succeeds" "$RC" 0
t_check "and the object holds exactly the segment" \
	bash -c "lz4 -dc '$(obj "$S8").lz4' | cmp -s - '$W/$S8'"

# The session freezes in mid-upload (SIGSTOP): every write is bounded by timeout.
S11=$(segname 11)
mkseg "$W/$S11" 11 random
start=$SECONDS
as_pg env -C "$DATA" "$BIN/walpush" -c "$CONF" "${SLOW[@]}" --set timeout=2 --set retries=0 \
	"$W/$S11" "$S11" 2>"$T/err" &
PUSH=$!
if wait_tmp "$S11"; then
	FROZEN=$(sshd_sessions "$D")
	# shellcheck disable=SC2086
	kill -STOP $FROZEN
	wait "$PUSH"; RC=$?; ERR=$(cat "$T/err")
	# shellcheck disable=SC2086
	kill -KILL $FROZEN; kill -CONT $FROZEN 2>/dev/null
	t_check "a server frozen in mid-upload: walpush fails (exit $RC)" in_range "$RC"
	t_check "and does not hang ($((SECONDS - start))s)" test $((SECONDS - start)) -le 15
	msg_ok "a server frozen in mid-upload" walpush "$S11.*timed out after 2 s"
	t_check "nothing appears under the final name" no_obj "$S11"
else
	kill "$PUSH"; wait "$PUSH"
	t_fail "the upload through the proxy never started"
fi

# Only the session dies (the listener lives): the retry finishes the upload.
S10=$(segname 10)
mkseg "$W/$S10" 10 random
as_pg env -C "$DATA" "$BIN/walpush" -c "$CONF" "${SLOW[@]}" "$W/$S10" "$S10" 2>"$T/err" &
PUSH=$!
if wait_tmp "$S10"; then
	# shellcheck disable=SC2046
	kill -9 $(sshd_sessions "$D")
	wait "$PUSH"; RC=$?
	t_eq "a session killed during an upload is retried: walpush exits 0" "$RC" 0
	t_check "the object holds exactly the segment" obj_is "$S10" "$W/$S10"
	t_eq "the interrupted attempt's temporary file was removed" \
		"$(find "$SARCH" -name ".$S10.*.tmp" | wc -l)" 0
else
	kill "$PUSH"; wait "$PUSH"
	t_fail "the upload through the proxy never started"
fi

# walfetch of S10 (16 MiB uncompressed) through the proxy; sshd dies midway.
FD=$W/fetch-dest
mkdir -p "$FD" && chown postgres "$FD"
as_pg env -C "$DATA" "$BIN/walfetch" -c "$CONF" "${SLOW[@]}" "$S10" "$FD/$S10" 2>"$T/err" &
FETCH=$!
if t_wait 60 bash -c "find '$FD' -type f -size +1000k | grep -q ."; then
	sshd_kill "$D" KILL
	wait "$FETCH"; RC=$?; ERR=$(cat "$T/err")
	t_check "sshd killed during walfetch: exit is an error, not 0 or 1 (exit $RC: $ERR)" test "$RC" -gt 1
	t_check "no destination file" test ! -e "$FD/$S10"
	t_eq "no partial file of any name in the destination directory" "$(ls -A "$FD" | wc -l)" 0
else
	kill "$FETCH"; wait "$FETCH"
	t_fail "the download through the proxy never started"
fi
sshd_restart "$D"
run walfetch "$S10" "$W/dest/$S10"
t_eq "after sshd is back walfetch succeeds" "$RC" 0
t_check "with the exact bytes" cmp -s "$W/dest/$S10" "$W/$S10"

# ---- fetch-ahead: one prefetcher follows the calls on its own connections ---
# 12 segments restored one by one, as recovery asks for them; each call after
# the first finds its segment spooled. The prefetcher keeps its 2 worker
# connections from call to call (a new set per call would be 2 logins per
# segment), and exits by itself once nothing more is asked for.
SP=$T/spool
mkdir -p "$SP" "$W/fa"
chown postgres "$SP" "$W/fa"
chmod 700 "$SP"   # a spool only its owner can write, or walfetch ignores it
FA=(--set "spool_dir=$SP" --set fetch_ahead=4 --set parallel=2 --set log_level=info)
push_bad=0
for n in $(seq 32 43); do
	mkseg "$W/$(segname "$n")" "$n"
	run walpush "$W/$(segname "$n")" "$(segname "$n")"
	[ "$RC" = 0 ] || push_bad=$((push_bad + 1))
done
t_eq "12 segments for fetch-ahead are archived" "$push_bad" 0
logins() { grep -c "Accepted publickey" "$D/sshd.log"; }
spool_has() { ls "$SP/$SYSID/${1:0:16}" 2>/dev/null | grep -q "^$1\."; }
lock=$SP/$SYSID/.prefetch.lock
before=$(logins)
bad=0 fromspool=0 holders=""
for n in $(seq 32 43); do
	s=$(segname "$n")
	run walfetch "${FA[@]}" "$s" "$W/fa/$s"
	{ [ "$RC" = 0 ] && cmp -s "$W/fa/$s" "$W/$s"; } || bad=$((bad + 1))
	grep -q "$s: restored from the spool" "$T/err" && fromspool=$((fromspool + 1))
	[ "$n" -lt 43 ] && t_wait 30 spool_has "$(segname $((n + 1)))"
	# the process holding the prefetcher's lock
	holders="$holders $(awk -v ino="$(stat -c %i "$lock")" '$2 == "FLOCK" && $6 ~ (":" ino "$") {print $5}' /proc/locks)"
done
t_eq "(fetch-ahead) 12 walfetch calls exit 0 with the right bytes" "$bad" 0
t_eq "(fetch-ahead) 11 of them take their segment from the spool" "$fromspool" 11
n_holders=$(printf '%s\n' $holders | sort -u | grep -c .)
used=$(( $(logins) - before ))
if [ "$(head -c 2 "$BIN/walfetch")" = "#!" ]; then
	# under memcheck (the programs are wrapper scripts) a call takes longer
	# than the prefetcher's idle time: these two are about time, not memory
	t_skip "(fetch-ahead) one prefetcher process served all 12 calls: not checked under memcheck ($n_holders prefetcher(s))"
	t_skip "(fetch-ahead) SSH logins for the 12 segments: not checked under memcheck ($used logins)"
else
	t_eq "(fetch-ahead) one prefetcher process served all 12 calls (lock holders:$holders)" "$n_holders" 1
	t_check "(fetch-ahead) SSH logins for the 12 segments: $used (walfetch's first call and the 2 workers; at most 5)" \
		test "$used" -le 5
fi
# nothing after segment 43 is archived: the prefetcher asks again now and then
# for 44, and exits once idle
t_check "(fetch-ahead) the prefetcher exits by itself once nothing more is asked for" \
	timeout 60 flock "$lock" true
t_eq "(fetch-ahead) and leaves no temporary file in the spool" "$(find "$SP" -name '*.tmp' | wc -l)" 0
# (it exits just after it lets go of the lock)
t_check "(fetch-ahead) nor any process" t_wait 60 bash -c "! pgrep -u postgres -f 'spool_dir=$SP' >/dev/null"

# a worker killed: the prefetcher stops instead of waiting for its report
# forever, and the next call starts a new one
run walfetch "${FA[@]}" "$(segname 36)" "$W/fa/k36"
t_eq "(fetch-ahead) walfetch $(segname 36) again exits 0" "$RC" 0
holder=$(awk -v ino="$(stat -c %i "$lock")" '$2 == "FLOCK" && $6 ~ (":" ino "$") {print $5}' /proc/locks)
# (the prefetcher runs at nice 10: on a busy machine, under memcheck, it may
# take many seconds to fork its workers; and while a walfetch under memcheck
# takes seconds to exit, its prefetcher may fetch the 4 segments after 36,
# stop its workers and exit before they are looked for)
has_workers() { ps -o pid= --ppid "$1" | grep -q .; }
if [ -n "$holder" ] && t_wait 90 bash -c "ps -o pid= --ppid $holder | grep -q . || ! kill -0 $holder 2>/dev/null" &&
	has_workers "$holder"; then
	# shellcheck disable=SC2046
	kill -9 $(ps -o pid= --ppid "$holder" | head -n 1)
	t_check "(fetch-ahead) with a worker killed, the prefetcher gives up its lock" timeout 60 flock "$lock" true
	t_eq "(fetch-ahead) and no worker is left" "$(ps -o pid= --ppid "$holder" | wc -l)" 0
elif [ -n "$holder" ] && ! kill -0 "$holder" 2>/dev/null && [ "$(head -c 2 "$BIN/walfetch")" = "#!" ] &&
	spool_has "$(segname 37)" && spool_has "$(segname 40)"; then
	t_skip "(fetch-ahead) a worker killed: not checked under memcheck (the prefetcher spooled the 4 segments after 36 and exited before its workers were seen)"
else
	t_fail "(fetch-ahead) no prefetcher with workers to kill (holder '$holder', $(kill -0 "$holder" 2>/dev/null && echo alive || echo gone))"
fi
run walfetch "${FA[@]}" "$(segname 37)" "$W/fa/k37"
t_eq "(fetch-ahead) then walfetch $(segname 37) exits 0" "$RC" 0
t_check "(fetch-ahead) with the right bytes" cmp -s "$W/fa/k37" "$W/$(segname 37)"
t_check "(fetch-ahead) and a new prefetcher spools what follows" t_wait 60 spool_has "$(segname 38)"
timeout 60 flock "$lock" true

t_done
