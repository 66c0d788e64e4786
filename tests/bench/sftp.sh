#!/bin/bash
# Benchmark of the SSH transport: per WAL segment, walpush over SFTP (lz4, and
# uncompressed) against `rsync -a` over ssh and `scp` (the setup guide's
# methods), and walfetch against rsync/scp back, all against one private sshd
# on 127.0.0.1 started here.  Every command is a fresh process with its own
# SSH handshake, as archive_command and restore_command run.
#
#   tests/bench/sftp.sh CORPUS_DIR [ROUNDS]
#
# CORPUS_DIR holds real WAL segments under their names (24 hex digits), e.g.
# copied out by archive_command during pgbench; ROUNDS repeats each method
# over the whole corpus (default: enough rounds for 20 samples per method).
# Prints a Markdown table: median milliseconds per segment and the ratio to
# rsync -a.  WALARCHIVE_BIN names the installed
# programs.  Note: walpush fsyncs every object on the server
# (fsync@openssh.com); rsync and scp do not.

set -u
CORPUS=${1:?usage: sftp.sh CORPUS_DIR [ROUNDS]}
# a work directory of its own, never one inherited from a calling script
WALARCHIVE_TMP=$(mktemp -d "${TMPDIR:-/tmp}/walarchive-bench-sftp.XXXXXX") || exit 1
chmod 755 "$WALARCHIVE_TMP"
export WALARCHIVE_TMP
. "$(dirname "$0")/../lib/common.sh"
. "$(dirname "$0")/../lib/sshd.sh"
[ "${KEEP_TMP:-0}" = 1 ] || t_cleanup "rm -rf '$WALARCHIVE_TMP'"
BIN=$WALARCHIVE_BIN
T=$WALARCHIVE_TMP
for p in walpush walfetch; do
	[ -x "$BIN/$p" ] || { echo "sftp.sh: $BIN/$p is not installed" >&2; exit 2; }
done
mapfile -t SEGS < <(cd "$CORPUS" && ls | grep -E '^[0-9A-F]{24}$' | sort)
[ "${#SEGS[@]}" -gt 0 ] || { echo "sftp.sh: no WAL segments in $CORPUS" >&2; exit 2; }
# default: enough rounds for at least 20 samples of each method
ROUNDS=${2:-$(( (20 + ${#SEGS[@]} - 1) / ${#SEGS[@]} ))}

D=$T/sshd
R=$T/remote          # the server side, owned by the ssh user
L=$T/local           # where fetches land
sshd_setup "$D" root >/dev/null || exit 1
sshd_start "$D" || exit 1
sshd_known_hosts "$D" || exit 1
mkdir -p "$R" "$L" "$T/cwd"
chown "$SSHD_USER" "$R"
SSH=$(sshd_ssh_cmd "$D")
PORT=$(sshd_port "$D")
HOSTU=$SSHD_USER@127.0.0.1
SCP=(scp -q -P "$PORT" -i "$D/id_ed25519" -o "UserKnownHostsFile=$D/known_hosts"
     -o StrictHostKeyChecking=yes -o BatchMode=yes -o IdentitiesOnly=yes)
conf() {   # conf NAME DIR COMPRESS
	printf 'archive = %s\nssh_key = %s\nssh_known_hosts = %s\ncompress = %s\n' \
		"$(sshd_url "$D" "$2")" "$D/id_ed25519" "$D/known_hosts" "$3" > "$T/$1.conf"
	chmod 600 "$T/$1.conf"
}
conf lz4 "$R/wa-lz4" lz4
conf none "$R/wa-none" none

now_ns() { date +%s%N; }
declare -A SAMPLES
# sample METHOD CMD...: runs CMD, records its milliseconds; stops the bench on failure.
sample() {
	local method=$1; shift
	local t0 t1
	t0=$(now_ns)
	"$@" >/dev/null 2>"$T/err" || { echo "sftp.sh: $method failed: $(cat "$T/err")" >&2; exit 1; }
	t1=$(now_ns)
	SAMPLES[$method]+="$(( (t1 - t0) / 1000 )) "
}
fresh_remote() {
	rm -rf "$R"/*
	mkdir -p "$R/wa-lz4" "$R/wa-none" "$R/rsync" "$R/scp"
	chown -R "$SSHD_USER" "$R"
}

for ((round = 1; round <= ROUNDS; round++)); do
	fresh_remote
	for s in "${SEGS[@]}"; do
		sample "walpush sftp lz4" env -C "$T/cwd" "$BIN/walpush" -c "$T/lz4.conf" "$CORPUS/$s" "$s"
		sample "walpush sftp none" env -C "$T/cwd" "$BIN/walpush" -c "$T/none.conf" "$CORPUS/$s" "$s"
		sample "rsync -a over ssh" rsync -a -e "$SSH" "$CORPUS/$s" "$HOSTU:$R/rsync/$s"
		sample "scp" "${SCP[@]}" "$CORPUS/$s" "$HOSTU:$R/scp/$s"
	done
	for s in "${SEGS[@]}"; do
		rm -f "$L"/*
		sample "walfetch sftp lz4" env -C "$T/cwd" "$BIN/walfetch" -c "$T/lz4.conf" "$s" "$L/$s"
		cmp -s "$L/$s" "$CORPUS/$s" || { echo "sftp.sh: walfetch returned other bytes for $s" >&2; exit 1; }
		rm -f "$L"/*
		sample "walfetch sftp none" env -C "$T/cwd" "$BIN/walfetch" -c "$T/none.conf" "$s" "$L/$s"
		rm -f "$L"/*
		sample "rsync -a back" rsync -a -e "$SSH" "$HOSTU:$R/rsync/$s" "$L/$s"
		rm -f "$L"/*
		sample "scp back" "${SCP[@]}" "$HOSTU:$R/scp/$s" "$L/$s"
	done
done

median() { tr ' ' '\n' | grep . | sort -n | awk '{a[NR]=$1} END {print (NR % 2) ? a[(NR+1)/2] : (a[NR/2] + a[NR/2+1]) / 2}'; }
ms() { awk -v us="$1" 'BEGIN {printf "%.1f", us / 1000}'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN {printf "%.2f", a / b}'; }
declare -A MED
for m in "${!SAMPLES[@]}"; do MED[$m]=$(printf '%s' "${SAMPLES[$m]}" | median); done

bytes=$(cd "$CORPUS" && du -cb "${SEGS[@]}" | tail -n1 | cut -f1)
stored=$(du -sb "$R/wa-lz4" | cut -f1)
echo "SSH transport, ${#SEGS[@]} segments x $ROUNDS rounds, one process and handshake per segment"
echo "(sshd on 127.0.0.1; lz4 stores $stored of $bytes bytes; walpush fsyncs on the server, rsync/scp do not)"
echo
echo "| method | median ms/segment | ratio to rsync -a |"
echo "|---|---:|---:|"
for m in "walpush sftp lz4" "walpush sftp none" "rsync -a over ssh" "scp"; do
	echo "| $m | $(ms "${MED[$m]}") | $(ratio "${MED[$m]}" "${MED[rsync -a over ssh]}") |"
done
for m in "walfetch sftp lz4" "walfetch sftp none" "rsync -a back" "scp back"; do
	echo "| $m | $(ms "${MED[$m]}") | $(ratio "${MED[$m]}" "${MED[rsync -a back]}") |"
done
t_run_cleanups
