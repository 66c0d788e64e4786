#!/bin/bash
# SANITIZE_OK (about 75 s)
# Network faults for walpush and walfetch on the four network transports
# (SFTP to a private sshd, WebDAV to nginx over TLS, S3 to Swift's s3api,
# Azure Blob Storage to Azurite),
# with a real-looking 16 MiB segment (the pg15 fixture's first page, random
# bytes after it) and a data directory holding the fixture's pg_control.
#
# 1. The fault seam (lib/sys/seam.c, WALARCHIVE_FAULT="N:ECONNRESET:send|recv"):
#    a clean run counts the NET send and recv calls of one walpush and one
#    walfetch (a preloaded helper reads wal_sys_fault_calls() at exit); N
#    then walks about 20 points spread over them, plus the first and last
#    few calls (12 walks, one per transport, program and direction, run in
#    parallel).  At each point:
#      retries=0: the run fails with exit 6 (or exits 0 because the fault
#        hit a call that did not matter, and then the bytes are right);
#        nothing under the final name (the server's own view: the sshd
#        user's directory, nginx's root, Swift through botocore, Azurite
#        through the Azure SDK), or the
#        complete object when the server committed it and only its reply
#        was lost; walfetch
#        never exits 1, its destination is absent or identical and no
#        temporary file is left beside it; the next run without faults
#        exits 0 with the right bytes;
#      retries=2: the fault is survived: exit 0, right bytes.
#    The faults must have fired: with the seam broken every run would exit
#    0 with the right bytes and every check above would hold.  At least
#    MIN_LANE_FIRED runs of each walk that makes the calls (pushes over
#    send and recv, fetches over recv) and MIN_FIRED of each transport's
#    walks must have failed at retries=0; that is a precondition, not a pass.
# 2. Real faults through a relay on 127.0.0.1 between the program and the
#    server: a connection reset (RST, SO_LINGER 0) in mid-upload and in
#    mid-download (exit 6, or 126 for walfetch when fetch_on_error stops
#    recovery; nothing partial; the next run succeeds; one retry survives
#    it); a stalled peer that accepts and never answers, and one that
#    stalls after 4 MiB (timeout=3 retries=1: a clear "timed out" message
#    within timeout x (retries + 1) + backoff + margin, and not before);
#    a link throttled to 2 MiB/s (timeout=3 retries=0: no spurious
#    timeout, right bytes).  The stalls and the slow link run in the
#    background while the walks run.
#    The server stopped or killed mid-transfer is covered by 30-sftp.sh
#    (sshd killed, frozen, session killed), 40-webdav.sh (nginx stopped)
#    41-s3.sh (the Swift proxy stopped) and 45-azure.sh (Azurite stopped);
#    not repeated here.
# Prints the number of fault points tried and a summary line per transport.

. "$(dirname "$0")/../lib/common.sh"
. "$WALARCHIVE_SRC/tests/lib/wal.sh"
. "$WALARCHIVE_SRC/tests/lib/sshd.sh"
. "$WALARCHIVE_SRC/tests/lib/nginx.sh"
. "$WALARCHIVE_SRC/tests/lib/swift.sh"
. "$WALARCHIVE_SRC/tests/lib/azurite.sh"

export LC_ALL=C
BIN=$WALARCHIVE_BIN
T=$WALARCHIVE_TMP
FIX=$WALARCHIVE_SRC/tests/fixtures/pg15
TRANSPORTS="${NETFAULT_TRANSPORTS:-sftp dav s3 azure}"
K=18            # spread points per transport, program and direction
TAIL=2          # extra points at each end
MIN_LANE_FIRED=10 MIN_FIRED=40  # faults that failed a run (of about 20 per walk)
for p in walpush walfetch; do
	[ -x "$BIN/$p" ] || { t_fail "$BIN/$p is not installed"; t_done; }
done
for c in lz4 cc python3; do
	command -v "$c" >/dev/null || { t_fail "$c is needed by this test"; t_done; }
done
START=$SECONDS

# ---- the segments and the data directory ---------------------------------
SYSID=$(sed -n 's/^system_identifier=//p' "$FIX/INFO")
DATA=$T/pgdata
mkdir -p "$DATA/global" "$T/src" "$T/bg"
cp "$FIX/pg_control" "$DATA/global/pg_control"
# $T/src/<name>: 16 MiB, the fixture's first page with its page address set
# to the segment's, random bytes after it (mkseg, segname: tests/lib/wal.sh)
MKSEG_SRC=$FIX/wal-first-page.bin MKSEG_OWNER=
for n in 1 2 3 4 5 6 7 8; do mkseg "$T/src/$(segname $n)" $n random; done
SEG=$(segname 1)        # the walks
SEG_RST=$(segname 2)    # resets
SEG_SLOW=$(segname 3)   # slow link
SEG_QUIET=$(segname 4)  # peer that never answers
SEG_STALL=$(segname 5)  # peer that stalls mid-upload
SEG_HELD=$(segname 6)   # archived first; fetched by the stalls
SEG_F=$(segname 7)      # the walfetch walks
SEG_PR=$(segname 8)     # the walpush walk over recv calls (the send walk: SEG)
SUB=$SYSID/${SEG:0:16}  # the object directory, relative to the archive root

# ---- helpers compiled or written here -------------------------------------
# count.so: at exit, writes how many calls the fault seam counted
cat > "$T/count.c" <<'EOF'
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
__attribute__((destructor)) static void report(void)
{
	long (*calls)(void) = (long (*)(void))dlsym(RTLD_DEFAULT, "wal_sys_fault_calls");
	const char *out = getenv("NETFAULT_COUNT_FILE");
	FILE *f;
	if (!calls || !out || !(f = fopen(out, "w")))
		return;
	fprintf(f, "%ld\n", calls());
	fclose(f);
}
EOF
cc -shared -fPIC -o "$T/count.so" "$T/count.c" -ldl || { t_fail "build the call counter"; t_done; }

