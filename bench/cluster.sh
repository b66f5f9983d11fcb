#!/usr/bin/env bash
# bench/cluster.sh [quick|full|smoke] [--profile] [--out=DIR] (also `bench/run.sh cluster [MODE] …`):
# the cluster scenario of issue 24. The client load of run.sh's (2) CONC × 1 MiB downloads and (3)
# metadata GET (CONC connections × 10 streams), with the same public client (h2load over TLS 1.3 + h2),
# against three arms in one session, their runs alternating so that all three see the same noise:
#   single    one node on its embedded RocksDB store (run.sh's server and configuration)
#   cluster1  the local test cluster of scripts/cluster.sh (PostgreSQL + Ceph RADOS, nodes of its own
#             configuration), the whole load on node 1
#   cluster2  the same cluster, the load split over its two nodes at once (CONC/2 connections each,
#             one h2load per node), throughputs summed
# Prints a table of each arm's median with the cluster arms as ratios to the single node of the same
# run, and where the time goes: the CPU seconds each process group used during each arm (the Coffer
# node(s) with their scanners, PostgreSQL's postmaster and backends, Ceph's OSDs and monitor, and the
# rest of the machine: h2load and whatever else runs), from /proc, per GB moved or per 10 000
# requests. --profile adds `perf record -a -g` (the whole machine) during each cluster2 arm:
# OUT/profile-cluster-<scenario>.txt (top symbols, by process, by shared object).
#
# Until two nodes can share a store (issue 24's several writers), cluster.sh's second node does not
# start: the cluster is brought up with one node and cluster2 is reported as "—".
#
# Environment: as run.sh (BENCH_BUILD, BENCH_PORT_BASE: the single node listens on BASE + 6,
# BENCH_RUNS, BENCH_PERF_FREQ); the cluster lives in OUT/cluster (CLUSTER_DIR) and is taken down at
# the end, also on failure. Asserts nothing about time; fails only when a measurement is missing.
source "$(dirname "$0")/lib/common.sh"
trap 'rm -rf "$BENCH_TMP"' EXIT # until cleanup() below takes over
mode=quick
PROFILE=0
OUT=${BENCH_OUT:-}
for a in "$@"; do
  case "$a" in
    quick|full|smoke) mode=$a ;;
    cluster) ;;
    --profile) PROFILE=1 ;;
    --out=*) OUT=${a#--out=} ;;
    *) echo "usage: bench/cluster.sh [quick|full|smoke] [--profile] [--out=DIR]" >&2; exit 2 ;;
  esac
done
MiB=$((1 << 20))
case "$mode" in
  full)  RUNS=3; DUR=6; CONC=32 ;;
  quick) RUNS=3; DUR=3; CONC=32 ;;
  smoke) RUNS=1; DUR=1; CONC=4 ;;
esac
if [ -n "${BENCH_RUNS:-}" ]; then
  [[ $BENCH_RUNS =~ ^[1-9][0-9]?$ ]] || { echo "bench: BENCH_RUNS must be a number from 1 to 99" >&2; exit 2; }
  RUNS=$BENCH_RUNS
fi
OUT=${OUT:-/tmp/coffer-bench-cluster-$mode-$(date -u +%Y%m%dT%H%M%SZ)}
mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)
: > "$OUT/runs.tsv"
export CLUSTER_DIR="$OUT/cluster"

bench_step "build and tools"
bench_build
bench_need h2load curl node openssl awk timeout
[ "$PROFILE" = 0 ] || bench_need perf
bench_cert
bench_sigs
SPORT=$((BENCH_PORT_BASE + 6))
bench_port_free "$SPORT"

bench_step "test files"
head -c 4096 /dev/urandom > "$BENCH_TMP/4k.bin"
head -c "$MiB" /dev/urandom > "$BENCH_TMP/1m.bin"

H2LOAD=(--tls13-ciphers=TLS_AES_256_GCM_SHA384 -t 1)
PERF_PID=
CLUSTER_UP=0
cleanup() {
  local rc=$?
  set +e
  trap - ERR
  [ -n "${PERF_PID:-}" ] && kill -INT "$PERF_PID" 2>/dev/null && wait "$PERF_PID" 2>/dev/null
  [ -n "${COFFER_PID:-}" ] && bench_coffer_stop
  [ "$CLUSTER_UP" = 1 ] && "$BENCH_TOP/scripts/cluster.sh" down >"$OUT/cluster-down.log" 2>&1
  wait 2>/dev/null || true
  rm -rf "$BENCH_TMP"
  [ "$rc" -ne 0 ] && echo "bench: failed; partial results in $OUT" >&2
  exit "$rc"
}
trap cleanup EXIT

