# bench/lib/common.sh: shared pieces of the benchmark scripts (sourced, not run).
# Starts Coffer (release build) with a fresh data directory on 127.0.0.1, and the peers.
set -eEuo pipefail
# A benchmark that fails says where: the file, line and command (set -e alone exits silently).
# Subshells stay quiet (a probe like `ps --ppid` in $(...) may fail by design); a failure that
# matters there fails the command of the main shell that ran it, which is reported.
bench_err() { [ "$BASH_SUBSHELL" -eq 0 ] || return 0; echo "bench: $2:$3: '$4' failed (exit $1)" >&2; }
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
# BENCH_EXTRA_YAML: more top-level configuration keys.
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
limits: { max_request_body_bytes: 300MiB }
log: { access: "off", level: warn }
scan: { database_dir: $BENCH_SIGS, max_seconds: 900 }
$([ "$(id -u)" = 0 ] && echo 'user: root  # started as root, coffer serve needs user: (here: keep root)')
${BENCH_EXTRA_YAML:-}
YAML
  if [ ! -f "$dir/data/CURRENT" ]; then
    COFFER_ADMIN_PASSWORD=bench-password-1 "$COFFER_BIN" init -c "$dir/coffer.yaml" >/dev/null
  fi
  env "$@" "$COFFER_BIN" serve -c "$dir/coffer.yaml" 2>"$dir/serve.log" &
  COFFER_PID=$!
  # Up once it answers; a generous deadline (a sanitizer build on busy cores starts slowly), and
  # a failure at once if it exited.
  local deadline=$((SECONDS + 180))
  while [ "$SECONDS" -lt "$deadline" ]; do
    kill -0 "$COFFER_PID" 2>/dev/null || { echo "bench: coffer serve exited:" >&2; cat "$dir/serve.log" >&2; return 1; }
    curl -sk "https://127.0.0.1:$port/healthz" >/dev/null 2>&1 && return 0
    sleep 0.1
  done
  echo "bench: coffer did not start within 180 s" >&2; cat "$dir/serve.log" >&2; return 1
}

# bench_client CMD URL TOKEN ARGS...: the API client of the benchmarks (bench/lib/client.mjs).
bench_client() {
  node "$BENCH_TOP/bench/lib/client.mjs" "$@"
}

bench_coffer_stop() {
  kill -TERM "$COFFER_PID" 2>/dev/null || true
  wait "$COFFER_PID" 2>/dev/null || true
}

# bench_h2load_rps ARGS...: runs h2load, prints requests per second (a number).
bench_h2load_rps() {
  timeout 300 h2load "$@" 2>&1 | awk '/^finished in/ { for (i = 1; i <= NF; i++) if ($(i+1) == "req/s,") { print $i; exit } }'
}

# bench_median N1 N2 ...: the median of numbers.
bench_median() {
  printf '%s\n' "$@" | sort -g | awk '{ a[NR] = $1 } END { if (NR % 2) print a[(NR + 1) / 2]; else print (a[NR / 2] + a[NR / 2 + 1]) / 2 }'
}
