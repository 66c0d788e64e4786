#!/bin/bash
# SANITIZE_OK: also run against the ASan+UBSan build by tests/run.sh
# The S3 credential chain and the PUT options against the real S3 server
# (Swift s3api, which checks every signature), with the cloud's credential
# endpoints played by tests/lib/fakeaws.py in AWS's formats: IMDSv2, STS
# AssumeRoleWithWebIdentity, the container endpoint, the shared files; a
# source that is set but fails stops with one line naming it; temporary
# credentials fetched again before they expire inside a push-ahead batch;
# s3_sse and s3_storage_class sent signed, and refused in one clear line.
. "$(dirname "$0")/../lib/common.sh"
. "$WALARCHIVE_SRC/tests/lib/pg.sh"
. "$WALARCHIVE_SRC/tests/lib/walgen.sh"
. "$WALARCHIVE_SRC/tests/lib/swift.sh"

BIN=$WALARCHIVE_BIN
T=$WALARCHIVE_TMP
walgen src 9 || { t_fail "make WAL segments with PostgreSQL"; t_done; }
W=$WALGEN_DIR
PGD=$WALGEN_PGDATA
SYSID=$(/usr/lib/postgresql/15/bin/pg_controldata "$PGD" | awk -F': *' '/Database system identifier/{print $2}')
mapfile -t SEGS < <(ls "$W" | grep -E '^[0-9A-F]{24}$' | sort)
t_setup "start swift with s3api" swift_start swift walarchive || t_done

ROLE_ARN=arn:aws:iam::123456789012:role/walarchive
JWT="eyJhbGciOiJSUzI1NiJ9.$(openssl rand -hex 24).sig"
ECS_AUTH="Bearer $(openssl rand -hex 8)"
FAKE_LOG=$T/fake.log
: >"$FAKE_LOG"
fake_start() {
	rm -f "$T/fake.port"
	"$SWIFT_PY" "$WALARCHIVE_SRC/tests/lib/fakeaws.py" --port-file "$T/fake.port" --log "$FAKE_LOG" \
		--access "$SWIFT_ACCESS" --secret "$SWIFT_SECRET" --upstream "$SWIFT_PORT" \
		--role-arn "$ROLE_ARN" --web-token "$JWT" --ecs-auth "$ECS_AUTH" >"$T/fake.out" 2>&1 &
	FAKE_PID=$!
	t_cleanup "kill $FAKE_PID"
	t_wait 10 test -s "$T/fake.port" || return 1
	FAKE_PORT=$(cat "$T/fake.port")
}
t_setup "start the fake credential endpoints" fake_start || t_done
t_setup_ok "swift s3api on $SWIFT_PORT, credential endpoints and s3 pass-through on $FAKE_PORT"
FAKE=http://127.0.0.1:$FAKE_PORT
# ctl KEY=VALUE...: changes the fake server's settings (see fakeaws.py)
ctl() {
	local kv args=()
	for kv in "$@"; do args+=(--data-urlencode "$kv"); done
	curl -sfG "${args[@]}" "$FAKE/_ctl" >/dev/null || echo "# ctl $* failed"
}
# fake_count KEY VALUE: log lines where KEY is VALUE since the mark
mark() { FAKE_MARK=$(wc -l <"$FAKE_LOG"); }
since() { tail -n +$((FAKE_MARK + 1)) "$FAKE_LOG"; }
fake_count() { since | grep -c "\"$1\": \"$2\""; }

# no credentials from this machine: a home of our own, no AWS_ variables
export HOME=$T/home
mkdir -p "$HOME"
for v in $(env | grep -o '^AWS_[A-Z_]*'); do unset "$v"; done
CONF=$T/walarchive.conf
walarchive_conf "$CONF" "archive=s3://$SWIFT_BUCKET/creds" "s3_endpoint=$FAKE" \
	"s3_uri_style=path" "s3_region=us-east-1" "timeout=5" "retries=1" "spool_dir=$T/spool" \
	"log_level=info" "push_ahead=0" "fetch_ahead=0"
