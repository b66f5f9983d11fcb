# shellcheck shell=bash
# bench/lib/common.sh: shared pieces of the benchmark scripts (sourced, not run).
# Starts Coffer (release build) with a fresh data directory on 127.0.0.1, and the peers.
set -eEuo pipefail
# A benchmark that fails says where: the file, line and command (set -e alone exits silently).
# Subshells stay quiet (a probe like `ps --ppid` in $(...) may fail by design); a failure that
# matters there fails the command of the main shell that ran it, which is reported.
# BENCH_STEP names the step under way (bench_step); every failure message carries it.
BENCH_STEP="start-up"
bench_step() { BENCH_STEP=$1; echo "bench: [$(date -u +%T)] $1" >&2; }
bench_err() { [ "$BASH_SUBSHELL" -eq 0 ] || return 0; echo "bench: step '$BENCH_STEP' failed: $2:$3: '$4' (exit $1)" >&2; }
# bench_fail MESSAGE: stops the benchmark, naming the step.
bench_fail() { echo "bench: step '$BENCH_STEP' failed: $*" >&2; exit 1; }
trap 'bench_err $? "${BASH_SOURCE[0]}" "$LINENO" "$BASH_COMMAND"' ERR

# bench_need CMD...: fails with a clear message when a tool the benchmark calls is missing.
bench_need() {
  local c
  for c in "$@"; do
    command -v "$c" >/dev/null 2>&1 || { echo "bench: $c not found (scripts/deps.sh bench installs it)" >&2; exit 1; }
  done
}

export PATH="$PATH:/usr/sbin:/sbin" # nginx lives in /usr/sbin, which a user's PATH may lack
BENCH_TOP="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
# BENCH_PORT_BASE: the first of the loopback ports the benchmarks listen on (default 19443): Coffer
# on BASE, h2o on BASE+1, nginx on BASE+2, login-timing on BASE+3, the audit arms on BASE+4. Two
# benchmark runs on one machine need two bases.
BENCH_PORT_BASE="${BENCH_PORT_BASE:-19443}"
[[ $BENCH_PORT_BASE =~ ^[0-9]+$ ]] && [ "$BENCH_PORT_BASE" -ge 1024 ] && [ "$BENCH_PORT_BASE" -le 65500 ] ||
  { echo "bench: BENCH_PORT_BASE must be a number from 1024 to 65500 (got '$BENCH_PORT_BASE')" >&2; exit 2; }
