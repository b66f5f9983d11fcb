#!/usr/bin/env bash
# bench/run.sh [cluster] [quick|full|smoke] [--profile] [--out=DIR]: Coffer against h2o 2.2.5 and nginx 1.22
# serving the same bytes over TLS 1.3 + HTTP/2 on loopback, and against clamscan on the same bytes,
# in one session, with public tools (h2load, curl, hyperfine, clamscan). Prints one markdown table:
# scenario, Coffer (median of the runs), peer (median and min–max of its own runs: the machine's
# noise), ratio, target (issue 19), whether it is met, Coffer's CPU seconds per GB moved and its
# peak RSS (server and scanner processes together; (5) also their PSS, shared pages counted once).
# Scenarios: (1) 1 × big download, (2) CONC × 1 MiB downloads, (3) metadata GET (+ p99 at half the
# peak rate), (4) one tus upload vs nginx PUT and vs clamscan, (5) 8 concurrent tus uploads (peak
# RSS), (6) listing a large folder (p99 per page), (7) share recipients unlock + download vs (2),
# (8) 4 KiB download latency (1 × 1) with the durable "began" event vs the same server without it
# (a -Dbench_knobs build, see bench/audit.sh).
#
#   quick  every scenario, 3 runs of the fast ones, reduced sizes for (5) and (6) (under 5 minutes
#          on a quiet 2-core machine)
#   full   the sizes of issue 19: 256 MiB, 32 × 1 MiB, 8 × 1 GiB tus uploads in 16 MiB pieces,
#          100 000 children; every scenario 3 times
#   smoke  tiny sizes, one run: only proves the benchmark still runs (scripts/test.sh uses it)
#
#   --profile   records `perf record -g` of the Coffer server and its scanner processes during each
#               scenario into OUT/profile-<scenario>.data, with OUT/profile-<scenario>.txt (the top
#               20 of `perf report --stdio --no-children`) and -graph.txt (call graphs). perf
#               perturbs the numbers: take the table from a run without it.
#   --out=DIR   where the table (table.md), every run's raw number (runs.tsv) and the profiles go
#               (default BENCH_OUT, else /tmp/coffer-bench-<mode>-<time>); kept after the run
#               (smoke without either: removed with the temporary directory).
#
# Environment: BENCH_BUILD=DIR uses an existing build directory instead of building build-release;
# BENCH_PORT_BASE (default 19443) moves every port (Coffer BASE, h2o BASE+1, nginx BASE+2, (8)'s
# servers BASE+4); BENCH_RUNS=N overrides the number of runs (BENCH_RUNS=3 with smoke exercises the
# median-of-three path at tiny sizes); BENCH_KNOBS_BUILD=DIR names the -Dbench_knobs build for (8)
# (default: BENCH_BUILD when it has the option, else build-bench, built here; smoke without one runs
# (8)'s two arms on BENCH_BUILD and prints no ratio); BENCH_PERF_FREQ (default 999 Hz) and
# BENCH_PERF_CALLGRAPH (default fp, i.e. -g; "dwarf" unwinds code built without frame pointers,
# at about 8 KiB per sample: lower the frequency with it).
# `cluster` anywhere in the arguments runs the cluster scenario instead (bench/cluster.sh, issue 24):
# (2) and (3)'s client load against one RocksDB node, one node of scripts/cluster.sh's PostgreSQL +
# Ceph cluster, and its two nodes at once, as ratios to the single node, with where the CPU goes.
for a in "$@"; do [ "$a" = cluster ] && exec "$(dirname "$0")/cluster.sh" "$@"; done
source "$(dirname "$0")/lib/common.sh"
trap 'rm -rf "$BENCH_TMP"' EXIT # until cleanup() below takes over
mode=quick
PROFILE=0
OUT=${BENCH_OUT:-}
for a in "$@"; do
  case "$a" in
    quick|full|smoke) mode=$a ;;
    --profile) PROFILE=1 ;;
    --out=*) OUT=${a#--out=} ;;
    *) echo "usage: bench/run.sh [cluster] [quick|full|smoke] [--profile] [--out=DIR]" >&2; exit 2 ;;
  esac
done
MiB=$((1 << 20))
# RUNS: runs of every scenario; RUNS_UP: runs of the long upload scenarios (4) and (5).
case "$mode" in
  full)  RUNS=3; RUNS_UP=3; DUR=6; BIG=$((256 * MiB)); TUS=$((256 * MiB)); PIECE=$((16 * MiB)); TUS8=$((1024 * MiB)); LIST=100000; CONC=32 ;;
  quick) RUNS=3; RUNS_UP=1; DUR=3; BIG=$((256 * MiB)); TUS=$((256 * MiB)); PIECE=$((16 * MiB)); TUS8=$((128 * MiB)); LIST=10000; CONC=32 ;;
  smoke) RUNS=1; RUNS_UP=1; DUR=1; BIG=$((4 * MiB)); TUS=$((4 * MiB)); PIECE=$((1 * MiB)); TUS8=$((2 * MiB)); LIST=250; CONC=4 ;;