# netrelay.py LISTEN TARGET MODE [DIR BYTES [TIMES]]: a TCP relay on
# 127.0.0.1.  MODE silent: accepts and never reads, answers or connects on;
# rst: after BYTES in DIR (up: program to server, down: back), resets both
# sides (SO_LINGER 0), for the first TIMES connections that get that far;
# stall: after BYTES in DIR stops forwarding both ways, sockets left open.
cat > "$T/netrelay.py" <<'PY'
import socket, struct, sys, threading
listen, target, mode = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
direction = sys.argv[4] if len(sys.argv) > 4 else "up"
limit = int(sys.argv[5]) if len(sys.argv) > 5 else 0
left = [int(sys.argv[6]) if len(sys.argv) > 6 else 1 << 30]
lock = threading.Lock()
forever = threading.Event()
held = []

def log(msg):
    print(msg, file=sys.stderr, flush=True)

class Conn:
    def __init__(self, c, u):
        self.c, self.u, self.state = c, u, "open"
        self.count = {"up": 0, "down": 0}

def act(conn):
    with lock:
        if left[0] <= 0:
            return False
        left[0] -= 1
    return True

def reset(conn):
    conn.state = "reset"
    for s in (conn.c, conn.u):
        try:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            s.shutdown(socket.SHUT_RD)  # wakes the other pump, sends nothing
        except OSError:
            pass
    for s in (conn.c, conn.u):
        s.close()

def pump(conn, src, dst, d):
    try:
        while True:
            data = src.recv(65536)
            if conn.state == "stalled":
                forever.wait()
            if conn.state == "reset":
                return
            if not data:
                break
            if d == direction and conn.state == "open" and conn.count[d] + len(data) > limit:
                if act(conn):
                    keep = limit - conn.count[d]
                    dst.sendall(data[:keep])
                    conn.count[d] += keep
                    if mode == "rst":
                        reset(conn)
                        log("reset after %d bytes %s" % (conn.count[d], d))
                        return
                    conn.state = "stalled"
                    log("stalled after %d bytes %s" % (conn.count[d], d))
                    forever.wait()
                conn.state = "passed"
            conn.count[d] += len(data)
            dst.sendall(data)
    except OSError:
        if conn.state != "open" and conn.state != "passed":
            return
    for s in (src, dst):
        try:
            s.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass

server = socket.socket()
server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
server.bind(("127.0.0.1", listen))
server.listen(16)
while True:
    c, _ = server.accept()
    if mode == "silent":
        held.append(c)
        log("accepted, never answering")
        continue
    try:
        u = socket.create_connection(("127.0.0.1", target))
    except OSError:
        c.close()
        continue
    conn = Conn(c, u)
    threading.Thread(target=pump, args=(conn, c, u, "up"), daemon=True).start()
    threading.Thread(target=pump, args=(conn, u, c, "down"), daemon=True).start()
PY

# ---- the servers ----------------------------------------------------------
D=$T/sshd
SARCH=$T/sftp-archive
sshd_setup "$D" || { t_fail "sshd setup"; t_done; }
sshd_start "$D" || { t_fail "sshd start"; t_done; }
sshd_known_hosts "$D" || { t_fail "ssh-keyscan"; t_done; }
mkdir -p "$SARCH" && chown "$SSHD_USER" "$SARCH" && chmod 700 "$SARCH"
nginx_start dav || { t_fail "start nginx"; t_done; }
swift_start swift walarchive || { t_fail "start swift with s3api"; t_done; }
azurite_start azurite walarchive || { t_fail "start azurite"; t_done; }
t_setup_ok "sshd on $(sshd_port "$D"), nginx webdav on $NGINX_PORT, swift s3api on $SWIFT_PORT, azurite on $AZURITE_PORT ($((SECONDS - START)) s)"

KH=$T/known_hosts       # the sshd's key for its own port and every relay port
cp "$D/known_hosts" "$KH"
chmod 644 "$KH"
target_port() {
	case $1 in
	sftp) sshd_port "$D" ;; dav) echo "$NGINX_PORT" ;; s3) echo "$SWIFT_PORT" ;;
	azure) echo "$AZURITE_PORT" ;;
	esac
}
# relay_port TR: a free port for a relay to TR's server
relay_port() {
	local p; p=$(t_free_port)
	[ "$1" = sftp ] && echo "[127.0.0.1]:$p $(cut -d' ' -f2,3 "$D/known_hosts")" >> "$KH"
	echo "$p"
}
# relay TR PORT ARGS...: starts netrelay.py (or slowrelay.py with "slow RATE")
relay() {
	local tr=$1 port=$2 mode=$3; shift 3
	if [ "$mode" = slow ]; then
		/usr/bin/python3 "$WALARCHIVE_SRC/tests/lib/slowrelay.py" "$port" "$(target_port "$tr")" "$@" \
			2>>"$T/relay-$port.log" &
	else
		/usr/bin/python3 "$T/netrelay.py" "$port" "$(target_port "$tr")" "$mode" "$@" \
			2>>"$T/relay-$port.log" &
	fi
	local pid=$!
	echo "$pid" > "$T/relay-$port.pid"
	t_cleanup "kill $pid"
	t_wait 10 bash -c "echo > /dev/tcp/127.0.0.1/$port"
}
relay_stop() {
	local pid; pid=$(cat "$T/relay-$1.pid")
	kill "$pid" 2>/dev/null; wait "$pid" 2>/dev/null
}
relay_log() { cat "$T/relay-$1.log" 2>/dev/null; }
# via TR PORT: the settings that send TR's traffic through a relay on PORT
via() {
	case $1 in
	sftp) echo "--set archive=sftp://$SSHD_USER@127.0.0.1:$2$SARCH" ;;
	dav) echo "--set archive=https://127.0.0.1:$2/dav" ;;
	s3) echo "--set s3_endpoint=http://127.0.0.1:$2" ;;
	azure) echo "--set azure_endpoint=http://127.0.0.1:$2/$AZURITE_ACCOUNT" ;;
	esac
}

