#!/usr/bin/env bash
# scripts/test.sh [--busy] [MESON TEST ARGS...]: installs what the tests need, builds with
# ASan+UBSan, runs every test suite (unit, integration, interop, fuzz-replay, ...), prints
# "N passed, N failed" and exits non-zero on any failure. Safe to run again: installs and configures
# only what is missing. Arguments other than --busy go to `meson test` (suite or test names, ...).
#
#   --busy  runs the suites with two CPU hogs beside them (stress-ng --cpu 2), so that a test that
#           assumes timing fails here before it fails in CI; the hogs stop when this script exits.
#           meson's per-test timeouts are doubled meanwhile (a later --timeout-multiplier wins).
# COFFER_BUILDDIR: the build directory (default build-asan).
# The cluster-* suites need Ceph and PostgreSQL: brought up in BUILDDIR/cluster (scripts/cluster.sh,
# no Coffer nodes: each test server makes its own database and two nodes) and down at the end.
set -eEuo pipefail
cd "$(dirname "$0")/.."
# A failing step says which (set -e alone exits silently).
trap 'echo "test: line $LINENO: \"$BASH_COMMAND\" failed (exit $?)" >&2' ERR

busy=
args=()
for a in "$@"; do
  if [ "$a" = --busy ]; then busy=1; else args+=("$a"); fi
done

# bench: the benchmark's smoke run (suite bench) needs h2o, nginx, h2load, hyperfine, clamscan besides
# the test tools (scripts/deps.sh lists every command and who calls it).
scripts/deps.sh bench
if [ -f tests/package.json ]; then
  (cd tests && npm ci --no-audit --no-fund --loglevel=error)
fi

builddir=${COFFER_BUILDDIR:-build-asan}
if [ ! -f "$builddir/build.ninja" ]; then
  meson setup "$builddir" --buildtype=debugoptimized \
    -Db_sanitize=address,undefined -Dc_args=-fno-sanitize-recover=all -Dfault_injection=true >/dev/null
fi
# The test build carries the fault-injection hooks (tests/integration/fault.test.mjs); inert unless armed.
meson configure "$builddir" -Dfault_injection=true >/dev/null
ninja -C "$builddir"
# The rooms' rules (docs/DESIGN.md "Rooms", scripts/layers.conf) on the include and link edges of
# the build just made: a back-edge or a module cycle fails here, before any suite runs.
scripts/check-layers.py --build "$builddir"

export ASAN_OPTIONS="detect_leaks=1:halt_on_error=1:abort_on_error=0:detect_stack_use_after_return=0"
export UBSAN_OPTIONS="halt_on_error=1:print_stacktrace=1"
export LSAN_OPTIONS="suppressions=$PWD/tests/lsan.supp:print_suppressions=0"

hogs=
stop_hogs() {
  if [ -n "$hogs" ]; then
    kill "$hogs" 2>/dev/null || true # stress-ng stops its workers on SIGTERM
    wait "$hogs" 2>/dev/null || true
    hogs=
  fi
}
# The cluster-* suites (issue 24; tests/meson.build) run against Ceph and PostgreSQL without nodes
# (scripts/cluster.sh with CLUSTER_NODES=0) in $builddir/cluster, where meson points them
# (COFFER_TEST_CLUSTER); brought up here and down again however this script ends.
cluster_dir=$(cd "$builddir" && pwd)/cluster
cluster_up=
cluster_down() {
  if [ -n "$cluster_up" ]; then
    CLUSTER_DIR=$cluster_dir scripts/cluster.sh down || true
    cluster_up=
  fi
}
trap 'stop_hogs; cluster_down' EXIT
timeouts=()
if [ -n "$busy" ]; then
  command -v stress-ng >/dev/null || { echo "test: stress-ng not found (scripts/deps.sh test installs it)" >&2; exit 1; }
  # Bounded in time as well, should this script be killed before its trap runs (CI stops at 90 min).
  stress-ng --cpu 2 --timeout 2h --quiet &
  hogs=$!
  echo "test: --busy: two CPU hogs (stress-ng --cpu 2, pid $hogs) run beside the suites" >&2
  timeouts=(--timeout-multiplier 2)
fi

# A cluster left by a run that was killed: its processes stopped (only those it recorded), then up.
CLUSTER_DIR=$cluster_dir scripts/cluster.sh down >/dev/null 2>&1 || true
cluster_up=1
CLUSTER_NODES=0 CLUSTER_DIR=$cluster_dir scripts/cluster.sh up "$builddir"

rc=0
meson test -C "$builddir" --no-rebuild --print-errorlogs --num-processes 2 "${timeouts[@]}" "${args[@]}" || rc=$?
stop_hogs
cluster_down

# One plain closing line that any CI reader understands.
python3 - "$builddir/meson-logs/testlog.json" <<'PY'
import json, sys
passed = failed = skipped = 0
with open(sys.argv[1]) as f:
    for line in f:
        r = json.loads(line).get("result")
        if r in ("OK", "EXPECTEDFAIL"): passed += 1
        elif r == "SKIP": skipped += 1
        else: failed += 1
print(f"{passed} passed, {failed} failed, {skipped} skipped")
PY
exit "$rc"
