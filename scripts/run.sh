#!/usr/bin/env bash
# scripts/run.sh: installs what is missing, builds a release build, and on the first run creates
# var/ with a self-signed certificate, a master key, a configuration and an admin account (whose
# password is printed once; set COFFER_ADMIN_PASSWORD to choose it). Then serves
# https://localhost:8443 in the foreground (COFFER_PORT=N for another port: it is written into
# listen: and public_url: of var/coffer.yaml). Ctrl-C stops it gracefully. Every step prints a
# "run: [k/7] ..." line first, so a long step (the first build) never looks like a hang.
set -eEuo pipefail
trap 'echo "run: line $LINENO: \"$BASH_COMMAND\" failed (exit $?)" >&2' ERR # say what failed
cd "$(dirname "$0")/.."
top="$PWD"
step() { echo "run: [$1/7] $2" >&2; }

port="${COFFER_PORT:-}"
if [ -n "$port" ] && ! [[ "$port" =~ ^[0-9]+$ && "$port" -ge 1 && "$port" -le 65535 ]]; then
  echo "run: COFFER_PORT must be a port number (1-65535), not '$port'" >&2
  exit 2
fi

step 1 "checking the Debian packages the server needs (installs what is missing)"
scripts/deps.sh run

# Only what the server runs: coffer, its sandboxed scanner (coffer-scan) and renderer (coffer-render);
# not the tests, fuzzers or tools (scripts/test.sh builds those).
step 2 "building the server (release; the first build takes a few minutes)"
if [ ! -f build-release/build.ninja ]; then
  meson setup build-release --buildtype=release >/dev/null
fi
log=build-release/run-build.log
# ninja's own [n/N] lines go to the log; a progress line every 20 steps goes to the terminal.
if ninja -C build-release src/coffer src/coffer-scan src/coffer-render 2>&1 | tee "$log" |
   awk '/^\[[0-9]+\/[0-9]+\]/ { split(substr($1, 2), a, "/"); n = a[1] + 0; t = a[2] + 0;
        if (n % 20 == 0 || n == t) { printf "run:       compiled %d of %d\n", n, t > "/dev/stderr"; fflush("/dev/stderr") } }'; then
  :
else
  grep -E 'error|FAILED' "$log" | head -20 >&2 || true
  echo "run: the build failed; the whole output is in $log" >&2
  exit 1
fi

step 3 "preparing var/ (certificate, service account)"
var="$top/var"
mkdir -p "$var"
chmod 700 "$var"
# Started as root, the server binds its port and reads its keys, then runs as the system account
# `coffer` (created here if missing). It needs to reach var/data (var/ is traversable, not
# listable) and to read the TLS files when SIGHUP reloads them; the master key stays root's.
account=
if [ "$(id -u)" -eq 0 ]; then
  account=coffer
  getent passwd "$account" >/dev/null ||
    useradd --system --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin "$account"
  chmod 711 "$var"
fi
if [ ! -f "$var/tls/cert.pem" ]; then
  mkdir -p "$var/tls"
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 825 \
    -subj /CN=localhost -addext "subjectAltName=DNS:localhost,IP:127.0.0.1" \
    -keyout "$var/tls/key.pem" -out "$var/tls/cert.pem" 2>/dev/null
  chmod 600 "$var/tls/key.pem"
fi
if [ -n "$account" ]; then
  chgrp "$account" "$var/tls" "$var/tls/key.pem" "$var/tls/cert.pem"
  chmod 750 "$var/tls"
  chmod 640 "$var/tls/key.pem"
fi
# Virus signatures: the server refuses to start without them. Debian's freshclam fills
# /var/lib/clamav when the ClamAV mirrors are reachable; without them the first run configures a
# development setup, which says so loudly (log, /healthz, "unchecked" on every file) and scans for
# real as soon as signatures appear in the directory (they are picked up without a restart).
# A failed freshclam (offline: ~40 s of retries) is not retried for an hour: var/freshclam.failed
# holds the time of the failure; delete it to retry at once.
sigdir=/var/lib/clamav
stamp="$var/freshclam.failed"
has_sigs() { compgen -G "$sigdir/*.c[vl]d" >/dev/null || compgen -G "$sigdir/*.[hn]db" >/dev/null; }
step 4 "virus signatures in $sigdir"
if has_sigs; then
  rm -f "$stamp"
