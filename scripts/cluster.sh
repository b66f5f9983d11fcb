#!/bin/bash
# scripts/cluster.sh up [BUILD_DIR] | down | status: a local Coffer test cluster, entirely on 127.0.0.1,
# under var/cluster/ (gitignored; CLUSTER_DIR overrides): a Ceph monitor and 3 memstore OSDs
# (scripts/ceph-local.sh, cephx on; pool "coffer", size 3 / min_size 2; user client.coffer with caps
# on that pool only), a PostgreSQL instance (tests/lib/pgtmp.sh: initdb in var/cluster/pg, its own
# port, role and database "coffer"), and two Coffer nodes on their own ports whose configurations say
# `store: {engine: cluster, postgres: {...}, rados: {...}}` (docs/CLUSTER.md "Local test cluster").
#
# up writes var/cluster/env (shell syntax, 0600): COFFER_NODES (the two base URLs), COFFER_CONFIGS
# (their configuration files, same order), COFFER_ADMIN_PASSWORD, COFFER_NODE_PIDS, CEPH_OSD_PIDS,
# CEPH_CONF, CEPH_KEYRING (client.admin), COFFER_RADOS_POOL, COFFER_RADOS_USER, COFFER_RADOS_KEYRING,
# PGHOST, PGPORT, PGUSER, PGDATABASE, COFFER_PG_PASSWORD_FILE, COFFER_PG_PID. Every process it starts
# is recorded in var/cluster/pids ("name pid command start-time"); down stops exactly those (a PID
# that no longer runs the recorded command with the recorded start time is left alone), waits for
# each to exit, then removes var/cluster. status says which of them run.
# For tests that break the cluster on purpose (each updates var/cluster/pids and env):
#   node-start N   start node N again after it was killed (same port, configuration and log)
#   pg-stop        fast shutdown of the PostgreSQL instance; pg-start starts it again (same port)
#   osd-start ID   start osd.ID again after it was killed
# No fixed sleeps: every wait polls a condition (ceph health, pg_isready, a node's /healthz) until a
# deadline. The Coffer binary: $COFFER_BIN, else BUILD_DIR/src/coffer (BUILD_DIR defaults to build).
# CLUSTER_NODES=1 starts one node instead of two; 0 none (Ceph and PostgreSQL only, for scripts/test.sh).
# Needs scripts/deps.sh cluster (ceph-mon, ceph-osd, ceph-common, postgresql) and openssl, curl.
set -uo pipefail

here=$(cd "$(dirname "$0")/.." && pwd)
DIR=${CLUSTER_DIR:-$here/var/cluster}
NODES=${CLUSTER_NODES:-2} # nodes to start (2; 1 for a single node; 0 for the infrastructure only)
POOL=coffer
DEADLINE=${CLUSTER_DEADLINE:-180} # seconds any one wait may take
# shellcheck source=scripts/ceph-local.sh
. "$here/scripts/ceph-local.sh"

log() { echo "[cluster] $*" >&2; }
die() { log "error: $*"; [ ! -f "$DIR/pids" ] || log "what did start is still running: $0 down stops it"; exit 1; }

# A process's identity: its command name and its start time (clock ticks after boot, field 22 of
# /proc/PID/stat, after the command name's closing parenthesis). A PID reused by another process,
# even one running the same command, has another start time.
proc_comm() { cat "/proc/$1/comm" 2>/dev/null || echo '?'; }
proc_start() {
  local s f
  s=$(cat "/proc/$1/stat" 2>/dev/null) || { echo '?'; return; }
  read -r -a f <<<"${s##*) }"
  echo "${f[19]}"
}
# record NAME PID [COMM]: appends "NAME PID COMM START" to var/cluster/pids: the process as it runs
# now, or COMM when it is about to exec it (setsid execs in place: same PID, same start time).
record() { echo "$1 $2 ${3:-$(proc_comm "$2")} $(proc_start "$2")" >>"$DIR/pids"; }
# ours PID COMM START: whether PID is still the process recorded (same command, same start time) and
# has not exited (a zombie waiting for its parent to reap it has exited).
ours() {
  local s f
  [ "$2" != '?' ] && [ "$(proc_comm "$1")" = "$2" ] || return 1
  s=$(cat "/proc/$1/stat" 2>/dev/null) || return 1
  read -r -a f <<<"${s##*) }"
  [ "${f[19]}" = "$3" ] && [ "${f[0]}" != Z ] && [ "${f[0]}" != X ]
}
# set_env VAR VALUE: replaces VAR's line in var/cluster/env (atomically: a reader sees old or new).
set_env() {
  [ -f "$DIR/env" ] || die "no $DIR/env: the cluster is not up"
  (umask 077 && sed "s|^$1=.*|$1='$2'|" "$DIR/env" >"$DIR/env.tmp") && mv "$DIR/env.tmp" "$DIR/env" || die "rewriting $DIR/env"
}