install -d -m 700 "$T/spool"
export WALARCHIVE_CONFIG=$CONF
KP=creds/$SYSID/0000000100000000
keys() { swift_keys "$SWIFT_BUCKET" "$KP/" | sed "s|^$KP/||" | tr '\n' ' '; }
ALL=$T/all-messages
# run OUT_VAR CMD...: runs CMD, its stderr+stdout in $out (and kept for the
# secrets check at the end), its exit code in $rc
run() { out=$("$@" 2>&1); rc=$?; printf '%s\n' "$out" >>"$ALL"; }
push() { run env "$@" "$BIN/walpush" -D "$PGD" "$W/$SEG" "$SEG"; }
S1=${SEGS[0]} S2=${SEGS[1]} S3=${SEGS[2]}

# --- IMDSv2 ----------------------------------------------------------------
IMDS="AWS_EC2_METADATA_SERVICE_ENDPOINT=$FAKE"
mark
SEG=$S1 push $IMDS
t_eq "imds: walpush with instance-role credentials exits 0" "$rc" 0
t_eq "imds: the object is in the real bucket" "$(keys)" "$S1.lz4 "
t_eq "imds: a session token was asked for first (PUT /latest/api/token)" "$(fake_count imds token)" 1
t_eq "imds: one set of credentials fetched for the whole run" "$(fake_count issue imds)" 1
t_eq "imds: every s3 request carried the session token" \
	"$(since | grep '"s3"' | grep -vc '"token": "FAKE')" 0
run env $IMDS "$BIN/walcheck"
t_match "imds: walcheck names the source" "$out" "credentials: instance metadata \(role walarchive-role at $FAKE\)"
run env $IMDS "$BIN/walcheck" --json
t_match "imds: and so does walcheck --json" "$out" "\"credentials\": *\"instance metadata"
ctl role=
SEG=$S2 push $IMDS
t_eq "imds: no role attached: exit 3" "$rc" 3
t_match "imds: one line naming the source and cause" "$out" "instance metadata at $FAKE: no instance role attached"
ctl role=walarchive-role
CLOSED=$(t_free_port)
SEG=$S2 push AWS_EC2_METADATA_SERVICE_ENDPOINT=http://127.0.0.1:$CLOSED
t_eq "imds: an endpoint set but unreachable: exit 6" "$rc" 6
t_match "imds: naming it" "$out" "instance metadata at http://127.0.0.1:$CLOSED: .*(connect|refused)"
t_eq "imds: one line" "$(printf '%s\n' "$out" | wc -l)" 1
# an endpoint that takes the connection and never answers: the one-second
# budget (one retry when set explicitly), not the archive's timeout
"$SWIFT_PY" -c 'import socket, sys, time
s = socket.socket(); s.bind(("127.0.0.1", 0)); s.listen(8)
open(sys.argv[1], "w").write(str(s.getsockname()[1])); time.sleep(120)' "$T/mute.port" &
MUTE_PID=$!
t_cleanup "kill $MUTE_PID"
t_wait 10 test -s "$T/mute.port"
start=$(date +%s%N)
SEG=$S2 push AWS_EC2_METADATA_SERVICE_ENDPOINT=http://127.0.0.1:$(cat "$T/mute.port")
ms=$((($(date +%s%N) - start) / 1000000))
echo "# a metadata endpoint that never answers: given up after $ms ms"
t_match "imds: a silent endpoint times out, named" "$out" "instance metadata at .*timed out after 1 s"
t_check "imds: within seconds, not the 5 s timeout of the archive" test "$ms" -lt 5000
kill "$MUTE_PID"
# the usual address is not tried here (tests stay on loopback)
SEG=$S2 push AWS_EC2_METADATA_DISABLED=true
t_eq "nothing configured: exit 3" "$rc" 3
t_match "and the message says what to set and why metadata gave none" "$out" \
	"no credentials: set s3_access_key .*disabled by AWS_EC2_METADATA_DISABLED"

# --- web identity (STS AssumeRoleWithWebIdentity) ---------------------------
printf '%s\n' "$JWT" >"$T/web-token"
WEB="AWS_WEB_IDENTITY_TOKEN_FILE=$T/web-token AWS_ROLE_ARN=$ROLE_ARN AWS_ROLE_SESSION_NAME=db1"
STS="--set s3_sts_endpoint=$FAKE"
mark
SEG=$S2 run env $WEB "$BIN/walpush" -D "$PGD" $STS "$W/$S2" "$S2"
t_eq "web identity: walpush exits 0" "$rc" 0
t_eq "web identity: stored" "$(keys)" "$S1.lz4 $S2.lz4 "
t_eq "web identity: one AssumeRoleWithWebIdentity with the role and session name" \
	"$(since | grep -c "\"sts\": \"AssumeRoleWithWebIdentity\", \"role\": \"$ROLE_ARN\", \"session\": \"db1\"")" 1
