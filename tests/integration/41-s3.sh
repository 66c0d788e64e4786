#!/bin/bash
# SANITIZE_OK: also run against the ASan+UBSan build by tests/run.sh
# VALGRIND_OK: also run with every program under valgrind memcheck by tests/run.sh
# walpush, walfetch and walprune against a real S3 server that checks
# Signature V4 (OpenStack Swift with s3api) behind an HTTPS front from a
# test CA: round trip, no-replace, paginated listings, refused secret,
# region and certificate, a body damaged in transit, and the server going
# away mid-transfer.
. "$(dirname "$0")/../lib/common.sh"
. "$WALARCHIVE_SRC/tests/lib/pg.sh"
. "$WALARCHIVE_SRC/tests/lib/walgen.sh"
. "$WALARCHIVE_SRC/tests/lib/nginx.sh"
. "$WALARCHIVE_SRC/tests/lib/swift.sh"

BIN=$WALARCHIVE_BIN
walgen src 4 || { t_fail "make WAL segments with PostgreSQL"; t_done; }
W=$WALGEN_DIR
PGD=$WALGEN_PGDATA
SYSID=$(/usr/lib/postgresql/15/bin/pg_controldata "$PGD" | awk -F': *' '/Database system identifier/{print $2}')
t_setup "start swift with s3api" swift_start swift walarchive || t_done
t_setup "start the https front" nginx_proxy_start tlsfront "$SWIFT_PORT" || t_done
t_setup_ok "swift s3api on port $SWIFT_PORT, https front on $PROXY_PORT"

CONF=$WALARCHIVE_TMP/walarchive.conf
walarchive_conf "$CONF" "archive=s3://$SWIFT_BUCKET/fleet" "s3_endpoint=https://127.0.0.1:$PROXY_PORT" \
	"s3_uri_style=path" "s3_region=us-east-1" "tls_ca_file=$PROXY_CA" "timeout=5" "retries=1"
export WALARCHIVE_CONFIG=$CONF
# credentials from the environment, as AWS tools take them
export AWS_ACCESS_KEY_ID=$SWIFT_ACCESS AWS_SECRET_ACCESS_KEY=$SWIFT_SECRET
S1=000000010000000000000001 S2=000000010000000000000002 S3=000000010000000000000003
S4=000000010000000000000004
KP=fleet/$SYSID/0000000100000000
keys() { swift_keys "$SWIFT_BUCKET" "$KP/" | sed "s|^$KP/||" | tr '\n' ' '; }

# --- put / get -------------------------------------------------------------
t_exit "walpush $S1" 0 "$BIN/walpush" -D "$PGD" "$W/$S1" "$S1"
t_eq "object stored under its key" "$(keys)" "$S1.lz4 "
out=$("$BIN/walpush" -D "$PGD" "$W/$S1" "$S1" 2>&1); rc=$?
t_eq "walpush of identical content again exits 0" "$rc" 0
t_match "and says it was already archived" "$out" "already archived"
for s in $S2 $S3; do "$BIN/walpush" -D "$PGD" "$W/$s" "$s" || t_fail "walpush $s"; done
t_exit "walfetch $S2" 0 "$BIN/walfetch" -D "$PGD" "$S2" "$WALARCHIVE_TMP/got"
t_check "fetched bytes identical" cmp "$WALARCHIVE_TMP/got" "$W/$S2"
t_exit "walfetch of a missing segment exits 1" 1 \
	"$BIN/walfetch" -D "$PGD" 000000010000000000000099 "$WALARCHIVE_TMP/none"

# --- never replaces a different object ------------------------------------
echo "1	0/3000000	no recovery target specified" > "$WALARCHIVE_TMP/h1"
echo "1	0/4000000	a different history" > "$WALARCHIVE_TMP/h2"
t_exit "walpush 00000002.history" 0 "$BIN/walpush" -D "$PGD" "$WALARCHIVE_TMP/h1" 00000002.history
out=$("$BIN/walpush" -D "$PGD" "$WALARCHIVE_TMP/h2" 00000002.history 2>&1); rc=$?
t_eq "walpush of different content under the same name exits 4" "$rc" 4
"$BIN/walfetch" -D "$PGD" 00000002.history "$WALARCHIVE_TMP/h.got"
t_check "the archived object is untouched" cmp "$WALARCHIVE_TMP/h.got" "$WALARCHIVE_TMP/h1"

# --- listings longer than one page (WALARCHIVE_S3_MAX_KEYS=1: one key a page)
out=$(WALARCHIVE_S3_MAX_KEYS=1 "$BIN/walprune" -D "$PGD" --dry-run -v --before $S3 2>&1); rc=$?
t_eq "paginated walprune --dry-run exits 0" "$rc" 0
t_eq "it sees both segments before the horizon, one page each" \
	"$(printf '%s\n' "$out" | grep -c -E "$S1|$S2")" 2
t_exit "paginated walprune --before $S3" 0 env WALARCHIVE_S3_MAX_KEYS=1 \
	"$BIN/walprune" -D "$PGD" --before $S3
t_eq "segments before the horizon removed, the rest kept" "$(keys)" "$S3.lz4 "
t_eq "history file kept" "$(swift_keys "$SWIFT_BUCKET" "fleet/$SYSID/0000" | grep -c history)" 1

