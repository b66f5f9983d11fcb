#!/usr/bin/env bash
# bench/run.sh [quick|full|smoke]: Coffer against h2o 2.2.5 and nginx 1.22 serving the same bytes
# over TLS 1.3 + HTTP/2 on loopback, in one session, with public tools (h2load, curl, hyperfine,
# clamscan). Prints one markdown table: scenario, Coffer, peer, ratio, target, Coffer's CPU seconds
# per GB moved and its peak RSS (server and scanner processes together).
#
#   quick  every scenario at reduced counts (under 5 minutes on a 2-core machine)
#   full   the sizes of issue 9: 256 MiB, 32 × 1 MiB, 8 × 1 GiB tus uploads, 100 000 files
#   smoke  tiny sizes, one run: only proves the benchmark still runs (scripts/test.sh uses it)
#
# BENCH_BUILD=DIR uses an existing build directory instead of building build-release.
source "$(dirname "$0")/lib/common.sh"
mode=${1:-quick}
MiB=$((1 << 20))
case "$mode" in
  full)  RUNS=3; DUR=6; BIG=$((256 * MiB)); TUS=$((256 * MiB)); PIECE=$((16 * MiB)); TUS8=$((1024 * MiB)); LIST=100000; CONC=32 ;;
  quick) RUNS=2; DUR=4; BIG=$((256 * MiB)); TUS=$((256 * MiB)); PIECE=$((16 * MiB)); TUS8=$((128 * MiB)); LIST=10000; CONC=32 ;;
  smoke) RUNS=1; DUR=1; BIG=$((4 * MiB)); TUS=$((4 * MiB)); PIECE=$((1 * MiB)); TUS8=$((2 * MiB)); LIST=250; CONC=4 ;;
  *) echo "usage: bench/run.sh [quick|full|smoke]" >&2; exit 2 ;;
esac

bench_build
# Every tool this script calls, checked before anything starts (lib/common.sh also reports the
# file, line and command of any step that fails).
bench_need h2o nginx h2load curl hyperfine clamscan node python3 openssl ps getconf awk
bench_cert
bench_sigs
WWW="$BENCH_TMP/www"
mkdir -p "$WWW"
head -c 4096 /dev/urandom > "$WWW/4k.bin"
head -c "$MiB" /dev/urandom > "$WWW/1m.bin"
head -c "$BIG" /dev/urandom > "$WWW/big.bin"
head -c "$TUS" /dev/urandom > "$BENCH_TMP/tus.bin"
head -c "$TUS8" /dev/urandom > "$BENCH_TMP/tus8.bin"
: > "$BENCH_TMP/empty.bin"

