#!/usr/bin/env python3
"""Checks that lib/ is layered: a file includes only headers of its own
folder or of the layers below it (README's developer section has the map),
and nothing includes itself through others: no file, and no folder (a
driver that uses another that uses it back).

    python3 tests/lib/layers.py [SRC]     prints each violation; exit 1 if any
"""
import os
import re
import sys

# Lowest first; a layer may include its own folder and every layer before it.
LAYERS = ["base", "sys", "io", "pg", "store", "archive", "ahead"]
# Folders beside the stack: what each may include.
BESIDE = {"replinit": ["base", "sys", "io", "pg"],
          "check": LAYERS,
          "pgmodule": LAYERS}
INCLUDE = re.compile(r'^\s*#\s*include\s+"([^"]+)"', re.M)


def layer_of(rel):
    """The layer of a path relative to lib/ (its first folder)."""
    return rel.split("/", 1)[0] if "/" in rel else None


def allowed(layer):
    if layer in BESIDE:
        return set(BESIDE[layer]) | {layer}
    if layer in LAYERS:
        return set(LAYERS[:LAYERS.index(layer) + 1])
    return set()


def main():
    src = sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(__file__), "..", "..")
    lib = os.path.join(src, "lib")
    files = {}
    for root, _, names in os.walk(lib):
        for n in names:
            if n.endswith((".c", ".h")):
                path = os.path.join(root, n)
                files[os.path.relpath(path, lib)] = open(path, encoding="utf-8").read()
    problems = []
    graph = {}
    for rel, text in sorted(files.items()):
        layer = layer_of(rel)
        if layer is None:
            problems.append("lib/%s: every file of lib/ belongs in a layer's folder" % rel)
            continue
        if layer not in LAYERS and layer not in BESIDE:
            problems.append("lib/%s: folder %s is not a layer (tests/lib/layers.py)" % (rel, layer))
            continue
        graph[rel] = []
        for inc in INCLUDE.findall(text):
            here = os.path.normpath(os.path.join(os.path.dirname(rel), inc))
            if inc in files:                    # "layer/name.h", from lib/
                target = inc
            elif here in files:                 # "name.h" beside the file, or "sub/name.h"
                target = here
            else:
                problems.append("lib/%s: includes \"%s\", which is not a header of lib/" % (rel, inc))
                continue
            graph[rel].append(target)
            tl = layer_of(target)
            if tl not in allowed(layer):
                problems.append("lib/%s (layer %s) includes lib/%s (layer %s), which is above it"
                                % (rel, layer, target, tl))
    # include cycles: between files (a header that, through others, includes
    # itself), and between folders (a driver that uses another that uses it:
    # inside one folder, files may share a private header)
    def cycles(graph, label):
        state, stack = {}, []

        def visit(m):
            state[m] = 1
            stack.append(m)
            for n in sorted(graph.get(m, ())):
                if state.get(n) == 1:
                    cyc = stack[stack.index(n):] + [n]
                    problems.append("include cycle (%s): %s" % (label, " -> ".join("lib/" + c for c in cyc)))
                elif n not in state:
                    visit(n)
            stack.pop()
            state[m] = 2
        for m in sorted(graph):
            if m not in state:
                visit(m)
    cycles(graph, "files")
    folders = {}
    for rel, targets in graph.items():
        d = os.path.dirname(rel)
        folders.setdefault(d, set()).update(os.path.dirname(t) for t in targets if os.path.dirname(t) != d)
    cycles(folders, "folders")
    for p in problems:
        print("layers: " + p)
    print("layers: %d files, %d problems" % (len(files), len(problems)))
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