run env $WEB AWS_ENDPOINT_URL_STS=$FAKE "$BIN/walcheck"
t_match "web identity: AWS_ENDPOINT_URL_STS moves it too, and walcheck names the source" \
	"$out" "credentials: web identity \($ROLE_ARN via $FAKE/\)"
echo "eyJ.wrong.token" >"$T/bad-token"
SEG=$S3 run env $WEB AWS_WEB_IDENTITY_TOKEN_FILE=$T/bad-token $IMDS "$BIN/walpush" -D "$PGD" $STS "$W/$S3" "$S3"
t_eq "web identity: STS refuses the token: exit 8, metadata not tried instead" "$rc" 8
t_match "web identity: STS's reason in one line" "$out" "web identity: sts at $FAKE/: InvalidIdentityToken: Incorrect token audience"
SEG=$S3 run env $WEB AWS_WEB_IDENTITY_TOKEN_FILE=$T/none $IMDS "$BIN/walpush" -D "$PGD" $STS "$W/$S3" "$S3"
t_eq "web identity: token file missing: exit 3" "$rc" 3
t_match "web identity: naming the file" "$out" "web identity: token file $T/none: no such file"
SEG=$S3 run env AWS_WEB_IDENTITY_TOKEN_FILE=$T/web-token $IMDS "$BIN/walpush" -D "$PGD" $STS "$W/$S3" "$S3"
t_eq "web identity: a token file without AWS_ROLE_ARN: exit 3" "$rc" 3
ctl sts_error=AccessDenied
SEG=$S3 run env $WEB "$BIN/walpush" -D "$PGD" $STS "$W/$S3" "$S3"
t_eq "web identity: role refused: exit 8" "$rc" 8
t_match "web identity: AccessDenied named" "$out" "AccessDenied: Not authorized"
ctl sts_error=
t_eq "nothing stored by the refused runs" "$(keys)" "$S1.lz4 $S2.lz4 "

# --- shared credentials and config files ------------------------------------
mkdir -p "$HOME/.aws"
cat >"$HOME/.aws/credentials" <<EOF
# written by hand
[default]
aws_access_key_id = nobody:none
aws_secret_access_key = wrong

[archive]
aws_access_key_id = $SWIFT_ACCESS
aws_secret_access_key = $SWIFT_SECRET
EOF
cat >"$T/aws-config" <<EOF
[default]
region = us-east-1
[profile fromconfig]
region = us-east-1
s3 =
    max_concurrent_requests = 4
aws_access_key_id=$SWIFT_ACCESS
aws_secret_access_key=$SWIFT_SECRET
[profile assumed]
role_arn = $ROLE_ARN
source_profile = archive
EOF
run env AWS_PROFILE=archive "$BIN/walfetch" -D "$PGD" "$S1" "$T/got1"
t_eq "profile [archive] in ~/.aws/credentials: walfetch exits 0" "$rc" 0
t_check "profile: fetched bytes identical" cmp "$T/got1" "$W/$S1"
run env AWS_PROFILE=fromconfig AWS_CONFIG_FILE=$T/aws-config "$BIN/walcheck"
t_match "profile [profile fromconfig] in AWS_CONFIG_FILE: walcheck names it" "$out" \
	"credentials: profile fromconfig in $T/aws-config"
SEG=$S3 push
t_eq "profile: without AWS_PROFILE, [default] signs (and swift refuses its key: exit 8)" "$rc" 8
SEG=$S3 push AWS_PROFILE=nosuch $IMDS
t_eq "profile: AWS_PROFILE names a missing profile: exit 3, metadata not tried instead" "$rc" 3
t_match "profile: naming it and the files" "$out" "profile nosuch \(AWS_PROFILE\): not in $HOME/.aws/credentials or $HOME/.aws/config"
run env AWS_PROFILE=assumed AWS_CONFIG_FILE=$T/aws-config "$BIN/walfetch" -D "$PGD" "$S1" "$T/got0"
t_match "profile: a role_arn profile is refused by name" "$out" "profile assumed in $T/aws-config: role_arn is not supported"
run env AWS_PROFILE=archive AWS_SHARED_CREDENTIALS_FILE=$T/none "$BIN/walfetch" -D "$PGD" "$S1" "$T/got0"
t_match "profile: AWS_SHARED_CREDENTIALS_FILE unreadable: named" "$out" "profile: $T/none \(AWS_SHARED_CREDENTIALS_FILE\): no such file"
rm -rf "$HOME/.aws"

