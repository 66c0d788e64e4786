# A private nginx WebDAV server for the integration tests (bash; source
# after common.sh).  HTTPS on 127.0.0.1 and a free port, with a certificate
# from a test CA made here with openssl, and basic authentication.
#
#   tls_make_ca DIR            a test CA (DIR/ca.crt, DIR/ca.key) and a server
#                              certificate for 127.0.0.1/localhost (DIR/server.crt/.key);
#                              also DIR/other-ca.crt, a CA that did not sign it
#   nginx_start NAME           starts the server in $WALARCHIVE_TMP/NAME and sets
#       NGINX_PORT, NGINX_URL (https://127.0.0.1:PORT/dav), NGINX_CA (CA file),
#       NGINX_HTTP_URL (the same collection over plain http, on NGINX_HTTP_PORT),
#       NGINX_USER, NGINX_PASS, NGINX_ROOT (the directory behind /dav),
#       NGINX_DIR, NGINX_PID; the collection /dav exists and is empty
#   nginx_stop                 stops it (by PID); registered with t_cleanup
#   nginx_proxy_start NAME PORT  an HTTPS front (same CA) that passes every
#       request to http://127.0.0.1:PORT (used for S3 over TLS); sets
#       PROXY_PORT, PROXY_PID
#
# nginx needs the nginx-extras package (the dav_ext module adds PROPFIND).

NGINX_BIN=${NGINX_BIN:-/usr/sbin/nginx}
NGINX_DAV_EXT=${NGINX_DAV_EXT:-/usr/lib/nginx/modules/ngx_http_dav_ext_module.so}

