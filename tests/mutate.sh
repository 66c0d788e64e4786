#!/bin/bash
# Mutation check: does the default test run catch the bugs that matter?
# Each mutation of tests/mutations.txt (a core promise, a bug that breaks
# it, the tests of tests/run.sh that should catch it) is applied, one at a
# time, to a copy of the tree; the copy is built and the listed tests run
# against it.  A mutation is caught when at least one of them fails (a
# failed check, a crash, a non-zero exit).  First the same tests run on the
# unchanged copy: they must pass there, or "caught" would mean nothing.
# Run as root after tests/setup.sh; each mutation costs an incremental build
# and its tests (about a minute, most of it 80-crash).  Not part of
# tests/run.sh: run it before resolving an issue that adds a promise.
#
#   tests/mutate.sh [NAME...]   only these mutations
#   MUTATIONS=FILE              another table (default tests/mutations.txt)
#   KEEP_TMP=1                  keep the copy, the build and the logs
#
# Prints one line per mutation, "caught" or "NOT CAUGHT" with the tests
# that caught it and those that did not, and ends with
# "N caught, N not caught, N stale"; exits 0 only if every mutation run was
# caught.  A stale mutation is one whose line is no longer in the code (or
# whose change no longer builds): update its block.
set -u
SRC=$(cd "$(dirname "$0")/.." && pwd)
TABLE=${MUTATIONS:-$SRC/tests/mutations.txt}
WORK=$(mktemp -d /tmp/walarchive-mutate.XXXXXX)
chmod 755 "$WORK"
TREE=$WORK/tree
BUILD=$WORK/build
LOG=$WORK/log
mkdir -p "$TREE" "$LOG"
KEEP_WORK=${KEEP_TMP:-0}        # 1 once the logs are worth keeping
trap '[ "$KEEP_WORK" = 1 ] || rm -rf "$WORK"' EXIT

# table list: one line per mutation, "NAME<tab>PROMISE<tab>TESTS"
# table apply NAME: applies mutation NAME to $TREE, the files it changes kept
# in $MUTATE_ORIG; prints their names (exit 3: stale)
table() {
	python3 - "$TABLE" "$TREE" "$@" <<'PY'
import os, sys
table, tree, cmd = sys.argv[1], sys.argv[2], sys.argv[3]
blocks, cur = [], None
for raw in open(table, encoding="utf-8"):
    line = raw.rstrip("\n")
    if line.startswith("#"):
        continue
    if not line.strip():
        cur = None
        continue
    key, _, value = line.partition(" ")
    value = value.strip()
    if key == "mutation":
        cur = {"name": value, "promise": "", "tests": "", "hunks": []}
        blocks.append(cur)
        file = None
    elif cur is None:
        sys.exit("%s: %r outside a mutation block" % (table, line))
    elif key in ("promise", "tests"):
        cur[key] = value
    elif key == "file":
        file = value
    elif key == "find":
        cur["hunks"].append({"file": file, "find": value, "replace": []})
    elif key == "replace":
        cur["hunks"][-1]["replace"].append(value)
    else:
        sys.exit("%s: unknown key %r" % (table, key))
if cmd == "list":
    for b in blocks:
        print("%s\t%s\t%s" % (b["name"], b["promise"], b["tests"]))
    sys.exit(0)
name = sys.argv[4]
block = next((b for b in blocks if b["name"] == name), None)
if block is None:
    sys.exit("no mutation %s in %s" % (name, table))
texts = {}
for h in block["hunks"]:
    path = os.path.join(tree, h["file"])
    lines = texts.setdefault(path, open(path, encoding="utf-8").read().split("\n"))
    hits = [i for i, l in enumerate(lines) if l.strip() == h["find"]]
    if len(hits) != 1:
        print("%s: %d lines are '%s' (want exactly 1)" % (h["file"], len(hits), h["find"]))
        sys.exit(3)
    i = hits[0]
    indent = lines[i][:len(lines[i]) - len(lines[i].lstrip())]
    lines[i:i + 1] = [indent + r for r in h["replace"]]
orig = os.environ["MUTATE_ORIG"]
for path, lines in texts.items():
    keep = os.path.join(orig, os.path.relpath(path, tree))
    os.makedirs(os.path.dirname(keep), exist_ok=True)
    with open(path, encoding="utf-8") as f, open(keep, "w", encoding="utf-8") as k:
        k.write(f.read())
    open(path, "w", encoding="utf-8").write("\n".join(lines))
print(", ".join(sorted(set(h["file"] for h in block["hunks"]))))
PY
}

# build: an incremental build of $TREE, installed into $BUILD/inst (with
# storectl, the tests component, for 35-store-contract)
build() {
	cmake -S "$TREE" -B "$BUILD" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DWALARCHIVE_TEST_SEAMS=ON >"$LOG/cmake.log" 2>&1 &&
	cmake --build "$BUILD" -j2 >"$LOG/build.log" 2>&1 &&
	cmake --install "$BUILD" --prefix "$BUILD/inst" >/dev/null 2>&1 &&
	cmake --install "$BUILD" --prefix "$BUILD/inst" --component tests >/dev/null 2>&1 &&
	chmod -R a+rX "$BUILD/inst"
}