printf 'archive = %s\nssh_key = %s\nssh_known_hosts = %s\ntimeout = 10\nretries = 0\n' \
	"$(sshd_url "$D" "$SARCH")" "$D/id_ed25519" "$KH" > "$T/sftp.conf"
printf 'archive = %s\nhttp_user = %s\nhttp_password = %s\ntls_ca_file = %s\ntimeout = 10\nretries = 0\n' \
	"$NGINX_URL" "$NGINX_USER" "$NGINX_PASS" "$NGINX_CA" > "$T/dav.conf"
printf 'archive = s3://%s/fleet\ns3_endpoint = http://127.0.0.1:%s\ns3_uri_style = path\ns3_region = us-east-1\ns3_access_key = %s\ns3_secret_key = %s\ntimeout = 10\nretries = 0\n' \
	"$SWIFT_BUCKET" "$SWIFT_PORT" "$SWIFT_ACCESS" "$SWIFT_SECRET" > "$T/s3.conf"
printf 'archive = azure://%s/%s/fleet\nazure_endpoint = %s\nazure_account_key = %s\ntimeout = 10\nretries = 0\n' \
	"$AZURITE_ACCOUNT" "$AZURITE_CONTAINER" "$AZURITE_ENDPOINT" "$AZURITE_KEY" > "$T/azure.conf"
