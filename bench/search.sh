#!/usr/bin/env bash
# bench/search.sh [FILES] [QUERIES]: search latency on FILES files (default 100 000; issue 21: p99 <
# 50 ms). Builds the release build (or uses BENCH_BUILD) with bench/cf-search-seed, initialises a
# fresh server, stops it, fills its store with cf-search-seed (through the storage library, as
# uploads do, without HTTP and the scanner: creating 100 000 files over HTTP would take far longer),
# starts it again (the index is built at start: its size and the time it took are taken from the
# log and the process's RSS), then runs bench/search.mjs: QUERIES (default 1000) searches per arm,
# owner and a member granted one folder, of varying selectivity, one at a time. Prints a markdown
# table. Port: BENCH_PORT_BASE + 5. Measures; asserts no time.
source "$(dirname "$0")/lib/common.sh"
trap 'bench_coffer_stop 2>/dev/null || true; rm -rf "$BENCH_TMP"' EXIT
FILES=${1:-100000}
QUERIES=${2:-1000}
[[ $FILES =~ ^[1-9][0-9]*$ ]] && [[ $QUERIES =~ ^[1-9][0-9]*$ ]] || { echo "usage: bench/search.sh [FILES] [QUERIES]" >&2; exit 2; }
PORT=$((BENCH_PORT_BASE + 5))
bench_need node curl
bench_step "build"
bench_build
BUILD_DIR=$(dirname "$(dirname "$COFFER_BIN")")
ninja -C "$BUILD_DIR" bench/cf-search-seed >/dev/null
bench_port_free "$PORT"

bench_step "initialise a server"
bench_coffer_start search "$PORT"
bench_coffer_stop
DIR="$BENCH_TMP/search"

bench_step "seed $FILES files"
"$BUILD_DIR/bench/cf-search-seed" "$DIR/data" "$DIR/master.key" "$DIR/master.key.anchor" default admin "$FILES" 8

bench_step "start on the seeded store (the index is built at start)"
t0=$(date +%s.%N)
bench_coffer_start search "$PORT"
t1=$(date +%s.%N)
rss_kb=$(ps -o rss= -p "$COFFER_PID" | tr -d ' ')
echo "start-up with the index: $(python3 -c "print(f'{$t1 - $t0:.1f}')") s until /healthz answered; server RSS $((rss_kb / 1024)) MiB"

bench_step "search"
node "$BENCH_TOP/bench/search.mjs" "https://127.0.0.1:$PORT" bench-password-1 "$FILES" "$QUERIES"
rss_kb=$(ps -o rss= -p "$COFFER_PID" | tr -d ' ')
echo "server RSS after the searches: $((rss_kb / 1024)) MiB"
bench_coffer_stop