# wait_for DESC CMD...: CMD once a second until it succeeds, at most DEADLINE seconds.
wait_for() {
  local desc=$1; shift
  local end=$(( $(date +%s) + DEADLINE ))
  until "$@" >/dev/null 2>&1; do
    [ "$(date +%s)" -lt "$end" ] || die "$desc: not after ${DEADLINE}s (logs in $DIR)"
    sleep 1
  done
}

node_healthy() { curl -skf --max-time 5 -o /dev/null "$1/healthz"; }
# wait_node PID URL LOG: until the node answers /healthz; one that has exited ends the wait at once.
wait_node() {
  local end=$(( $(date +%s) + DEADLINE ))
  until node_healthy "$2"; do
    kill -0 "$1" 2>/dev/null || die "the node of $2 exited: $(tail -3 "$3")"
    [ "$(date +%s)" -lt "$end" ] || die "$2/healthz: no answer after ${DEADLINE}s (see $3)"
    sleep 1
  done
}

# The ClamAV signature database of the test cluster: EICAR by MD5 and by body (as the test harness).
write_sigs() {
  local d=$1 eicar
  eicar='X5O!P%@AP[4\PZX54(P^)7CC)7}$''EICAR-STANDARD-ANTIVIRUS-TEST-FILE!''$H+H*'
  mkdir -p "$d"
  printf '%s:%s:Test.EICAR.MD5\n' "$(printf '%s' "$eicar" | md5sum | cut -d' ' -f1)" "${#eicar}" >"$d/test.hdb"
  printf 'Test.EICAR.Body:0:*:%s\n' "$(printf '%s' "$eicar" | od -An -v -tx1 | tr -d ' \n')" >"$d/test.ndb"
}

# node_config N PORT: the configuration of node N (YAML).
node_config() {
  local n=$1 port=$2 user_line=""
  [ "$(id -u)" = 0 ] && user_line='user: "root"  # a test cluster run as root keeps root on purpose'
  cat <<EOF
# Coffer test-cluster node $n (scripts/cluster.sh): every node shares the store below.
listen: ["127.0.0.1:$port"]
public_url: "https://127.0.0.1:$port"
$user_line
tls:
  certificate: "$DIR/tls/cert.pem"
  key: "$DIR/tls/key.pem"
data_dir: "$DIR/node$n/data"
master_key_file: "$DIR/master.key"
journal_anchor_file: "$DIR/node$n/anchor"
threads: 2
scan:
  database_dir: "$DIR/sigs"
  processes: 1
render:
  enabled: false
auth:
  argon2_memory: "8MiB"
  argon2_iterations: 1
log:
  access: "$DIR/node$n/access.log"
  level: "info"
store:
  engine: cluster
  postgres:
    conninfo: "host=127.0.0.1 port=$PGPORT dbname=$PGDATABASE user=$PGUSER"
    password_file: "$COFFER_PG_PASSWORD_FILE"
  rados:
    conf: "$CEPH_CONF"
    pool: "$POOL"
    user: "$POOL"
    keyring: "$DIR/ceph/client.$POOL.keyring"
    op_timeout: 30s
EOF
}