# --- container credentials (ECS) --------------------------------------------
ECS="AWS_CONTAINER_CREDENTIALS_FULL_URI=$FAKE/ecs/v2/credentials"
mark
run env $ECS "AWS_CONTAINER_AUTHORIZATION_TOKEN=$ECS_AUTH" "$BIN/walfetch" -D "$PGD" "$S2" "$T/got2"
t_eq "container: walfetch exits 0" "$rc" 0
t_check "container: fetched bytes identical" cmp "$T/got2" "$W/$S2"
echo "$ECS_AUTH" >"$T/ecs-token"
run env $ECS "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE=$T/ecs-token" "$BIN/walcheck"
t_match "container: token from a file, and walcheck names the source" "$out" "credentials: container credentials \($FAKE/ecs/v2/credentials\)"
SEG=$S3 push $ECS AWS_CONTAINER_AUTHORIZATION_TOKEN=Bearer-wrong $IMDS
t_eq "container: wrong authorization: exit 8, metadata not tried instead" "$rc" 8
t_eq "container: the endpoint saw the refused token" "$(fake_count ecs refused)" 1
run env AWS_CONTAINER_CREDENTIALS_FULL_URI=http://192.0.2.1/creds "$BIN/walfetch" -D "$PGD" "$S2" "$T/got0"
t_match "container: plain http to a foreign host is refused" "$out" "must be https or a loopback or container host"

# --- settings and environment: set means used -------------------------------
cp "$CONF" "$T/half.conf"
echo "s3_access_key = nobody:none" >>"$T/half.conf"
run env AWS_ACCESS_KEY_ID=$SWIFT_ACCESS AWS_SECRET_ACCESS_KEY=$SWIFT_SECRET \
	"$BIN/walpush" -c "$T/half.conf" -D "$PGD" "$W/$S3" "$S3"
t_eq "s3_access_key without s3_secret_key: exit 3, the environment not used instead" "$rc" 3
t_match "naming both settings" "$out" "s3_access_key is set but s3_secret_key is not"
SEG=$S3 push AWS_ACCESS_KEY_ID=$SWIFT_ACCESS $IMDS
t_eq "AWS_ACCESS_KEY_ID without AWS_SECRET_ACCESS_KEY: exit 3" "$rc" 3
t_match "naming both variables" "$out" "environment: AWS_ACCESS_KEY_ID is set but AWS_SECRET_ACCESS_KEY is not"
run env AWS_ACCESS_KEY_ID=$SWIFT_ACCESS AWS_SECRET_ACCESS_KEY=$SWIFT_SECRET $WEB "$BIN/walcheck"
t_match "the environment comes before a web identity" "$out" "credentials: environment"

# --- temporary credentials refreshed inside a push-ahead batch --------------
# credentials that live 4 s, requests slowed to 0.3 s each: a batch of five
# segments on one connection runs past several expiries
P=$T/batch
mkdir -p "$P/pg_wal/archive_status"
BATCH=("${SEGS[@]:2:5}")
for s in "${BATCH[@]}"; do cp "$W/$s" "$P/pg_wal/$s"; touch "$P/pg_wal/archive_status/$s.ready"; done
ctl ttl=4 delay=0.3
mark
start=$SECONDS
run env $IMDS "$BIN/walpush" -D "$PGD" --set push_ahead=8 --set parallel=1 "$P/pg_wal/${BATCH[0]}" "${BATCH[0]}"
took=$((SECONDS - start))
t_eq "refresh: the batch exits 0" "$rc" 0
t_match "refresh: it pushed the others ahead" "$out" "pushed ahead 4 of 4 ready files"
n=0; for s in "${BATCH[@]}"; do keys | grep -q "$s.lz4" && n=$((n + 1)); done
t_eq "refresh: all five in the bucket" "$n" 5
fetches=$(fake_count issue imds)
echo "# batch took ${took} s with $fetches credential fetches"
t_check "refresh: credentials fetched again during the batch (several, not one per request)" \
	test "$fetches" -ge 2 -a "$fetches" -lt "$(since | grep -c '"s3"')"