esac
if [ -n "${BENCH_RUNS:-}" ]; then
  [[ $BENCH_RUNS =~ ^[1-9][0-9]?$ ]] || { echo "bench: BENCH_RUNS must be a number from 1 to 99" >&2; exit 2; }
  RUNS=$BENCH_RUNS; RUNS_UP=$BENCH_RUNS
fi
[ "$mode" = smoke ] && export BENCH_KNOBS_OPTIONAL=1
# smoke (scripts/test.sh) keeps nothing unless asked: its output goes with the temporary directory.
if [ -z "$OUT" ] && [ "$mode" = smoke ]; then OUT="$BENCH_TMP/out"; fi
OUT=${OUT:-/tmp/coffer-bench-$mode-$(date -u +%Y%m%dT%H%M%SZ)}
mkdir -p "$OUT"
: > "$OUT/runs.tsv"

bench_step "build and tools"
bench_build
# Every tool this script calls, checked before anything starts (lib/common.sh also reports the
# step, file, line and command of any step that fails).
bench_need h2o nginx h2load curl hyperfine clamscan node python3 openssl ps getconf awk timeout
if [ "$PROFILE" = 1 ]; then
  bench_need perf
  # perf may exist and still be refused (perf_event_paranoid, a container without perf events).
  perf record -q -F 99 -g -o "$OUT/perf-probe.data" -- true >"$OUT/perf-probe.log" 2>&1 ||
    { cat "$OUT/perf-probe.log" >&2; bench_fail "perf cannot sample here (see above); run without --profile"; }
  rm -f "$OUT/perf-probe.data" "$OUT/perf-probe.log"
fi
bench_knobs_build
# (7)'s client, bench/cf-share-recipients (built by default where libnghttp2-dev was found).
SHARE_CLIENT="$(dirname "$(dirname "$COFFER_BIN")")/bench/cf-share-recipients"
if [ ! -x "$SHARE_CLIENT" ]; then
  ninja -C "$(dirname "$(dirname "$COFFER_BIN")")" bench/cf-share-recipients >/dev/null 2>&1 ||
    bench_fail "$SHARE_CLIENT is missing and cannot be built (libnghttp2-dev: scripts/deps.sh bench, then meson setup --reconfigure)"
fi
bench_cert
bench_sigs

CPORT=$BENCH_PORT_BASE; HPORT=$((BENCH_PORT_BASE + 1)); NPORT=$((BENCH_PORT_BASE + 2)); LPORT=$((BENCH_PORT_BASE + 4))
bench_step "ports $CPORT, $HPORT, $NPORT, $LPORT free"
bench_port_free "$CPORT" "$HPORT" "$NPORT" "$LPORT"

bench_step "test files"
WWW="$BENCH_TMP/www"
mkdir -p "$WWW"
head -c 4096 /dev/urandom > "$WWW/4k.bin"
head -c "$MiB" /dev/urandom > "$WWW/1m.bin"
head -c "$BIG" /dev/urandom > "$WWW/big.bin"
head -c "$TUS" /dev/urandom > "$BENCH_TMP/tus.bin"
head -c "$TUS8" /dev/urandom > "$BENCH_TMP/tus8.bin"
: > "$BENCH_TMP/empty.bin"

H2LOAD=(--tls13-ciphers=TLS_AES_256_GCM_SHA384 -t 1)
pids=()
SAMPLER=
PERF_PID=
cleanup() {
  local rc=$?
  set +e # every step runs, whatever failed before
  trap - ERR
  [ -n "${PERF_PID:-}" ] && kill -INT "$PERF_PID" 2>/dev/null && wait "$PERF_PID" 2>/dev/null
  [ -n "${SAMPLER:-}" ] && kill "$SAMPLER" 2>/dev/null
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  [ -n "${COFFER_PID:-}" ] && bench_coffer_stop
  wait 2>/dev/null || true
  rm -rf "$BENCH_TMP"
  [ "$rc" -ne 0 ] && [ -d "$OUT" ] && echo "bench: failed; partial results in $OUT" >&2
  exit "$rc"
}
trap cleanup EXIT

# ---- peers ----
bench_step "start h2o and nginx"
cat > "$BENCH_TMP/h2o.conf" <<EOF
user: $(id -un)
num-threads: 2
pid-file: $BENCH_TMP/h2o.pid
error-log: $BENCH_TMP/h2o-error.log
listen:
  host: 127.0.0.1
  port: $HPORT
  ssl:
    certificate-file: $BENCH_TMP/cert.pem
    key-file: $BENCH_TMP/key.pem
hosts:
  default:
    paths:
      /:
        file.dir: $WWW
