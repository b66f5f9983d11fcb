#!/usr/bin/env bash
# scripts/deps.sh [run|test|bench|cluster]: installs the Debian packages Coffer needs for that purpose
# (bench includes test, test includes run's tools, the cluster ones and the build; cluster: the build,
# run's tools and what cluster mode and scripts/cluster.sh need). Idempotent and quick when
# everything is present: apt-get runs only for what is missing, and afterwards every command is
# checked again, so that a failed install names the command that is still missing.
#
# The audit (issue 18): every command that scripts/*.sh, bench/*.sh, .ci/run, the meson build and
# the tests (tests/**: node's execFile/spawn, the C tests' system/popen, meson find_program) run,
# the Debian package it comes from, and who calls it. A command found on PATH counts as present,
# whatever installed it (node from nodesource, python3 from pyenv); libraries and data files are
# checked with dpkg. Essential packages (bash, coreutils, dpkg, apt, libc-bin, util-linux, passwd,
# mawk, findutils, grep, sed, tar) are on every Debian system and are not listed as installs.
#
# | command          | Debian package     | called by                                                                  |
# | ---------------- | ------------------ | -------------------------------------------------------------------------- |
# | meson            | meson              | scripts/test.sh, scripts/run.sh, scripts/fuzz.sh, bench/lib/common.sh      |
# | ninja            | ninja-build        | the same (meson's backend)                                                 |
# | cc               | gcc (+ libc6-dev)  | meson.build                                                                |
# | pkg-config       | pkg-config         | meson.build (dependency())                                                 |
# | (libraries)      | libh2o-evloop-dev, librocksdb-dev, libssl-dev, libyaml-dev, libjansson-dev,   |
# |                  | libargon2-dev, libmagic-dev, libclamav-dev, libseccomp-dev: meson.build       |
# | (libraries)      | libicu-dev: the search index's Unicode normalisation (storage/search.c)       |
# | (libraries)      | libqrencode-dev: meson.build (TOTP enrolment QR codes, src/api/me.c)          |
# | (libraries)      | zlib1g-dev: src/core/meson.build (CRC-32 of folder ZIP downloads, zipw.c)     |
# | (libraries)      | libxml2-dev: src/dav/meson.build (WebDAV request bodies, src/dav/davxml.c;    |
# |                  | libxml2 itself already came with libclamav)                                   |
# | (libraries)      | libldap-dev: src/core/meson.build (the directory client, src/core/ldapc.c:    |
# |                  | LDAP sign-in and `coffer directory sync`, issue 23)                           |
# | slapd, slapadd   | slapd              | tests/integration/lib/slapd.mjs (a throw-away OpenLDAP server)             |
# | ldapmodify, ldapsearch | ldap-utils   | tests/integration/lib/slapd.mjs, directory.test.mjs                        |
# | (libraries)      | libvips-dev, libpoppler-glib-dev, libpango1.0-dev, libcairo2-dev: the        |
# |                  | renderer (src/render/meson.build; coffer-render only, never the server)      |
# | soffice.bin      | libreoffice-core-nogui, -writer-nogui, -calc-nogui, -impress-nogui: office  |
# |                  | documents to PDF in the renderer (src/render/renderer.c; run and test)      |
# | (fonts)          | fonts-noto-cjk     | the renderer and LibreOffice (run and test): Chinese, Japanese, Korean in  |
# |                  |                    | text pages, office documents and watermarks (a viewer's name), instead of  |
# |                  |                    | tofu boxes; pages-i18n.test.mjs proves it on the pixels. Chosen over       |
# |                  |                    | fonts-wqy-microhei (1.6 MB download, 5 MB installed, one weight, a 2010    |
# |                  |                    | beta): Noto Sans/Serif CJK, regular and bold (the watermark is bold), SC,  |
# |                  |                    | TC, JP, KR forms, maintained; 57 MB download, 89 MiB installed (Debian 12) |
# | (python modules) | python3-docx, python3-openpyxl: tests/unit/test_render.c (system: /usr/bin/  |
# |                  | python3 makes its docx and xlsx)                                             |
# | (python modules) | python3-tuspy: tests/integration/tuspy.test.mjs (a second, independent tus   |
# |                  | client, tusclient 1.0 over requests; system /usr/bin/python3 runs it)        |
# | clang            | clang              | scripts/fuzz.sh only (it installs clang itself; not part of any purpose)   |
# | openssl          | openssl            | scripts/run.sh, bench/lib/common.sh, tests: lib/harness.mjs, tls, service, |
# |                  |                    | http (s_client)                                                            |
# | freshclam        | clamav-freshclam   | scripts/run.sh (signatures; run only)                                      |
# | useradd, getent  | passwd, libc-bin   | scripts/run.sh, tests/integration/privilege.test.mjs                       |
# | timeout          | coreutils          | scripts/run.sh, bench/lib/common.sh, tests/integration/http.test.mjs       |
# | node             | nodejs             | meson test (find_program: every integration suite), bench/lib/*.mjs        |
# | npm              | npm                | scripts/test.sh (npm ci: tus-js-client, playwright-core)                   |
# | python3          | python3            | scripts/test.sh (closing line), bench/run.sh, bench/lib/common.sh,         |
# |                  |                    | provenance.test.mjs (csv), tests/unit/test_davxml.c (popen: xml.etree      |
# |                  |                    | reads the multistatus back)                                                |
# | bash             | bash               | .ci/run, meson find_program (bench-smoke)                                  |
# | curl             | curl               | lib/harness.mjs curl(), http, provenance, shutdown, tus tests; bench       |
# | nghttp           | nghttp2-client     | tests/integration/http.test.mjs                                            |
# | zip              | zip                | tests/integration/lib/archives.mjs (scan tests), lib/office.mjs (ODF)      |
# | unzip            | unzip              | zip.test.mjs, quota.test.mjs, tests/unit/test_zip.c (unzip -t of folder    |
# |                  |                    | downloads and of the ZIP writer's archives, ZIP64 included)                |
# | soffice          | (the soffice.bin   | pages.test.mjs, lib/office.mjs (pages-office, pages-i18n): test files made |
# |                  | packages)          | at test time (docx, xlsx, pptx; PDFs for their page counts)                |
# | dwebp            | webp               | lib/pixels.mjs (pages-i18n, pages-office: decodes served pages to PPM)     |
# | 7z               | p7zip-full         | tests/integration/lib/archives.mjs (scan tests)                            |
# | oathtool         | oathtool           | identity.test.mjs, web.test.mjs, account.test.mjs, web-account.test.mjs,   |
# |                  |                    | tests/unit/test_totp.c (popen)                                             |
# | zbarimg          | zbar-tools         | web-account.test.mjs (decodes the enrolment QR code from a screenshot)     |
# | chromium         | chromium           | web.test.mjs, quota.test.mjs, directory.test.mjs (driven by playwright-core from |
# |                  |                    | tests/package.json)                                                        |
# | (fonts)          | fonts-dejavu-core  | web.test.mjs: legible screenshots                                          |
# | testssl          | testssl.sh         | tls.test.mjs (the TLS configuration audit)                                 |
# | litmus           | litmus             | webdav.test.mjs (the WebDAV conformance suite: basic, copymove)            |
# | rclone           | rclone             | webdav-clients.test.mjs (webdav remote: 200 files incl. 300 MB, check)     |
# | cadaver          | cadaver            | webdav-clients.test.mjs (scripted lock/put/unlock/get session)             |
# | mount.davfs      | davfs2             | webdav-clients.test.mjs (mount -t davfs as root with /dev/fuse: list,      |
# |                  |                    | write, read back, umount)                                                  |
# | script           | bsdutils           | webdav-clients.test.mjs (runs cadaver on a pseudo-terminal)                |
# | mount, umount    | mount              | webdav-clients.test.mjs (the davfs2 mount)                                 |
# | promtool         | prometheus         | metrics.test.mjs (lints GET /metrics)                                      |
# | systemd-analyze  | systemd            | service.test.mjs (verifies conf/coffer.service; containers often lack it)  |
# | setpriv          | util-linux         | privilege.test.mjs                                                         |
# | stress-ng        | stress-ng          | scripts/test.sh --busy (two CPU hogs beside the suites)                    |
# | h2load           | nghttp2-client     | bench/run.sh, bench/audit.sh (and bench-smoke in scripts/test.sh)          |
# | h2o              | h2o                | bench/run.sh (the peer)                                                    |
# | nginx            | nginx-light        | bench/run.sh (the peer)                                                    |
# | hyperfine        | hyperfine          | bench/run.sh (scenario 4)                                                  |
# | clamscan         | clamav             | bench/run.sh (scenario 4b; bench-smoke failed without it)                  |
# | ps               | procps             | bench/run.sh (CPU and RSS of the server's process tree)                    |
# | getconf, awk     | libc-bin, mawk     | bench/run.sh; awk also scripts/run.sh (build progress lines)               |
# | perf             | linux-perf         | bench/run.sh --profile (perf record -g, perf report per scenario)          |
# | (libraries)      | libnghttp2-dev (bench): bench/meson.build, cf-share-recipients (run.sh (7))   |
# | (libraries)      | librados-dev: storage/meson.build (RADOS chunk bodies, engine/blob_rados.c,   |
# |                  | issue 24; optional feature `rados`, auto)                                     |
# | (libraries)      | libpq-dev: storage/meson.build (the PostgreSQL metadata engine, engine/pg.c,  |
# |                  | issue 24; optional feature `postgres`, auto)                                  |
# | initdb, pg_ctl,  | postgresql (-15)   | tests/lib/pgtmp.sh (a throw-away PostgreSQL: tests/unit engine,            |
# | postgres         |                    | tests/integration/lib/pg.mjs, cluster-pg.test.mjs)                         |
# | psql, pg_dump    | postgresql-client  | tests/lib/pgtmp.sh, tests/integration/lib/pg.mjs (tables, dumps searched)  |
# | ceph-mon         | ceph-mon           | scripts/ceph-local.sh (cluster.sh, tests/unit/blob_rados.sh)               |
# | ceph-osd         | ceph-osd           | scripts/ceph-local.sh (memstore OSDs)                                      |
# | monmaptool       | ceph-base          | scripts/ceph-local.sh (the first monitor map)                              |
# | ceph, rados,     | ceph-common        | scripts/ceph-local.sh, scripts/cluster.sh (pools, keys, health, pool dumps)|
# | ceph-authtool    |                    | lib/harness.mjs cluster mode (psql, pg_dump, rados: databases per test     |
# |                  |                    | server, stores searched, objects removed; scripts/test.sh's cluster-*)     |
# | dpkg-query, apt-get | dpkg, apt       | this script                                                                |
# No longer installed: wrk (nothing calls it) and clamav-testfiles (scan.test.mjs builds its RAR
# sample itself).
set -eEuo pipefail
trap 'echo "deps: line $LINENO: \"$BASH_COMMAND\" failed (exit $?)" >&2' ERR

