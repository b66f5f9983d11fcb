#!/usr/bin/env bash
# scripts/run.sh: installs what is missing, builds a release build, and on the first run creates
# var/ with a self-signed certificate, a master key, a configuration and an admin account (whose
# password is printed once; set COFFER_ADMIN_PASSWORD to choose it). Then serves
# https://localhost:8443 in the foreground. Ctrl-C stops it gracefully.
set -eEuo pipefail
trap 'echo "run: line $LINENO: \"$BASH_COMMAND\" failed (exit $?)" >&2' ERR # say what failed
cd "$(dirname "$0")/.."
top="$PWD"

scripts/deps.sh run

if [ ! -f build-release/build.ninja ]; then
  meson setup build-release --buildtype=release >/dev/null
fi
ninja -C build-release >/dev/null

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
sigdir=/var/lib/clamav
has_sigs() { compgen -G "$sigdir/*.c[vl]d" >/dev/null || compgen -G "$sigdir/*.[hn]db" >/dev/null; }
if ! has_sigs && command -v freshclam >/dev/null; then
  echo "run: fetching ClamAV signatures with freshclam (needs access to database.clamav.net)" >&2
  timeout 90 freshclam --quiet >/dev/null 2>&1 || true
fi
if [ ! -f "$var/coffer.yaml" ]; then
  if has_sigs; then
    scan="scan: { database_dir: $sigdir }"
  else
    scan="scan: { database_dir: $sigdir, development: true }   # NO SIGNATURES: remove development once freshclam has run"
  fi
  cat > "$var/coffer.yaml" <<YAML
# Created by scripts/run.sh; see conf/coffer.yaml for every key.
listen: ["127.0.0.1:8443"]
public_url: "https://localhost:8443"
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
if [ ! -f "$var/data/CURRENT" ]; then
  build-release/src/coffer init -c "$var/coffer.yaml"
fi
if ! has_sigs; then
  echo "run: WARNING: no virus signatures in $sigdir: uploads are NOT checked for malware until" \
       "freshclam (or you) put signatures there" >&2
fi
echo "serving https://localhost:8443 (Ctrl-C to stop)"
exec build-release/src/coffer serve -c "$var/coffer.yaml"
