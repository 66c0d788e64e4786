#!/bin/bash
# Not in the ASan pass (a minute of the run's time): the driver runs under
# ASan in 35-store-contract.
# walpush, walfetch and walprune against Azurite, Microsoft's Azure Storage
# emulator, which checks Shared Key and SAS signatures like Azure does,
# behind an HTTPS front from a test CA: round trip read back by the Azure
# SDK (and an object the SDK wrote restored), no-replace, paginated
# listings, SAS tokens, refused keys and certificates, secrets kept out of
# the command line and of every message, a body damaged in transit, and
# the server going away mid-transfer.
. "$(dirname "$0")/../lib/common.sh"
. "$WALARCHIVE_SRC/tests/lib/pg.sh"
. "$WALARCHIVE_SRC/tests/lib/walgen.sh"
. "$WALARCHIVE_SRC/tests/lib/nginx.sh"
. "$WALARCHIVE_SRC/tests/lib/azurite.sh"

BIN=$WALARCHIVE_BIN
T=$WALARCHIVE_TMP
walgen src 6 || { t_fail "make WAL segments with PostgreSQL"; t_done; }
W=$WALGEN_DIR
PGD=$WALGEN_PGDATA
SYSID=$(/usr/lib/postgresql/15/bin/pg_controldata "$PGD" | awk -F': *' '/Database system identifier/{print $2}')
t_setup "start azurite" azurite_start azurite walarchive || t_done
t_setup "start the https front" nginx_proxy_start tlsfront "$AZURITE_PORT" || t_done
t_setup_ok "azurite on port $AZURITE_PORT, https front on $PROXY_PORT"

CONF=$T/walarchive.conf
walarchive_conf "$CONF" "archive=azure://$AZURITE_ACCOUNT/$AZURITE_CONTAINER/fleet" \
	"azure_endpoint=https://127.0.0.1:$PROXY_PORT/$AZURITE_ACCOUNT" \
	"azure_account_key=$AZURITE_KEY" "tls_ca_file=$PROXY_CA" "timeout=5" "retries=1"
export WALARCHIVE_CONFIG=$CONF
S1=000000010000000000000001 S2=000000010000000000000002 S3=000000010000000000000003
S4=000000010000000000000004 S5=000000010000000000000005
S6=000000010000000000000006 # only where the server is killed (below)
KP=fleet/$SYSID/0000000100000000
keys() { azurite_keys "$AZURITE_CONTAINER" "$KP/" | sed "s|^$KP/||" | tr '\n' ' '; }

# --- put / get, read back by the Azure SDK ---------------------------------
t_exit "walpush $S1" 0 "$BIN/walpush" -D "$PGD" "$W/$S1" "$S1"
t_eq "blob stored under its name" "$(keys)" "$S1.lz4 "
azref get "$AZURITE_CONTAINER" "$KP/$S1.lz4" "$T/sdk.lz4"
t_check "the blob the SDK reads is an LZ4 frame of the segment" \
	sh -c "lz4 -dc '$T/sdk.lz4' | cmp -s - '$W/$S1'"
read -r btype bmd5 <<< "$(azref props "$AZURITE_CONTAINER" "$KP/$S1.lz4")"
t_eq "a block blob" "$btype" "BlobType.BLOCKBLOB"
t_eq "carrying the Content-MD5 walpush sent" "$bmd5" "$(md5sum < "$T/sdk.lz4" | cut -d' ' -f1)"
out=$("$BIN/walpush" -D "$PGD" "$W/$S1" "$S1" 2>&1); rc=$?
t_eq "walpush of identical content again exits 0" "$rc" 0
t_match "and says it was already archived" "$out" "already archived"
for s in $S2 $S3; do "$BIN/walpush" -D "$PGD" "$W/$s" "$s" || t_fail "walpush $s"; done
t_exit "walfetch $S2" 0 "$BIN/walfetch" -D "$PGD" "$S2" "$T/got"
t_check "fetched bytes identical" cmp "$T/got" "$W/$S2"
t_exit "walfetch of a missing segment exits 1" 1 \
	"$BIN/walfetch" -D "$PGD" 000000010000000000000099 "$T/none"
lz4 -q -c "$W/$S5" > "$T/s5.lz4"
azref put "$AZURITE_CONTAINER" "$KP/$S5.lz4" "$T/s5.lz4"
t_exit "walfetch restores a segment the SDK uploaded" 0 "$BIN/walfetch" -D "$PGD" "$S5" "$T/got5"
t_check "with identical bytes" cmp "$T/got5" "$W/$S5"