purpose="${1:-run}"
# nginx and useradd live in /usr/sbin, which a user's PATH may lack.
export PATH="$PATH:/usr/sbin:/sbin"
# Libraries and data: checked with dpkg.
build_pkgs=(libc6-dev libh2o-evloop-dev librocksdb-dev libssl-dev libyaml-dev libjansson-dev libargon2-dev libmagic-dev
            libclamav-dev libseccomp-dev libqrencode-dev libvips-dev libpoppler-glib-dev libpango1.0-dev libcairo2-dev
            libicu-dev zlib1g-dev libxml2-dev libldap-dev)
# The renderer's office converter and its fonts (run and test).
render_pkgs=(libreoffice-core-nogui libreoffice-writer-nogui libreoffice-calc-nogui libreoffice-impress-nogui
             fonts-dejavu-core fonts-noto-cjk)
test_pkgs=(fonts-dejavu-core python3-docx python3-openpyxl python3-tuspy)
# Commands, as command:package: checked on PATH.
build_cmds=(meson:meson ninja:ninja-build cc:gcc pkg-config:pkg-config)
run_cmds=(openssl:openssl freshclam:clamav-freshclam useradd:passwd getent:libc-bin timeout:coreutils)
test_cmds=(slapd:slapd ldapmodify:ldap-utils openssl:openssl node:nodejs npm:npm python3:python3 curl:curl nghttp:nghttp2-client zip:zip unzip:unzip 7z:p7zip-full
           oathtool:oathtool chromium:chromium testssl:testssl.sh promtool:prometheus systemd-analyze:systemd
           setpriv:util-linux useradd:passwd getent:libc-bin timeout:coreutils stress-ng:stress-ng zbarimg:zbar-tools
           dwebp:webp litmus:litmus rclone:rclone cadaver:cadaver mount.davfs:davfs2
           script:bsdutils umount:mount)
