# shellcheck shell=bash
# Helpers for the benchmark scripts (bash; source this file): time one run of
# a program and record its elapsed time and peak resident memory, then print
# medians and ratios.  Results go to $BENCH_OUT/<method>.{times,rss}, one
# line per run (seconds, KiB).

: "${BENCH_OUT:?BENCH_OUT must name a results directory}"
mkdir -p "$BENCH_OUT"
BENCH_FAILURES=0

# bench_run METHOD CMD...: runs CMD under /usr/bin/time (for the peak RSS),
# timing it with bash's microsecond clock.  Counts a failure if CMD fails.
bench_run() {
	local method=$1; shift
	local t0 t1 rc
	# every run starts with nothing dirty: no method pays for another's writeback
	sync
	t0=$EPOCHREALTIME
	/usr/bin/time -f %M -o "$BENCH_OUT/.rss" "$@" >/dev/null 2>"$BENCH_OUT/.err"
	rc=$?
	t1=$EPOCHREALTIME
	if [ $rc -ne 0 ]; then
		BENCH_FAILURES=$((BENCH_FAILURES + 1))
		echo "bench: $method failed (exit $rc): $* : $(grep -v '^Command exited' "$BENCH_OUT/.err" | head -n 3 | tr '\n' ' ')" >&2
		return $rc
	fi
	echo "$t0 $t1" | awk '{ printf "%.6f\n", $2 - $1 }' >> "$BENCH_OUT/$method.times"
	tail -n 1 "$BENCH_OUT/.rss" >> "$BENCH_OUT/$method.rss"
}

# bench_steps METHOD CMD1 -- CMD2 -- ...: like bench_run for a sequence of
# commands timed together (e.g. cp, sync, mv); the RSS is the largest of them.
bench_steps() {
	local method=$1; shift
	local t0 t1 rc=0 rss=0 r
	local cmd=()
	sync
	t0=$EPOCHREALTIME
	while [ $# -gt 0 ]; do
		cmd=()
		while [ $# -gt 0 ] && [ "$1" != -- ]; do cmd+=("$1"); shift; done
		[ $# -gt 0 ] && shift
		/usr/bin/time -f %M -o "$BENCH_OUT/.rss" "${cmd[@]}" >/dev/null 2>"$BENCH_OUT/.err" || { rc=$?; break; }
		r=$(tail -n 1 "$BENCH_OUT/.rss"); [ "$r" -gt "$rss" ] && rss=$r
	done
	t1=$EPOCHREALTIME
	if [ $rc -ne 0 ]; then
		BENCH_FAILURES=$((BENCH_FAILURES + 1))
		echo "bench: $method failed (exit $rc): ${cmd[*]} : $(head -n 3 "$BENCH_OUT/.err" | tr '\n' ' ')" >&2
		return $rc
	fi
	echo "$t0 $t1" | awk '{ printf "%.6f\n", $2 - $1 }' >> "$BENCH_OUT/$method.times"
	echo "$rss" >> "$BENCH_OUT/$method.rss"
}

# bench_table METHOD...: one line per method: runs, median, p90, peak RSS.
bench_table() {
	python3 - "$BENCH_OUT" "$@" <<'PY'
import os, statistics, sys
out = sys.argv[1]
print("%-34s %5s %11s %11s %14s" % ("per 16 MiB segment", "runs", "median ms", "p90 ms", "peak RSS KiB"))
for m in sys.argv[2:]:
    tf = os.path.join(out, m + ".times")
    if not os.path.exists(tf):
        print("%-34s %5s" % (m, "-")); continue
    t = sorted(float(x) for x in open(tf) if x.strip())
    r = [int(x) for x in open(os.path.join(out, m + ".rss")) if x.strip()]
    p90 = t[min(len(t) - 1, int(round(0.9 * (len(t) - 1))))]
    print("%-34s %5d %11.1f %11.1f %14d" % (m, len(t), statistics.median(t) * 1000, p90 * 1000, max(r)))
PY
}

# bench_ratio A B TARGET: prints median(A) / median(B) beside "target <= TARGET".
bench_ratio() {
	python3 - "$BENCH_OUT" "$@" <<'PY'
import os, statistics, sys
out, a, b, target = sys.argv[1:5]
def med(m):
    p = os.path.join(out, m + ".times")
    if not os.path.exists(p): return None
    v = [float(x) for x in open(p) if x.strip()]
    return statistics.median(v) if v else None
ma, mb = med(a), med(b)
if ma is None or mb is None:
    print("%-60s %s" % (a + " / " + b, "n/a (no data)"))
else:
    r = ma / mb
    verdict = "" if target == "-" else ("  target <= %s: %s" % (target, "met" if r <= float(target) else "NOT met"))
    print("%-60s %6.3f%s" % (a + " / " + b, r, verdict))
PY
}

# bench_rss METHOD LIMIT_KIB: prints the peak RSS of METHOD beside the limit.
bench_rss() {
	local m=$1 lim=$2 peak
	[ -f "$BENCH_OUT/$m.rss" ] || { printf '%-60s n/a\n' "peak RSS $m"; return; }
	peak=$(sort -n "$BENCH_OUT/$m.rss" | tail -n 1)
	printf '%-60s %6s KiB  target < %s KiB: %s\n' "peak RSS $m" "$peak" "$lim" \
		"$([ "$peak" -lt "$lim" ] && echo met || echo NOT met)"
}