# --- never replaces a different object ------------------------------------
echo "1	0/3000000	no recovery target specified" > "$T/h1"
echo "1	0/4000000	a different history" > "$T/h2"
t_exit "walpush 00000002.history" 0 "$BIN/walpush" -D "$PGD" "$T/h1" 00000002.history
out=$("$BIN/walpush" -D "$PGD" "$T/h2" 00000002.history 2>&1); rc=$?
t_eq "walpush of different content under the same name exits 4" "$rc" 4
"$BIN/walfetch" -D "$PGD" 00000002.history "$T/h.got"
t_check "the archived object is untouched" cmp "$T/h.got" "$T/h1"

# --- listings longer than one page (one blob a page) -----------------------
out=$(WALARCHIVE_AZURE_MAX_RESULTS=1 "$BIN/walprune" -D "$PGD" --dry-run -v --before $S3 2>&1); rc=$?
t_eq "paginated walprune --dry-run exits 0" "$rc" 0
t_eq "it sees both segments before the horizon, one page each" \
	"$(printf '%s\n' "$out" | grep -c -E "$S1|$S2")" 2
t_exit "paginated walprune --before $S3" 0 env WALARCHIVE_AZURE_MAX_RESULTS=1 \
	"$BIN/walprune" -D "$PGD" --before $S3
t_eq "segments before the horizon removed, the rest kept" "$(keys)" "$S3.lz4 $S5.lz4 "
t_eq "history file kept" "$(azurite_keys "$AZURITE_CONTAINER" "fleet/$SYSID/0000" | grep -c history)" 1
t_exit "walcheck over the archive" 0 "$BIN/walcheck" -D "$PGD"

# --- a SAS token instead of the account key --------------------------------
SAS=$(azref sas "$AZURITE_CONTAINER")
SIG=$(printf '%s\n' "$SAS" | sed -n 's/.*sig=\([^&]*\).*/\1/p')
walarchive_conf "$T/sas.conf" "archive=azure://$AZURITE_ACCOUNT/$AZURITE_CONTAINER/fleet" \
	"azure_endpoint=$AZURITE_ENDPOINT" "azure_sas_token=?$SAS" "timeout=5" "retries=1" \
	"log_level=debug"
t_exit "walpush $S4 with a sas token" 0 env WALARCHIVE_CONFIG="$T/sas.conf" \
	"$BIN/walpush" -D "$PGD" "$W/$S4" "$S4"
t_exit "walfetch $S4 with a sas token" 0 env WALARCHIVE_CONFIG="$T/sas.conf" \
	"$BIN/walfetch" -D "$PGD" "$S4" "$T/got4"
t_check "with identical bytes" cmp "$T/got4" "$W/$S4"
out=$(WALARCHIVE_CONFIG="$T/sas.conf" "$BIN/walcheck" -D "$PGD" 2>&1)
t_match "walcheck names the credentials' origin" "$out" "sas token \(azure_sas_token"
t_match "and warns that the token travels in clear over http://" "$out" \
	"warning: azure_endpoint http://.*: the sas token is sent in clear"
out=$(WALARCHIVE_CONFIG="$T/sas.conf" "$BIN/walpush" -D "$PGD" --set http_cleartext_auth=refuse \
	"$W/$S4" "$S4" 2>&1); rc=$?
t_eq "http_cleartext_auth = refuse refuses it: exit 3" "$rc" 3
sed "s/sig=/sig=AAAA/" "$T/sas.conf" > "$T/badsas.conf"; chmod 600 "$T/badsas.conf"
out=$(WALARCHIVE_CONFIG="$T/badsas.conf" "$BIN/walpush" -D "$PGD" "$W/$S4" "$S4" 2>&1); rc=$?
t_eq "a forged sas token: exit 8" "$rc" 8
t_match "with the server's reason" "$out" "403 forbidden"
t_check "the sas signature appears in no message, even at log_level debug" \
	sh -c "! printf '%s' \"\$1\" | grep -qF -- \"\$2\"" _ "$out" "$SIG"

# --- credentials, certificates ---------------------------------------------
BADKEY=$(printf '%s' "$AZURITE_KEY" | tr 'A-Za-z' 'B-ZAb-za')
walarchive_conf "$T/badkey.conf" "archive=azure://$AZURITE_ACCOUNT/$AZURITE_CONTAINER/fleet" \
	"azure_endpoint=$AZURITE_ENDPOINT" "azure_account_key=$BADKEY" "timeout=5" "retries=1"
out=$(WALARCHIVE_CONFIG="$T/badkey.conf" "$BIN/walpush" -D "$PGD" "$W/$S4" "$S4" 2>&1); rc=$?
t_eq "wrong account key: exit 8" "$rc" 8
t_match "wrong account key: clear message" "$out" "403 forbidden: AuthorizationFailure"
out=$("$BIN/walpush" -D "$PGD" --set "azure_account_key=$AZURITE_KEY" "$W/$S4" "$S4" 2>&1); rc=$?
t_eq "the account key on the command line is refused: exit 3" "$rc" 3
t_match "as a secret that belongs in the file" "$out" "secrets belong in the configuration file"
walarchive_conf "$T/nokey.conf" "archive=azure://$AZURITE_ACCOUNT/$AZURITE_CONTAINER/fleet" \
	"azure_endpoint=$AZURITE_ENDPOINT"