# Cluster mode (issue 24): librados for the build; Ceph daemons and tools for scripts/cluster.sh and
# the RADOS blob test (tests/unit/blob_rados.sh).
cluster_pkgs=(librados-dev libpq-dev postgresql)
cluster_cmds=(ceph-mon:ceph-mon ceph-osd:ceph-osd monmaptool:ceph-base ceph:ceph-common rados:ceph-common
              ceph-authtool:ceph-common curl:curl openssl:openssl setsid:util-linux psql:postgresql-client
              pg_dump:postgresql-client)
bench_cmds=(h2load:nghttp2-client h2o:h2o nginx:nginx-light hyperfine:hyperfine clamscan:clamav ps:procps
            getconf:libc-bin awk:mawk perf:linux-perf)

pkgs=("${build_pkgs[@]}")
cmds=("${build_cmds[@]}")
case "$purpose" in
  run) pkgs+=("${render_pkgs[@]}"); cmds+=("${run_cmds[@]}") ;;
  test) pkgs+=("${render_pkgs[@]}" "${test_pkgs[@]}" "${cluster_pkgs[@]}"); cmds+=("${test_cmds[@]}" "${cluster_cmds[@]}") ;;
  bench) pkgs+=("${render_pkgs[@]}" "${test_pkgs[@]}" "${cluster_pkgs[@]}" libnghttp2-dev)
         cmds+=("${test_cmds[@]}" "${cluster_cmds[@]}" "${bench_cmds[@]}") ;;
  cluster) pkgs+=("${cluster_pkgs[@]}"); cmds+=("${run_cmds[@]}" "${cluster_cmds[@]}") ;;
  *) echo "usage: scripts/deps.sh [run|test|bench|cluster]" >&2; exit 2 ;;
