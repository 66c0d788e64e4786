# WAL names, made-up segments and the archive and spool as the file system
# shows them, for the integration tests (bash; source after common.sh).
#
#   segname [TLI] SEGNO       the 24-hex name of segment SEGNO (16 MiB
#                             segments) on timeline TLI (default 1)
#   mkseg OUT SEGNO [tli=N] [sysid=N] [random]   a segment made from
#                             $MKSEG_SRC (see below)
#   obj NAME                  the path of NAME's object under $ARCH for
#                             $SYSID (without the ".lz4" of a framed one)
#   arch_names / arch_segments / arch_has NAME   what $ARCH holds for $SYSID
#   arch_state                every file under $ARCH with its SHA-256, to
#                             compare before and after a command
#   prefetch_wait SPOOL       waits for the prefetcher of spool directory SPOOL
#
# The script sets ARCH (the archive root as this machine's file system sees
# it: a local archive, or the directory an sftp server serves) and SYSID.

segname() {
	local tli=1
	if [ $# -ge 2 ]; then tli=$1; shift; fi
	printf '%08X%08X%08X' "$tli" $(($1 / 256)) $(($1 % 256))
}

# mkseg OUT SEGNO [tli=N] [sysid=N] [random]: a 16 MiB segment at OUT made
# from $MKSEG_SRC (a real segment, or only its first page), its long page
# header rewritten to say segment SEGNO (and timeline N, system identifier
# N).  "random" makes every byte after the first page random
# (incompressible: a slow upload through a throttling proxy); what
# $MKSEG_SRC lacks of the 16 MiB is random too.  OUT is owned by
# $MKSEG_OWNER (default postgres; empty: left as made).
mkseg() {
	python3 - "$MKSEG_SRC" "$@" <<'PY' || return 1
import os, struct, sys
src, out, segno = sys.argv[1], sys.argv[2], int(sys.argv[3])
size = 16 * 1024 * 1024
data = bytearray(open(src, "rb").read())
struct.pack_into("<Q", data, 8, segno * size)
for arg in sys.argv[4:]:
    if arg.startswith("tli="):
        struct.pack_into("<I", data, 4, int(arg[4:]))
    elif arg.startswith("sysid="):
        struct.pack_into("<Q", data, 24, int(arg[6:]))
    elif arg == "random":
        data[8192:] = os.urandom(size - 8192)
    else:
        sys.exit("mkseg: unknown option " + arg)
if len(data) < size:
    data += os.urandom(size - len(data))
open(out, "wb").write(data)
PY
	[ -z "${MKSEG_OWNER-postgres}" ] || chown "${MKSEG_OWNER-postgres}:" "$1"
}

obj() { echo "$ARCH/$SYSID/${1:0:16}/$1"; }

# Names of the objects archived for SYSID (".lz4" stripped), sorted; with
# ARCH_HIDE_TMP=1, without the temporary (dot) files of writes under way.
arch_names() {
	local hide=()
	[ -z "${ARCH_HIDE_TMP:-}" ] || hide=(! -name '.*')
	find "$ARCH/$SYSID" -type f ! -name walarchive.info "${hide[@]}" -printf '%f\n' 2>/dev/null |
		sed 's/\.lz4$//' | sort
}
# Segment objects only (24 hex), sorted.
arch_segments() { arch_names | grep -E '^[0-9A-F]{24}$'; }
# Whether NAME is archived under its final name.
arch_has() { arch_names | grep -qxF "$1"; }

# arch_state: every file under $ARCH, each with its SHA-256, sorted.
arch_state() { (cd "$ARCH" && find . -type f -print0 | sort -z | xargs -0r sha256sum); }

# prefetch_wait SPOOL: waits for the prefetcher of spool directory SPOOL to
# be done (it holds a flock while it runs).
prefetch_wait() {
	local lock=$1/$SYSID/.prefetch.lock
	[ -e "$lock" ] && timeout 60 flock "$lock" true
	return 0
}
