#!/bin/bash
# Benchmark of the HTTP transports, per WAL segment, against the commands
# people put in archive_command today, in one run against the same servers:
#   WebDAV (nginx, HTTPS):  walpush vs `curl -T`,  walfetch vs `curl -o`
#   S3 (Swift s3api):        walpush vs `aws s3 cp`, walfetch vs `aws s3 cp` back
#   Azure (Azurite):         walpush vs `curl -T` to a SAS URL (Put Blob),
#                            walfetch vs `curl -o` from it (no `az` CLI here)
# Prints the median seconds per segment and walarchive's time as a fraction
# of the other tool's.
#
# usage: tests/bench/http.sh WAL_DIR [COMPRESS]
#   WAL_DIR   real 16 MiB WAL segments (e.g. a copy of an archive made by cp)
#   COMPRESS  lz4 (default) or none
# Needs: the installed programs in $WALARCHIVE_BIN, nginx-extras, the swift
# packages (see tests/lib/swift.sh), curl, awscli, Azurite and python3-azure
# (see tests/lib/azurite.sh).
# a work directory of its own: common.sh removes it at the end, and one
# inherited from a calling script (run.sh) holds that script's corpus
WALARCHIVE_TMP=$(mktemp -d "${TMPDIR:-/var/tmp}/walarchive-bench-http.XXXXXX") || exit 1
chmod 755 "$WALARCHIVE_TMP"
export WALARCHIVE_TMP
. "$(dirname "$0")/../lib/common.sh"
. "$WALARCHIVE_SRC/tests/lib/pg.sh"
. "$WALARCHIVE_SRC/tests/lib/nginx.sh"
. "$WALARCHIVE_SRC/tests/lib/swift.sh"
. "$WALARCHIVE_SRC/tests/lib/azurite.sh"

WAL_DIR=${1:?usage: http.sh WAL_DIR [lz4|none]}
COMPRESS=${2:-lz4}
BIN=$WALARCHIVE_BIN
SEGS=$(cd "$WAL_DIR" && ls | grep -E '^[0-9A-F]{24}$' | sort)
[ -n "$SEGS" ] || { echo "http.sh: no WAL segments in $WAL_DIR" >&2; exit 2; }

nginx_start benchdav >/dev/null || exit 1
swift_start benchswift walbench >/dev/null || exit 1
azurite_start benchazure walbench >/dev/null || exit 1

DAVCONF=$WALARCHIVE_TMP/dav.conf S3CONF=$WALARCHIVE_TMP/s3.conf
walarchive_conf "$DAVCONF" "archive=$NGINX_URL/wa" "http_user=$NGINX_USER" \
	"http_password=$NGINX_PASS" "tls_ca_file=$NGINX_CA" "compress=$COMPRESS"
walarchive_conf "$S3CONF" "archive=s3://$SWIFT_BUCKET/wa" "s3_endpoint=http://127.0.0.1:$SWIFT_PORT" \
	"s3_uri_style=path" "s3_access_key=$SWIFT_ACCESS" "s3_secret_key=$SWIFT_SECRET" \
	"compress=$COMPRESS"
AZCONF=$WALARCHIVE_TMP/azure.conf
walarchive_conf "$AZCONF" "archive=azure://$AZURITE_ACCOUNT/$AZURITE_CONTAINER/wa" \
	"azure_endpoint=$AZURITE_ENDPOINT" "azure_account_key=$AZURITE_KEY" "compress=$COMPRESS"
# curl's side: a container SAS made by the Azure SDK, one Put Blob a segment
SAS=$(azref sas "$AZURITE_CONTAINER") || exit 1
AZURL=$AZURITE_ENDPOINT/$AZURITE_CONTAINER/curl
curl -sS --cacert "$NGINX_CA" -u "$NGINX_USER:$NGINX_PASS" -X MKCOL "$NGINX_URL/wa/" -o /dev/null
curl -sS --cacert "$NGINX_CA" -u "$NGINX_USER:$NGINX_PASS" -X MKCOL "$NGINX_URL/curl/" -o /dev/null
# Swift's s3api without the slo middleware has no multipart uploads: one PUT
# per segment, as walpush does
printf '[default]\ns3 =\n  multipart_threshold = 64MB\n' > "$WALARCHIVE_TMP/aws.config"
export AWS_CONFIG_FILE=$WALARCHIVE_TMP/aws.config
export AWS_ACCESS_KEY_ID=$SWIFT_ACCESS AWS_SECRET_ACCESS_KEY=$SWIFT_SECRET AWS_DEFAULT_REGION=us-east-1
AWS=(aws --endpoint-url "http://127.0.0.1:$SWIFT_PORT" s3 cp --only-show-errors)
OUT=$WALARCHIVE_TMP/out
mkdir -p "$OUT"

