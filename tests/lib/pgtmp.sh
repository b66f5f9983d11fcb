#!/bin/sh
# tests/lib/pgtmp.sh: a throw-away PostgreSQL for tests (the PostgreSQL engine, docs/CLUSTER.md).
#
#   pgtmp.sh start DIR      initdb into DIR/data (first time), start it on 127.0.0.1 on a free port (kept
#                           in DIR/port across restarts), unix socket in DIR; create role and database
#                           "coffer" with a random password (DIR/password, 0600). Writes DIR/env (shell
#                           syntax: PGHOST PGPORT PGUSER PGDATABASE COFFER_PG_CONNINFO COFFER_PG_TCP
#                           COFFER_PG_PASSWORD_FILE COFFER_PG_PID) and prints it.
#   pgtmp.sh stop DIR       fast shutdown of exactly that server, by the PID in its postmaster.pid;
#                           waits until it has exited.
#   pgtmp.sh run CMD ARG…   start in a new temporary directory, run CMD with DIR/env exported, stop,
#                           remove the directory; exits with CMD's status.
#
# Authentication: the unix socket trusts local users; TCP on 127.0.0.1 wants the password
# (scram-sha-256). initdb refuses to run as root: as root, the server runs as the "postgres" account
# the Debian package creates (setpriv), and DIR is handed to it.
set -eu
self=$(cd "$(dirname "$0")" && pwd)/$(basename "$0")

pgbin() {
    for d in $(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V -r); do
        [ -x "$d/initdb" ] && { echo "$d"; return; }
    done
    command -v initdb >/dev/null 2>&1 && { dirname "$(command -v initdb)"; return; }
    echo "pgtmp: PostgreSQL is not installed (scripts/deps.sh cluster)" >&2
    exit 2
}

# as_pg CMD…: CMD as the server's account (ourselves unless root).
as_pg() {
    if [ "$(id -u)" = 0 ]; then
        setpriv --reuid=postgres --regid=postgres --init-groups -- "$@"
    else
        "$@"
    fi
}

free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

start() {
    dir=$1
    bin=$(pgbin)
    mkdir -p "$dir"
    dir=$(cd "$dir" && pwd)
    if [ ! -d "$dir/data" ]; then
        [ "$(id -u)" = 0 ] && chown postgres:postgres "$dir"
        as_pg "$bin/initdb" -D "$dir/data" -U postgres --auth-local=trust --auth-host=scram-sha-256 \
            --no-sync -E UTF8 --locale=C >"$dir/initdb.log" 2>&1 || { cat "$dir/initdb.log" >&2; exit 1; }
        free_port >"$dir/port"
        fresh=1
    else
        fresh=0
    fi
    # A fresh server takes a free port; another test may take the same one first: then another try.
    for attempt in 1 2 3; do
        port=$(cat "$dir/port")
        if as_pg "$bin/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 120 \
            -o "-k $dir -p $port -c listen_addresses=127.0.0.1 -c max_connections=200" start >/dev/null; then
            break
        fi
        if [ "$fresh" = 0 ] || [ "$attempt" = 3 ]; then
            tail -20 "$dir/server.log" >&2
            exit 1
        fi
        free_port >"$dir/port"
    done
    if [ "$fresh" = 1 ]; then
        pw=$(openssl rand -hex 16)
        "$bin/psql" -h "$dir" -p "$port" -U postgres -d postgres -v ON_ERROR_STOP=1 -q \
            -c "CREATE ROLE coffer LOGIN PASSWORD '$pw'" -c "CREATE DATABASE coffer OWNER coffer" >/dev/null
        (umask 077 && printf '%s' "$pw" >"$dir/password")
    fi
    pid=$(head -1 "$dir/data/postmaster.pid")
    cat >"$dir/env" <<EOF
PGHOST=$dir
PGPORT=$port
PGUSER=coffer
PGDATABASE=coffer
COFFER_PG_CONNINFO='host=$dir port=$port dbname=coffer user=coffer'
COFFER_PG_TCP='host=127.0.0.1 port=$port dbname=coffer user=coffer'
COFFER_PG_PASSWORD_FILE=$dir/password
COFFER_PG_PID=$pid
COFFER_PG_DIR=$dir
COFFER_PGTMP=$self
EOF
    cat "$dir/env"
}

stop() {
    dir=$1
    [ -f "$dir/data/postmaster.pid" ] || return 0
    pid=$(head -1 "$dir/data/postmaster.pid")
    kill -INT "$pid" 2>/dev/null || return 0
    i=0
    while kill -0 "$pid" 2>/dev/null; do
        i=$((i + 1))
        if [ "$i" -gt 1200 ]; then # 120 s: then no more manners
            kill -QUIT "$pid" 2>/dev/null || true
        fi
        sleep 0.1
    done
}

case "${1:-}" in
start) start "$2" ;;
stop) stop "$2" ;;
run)
    shift
    dir=$(mktemp -d /tmp/cf-pg.XXXXXX)
    trap 'stop "$dir"; rm -rf "$dir"' EXIT INT TERM
    start "$dir" >/dev/null
    set -a
    . "$dir/env"
    set +a
    rc=0
    "$@" || rc=$?
    exit $rc
    ;;
*)
    echo "usage: pgtmp.sh start DIR | stop DIR | run CMD [ARG…]" >&2
    exit 2
    ;;
esac
