#!/usr/bin/env python3
"""Prints the dependency graph between agent/src's top-level modules and
fails when it has a circle.

A module is a top-level file `agent/src/X.rs` with its folder `agent/src/X/`.
An edge X -> Y is any `crate::Y` path in X's code (comments are skipped, so
doc links do not count). Usage: python3 .ci/module-graph.py [agent/src]
"""
import os
import re
import sys

src = sys.argv[1] if len(sys.argv) > 1 else "agent/src"
edges = {}
for d, _, files in os.walk(src):
    for f in files:
        if not f.endswith(".rs"):
            continue
        path = os.path.join(d, f)
        rel = os.path.relpath(path, src)
        top = rel.split(os.sep)[0]
        top = top[:-3] if top.endswith(".rs") else top
        if top in ("main", "lib"):
            continue
        deps = edges.setdefault(top, set())
        for line in open(path, encoding="utf-8"):
            code = line.split("//", 1)[0]
            for m in re.finditer(r"\bcrate::(\w+)", code):
                if m.group(1) != top:
                    deps.add(m.group(1))
            # `use crate::{a, b::c}`
            for m in re.finditer(r"\bcrate::\{([^}]*)\}", code):
                for part in m.group(1).split(","):
                    name = part.strip().split("::")[0].split(" ")[0]
                    if name and name != top:
                        deps.add(name)

# Tarjan's strongly connected components.
index, low, stack, on, sccs, counter = {}, {}, [], set(), [], [0]


def visit(v):
    index[v] = low[v] = counter[0]
    counter[0] += 1
    stack.append(v)
    on.add(v)
    for w in sorted(edges.get(v, ())):
        if w not in edges:
            continue
        if w not in index:
            visit(w)
            low[v] = min(low[v], low[w])
        elif w in on:
            low[v] = min(low[v], index[w])
    if low[v] == index[v]:
        comp = []
        while True:
            w = stack.pop()
            on.discard(w)
            comp.append(w)
            if w == v:
                break
        sccs.append(comp)


sys.setrecursionlimit(10000)
for v in sorted(edges):
    if v not in index:
        visit(v)

for v in sorted(edges):
    print(f"{v:10} -> {', '.join(sorted(edges[v])) or '-'}")
circles = [sorted(c) for c in sccs if len(c) > 1]
if circles:
    for c in circles:
        print("import circle:", " <-> ".join(c), file=sys.stderr)
    sys.exit(1)
print("no import circle between top-level modules")
