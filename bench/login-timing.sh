#!/usr/bin/env bash
# bench/login-timing.sh [SAMPLES] [--check]: whether login failures take the same time whether or
# not the user (or the tenant) exists: one Argon2id verification on every path. Starts the release
# build (or BENCH_BUILD) with the production Argon2 cost, times SAMPLES logins per arm (default 200)
# and prints the distributions and their statistical comparison (bench/lib/login-timing.mjs).
# Outside the pass/fail suite on purpose (tests/integration/identity.test.mjs checks the statuses
# and bodies, never a duration). --check exits 1 when an arm differs.
source "$(dirname "$0")/lib/common.sh"
samples=${1:-200}
[[ $samples =~ ^[0-9]+$ ]] || { echo "usage: bench/login-timing.sh [SAMPLES] [--check]" >&2; exit 2; }
bench_build
bench_need node
port=$((BENCH_PORT_BASE + 3))
trap 'rc=$?; [ -n "${COFFER_PID:-}" ] && bench_coffer_stop; rm -rf "$BENCH_TMP"; exit $rc' EXIT
# Failure limits high and the window short: thousands of refused logins are the point here.
BENCH_EXTRA_YAML='auth: { max_failures_per_account: 1000, max_failures_per_ip: 1000, failure_window: 10s }' \
  bench_coffer_start login-timing $port
echo "bench: login timing, $samples samples per arm, $(nproc) cores, $(date -u +%FT%TZ)" >&2
node "$BENCH_TOP/bench/lib/login-timing.mjs" "https://127.0.0.1:$port" "$samples" "${@:2}"
