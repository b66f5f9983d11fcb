#!/bin/bash
# tests/unit/blob_rados.sh TEST_EXE: runs test_blob_rados (TAP) against a throw-away Ceph cluster that
# scripts/ceph-local.sh starts in a temporary directory (1 mon + 3 memstore OSDs, cephx, pool "coffer"
# of size 3 with a client.coffer user) and stops after, whatever the test's outcome.
set -uo pipefail
exe=$1
here=$(cd "$(dirname "$0")/../.." && pwd)
script=$here/scripts/ceph-local.sh
export PATH="$PATH:/usr/sbin:/sbin"
if ! command -v ceph-mon >/dev/null || ! command -v ceph-osd >/dev/null; then
  # CI installs scripts/deps.sh cluster; only a machine without Ceph skips, and says why.
  echo "1..0 # SKIP ceph-mon/ceph-osd not installed (scripts/deps.sh cluster)"
  exit 0
fi
dir=$(mktemp -d /tmp/coffer-rados.XXXXXX)
trap '"$script" down "$dir" >&2' EXIT
if ! "$script" up "$dir" 3 >&2 || ! "$script" pool "$dir" coffer 3 coffer >&2; then
  echo "Bail out! the Ceph cluster did not come up (logs in $dir/log)"
  cat "$dir"/log/*.out >&2 2>/dev/null
  exit 1
fi
COFFER_CEPH_DIR=$dir COFFER_CEPH_LOCAL=$script "$exe"
