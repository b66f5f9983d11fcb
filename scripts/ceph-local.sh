#!/bin/bash
# scripts/ceph-local.sh: a throw-away Ceph cluster on 127.0.0.1 (1 monitor + N memstore OSDs, cephx
# on, no manager, no systemd), everything under one directory. Shared by scripts/cluster.sh (which
# sources it) and the RADOS blob tests (tests/unit/test_blob_rados.c runs it as a command), so that
# there is one start-up recipe (after ../shared/notes/ceph-mini.sh, measured on Debian 12 / Ceph 16).
#
#   ceph-local.sh up DIR [NOSD]            mon + NOSD (3) OSDs; writes DIR/env (shell syntax)
#   ceph-local.sh pool DIR POOL SIZE USER  a replicated pool (size SIZE, min_size SIZE-1) and a cephx
#                                          user with caps on that pool only: DIR/client.USER.keyring;
#                                          returns once a write to the pool succeeds
#   ceph-local.sh osd-start DIR ID         (re)starts osd.ID (after a test killed it); waits until up
#   ceph-local.sh down DIR                 stops exactly the daemons it started (DIR/pids), waits for
#                                          them to exit, removes DIR
#   ceph-local.sh status DIR               which of them run, and the cluster's health
#   ceph-local.sh dump DIR POOL OUT        every object of POOL as the admin sees it: OUT/list
#                                          ("namespace<TAB>name" lines), OUT/NAMESPACE/NAME the bytes
#                                          (the default namespace: OUT/-/NAME)
#
# DIR/env: CEPH_CONF, CEPH_KEYRING (client.admin), CEPH_MON_PID, CEPH_OSD_IDS, CEPH_OSD_PIDS (same
# order). DIR/pids: "name pid" per daemon started. Daemons run in the foreground of their own session
# (setsid … -f &), so the PID recorded is the daemon's. No fixed sleeps: every wait polls a condition
# (at most once a second: each ceph CLI call costs ~0.5 s of CPU) until a deadline.
# Needs ceph-mon, ceph-osd, ceph-common (scripts/deps.sh cluster).

export PATH="$PATH:/usr/sbin:/sbin"
CEPH_LOCAL_DEADLINE=${CEPH_LOCAL_DEADLINE:-180} # seconds any one wait may take

cl_log() { echo "[ceph-local] $*" >&2; }
cl_die() { cl_log "error: $*"; return 1; }

