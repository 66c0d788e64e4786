#!/bin/bash
# How long walcheck takes to list and check the continuity of an archive of
# N segments (default 10,000, timeline 1, one base backup at the start) over
# SFTP (a private sshd) and S3 (a one-node Swift with s3api).  The objects
# are made on the server's side (files in the SFTP directory; PUTs with the
# botocore reference client, 16 at a time), tiny: walcheck lists them and
# reads none but walarchive.info.  Prints the median of 3 runs of each.
#
# usage: tests/bench/check.sh [N]
# Needs: openssh-server, the swift packages (see tests/lib/swift.sh).
. "$(dirname "$0")/../lib/common.sh"
. "$WALARCHIVE_SRC/tests/lib/pg.sh"
. "$WALARCHIVE_SRC/tests/lib/sshd.sh"
. "$WALARCHIVE_SRC/tests/lib/swift.sh"

N=${1:-10000}
BIN=$WALARCHIVE_BIN
T=$WALARCHIVE_TMP
SYSID=7712300585176830670
INFO="system_id = $SYSID
pg_version = 150000
wal_seg_size = 16777216
wal_block_size = 8192"

# names NAME...: the object names of N segments from 000000010000000000000001, and a backup
names() {
	"$SWIFT_PY" - "$N" "$SYSID" <<'PY'
import sys
n, sysid = int(sys.argv[1]), sys.argv[2]
print("%s/0000000100000000/000000010000000000000001.00000028.backup.lz4" % sysid)
for s in range(1, n + 1):
    d = "00000001%08X" % (s // 256)
    print("%s/%s/%s%08X.lz4" % (sysid, d, d, s % 256))
PY
}

# runs NAME CONF: walcheck 3 times, prints the median seconds and the report's counts
runs() {
	local name=$1 conf=$2 i t0 t1
	: > "$T/$name.times"
	for i in 1 2 3; do
		t0=$EPOCHREALTIME
		"$BIN/walcheck" -c "$conf" --json > "$T/$name.json" 2>"$T/$name.err"
		local rc=$?
		t1=$EPOCHREALTIME
		[ $rc -eq 0 ] || { echo "check.sh: $name: walcheck exit $rc: $(cat "$T/$name.err")" >&2; return 1; }
		echo "$t0 $t1" | awk '{ printf "%.3f\n", $2 - $1 }' >> "$T/$name.times"
	done
	"$SWIFT_PY" - "$name" "$T/$name.times" "$T/$name.json" <<'PY'
import json, statistics, sys
name, times, report = sys.argv[1:4]
t = [float(x) for x in open(times)]
d = json.load(open(report))
c = d["archive_contents"]
print("%-5s %6d segments: median %.2f s (runs: %s); %d needed, %d present, %d gaps"
      % (name, c["segments"], statistics.median(t), " ".join("%.2f" % x for x in t),
         d["continuity"]["needed"], d["continuity"]["present"], len(d["continuity"]["gaps"])))
PY
}

# ---- SFTP: files made in the served directory --------------------------------

D=$T/sshd
sshd_setup "$D" || exit 1
sshd_start "$D" || exit 1
sshd_known_hosts "$D" || exit 1
SARCH=$T/sftp-archive
mkdir -p "$SARCH/$SYSID"
printf '%s\n' "$INFO" > "$SARCH/$SYSID/walarchive.info"
names | while read -r n; do mkdir -p "$SARCH/$(dirname "$n")"; : > "$SARCH/$n"; done
chown -R "$SSHD_USER" "$SARCH"
walarchive_conf "$T/sftp.conf" "archive=$(sshd_url "$D" "$SARCH")" "ssh_key=$D/id_ed25519" \
	"ssh_known_hosts=$D/known_hosts" "spool_dir=$T/nospool"
runs sftp "$T/sftp.conf" || exit 1

# ---- S3: objects PUT with the reference client ---------------------------------

swift_start benchswift walbench >/dev/null || exit 1
S3REF_ENDPOINT=http://127.0.0.1:$SWIFT_PORT AWS_ACCESS_KEY_ID=$SWIFT_ACCESS \
AWS_SECRET_ACCESS_KEY=$SWIFT_SECRET INFO=$INFO "$SWIFT_PY" - "$SWIFT_BUCKET" "$SYSID" <(names) <<'PY'
import os, sys
from concurrent.futures import ThreadPoolExecutor
import botocore.session
from botocore.config import Config
bucket, sysid, listing = sys.argv[1:4]
client = botocore.session.get_session().create_client(
    "s3", endpoint_url=os.environ["S3REF_ENDPOINT"], region_name="us-east-1",
    aws_access_key_id=os.environ["AWS_ACCESS_KEY_ID"],
    aws_secret_access_key=os.environ["AWS_SECRET_ACCESS_KEY"],
    config=Config(s3={"addressing_style": "path"}, max_pool_connections=16))
keys = ["wa/" + line.strip() for line in open(listing) if line.strip()]
client.put_object(Bucket=bucket, Key="wa/%s/walarchive.info" % sysid, Body=(os.environ["INFO"] + "\n").encode())
with ThreadPoolExecutor(16) as pool:
    list(pool.map(lambda k: client.put_object(Bucket=bucket, Key=k, Body=b""), keys))
PY
[ $? -eq 0 ] || { echo "check.sh: could not make the S3 objects" >&2; exit 1; }
walarchive_conf "$T/s3.conf" "archive=s3://$SWIFT_BUCKET/wa" "s3_endpoint=http://127.0.0.1:$SWIFT_PORT" \
	"s3_uri_style=path" "s3_access_key=$SWIFT_ACCESS" "s3_secret_key=$SWIFT_SECRET" \
	"spool_dir=$T/nospool"
runs s3 "$T/s3.conf" || exit 1
t_run_cleanups
rm -rf "$WALARCHIVE_TMP"