# ---- the single node ----
bench_step "start the single node (RocksDB)"
bench_coffer_start single "$SPORT"
SINGLE_PID=$COFFER_PID
SURL="https://127.0.0.1:$SPORT"
out=$(bench_client login "$SURL" -); read -r STOKEN SROOT <<<"$out"
S1M=$(bench_client upload "$SURL" "$STOKEN" "$SROOT" "$BENCH_TMP/1m.bin")
S4K=$(bench_client upload "$SURL" "$STOKEN" "$SROOT" "$BENCH_TMP/4k.bin")

# ---- the cluster ----
bench_step "scripts/cluster.sh up (PostgreSQL, Ceph, two nodes)"
CLUSTER_UP=1
NODES2=1
if ! COFFER_BIN="$COFFER_BIN" "$BENCH_TOP/scripts/cluster.sh" up >"$OUT/cluster-up.log" 2>&1; then
  if grep -q 'in use by another coffer process\|node of .* exited' "$OUT/cluster-up.log"; then
    echo "bench: the second node did not start (one writer per store in this build): one node" >&2
    "$BENCH_TOP/scripts/cluster.sh" down >>"$OUT/cluster-up.log" 2>&1 || true
    NODES2=0
    CLUSTER_NODES=1 COFFER_BIN="$COFFER_BIN" "$BENCH_TOP/scripts/cluster.sh" up >>"$OUT/cluster-up.log" 2>&1 ||
      { tail -20 "$OUT/cluster-up.log" >&2; bench_fail "scripts/cluster.sh up (one node) failed"; }
  else
    tail -20 "$OUT/cluster-up.log" >&2
    bench_fail "scripts/cluster.sh up failed (log: $OUT/cluster-up.log)"
  fi
fi
# shellcheck disable=SC1091
. "$CLUSTER_DIR/env"
read -ra NODE_URLS <<<"$COFFER_NODES"
read -ra NODE_PIDS <<<"$COFFER_NODE_PIDS"
CEPH_PIDS=$(awk '$1 ~ /^ceph\./ { print $2 }' "$CLUSTER_DIR/pids" | paste -sd' ')
PG_PID=$COFFER_PG_PID
out=$(BENCH_ADMIN_PASSWORD=$COFFER_ADMIN_PASSWORD bench_client login "${NODE_URLS[0]}" -); read -r CTOKEN CROOT <<<"$out"
C1M=$(bench_client upload "${NODE_URLS[0]}" "$CTOKEN" "$CROOT" "$BENCH_TMP/1m.bin")
C4K=$(bench_client upload "${NODE_URLS[0]}" "$CTOKEN" "$CROOT" "$BENCH_TMP/4k.bin")
if [ "$NODES2" = 1 ]; then
  # Node 2 serves what node 1 stored, with node 1's session.
  curl -skf -o "$BENCH_TMP/check.bin" -H "authorization: Bearer $CTOKEN" "${NODE_URLS[1]}/api/v1/files/$C1M/content" ||
    bench_fail "node 2 does not serve the file uploaded through node 1"
  cmp -s "$BENCH_TMP/check.bin" "$BENCH_TMP/1m.bin" || bench_fail "node 2 served other bytes than node 1 stored"
fi

# ---- CPU accounting (where the time goes) ----
proc_tree() { local p=$1; echo "$p"; for c in $(ps -o pid= --ppid "$p" 2>/dev/null); do proc_tree "$c"; done; }
# ticks PID...: utime + stime of the processes and all their descendants (clock ticks).
ticks() {
  local t=0 r p
  for r in "$@"; do
    for p in $(proc_tree "$r"); do
      [ -r "/proc/$p/stat" ] && t=$((t + $(awk '{ sub(/^.*\) /, ""); print $12 + $13 }' "/proc/$p/stat" 2>/dev/null || echo 0)))
    done
  done
  echo "$t"
}
# busy: the machine's busy ticks (user, nice, system, irq, softirq, steal) from /proc/stat.
busy() { awk '/^cpu / { print $2 + $3 + $4 + $7 + $8 + $9 }' /proc/stat; }
# snap: "busy coffer postgres ceph" now; the Coffer group is the arm's node(s).
snap() { echo "$(busy) $(ticks "$@") $(ticks "$PG_PID") $(ticks $CEPH_PIDS)"; }
declare -A CPU # CPU[scenario.arm] = "busy coffer postgres ceph" summed over the runs (ticks)
account() { # account KEY BEFORE AFTER
  local k=$1 b a acc i
  read -ra b <<<"$2"; read -ra a <<<"$3"; read -ra acc <<<"${CPU[$1]:-0 0 0 0}"
  for i in 0 1 2 3; do acc[$i]=$((acc[i] + a[i] - b[i])); done
  CPU[$k]="${acc[*]}"
}