# --- credentials, region, certificates -------------------------------------
out=$(AWS_SECRET_ACCESS_KEY=wrong "$BIN/walpush" -D "$PGD" "$W/$S4" "$S4" 2>&1); rc=$?
t_eq "wrong secret key: exit 8" "$rc" 8
t_match "wrong secret key: clear message" "$out" "403 forbidden: SignatureDoesNotMatch"
out=$(AWS_ACCESS_KEY_ID=nobody:none "$BIN/walpush" -D "$PGD" "$W/$S4" "$S4" 2>&1); rc=$?
t_eq "unknown access key: exit 8" "$rc" 8
out=$("$BIN/walpush" -D "$PGD" --set s3_region=eu-west-1 "$W/$S4" "$S4" 2>&1); rc=$?
t_eq "wrong region: a configuration error (exit 3)" "$rc" 3
t_match "wrong region: the server's reason" "$out" "AuthorizationHeaderMalformed.*eu-west-1"
out=$(env -u AWS_SECRET_ACCESS_KEY "$BIN/walpush" -D "$PGD" "$W/$S4" "$S4" 2>&1); rc=$?
t_eq "no secret key at all: exit 3" "$rc" 3
out=$("$BIN/walpush" -D "$PGD" --set tls_ca_file= "$W/$S4" "$S4" 2>&1); rc=$?
t_eq "untrusted certificate refused: exit 8" "$rc" 8
t_match "with a message naming the certificate" "$out" "certificate not trusted"
t_eq "nothing stored after the refusals" "$(keys)" "$S3.lz4 "
out=$("$BIN/walpush" -D "$PGD" --set archive=s3://nosuchbucket/x "$W/$S4" "$S4" 2>&1); rc=$?
t_match "missing bucket named" "$out" "nosuchbucket.*(does not exist|NoSuchBucket)"

# --- a body damaged in transit is refused by the server -------------------
RELAY_PORT=$(t_free_port)
t_setup "start the corrupting relay" relay_start "$RELAY_PORT" "$SWIFT_PORT" 100000000 300000
out=$("$BIN/walpush" -D "$PGD" --set "s3_endpoint=http://127.0.0.1:$RELAY_PORT" --set retries=0 \
	--set compress=none "$W/$S4" "$S4" 2>&1); rc=$?
t_setup "the relay damaged the upload" grep -q corrupted "$WALARCHIVE_TMP/relay.log"
t_match "walpush of a damaged body fails (exit $rc)" "$rc" '^[1-9][0-9]*$'
t_match "the server's checksum refusal is reported" "$out" "BadDigest|XAmzContentSHA256Mismatch"
t_eq "nothing stored" "$(keys)" "$S3.lz4 "
kill "$RELAY_PID"

# --- the server stops in the middle of a transfer -------------------------
RELAY_PORT=$(t_free_port)
t_setup "start the slow relay" relay_start "$RELAY_PORT" "$SWIFT_PORT" 2000000
SLOW=(--set "s3_endpoint=http://127.0.0.1:$RELAY_PORT" --set compress=none --set retries=1)
"$BIN/walpush" -D "$PGD" "${SLOW[@]}" "$W/$S4" "$S4" 2>"$WALARCHIVE_TMP/push.err" &
PUSH=$!
# the server stops only once the upload's bytes flow (1 MB of the 16 MiB)
relay_flowing "$RELAY_PORT" up 1000000 $PUSH
t_setup "the upload is under way when the server stops ($(relay_bytes "$RELAY_PORT" up) bytes relayed)" test $? -eq 0
swift_proxy_stop
wait $PUSH; rc=$?
t_match "walpush with the server stopped mid-upload fails (exit $rc)" "$rc" '^[1-9][0-9]*$'
t_match "and says why" "$(cat "$WALARCHIVE_TMP/push.err")" "walpush: .*(failed|timed out|reset|closed|empty reply)"
swift_proxy_restart || t_fail "restart the swift proxy"
t_eq "no object under the final name" "$(keys)" "$S3.lz4 "

"$BIN/walpush" -D "$PGD" --set compress=none "$W/$S4" "$S4" || t_fail "walpush $S4 (uncompressed)"
mkdir -p "$WALARCHIVE_TMP/dest"
"$BIN/walfetch" -D "$PGD" "${SLOW[@]}" "$S4" "$WALARCHIVE_TMP/dest/$S4" 2>"$WALARCHIVE_TMP/fetch.err" &
FETCH=$!
relay_flowing "$RELAY_PORT" down 1000000 $FETCH
t_setup "the download is under way when the server stops ($(relay_bytes "$RELAY_PORT" down) bytes relayed)" test $? -eq 0
swift_proxy_stop
wait $FETCH; rc=$?
t_match "walfetch with the server stopped mid-download fails, not with 0 or 1 (exit $rc)" \
	"$rc" '^([2-9]|[1-9][0-9]+)$'
t_eq "no destination file and no temporary file" "$(ls -A "$WALARCHIVE_TMP/dest" | wc -l)" 0
swift_proxy_restart || t_fail "restart the swift proxy"
t_exit "after the restart walfetch succeeds" 0 "$BIN/walfetch" -D "$PGD" "$S4" "$WALARCHIVE_TMP/dest/$S4"
t_check "with identical bytes" cmp "$WALARCHIVE_TMP/dest/$S4" "$W/$S4"

t_done
