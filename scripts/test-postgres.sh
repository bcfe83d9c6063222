#!/usr/bin/env bash
# Start a throwaway PostgreSQL cluster for the record tests and print its SQLAlchemy URL on stdout.
#
#   scripts/test-postgres.sh [start] [DIR]   initdb into DIR (default: a new temp dir), listen on 127.0.0.1 on a free
#                                             port with trust auth, print postgresql+psycopg://postgres@127.0.0.1:PORT/postgres
#   scripts/test-postgres.sh stop DIR        stop that cluster and delete DIR
#
# Binaries come from /usr/lib/postgresql/*/bin (newest version) or PG_BIN. As root, the server runs as user postgres.
# The cluster is for tests only: fsync is off, auth is trust, it listens on loopback only. With
# FILLFINISH_PG_DURABLE=1 fsync and full page writes stay on (PostgreSQL's defaults, a site server's durability): the
# benchmarks measure the record's append against a raw commit with the same durability on such a cluster.
# Typical use:  url=$(scripts/test-postgres.sh /tmp/ff-pg) && FILLFINISH_TEST_PG_URL=$url pytest tests/record
#               scripts/test-postgres.sh stop /tmp/ff-pg
set -euo pipefail

die() { echo "test-postgres: $*" >&2; exit 1; }

find_bin() {
    if [[ -n "${PG_BIN:-}" ]]; then
        [[ -x "$PG_BIN/pg_ctl" ]] || die "PG_BIN=$PG_BIN has no pg_ctl"
        echo "$PG_BIN"; return
    fi
    local dir
    dir=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1 || true)
    [[ -n "$dir" && -x "$dir/initdb" && -x "$dir/pg_ctl" ]] \
        || die "no PostgreSQL server binaries in /usr/lib/postgresql/*/bin (apt-get install postgresql)"
    echo "$dir"
}

# Run a command as the cluster owner: postgres when we are root (initdb refuses root), else ourselves.
as_owner() {
    if [[ $(id -u) -eq 0 ]]; then
        id postgres >/dev/null 2>&1 || die "running as root but there is no 'postgres' user to own the cluster"
        runuser -u postgres -- "$@"
    else
        "$@"
    fi
}

free_port() {
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()'
}

start() {
    local dir="${1:-}" bin port
    bin=$(find_bin)
    if [[ -z "$dir" ]]; then
        dir=$(mktemp -d /tmp/fillfinish-pg.XXXXXX)
    else
        [[ ! -e "$dir/data" ]] || die "$dir/data already exists (stop it first: $0 stop $dir)"
        mkdir -p "$dir"
    fi
    dir=$(cd "$dir" && pwd)
    [[ $(id -u) -eq 0 ]] && chown postgres "$dir"
    as_owner "$bin/initdb" -D "$dir/data" -U postgres --auth=trust --encoding=UTF8 --no-locale --no-sync \
        >"$dir/initdb.log" 2>&1 || { cat "$dir/initdb.log" >&2; die "initdb failed"; }
    local tries=0 options="-c listen_addresses=127.0.0.1 -c fsync=off -c full_page_writes=off"
    [[ "${FILLFINISH_PG_DURABLE:-0}" != 1 ]] || options="-c listen_addresses=127.0.0.1"
    while :; do
        port=$(free_port)
        if as_owner "$bin/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 60 \
            -o "$options -p $port -k $dir" \
            start >"$dir/pg_ctl.log" 2>&1; then
            break
        fi
        tries=$((tries + 1))
        [[ $tries -lt 3 ]] || { cat "$dir/pg_ctl.log" "$dir/server.log" >&2 2>/dev/null; die "server did not start"; }
    done
    echo "$port" >"$dir/port"
    echo "postgresql+psycopg://postgres@127.0.0.1:$port/postgres" | tee "$dir/url"
    echo "test-postgres: cluster in $dir on 127.0.0.1:$port (stop: $0 stop $dir)" >&2
}

stop() {
    local dir="${1:-}" bin
    [[ -n "$dir" ]] || die "usage: $0 stop DIR"
    [[ -d "$dir/data" ]] || die "$dir holds no cluster (no $dir/data)"
    bin=$(find_bin)
    as_owner "$bin/pg_ctl" -D "$dir/data" -m fast -w -t 60 stop >/dev/null 2>&1 || true
    rm -rf "$dir"
    echo "test-postgres: stopped and removed $dir" >&2
}

case "${1:-}" in
    stop) shift; stop "$@" ;;
    start) shift; start "$@" ;;
    -h|--help) sed -n '2,14p' "$0" ;;
    *) start "$@" ;;
esac