# ---- measurement helpers ----
record() {
  printf '%s\t%s\t%s\n' "$1" "$2" "$3" >> "$OUT/runs.tsv"
  awk -v v="$3" 'BEGIN { exit !(v + 0 > 0) }' || bench_fail "$1 $2 measured '$3' (empty or zero)"
}
mbps() { awk -v r="$1" 'BEGIN { printf "%.0f", r * '"$MiB"' / 1e6 }'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0 && a != "—") printf "%.2f", a / b; else print "—" }'; }
median_of() { local -n arr=$1; [ "${#arr[@]}" -gt 0 ] && bench_median "${arr[@]}" || echo "—"; }
# h2 NAME ARGS...: h2load's req/s on its own scratch directory (two may run at once).
h2() { local n=$1; shift; mkdir -p "$BENCH_TMP/h2-$n"; BENCH_TMP="$BENCH_TMP/h2-$n" bench_h2load_rps "${H2LOAD[@]}" "$@"; }
# split NAME PATH -H ...: the load split over the two nodes at once; prints the summed req/s.
split() {
  local name=$1 path=$2; shift 2
  local half=$((CONC / 2)) i pids=()
  for i in 0 1; do
    ( h2 "$name-$i" -c "$half" "$@" "${NODE_URLS[$i]}$path" > "$BENCH_TMP/split-$i" ) & pids+=($!)
  done
  for i in 0 1; do wait "${pids[$i]}" || bench_fail "$name: h2load against node $((i + 1)) failed"; done
  awk '{ s += $1 } END { print s }' "$BENCH_TMP/split-0" "$BENCH_TMP/split-1"
}
prof_start() {
  [ "$PROFILE" = 1 ] || return 0
  PROF_NAME=$1
  bench_perf_record "$OUT/profile-$PROF_NAME" -a -F "${BENCH_PERF_FREQ:-999}" -g
}
prof_stop() {
  [ "$PROFILE" = 1 ] && [ -n "$PERF_PID" ] || return 0
  kill -INT "$PERF_PID" 2>/dev/null || true
  wait "$PERF_PID" 2>/dev/null || true
  PERF_PID=
  local d="$OUT/profile-$PROF_NAME"
  {
    echo "# by process (comm)"
    perf report -i "$d.data" --stdio --no-children -g none --sort comm 2>/dev/null | grep -v '^#' | grep -v '^[[:space:]]*$' | head -15 || true
    echo "# top 30 symbols"
    perf report -i "$d.data" --stdio --no-children -g none --sort comm,dso,sym 2>/dev/null | grep -v '^#' | grep -v '^[[:space:]]*$' | head -30 || true
    echo "# top 15 shared objects"
    perf report -i "$d.data" --stdio --no-children -g none --sort dso 2>/dev/null | grep -v '^#' | grep -v '^[[:space:]]*$' | head -15 || true
  } | sed 's/[[:space:]]*$//' > "$d.txt"
}
echo "bench: cluster $mode run, $RUNS runs, $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg), $(date -u +%FT%TZ), $([ "$NODES2" = 1 ] && echo two || echo one) cluster node(s), results in $OUT" >&2

