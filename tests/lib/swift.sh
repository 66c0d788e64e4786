# A private one-node OpenStack Swift with the s3api middleware for the
# integration tests (bash; source after common.sh).  It checks AWS
# Signature V4 like AWS does.  Needs the Debian packages swift-proxy
# swift-account swift-container swift-object python3-swift.
#
#   swift_start NAME [BUCKET]   starts proxy, account, container and object
#       servers in $WALARCHIVE_TMP/NAME on 127.0.0.1 and free ports, creates
#       BUCKET (default "walarchive"), and sets
#       SWIFT_PORT (the proxy: S3 at http://127.0.0.1:SWIFT_PORT, path style,
#       region us-east-1), SWIFT_ACCESS ("test:tester"), SWIFT_SECRET,
#       SWIFT_BUCKET, SWIFT_DIR, SWIFT_PIDS
#   s3ref ARGS / swift_keys BUCKET [PREFIX]   the botocore reference client
#       (tests/lib/s3ref.py) against this server, independent of walarchive
#   swift_stop                  stops all four servers (by PID); registered with t_cleanup
#   swift_proxy_stop / swift_proxy_restart   the proxy alone (a server
#       going away in the middle of a transfer)
#
# Object data lives in SWIFT_DIR/srv/sdb1: an object exists under its name
# only once its PUT completed (the object server writes to a temporary file
# and renames it).

SWIFT_PY=${SWIFT_PY:-/usr/bin/python3}

_swift_rings() {
	local dir=$1
	"$SWIFT_PY" - "$dir/etc" "$SWIFT_APORT" "$SWIFT_CPORT" "$SWIFT_OPORT" <<'PY'
import sys
from swift.common.ring import RingBuilder
etc, ports = sys.argv[1], dict(zip(("account", "container", "object"), map(int, sys.argv[2:5])))
for kind, port in ports.items():
    b = RingBuilder(6, 1, 1)
    b.add_dev({"id": 0, "region": 1, "zone": 1, "ip": "127.0.0.1", "port": port,
               "device": "sdb1", "weight": 100})
    b.rebalance()
    b.save("%s/%s.builder" % (etc, kind))
    b.get_ring().save("%s/%s.ring.gz" % (etc, kind))
PY
}

_swift_server_conf() {
	local dir=$1 kind=$2 port=$3
	cat <<EOF
[DEFAULT]
devices = $dir/srv
mount_check = false
bind_ip = 127.0.0.1
bind_port = $port
workers = 0
user = root
swift_dir = $dir/etc
log_name = $kind-server
log_level = WARNING

[pipeline:main]
pipeline = $kind-server

[app:$kind-server]
use = egg:swift#$kind
EOF
	[ "$kind" = object ] || return 0
	printf '\n[object-expirer]\n'
}

_swift_proxy_conf() {
	local dir=$1
	cat <<EOF
[DEFAULT]
bind_ip = 127.0.0.1
bind_port = $SWIFT_PORT
workers = 0
user = root
swift_dir = $dir/etc
log_name = proxy-server
log_level = WARNING

[pipeline:main]
pipeline = catch_errors proxy-logging cache s3api tempauth proxy-logging proxy-server

[app:proxy-server]
use = egg:swift#proxy
account_autocreate = true

[filter:catch_errors]
use = egg:swift#catch_errors

[filter:proxy-logging]
use = egg:swift#proxy_logging

[filter:cache]
use = egg:swift#memcache

[filter:s3api]
use = egg:swift#s3api
location = us-east-1

[filter:tempauth]
use = egg:swift#tempauth
user_test_tester = $SWIFT_SECRET .admin
EOF
}

# _swift_run KIND PORT: starts one server in the foreground, in the background.
_swift_run() {
	local kind=$1 port=$2
	"$SWIFT_PY" "/usr/bin/swift-$kind-server" "$SWIFT_DIR/etc/$kind-server.conf" \
		>>"$SWIFT_DIR/$kind.log" 2>&1 &
	echo $!
}

