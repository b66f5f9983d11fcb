#!/usr/bin/env bash
# bench/audit.sh [RUNS]: downloads per second of a 4 KiB file over h2 with the durable provenance
# "began" write (the product) versus the same server without transfer events
# (COFFER_BENCH_NO_TRANSFER_AUDIT=1). Prints a markdown table with medians and the ratio.
source "$(dirname "$0")/lib/common.sh"
runs=${1:-3}
bench_build
port=19443
declare -a with without
for mode in with without; do
  if [ "$mode" = with ]; then bench_coffer_start audit-$mode $port; else bench_coffer_start audit-$mode $port COFFER_BENCH_NO_TRANSFER_AUDIT=1; fi
  read -r token id < <(node "$BENCH_TOP/bench/lib/setup.mjs" "https://127.0.0.1:$port" 4096 1)
  for _ in $(seq 1 "$runs"); do
    rps=$(bench_h2load_rps -c 16 -m 10 -t 1 -D 6 --warm-up-time 1 -H "authorization: Bearer $token" \
      "https://127.0.0.1:$port/api/v1/files/$id/content")
    if [ "$mode" = with ]; then with+=("$rps"); else without+=("$rps"); fi
  done
  bench_coffer_stop
done
w=$(bench_median "${with[@]}"); wo=$(bench_median "${without[@]}")
echo "| scenario (4 KiB download, h2, 16 conn × 10 streams) | req/s (median of $runs) |"
echo "| --- | --- |"
echo "| with the durable provenance write | $w |"
echo "| without transfer events | $wo |"
awk -v a="$w" -v b="$wo" 'BEGIN { printf "| ratio | %.2f |\n", a / b }'
rm -rf "$BENCH_TMP"
