#!/bin/bash
# SANITIZE_OK: also run against the ASan+UBSan build by tests/run.sh
# VALGRIND_OK: also run with every program under valgrind memcheck by tests/run.sh
# walpush, walfetch and walprune against a real nginx WebDAV server over
# HTTPS (test CA, basic authentication): round trip, no-replace, pruning,
# refused password and certificate, a warning (or a refusal) when the
# password would go over plain http, and the server going away mid-transfer.
. "$(dirname "$0")/../lib/common.sh"
. "$WALARCHIVE_SRC/tests/lib/pg.sh"
. "$WALARCHIVE_SRC/tests/lib/walgen.sh"
. "$WALARCHIVE_SRC/tests/lib/nginx.sh"

BIN=$WALARCHIVE_BIN
walgen src 4 || { t_fail "make WAL segments with PostgreSQL"; t_done; }
W=$WALGEN_DIR
PGD=$WALGEN_PGDATA
SYSID=$(/usr/lib/postgresql/15/bin/pg_controldata "$PGD" | awk -F': *' '/Database system identifier/{print $2}')
t_setup "nginx webdav with tls and basic auth" nginx_start dav || t_done

CONF=$WALARCHIVE_TMP/walarchive.conf
walarchive_conf "$CONF" "archive=$NGINX_URL" "http_user=$NGINX_USER" "http_password=$NGINX_PASS" \
	"tls_ca_file=$NGINX_CA" "timeout=5" "retries=1"
export WALARCHIVE_CONFIG=$CONF
S1=000000010000000000000001 S2=000000010000000000000002 S3=000000010000000000000003
S4=000000010000000000000004
DIR=$NGINX_ROOT/$SYSID/0000000100000000

# --- put / get -------------------------------------------------------------
t_exit "walpush $S1" 0 "$BIN/walpush" -D "$PGD" "$W/$S1" "$S1"
t_check "object stored under its final name" test -f "$DIR/$S1.lz4"
t_eq "lz4 -d of the stored object gives the segment" \
	"$(lz4 -dc "$DIR/$S1.lz4" | cmp - "$W/$S1" && echo same)" same
t_eq "no temporary object left" "$(find "$NGINX_ROOT" -name '*.tmp' | wc -l)" 0
out=$("$BIN/walpush" -D "$PGD" "$W/$S1" "$S1" 2>&1); rc=$?
t_eq "walpush of identical content again exits 0" "$rc" 0
t_match "and says it was already archived" "$out" "already archived"
for s in $S2 $S3; do "$BIN/walpush" -D "$PGD" "$W/$s" "$s" || t_fail "walpush $s"; done

t_exit "walfetch $S2" 0 "$BIN/walfetch" -D "$PGD" "$S2" "$WALARCHIVE_TMP/got"
t_check "fetched bytes identical" cmp "$WALARCHIVE_TMP/got" "$W/$S2"
t_exit "walfetch of a missing segment exits 1" 1 \
	"$BIN/walfetch" -D "$PGD" 000000010000000000000099 "$WALARCHIVE_TMP/none"
t_check "and leaves no file" test ! -e "$WALARCHIVE_TMP/none"

# --- never replaces a different object (history files carry no header) ----
echo "1	0/3000000	no recovery target specified" > "$WALARCHIVE_TMP/h1"
echo "1	0/4000000	a different history" > "$WALARCHIVE_TMP/h2"
t_exit "walpush 00000002.history" 0 "$BIN/walpush" -D "$PGD" "$WALARCHIVE_TMP/h1" 00000002.history
out=$("$BIN/walpush" -D "$PGD" "$WALARCHIVE_TMP/h2" 00000002.history 2>&1); rc=$?
t_eq "walpush of different content under the same name exits 4" "$rc" 4
t_match "with a message saying so" "$out" "different content"
"$BIN/walfetch" -D "$PGD" 00000002.history "$WALARCHIVE_TMP/h.got"
t_check "the archived history file is untouched" cmp "$WALARCHIVE_TMP/h.got" "$WALARCHIVE_TMP/h1"