chmod 600 "$T"/*.conf

push() { local tr=$1; shift; "$BIN/walpush" -c "$T/$tr.conf" -D "$DATA" "$@"; }
fetch() { local tr=$1; shift; "$BIN/walfetch" -c "$T/$tr.conf" -D "$DATA" "$@"; }

# ---- the server's own view ------------------------------------------------
# s3q: botocore (not walarchive) in a co-process: "keys PREFIX", "get KEY
# FILE", "del KEY"; each answer ends with a line "."
cat > "$T/s3q.py" <<'PY'
import os, sys
import botocore.session
from botocore.config import Config
c = botocore.session.get_session().create_client(
    "s3", endpoint_url=os.environ["S3REF_ENDPOINT"], region_name="us-east-1",
    aws_access_key_id=os.environ["AWS_ACCESS_KEY_ID"],
    aws_secret_access_key=os.environ["AWS_SECRET_ACCESS_KEY"],
    config=Config(s3={"addressing_style": "path"}, retries={"max_attempts": 1}))
bucket = os.environ["S3Q_BUCKET"]
for line in sys.stdin:
    cmd, *args = line.split()
    try:
        if cmd == "keys":
            for page in c.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=args[0]):
                for obj in page.get("Contents", []):
                    print(obj["Key"], obj["ETag"].strip('"'))
        elif cmd == "get":
            with open(args[1], "wb") as f:
                f.write(c.get_object(Bucket=bucket, Key=args[0])["Body"].read())
        elif cmd == "del":
            c.delete_object(Bucket=bucket, Key=args[0])
    except Exception as exc:
        print("ERR %s" % str(exc).replace("\n", " "))
    print(".", flush=True)
PY
# azq: the same through the Azure SDK (not walarchive); "keys" gives each
# blob's name and Content-MD5 in hex
cat > "$T/azq.py" <<'PY'
import os, sys
from azure.storage.blob import BlobServiceClient
svc = BlobServiceClient(account_url=os.environ["AZREF_ENDPOINT"],
                        credential={"account_name": os.environ["AZREF_ACCOUNT"],
                                    "account_key": os.environ["AZREF_KEY"]})
c = svc.get_container_client(os.environ["AZQ_CONTAINER"])
for line in sys.stdin:
    cmd, *args = line.split()
    try:
        if cmd == "keys":
            for b in c.list_blobs(name_starts_with=args[0]):
                md5 = b.content_settings.content_md5
                print(b.name, bytes(md5).hex() if md5 else "-")
        elif cmd == "get":
            with open(args[1], "wb") as f:
                c.download_blob(args[0]).readinto(f)
        elif cmd == "del":
            c.delete_blob(args[0])
    except Exception as exc:
        print("ERR %s" % str(exc).replace("\n", " ")[:200])
    print(".", flush=True)
PY
azq_start() {
	rm -f "$T/azq-$1.in" "$T/azq-$1.out"
	mkfifo "$T/azq-$1.in" "$T/azq-$1.out"
	AZREF_ENDPOINT=$AZURITE_ENDPOINT AZREF_ACCOUNT=$AZURITE_ACCOUNT AZREF_KEY=$AZURITE_KEY \
		AZQ_CONTAINER=$AZURITE_CONTAINER \
		"$AZURITE_PY" "$T/azq.py" <"$T/azq-$1.in" >"$T/azq-$1.out" 2>"$T/azq-$1.err" &
	echo $! > "$T/azq-$1.pid"
	exec {AZQ_W}>"$T/azq-$1.in" {AZQ_R}<"$T/azq-$1.out"
	azq keys none/ >/dev/null
}
t_cleanup 'kill $(cat "$T"/azq-*.pid)'
azq() {
	local line
	echo "$*" >&"$AZQ_W"
	while IFS= read -r -u "$AZQ_R" line; do
		[ "$line" = . ] && return 0
		echo "$line"
	done
	return 1
}
# s3q_start NAME: starts one for this shell (each lane has its own)
s3q_start() {
	rm -f "$T/s3q-$1.in" "$T/s3q-$1.out"
	mkfifo "$T/s3q-$1.in" "$T/s3q-$1.out"
	S3REF_ENDPOINT=http://127.0.0.1:$SWIFT_PORT AWS_ACCESS_KEY_ID=$SWIFT_ACCESS \
		AWS_SECRET_ACCESS_KEY=$SWIFT_SECRET S3Q_BUCKET=$SWIFT_BUCKET \
		"$SWIFT_PY" "$T/s3q.py" <"$T/s3q-$1.in" >"$T/s3q-$1.out" 2>"$T/s3q-$1.err" &
	echo $! > "$T/s3q-$1.pid"
	exec {S3Q_W}>"$T/s3q-$1.in" {S3Q_R}<"$T/s3q-$1.out"
	s3q keys none/ >/dev/null
}
t_cleanup 'kill $(cat "$T"/s3q-*.pid)'
s3q() {
	local line
	echo "$*" >&"$S3Q_W"
	while IFS= read -r -u "$S3Q_R" line; do
		[ "$line" = . ] && return 0
		echo "$line"
	done
	return 1
}
s3q_start main || { t_fail "the botocore helper does not answer: $(cat "$T/s3q-main.err")"; t_done; }
azq_start main || { t_fail "the azure sdk helper does not answer: $(cat "$T/azq-main.err")"; t_done; }

# obj_state TR NAME: "absent", "ok" (the archive holds exactly $T/src/NAME,
# compressed or not), or what is wrong.  The first object found intact is
# kept in $T/ref; later ones equal to it (cmp, S3's ETag or the blob's
# Content-MD5) are intact too.
mkdir -p "$T/ref"
obj_state() {
	local tr=$1 name=$2 root src=$T/src/$2 ref=$T/ref/$1-$2 keys key etag f
	case $tr in
	sftp|dav)
		[ "$tr" = sftp ] && root=$SARCH || root=$NGINX_ROOT
		if [ -e "$root/$SUB/$name.lz4" ] && [ -e "$root/$SUB/$name" ]; then echo "two objects"; return; fi
		f=$root/$SUB/$name.lz4
		[ -e "$f" ] || f=$root/$SUB/$name
		[ -e "$f" ] || { echo absent; return; }
		if [ -e "$ref" ] && cmp -s "$f" "$ref"; then echo ok; return; fi
		cp "$f" "$T/ref/.$tr-$name" ;;
	s3|azure)
		if [ "$tr" = s3 ]; then keys=$(s3q keys "fleet/$SUB/$name")
		else keys=$(azq keys "fleet/$SUB/$name"); fi
		[ -n "$keys" ] || { echo absent; return; }
		[ "$(echo "$keys" | wc -l)" = 1 ] || { echo "unexpected keys: $(echo $keys)"; return; }
		read -r key etag <<< "$keys"
		if [ -e "$ref.md5" ] && [ "$etag" = "$(cat "$ref.md5")" ]; then echo ok; return; fi
		if [ "$tr" = s3 ]; then s3q get "$key" "$T/ref/.$tr-$name" >/dev/null
		else azq get "$key" "$T/ref/.$tr-$name" >/dev/null; fi
		f=$key ;;
	esac
	case $f in
	*.lz4) lz4 -dc "$T/ref/.$tr-$name" 2>/dev/null | cmp -s - "$src" || { echo "corrupt $(basename "$f")"; return; } ;;
	*) cmp -s "$T/ref/.$tr-$name" "$src" || { echo "wrong $(basename "$f")"; return; } ;;
	esac
	mv "$T/ref/.$tr-$name" "$ref"
	md5sum < "$ref" | cut -d' ' -f1 > "$ref.md5"
	echo ok
}
# srv_tmps TR NAME: temporary uploads of NAME left on the server (S3 and Azure have none)
srv_tmps() {
	case $1 in
	sftp) find "$SARCH" -name ".$2*.tmp" | wc -l ;;
	dav) find "$NGINX_ROOT" -name ".$2*.tmp" | wc -l ;;
	s3|azure) echo 0 ;;
	esac
}
# srv_rm TR NAME: removes the object and its temporary uploads
srv_rm() {
	case $1 in
	sftp) rm -f "$SARCH/$SUB/$2" "$SARCH/$SUB/$2.lz4" "$SARCH/$SUB/.$2"*.tmp ;;
	dav) rm -f "$NGINX_ROOT/$SUB/$2" "$NGINX_ROOT/$SUB/$2.lz4" "$NGINX_ROOT/$SUB/.$2"*.tmp ;;
	s3) s3q del "fleet/$SUB/$2.lz4" >/dev/null; s3q del "fleet/$SUB/$2" >/dev/null ;;
	azure) azq del "fleet/$SUB/$2.lz4" >/dev/null; azq del "fleet/$SUB/$2" >/dev/null ;;
	esac
}
# one_msg PROG FILE: FILE is one line "PROG: ..." (prints it), else fails
one_msg() {
	[ "$(grep -c '' "$2")" = 1 ] && grep -q "^$1: " "$2" && cat "$2"
}

# ---- the objects the stalls and the walfetch walks fetch -------------------
for tr in $TRANSPORTS; do
	for name in $SEG_HELD $SEG_F; do
		push "$tr" "$T/src/$name" "$name" 2>"$T/err" ||
			{ t_fail "$tr: walpush $name without faults: $(cat "$T/err")"; t_done; }
	done
done

# ---- 2(b), 2(c) in the background: stalled peers and a slow link ---------
# bg NAME CMD...: runs CMD in the background; $T/bg/NAME.{rc,secs,err} afterwards
BG_PIDS=()
bg() {
	local name=$1; shift
	(
		s=$(date +%s.%N)
		"$@" >/dev/null 2>"$T/bg/$name.err"
		echo $? > "$T/bg/$name.rc"
		awk -v s="$s" -v e="$(date +%s.%N)" 'BEGIN { printf "%.1f\n", e - s }' > "$T/bg/$name.secs"
	) &
	BG_PIDS+=($!)
}
# slow_timeout TR: the timeout of the slow-link jobs: 3 s, the quiet time
# that must not pass on a link that is slow but moving.  Azurite, a
# JavaScript emulator that serves this script's other Azure jobs in the same
# process meanwhile, was seen to take more than 3 s to answer once the last
# byte of a 16 MiB body was in (the object stored, walpush timed out): 10 s.
slow_timeout() { if [ "$1" = azure ]; then echo 10; else echo 3; fi; }
# slow_job TR PORT: walpush then walfetch of SEG_SLOW through the slow relay
slow_job() {
	local tr=$1 port=$2 s rc t
	t=$(slow_timeout "$tr")
	# shellcheck disable=SC2046
	push "$tr" $(via "$tr" "$port") --set timeout="$t" --set retries=0 "$T/src/$SEG_SLOW" "$SEG_SLOW" || return
	s=$(date +%s.%N)
	# shellcheck disable=SC2046
	fetch "$tr" $(via "$tr" "$port") --set timeout="$t" --set retries=0 "$SEG_SLOW" "$T/bg/dest-$tr/slow"
	rc=$?
	awk -v s="$s" -v e="$(date +%s.%N)" 'BEGIN { printf "%.1f\n", e - s }' > "$T/bg/$tr-slow-fetch.secs"
	return $rc
}
STALL_T=3 STALL_R=1
STALLSET=(--set "timeout=$STALL_T" --set "retries=$STALL_R")
declare -A RP
for tr in $TRANSPORTS; do
	mkdir -p "$T/bg/dest-$tr"
	RP[$tr-quiet]=$(relay_port "$tr"); relay "$tr" "${RP[$tr-quiet]}" silent
	RP[$tr-up]=$(relay_port "$tr"); relay "$tr" "${RP[$tr-up]}" stall up 4194304
	RP[$tr-down]=$(relay_port "$tr"); relay "$tr" "${RP[$tr-down]}" stall down 4194304
	RP[$tr-slow]=$(relay_port "$tr"); relay "$tr" "${RP[$tr-slow]}" slow 2097152
	# shellcheck disable=SC2046
	bg "$tr-quiet-push" push "$tr" $(via "$tr" "${RP[$tr-quiet]}") "${STALLSET[@]}" "$T/src/$SEG_QUIET" "$SEG_QUIET"
	# shellcheck disable=SC2046
	bg "$tr-quiet-fetch" fetch "$tr" $(via "$tr" "${RP[$tr-quiet]}") "${STALLSET[@]}" \
		--set fetch_on_error=continue "$SEG_HELD" "$T/bg/dest-$tr/quiet"
	# shellcheck disable=SC2046
	bg "$tr-stall-push" push "$tr" $(via "$tr" "${RP[$tr-up]}") "${STALLSET[@]}" "$T/src/$SEG_STALL" "$SEG_STALL"
	# shellcheck disable=SC2046
	bg "$tr-stall-fetch" fetch "$tr" $(via "$tr" "${RP[$tr-down]}") "${STALLSET[@]}" \
		--set fetch_on_error=continue "$SEG_HELD" "$T/bg/dest-$tr/stall"
	bg "$tr-slow-push" slow_job "$tr" "${RP[$tr-slow]}"
done

# ---- 1. the fault seam walks, one lane per transport, program, direction --
# count_calls TR KIND PROG ARGS...: how many KIND calls one clean run makes
count_calls() {
	local tr=$1 kind=$2 prog=$3; shift 3
	rm -f "$T/count-$LANE"
	LD_PRELOAD=$T/count.so NETFAULT_COUNT_FILE=$T/count-$LANE WALARCHIVE_FAULT=0:ECONNRESET:$kind \
		ASAN_OPTIONS=${ASAN_OPTIONS:+$ASAN_OPTIONS:}verify_asan_link_order=0 \
		"$prog" "$tr" "$@" >/dev/null 2>"$ERRF" || { echo 0; return; }
	cat "$T/count-$LANE" 2>/dev/null || echo 0
}
# points C: the fault points for C counted calls: K spread over 1..C, and
# the first and last TAIL calls
points() {
	local c=$1 i
	[ "$c" -gt 0 ] || return 0
	{
		if [ "$c" -le $((K + 2 * TAIL)) ]; then seq 1 "$c"; else
			for ((i = 0; i < K; i++)); do echo $((1 + i * (c - 1) / (K - 1))); done
			seq 1 "$TAIL"; seq $((c - TAIL + 1)) "$c"
		fi
	} | sort -n | uniq
}

bad() { BAD=$((BAD + 1)); echo "# $LANE: $*"; }
errmsg() { head -c 300 "$ERRF" | tr '\n' '|'; }

# walk_push TR KIND NAME: walpush of NAME (into an archive without it)
walk_push() {
	local tr=$1 kind=$2 name=$3 n rc st tmps src=$T/src/$3
	srv_rm "$tr" "$name"
	CALLS=$(count_calls "$tr" "$kind" push "$src" "$name")
	[ "$CALLS" -gt 0 ] || bad "no $kind calls counted: $(errmsg)"
	TRIED=0 NOEFFECT=0 LEFT_TMPS=0 COMMITTED=0
	for n in $(points "$CALLS"); do
		srv_rm "$tr" "$name"
		WALARCHIVE_FAULT=$n:ECONNRESET:$kind push "$tr" --set retries=0 "$src" "$name" 2>"$ERRF"
		rc=$?
		TRIED=$((TRIED + 1))
		st=$(obj_state "$tr" "$name")
		case $rc in
		6) # complete is allowed: the server committed, then the reply was lost
		   [ "$st" = absent ] || [ "$st" = ok ] || bad "push $n:$kind retries=0: exit 6 and the archive holds: $st"
		   [ "$st" = ok ] && COMMITTED=$((COMMITTED + 1))
		   one_msg walpush "$ERRF" >/dev/null || bad "push $n:$kind: not one message line: $(errmsg)" ;;
		0) [ "$st" = ok ] || bad "push $n:$kind retries=0: exit 0 but the archive holds: $st"
		   NOEFFECT=$((NOEFFECT + 1)) ;;
		*) bad "push $n:$kind retries=0: exit $rc, want 6: $(errmsg)" ;;
		esac
		if [ "$rc" != 0 ]; then
			tmps=$(srv_tmps "$tr" "$name")
			LEFT_TMPS=$((LEFT_TMPS + tmps))
			push "$tr" --set retries=0 "$src" "$name" 2>"$ERRF"
			rc=$?; st=$(obj_state "$tr" "$name")
			[ "$rc" = 0 ] && [ "$st" = ok ] ||
				bad "push $n:$kind: the next push without faults: exit $rc, archive: $st: $(errmsg)"
			srv_rm "$tr" "$name"
		fi
		WALARCHIVE_FAULT=$n:ECONNRESET:$kind push "$tr" --set retries=2 "$src" "$name" 2>"$ERRF"
		rc=$?; st=$(obj_state "$tr" "$name")
		[ "$rc" = 0 ] && [ "$st" = ok ] ||
			bad "push $n:$kind retries=2: exit $rc, archive: $st, want 0 and the segment: $(errmsg)"
	done
}

# walk_fetch TR KIND NAME: walfetch of NAME (the archive holds it)
walk_fetch() {
	local tr=$1 kind=$2 name=$3 n rc dd=$T/dest-$LANE src=$T/src/$3 left
	mkdir -p "$dd"
	CALLS=$(count_calls "$tr" "$kind" fetch "$name" "$dd/$name")
	[ "$CALLS" -gt 0 ] || [ "$kind" = send ] || bad "no $kind calls counted: $(errmsg)"
	TRIED=0 NOEFFECT=0 LEFT_TMPS=0 COMMITTED=0
	for n in $(points "$CALLS"); do
		rm -rf "$dd"; mkdir -p "$dd"
		WALARCHIVE_FAULT=$n:ECONNRESET:$kind fetch "$tr" --set retries=0 --set fetch_on_error=continue \
			"$name" "$dd/$name" 2>"$ERRF"
		rc=$?
		TRIED=$((TRIED + 1))
		case $rc in
		6) [ ! -e "$dd/$name" ] || bad "fetch $n:$kind: exit 6 but the destination exists"
		   one_msg walfetch "$ERRF" >/dev/null || bad "fetch $n:$kind: not one message line: $(errmsg)" ;;
		0) cmp -s "$dd/$name" "$src" || bad "fetch $n:$kind: exit 0 but the destination differs"
		   NOEFFECT=$((NOEFFECT + 1)) ;;
		*) bad "fetch $n:$kind retries=0: exit $rc, want 6: $(errmsg)" ;;
		esac
		left=$(find "$dd" -mindepth 1 ! -name "$name" | wc -l)
		[ "$left" = 0 ] || bad "fetch $n:$kind: $left temporary file(s) left beside the destination"
		if [ "$rc" != 0 ]; then
			fetch "$tr" --set retries=0 "$name" "$dd/$name" 2>"$ERRF"
			rc=$?
			[ "$rc" = 0 ] && cmp -s "$dd/$name" "$src" ||
				bad "fetch $n:$kind: the next fetch without faults: exit $rc: $(errmsg)"
		fi
		rm -rf "$dd"; mkdir -p "$dd"
		WALARCHIVE_FAULT=$n:ECONNRESET:$kind fetch "$tr" --set retries=2 "$name" "$dd/$name" 2>"$ERRF"
		rc=$?
		[ "$rc" = 0 ] && cmp -s "$dd/$name" "$src" ||
			bad "fetch $n:$kind retries=2: exit $rc, want 0 and the segment: $(errmsg)"
	done
	rm -rf "$dd"
}

# lane TR PROG KIND: one walk; results in $T/lane-TR-PROG-KIND.res
lane() {
	local tr=$1 prog=$2 kind=$3 name=$SEG s=$SECONDS
	LANE=$tr-$prog-$kind ERRF=$T/err-$tr-$prog-$kind BAD=0
	[ "$tr" = s3 ] && { s3q_start "$LANE" || bad "the botocore helper does not answer"; }
	[ "$tr" = azure ] && { azq_start "$LANE" || bad "the azure sdk helper does not answer"; }
	case $prog-$kind in push-recv) name=$SEG_PR ;; fetch-*) name=$SEG_F ;; esac
	"walk_$prog" "$tr" "$kind" "$name"
	echo "TRIED[$LANE]=$TRIED CALLS[$LANE]=$CALLS NOEFFECT[$LANE]=$NOEFFECT LEFT_TMPS[$LANE]=$LEFT_TMPS" \
		"COMMITTED[$LANE]=$COMMITTED" \
		"LANE_BAD[$LANE]=$BAD LANE_SECS[$LANE]=$((SECONDS - s))" > "$T/lane-$LANE.res"
	kill "$(cat "$T/s3q-$LANE.pid" 2>/dev/null)" "$(cat "$T/azq-$LANE.pid" 2>/dev/null)" 2>/dev/null
}
LANE_PIDS=()
for tr in $TRANSPORTS; do
	for pk in push-send push-recv fetch-send fetch-recv; do
		( lane "$tr" "${pk%-*}" "${pk#*-}" ) > "$T/lane-$tr-$pk.out" 2>&1 &
		LANE_PIDS+=($!)
	done
done

# ---- 2(a). connection reset in mid-upload and mid-download ----------------
for tr in $TRANSPORTS; do
	srv_rm "$tr" "$SEG_RST"
	p=$(relay_port "$tr"); relay "$tr" "$p" rst up 4194304 1
	# shellcheck disable=SC2046
	push "$tr" $(via "$tr" "$p") --set retries=0 "$T/src/$SEG_RST" "$SEG_RST" 2>"$T/err"; rc=$?
	t_setup "$tr: reset in mid-upload happened" grep -q "reset after 4194304 bytes up" "$T/relay-$p.log"
	t_eq "$tr: walpush with the connection reset in mid-upload exits 6 ($(cat "$T/err"))" "$rc" 6
	t_eq "$tr: nothing under the final name" "$(obj_state "$tr" "$SEG_RST")" absent
	# shellcheck disable=SC2046
	push "$tr" $(via "$tr" "$p") --set retries=0 "$T/src/$SEG_RST" "$SEG_RST" 2>"$T/err"; rc=$?
	t_eq "$tr: the next walpush exits 0 ($(cat "$T/err"))" "$rc" 0
	t_eq "$tr: and the archive holds the segment" "$(obj_state "$tr" "$SEG_RST")" ok
	relay_stop "$p"
	srv_rm "$tr" "$SEG_RST"
	p=$(relay_port "$tr"); relay "$tr" "$p" rst up 4194304 1
	# shellcheck disable=SC2046
	push "$tr" $(via "$tr" "$p") --set retries=1 "$T/src/$SEG_RST" "$SEG_RST" 2>"$T/err"; rc=$?
	t_eq "$tr: with retries=1 walpush survives a reset in mid-upload ($(relay_log "$p"))" "$rc" 0
	t_eq "$tr: and the archive holds the segment" "$(obj_state "$tr" "$SEG_RST")" ok
	relay_stop "$p"

	dd=$T/dest-rst-$tr; mkdir -p "$dd"
	p=$(relay_port "$tr"); relay "$tr" "$p" rst down 4194304 1
	# fetch_on_error = auto and no standby.signal: recovery must stop (126)
	# shellcheck disable=SC2046
	fetch "$tr" $(via "$tr" "$p") --set retries=0 "$SEG_RST" "$dd/$SEG_RST" 2>"$T/err"; rc=$?
	t_setup "$tr: reset in mid-download happened" grep -q "reset after 4194304 bytes down" "$T/relay-$p.log"
	t_eq "$tr: walfetch with the connection reset in mid-download exits 126 ($(cat "$T/err"))" "$rc" 126
	t_eq "$tr: no destination and no temporary file" "$(ls -A "$dd" | wc -l)" 0
	# shellcheck disable=SC2046
	fetch "$tr" $(via "$tr" "$p") --set retries=0 "$SEG_RST" "$dd/$SEG_RST" 2>"$T/err"; rc=$?
	t_eq "$tr: the next walfetch exits 0 ($(cat "$T/err"))" "$rc" 0
	t_check "$tr: with the exact bytes" cmp -s "$dd/$SEG_RST" "$T/src/$SEG_RST"
	relay_stop "$p"
	rm -f "$dd/$SEG_RST"
	p=$(relay_port "$tr"); relay "$tr" "$p" rst down 4194304 1
	# shellcheck disable=SC2046
	fetch "$tr" $(via "$tr" "$p") --set retries=1 --set fetch_on_error=continue "$SEG_RST" "$dd/$SEG_RST" 2>"$T/err"; rc=$?
	t_eq "$tr: with retries=1 walfetch survives a reset in mid-download ($(relay_log "$p"))" "$rc" 0
	t_check "$tr: with the exact bytes" cmp -s "$dd/$SEG_RST" "$T/src/$SEG_RST"
	relay_stop "$p"
done

# ---- 1. the walks' results --------------------------------------------------
wait "${LANE_PIDS[@]}"
declare -A TRIED CALLS NOEFFECT LEFT_TMPS COMMITTED LANE_BAD LANE_SECS
POINTS=0
for tr in $TRANSPORTS; do
	secs=
	for pk in push-send push-recv fetch-send fetch-recv; do
		cat "$T/lane-$tr-$pk.out"
		# shellcheck disable=SC1090
		if [ -f "$T/lane-$tr-$pk.res" ]; then . "$T/lane-$tr-$pk.res"
		else t_fail "$tr $pk: the walk ended early"; fi
		secs+="${secs:+ }${LANE_SECS[$tr-$pk]:-?}"
	done
	n=0
	for k in push-send push-recv fetch-send fetch-recv; do n=$((n + ${TRIED[$tr-$k]:-0})); done
	POINTS=$((POINTS + n))
	desc="$tr: $n fault points (push send ${TRIED[$tr-push-send]:-}/${CALLS[$tr-push-send]:-} calls,"
	desc+=" recv ${TRIED[$tr-push-recv]:-}/${CALLS[$tr-push-recv]:-}; fetch send"
	desc+=" ${TRIED[$tr-fetch-send]:-}/${CALLS[$tr-fetch-send]:-}, recv ${TRIED[$tr-fetch-recv]:-}/${CALLS[$tr-fetch-recv]:-};"
	desc+=" lanes of $secs s)"
	bad=0
	for k in push-send push-recv fetch-send fetch-recv; do bad=$((bad + ${LANE_BAD[$tr-$k]:-1})); done
	if [ "$bad" -eq 0 ]; then t_ok "$desc: every promise kept"
	else t_fail "$desc: $bad broken promises"; fi
	# the faults that failed a run at retries=0 (the others had no effect)
	fired=0 few=
	for k in push-send push-recv fetch-send fetch-recv; do
		f=$(( ${TRIED[$tr-$k]:-0} - ${NOEFFECT[$tr-$k]:-0} ))
		fired=$((fired + f))
		[ "$k" = fetch-send ] || [ "$f" -ge "$MIN_LANE_FIRED" ] || few="$few $k ($f)"
	done
	if [ "$fired" -ge "$MIN_FIRED" ] && [ -z "$few" ]; then
		t_setup_ok "$tr: the faults fired ($fired runs failed at retries=0, at least $MIN_FIRED; at least $MIN_LANE_FIRED in each walk)"
	else
		t_fail "$tr: the faults did not fire: $fired runs failed at retries=0 (want $MIN_FIRED)${few:+, too few in:$few}"
	fi
	echo "# $tr: faults without effect at retries=0 (past the last call, or a call that did not matter):" \
		"push send ${NOEFFECT[$tr-push-send]:-}, recv ${NOEFFECT[$tr-push-recv]:-}," \
		"fetch send ${NOEFFECT[$tr-fetch-send]:-}, recv ${NOEFFECT[$tr-fetch-recv]:-};" \
		"pushes that failed after the server committed the object: $((${COMMITTED[$tr-push-send]:-0} + ${COMMITTED[$tr-push-recv]:-0}));" \
		"temporary uploads left on the server by failed pushes: $((${LEFT_TMPS[$tr-push-send]:-0} + ${LEFT_TMPS[$tr-push-recv]:-0}))"
done
echo "# fault points tried: $POINTS (walpush and walfetch, 4 transports, ECONNRESET)"

# ---- 2(b), 2(c): the background results -----------------------------------
wait "${BG_PIDS[@]}"
# the stalled uploads' connections close now: still nothing may appear
for tr in $TRANSPORTS; do
	for k in quiet up down; do relay_stop "${RP[$tr-$k]}"; done
done
sleep 1
# the bound: timeout x (retries + 1) + the backoff (at most 0.625 s) + 4 s margin
LOW=$((STALL_T * (STALL_R + 1))) HIGH=$((STALL_T * (STALL_R + 1) + 1 + 4))
declare -A STALL_SECS SLOW_SECS
for tr in $TRANSPORTS; do
	for job in quiet-push quiet-fetch stall-push stall-fetch; do
		rc=$(cat "$T/bg/$tr-$job.rc") secs=$(cat "$T/bg/$tr-$job.secs")
		STALL_SECS[$tr]="${STALL_SECS[$tr]:-}${STALL_SECS[$tr]:+ }$job ${secs}s"
		prog=walpush; [ "${job#*-}" = fetch ] && prog=walfetch
		what="a peer that never answers"
		[ "${job%-*}" = stall ] && what="a peer that stalls after 4 MiB"
		[ "$prog" = walpush ] && what+=" (upload)" || what+=" (download)"
		t_eq "$tr: $prog, $what: exit 6" "$rc" 6
		t_check "$tr: $prog, $what: within ${LOW}..${HIGH} s (${secs} s)" \
			awk -v t="$secs" -v lo="$LOW" -v hi="$HIGH" 'BEGIN { exit !(t >= lo - 0.2 && t <= hi) }'
		msg=$(one_msg "$prog" "$T/bg/$tr-$job.err")
		t_match "$tr: $prog, $what: one clear message: $msg" "${msg:-$(cat "$T/bg/$tr-$job.err")}" \
			"timed out after $STALL_T s"
	done
	t_setup "$tr: the relay stalled mid-upload" grep -q "stalled after 4194304 bytes up" "$T/relay-${RP[$tr-up]}.log"
	t_setup "$tr: the relay stalled mid-download" grep -q "stalled after 4194304 bytes down" "$T/relay-${RP[$tr-down]}.log"
	t_eq "$tr: nothing under the final name after the silent peer" "$(obj_state "$tr" "$SEG_QUIET")" absent
	t_eq "$tr: nothing under the final name after the stalled upload" "$(obj_state "$tr" "$SEG_STALL")" absent
	t_eq "$tr: no destination and no temporary file after the stalled fetches" \
		"$(find "$T/bg/dest-$tr" -mindepth 1 ! -name slow | wc -l)" 0

	rc=$(cat "$T/bg/$tr-slow-push.rc") secs=$(cat "$T/bg/$tr-slow-push.secs") fsecs=$(cat "$T/bg/$tr-slow-fetch.secs" 2>/dev/null)
	t_eq "$tr: walpush then walfetch over a 2 MiB/s link, timeout=$(slow_timeout "$tr") retries=0: exit 0 ($(cat "$T/bg/$tr-slow-push.err"))" "$rc" 0
	t_eq "$tr: the slowly pushed segment is archived intact" "$(obj_state "$tr" "$SEG_SLOW")" ok
	t_check "$tr: the slowly fetched segment is identical" cmp -s "$T/bg/dest-$tr/slow" "$T/src/$SEG_SLOW"
	# 2 x 16 MiB at 2 MiB/s: at least 12 s, or the relay did not slow anything
	t_check "$tr: the link was slow: ${secs}s for both, ${fsecs}s for the fetch" \
		awk -v t="$secs" 'BEGIN { exit !(t >= 12) }'
	SLOW_SECS[$tr]="push+fetch ${secs}s (fetch ${fsecs}s)"
done

for tr in $TRANSPORTS; do
	echo "# summary $tr: $((TRIED[$tr-push-send] + TRIED[$tr-push-recv] + TRIED[$tr-fetch-send] + TRIED[$tr-fetch-recv])) seam points" \
		"(push send ${TRIED[$tr-push-send]} of ${CALLS[$tr-push-send]} calls, recv ${TRIED[$tr-push-recv]} of ${CALLS[$tr-push-recv]};" \
		"fetch send ${TRIED[$tr-fetch-send]} of ${CALLS[$tr-fetch-send]}, recv ${TRIED[$tr-fetch-recv]} of ${CALLS[$tr-fetch-recv]});" \
		"resets: 2 uploads, 2 downloads; stalls: ${STALL_SECS[$tr]}; slow link: ${SLOW_SECS[$tr]}"
done
echo "# total $((SECONDS - START)) s"
t_done