out=$(WALARCHIVE_CONFIG="$T/nokey.conf" AZURE_STORAGE_KEY=$AZURITE_KEY \
	AZURE_STORAGE_SAS_TOKEN=$SAS "$BIN/walpush" -D "$PGD" "$W/$S4" "$S4" 2>&1); rc=$?
t_eq "no key in the file (the environment's are not taken): exit 3" "$rc" 3
t_match "naming both settings" "$out" "no credentials: set azure_account_key or azure_sas_token"
out=$("$BIN/walpush" -D "$PGD" --set tls_ca_file= "$W/$S4" "$S4" 2>&1); rc=$?
t_eq "untrusted certificate refused: exit 8" "$rc" 8
t_match "with a message naming the certificate" "$out" "certificate not trusted"
out=$("$BIN/walpush" -D "$PGD" --set archive=azure://$AZURITE_ACCOUNT/nosuchcontainer/x "$W/$S4" "$S4" 2>&1); rc=$?
t_match "missing container named" "$out" "nosuchcontainer: container does not exist"
out=$("$BIN/walpush" -D "$PGD" --set archive=azure://$AZURITE_ACCOUNT/No_Such/x "$W/$S4" "$S4" 2>&1); rc=$?
t_eq "an invalid container name: exit 3" "$rc" 3
t_eq "nothing stored after the refusals" "$(keys)" "$S3.lz4 $S4.lz4 $S5.lz4 "

# --- a body damaged in transit is refused by the server -------------------
# (S1, pruned above, is free again)
RELAY_PORT=$(t_free_port)
t_setup "start the corrupting relay" relay_start "$RELAY_PORT" "$AZURITE_PORT" 100000000 300000
out=$("$BIN/walpush" -D "$PGD" --set "azure_endpoint=http://127.0.0.1:$RELAY_PORT/$AZURITE_ACCOUNT" \
	--set retries=0 --set compress=none "$W/$S1" "$S1" 2>&1); rc=$?
t_setup "the relay damaged the upload" grep -q corrupted "$T/relay.log"
t_match "walpush of a damaged body fails (exit $rc)" "$rc" '^[1-9][0-9]*$'
t_match "the server's checksum refusal is reported" "$out" "Md5Mismatch|contentMD5 doesn't match"
t_eq "nothing stored" "$(keys)" "$S3.lz4 $S4.lz4 $S5.lz4 "
kill "$RELAY_PID"

# --- the server stops in the middle of a transfer -------------------------
# (a segment never stored here before: Azurite killed with SIGKILL forgets
# its latest changes, and brings back on restart a blob deleted just before)
RELAY_PORT=$(t_free_port)
t_setup "start the slow relay" relay_start "$RELAY_PORT" "$AZURITE_PORT" 2000000
SLOW=(--set "azure_endpoint=http://127.0.0.1:$RELAY_PORT/$AZURITE_ACCOUNT" --set compress=none --set retries=1)
"$BIN/walpush" -D "$PGD" "${SLOW[@]}" "$W/$S6" "$S6" 2>"$T/push.err" &
PUSH=$!
relay_flowing "$RELAY_PORT" up 1000000 $PUSH
t_setup "the upload is under way when the server stops ($(relay_bytes "$RELAY_PORT" up) bytes relayed)" test $? -eq 0
azurite_stop
wait $PUSH; rc=$?
t_match "walpush with the server stopped mid-upload fails (exit $rc)" "$rc" '^[1-9][0-9]*$'
t_match "and says why" "$(cat "$T/push.err")" "walpush: .*(failed|timed out|reset|closed|empty reply)"
azurite_restart || t_fail "restart azurite"
t_eq "no blob under the final name" "$(keys | grep -c "$S6")" 0

"$BIN/walpush" -D "$PGD" --set compress=none "$W/$S6" "$S6" || t_fail "walpush $S6 (uncompressed)"
mkdir -p "$T/dest"
"$BIN/walfetch" -D "$PGD" "${SLOW[@]}" "$S6" "$T/dest/$S6" 2>"$T/fetch.err" &
FETCH=$!
relay_flowing "$RELAY_PORT" down 1000000 $FETCH
t_setup "the download is under way when the server stops ($(relay_bytes "$RELAY_PORT" down) bytes relayed)" test $? -eq 0
azurite_stop
wait $FETCH; rc=$?
t_match "walfetch with the server stopped mid-download fails, not with 0 or 1 (exit $rc)" \
	"$rc" '^([2-9]|[1-9][0-9]+)$'
t_eq "no destination file and no temporary file" "$(ls -A "$T/dest" | wc -l)" 0
t_done
