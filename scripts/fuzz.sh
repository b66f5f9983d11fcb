#!/usr/bin/env bash
# scripts/fuzz.sh SECONDS [TARGET...]: runs every libFuzzer target of tests/fuzz (or the ones named)
# for SECONDS each (clang, ASan + UBSan), two at a time, and prints a markdown table of the results. Exits non-zero if any
# target crashed, leaked, timed out or broke an invariant. Crash inputs go to
# build-fuzz/artifacts/<target>/; add them to tests/fuzz/corpus/<target>/ once fixed, so that
# `meson test --suite fuzz-replay` guards them.
set -euo pipefail
trap 'echo "fuzz: line $LINENO: \"$BASH_COMMAND\" failed (exit $?)" >&2' ERR # say what failed

secs=${1:-60}
[[ $secs =~ ^[0-9]+$ ]] || { echo "usage: $0 SECONDS [TARGET...]" >&2; exit 2; }
root=$(cd "$(dirname "$0")/.." && pwd)
build=$root/build-fuzz
jobs=2 # cores on the reference machine

if ! command -v clang >/dev/null; then
  sudo=; [[ $(id -u) -eq 0 ]] || sudo=sudo
  $sudo apt-get install -y clang
fi

if [[ ! -f $build/build.ninja ]]; then
  CC=clang meson setup "$build" "$root" --buildtype=debugoptimized \
    -Db_sanitize=address,undefined -Db_lundef=false -Dfuzzing=true
fi
ninja -C "$build" -j"$jobs" >/dev/null

targets=()
shift || true
for f in "$root"/tests/fuzz/fuzz_*.c; do
  t=$(basename "$f" .c); t=${t#fuzz_}
  if (($# > 0)) && [[ " $* " != *" $t "* ]]; then continue; fi
  [[ -x $build/tests/fuzz/fuzz_$t ]] || { echo "fuzz.sh: $build/tests/fuzz/fuzz_$t missing (-Dfuzzing=true with clang?)" >&2; exit 1; }
  targets+=("$t")
done

export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1:allocator_may_return_null=0
export UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1

run_one() {
  local t=$1 corpus=$build/corpus/$1 art=$build/artifacts/$1 log=$build/fuzz-logs/$1.log
  mkdir -p "$corpus" "$art" "$(dirname "$log")"
  cp -n "$root"/tests/fuzz/corpus/"$t"/* "$corpus"/ 2>/dev/null || true
  local dict=()
  [[ -f $root/tests/fuzz/$t.dict ]] && dict=(-dict="$root/tests/fuzz/$t.dict")
  local rc=0
  "$build/tests/fuzz/fuzz_$t" "$corpus" "${dict[@]}" \
    -max_total_time="$secs" -print_final_stats=1 -rss_limit_mb=2048 -timeout=10 -max_len=65536 \
    -artifact_prefix="$art/" >"$log" 2>&1 || rc=$?
  echo "$rc" >"$log.rc"
}

start=$(date +%s)
running=0
for t in "${targets[@]}"; do
  run_one "$t" &
  running=$((running + 1))
  if ((running >= jobs)); then
    wait -n || true
    running=$((running - 1))
  fi
done
wait

fail=0
echo
echo "| target | seconds | executions | exec/s | corpus size | result |"
echo "| --- | --- | --- | --- | --- | --- |"
for t in "${targets[@]}"; do
  log=$build/fuzz-logs/$t.log
  rc=$(cat "$log.rc")
  # A target that crashed prints no "Done" line: every lookup here may find nothing (set -e).
  runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1 || true)
  speed=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -1 || true)
  elapsed=$(grep -o 'Done [0-9]* runs in [0-9]* second' "$log" | tail -1 | awk '{print $5}' || true)
  files=$(find "$build/corpus/$t" -type f | wc -l)
  bytes=$(du -sb "$build/corpus/$t" | cut -f1)
  if [[ $rc -eq 0 ]]; then
    result=ok
  else
    fail=1
    kind=$(grep -oE 'ERROR: (AddressSanitizer|LeakSanitizer|UndefinedBehaviorSanitizer|libFuzzer): [a-z-]+' "$log" | head -1 || true)
    grep -q 'invariant violated' "$log" && kind="invariant: $(grep -m1 'invariant violated' "$log" | sed 's/.*violated: //')"
    grep -q 'SUMMARY: UndefinedBehaviorSanitizer\|runtime error' "$log" && [[ -z $kind ]] && kind="UBSan"
    result="FAIL (${kind:-exit $rc}; $(ls "$build/artifacts/$t" | head -1))"
  fi
  echo "| $t | ${elapsed:-?} | ${runs:-?} | ${speed:-?} | $files files, $bytes B | $result |"
done
echo
echo "total wall time: $(( $(date +%s) - start )) s; logs in $build/fuzz-logs, artifacts in $build/artifacts"
exit $fail