swift_start() {
	local name=$1 bucket=${2:-walarchive}
	SWIFT_DIR=$WALARCHIVE_TMP/$name
	mkdir -p "$SWIFT_DIR/etc" "$SWIFT_DIR/srv/sdb1"
	SWIFT_PORT=$(t_free_port)
	SWIFT_APORT=$(t_free_port)
	SWIFT_CPORT=$(t_free_port)
	SWIFT_OPORT=$(t_free_port)
	SWIFT_ACCESS=test:tester
	SWIFT_SECRET=$(openssl rand -hex 16)
	SWIFT_BUCKET=$bucket
	printf '[swift-hash]\nswift_hash_path_suffix = walarchive-test\nswift_hash_path_prefix = walarchive-test\n' \
		> "$SWIFT_DIR/etc/swift.conf"
	_swift_rings "$SWIFT_DIR" >"$SWIFT_DIR/rings.log" 2>&1 || { cat "$SWIFT_DIR/rings.log" >&2; return 1; }
	_swift_server_conf "$SWIFT_DIR" account "$SWIFT_APORT" > "$SWIFT_DIR/etc/account-server.conf"
	_swift_server_conf "$SWIFT_DIR" container "$SWIFT_CPORT" > "$SWIFT_DIR/etc/container-server.conf"
	_swift_server_conf "$SWIFT_DIR" object "$SWIFT_OPORT" > "$SWIFT_DIR/etc/object-server.conf"
	_swift_proxy_conf "$SWIFT_DIR" > "$SWIFT_DIR/etc/proxy-server.conf"
	SWIFT_PIDS=
	local kind port
	for kind in account container object proxy; do
		case $kind in
		account) port=$SWIFT_APORT ;; container) port=$SWIFT_CPORT ;;
		object) port=$SWIFT_OPORT ;; proxy) port=$SWIFT_PORT ;;
		esac
		local pid; pid=$(_swift_run $kind $port)
		SWIFT_PIDS="$SWIFT_PIDS $pid"
		[ $kind = proxy ] && SWIFT_PROXY_PID=$pid
	done
	t_cleanup "swift_stop"
	for port in $SWIFT_APORT $SWIFT_CPORT $SWIFT_OPORT $SWIFT_PORT; do
		if ! t_wait 30 bash -c "echo > /dev/tcp/127.0.0.1/$port"; then
			tail -n 20 "$SWIFT_DIR"/*.log >&2
			return 1
		fi
	done
	swift_make_bucket "$bucket" || return 1
	export SWIFT_PORT SWIFT_ACCESS SWIFT_SECRET SWIFT_BUCKET SWIFT_DIR SWIFT_PIDS SWIFT_PROXY_PID
}

# s3ref ARGS...: the botocore reference client (s3ref.py) against this server.
s3ref() {
	S3REF_ENDPOINT=http://127.0.0.1:$SWIFT_PORT AWS_ACCESS_KEY_ID=$SWIFT_ACCESS \
		AWS_SECRET_ACCESS_KEY=$SWIFT_SECRET "$SWIFT_PY" "$WALARCHIVE_SRC/tests/lib/s3ref.py" "$@"
}

# swift_make_bucket NAME: creates a bucket with the reference client, so
# that no walarchive code is involved.  (tempauth's own token API needs
# memcached, which these tests do without.)
swift_make_bucket() {
	local i
	# the proxy may listen a moment before its ring and account are ready
	for i in 1 2 3 4 5; do
		s3ref mb "$1" 2>"$SWIFT_DIR/mb.log" && return 0
		sleep 1
	done
	cat "$SWIFT_DIR/mb.log" >&2
	return 1
}

# swift_keys BUCKET [PREFIX]: every key under PREFIX, one a line.
swift_keys() { s3ref keys "$@"; }

swift_stop() {
	local pid
	for pid in $SWIFT_PIDS; do kill "$pid" 2>/dev/null; done
	for pid in $SWIFT_PIDS; do
		t_wait 10 bash -c "! kill -0 $pid" || kill -9 "$pid" 2>/dev/null
	done
	SWIFT_PIDS=
}

swift_proxy_stop() {
	kill -9 "$SWIFT_PROXY_PID" 2>/dev/null
	t_wait 10 bash -c "! kill -0 $SWIFT_PROXY_PID"
}

swift_proxy_restart() {
	local old=$SWIFT_PROXY_PID
	SWIFT_PROXY_PID=$(_swift_run proxy "$SWIFT_PORT")
	SWIFT_PIDS=${SWIFT_PIDS/$old/$SWIFT_PROXY_PID}
	# ready when it answers a real request, not when it listens
	local i
	for i in $(seq 1 60); do
		s3ref keys "$SWIFT_BUCKET" none/ >/dev/null 2>&1 && return 0
		sleep 0.5
	done
	return 1
}
