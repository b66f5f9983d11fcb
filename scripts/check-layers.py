#!/usr/bin/env python3
"""check-layers.py: keeps the tree's layering true (docs/DESIGN.md "Rooms").

Modules are the .c/.h files of src/ and storage/ (a .c and its .h are one module). A module's room
is its folder. scripts/layers.conf says which rooms each room may use. Two kinds of edges are read:

  include  A includes B's header             (from the sources)
  link     A's object uses a symbol B's defines (from `nm` on a build directory's objects, --build)

and the check fails, printing each offending edge, when
  - an edge goes from one room to a room it may not use (the rule of layers), or
  - the module graph has a cycle, of either kind of edge (printed as a chain A -> B -> ... -> A).

Usage: scripts/check-layers.py [--build DIR] [--root DIR]
Exit 0: clean; 1: violations (printed); 2: a usage or configuration error.
"""
import argparse
import collections
import os
import re
import subprocess
import sys

INCLUDE = re.compile(r'^\s*#\s*include\s+"([^"]+)"', re.M)


def load_rooms(path):
    allowed = {}
    with open(path, encoding='utf-8') as f:
        for n, line in enumerate(f, 1):
            line = line.split('#', 1)[0].strip()
            if not line:
                continue
            if ':' not in line:
                sys.exit(f'{path}:{n}: expected "room: rooms it may use"')
            room, uses = line.split(':', 1)
            allowed[room.strip()] = set(uses.split())
    for room, uses in allowed.items():
        for u in uses:
            if u not in allowed:
                sys.exit(f'{path}: room {room} uses {u}, which is not a room')
    return allowed


def modules(root, rooms):
    """{module: [files]} where module is 'room/stem'."""
    mods = collections.defaultdict(list)
    for room in rooms:
        d = os.path.join(root, room)
        if not os.path.isdir(d):
            sys.exit(f'layers.conf names {room}, which is not a folder')
        for name in sorted(os.listdir(d)):
            if name.endswith(('.c', '.h')):
                mods[f'{room}/{name[:-2]}'].append(os.path.join(d, name))
    return mods


def room_of(module):
    return module.rsplit('/', 1)[0]


def include_edges(root, mods):
    by_path = {}
    for m, files in mods.items():
        for f in files:
            by_path[os.path.relpath(f, root)] = m
    edges = collections.defaultdict(set)  # (a, b) -> {where}
    for m, files in mods.items():
        for f in files:
            text = open(f, encoding='utf-8', errors='replace').read()
            for inc in INCLUDE.findall(text):
                here = os.path.relpath(os.path.join(os.path.dirname(f), inc), root)
                target = by_path.get(os.path.normpath(here)) or by_path.get(os.path.normpath(inc))
                if target is None:  # "x.h" found through an include directory: match by path suffix
                    hits = [p for p in by_path if p == inc or p.endswith('/' + inc)]
                    target = by_path[hits[0]] if len(hits) == 1 else None
                if target is not None and target != m:
                    edges[(m, target)].add(f'{os.path.relpath(f, root)}: #include "{inc}"')
    return edges


def link_edges(build, root, mods):
    """Objects are mapped to modules through the build's compile_commands.json (source → output)."""
    import json
    by_path = {os.path.abspath(f): m for m, files in mods.items() for f in files}
    objs = {}
    with open(os.path.join(build, 'compile_commands.json'), encoding='utf-8') as f:
        for e in json.load(f):
            src = os.path.abspath(os.path.join(e['directory'], e['file']))
            if src in by_path and 'output' in e:
                objs[os.path.join(e['directory'], e['output'])] = by_path[src]
    defined, undefined = {}, collections.defaultdict(set)
    for obj, m in objs.items():
        out = subprocess.run(['nm', '--defined-only', '-g', obj], capture_output=True, text=True).stdout
        for line in out.splitlines():
            parts = line.split()
            if len(parts) == 3 and parts[2].startswith('cf_'):
                defined[parts[2]] = m  # the project's symbols (house style: cf_ prefix); libc interposers aside
        out = subprocess.run(['nm', '-u', obj], capture_output=True, text=True).stdout
        for line in out.splitlines():
            parts = line.split()
            if parts:
                undefined[m].add(parts[-1])
    edges = collections.defaultdict(set)
    for m, syms in undefined.items():
        for sym in syms:
            d = defined.get(sym)
            if d is not None and d != m:
                edges[(m, d)].add(f'{m} uses {sym}')
    return edges


def cycles(edges):
    graph = collections.defaultdict(set)
    for a, b in edges:
        graph[a].add(b)
    index, low, stack, on, sccs = {}, {}, [], set(), []
    counter = [0]

    def strong(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in sorted(graph[v]):
            if w not in index:
                strong(w)
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
            if len(comp) > 1:
                sccs.append(sorted(comp))

    sys.setrecursionlimit(10000)
    for v in sorted(list(graph)):
        if v not in index:
            strong(v)
    found = []
    for comp in sccs:  # one concrete cycle per component, found by BFS back to the start
        start, members = comp[0], set(comp)
        prev, queue, seen = {}, [start], {start}
        end = None
        while queue and end is None:
            v = queue.pop(0)
            for w in sorted(graph[v]):
                if w == start:
                    end = v
                    break
                if w in members and w not in seen:
                    seen.add(w)
                    prev[w] = v
                    queue.append(w)
        path = [end]
        while path[-1] != start:
            path.append(prev[path[-1]])
        found.append((comp, list(reversed(path)) + [start]))
    return found


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('--root', default=os.path.join(os.path.dirname(os.path.abspath(__file__)), '..'))
    ap.add_argument('--build', help='a build directory: also check the link graph of its objects')
    ap.add_argument('--conf', help='the rooms file (default scripts/layers.conf)')
    args = ap.parse_args()
    root = os.path.abspath(args.root)
    rooms = load_rooms(args.conf or os.path.join(root, 'scripts', 'layers.conf'))
    mods = modules(root, rooms)
    bad = 0
    kinds = [('include', include_edges(root, mods))]
    if args.build:
        kinds.append(('link', link_edges(args.build, root, mods)))
    for kind, edges in kinds:
        for (a, b), where in sorted(edges.items()):
            ra, rb = room_of(a), room_of(b)
            if ra != rb and rb not in rooms[ra]:
                bad += 1
                print(f'layers: {kind} edge {a} -> {b} crosses the rules ({ra} may use: '
                      f'{" ".join(sorted(rooms[ra])) or "nothing"}): {sorted(where)[0]}')
        for comp, path in cycles(edges):
            bad += 1
            steps = ' -> '.join(path)
            print(f'layers: {kind} cycle among {len(comp)} modules: {steps}')
            for a, b in zip(path, path[1:]):
                print(f'    {a} -> {b}: {sorted(edges[(a, b)])[0]}')
    nmods = len(mods)
    nedges = sum(len(e) for _, e in kinds)
    if bad:
        print(f'layers: {bad} violation(s) in {nmods} modules')
        return 1
    print(f'layers: ok ({nmods} modules, {len(rooms)} rooms, {nedges} edges checked: '
          f'{", ".join(k for k, _ in kinds)})')
    return 0


if __name__ == '__main__':
    sys.exit(main())