esac

installed() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q "install ok installed"; }
# missing_now: the packages whose library is not installed or whose command is not on PATH.
missing_now() {
  local p e
  for p in "${pkgs[@]}"; do installed "$p" || echo "$p"; done
  for e in "${cmds[@]}"; do command -v "${e%%:*}" >/dev/null 2>&1 || echo "${e#*:}"; done
}

missing=($(missing_now | sort -u))
if [ "${#missing[@]}" -gt 0 ]; then
  echo "deps: installing ${missing[*]}" >&2
  if [ "$(id -u)" -ne 0 ]; then SUDO=sudo; else SUDO=; fi
  export DEBIAN_FRONTEND=noninteractive
  # Another apt (a second checkout's deps.sh, unattended upgrades) may hold the lock: wait for it.
  apt=($SUDO apt-get -q -o DPkg::Lock::Timeout=600)
  "${apt[@]}" update >/dev/null
  "${apt[@]}" install -y --no-install-recommends "${missing[@]}" >/dev/null
fi

# Whatever happened above: every command and library is there now, or this says which is not.
still=()
for p in "${pkgs[@]}"; do installed "$p" || still+=("package $p"); done
for e in "${cmds[@]}"; do command -v "${e%%:*}" >/dev/null 2>&1 || still+=("${e%%:*} (package ${e#*:})"); done
if [ "${#still[@]}" -gt 0 ]; then
  echo "deps: still missing after the install: ${still[*]}" >&2
  exit 1
fi