t_eq "refresh: no request was sent with expired credentials" "$(since | grep -c ExpiredToken)" 0
# the server declares them expired early: fetched again at once, the request repeated
for s in "${BATCH[@]}"; do mv "$P/pg_wal/archive_status/$s.ready" "$P/pg_wal/archive_status/$s.done"; done
for s in "${SEGS[@]:7:2}"; do cp "$W/$s" "$P/pg_wal/$s"; touch "$P/pg_wal/archive_status/$s.ready"; done
ctl ttl=3600 delay=0.3
mark
# once the segment asked for is stored, every token issued so far expires
( for i in $(seq 1 300); do since | grep -q '"s3": "PUT"' && break; sleep 0.1; done
  ctl expire_now ) &
expirer=$!
run env $IMDS "$BIN/walpush" -D "$PGD" --set push_ahead=8 --set parallel=1 "$P/pg_wal/${SEGS[7]}" "${SEGS[7]}"
wait $expirer
t_eq "expired early: the batch still exits 0" "$rc" 0
t_match "expired early: and pushed the other ahead" "$out" "pushed ahead 1 of 1 ready file"
t_check "expired early: the server refused an expired token at least once" \
	test "$(since | grep -c '"answer": "ExpiredToken"')" -ge 1
t_check "expired early: and new credentials were fetched" test "$(fake_count issue imds)" -ge 2
# the prefetcher of walfetch and its workers: processes of their own that
# outlive walfetch and fetch for seconds, across expiries
spool_has() { ls "$T/spool/$SYSID/${1:0:16}" 2>/dev/null | grep -q "^$1\."; }
ctl ttl=3 delay=0.8
mark
run env $IMDS "$BIN/walfetch" -D "$PGD" --set fetch_ahead=6 --set parallel=2 "${SEGS[2]}" "$T/got-pf"
t_eq "prefetcher: walfetch exits 0" "$rc" 0
t_check "prefetcher: spools the six segments that follow" t_wait 60 spool_has "${SEGS[8]}"
echo "# prefetcher: $(fake_count issue imds) credential fetches, $(since | grep -c '"s3"') s3 requests"
t_eq "prefetcher: no request was sent with expired credentials" "$(since | grep -c ExpiredToken)" 0
t_check "prefetcher: and its processes fetched new ones" test "$(fake_count issue imds)" -ge 3
ctl delay=0 ttl=3600

# --- server-side encryption and storage class -------------------------------
export AWS_ACCESS_KEY_ID=$SWIFT_ACCESS AWS_SECRET_ACCESS_KEY=$SWIFT_SECRET
echo "1	0/3000000	no recovery target specified" >"$T/h2"
echo "1	0/5000000	another" >"$T/h3"
hist() { run "$BIN/walpush" -D "$PGD" "$@"; }
mark
hist --set s3_storage_class=STANDARD "$T/h2" 00000002.history
t_eq "storage class STANDARD: accepted by swift, exit 0" "$rc" 0
puts=$(since | grep -c '"s3": "PUT"')
t_check "storage class: the object was PUT" test "$puts" -ge 1
t_eq "storage class: x-amz-storage-class sent on every PUT" \
	"$(since | grep '"s3": "PUT"' | grep -c '"x-amz-storage-class": "STANDARD"')" "$puts"
