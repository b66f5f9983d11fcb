#!/usr/bin/env bash
# scripts/test.sh: installs what the tests need, builds with ASan+UBSan, runs every test suite
# (unit, integration, interop, fuzz-replay, ...), prints "N passed, N failed" and exits non-zero on
# any failure. Safe to run again: installs and configures only what is missing.
set -euo pipefail
cd "$(dirname "$0")/.."

# bench: the benchmark's smoke run (suite bench) needs h2o, nginx, wrk, hyperfine besides the test tools.
scripts/deps.sh bench
if [ -f tests/package.json ]; then
  (cd tests && npm ci --no-audit --no-fund --loglevel=error)
fi

builddir=build-asan
if [ ! -f "$builddir/build.ninja" ]; then
  meson setup "$builddir" --buildtype=debugoptimized \
    -Db_sanitize=address,undefined -Dc_args=-fno-sanitize-recover=all -Dfault_injection=true >/dev/null
fi
# The test build carries the fault-injection hooks (tests/integration/fault.test.mjs); inert unless armed.
meson configure "$builddir" -Dfault_injection=true >/dev/null
ninja -C "$builddir"

export ASAN_OPTIONS="detect_leaks=1:halt_on_error=1:abort_on_error=0:detect_stack_use_after_return=0"
export UBSAN_OPTIONS="halt_on_error=1:print_stacktrace=1"
export LSAN_OPTIONS="suppressions=$PWD/tests/lsan.supp:print_suppressions=0"

rc=0
meson test -C "$builddir" --no-rebuild --print-errorlogs --num-processes 2 "$@" || rc=$?

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