# timed NAME CMD...: runs CMD, appends its wall time in seconds to $WALARCHIVE_TMP/NAME.
timed() {
	local name=$1; shift
	local t0 t1
	t0=$(date +%s%N)
	"$@" >/dev/null 2>"$WALARCHIVE_TMP/last.err" || { echo "http.sh: failed: $*" >&2;
		cat "$WALARCHIVE_TMP/last.err" >&2; exit 1; }
	t1=$(date +%s%N)
	echo "$(( (t1 - t0) / 1000 ))" >> "$WALARCHIVE_TMP/$name"
}

median() { sort -n "$WALARCHIVE_TMP/$1" | awk '{a[NR]=$1} END {m = NR % 2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2; printf "%.4f", m/1e6}'; }

for s in $SEGS; do
	f=$WAL_DIR/$s
	timed dav_walpush "$BIN/walpush" -c "$DAVCONF" "$f" "$s"
	timed dav_curl_put curl -sS -f --cacert "$NGINX_CA" -u "$NGINX_USER:$NGINX_PASS" -T "$f" "$NGINX_URL/curl/$s"
	timed s3_walpush "$BIN/walpush" -c "$S3CONF" "$f" "$s"
	timed s3_aws_put "${AWS[@]}" "$f" "s3://$SWIFT_BUCKET/aws/$s"
	timed az_walpush "$BIN/walpush" -c "$AZCONF" "$f" "$s"
	timed az_curl_put curl -sS -f -H "x-ms-blob-type: BlockBlob" -H "x-ms-version: 2021-08-06" \
		-T "$f" "$AZURL/$s?$SAS"
done
for s in $SEGS; do
	rm -f "$OUT"/*
	timed dav_walfetch "$BIN/walfetch" -c "$DAVCONF" "$s" "$OUT/$s"
	cmp -s "$OUT/$s" "$WAL_DIR/$s" || { echo "http.sh: $s fetched differently (webdav)" >&2; exit 1; }
	timed dav_curl_get curl -sS -f --cacert "$NGINX_CA" -u "$NGINX_USER:$NGINX_PASS" -o "$OUT/c" "$NGINX_URL/curl/$s"
	rm -f "$OUT"/*
	timed s3_walfetch "$BIN/walfetch" -c "$S3CONF" "$s" "$OUT/$s"
	cmp -s "$OUT/$s" "$WAL_DIR/$s" || { echo "http.sh: $s fetched differently (s3)" >&2; exit 1; }
	timed s3_aws_get "${AWS[@]}" "s3://$SWIFT_BUCKET/aws/$s" "$OUT/a"
	rm -f "$OUT"/*
	timed az_walfetch "$BIN/walfetch" -c "$AZCONF" "$s" "$OUT/$s"
	cmp -s "$OUT/$s" "$WAL_DIR/$s" || { echo "http.sh: $s fetched differently (azure)" >&2; exit 1; }
	timed az_curl_get curl -sS -f -H "x-ms-version: 2021-08-06" -o "$OUT/c" "$AZURL/$s?$SAS"
done

n=$(echo "$SEGS" | wc -l)
printf '# %d segments, compress=%s, median seconds per segment\n' "$n" "$COMPRESS"
printf '%-8s %-6s %10s %12s %8s\n' transport op walarchive other ratio
row() {
	local a b
	a=$(median "$3") b=$(median "$4")
	printf '%-8s %-6s %10s %12s %8s\n' "$1" "$2" "$a" "$b ($5)" "$(awk -v a="$a" -v b="$b" 'BEGIN{printf "%.2f", a/b}')"
}
row webdav push dav_walpush dav_curl_put "curl -T"
row webdav fetch dav_walfetch dav_curl_get "curl -o"
row s3 push s3_walpush s3_aws_put "aws s3 cp"
row s3 fetch s3_walfetch s3_aws_get "aws s3 cp"
row azure push az_walpush az_curl_put "curl -T sas"
row azure fetch az_walfetch az_curl_get "curl -o sas"
t_done >/dev/null
