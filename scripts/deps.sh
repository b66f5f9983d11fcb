#!/usr/bin/env bash
# scripts/deps.sh [run|test|bench]: installs the Debian packages Coffer needs for that purpose.
# Idempotent and quick when everything is present: apt-get runs only for what is missing.
set -euo pipefail

purpose="${1:-run}"
build=(meson ninja-build pkg-config gcc libc6-dev
       libh2o-evloop-dev librocksdb-dev libssl-dev libyaml-dev libjansson-dev libargon2-dev libmagic-dev
       libclamav-dev libseccomp-dev openssl)
# zip, p7zip-full: the scanner tests build archives; clamav-testfiles: a RAR sample (no free rar tool);
# oathtool: the TOTP tests check codes against a real authenticator; chromium: the browser tests
# (driven by playwright-core from tests/package.json); fonts-dejavu-core: legible screenshots;
# testssl.sh: the TLS configuration audit (tests/integration/tls.test.mjs); prometheus: promtool lints
# GET /metrics (tests/integration/metrics.test.mjs); systemd: systemd-analyze verifies conf/coffer.service
# (tests/integration/service.test.mjs; containers often lack it).
test_extra=(curl nghttp2-client nodejs zip p7zip-full clamav-testfiles oathtool chromium fonts-dejavu-core testssl.sh
            prometheus systemd)
bench_extra=(nghttp2-client wrk hyperfine h2o nginx-light curl)

# clamav-freshclam: fetches and updates the virus signatures the server needs to run.
run_extra=(clamav-freshclam)

pkgs=("${build[@]}")
case "$purpose" in
  run) pkgs+=("${run_extra[@]}") ;;
  test) pkgs+=("${test_extra[@]}") ;;
  bench) pkgs+=("${test_extra[@]}" "${bench_extra[@]}") ;;
  *) echo "usage: scripts/deps.sh [run|test|bench]" >&2; exit 2 ;;
esac

missing=()
for p in "${pkgs[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done
# Node may come from another Debian-format repository (nodesource) under the same package name;
# any node ≥ 18 will do for the test clients.
if command -v node >/dev/null 2>&1; then
  missing=("${missing[@]/nodejs}")
fi
# npm installs the test clients (tests/package.json: tus-js-client); nodesource's nodejs bundles
# it, Debian's does not.
if [ "$purpose" != run ] && ! command -v npm >/dev/null 2>&1; then
  missing+=(npm)
fi
missing=($(printf '%s\n' "${missing[@]}" | grep -v '^$' || true))
if [ "${#missing[@]}" -gt 0 ]; then
  echo "deps: installing ${missing[*]}" >&2
  if [ "$(id -u)" -ne 0 ]; then SUDO=sudo; else SUDO=; fi
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update -q >/dev/null
  $SUDO apt-get install -y -q --no-install-recommends "${missing[@]}" >/dev/null
fi