CPORT=19443; HPORT=19444; NPORT=19445
# A server left over from an interrupted run would answer in place of the fresh ones: refuse.
for p in $CPORT $HPORT $NPORT; do
  if (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then echo "bench: port $p is in use (a leftover server?)" >&2; exit 1; fi
done
H2LOAD=(--tls13-ciphers=TLS_AES_256_GCM_SHA384 -t 1)
pids=()
SAMPLER=
cleanup() {
  local rc=$?
  set +e # every step runs, whatever failed before
  trap - ERR
  [ -n "${SAMPLER:-}" ] && kill "$SAMPLER" 2>/dev/null
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  [ -n "${COFFER_PID:-}" ] && bench_coffer_stop
  wait 2>/dev/null || true
  rm -rf "$BENCH_TMP"
  exit "$rc"
}
trap cleanup EXIT

# ---- peers ----
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
h2o -c "$BENCH_TMP/h2o.conf" >/dev/null 2>&1 &
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
nginx -p "$BENCH_TMP/nginx" -c "$BENCH_TMP/nginx/nginx.conf" 2>/dev/null &
NGINX_PID=$!; pids+=("$NGINX_PID")

# ---- Coffer ----
BENCH_EXTRA_YAML='uploads: { max_pending: 64, max_pending_bytes: 64GiB }' bench_coffer_start run $CPORT
CURL="https://127.0.0.1:$CPORT"
# The peers are up once both serve a file (a generous deadline: the machine may be busy).
peers_up=
for _ in $(seq 1 1200); do
  curl -sk "https://127.0.0.1:$HPORT/4k.bin" -o /dev/null && curl -sk "https://127.0.0.1:$NPORT/4k.bin" -o /dev/null && { peers_up=1; break; }
  kill -0 "$H2O_PID" 2>/dev/null || { echo "bench: h2o exited:" >&2; cat "$BENCH_TMP/h2o-error.log" >&2 || true; exit 1; }
  kill -0 "$NGINX_PID" 2>/dev/null || { echo "bench: nginx exited:" >&2; cat "$BENCH_TMP/nginx/error.log" >&2 || true; exit 1; }
  sleep 0.1
done
[ -n "$peers_up" ] || { echo "bench: h2o or nginx did not answer within 120 s" >&2; exit 1; }
client() { bench_client "$1" "$CURL" "${TOKEN:--}" "${@:2}"; }
read -r TOKEN ROOT < <(client login)
ID4K=$(client upload "$ROOT" "$WWW/4k.bin")
ID1M=$(client upload "$ROOT" "$WWW/1m.bin")
IDBIG=$(client upload "$ROOT" "$WWW/big.bin")
AUTH=(-H "authorization: Bearer $TOKEN")

# ---- measurement helpers: CPU of a process tree, peak RSS sampled while a scenario runs ----
tree() { local p=$1; echo "$p"; for c in $(ps -o pid= --ppid "$p" 2>/dev/null); do tree "$c"; done; }
cpu_ticks() { local t=0; for p in $(tree "$1"); do [ -r "/proc/$p/stat" ] && t=$((t + $(awk '{ print $14 + $15 }' "/proc/$p/stat"))); done; echo "$t"; }
rss_kib() { local t=0; for p in $(tree "$1"); do [ -r "/proc/$p/status" ] && t=$((t + $(awk '/^VmRSS/ { print $2 }' "/proc/$p/status"))); done; echo "$t"; }
start_sampling() {
  echo 0 > "$BENCH_TMP/rss.peak"
  ( peak=0; while :; do r=$(rss_kib "$COFFER_PID"); [ "$r" -gt "$peak" ] && peak=$r && echo "$peak" > "$BENCH_TMP/rss.peak"; sleep 0.2; done ) &
  SAMPLER=$!
  CPU0=$(cpu_ticks "$COFFER_PID")
}
# stop_sampling BYTES_MOVED: sets CPU_PER_GB and PEAK_MIB for the scenario just run.
stop_sampling() {
  kill "$SAMPLER" 2>/dev/null; wait "$SAMPLER" 2>/dev/null || true
  local ticks=$(( $(cpu_ticks "$COFFER_PID") - CPU0 )) hz; hz=$(getconf CLK_TCK)
  CPU_PER_GB=$(awk -v t="$ticks" -v hz="$hz" -v b="$1" 'BEGIN { if (b > 0) printf "%.2f", (t / hz) / (b / 1e9); else print "—" }')
  PEAK_MIB=$(awk '{ printf "%.0f", $1 / 1024 }' "$BENCH_TMP/rss.peak")
}
h2rps() { bench_h2load_rps "${H2LOAD[@]}" "$@"; }
median_of() { local -n arr=$1; bench_median "${arr[@]}"; }
rows=()
row() { rows+=("| $1 | $2 | $3 | $4 | $5 | $6 | $7 |"); }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.2f", a / b; else print "—" }'; }
mbps() { awk -v r="$1" -v s="$2" 'BEGIN { printf "%.0f", r * s / 1e6 }'; }
echo "bench: $mode run, $(nproc) cores, $(date -u +%FT%TZ)" >&2

# (1) one client downloading the big file.
n1=$(( BIG >= 64 * MiB ? 4 : 20 ))
c=(); h=()
start_sampling
for _ in $(seq 1 "$RUNS"); do
  c+=("$(mbps "$(h2rps -n "$n1" -c 1 -m 1 "${AUTH[@]}" "$CURL/api/v1/files/$IDBIG/content")" "$BIG")")
done
stop_sampling $((RUNS * n1 * BIG))
for _ in $(seq 1 "$RUNS"); do h+=("$(mbps "$(h2rps -n "$n1" -c 1 -m 1 "https://127.0.0.1:$HPORT/big.bin")" "$BIG")"); done
C1=$(median_of c); H1=$(median_of h)
row "(1) 1 client × $((BIG / MiB)) MiB download, MB/s" "$C1" "h2o $H1" "$(ratio "$C1" "$H1")" "≥ 0.8" "$CPU_PER_GB" "$PEAK_MIB"

# (2) 32 clients × 1 MiB files.
c=(); h=()
start_sampling
for _ in $(seq 1 "$RUNS"); do c+=("$(mbps "$(h2rps -c "$CONC" -m 1 -D "$DUR" --warm-up-time 1 "${AUTH[@]}" "$CURL/api/v1/files/$ID1M/content")" "$MiB")"); done
C2=$(median_of c)
stop_sampling "$(awk -v m="$C2" -v r="$RUNS" -v d="$DUR" 'BEGIN { printf "%.0f", m * 1e6 * r * d }')"
for _ in $(seq 1 "$RUNS"); do h+=("$(mbps "$(h2rps -c "$CONC" -m 1 -D "$DUR" --warm-up-time 1 "https://127.0.0.1:$HPORT/1m.bin")" "$MiB")"); done
H2=$(median_of h)
row "(2) $CONC clients × 1 MiB downloads, MB/s" "$C2" "h2o $H2" "$(ratio "$C2" "$H2")" "≥ 0.7" "$CPU_PER_GB" "$PEAK_MIB"

# (3) authenticated metadata GET, 32 connections × 10 streams, versus h2o serving 4 KiB; then p99 at
# half of Coffer's peak rate (h2load --rps is per client; per-request times from --log-file).
c=(); h=()
start_sampling
for _ in $(seq 1 "$RUNS"); do c+=("$(h2rps -c "$CONC" -m 10 -D "$DUR" --warm-up-time 1 "${AUTH[@]}" "$CURL/api/v1/nodes/$ID4K")"); done
stop_sampling 0
for _ in $(seq 1 "$RUNS"); do h+=("$(h2rps -c "$CONC" -m 10 -D "$DUR" --warm-up-time 1 "https://127.0.0.1:$HPORT/4k.bin")"); done
C3=$(median_of c); H3=$(median_of h)
per_client=$(awk -v r="$C3" -v c="$CONC" 'BEGIN { v = r / 2 / c; printf "%.0f", v < 1 ? 1 : v }')
h2load "${H2LOAD[@]}" -c "$CONC" -m 1 --rps="$per_client" -D "$DUR" "${AUTH[@]}" --log-file="$BENCH_TMP/lat.log" "$CURL/api/v1/nodes/$ID4K" >/dev/null 2>&1 || true
P99=$(awk '{ print $3 / 1000 }' "$BENCH_TMP/lat.log" | sort -g | awk '{ a[NR] = $1 } END { i = int(NR * 0.99); if (i < 1) i = 1; printf "%.2f", a[i] }')
row "(3) metadata GET, $CONC conn × 10 streams, req/s (p99 at half rate)" "$(printf '%.0f' "$C3") (p99 $P99 ms)" "h2o 4 KiB $(printf '%.0f' "$H3")" "$(ratio "$C3" "$H3")" "≥ 0.5, p99 < 10 ms" "—" "$PEAK_MIB"

# (4) one tus upload in pieces (scan and encryption included) vs nginx receiving the same body to
# disk, and vs clamscan alone on the same bytes with the same database (its start-up, measured on
# an empty file, subtracted).
c=()
start_sampling
for _ in $(seq 1 "$RUNS"); do c+=("$(awk -v s="$(client tus "$ROOT" "$BENCH_TMP/tus.bin" "$PIECE" 1)" -v b="$TUS" 'BEGIN { printf "%.1f", b / 1e6 / s }')"); done
stop_sampling $((RUNS * TUS))
C4=$(median_of c)
hyperfine -N --runs "$RUNS" --export-json "$BENCH_TMP/put.json" \
  "curl -sk --http2 -o /dev/null -T $BENCH_TMP/tus.bin https://127.0.0.1:$NPORT/dav/up.bin" >"$BENCH_TMP/hyperfine.log" 2>&1 ||
  { echo "bench: hyperfine (curl PUT to nginx) failed:" >&2; tail -20 "$BENCH_TMP/hyperfine.log" >&2; exit 1; }
N4=$(python3 -c "import json,sys; r=json.load(open('$BENCH_TMP/put.json'))['results'][0]; print(f\"{$TUS/1e6/r['median']:.1f}\")")
CLAM=(clamscan --no-summary --database="$BENCH_SIGS" --max-filesize=4000M --max-scansize=4000M)
hyperfine -N --runs "$RUNS" --export-json "$BENCH_TMP/clam.json" "${CLAM[*]} $BENCH_TMP/tus.bin" "${CLAM[*]} $BENCH_TMP/empty.bin" >"$BENCH_TMP/hyperfine.log" 2>&1 ||
  { echo "bench: hyperfine (clamscan) failed:" >&2; tail -20 "$BENCH_TMP/hyperfine.log" >&2; exit 1; }
K4=$(python3 -c "import json; r=json.load(open('$BENCH_TMP/clam.json'))['results']; t=max(r[0]['median']-r[1]['median'],1e-3); print(f'{$TUS/1e6/t:.1f}')")
row "(4a) tus upload $((TUS / MiB)) MiB in $((PIECE / MiB)) MiB PATCHes, MB/s" "$C4" "nginx PUT $N4" "$(ratio "$C4" "$N4")" "—" "$CPU_PER_GB" "$PEAK_MIB"
row "(4b) the same upload vs clamscan on the same bytes, MB/s" "$C4" "clamscan $K4" "$(ratio "$C4" "$K4")" "≥ 0.8" "$CPU_PER_GB" "$PEAK_MIB"

# (5) 8 concurrent tus uploads: peak RSS.
start_sampling
S5=$(client tus "$ROOT" "$BENCH_TMP/tus8.bin" "$PIECE" 8)
stop_sampling $((8 * TUS8))
row "(5) 8 concurrent tus uploads × $((TUS8 / MiB)) MiB, MB/s (peak RSS)" "$(awk -v s="$S5" -v b=$((8 * TUS8)) 'BEGIN { printf "%.1f", b / 1e6 / s }') ($PEAK_MIB MiB)" "—" "—" "RSS ≤ 256 MiB" "$CPU_PER_GB" "$PEAK_MIB"

# (6) listing a folder of LIST files, pages of 100.
start_sampling
read -r P50 P99L PAGES < <(client listing "$LIST")
stop_sampling 0
row "(6) listing $LIST files by pages of 100: p50 / p99 ms per page ($PAGES pages)" "$P50 / $P99L" "—" "—" "p99 < 20 ms" "—" "$PEAK_MIB"

# (7) anonymous recipients: unlock + 1 MiB download, versus scenario (2).
start_sampling
read -r C7 U7 < <(client shares "$ID1M" "$DUR" "$CONC")
stop_sampling "$(awk -v m="$C7" -v d="$DUR" 'BEGIN { printf "%.0f", m * 1e6 * d }')"
row "(7) $CONC recipients: unlock + 1 MiB download, MB/s ($U7 unlocks)" "$C7" "scenario (2) $C2" "$(ratio "$C7" "$C2")" "≥ 0.5" "$CPU_PER_GB" "$PEAK_MIB"

echo "| scenario ($mode) | Coffer | peer | ratio | target | Coffer CPU s/GB | Coffer peak RSS MiB |"
echo "| --- | --- | --- | --- | --- | --- | --- |"
printf '%s\n' "${rows[@]}"

# A measurement that came out empty or zero means a tool failed: never print such a table as valid.
bad=$(printf '%s\n' "${rows[@]}" | awk -F'|' '{ for (i = 3; i <= 4; i++) { v = $i; gsub(/^ +| +$/, "", v); if (v == "" || v ~ /(^| )0(\.0+)?( |$)/) print $2 } }')
if [ -n "$bad" ]; then
  echo "bench: empty or zero measurements in:$bad" >&2
  exit 1
fi