tls_make_ca() {
	local dir=$1
	mkdir -p "$dir"
	[ -f "$dir/server.crt" ] && return 0
	(
		cd "$dir" || exit 1
		openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj "/CN=walarchive test ca" \
			-keyout ca.key -out ca.crt
		openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj "/CN=another test ca" \
			-keyout other-ca.key -out other-ca.crt
		openssl req -newkey rsa:2048 -nodes -subj "/CN=127.0.0.1" \
			-keyout server.key -out server.csr
		printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=CA:FALSE\n' > ext.cnf
		openssl x509 -req -in server.csr -CA ca.crt -CAkey ca.key -CAcreateserial \
			-days 2 -extfile ext.cnf -out server.crt
	) >"$dir/openssl.log" 2>&1 || { cat "$dir/openssl.log" >&2; return 1; }
	chmod 644 "$dir"/*.crt
}

# nginx's temp and log paths, common to both configurations below.
_nginx_common_conf() {
	local dir=$1
	cat <<EOF
load_module $NGINX_DAV_EXT;
worker_processes 1;
user www-data;
error_log $dir/error.log;
pid $dir/nginx.pid;
events { worker_connections 128; }
EOF
}

_nginx_http_common() {
	local dir=$1
	cat <<EOF
	access_log $dir/access.log;
	client_body_temp_path $dir/tmp/body;
	proxy_temp_path $dir/tmp/proxy;
	fastcgi_temp_path $dir/tmp/fastcgi;
	uwsgi_temp_path $dir/tmp/uwsgi;
	scgi_temp_path $dir/tmp/scgi;
	ssl_certificate $dir/tls/server.crt;
	ssl_certificate_key $dir/tls/server.key;
EOF
}

# _nginx_run DIR: starts nginx with DIR/nginx.conf; prints the master's PID.
_nginx_run() {
	local dir=$1 port=$2
	"$NGINX_BIN" -t -p "$dir" -c "$dir/nginx.conf" >"$dir/check.log" 2>&1 || {
		cat "$dir/check.log" >&2; return 1; }
	"$NGINX_BIN" -p "$dir" -c "$dir/nginx.conf" -g 'daemon off;' >>"$dir/stderr.log" 2>&1 &
	local pid=$!
	if ! t_wait 10 bash -c "echo > /dev/tcp/127.0.0.1/$port"; then
		cat "$dir/error.log" "$dir/stderr.log" >&2
		kill "$pid" 2>/dev/null
		return 1
	fi
	echo "$pid"
}

nginx_start() {
	local name=$1
	NGINX_DIR=$WALARCHIVE_TMP/$name
	mkdir -p "$NGINX_DIR/tmp" "$NGINX_DIR/www/dav"
	tls_make_ca "$NGINX_DIR/tls" || return 1
	NGINX_PORT=$(t_free_port)
	NGINX_HTTP_PORT=$(t_free_port)
	while [ "$NGINX_HTTP_PORT" = "$NGINX_PORT" ]; do NGINX_HTTP_PORT=$(t_free_port); done
	NGINX_HTTP_URL=http://127.0.0.1:$NGINX_HTTP_PORT/dav
	NGINX_USER=walarchive
	NGINX_PASS=$(openssl rand -hex 12)
	NGINX_ROOT=$NGINX_DIR/www/dav
	NGINX_CA=$NGINX_DIR/tls/ca.crt
	NGINX_URL=https://127.0.0.1:$NGINX_PORT/dav
	printf '%s:%s\n' "$NGINX_USER" "$(openssl passwd -apr1 "$NGINX_PASS")" > "$NGINX_DIR/htpasswd"
	chown -R www-data:www-data "$NGINX_DIR/www" "$NGINX_DIR/tmp"
	chmod 644 "$NGINX_DIR/htpasswd"
	{
		_nginx_common_conf "$NGINX_DIR"
		echo "http {"
		_nginx_http_common "$NGINX_DIR"
		cat <<EOF
	server {
		listen 127.0.0.1:$NGINX_PORT ssl;
		listen 127.0.0.1:$NGINX_HTTP_PORT;
		location /dav/ {
			root $NGINX_DIR/www;
			dav_methods PUT DELETE MKCOL COPY MOVE;
			dav_ext_methods PROPFIND OPTIONS;
			dav_access user:rw;
			create_full_put_path on;
			client_max_body_size 0;
			auth_basic "walarchive test";
			auth_basic_user_file $NGINX_DIR/htpasswd;
		}
	}
}
EOF
	} > "$NGINX_DIR/nginx.conf"
	NGINX_PID=$(_nginx_run "$NGINX_DIR" "$NGINX_PORT") || return 1
	t_cleanup "nginx_stop"
	export NGINX_PORT NGINX_URL NGINX_HTTP_PORT NGINX_HTTP_URL NGINX_CA NGINX_USER NGINX_PASS NGINX_ROOT NGINX_DIR NGINX_PID
}

# Stops the server started by nginx_start (fast shutdown, then by force).
nginx_stop() {
	[ -n "${NGINX_PID:-}" ] || return 0
	kill "$NGINX_PID" 2>/dev/null
	t_wait 10 bash -c "! kill -0 $NGINX_PID" || kill -9 "$NGINX_PID" 2>/dev/null
	NGINX_PID=
}

# Starts nginx again on the same port and files after nginx_stop.
nginx_restart() {
	NGINX_PID=$(_nginx_run "$NGINX_DIR" "$NGINX_PORT") || return 1
}

nginx_proxy_start() {
	local name=$1 upstream=$2
	local dir=$WALARCHIVE_TMP/$name
	mkdir -p "$dir/tmp"
	tls_make_ca "$dir/tls" || return 1
	chown -R www-data:www-data "$dir/tmp"
	PROXY_PORT=$(t_free_port)
	{
		_nginx_common_conf "$dir"
		echo "http {"
		_nginx_http_common "$dir"
		cat <<EOF
	server {
		listen 127.0.0.1:$PROXY_PORT ssl;
		client_max_body_size 0;
		proxy_request_buffering off;
		proxy_buffering off;
		location / {
			proxy_pass http://127.0.0.1:$upstream;
			proxy_set_header Host \$http_host;
			proxy_http_version 1.1;
		}
	}
}
EOF
	} > "$dir/nginx.conf"
	PROXY_PID=$(_nginx_run "$dir" "$PROXY_PORT") || return 1
	PROXY_CA=$dir/tls/ca.crt
	t_cleanup "kill $PROXY_PID"
	export PROXY_PORT PROXY_PID PROXY_CA
}

# relay_start LISTEN_PORT TARGET_PORT RATE [CORRUPT_AT]: a throttled TCP
# relay (slowrelay.py), its stderr in $WALARCHIVE_TMP/relay.log; sets RELAY_PID.
relay_start() {
	/usr/bin/python3 "$WALARCHIVE_SRC/tests/lib/slowrelay.py" "$@" 2>>"$WALARCHIVE_TMP/relay.log" &
	RELAY_PID=$!
	t_cleanup "kill $RELAY_PID"
	t_wait 10 bash -c "echo > /dev/tcp/127.0.0.1/$1"
}

# relay_bytes PORT DIRECTION: bytes the relay on PORT has forwarded "up" (to
# the server) or "down" (back to the client), to the last 64 KiB
relay_bytes() {
	local n
	n=$(sed -n "s/^relay $1 $2 \([0-9]*\)$/\1/p" "$WALARCHIVE_TMP/relay.log" 2>/dev/null | tail -n 1)
	echo "${n:-0}"
}

# relay_flowing PORT DIRECTION BYTES PID: waits (30 s at most) until the relay
# on PORT has forwarded BYTES more in DIRECTION than when called while process
# PID still runs: a transfer is under way.  Fails if PID ends first.
relay_flowing() {
	local want=$(( $(relay_bytes "$1" "$2") + $3 )) end=$((SECONDS + 30))
	while kill -0 "$4" 2>/dev/null; do
		[ "$(relay_bytes "$1" "$2")" -ge "$want" ] && kill -0 "$4" 2>/dev/null && return 0
		[ $SECONDS -lt $end ] || return 1
		sleep 0.1
	done
	return 1
}
