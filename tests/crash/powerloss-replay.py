#!/usr/bin/python3
"""Replays a log written by powerloss.c (plus the test script's own lines) and
checks, for a power loss after EVERY logged event, what would survive.

Model (POSIX, no file system being kind): a file's data survives only as it
was at its last successful fsync/fdatasync (F); a directory entry made or
removed by create, mkdir, rename, link or unlink (C M R L U) survives if
that directory was fsynced afterwards (D); a path survives only if every
directory above it survives.  Each power-loss point is tried in two orders:
the directory changes not yet fsynced are lost, or they all survive (a
journal committed the renames, as ext4 and XFS may, but not the data that
was never fsynced) -- the order in which a file renamed into place before
its data was fsynced would keep its name with incomplete data.  Lines the
script adds:
  I <ino> <path> <copy>   an object that existed (durably) before the run
  X <rc> <path>           a program exited rc; when rc is 0, <path> (the
                          final object or restored file) must survive intact
Checks after each event:
  1. every surviving final name (a base name not starting with '.') holds
     complete, right data: the source file's bytes, or an LZ4 frame of them
     for a '.lz4' name, or for walarchive.info the content of the file
     $POWERLOSS_INFO names;
  2. after "X 0 path": path survives, with the right data.
Usage: powerloss-replay.py LOG SOURCE ROOT...   (ROOT: directories that
exist durably from the start).  Prints one line per problem (at most 20)
and "checked N power-loss points"; exits 1 on any problem."""
import os
import subprocess
import sys

log_path, source = sys.argv[1], sys.argv[2]
roots = set(os.path.normpath(r) for r in sys.argv[3:])
want = open(source, "rb").read()

durable = {}     # path -> ("f", key) | ("d", None)
pending = {}     # dir -> [(op, name, value)]
content = {}     # key -> snapshot path (last fsync)
gen = {}         # ino -> generation, so a reused inode is a new file
must = {}        # path -> event number from which it must survive
verdict = {}     # snapshot path -> (ok, why)
problems = []


def key_of(ino):
    return (ino, gen.get(ino, 0))


def queue(path, op, value=None):
    d, name = os.path.split(path)
    pending.setdefault(d, []).append((op, name, value))


def apply_dir(d):
    for op, name, value in pending.pop(d, []):
        p = os.path.join(d, name)
        if op == "add":
            durable[p] = value
        else:
            durable.pop(p, None)


def with_pending():
    """The directory entries if every change not yet fsynced survives too."""
    world = dict(durable)
    for d, ops in pending.items():
        for op, name, value in ops:
            p = os.path.join(d, name)
            if op == "add":
                world[p] = value
            else:
                world.pop(p, None)
    return world


def survives(path, world):
    d = os.path.dirname(path)
    while d not in roots:
        if world.get(d, ("f",))[0] != "d":
            return False
        nd = os.path.dirname(d)
        if nd == d:
            return False
        d = nd
    return path in roots or path in world


def check_data(path, key):
    snap = content.get(key)
    if snap is None:
        return False, "no fsynced data"
    if snap not in verdict:
        data = open(snap, "rb").read()
        if os.path.basename(path) == "walarchive.info" and os.environ.get("POWERLOSS_INFO"):
            ok = data == open(os.environ["POWERLOSS_INFO"], "rb").read()
            why = "fsynced data is not the complete walarchive.info" if not ok else ""
        elif path.endswith(".lz4"):
            r = subprocess.run(["lz4", "-dc"], input=data, capture_output=True)
            ok = r.returncode == 0 and r.stdout == want
            why = "fsynced data is not a complete lz4 frame of the source" if not ok else ""
        else:
            ok = data == want
            why = "fsynced data (%d bytes) differs from the source (%d bytes)" % (
                len(data), len(want)) if not ok else ""
        verdict[snap] = (ok, why)
    return verdict[snap]


def check(n, event):
    for order, world in (("renames lost", durable), ("renames kept", with_pending())):
        check_world(n, event, order, world)


def check_world(n, event, order, world):
    for path, (kind, key) in list(world.items()):
        if kind != "f" or os.path.basename(path).startswith("."):
            continue
        if not survives(path, world):
            continue
        ok, why = check_data(path, key)
        if not ok:
            problems.append("power loss after event %d (%s), %s: %s: %s" % (
                n, event, order, path, why))
    for path, since in must.items():
        if not survives(path, world):
            problems.append("power loss after event %d (%s), %s: %s was reported done "
                            "(exit 0 at event %d) but would not survive" % (
                                n, event, order, path, since))
        elif world[path][0] == "f":
            ok, why = check_data(path, world[path][1])
            if not ok:
                problems.append("power loss after event %d (%s), %s: %s was reported done "
                                "but %s" % (n, event, order, path, why))


events = 0
for n, line in enumerate(open(log_path, encoding="utf-8", errors="replace"), 1):
    f = line.rstrip("\n").split(" ")
    t = f[0]
    if t == "I":
        ino = int(f[1])
        gen[ino] = gen.get(ino, 0) + 1
        durable[f[2]] = ("f", key_of(ino))
        content[key_of(ino)] = f[3]
        continue
    if t == "C":
        ino = int(f[1])
        gen[ino] = gen.get(ino, 0) + 1
        queue(f[2], "add", ("f", key_of(ino)))
    elif t == "M":
        queue(f[1], "add", ("d", None))
    elif t in ("R", "L"):
        ino = int(f[1])
        if t == "R":
            queue(f[2], "del")
        queue(f[3], "add", ("f", key_of(ino)))
    elif t == "U":
        queue(f[1], "del")
    elif t == "F":
        content[key_of(int(f[1]))] = f[2]
    elif t == "D":
        apply_dir(os.path.normpath(f[1]))
    elif t == "X":
        if f[1] == "0":
            must[f[2]] = n
    else:
        continue
    events += 1
    check(n, line.strip()[:120])
    if len(problems) > 20:
        break

seen = set()
for p in problems:
    short = p.split(": ", 1)[1]
    if short not in seen:
        seen.add(short)
        print(p)
print("checked %d power-loss points" % events)
sys.exit(1 if problems else 0)