t_eq "storage class: and signed (swift checked the signature over it)" \
	"$(since | grep '"s3": "PUT"' | grep -c '"signed": "[^"]*x-amz-storage-class')" "$puts"
t_eq "storage class: never on a GET, HEAD or listing" \
	"$(since | grep -v '"s3": "PUT"' | grep -c 'x-amz-storage-class')" 0
hist --set s3_storage_class=STANDARD_IA "$T/h3" 00000003.history
t_eq "storage class STANDARD_IA refused by swift: exit 3" "$rc" 3
t_match "one line naming the setting and swift's reason" "$out" \
	"s3_storage_class = STANDARD_IA: refused by the server: InvalidStorageClass: The storage class you specified is not valid"
t_eq "one line" "$(printf '%s\n' "$out" | wc -l)" 1
mark
hist --set s3_sse=AES256 "$T/h3" 00000003.history
t_eq "sse AES256 refused by swift (no server-side encryption): exit 3" "$rc" 3
t_match "one line naming s3_sse and swift's reason" "$out" \
	"s3_sse = AES256: refused by the server: NotImplemented: Server-side encryption is not supported"
t_check "sse: x-amz-server-side-encryption sent and signed" test \
	"$(since | grep '"s3": "PUT"' | grep '"x-amz-server-side-encryption": "AES256"' | grep -c '"signed": "[^"]*x-amz-server-side-encryption')" -ge 1
mark
ctl "put_error=400:InvalidArgument:Server Side Encryption with KMS managed key requires HTTP header x-amz-server-side-encryption : aws:kms"
walarchive_conf "$T/kms.conf" "archive=s3://$SWIFT_BUCKET/creds" "s3_endpoint=$FAKE" \
	"s3_uri_style=path" "timeout=5" "retries=1" "s3_sse=aws:kms" "push_ahead=0"
run "$BIN/walpush" -c "$T/kms.conf" -D "$PGD" "$T/h3" 00000003.history
t_eq "sse aws:kms refused (a fake server's S3 error): exit 3" "$rc" 3
t_match "naming the file and line of s3_sse" "$out" "$T/kms.conf:[0-9]+: s3_sse = aws:kms: refused by the server: InvalidArgument"
t_check "sse kms: the header sent and signed" test \
	"$(since | grep '"s3": "PUT"' | grep '"x-amz-server-side-encryption": "aws:kms"' | grep -c '"signed": "[^"]*x-amz-server-side-encryption')" -ge 1
# libcurl before 8.10 signs "x-amz-server-side-encryption-aws-kms-key-id"
# before "x-amz-server-side-encryption" (it sorts whole lines, and '-' < ':'),
# which AWS refuses: the key id is refused up front there
CURLV=$(curl-config --vernum 2>/dev/null || printf '%06x' "$(curl --version | awk 'NR==1{split($2,v,"."); print v[1]*65536+v[2]*256+v[3]}')")
cp -p "$T/kms.conf" "$T/kms-id.conf"
echo "s3_sse_kms_key_id = alias/wal" >>"$T/kms-id.conf"
run "$BIN/walpush" -c "$T/kms-id.conf" -D "$PGD" "$T/h3" 00000003.history
if [ $((16#$CURLV)) -lt $((16#080a00)) ]; then
	t_eq "s3_sse_kms_key_id with libcurl $CURLV: exit 3 before anything is sent" "$rc" 3
	t_match "saying why" "$out" "kms-id.conf:[0-9]+: s3_sse_kms_key_id needs libcurl 8.10 or newer"
else
	t_check "s3_sse_kms_key_id: both headers signed in AWS's order" test \
		"$(since | grep -c '"signed": "[^"]*x-amz-server-side-encryption;x-amz-server-side-encryption-aws-kms-key-id')" -ge 1
fi
ctl "put_error=403:AccessDenied:Access Denied"
run "$BIN/walpush" -c "$T/kms.conf" -D "$PGD" "$T/h3" 00000003.history
t_eq "another refusal with sse set is not blamed on it: exit 8" "$rc" 8
t_eq "and does not name s3_sse" "$(grep -c s3_sse <<<"$out")" 0
ctl "put_error="
hist --set s3_sse=aes256 "$T/h3" 00000003.history
t_eq "s3_sse = aes256: exit 3 before anything is sent" "$rc" 3
t_match "naming the setting" "$out" 's3_sse "aes256": want AES256 or aws:kms'
hist --set s3_storage_class=GLACIER "$T/h3" 00000003.history
t_match "s3_storage_class = GLACIER refused: walfetch could not read it back" "$out" "need a restore before walfetch"
t_eq "nothing stored by the refusals" "$(swift_keys "$SWIFT_BUCKET" "creds/$SYSID/" | grep -c 00000003.history)" 0

# --- no secret in any message ------------------------------------------------
leaks=0
for secret in "$SWIFT_SECRET" "$JWT" "$ECS_AUTH" FAKE; do
	grep -qF -- "$secret" "$ALL" && { leaks=$((leaks + 1)); echo "# leaked: ${secret:0:6}..."; }
done
t_eq "no secret key, web identity token, container token or session token in any message" "$leaks" 0
t_done