# start_node N URL: starts node N (its configuration in var/cluster/nodeN), records it, waits until
# it answers /healthz; NODE_PID is its PID. Its log is appended to nodeN/serve.log.
start_node() {
  local n=$1 url=$2 bin
  bin=$(cat "$DIR/bin") || die "no $DIR/bin"
  setsid "$bin" serve -c "$DIR/node$n/coffer.yaml" </dev/null >>"$DIR/node$n/serve.log" 2>&1 &
  NODE_PID=$!
  local comm; comm=$(basename "$bin")
  record "coffer.node$n" "$NODE_PID" "${comm:0:15}"
  wait_node "$NODE_PID" "$url" "$DIR/node$n/serve.log"
}

up() {
  local build=${1:-$here/build}
  local bin=${COFFER_BIN:-$build/src/coffer}
  [ -x "$bin" ] || die "no Coffer binary at $bin (set COFFER_BIN or pass the build directory)"
  bin=$(cd "$(dirname "$bin")" && pwd)/$(basename "$bin")
  [ ! -e "$DIR/pids" ] || die "$DIR holds a cluster: '$0 down' first"
  command -v curl >/dev/null && command -v openssl >/dev/null || die "curl and openssl are needed"
  mkdir -p "$DIR" && chmod 755 "$DIR" && : >"$DIR/pids" || die "cannot create $DIR"
  local t0; t0=$(date +%s)

  # Ceph: mon + 3 OSDs, the pool and its user.
  CEPH_LOCAL_DEADLINE=$DEADLINE ceph_local_up "$DIR/ceph" 3 || die "Ceph did not come up (logs in $DIR/ceph/log)"
  local name pid
  while read -r name pid; do record "ceph.$name" "$pid"; done <"$DIR/ceph/pids"
  CEPH_LOCAL_DEADLINE=$DEADLINE ceph_local_pool "$DIR/ceph" "$POOL" 3 "$POOL" || die "pool $POOL"
  # shellcheck disable=SC1091
  . "$DIR/ceph/env"
  # (ceph_local_pool returned after a write to the pool succeeded: every OSD up, its PGs active. The
  # health stays HEALTH_WARN "no active mgr": no manager runs, and librados needs none.)
  log "ceph: mon + 3 OSDs, pool $POOL"

  # PostgreSQL (tests/lib/pgtmp.sh: initdb, own port, role and database coffer, a password file).
  "$here/tests/lib/pgtmp.sh" start "$DIR/pg" >/dev/null || die "PostgreSQL did not start (see $DIR/pg/server.log)"
  # shellcheck disable=SC1091
  . "$DIR/pg/env"
  record postgres "$COFFER_PG_PID"
  wait_for "pg_isready" pg_isready -q -h 127.0.0.1 -p "$PGPORT"
  log "postgresql: 127.0.0.1:$PGPORT"

  # Coffer: a certificate, the test signature database, two configurations, init once, two nodes.
  mkdir -p "$DIR/tls"
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 7 -subj /CN=localhost \
      -addext 'subjectAltName=DNS:localhost,IP:127.0.0.1' -keyout "$DIR/tls/key.pem" -out "$DIR/tls/cert.pem" \
      >/dev/null 2>&1 || die "openssl req"
  write_sigs "$DIR/sigs"
  local admin_pw; admin_pw=$(openssl rand -hex 12)
  local urls=() configs=() pids=() n port
  for ((n = 1; n <= NODES; n++)); do
    port=$(cl_free_port)
    mkdir -p "$DIR/node$n" && chmod 700 "$DIR/node$n"
    node_config "$n" "$port" >"$DIR/node$n/coffer.yaml"
    urls+=("https://127.0.0.1:$port")
    configs+=("$DIR/node$n/coffer.yaml")
  done
  # CLUSTER_NODES=0: the infrastructure only (Ceph, PostgreSQL) and its env, for the test harness's
  # cluster mode (tests/integration/lib/harness.mjs makes a database and two nodes per test server).
  [ "$NODES" = 0 ] || COFFER_ADMIN_PASSWORD=$admin_pw "$bin" init -c "${configs[0]}" >"$DIR/node1/init.log" 2>&1 ||
    die "coffer init failed: $(tail -5 "$DIR/node1/init.log")"
  echo "$bin" >"$DIR/bin"
  # One node after the other: each has created what it creates at its first start before the next
  # opens the store.
  for ((n = 1; n <= NODES; n++)); do
    start_node "$n" "${urls[n - 1]}"
    pids+=("$NODE_PID")
  done
  (
    umask 077
    cat >"$DIR/env" <<EOF
COFFER_NODES='${urls[*]}'
COFFER_CONFIGS='${configs[*]}'
COFFER_ADMIN_PASSWORD='$admin_pw'
COFFER_NODE_PIDS='${pids[*]}'
CEPH_OSD_PIDS='$CEPH_OSD_PIDS'
CEPH_CONF='$CEPH_CONF'
CEPH_KEYRING='$CEPH_KEYRING'
COFFER_RADOS_POOL='$POOL'
COFFER_RADOS_USER='$POOL'
COFFER_RADOS_KEYRING='$DIR/ceph/client.$POOL.keyring'
PGHOST='127.0.0.1'
PGPORT='$PGPORT'
PGUSER='$PGUSER'
PGDATABASE='$PGDATABASE'
COFFER_PG_PASSWORD_FILE='$COFFER_PG_PASSWORD_FILE'
COFFER_PG_PID='$COFFER_PG_PID'
EOF
  )
  log "up in $(( $(date +%s) - t0 )) s: ${urls[*]} (source $DIR/env)"
}