# --- list / remove -----------------------------------------------------------
out=$("$BIN/walprune" -D "$PGD" --dry-run --before $S3 2>&1); rc=$?
t_eq "walprune --dry-run exits 0" "$rc" 0
t_check "dry run removes nothing" test -f "$DIR/$S1.lz4" -a -f "$DIR/$S2.lz4"
t_exit "walprune --before $S3" 0 "$BIN/walprune" -D "$PGD" --before $S3
t_eq "segments before the horizon removed, the rest kept" \
	"$(cd "$DIR" && ls | tr '\n' ' ')" "$S3.lz4 "
t_check "history file kept" test -f "$NGINX_ROOT/$SYSID/00000002.history.lz4" -o \
	-f "$NGINX_ROOT/$SYSID/00000002.history"

# --- authentication and certificates -------------------------------------
# a secret goes in a file, never on the command line (--set refuses it)
out=$("$BIN/walpush" -D "$PGD" --set http_password=wrong "$W/$S4" "$S4" 2>&1); rc=$?
t_eq "--set with a secret: refused, exit 3" "$rc" 3
t_match "--set with a secret: says where it belongs" "$out" "http_password.*configuration file"
WRONG=$WALARCHIVE_TMP/wrong.conf
sed "s|^http_password = .*|http_password = wrong|" "$CONF" > "$WRONG"; chmod 600 "$WRONG"
out=$("$BIN/walpush" -c "$WRONG" -D "$PGD" "$W/$S4" "$S4" 2>&1); rc=$?
t_eq "wrong password: exit 8" "$rc" 8
t_match "wrong password: clear message" "$out" "401 unauthorized"
t_check "wrong password: nothing stored" test ! -e "$DIR/$S4.lz4"
out=$("$BIN/walfetch" -c "$WRONG" -D "$PGD" --set fetch_on_error=continue "$S3" "$WALARCHIVE_TMP/x" 2>&1); rc=$?
t_eq "walfetch with a wrong password: exit 8, not 1" "$rc" 8
out=$("$BIN/walpush" -D "$PGD" --set tls_ca_file= "$W/$S4" "$S4" 2>&1); rc=$?
t_eq "certificate from an unknown CA refused (system trust store): exit 8" "$rc" 8
t_match "with a message naming the certificate" "$out" "certificate not trusted"
out=$("$BIN/walpush" -D "$PGD" --set "tls_ca_file=$NGINX_DIR/tls/other-ca.crt" "$W/$S4" "$S4" 2>&1); rc=$?
t_eq "certificate refused with another CA in tls_ca_file: exit 8" "$rc" 8
t_check "nothing stored after the refusals" test ! -e "$DIR/$S4.lz4"
t_exit "tls_verify = off accepts it" 0 "$BIN/walfetch" -D "$PGD" --set tls_ca_file= \
	--set tls_verify=off "$S3" "$WALARCHIVE_TMP/noverify"

# --- basic authentication over plain http ------------------------------------
# the password goes in clear: every run says so, once, and works on
PLAIN=$WALARCHIVE_TMP/plain.conf
sed "s|^archive = .*|archive = $NGINX_HTTP_URL|" "$CONF" > "$PLAIN"; chmod 600 "$PLAIN"
WARN="warning: $NGINX_HTTP_URL: the password is sent in clear (basic authentication over http://); use https://"
"$BIN/walpush" -c "$PLAIN" -D "$PGD" "$W/$S1" "$S1" 2>"$WALARCHIVE_TMP/plain.err"; rc=$?
t_eq "walpush over http with a password: exit 0" "$rc" 0
t_eq "and one line warns that the password goes in clear" "$(cat "$WALARCHIVE_TMP/plain.err")" "walpush: $WARN"
t_check "the warning does not show the password" bash -c "! grep -q -- '$NGINX_PASS' '$WALARCHIVE_TMP/plain.err'"
"$BIN/walfetch" -c "$PLAIN" -D "$PGD" "$S3" "$WALARCHIVE_TMP/plain.got" 2>"$WALARCHIVE_TMP/plain.err"; rc=$?
t_eq "walfetch over http: exit 0" "$rc" 0
t_eq "walfetch warns too, in one line" "$(cat "$WALARCHIVE_TMP/plain.err")" "walfetch: $WARN"
"$BIN/walprune" -c "$PLAIN" -D "$PGD" --before $S1 2>"$WALARCHIVE_TMP/plain.err"; rc=$?
t_eq "walprune over http: exit 0" "$rc" 0
t_check "walprune warns too" grep -qxF "walprune: $WARN" "$WALARCHIVE_TMP/plain.err"
"$BIN/walfetch" -D "$PGD" "$S3" "$WALARCHIVE_TMP/tls.got" 2>"$WALARCHIVE_TMP/tls.err"; rc=$?
t_eq "over https: exit 0 and not a word" "$rc:$(cat "$WALARCHIVE_TMP/tls.err")" "0:"
"$BIN/walfetch" -c "$PLAIN" -D "$PGD" --set http_cleartext_auth=refuse --set fetch_on_error=continue \
	"$S3" "$WALARCHIVE_TMP/refused.got" 2>"$WALARCHIVE_TMP/plain.err"; rc=$?