EOF
h2o -c "$BENCH_TMP/h2o.conf" >"$BENCH_TMP/h2o-out.log" 2>&1 &
H2O_PID=$!; pids+=("$H2O_PID")
mkdir -p "$BENCH_TMP/nginx/body" "$BENCH_TMP/nginx/up/dav"
cat > "$BENCH_TMP/nginx/nginx.conf" <<EOF
worker_processes 2;
user $(id -un);
pid $BENCH_TMP/nginx/nginx.pid;
error_log $BENCH_TMP/nginx/error.log;
daemon off;
events { worker_connections 1024; }
http {
  access_log off; sendfile on; open_file_cache max=1000;
  default_type application/octet-stream;
  client_body_temp_path $BENCH_TMP/nginx/body; client_max_body_size 4g; client_body_buffer_size 1m;
  proxy_temp_path $BENCH_TMP/nginx/body; fastcgi_temp_path $BENCH_TMP/nginx/body; uwsgi_temp_path $BENCH_TMP/nginx/body; scgi_temp_path $BENCH_TMP/nginx/body;
  server {
    listen 127.0.0.1:$NPORT ssl http2;
    ssl_certificate $BENCH_TMP/cert.pem; ssl_certificate_key $BENCH_TMP/key.pem; ssl_protocols TLSv1.3;
    location / { root $WWW; }
    location /dav/ { root $BENCH_TMP/nginx/up; dav_methods PUT; create_full_put_path on; }
  }
}
EOF
nginx -p "$BENCH_TMP/nginx" -c "$BENCH_TMP/nginx/nginx.conf" 2>"$BENCH_TMP/nginx/stderr.log" &
NGINX_PID=$!; pids+=("$NGINX_PID")
# Up once each serves a file (deadline BENCH_START_DEADLINE, default 180 s; at once if one exited,
# showing what it printed: configuration errors go to its standard error).
bench_wait_http "https://127.0.0.1:$HPORT/4k.bin" h2o "$H2O_PID" "$BENCH_TMP/h2o-out.log"
bench_wait_http "https://127.0.0.1:$NPORT/4k.bin" nginx "$NGINX_PID" "$BENCH_TMP/nginx/stderr.log"

# ---- Coffer ----
bench_step "start coffer"
BENCH_EXTRA_YAML='uploads: { max_pending: 64, max_pending_bytes: 64GiB }' bench_coffer_start run "$CPORT"
CURL="https://127.0.0.1:$CPORT"
client() { bench_client "$1" "$CURL" "${TOKEN:--}" "${@:2}"; }
bench_step "log in and upload the test files"
out=$(client login); read -r TOKEN ROOT <<<"$out"
ID4K=$(client upload "$ROOT" "$WWW/4k.bin")
ID1M=$(client upload "$ROOT" "$WWW/1m.bin")
IDBIG=$(client upload "$ROOT" "$WWW/big.bin")
AUTH=(-H "authorization: Bearer $TOKEN")