# Stops the processes of var/cluster/pids, newest first: PostgreSQL with a fast shutdown (SIGINT),
# the rest with SIGTERM; after 60 s, SIGKILL. A recorded PID that no longer runs the recorded process
# (other command or other start time: it exited and the PID was reused) is not ours and is left alone.
down() {
  [ -f "$DIR/pids" ] || { log "nothing recorded in $DIR"; rm -rf "$DIR"; return 0; }
  local lines=() name pid comm start i
  mapfile -t lines < <(tac "$DIR/pids")
  local stopping=()
  for i in "${lines[@]}"; do
    read -r name pid comm start <<<"$i"
    ours "$pid" "$comm" "$start" || continue
    kill -CONT "$pid" 2>/dev/null # a test may have stopped it
    if [ "$name" = postgres ]; then kill -INT "$pid" 2>/dev/null; else kill -TERM "$pid" 2>/dev/null; fi
    stopping+=("$pid $comm $start")
  done
  local end=$(( $(date +%s) + 60 ))
  for i in "${stopping[@]}"; do
    read -r pid comm start <<<"$i"
    while ours "$pid" "$comm" "$start"; do
      if [ "$(date +%s)" -ge "$end" ]; then kill -KILL "$pid" 2>/dev/null; fi
      sleep 0.2
    done
  done
  rm -rf "$DIR"
  log "down: ${#stopping[@]} processes stopped, $DIR removed"
}

# One line per process name, its latest record: running (the very process recorded) or not. A name
# recorded more than once (a node, OSD or PostgreSQL restarted by node-start, osd-start, pg-start)
# is judged by its latest record; the earlier ones are listed as replaced.
status() {
  [ -f "$DIR/pids" ] || { echo "cluster: not running ($DIR)"; return 1; }
  local name pid comm start ok=0 latest
  while read -r name pid comm start; do
    latest=$(awk -v n="$name" '$1 == n { p = $2 } END { print p }' "$DIR/pids")
    if [ "$pid" != "$latest" ]; then echo "$name: replaced (pid $pid)"
    elif ours "$pid" "$comm" "$start"; then echo "$name: running (pid $pid)"
    else echo "$name: not running (pid $pid)"; ok=1; fi
  done <"$DIR/pids"
  echo "ceph: $(timeout 20 ceph --conf "$DIR/ceph/ceph.conf" --connect-timeout 10 health 2>&1 || echo 'no answer')"
  if [ -f "$DIR/env" ]; then
    # shellcheck disable=SC1091
    . "$DIR/env"
    echo "postgresql: $(pg_isready -h 127.0.0.1 -p "$PGPORT" 2>&1)"
    local u
    for u in $COFFER_NODES; do
      if node_healthy "$u"; then echo "node $u: healthy"; else echo "node $u: not answering"; ok=1; fi
    done
  else
    echo "env: not written (up did not finish)"; ok=1
  fi
  return $ok
}

not_a_process() { ! kill -0 "$1" 2>/dev/null; }