# ---- (2) CONC × 1 MiB downloads, (3) metadata GET: the three arms, alternating ----
declare -A R # R[scenario.arm] = the runs' values, space-separated
run_arm() { # run_arm SCENARIO ARM: one run; records and accounts it
  local sc=$1 arm=$2 v b a
  local -a load
  if [ "$sc" = 2 ]; then load=(-m 1 -D "$DUR" --warm-up-time 1); else load=(-m 10 -D "$DUR" --warm-up-time 1); fi
  case "$arm" in
    single)
      local path; [ "$sc" = 2 ] && path="/api/v1/files/$S1M/content" || path="/api/v1/nodes/$S4K"
      b=$(snap "$SINGLE_PID"); v=$(h2 "$sc-single" -c "$CONC" "${load[@]}" -H "authorization: Bearer $STOKEN" "$SURL$path"); a=$(snap "$SINGLE_PID") ;;
    cluster1)
      local path; [ "$sc" = 2 ] && path="/api/v1/files/$C1M/content" || path="/api/v1/nodes/$C4K"
      b=$(snap "${NODE_PIDS[@]}"); v=$(h2 "$sc-c1" -c "$CONC" "${load[@]}" -H "authorization: Bearer $CTOKEN" "${NODE_URLS[0]}$path"); a=$(snap "${NODE_PIDS[@]}") ;;
    cluster2)
      local path; [ "$sc" = 2 ] && path="/api/v1/files/$C1M/content" || path="/api/v1/nodes/$C4K"
      [ "$sc" = 2 ] && prof_start "cluster-s2-downloads" || prof_start "cluster-s3-metadata"
      b=$(snap "${NODE_PIDS[@]}"); v=$(split "$sc-c2" "$path" "${load[@]}" -H "authorization: Bearer $CTOKEN"); a=$(snap "${NODE_PIDS[@]}")
      prof_stop ;;
  esac
  if [ "$sc" = 2 ]; then v=$(mbps "$v"); else v=$(printf '%.0f' "$v"); fi
  record "$sc" "$arm" "$v"
  R[$sc.$arm]="${R[$sc.$arm]:-} $v"
  account "$sc.$arm" "$b" "$a"
}
ARMS=(single cluster1)
[ "$NODES2" = 1 ] && ARMS+=(cluster2)
for sc in 2 3; do
  for i in $(seq 1 "$RUNS"); do
    for arm in "${ARMS[@]}"; do
      bench_step "($sc) run $i: $arm"
      run_arm "$sc" "$arm"
    done
  done
done

# ---- the table ----
bench_step "table"
hz=$(getconf CLK_TCK)
med() { read -ra xs <<<"${R[$1]:-}"; [ "${#xs[@]}" -gt 0 ] && bench_median "${xs[@]}" || echo "—"; }
# cost KEY UNITS: "coffer / postgres / ceph / rest" CPU per unit of work (seconds), rest = busy − the three.
cost() {
  local k=$1 units=$2
  [ -n "${CPU[$k]:-}" ] || { echo "—"; return; }
  awk -v c="${CPU[$k]}" -v hz="$hz" -v u="$units" 'BEGIN {
    split(c, x, " "); rest = x[1] - x[2] - x[3] - x[4]; if (rest < 0) rest = 0
    printf "%.2f / %.2f / %.2f / %.2f (%.1f s busy)", x[2] / hz / u, x[3] / hz / u, x[4] / hz / u, rest / hz / u, x[1] / hz }'
}
# units SCENARIO ARM: GB moved (2) or 10 000 requests (3) over the arm's runs.
units() {
  read -ra xs <<<"${R[$1.$2]:-}"
  printf '%s\n' "${xs[@]}" | awk -v sc="$1" -v d="$DUR" '{ s += $1 } END {
    if (sc == 2) printf "%.4f", s * 1e6 * d / 1e9; else printf "%.4f", s * d / 1e4 }'
}
{
  echo "| scenario ($mode, median of $RUNS) | single node (RocksDB) | cluster, 1 node | ratio | cluster, 2 nodes | ratio |"
  echo "| --- | --- | --- | --- | --- | --- |"
  for sc in 2 3; do
    s=$(med "$sc.single"); c1=$(med "$sc.cluster1"); c2=$(med "$sc.cluster2")
    [ "$sc" = 2 ] && name="(2) $CONC clients × 1 MiB downloads, MB/s" || name="(3) metadata GET, $CONC conn × 10 streams, req/s"
    echo "| $name | $s | $c1 | $(ratio "$c1" "$s") | $c2 | $(ratio "$c2" "$s") |"
  done
  echo
  echo "Where the time goes: CPU seconds per GB moved (2) or per 10 000 requests (3), over the arm's runs:"
  echo "Coffer node(s) with their scanners / PostgreSQL / Ceph (OSDs + monitor) / the rest of the machine"
  echo "(h2load, and any other load) — and the machine's busy CPU seconds during the arm."
  echo
  echo "| scenario | single node | cluster, 1 node | cluster, 2 nodes |"
  echo "| --- | --- | --- | --- |"
  for sc in 2 3; do
    row="| ($sc) |"
    for arm in single cluster1 cluster2; do
      if [ -n "${R[$sc.$arm]:-}" ]; then row="$row $(cost "$sc.$arm" "$(units "$sc" "$arm")") |"; else row="$row — |"; fi
    done
    echo "$row"
  done
} | tee "$OUT/table.md"
echo "bench: table and raw runs (runs.tsv)$([ "$PROFILE" = 1 ] && echo ', profiles') in $OUT" >&2