# A free TCP port on 127.0.0.1 (the kernel's choice; the daemon binds it a moment later).
cl_free_port() {
  /usr/bin/python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# cl_wait DESC CMD...: runs CMD once a second until it succeeds or the deadline passes.
cl_wait() {
  local desc=$1; shift
  local end=$(( $(date +%s) + CEPH_LOCAL_DEADLINE ))
  while ! "$@" >/dev/null 2>&1; do
    [ "$(date +%s)" -lt "$end" ] || { cl_die "$desc: not after ${CEPH_LOCAL_DEADLINE}s"; return 1; }
    sleep 1
  done
}

# cl_ceph DIR ARGS...: the ceph CLI as client.admin of the cluster in DIR, never waiting long.
cl_ceph() {
  local dir=$1; shift
  timeout 60 ceph --conf "$dir/ceph.conf" --connect-timeout 30 "$@"
}

cl_num_up() { cl_ceph "$1" osd stat -f json | grep -o '"num_up_osds":[0-9]*' | cut -d: -f2; }
cl_all_up() { [ "$(cl_num_up "$1")" = "$2" ]; }
cl_osd_up() { cl_ceph "$1" osd dump -f json | /usr/bin/python3 -c '
import json, sys
d = json.load(sys.stdin)
sys.exit(0 if any(o["osd"] == int(sys.argv[1]) and o["up"] == 1 for o in d["osds"]) else 1)' "$2"; }

# cl_spawn DIR NAME CMD...: starts CMD in its own session, logs in DIR/log, records "NAME PID".
cl_spawn() {
  local dir=$1 name=$2; shift 2
  setsid "$@" </dev/null >>"$dir/log/$name.out" 2>&1 &
  local pid=$!
  echo "$name $pid" >>"$dir/pids"
  CL_PID=$pid
}

cl_pid_of() { awk -v n="$2" '$1 == n { p = $2 } END { print p }' "$1/pids"; }

cl_write_env() {
  local dir=$1 ids=() pids=() id
  read -r -a ids <<<"$(cat "$dir/osd_ids")"
  for id in "${ids[@]}"; do pids+=("$(cl_pid_of "$dir" "osd.$id")"); done
  {
    echo "CEPH_CONF='$dir/ceph.conf'"
    echo "CEPH_KEYRING='$dir/keyring'"
    echo "CEPH_MON_PID='$(cl_pid_of "$dir" mon.a)'"
    echo "CEPH_OSD_IDS='${ids[*]}'"
    echo "CEPH_OSD_PIDS='${pids[*]}'"
  } >"$dir/env.tmp"
  mv "$dir/env.tmp" "$dir/env"
}

ceph_local_up() {
  local dir=$1 nosd=${2:-3}
  [ -n "$dir" ] || { cl_die "usage: up DIR [NOSD]"; return 1; }
  [ ! -e "$dir/ceph.conf" ] || { cl_die "$dir holds a cluster: 'down' it first"; return 1; }
  command -v ceph-mon >/dev/null && command -v ceph-osd >/dev/null && command -v ceph >/dev/null ||
    { cl_die "ceph-mon, ceph-osd and ceph are needed: scripts/deps.sh cluster"; return 1; }
  mkdir -p "$dir"/{mon.a,run,log} || return 1
  dir=$(cd "$dir" && pwd)
  : >"$dir/pids"
  local fsid port1 port2 t0
  t0=$(date +%s%N)
  fsid=$(cat /proc/sys/kernel/random/uuid)
  port1=$(cl_free_port); port2=$(cl_free_port)
  cat >"$dir/ceph.conf" <<EOF
[global]
fsid = $fsid
mon_host = [v2:127.0.0.1:$port2,v1:127.0.0.1:$port1]
public_addr = 127.0.0.1
ms_bind_ipv6 = false
auth_cluster_required = cephx
auth_service_required = cephx
auth_client_required = cephx
keyring = $dir/keyring
run_dir = $dir/run
admin_socket = $dir/run/\$name.\$pid.asok
log_file = $dir/log/\$name.log
osd_pool_default_size = 3
osd_pool_default_min_size = 2
osd_pool_default_pg_autoscale_mode = off
osd_pool_default_pg_num = 8
osd_pool_default_pgp_num = 8
osd_crush_chooseleaf_type = 0
mon_allow_pool_delete = true
mon_warn_on_pool_no_redundancy = false
mon_data_avail_warn = 1
mon_data_avail_crit = 0
mon_osd_reporter_subtree_level = osd
auth_allow_insecure_global_id_reclaim = false
mgr_initial_modules =
[mon]
mon_data = $dir/mon.\$id
mon_cluster_log_file = $dir/log/cluster.log
[osd]
osd_data = $dir/osd.\$id
osd_objectstore = memstore
memstore_device_bytes = 536870912
osd_memory_target = 939524096
osd_op_num_shards = 1
osd_op_num_threads_per_shard = 2
ms_async_op_threads = 1
EOF
  ceph-authtool --create-keyring "$dir/keyring" --gen-key -n mon. --cap mon 'allow *' >/dev/null &&
  ceph-authtool "$dir/keyring" --gen-key -n client.admin \
      --cap mon 'allow *' --cap osd 'allow *' --cap mgr 'allow *' --cap mds 'allow *' >/dev/null &&
  chmod 600 "$dir/keyring" &&
  monmaptool --create --fsid "$fsid" --addv a "[v2:127.0.0.1:$port2,v1:127.0.0.1:$port1]" "$dir/monmap" >/dev/null &&
  ceph-mon --conf "$dir/ceph.conf" --mkfs -i a --monmap "$dir/monmap" --keyring "$dir/keyring" \
      >>"$dir/log/mkfs.log" 2>&1 || { cl_die "mon mkfs failed: see $dir/log"; return 1; }
  cl_spawn "$dir" mon.a ceph-mon --conf "$dir/ceph.conf" -f -i a
  cl_wait "monitor quorum" cl_ceph "$dir" mon stat || return 1
  local ids=() uuids=() i
  for ((i = 0; i < nosd; i++)); do
    uuids[i]=$(cat /proc/sys/kernel/random/uuid)
    ids[i]=$(cl_ceph "$dir" osd new "${uuids[i]}") || { cl_die "osd new failed"; return 1; }
    mkdir -p "$dir/osd.${ids[i]}"
    cl_ceph "$dir" auth get-or-create "osd.${ids[i]}" mon 'allow profile osd' mgr 'allow profile osd' \
        osd 'allow *' -o "$dir/osd.${ids[i]}/keyring" >/dev/null || { cl_die "osd key failed"; return 1; }
  done
  echo "${ids[*]}" >"$dir/osd_ids"
  local mk=()
  for ((i = 0; i < nosd; i++)); do # format in parallel (each waits for nothing but its own disk)
    ceph-osd --conf "$dir/ceph.conf" -i "${ids[i]}" --mkfs --osd-uuid "${uuids[i]}" \
        --keyring "$dir/osd.${ids[i]}/keyring" >>"$dir/log/mkfs.log" 2>&1 &
    mk[i]=$!
  done
  for ((i = 0; i < nosd; i++)); do
    wait "${mk[i]}" || { cl_die "osd.${ids[i]} mkfs failed: see $dir/log/mkfs.log"; return 1; }
  done
  for ((i = 0; i < nosd; i++)); do
    cl_spawn "$dir" "osd.${ids[i]}" ceph-osd --conf "$dir/ceph.conf" -f -i "${ids[i]}" \
        --keyring "$dir/osd.${ids[i]}/keyring"
  done
  cl_wait "$nosd OSDs up" cl_all_up "$dir" "$nosd" || return 1
  cl_write_env "$dir"
  cl_log "mon + $nosd OSDs up in $(( ($(date +%s%N) - t0) / 1000000 )) ms ($dir)"
}

# A write to the pool as the new user (the caps work and the placement groups are active).
cl_probe_write() {
  local dir=$1 pool=$2 user=$3
  timeout 30 rados --conf "$dir/ceph.conf" --id "$user" --keyring "$dir/client.$user.keyring" \
      --rados-osd-op-timeout 10 -p "$pool" put ceph-local-probe "$dir/ceph.conf" &&
  timeout 30 rados --conf "$dir/ceph.conf" --id "$user" --keyring "$dir/client.$user.keyring" \
      --rados-osd-op-timeout 10 -p "$pool" rm ceph-local-probe
}

ceph_local_pool() {
  local dir=$1 pool=$2 size=$3 user=$4
  [ -n "$user" ] || { cl_die "usage: pool DIR POOL SIZE USER"; return 1; }
  dir=$(cd "$dir" && pwd)
  local min=$(( size > 1 ? size - 1 : 1 ))
  cl_ceph "$dir" osd pool create "$pool" 8 8 replicated >/dev/null 2>&1 &&
  cl_ceph "$dir" osd pool set "$pool" size "$size" --yes-i-really-mean-it >/dev/null 2>&1 &&
  cl_ceph "$dir" osd pool set "$pool" min_size "$min" >/dev/null 2>&1 &&
  cl_ceph "$dir" osd pool application enable "$pool" coffer >/dev/null 2>&1 ||
    { cl_die "creating pool $pool failed"; return 1; }
  # The client: read the maps, read and write objects of this pool only (every namespace).
  cl_ceph "$dir" auth get-or-create "client.$user" mon 'allow r' osd "allow rw pool=$pool" \
      -o "$dir/client.$user.keyring" >/dev/null || { cl_die "creating client.$user failed"; return 1; }
  chmod 600 "$dir/client.$user.keyring"
  cl_wait "a first write to pool $pool" cl_probe_write "$dir" "$pool" "$user" || return 1
  cl_log "pool $pool (size $size, min_size $min) writable by client.$user"
}

ceph_local_osd_start() {
  local dir=$1 id=$2
  dir=$(cd "$dir" && pwd)
  local old; old=$(cl_pid_of "$dir" "osd.$id")
  if [ -n "$old" ] && kill -0 "$old" 2>/dev/null; then cl_die "osd.$id still runs ($old)"; return 1; fi
  cl_spawn "$dir" "osd.$id" ceph-osd --conf "$dir/ceph.conf" -f -i "$id" --keyring "$dir/osd.$id/keyring"
  cl_write_env "$dir"
  cl_wait "osd.$id up" cl_osd_up "$dir" "$id"
}

# Stops the daemons of DIR/pids (the last PID recorded for each name), newest first, then removes DIR.
ceph_local_down() {
  local dir=$1
  [ -f "$dir/pids" ] || { rm -rf "$dir"; return 0; }
  local pids=() name pid
  while read -r name pid; do pids+=("$pid"); done < <(awk '{ last[$1] = $2 } END { for (n in last) print n, last[n] }' "$dir/pids")
  for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null; kill -CONT "$pid" 2>/dev/null; done
  local end=$(( $(date +%s) + 30 ))
  for pid in "${pids[@]}"; do
    while kill -0 "$pid" 2>/dev/null && [ "$(date +%s)" -lt "$end" ]; do sleep 0.2; done
    if kill -0 "$pid" 2>/dev/null; then kill -KILL "$pid" 2>/dev/null; fi
  done
  for pid in "${pids[@]}"; do
    while kill -0 "$pid" 2>/dev/null; do sleep 0.1; done
  done
  rm -rf "$dir"
}

ceph_local_status() {
  local dir=$1 name pid
  [ -f "$dir/pids" ] || { echo "ceph: not running ($dir)"; return 1; }
  while read -r name pid; do
    if kill -0 "$pid" 2>/dev/null; then echo "ceph $name: running (pid $pid)"; else echo "ceph $name: stopped"; fi
  done < <(awk '{ last[$1] = $2 } END { for (n in last) print n, last[n] }' "$dir/pids" | sort)
  cl_ceph "$dir" health 2>/dev/null || echo "ceph: no answer from the monitor"
}

ceph_local_dump() {
  local dir=$1 pool=$2 out=$3 ns name
  [ -n "$out" ] || { cl_die "usage: dump DIR POOL OUT"; return 1; }
  mkdir -p "$out" || return 1
  timeout 120 rados --conf "$dir/ceph.conf" --rados-osd-op-timeout 30 -p "$pool" ls --all >"$out/list" ||
    { cl_die "listing pool $pool failed"; return 1; }
  local line
  while IFS= read -r line; do # (not IFS=TAB: a tab is whitespace to read, and the default namespace is empty)
    ns=${line%%$'\t'*}
    name=${line#*$'\t'}
    mkdir -p "$out/${ns:--}"
    timeout 60 rados --conf "$dir/ceph.conf" --rados-osd-op-timeout 30 -p "$pool" -N "$ns" get "$name" \
        "$out/${ns:--}/$name" || { cl_die "reading $ns/$name failed"; return 1; }
  done <"$out/list"
}

if [ "${BASH_SOURCE[0]}" = "$0" ]; then
  set -uo pipefail
  cmd=${1:-}; shift || true
  case "$cmd" in
    up) ceph_local_up "$@" ;;
    pool) ceph_local_pool "$@" ;;
    osd-start) ceph_local_osd_start "$@" ;;
    down) ceph_local_down "$@" ;;
    status) ceph_local_status "$@" ;;
    dump) ceph_local_dump "$@" ;;
    *) echo "usage: $0 up DIR [NOSD] | pool DIR POOL SIZE USER | osd-start DIR ID | down DIR | status DIR | dump DIR POOL OUT" >&2
       exit 2 ;;
  esac
fi