t_eq "http_cleartext_auth = refuse: exit 3" "$rc" 3
t_match "naming the file and line of archive" "$(cat "$WALARCHIVE_TMP/plain.err")" \
	"^walfetch: $PLAIN:[0-9]+: $NGINX_HTTP_URL: the password would be sent in clear .*use https://\$"
t_check "and nothing was delivered" test ! -e "$WALARCHIVE_TMP/refused.got"
requests=$(wc -l < "$NGINX_DIR/access.log")
"$BIN/walpush" -c "$PLAIN" -D "$PGD" --set http_cleartext_auth=refuse "$W/$S1" "$S1" 2>/dev/null; rc=$?
t_eq "walpush with http_cleartext_auth = refuse: exit 3" "$rc" 3
t_eq "without a request to the server" "$(wc -l < "$NGINX_DIR/access.log")" "$requests"

# --- the server stops in the middle of a transfer -------------------------
RELAY_PORT=$(t_free_port)
t_setup "start the relay" relay_start "$RELAY_PORT" "$NGINX_PORT" 2000000
SLOW=(--set "archive=https://127.0.0.1:$RELAY_PORT/dav" --set compress=none --set retries=1)
"$BIN/walpush" -D "$PGD" "${SLOW[@]}" "$W/$S4" "$S4" 2>"$WALARCHIVE_TMP/push.err" &
PUSH=$!
# the server stops only once the upload's bytes flow (1 MB of the 16 MiB)
relay_flowing "$RELAY_PORT" up 1000000 $PUSH
t_setup "the upload is under way when the server stops ($(relay_bytes "$RELAY_PORT" up) bytes relayed)" test $? -eq 0
nginx_stop
wait $PUSH; rc=$?
t_match "walpush with the server stopped mid-upload fails (exit $rc)" "$rc" '^[1-9][0-9]*$'
t_match "and says why" "$(cat "$WALARCHIVE_TMP/push.err")" "walpush: .*(failed|timed out|reset|closed|empty reply)"
nginx_restart || t_fail "restart nginx"
t_check "no object under the final name" test ! -e "$DIR/$S4" -a ! -e "$DIR/$S4.lz4"

"$BIN/walpush" -D "$PGD" --set compress=none "$W/$S4" "$S4" || t_fail "walpush $S4 (uncompressed)"
mkdir -p "$WALARCHIVE_TMP/dest"
"$BIN/walfetch" -D "$PGD" "${SLOW[@]}" "$S4" "$WALARCHIVE_TMP/dest/$S4" 2>"$WALARCHIVE_TMP/fetch.err" &
FETCH=$!
relay_flowing "$RELAY_PORT" down 1000000 $FETCH
t_setup "the download is under way when the server stops ($(relay_bytes "$RELAY_PORT" down) bytes relayed)" test $? -eq 0
nginx_stop
wait $FETCH; rc=$?
t_match "walfetch with the server stopped mid-download fails, not with 0 or 1 (exit $rc)" \
	"$rc" '^([2-9]|[1-9][0-9]+)$'
t_eq "no destination file and no temporary file" "$(ls -A "$WALARCHIVE_TMP/dest" | wc -l)" 0
nginx_restart || t_fail "restart nginx"
t_exit "after the restart walfetch succeeds" 0 "$BIN/walfetch" -D "$PGD" "$S4" "$WALARCHIVE_TMP/dest/$S4"
t_check "with identical bytes" cmp "$WALARCHIVE_TMP/dest/$S4" "$W/$S4"

t_done