# latest_running NAME: exit 0 if NAME's latest record is still the process recorded.
latest_running() {
  local rec
  rec=$(awk -v n="$1" '$1 == n { r = $2 " " $3 " " $4 } END { print r }' "$DIR/pids" 2>/dev/null)
  [ -n "$rec" ] && ours $rec
}

# node-start N: starts node N again (after a test killed it), waits for /healthz, updates the env.
node_start() {
  local n=${1:-}
  [ -f "$DIR/env" ] || die "no cluster in $DIR"
  [[ "$n" =~ ^[1-9][0-9]*$ ]] && [ -f "$DIR/node$n/coffer.yaml" ] || die "no node $n"
  latest_running "coffer.node$n" && die "node $n still runs"
  # shellcheck disable=SC1091
  . "$DIR/env"
  local urls pids
  read -r -a urls <<<"$COFFER_NODES"
  read -r -a pids <<<"$COFFER_NODE_PIDS"
  start_node "$n" "${urls[n - 1]}"
  pids[n - 1]=$NODE_PID
  set_env COFFER_NODE_PIDS "${pids[*]}"
  log "node $n: pid $NODE_PID, ${urls[n - 1]}"
}

# pg-stop / pg-start: a fast shutdown of the cluster's PostgreSQL (returns once it has exited) and a
# start on the same port and data (returns once it accepts connections); the env gets the new PID.
pg_stop() {
  [ -f "$DIR/env" ] || die "no cluster in $DIR"
  latest_running postgres || die "PostgreSQL is not running"
  "$here/tests/lib/pgtmp.sh" stop "$DIR/pg" || die "pg stop"
  log "postgresql stopped"
}
pg_start() {
  [ -f "$DIR/env" ] || die "no cluster in $DIR"
  latest_running postgres && die "PostgreSQL already runs"
  "$here/tests/lib/pgtmp.sh" start "$DIR/pg" >/dev/null || die "PostgreSQL did not start (see $DIR/pg/server.log)"
  # shellcheck disable=SC1091
  . "$DIR/pg/env"
  record postgres "$COFFER_PG_PID"
  wait_for "pg_isready" pg_isready -q -h 127.0.0.1 -p "$PGPORT"
  set_env COFFER_PG_PID "$COFFER_PG_PID"
  log "postgresql: pid $COFFER_PG_PID, 127.0.0.1:$PGPORT"
}

# osd-start ID: starts osd.ID again (after a test killed it), waits until the monitor has it up.
osd_start() {
  local id=${1:-}
  [ -f "$DIR/env" ] || die "no cluster in $DIR"
  [[ "$id" =~ ^[0-9]+$ ]] && [ -d "$DIR/ceph/osd.$id" ] || die "no osd.$id"
  latest_running "ceph.osd.$id" && die "osd.$id still runs"
  # (ceph-local.sh refuses while the old PID exists: a killed daemon stays a zombie until reaped.)
  local old; old=$(cl_pid_of "$DIR/ceph" "osd.$id")
  [ -z "$old" ] || wait_for "the old osd.$id ($old) reaped" not_a_process "$old"
  CEPH_LOCAL_DEADLINE=$DEADLINE ceph_local_osd_start "$DIR/ceph" "$id" || die "osd.$id did not come up"
  local pid; pid=$(cl_pid_of "$DIR/ceph" "osd.$id")
  record "ceph.osd.$id" "$pid"
  # shellcheck disable=SC1091
  . "$DIR/ceph/env"
  set_env CEPH_OSD_PIDS "$CEPH_OSD_PIDS"
  log "osd.$id: pid $pid"
}

case "${1:-}" in
  up) shift; up "$@" ;;
  down) down ;;
  status) status ;;
  node-start) node_start "${2:-}" ;;
  pg-stop) pg_stop ;;
  pg-start) pg_start ;;
  osd-start) osd_start "${2:-}" ;;
  *) echo "usage: $0 up [BUILD_DIR] | down | status | node-start N | pg-stop | pg-start | osd-start ID" >&2
     echo "       (env: COFFER_BIN, CLUSTER_DIR, CLUSTER_NODES, CLUSTER_DEADLINE)" >&2; exit 2 ;;
esac
