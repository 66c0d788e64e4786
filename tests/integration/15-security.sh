#!/bin/bash
# SANITIZE_OK: also run against the ASan+UBSan build by tests/run.sh
# The security promises of README's review: secrets never in the process
# list or in any message (also when the server refuses them or cannot be
# reached), a configuration file with secrets that others can read is
# refused, and archive objects, directories, temporary and restored files
# are private to their owner (0600, or 0640 where configured).

. "$(dirname "$0")/../lib/common.sh"
. "$(dirname "$0")/../lib/pg.sh"

export LC_ALL=C
BIN=$WALARCHIVE_BIN
T=$WALARCHIVE_TMP
SECRET=wal-Secret-7f3a9c
W=$T/work
ARCH=$T/archive
mkdir -p "$W" "$ARCH"
chown postgres:postgres "$W" "$ARCH"

pg_new c1 || { t_fail "initdb"; t_done; }
DATA=$(pg_data c1)
SEG=000000010000000000000001
cp "$DATA/pg_wal/$SEG" "$W/$SEG"
chown postgres:postgres "$W/$SEG"

# run CONF PROG ARGS...: as postgres in the data directory; sets RC and OUT (stderr+stdout)
run() {
	local conf=$1 prog=$2; shift 2
	OUT=$(cd "$DATA" && runuser -u postgres -- "$BIN/$prog" -c "$conf" "$@" 2>&1)
	RC=$?
}

# 1. a file with a secret that others can read is refused, naming the fix
CONF=$T/open.conf
walarchive_conf "$CONF" "archive=$ARCH" "http_password=$SECRET"
chmod 0644 "$CONF"
run "$CONF" walpush "$W/$SEG" "$SEG"
t_eq "world-readable configuration with a secret: exit 3" "$RC" 3
t_match "the message names the file and the fix" "$OUT" "open.conf:[0-9]+: http_password is a secret .*chmod o-r"
t_check "and does not show the secret" bash -c "! grep -q -- '$SECRET' <<< \"\$1\"" _ "$OUT"
chmod 0640 "$CONF"
run "$CONF" walpush "$W/$SEG" "$SEG"
t_eq "the same file readable by its group only: accepted" "$RC" 0

# 1b. a password written into a URL is refused, and no message repeats it
for url in "https://walarchive:$SECRET@127.0.0.1:9/wal" "http://walarchive:$SECRET/x@127.0.0.1:9/wal" \
	"sftp://walarchive:$SECRET@127.0.0.1:9/wal" "ftp://walarchive:$SECRET@127.0.0.1/wal"; do
	UCONF=$T/url.conf
	walarchive_conf "$UCONF" "archive=$url"
	for prog in walpush walfetch walprune; do
		case $prog in
		walpush) run "$UCONF" walpush "$W/$SEG" "$SEG" ;;
		walfetch) run "$UCONF" walfetch --set fetch_on_error=continue "$SEG" "$W/fetched" ;;
		walprune) run "$UCONF" walprune --before "$SEG" ;;
		esac
		t_eq "$prog: archive = ${url%%:*}://walarchive:SECRET@...: exit 3" "$RC" 3
		t_match "$prog: the message names the file and line" "$OUT" "^$prog: $UCONF:[0-9]+: archive \""
		t_check "$prog: and does not show the password" bash -c "! grep -q -- '$SECRET' <<< \"\$1\"" _ "$OUT"
	done
	# the same on the command line (which is itself visible to everyone)
	OUT=$(cd "$DATA" && runuser -u postgres -- "$BIN/walprune" -c "$T/open.conf" --set "archive=$url" \
		--before "$SEG" 2>&1)
	t_check "--set archive=${url%%:*}://...: the message does not show the password" \
		bash -c "! grep -q -- '$SECRET' <<< \"\$1\"" _ "$OUT"
done
UCONF=$T/endpoint.conf
walarchive_conf "$UCONF" "archive=s3://bucket/prefix" "s3_endpoint=https://key:$SECRET@127.0.0.1:9" \
	"s3_access_key=AKIAWALARCHIVE" "s3_secret_key=other"
