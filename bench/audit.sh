#!/usr/bin/env bash
# bench/audit.sh [RUNS]: downloads per second of a 4 KiB file over h2 with the durable provenance
# "began" write (the product) versus the same server without transfer events
# (COFFER_BENCH_NO_TRANSFER_AUDIT=1), at two concurrencies: 16 connections × 10 streams
# (throughput: concurrent downloads share group commits) and 1 × 1 (latency: every download waits
# for its own commit, about one fsync). Prints a markdown table with medians and the ratios.
#
# Release builds ignore that variable (no environment variable switches provenance off): this script
# builds its own release build-bench with -Dbench_knobs=true and runs both arms on it, so that the
# event is the one difference. BENCH_BUILD=DIR uses another build, which must have the option.
# bench/run.sh measures the 1 × 1 case as its scenario (8) in the same way; this script adds the
# 16 × 10 case. Port: BENCH_PORT_BASE + 4 (default 19447).
: "${BENCH_BUILD:=build-bench}"
source "$(dirname "$0")/lib/common.sh"
runs=${1:-3}
if [ "$BENCH_BUILD" = build-bench ]; then
  "$BENCH_TOP/scripts/deps.sh" bench
  [ -f "$BENCH_TOP/build-bench/build.ninja" ] ||
    meson setup "$BENCH_TOP/build-bench" --buildtype=release -Dbench_knobs=true >/dev/null
  meson configure "$BENCH_TOP/build-bench" -Dbench_knobs=true >/dev/null
  ninja -C "$BENCH_TOP/build-bench" >/dev/null
fi
bench_step "build and tools"
bench_build
bench_need h2load curl node python3 openssl
port=$((BENCH_PORT_BASE + 4))
bench_port_free "$port"
trap 'rc=$?; [ -n "${COFFER_PID:-}" ] && bench_coffer_stop; rm -rf "$BENCH_TMP"; exit $rc' EXIT
declare -a with_many without_many with_one without_one
for mode in with without; do
  bench_step "server $mode transfer events"
  if [ "$mode" = with ]; then bench_coffer_start audit-$mode $port; else bench_coffer_start audit-$mode $port COFFER_BENCH_NO_TRANSFER_AUDIT=1; fi
  if [ "$mode" = without ] && ! grep -q 'are NOT recorded' "$BENCH_TMP/audit-$mode/serve.log"; then
    echo "bench: $COFFER_BIN ignores COFFER_BENCH_NO_TRANSFER_AUDIT (build it with -Dbench_knobs=true)" >&2
    bench_coffer_stop; exit 1
  fi
  base="https://127.0.0.1:$port"
  head -c 4096 /dev/urandom > "$BENCH_TMP/4k.bin"
  out=$(bench_client login "$base" -); read -r token root <<<"$out"
  id=$(bench_client upload "$base" "$token" "$root" "$BENCH_TMP/4k.bin")
  url="https://127.0.0.1:$port/api/v1/files/$id/content"
  for _ in $(seq 1 "$runs"); do
    many=$(bench_h2load_rps -c 16 -m 10 -t 1 -D 6 --warm-up-time 1 -H "authorization: Bearer $token" "$url")
    one=$(bench_h2load_rps -c 1 -m 1 -t 1 -D 4 --warm-up-time 1 -H "authorization: Bearer $token" "$url")
    if [ "$mode" = with ]; then with_many+=("$many"); with_one+=("$one"); else without_many+=("$many"); without_one+=("$one"); fi
  done
  bench_coffer_stop; COFFER_PID=
done
wm=$(bench_median "${with_many[@]}"); wom=$(bench_median "${without_many[@]}")
wo1=$(bench_median "${with_one[@]}"); woo1=$(bench_median "${without_one[@]}")
echo "| 4 KiB downloads over h2, req/s (median of $runs) | with the durable provenance write | without transfer events | ratio |"
echo "| --- | --- | --- | --- |"
awk -v a="$wm" -v b="$wom" 'BEGIN { printf "| 16 connections × 10 streams | %.0f | %.0f | %.2f |\n", a, b, a / b }'
awk -v a="$wo1" -v b="$woo1" 'BEGIN { printf "| 1 connection × 1 stream | %.0f | %.0f | %.2f |\n", a, b, a / b }'
rm -rf "$BENCH_TMP"