# run_test TEST LOGFILE: runs one test against the build; 0 if it passed
run_test() {
	local test=$1 out=$2 rc script
	case $test in
	unit:*)
		(cd "$BUILD" && "./${test#unit:}" --jobs 1 >"$out" 2>&1)
		rc=$?
		[ "$rc" -eq 0 ] && grep -q 'Synthesis:.*Failing: 0 | Crashing: 0' "$out"
		;;
	*)
		script=$(ls "$TREE"/tests/integration/"$test"*.sh 2>/dev/null | head -n 1)
		[ -n "$script" ] || { echo "no script $test" >"$out"; return 1; }
		# KEEP_TMP is for this run's own directory: the scripts clean up theirs
		KEEP_TMP= WALARCHIVE_BIN=$BUILD/inst/bin WALARCHIVE_SRC=$TREE WALARCHIVE_TMP= \
			timeout -k 10 900 bash "$script" >"$out" 2>&1
		rc=$?
		[ "$rc" -eq 0 ] && ! grep -q '^not ok - ' "$out"
		;;
	esac
}

# the copy: the tree as it is in the worktree, uncommitted changes included
(cd "$SRC" && git ls-files -co --exclude-standard -z | tar --null -T - -cf -) | tar -C "$TREE" -xf -
chmod -R a+rX "$TREE"
mapfile -t MUTS < <(table list) || exit 1
if [ $# -gt 0 ]; then
	want=" $* "
	sel=()
	for m in "${MUTS[@]}"; do [[ $want == *" ${m%%$'\t'*} "* ]] && sel+=("$m"); done
	[ ${#sel[@]} -eq $# ] || { echo "not every name given is a mutation of $TABLE"; exit 1; }
	MUTS=("${sel[@]}")
fi
[ ${#MUTS[@]} -gt 0 ] || { echo "no mutation selected"; exit 1; }

echo "== build the unchanged copy in $WORK"
build || { tail -n 30 "$LOG/build.log"; echo "the unchanged copy does not build"; exit 1; }

# the tests on the unchanged copy: each must pass
declare -A SEEN
echo "== the tests on the unchanged copy"
base_bad=0
for m in "${MUTS[@]}"; do
	for t in ${m##*$'\t'}; do
		[ -z "${SEEN[$t]:-}" ] || continue
		SEEN[$t]=1
		t0=$SECONDS
		if run_test "$t" "$LOG/base-${t#unit:}.log"; then
			echo "   $t passes ($((SECONDS - t0)) s)"
		else
			echo "   $t FAILS on the unchanged copy ($LOG/base-${t#unit:}.log)"
			base_bad=1
		fi
	done
done
if [ "$base_bad" = 1 ]; then
	echo "the tests must pass without a mutation; nothing judged (logs kept in $LOG)"
	KEEP_WORK=1
	exit 1
fi

caught=0 missed=0 stale=0
for m in "${MUTS[@]}"; do
	IFS=$'\t' read -r name promise tests <<<"$m"
	rm -rf "$WORK/orig"
	files=$(MUTATE_ORIG=$WORK/orig table apply "$name")
	rc=$?
	if [ "$rc" -ne 0 ]; then
		echo "STALE       $name: $files"
		stale=$((stale + 1))
		continue
	fi
	(cd "$WORK/orig" && for f in ${files//,/ }; do diff -u "$f" "$TREE/$f"; done) >"$LOG/$name.diff"
	if ! build; then
		echo "NOT BUILT   $name: the mutated copy does not build ($LOG/build.log)"
		cp "$LOG/build.log" "$LOG/$name.build.log"
		stale=$((stale + 1))
	else
		by=() notby=()
		t0=$SECONDS
		for t in $tests; do
			if run_test "$t" "$LOG/$name-${t#unit:}.log"; then notby+=("$t"); else by+=("$t"); fi
		done
		if [ ${#by[@]} -gt 0 ]; then
			caught=$((caught + 1))
			echo "caught      $name: by ${by[*]}${notby[*]:+ (not by ${notby[*]})} ($((SECONDS - t0)) s)"
		else
			missed=$((missed + 1))
			echo "NOT CAUGHT  $name: ${tests} all pass ($((SECONDS - t0)) s)"
		fi
		echo "            promise: $promise"
	fi
	# back to the unchanged files, with new times so that the next build sees them
	for f in ${files//,/ }; do cp "$WORK/orig/$f" "$TREE/$f"; done
done

echo "$caught caught, $missed not caught, $stale stale"
if [ "$missed" -ne 0 ] || [ "$stale" -ne 0 ] || [ "$KEEP_WORK" = 1 ]; then
	KEEP_WORK=1
	echo "(logs in $LOG)"
fi
[ "$missed" -eq 0 ] && [ "$stale" -eq 0 ]