BENCH_TMP="${BENCH_TMP:-$(mktemp -d /tmp/coffer-bench.XXXXXX)}"
mkdir -p "$BENCH_TMP"
# BENCH_BUILD: an existing build directory to use instead of building build-release (the smoke run
# in scripts/test.sh uses the sanitizer build it has just made).
case "${BENCH_BUILD:-build-release}" in
  /*) COFFER_BIN="$BENCH_BUILD/src/coffer" ;;
  *) COFFER_BIN="$BENCH_TOP/${BENCH_BUILD:-build-release}/src/coffer" ;;
esac

bench_build() {
  "$BENCH_TOP/scripts/deps.sh" bench
  if [ -n "${BENCH_BUILD:-}" ]; then
    [ -x "$COFFER_BIN" ] || { echo "bench: $COFFER_BIN is missing" >&2; return 1; }
    return 0
  fi
  if [ ! -f "$BENCH_TOP/build-release/build.ninja" ]; then
    meson setup "$BENCH_TOP/build-release" --buildtype=release >/dev/null
  fi
  ninja -C "$BENCH_TOP/build-release" >/dev/null
}

bench_cert() {
  if [ ! -f "$BENCH_TMP/cert.pem" ]; then
    openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 2 -subj /CN=localhost \
      -keyout "$BENCH_TMP/key.pem" -out "$BENCH_TMP/cert.pem" 2>/dev/null
  fi
}

# bench_sigs: a signature directory for the scanners. The official ClamAV database when
# /var/lib/clamav has one (freshclam), else a small one built here (EICAR as an MD5 and a body
# signature): the scan path is the same, but an official database makes each scan costlier.
bench_sigs() {
  if compgen -G "/var/lib/clamav/*.c[vl]d" >/dev/null; then
    BENCH_SIGS=/var/lib/clamav
    return
  fi
  BENCH_SIGS="$BENCH_TMP/sigs"
  if [ ! -f "$BENCH_SIGS/test.ndb" ]; then
    mkdir -p "$BENCH_SIGS"
    local e; e="$(printf '%s' 'X5O!P%@AP[4\PZX54(P^)7CC)7}$' 'EICAR-STANDARD-ANTIVIRUS-TEST-FILE!' '$H+H*')"
    printf '%s:68:Test.EICAR.MD5\n' "$(printf '%s' "$e" | md5sum | cut -d' ' -f1)" > "$BENCH_SIGS/test.hdb"
    printf 'Test.EICAR.Body:0:*:%s\n' "$(printf '%s' "$e" | od -An -v -tx1 | tr -d ' \n')" > "$BENCH_SIGS/test.ndb"
  fi
}

# bench_coffer_start NAME PORT [ENV=VALUE ...]: a fresh server in $BENCH_TMP/NAME; sets COFFER_PID.
# BENCH_EXTRA_YAML: more top-level configuration keys; BENCH_SERVE_BIN: another coffer binary
# (run.sh's scenario (8) uses the -Dbench_knobs build).
bench_coffer_start() {
  local name=$1 port=$2; shift 2
  local dir="$BENCH_TMP/$name"
  bench_cert
  bench_sigs
  mkdir -p "$dir"
  cat > "$dir/coffer.yaml" <<YAML
listen: ["127.0.0.1:$port"]
public_url: "https://127.0.0.1:$port"
tls: { certificate: $BENCH_TMP/cert.pem, key: $BENCH_TMP/key.pem }
data_dir: data
master_key_file: master.key
limits: { max_request_body_bytes: 300MiB${BENCH_LIMITS:+, $BENCH_LIMITS} }
log: { access: "off", level: warn }
scan: { database_dir: $BENCH_SIGS, max_seconds: 900${BENCH_SCAN:+, $BENCH_SCAN} }
$([ "$(id -u)" = 0 ] && echo 'user: root  # started as root, coffer serve needs user: (here: keep root)')
${BENCH_EXTRA_YAML:-}
YAML
  if [ ! -f "$dir/data/CURRENT" ]; then
    COFFER_ADMIN_PASSWORD=bench-password-1 "${BENCH_SERVE_BIN:-$COFFER_BIN}" init -c "$dir/coffer.yaml" >/dev/null
  fi
  env "$@" "${BENCH_SERVE_BIN:-$COFFER_BIN}" serve -c "$dir/coffer.yaml" 2>"$dir/serve.log" &
  COFFER_PID=$!
  # Up once it answers; a generous deadline (a sanitizer build on busy cores starts slowly), and
  # a failure at once if it exited.
  bench_wait_http "https://127.0.0.1:$port/healthz" "coffer ($name)" "$COFFER_PID" "$dir/serve.log"
}

# bench_wait_http URL WHAT PID LOG [SECONDS]: polls URL until it answers 2xx, with a deadline
# (default 180 s, BENCH_START_DEADLINE); fails at once, showing LOG, if PID exited. No fixed sleep:
# the poll interval is short and only the deadline bounds the wait.
bench_wait_http() {
  local url=$1 what=$2 pid=$3 log=$4 secs=${5:-${BENCH_START_DEADLINE:-180}}
  local deadline=$((SECONDS + secs))
  while [ "$SECONDS" -lt "$deadline" ]; do
    if ! kill -0 "$pid" 2>/dev/null; then
      echo "bench: $what exited before answering on $url; its log:" >&2
      tail -30 "$log" >&2 2>/dev/null || true
      bench_fail "$what did not start"
    fi
    curl -skf --max-time 5 "$url" -o /dev/null 2>/dev/null && return 0
    sleep 0.1
  done
  tail -30 "$log" >&2 2>/dev/null || true
  bench_fail "$what did not answer on $url within $secs s"
}

# bench_port_free PORT...: fails when something already listens there (a server left over from an
# interrupted run would answer in place of the fresh one).
bench_port_free() {
  local p
  for p in "$@"; do
    if (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then
      bench_fail "port $p is in use (a leftover server? set BENCH_PORT_BASE to another base)"
    fi
  done
}

# bench_knobs_of BUILD_DIR: prints true when that build was configured with -Dbench_knobs=true.
bench_knobs_of() {
  python3 -c 'import json, sys
o = json.load(open(sys.argv[1] + "/meson-info/intro-buildoptions.json"))
print(str(any(x["name"] == "bench_knobs" and x["value"] for x in o)).lower())' "$1" 2>/dev/null || echo false
}

# bench_knobs_build: sets BENCH_KNOBS_BIN, a coffer binary that honours
# COFFER_BENCH_NO_TRANSFER_AUDIT=1. BENCH_KNOBS_BUILD=DIR names one; otherwise the BENCH_BUILD one
# when it has the option, else build-bench (release, -Dbench_knobs=true) is configured and built.
# With BENCH_KNOBS_OPTIONAL=1 (smoke runs) and no such build at hand, it sets BENCH_KNOBS_BIN empty
# instead of building one.
bench_knobs_build() {
  local dir
  if [ -n "${BENCH_KNOBS_BUILD:-}" ]; then
    case "$BENCH_KNOBS_BUILD" in /*) dir=$BENCH_KNOBS_BUILD ;; *) dir="$BENCH_TOP/$BENCH_KNOBS_BUILD" ;; esac
    [ "$(bench_knobs_of "$dir")" = true ] || bench_fail "BENCH_KNOBS_BUILD=$dir is not configured with -Dbench_knobs=true"
  elif [ "$(bench_knobs_of "$(dirname "$(dirname "$COFFER_BIN")")")" = true ]; then
    dir=$(dirname "$(dirname "$COFFER_BIN")")
  elif [ "${BENCH_KNOBS_OPTIONAL:-0}" = 1 ]; then
    BENCH_KNOBS_BIN=
    return 0
  else
    dir="$BENCH_TOP/build-bench"
    [ -f "$dir/build.ninja" ] || meson setup "$dir" --buildtype=release -Dbench_knobs=true >/dev/null
    meson configure "$dir" -Dbench_knobs=true >/dev/null
    ninja -C "$dir" >/dev/null
  fi
  BENCH_KNOBS_BIN="$dir/src/coffer"
  [ -x "$BENCH_KNOBS_BIN" ] || bench_fail "$BENCH_KNOBS_BIN is missing (run ninja -C $dir)"
}

# bench_client CMD URL TOKEN ARGS...: the API client of the benchmarks (bench/lib/client.mjs).
bench_client() {
  node "$BENCH_TOP/bench/lib/client.mjs" "$@"
}

bench_coffer_stop() {
  kill -TERM "$COFFER_PID" 2>/dev/null || true
  wait "$COFFER_PID" 2>/dev/null || true
}

# bench_h2load_rps ARGS...: runs h2load, prints requests per second (a number). Fails, naming the
# step and showing h2load's summary, when h2load failed, a request failed or errored, or any answer
# was not 2xx (a 401, 429 or 503 would otherwise be measured as if it were the real work).
bench_h2load_rps() {
  local out="$BENCH_TMP/h2load.out" rc=0
  timeout 600 h2load "$@" >"$out" 2>&1 || rc=$?
  local verdict
  verdict=$(awk '
    /^finished in/ { for (i = 1; i <= NF; i++) if ($(i+1) == "req/s,") rps = $i }
    /^requests:/ { for (i = 1; i <= NF; i++) { if ($(i+1) ~ /^failed/) failed = $i; if ($(i+1) ~ /^errored/) errored = $i; if ($(i+1) ~ /^succeeded/) ok = $i } }
    /^status codes:/ { for (i = 1; i <= NF; i++) if ($(i+1) ~ /^[345]xx/) bad += $i }
    END { if (rps == "" || ok + 0 == 0) print "no"; else if (failed + errored + bad > 0) print "bad"; else print rps }' "$out")
  if [ "$rc" -ne 0 ] || [ "$verdict" = no ] || [ "$verdict" = bad ]; then
    echo "bench: h2load $* (exit $rc):" >&2
    grep -E '^(finished|requests|status codes|traffic)|rror|fail' "$out" | head -12 >&2 || tail -12 "$out" >&2
    bench_fail "h2load: no clean measurement"
  fi
  echo "$verdict"
}

# bench_median N1 N2 ...: the median of numbers.
bench_median() {
  printf '%s\n' "$@" | sort -g | awk '{ a[NR] = $1 } END { if (NR % 2) print a[(NR + 1) / 2]; else print (a[NR / 2] + a[NR / 2 + 1]) / 2 }'
}

# bench_perf_record FILE PERF_ARGS...: `perf record PERF_ARGS -o FILE.data` in the background (its
# log in FILE.log), PERF_PID set; returns once perf has written its file (60 s deadline, polled).
bench_perf_record() {
  local f=$1; shift
  perf record "$@" -o "$f.data" >"$f.log" 2>&1 &
  PERF_PID=$!
  local deadline=$((SECONDS + 60))
  until [ -s "$f.data" ]; do
    kill -0 "$PERF_PID" 2>/dev/null || { cat "$f.log" >&2; PERF_PID=; bench_fail "perf record exited"; }
    [ "$SECONDS" -lt "$deadline" ] || bench_fail "perf record wrote nothing within 60 s"
    sleep 0.1
  done
}