elif ! command -v freshclam >/dev/null; then
  echo "run: freshclam is not installed: no signatures" >&2
elif [ -f "$stamp" ] && [ $(( $(date +%s) - $(stat -c %Y "$stamp") )) -lt 3600 ]; then
  echo "run: skipping freshclam: it failed $(( ($(date +%s) - $(stat -c %Y "$stamp")) / 60 )) minute(s) ago" \
       "(retried after an hour; rm $stamp to retry now)" >&2
else
  echo "run: fetching ClamAV signatures with freshclam (needs access to database.clamav.net; up to 90 s)" >&2
  if timeout 90 freshclam --quiet >/dev/null 2>&1 && has_sigs; then
    rm -f "$stamp"
  else
    touch "$stamp"
    echo "run: freshclam failed (offline?); not retried for an hour" >&2
  fi
fi
step 5 "configuration ($var/coffer.yaml)"
if [ ! -f "$var/coffer.yaml" ]; then
  if has_sigs; then
    scan="scan: { database_dir: $sigdir }"
  else
    # Development mode: uploads are accepted UNSCANNED (a red banner in the web UI, /healthz 503
    # "scan": "disabled" until you set accept_unscanned: true) and scanned once signatures arrive.
    scan="scan: { database_dir: $sigdir, development: true }   # NO SIGNATURES: remove development once freshclam has run"
  fi
  cat > "$var/coffer.yaml" <<YAML
# Created by scripts/run.sh; see conf/coffer.yaml for every key.
# The port: listen and public_url below (or COFFER_PORT=N scripts/run.sh, which rewrites both).
listen: ["127.0.0.1:${port:-8443}"]
public_url: "https://localhost:${port:-8443}"
tls: { certificate: tls/cert.pem, key: tls/key.pem }
data_dir: data
master_key_file: master.key
web_dir: "$top/web"
log: { access: access.log }
$scan
YAML
  if [ -n "$account" ]; then echo "user: $account" >> "$var/coffer.yaml"; fi
fi
# A var/ made by an earlier run.sh, when the server ran as root: hand its files to the account.
if [ -n "$account" ] && ! grep -q '^user:' "$var/coffer.yaml"; then
  echo "run: from now on the server runs as '$account' (user: in $var/coffer.yaml)" >&2
  echo "user: $account" >> "$var/coffer.yaml"
  [ -d "$var/data" ] && chown -R "$account:" "$var/data"
  [ -f "$var/access.log" ] && chown "$account:" "$var/access.log"
fi
if [ -n "$port" ] && ! grep -q "^listen: \[\"127.0.0.1:$port\"\]" "$var/coffer.yaml"; then
  echo "run: COFFER_PORT=$port: listen and public_url in $var/coffer.yaml now use port $port" >&2
  sed -i -E "s|^listen: .*|listen: [\"127.0.0.1:$port\"]|; s|^public_url: \"https://localhost:[0-9]+\"|public_url: \"https://localhost:$port\"|" \
    "$var/coffer.yaml"
fi
step 6 "the store ($var/data)"
if [ ! -f "$var/data/CURRENT" ]; then
  build-release/src/coffer init -c "$var/coffer.yaml"
fi
if ! has_sigs; then
  echo "run: WARNING: no virus signatures in $sigdir: uploads are NOT checked for malware until" \
       "freshclam (or you) put signatures there; they are scanned then" >&2
fi
url=$(sed -n -E 's/^public_url: "?([^" ]+)"?.*/\1/p' "$var/coffer.yaml")
step 7 "serving ${url:-https://localhost:8443} (Ctrl-C to stop)"
exec build-release/src/coffer serve -c "$var/coffer.yaml"