run "$UCONF" walprune --before "$SEG"
t_eq "s3_endpoint with a password: exit 3" "$RC" 3
t_match "the message names the line of s3_endpoint" "$OUT" "^walprune: $UCONF:2: s3_endpoint "
t_check "and does not show the password" bash -c "! grep -q -- '$SECRET' <<< \"\$1\"" _ "$OUT"

# 2. modes: objects 0600 in 0700 directories, 0640 when file_mode says so
obj=$(find "$ARCH" -name "$SEG.lz4")
t_eq "archived object is 0600" "$(stat -c %a "$obj")" 600
t_eq "its directory is 0700" "$(stat -c %a "$(dirname "$obj")")" 700
t_eq "the cluster's directory is 0700" "$(stat -c %a "$(dirname "$(dirname "$obj")")")" 700
ARCH2=$T/archive2
mkdir -p "$ARCH2"; chown postgres:postgres "$ARCH2"
CONF2=$T/group.conf
walarchive_conf "$CONF2" "archive=$ARCH2" "file_mode=0640"
run "$CONF2" walpush "$W/$SEG" "$SEG"
t_eq "file_mode = 0640: exit 0" "$RC" 0
t_eq "object is 0640" "$(stat -c %a "$(find "$ARCH2" -name "$SEG.lz4")")" 640
# a permissive umask does not widen a restored file
OUT=$(cd "$DATA" && runuser -u postgres -- sh -c "umask 000; '$BIN/walfetch' -c '$CONF' $SEG '$W/restored'" 2>&1)
t_eq "walfetch under umask 000: exit 0" "$?" 0
t_eq "the restored file is 0600" "$(stat -c %a "$W/restored")" 600

# 3. secrets in the process list and in messages: a server that accepts and
# never answers keeps walpush waiting long enough to look at it
PORT=$(t_free_port)
python3 - "$PORT" <<'PY' &
import socket, sys, time
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("127.0.0.1", int(sys.argv[1]))); s.listen(8)
conns = []
end = time.time() + 60
while time.time() < end:
    s.settimeout(1)
    try:
        c, _ = s.accept(); conns.append(c)
    except OSError:
        pass
PY
STALL=$!
t_cleanup "kill $STALL"
t_wait 10 bash -c "exec 3<>/dev/tcp/127.0.0.1/$PORT"
for kind in webdav s3; do
	CONF=$T/$kind.conf
	if [ $kind = webdav ]; then
		walarchive_conf "$CONF" "archive=http://127.0.0.1:$PORT/wal" "http_user=walarchive" \
			"http_password=$SECRET" "timeout=3" "retries=0"
	else
		walarchive_conf "$CONF" "archive=s3://bucket/prefix" "s3_endpoint=http://127.0.0.1:$PORT" \
			"s3_uri_style=path" "s3_access_key=AKIAWALARCHIVE" "s3_secret_key=$SECRET" \
			"s3_session_token=$SECRET-token" "timeout=3" "retries=0"
	fi
	(cd "$DATA" && exec runuser -u postgres -- "$BIN/walpush" -c "$CONF" "$W/$SEG" "$SEG" \
		> "$T/$kind.out" 2>&1) &
	PUSH=$!
	sleep 1
	t_check "$kind: walpush is waiting on the silent server" kill -0 $PUSH
	PS=$(ps -eo args)
	t_check "$kind: the secret is not in the process list" bash -c "! grep -q -- '$SECRET' <<< \"\$1\"" _ "$PS"
	wait $PUSH
	RC=$?
	t_eq "$kind: a silent server: exit 6" "$RC" 6
	t_match "$kind: the message says it timed out" "$(cat "$T/$kind.out")" "timed out"
	t_check "$kind: no message shows the secret" bash -c "! grep -q -- '$SECRET' '$T/$kind.out'"
	# and verbose logging of a refused request shows it neither
	run "$CONF" walpush -v --set timeout=1 "$W/$SEG" "$SEG"
	t_check "$kind: verbose output does not show the secret" bash -c "! grep -q -- '$SECRET' <<< \"\$1\"" _ "$OUT"
done
t_done