# ---- measurement helpers: CPU of a process tree, peak RSS sampled while a scenario runs ----
proc_tree() { local p=$1; echo "$p"; for c in $(ps -o pid= --ppid "$p" 2>/dev/null); do proc_tree "$c"; done; }
cpu_ticks() { local t=0; for p in $(proc_tree "$1"); do t=$((t + $(awk '{ v = $14 + $15 } END { print v + 0 }' "/proc/$p/stat" 2>/dev/null || echo 0))); done; echo "$t"; }
# (Each reader prints a number even for a process gone or a zombie meanwhile: a zombie's status has
# no VmRSS, and a renderer stopped for idleness is one for a moment.)
rss_kib() { local t=0; for p in $(proc_tree "$1"); do t=$((t + $(awk '/^VmRSS/ { v = $2 } END { print v + 0 }' "/proc/$p/status" 2>/dev/null || echo 0))); done; echo "$t"; }
# pss_kib PID: the tree's proportional set size: each page shared by several processes (the same
# libraries, the scanners' magic database) counted once in all, not once per process as RSS does.
pss_kib() { local t=0; for p in $(proc_tree "$1"); do t=$((t + $(awk '/^Pss:/ { v = $2 } END { print v + 0 }' "/proc/$p/smaps_rollup" 2>/dev/null || echo 0))); done; echo "$t"; }
# peak_note FILE KIB: raises the peak kept in FILE to KIB (written whole: a sampler killed mid-write
# leaves the previous value, never an empty file); fails when KIB is no new peak.
peak_note() { local old; old=$(cat "$1" 2>/dev/null || echo 0); [ "${2:-0}" -gt "${old:-0}" ] && echo "$2" > "$1.tmp" && mv "$1.tmp" "$1"; }
# rss_who PID: the tree's RSS by process, in MiB ("server:231 coffer-scan:35 ..."; children by their
# program's name), for the composition of a peak.
rss_who() {
  local p n out=""
  for p in $(proc_tree "$1"); do
    [ -r "/proc/$p/status" ] || continue
    if [ "$p" = "$1" ]; then n=server; else n=$(tr '\0' '\n' < "/proc/$p/cmdline" 2>/dev/null | head -1); n=${n##*/}; fi
    out="$out ${n:-?}:$(awk '/^VmRSS/ { printf "%.0f", $2 / 1024 }' "/proc/$p/status" 2>/dev/null || echo 0)"
  done
  echo "${out# }"
}
start_sampling() {
  echo 0 > "$BENCH_TMP/rss.peak"; echo 0 > "$BENCH_TMP/pss.peak"; echo "—" > "$BENCH_TMP/rss.peak.who"
  ( while :; do
      if peak_note "$BENCH_TMP/rss.peak" "$(rss_kib "$COFFER_PID")"; then
        rss_who "$COFFER_PID" > "$BENCH_TMP/rss.peak.who.tmp" && mv "$BENCH_TMP/rss.peak.who.tmp" "$BENCH_TMP/rss.peak.who"
      fi
      peak_note "$BENCH_TMP/pss.peak" "$(pss_kib "$COFFER_PID")" || true
      sleep 0.2; done ) &
  SAMPLER=$!
  CPU0=$(cpu_ticks "$COFFER_PID")
}
# stop_sampling BYTES_MOVED: sets CPU_PER_GB and PEAK_MIB for the scenario just run.
stop_sampling() {
  kill "$SAMPLER" 2>/dev/null; wait "$SAMPLER" 2>/dev/null || true
  SAMPLER=
  # One more sample now: a scenario shorter than the sampler's first round still has one.
  peak_note "$BENCH_TMP/rss.peak" "$(rss_kib "$COFFER_PID")" || true
  peak_note "$BENCH_TMP/pss.peak" "$(pss_kib "$COFFER_PID")" || true
  local ticks=$(( $(cpu_ticks "$COFFER_PID") - CPU0 )) hz; hz=$(getconf CLK_TCK)
  CPU_PER_GB=$(awk -v t="$ticks" -v hz="$hz" -v b="$1" 'BEGIN { if (b > 0) printf "%.2f", (t / hz) / (b / 1e9); else print "—" }')
  PEAK_MIB=$(awk '{ printf "%.0f", $1 / 1024 }' "$BENCH_TMP/rss.peak")
  PEAK_PSS_MIB=$(awk '{ printf "%.0f", $1 / 1024 }' "$BENCH_TMP/pss.peak")
  PEAK_WHO=$(cat "$BENCH_TMP/rss.peak.who" 2>/dev/null || echo "—")
}

# ---- profiles (--profile): perf on the server and its scanners for one scenario ----
# prof_start NAME: attaches perf to every process of the server's tree (all threads; scanners
# started later are followed as children). Waits, with a deadline, until perf has written its file.
prof_start() {
  [ "$PROFILE" = 1 ] || return 0
  PROF_NAME=$1
  local targets; targets=$(proc_tree "$COFFER_PID" | paste -sd, -)
  bench_perf_record "$OUT/profile-$PROF_NAME" -F "${BENCH_PERF_FREQ:-999}" --call-graph "${BENCH_PERF_CALLGRAPH:-fp}" -p "$targets"
}
# prof_stop: ends the recording and writes the top 20 and the call graphs beside it.
prof_stop() {
  [ "$PROFILE" = 1 ] && [ -n "$PERF_PID" ] || return 0
  kill -INT "$PERF_PID" 2>/dev/null || true
  wait "$PERF_PID" 2>/dev/null || true
  PERF_PID=
  local d="$OUT/profile-$PROF_NAME"
  {
    perf report -i "$d.data" --stdio --no-children -g none 2>/dev/null | grep -m1 '^# Samples' || true
    echo "# top 20 symbols (perf report --stdio --no-children), server and scanner processes"
    perf report -i "$d.data" --stdio --no-children -g none 2>/dev/null | grep -v '^#' | grep -v '^[[:space:]]*$' | head -20 || true
    echo "# by thread name (comm)"
    perf report -i "$d.data" --stdio --no-children -g none --sort comm 2>/dev/null | grep -v '^#' | grep -v '^[[:space:]]*$' | head -8 || true
    echo "# top 10 shared objects"
    perf report -i "$d.data" --stdio --no-children -g none --sort dso 2>/dev/null | grep -v '^#' | grep -v '^[[:space:]]*$' | head -10 || true
  } | sed 's/[[:space:]]*$//' > "$d.txt"
  perf report -i "$d.data" --stdio --no-children -g caller,0.5,callee --percent-limit 1 2>/dev/null | head -600 > "$d-graph.txt" || true
  [ -s "$d.txt" ] || echo "bench: warning: the profile of $PROF_NAME is empty ($d.log)" >&2
}

# ---- numbers ----
h2rps() { bench_h2load_rps "${H2LOAD[@]}" "$@"; }
median_of() { local -n arr=$1; bench_median "${arr[@]}"; }
# spread_of ARRAY: "min–max" of the runs (the machine's noise, on the peers).
spread_of() {
  local -n arr=$1
  printf '%s\n' "${arr[@]}" | sort -g | awk 'function f(v) { return v >= 100 ? sprintf("%.0f", v) : v }
    NR == 1 { lo = $1 } { hi = $1 } END { printf "%s–%s", f(lo), f(hi) }'
}
sum_of() { local -n arr=$1; printf '%s\n' "${arr[@]}" | awk '{ s += $1 } END { printf "%.0f", s }'; }
# record SCENARIO ARM VALUE: one raw measurement into OUT/runs.tsv; fails on an empty or zero one.
record() {
  printf '%s\t%s\t%s\n' "$1" "$2" "$3" >> "$OUT/runs.tsv"
  awk -v v="$3" 'BEGIN { exit !(v + 0 > 0) }' || bench_fail "$2 measured '$3' (empty or zero)"
}
rows=()
row() { rows+=("| $1 | $2 | $3 | $4 | $5 | $6 | $7 | $8 |"); }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.2f", a / b; else print "—" }'; }
mbps() { awk -v r="$1" -v s="$2" 'BEGIN { printf "%.0f", r * s / 1e6 }'; }
at_least() { awk -v v="$1" -v t="$2" 'BEGIN { print (v + 0 >= t) ? "yes" : "**no**" }'; }
below() { awk -v v="$1" -v t="$2" 'BEGIN { print (v + 0 < t) ? "yes" : "**no**" }'; }
both() { [ "$1" = yes ] && [ "$2" = yes ] && echo yes || echo "**no**"; }
echo "bench: $mode run, $RUNS runs ($RUNS_UP for uploads), $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg), $(date -u +%FT%TZ), results in $OUT" >&2

# (1) one client downloading the big file; Coffer and h2o runs alternate (the same noise for both).
bench_step "(1) 1 client × big download"
n1=$(( BIG >= 64 * MiB ? 4 : 20 ))
c=(); h=()
start_sampling; prof_start s1-download
for _ in $(seq 1 "$RUNS"); do
  v=$(h2rps -n "$n1" -c 1 -m 1 "${AUTH[@]}" "$CURL/api/v1/files/$IDBIG/content"); v=$(mbps "$v" "$BIG"); record 1 coffer "$v"; c+=("$v")
  v=$(h2rps -n "$n1" -c 1 -m 1 "https://127.0.0.1:$HPORT/big.bin"); v=$(mbps "$v" "$BIG"); record 1 h2o "$v"; h+=("$v")
done
prof_stop; stop_sampling $((RUNS * n1 * BIG))
C1=$(median_of c); H1=$(median_of h); R1=$(ratio "$C1" "$H1")
row "(1) 1 client × $((BIG / MiB)) MiB download, MB/s" "$C1" "h2o $H1 ($(spread_of h))" "$R1" "≥ 0.8" "$(at_least "$R1" 0.8)" "$CPU_PER_GB" "$PEAK_MIB"

# (2) CONC clients × 1 MiB files.
bench_step "(2) $CONC clients × 1 MiB downloads"
c=(); h=()
start_sampling; prof_start s2-downloads
for _ in $(seq 1 "$RUNS"); do
  v=$(h2rps -c "$CONC" -m 1 -D "$DUR" --warm-up-time 1 "${AUTH[@]}" "$CURL/api/v1/files/$ID1M/content"); v=$(mbps "$v" "$MiB"); record 2 coffer "$v"; c+=("$v")
  v=$(h2rps -c "$CONC" -m 1 -D "$DUR" --warm-up-time 1 "https://127.0.0.1:$HPORT/1m.bin"); v=$(mbps "$v" "$MiB"); record 2 h2o "$v"; h+=("$v")
done
prof_stop; stop_sampling "$(awk -v s="$(sum_of c)" -v d="$DUR" 'BEGIN { printf "%.0f", s * 1e6 * d }')"
C2=$(median_of c); H2=$(median_of h); R2=$(ratio "$C2" "$H2")
row "(2) $CONC clients × 1 MiB downloads, MB/s" "$C2" "h2o $H2 ($(spread_of h))" "$R2" "≥ 0.7" "$(at_least "$R2" 0.7)" "$CPU_PER_GB" "$PEAK_MIB"

# (3) authenticated metadata GET, CONC connections × 10 streams, versus h2o serving 4 KiB; then p99
# at half of Coffer's median peak rate (h2load --rps is per client; per-request times from
# --log-file, whose third column is the request's duration in µs).
bench_step "(3) metadata GET"
c=(); h=(); p=()
start_sampling; prof_start s3-metadata
for _ in $(seq 1 "$RUNS"); do
  v=$(h2rps -c "$CONC" -m 10 -D "$DUR" --warm-up-time 1 "${AUTH[@]}" "$CURL/api/v1/nodes/$ID4K"); record 3 coffer "$v"; c+=("$v")
  v=$(h2rps -c "$CONC" -m 10 -D "$DUR" --warm-up-time 1 "https://127.0.0.1:$HPORT/4k.bin"); record 3 h2o "$v"; h+=("$v")
done
C3=$(median_of c); H3=$(median_of h); R3=$(ratio "$C3" "$H3")
bench_step "(3) metadata GET: p99 at half the peak rate"
per_client=$(awk -v r="$C3" -v c="$CONC" 'BEGIN { v = r / 2 / c; printf "%.0f", v < 1 ? 1 : v }')
for _ in $(seq 1 "$RUNS"); do
  rm -f "$BENCH_TMP/lat.log"
  h2rps -c "$CONC" -m 1 --rps="$per_client" -D "$DUR" "${AUTH[@]}" --log-file="$BENCH_TMP/lat.log" "$CURL/api/v1/nodes/$ID4K" >/dev/null
  v=$(awk '{ print $3 / 1000 }' "$BENCH_TMP/lat.log" | sort -g | awk '{ a[NR] = $1 } END { i = int(NR * 0.99); if (i < 1) i = 1; if (NR) printf "%.2f", a[i] }')
  record 3 coffer-p99-ms "$v"; p+=("$v")
done
prof_stop; stop_sampling 0
P99=$(median_of p)
row "(3) metadata GET, $CONC conn × 10 streams, req/s (p99 ms at half rate)" "$(printf '%.0f' "$C3") (p99 $P99)" \
  "h2o 4 KiB $(printf '%.0f' "$H3") ($(spread_of h))" "$R3" "≥ 0.5, p99 < 10 ms" "$(both "$(at_least "$R3" 0.5)" "$(below "$P99" 10)")" "—" "$PEAK_MIB"

# (4) one tus upload in pieces (scan and encryption included) vs nginx receiving the same body to
# disk, and vs clamscan alone on the same bytes with the same database (its start-up, measured on
# an empty file, subtracted).
bench_step "(4) tus upload of $((TUS / MiB)) MiB"
c=()
start_sampling; prof_start s4-tus
r4=0
for _ in $(seq 1 "$RUNS_UP"); do
  out=$(client tus "$ROOT" "$BENCH_TMP/tus.bin" "$PIECE" 1); read -r s nr <<<"$out"; r4=$((r4 + nr))
  v=$(awk -v s="$s" -v b="$TUS" 'BEGIN { printf "%.1f", b / 1e6 / s }'); record 4 coffer "$v"; c+=("$v")
done
prof_stop; stop_sampling $((RUNS_UP * TUS))
C4=$(median_of c)
bench_step "(4) nginx PUT of the same bytes"
hyperfine -N --runs "$RUNS_UP" --export-json "$BENCH_TMP/put.json" \
  "curl -sSfk --http2 -o /dev/null -T $BENCH_TMP/tus.bin https://127.0.0.1:$NPORT/dav/up.bin" >"$BENCH_TMP/hyperfine.log" 2>&1 ||
  { tail -20 "$BENCH_TMP/hyperfine.log" >&2; bench_fail "hyperfine (curl PUT to nginx) failed"; }
read -ra n <<<"$(python3 -c "import json; r=json.load(open('$BENCH_TMP/put.json'))['results'][0]; print(' '.join(f'{$TUS/1e6/t:.1f}' for t in r['times']))")"
[ "${#n[@]}" -gt 0 ] || bench_fail "no times in hyperfine's JSON for nginx"
for v in "${n[@]}"; do record 4 nginx-put "$v"; done
N4=$(median_of n)
bench_step "(4) clamscan alone on the same bytes"
CLAM=(clamscan --no-summary --database="$BENCH_SIGS" --max-filesize=4000M --max-scansize=4000M)
hyperfine -N --runs "$RUNS_UP" --export-json "$BENCH_TMP/clam.json" "${CLAM[*]} $BENCH_TMP/tus.bin" "${CLAM[*]} $BENCH_TMP/empty.bin" >"$BENCH_TMP/hyperfine.log" 2>&1 ||
  { tail -20 "$BENCH_TMP/hyperfine.log" >&2; bench_fail "hyperfine (clamscan) failed"; }
read -ra k <<<"$(python3 -c "import json; r=json.load(open('$BENCH_TMP/clam.json'))['results']; e=r[1]['median']; print(' '.join(f'{$TUS/1e6/max(t-e,1e-3):.1f}' for t in r[0]['times']))")"
[ "${#k[@]}" -gt 0 ] || bench_fail "no times in hyperfine's JSON for clamscan"
for v in "${k[@]}"; do record 4 clamscan "$v"; done
K4=$(median_of k)
R4A=$(ratio "$C4" "$N4"); R4B=$(ratio "$C4" "$K4")
row "(4a) tus upload $((TUS / MiB)) MiB in $((PIECE / MiB)) MiB PATCHes, MB/s ($r4 retried answers)" "$C4" "nginx PUT $N4 ($(spread_of n))" "$R4A" "—" "—" "$CPU_PER_GB" "$PEAK_MIB"
row "(4b) the same upload vs clamscan on the same bytes, MB/s" "$C4" "clamscan $K4 ($(spread_of k))" "$R4B" "≥ 0.8" "$(at_least "$R4B" 0.8)" "$CPU_PER_GB" "$PEAK_MIB"

# (5) 8 concurrent tus uploads (one connection each): peak RSS of server + scanners, per run.
bench_step "(5) 8 concurrent tus uploads × $((TUS8 / MiB)) MiB"
c=(); m=(); mp=()
prof_start s5-tus8
cpu5=0; r5=0
for _ in $(seq 1 "$RUNS_UP"); do
  start_sampling
  out=$(client tus "$ROOT" "$BENCH_TMP/tus8.bin" "$PIECE" 8); read -r s nr <<<"$out"; r5=$((r5 + nr))
  stop_sampling $((8 * TUS8))
  v=$(awk -v s="$s" -v b=$((8 * TUS8)) 'BEGIN { printf "%.1f", b / 1e6 / s }'); record 5 coffer "$v"; c+=("$v")
  record 5 coffer-peak-rss-mib "$PEAK_MIB"; m+=("$PEAK_MIB"); cpu5=$CPU_PER_GB
  record 5 coffer-peak-pss-mib "$PEAK_PSS_MIB"; mp+=("$PEAK_PSS_MIB")
  printf '5\tcoffer-peak-rss-by-process-mib\t%s\n' "$PEAK_WHO" >> "$OUT/runs.tsv" # words, not a number: not record()
done
prof_stop
C5=$(median_of c); M5=$(median_of m); M5MAX=$(printf '%s\n' "${m[@]}" | sort -g | tail -1); P5=$(median_of mp)
row "(5) 8 concurrent tus uploads × $((TUS8 / MiB)) MiB in $((PIECE / MiB)) MiB pieces, MB/s (peak RSS MiB, max of runs; peak PSS MiB; $r5 retried answers)" \
  "$C5 ($M5, max $M5MAX; PSS $P5)" "—" "—" "RSS ≤ 256 MiB" "$(below "$M5" 256.5)" "$cpu5" "$M5"

# (6) listing a folder of LIST files, pages of 100 (the folder is filled once; each run pages it all).
bench_step "(6) listing: creating $LIST files"
FOLDER=$(client listing-make "$LIST")
bench_step "(6) listing $LIST files by pages of 100"
a=(); b=()
start_sampling; prof_start s6-listing
for _ in $(seq 1 "$RUNS"); do
  out=$(client listing-page "$FOLDER" "$LIST"); read -r p50 p99 pages <<<"$out"
  record 6 coffer-p50-ms "$p50"; record 6 coffer-p99-ms "$p99"; a+=("$p50"); b+=("$p99")
done
prof_stop; stop_sampling 0
P50L=$(median_of a); P99L=$(median_of b)
row "(6) listing $LIST files by pages of 100: p50 / p99 ms per page ($pages pages)" "$P50L / $P99L" "—" "—" "p99 < 20 ms" "$(below "$P99L" 20)" "—" "$PEAK_MIB"

# (7) anonymous recipients: unlock + 1 MiB download, versus scenario (2). The client is
# bench/cf-share-recipients (share_recipients.c: nghttp2 + OpenSSL on one thread, one connection per
# recipient, like (2)'s h2load and at its cost per byte; the Node client cost about a core, taken
# from the server). Each recipient unlocks with the code, then downloads with the cookie that unlock
# set, over and over; only whole 200 answers count, after 1 s of warm-up as in (2); any other answer
# fails the run. Alternating with it, the same client unlocking once per recipient and then only
# downloading ("once"): the unlocks' own cost is the gap between the two. The CPU column is the
# server's during the unlock + download runs only.
bench_step "(7) $CONC recipients unlock + 1 MiB download"
recipients() { "$SHARE_CLIENT" 127.0.0.1 "$CPORT" "$1" BENCH2026 "$MiB" "$DUR" "$CONC" "${@:2}"; }
c=(); o=(); u=0; t7=0
start_sampling; prof_start s7-shares
for _ in $(seq 1 "$RUNS"); do
  sp=$(client share "$ID1M" BENCH2026)
  a7=$(cpu_ticks "$COFFER_PID")
  out=$(recipients "$sp"); read -r v n7 k7 <<<"$out"
  t7=$((t7 + $(cpu_ticks "$COFFER_PID") - a7))
  record 7 coffer "$v"; record 7 client-cpu-s-per-gb "$k7"; c+=("$v"); u=$((u + n7))
  out=$(recipients "$sp" once); read -r v _ k7 <<<"$out"
  record 7 coffer-unlock-once "$v"; record 7 client-once-cpu-s-per-gb "$k7"; o+=("$v")
done
prof_stop; stop_sampling 0
CPU_PER_GB=$(awk -v t="$t7" -v hz="$(getconf CLK_TCK)" -v b="$(awk -v s="$(sum_of c)" -v d="$DUR" 'BEGIN { printf "%.0f", s * 1e6 * d }')" \
  'BEGIN { if (b > 0) printf "%.2f", (t / hz) / (b / 1e9); else print "—" }')
C7=$(median_of c); O7=$(median_of o); R7=$(ratio "$C7" "$C2")
row "(7) $CONC recipients: unlock + 1 MiB download, MB/s ($u unlocks; the same client unlocking once per recipient: $O7 MB/s, $(ratio "$O7" "$C2") of (2))" \
  "$C7" "scenario (2) $C2" "$R7" "≥ 0.6" "$(at_least "$R7" 0.6)" "$CPU_PER_GB" "$PEAK_MIB"

# (8) 4 KiB download latency, 1 connection × 1 stream: the product (the durable "began" event
# before the transfer) vs the same binary without transfer events (COFFER_BENCH_NO_TRANSFER_AUDIT=1,
# honoured only by a -Dbench_knobs build). The main server is stopped first: these two run alone.
bench_step "(8) stop the main server"
bench_coffer_stop; COFFER_PID=
KNOB_NOTE=
if [ -n "$BENCH_KNOBS_BIN" ]; then export BENCH_SERVE_BIN=$BENCH_KNOBS_BIN; else KNOB_NOTE=" (no -Dbench_knobs build: both arms record the event)"; fi
c=(); w=()
for arm in with without; do
  bench_step "(8) 4 KiB latency: server $arm the began event"
  if [ "$arm" = with ]; then bench_coffer_start "lat-$arm" "$LPORT"; else bench_coffer_start "lat-$arm" "$LPORT" COFFER_BENCH_NO_TRANSFER_AUDIT=1; fi
  if [ "$arm" = without ] && [ -n "$BENCH_KNOBS_BIN" ] && ! grep -q 'are NOT recorded' "$BENCH_TMP/lat-$arm/serve.log"; then
    bench_fail "$BENCH_KNOBS_BIN ignores COFFER_BENCH_NO_TRANSFER_AUDIT (build it with -Dbench_knobs=true)"
  fi
  base="https://127.0.0.1:$LPORT"
  out=$(bench_client login "$base" -); read -r t8 r8 <<<"$out"
  id8=$(bench_client upload "$base" "$t8" "$r8" "$WWW/4k.bin")
  [ "$arm" = with ] && prof_start s8-latency
  for _ in $(seq 1 "$RUNS"); do
    v=$(h2rps -c 1 -m 1 -D "$DUR" --warm-up-time 1 -H "authorization: Bearer $t8" "$base/api/v1/files/$id8/content")
    record 8 "coffer-$arm-event" "$v"
    if [ "$arm" = with ]; then c+=("$v"); else w+=("$v"); fi
  done
  prof_stop
  bench_coffer_stop; COFFER_PID=
done
unset BENCH_SERVE_BIN
C8=$(median_of c); W8=$(median_of w); R8=$(ratio "$C8" "$W8")
LAT8=$(awk -v r="$C8" 'BEGIN { printf "%.2f", 1000 / r }')
if [ -n "$KNOB_NOTE" ]; then V8="—"; R8="—"; else V8=$(at_least "$R8" 0.5); fi
row "(8) 4 KiB download 1 × 1 with the durable began event, req/s (mean ms)$KNOB_NOTE" "$(printf '%.0f' "$C8") ($LAT8 ms)" \
  "without the event $(printf '%.0f' "$W8") ($(spread_of w))" "$R8" "≥ 0.5" "$V8" "—" "—"

bench_step "table"
{
  echo "| scenario ($mode, median of $RUNS; uploads $RUNS_UP) | Coffer | peer (min–max of its runs) | ratio | target | met | Coffer CPU s/GB | Coffer peak RSS MiB |"
  echo "| --- | --- | --- | --- | --- | --- | --- | --- |"
  printf '%s\n' "${rows[@]}"
} | tee "$OUT/table.md"
[ "$OUT" = "$BENCH_TMP/out" ] || echo "bench: table, raw runs (runs.tsv)$([ "$PROFILE" = 1 ] && echo ' and profiles') in $OUT" >&2
