# Sourced by scripts/test, scripts/faults and scripts/bench: a throwaway PostgreSQL cluster of
# our own, on 127.0.0.1 and a free port, run as an unprivileged user (PostgreSQL refuses to
# run as root). Nothing here touches a cluster the machine may already have.
#
#   valise_postgres_install                 Debian's postgresql package, when missing
#   valise_postgres_start DIR [CONF...]     initdb in DIR/data, start; sets VALISE_PG_PORT
#                                           (extra CONF lines go to postgresql.conf)
#   valise_postgres_stop DIR [MODE]         pg_ctl stop (fast by default; immediate to crash)
#   valise_postgres_psql DIR SQL            runs SQL as the cluster's superuser
#   valise_postgres_as CMD...               runs a command as the cluster's owner
#
# The cluster's superuser is `valise`, with trust authentication on loopback only: these are
# test clusters, never a deployment (docs/OPERATIONS.md shows one).

VALISE_PG_OWNER=${VALISE_PG_OWNER:-valise-pg}

valise_postgres_bin() {
    local bin
    bin=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)
    [ -n "$bin" ] && [ -x "$bin/initdb" ] || return 1
    echo "$bin"
}

valise_postgres_install() {
    if ! valise_postgres_bin >/dev/null; then
        valise_ensure_packages postgresql
    fi
    valise_postgres_bin >/dev/null || { echo "error: PostgreSQL's initdb was not found after installing postgresql" >&2; exit 1; }
    if [ "$(id -u)" -eq 0 ] && ! id "$VALISE_PG_OWNER" >/dev/null 2>&1; then
        useradd --system --no-create-home --shell /usr/sbin/nologin "$VALISE_PG_OWNER"
    fi
}

valise_postgres_as() {
    if [ "$(id -u)" -eq 0 ]; then
        runuser -u "$VALISE_PG_OWNER" -- "$@"
    else
        "$@"
    fi
}

valise_postgres_free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'
}

valise_postgres_start() {
    local dir=$1
    shift
    local bin
    bin=$(valise_postgres_bin)
    mkdir -p "$dir"
    chmod 0755 "$dir"
    [ "$(id -u)" -eq 0 ] && chown "$VALISE_PG_OWNER" "$dir"
    if [ ! -f "$dir/data/PG_VERSION" ]; then
        valise_postgres_as "$bin/initdb" -D "$dir/data" -U valise --auth=trust --no-sync -E UTF8 >"$dir/initdb.log" 2>&1 \
            || { cat "$dir/initdb.log" >&2; return 1; }
    fi
    VALISE_PG_PORT=${VALISE_PG_PORT_WANTED:-$(valise_postgres_free_port)}
    {
        echo "listen_addresses = '127.0.0.1'"
        echo "port = $VALISE_PG_PORT"
        echo "unix_socket_directories = '$dir'"
        echo "max_connections = 300"
        echo "synchronous_commit = on"
        for line in "$@"; do echo "$line"; done
    } | valise_postgres_as tee "$dir/data/postgresql.auto.conf" >/dev/null
    valise_postgres_as "$bin/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 60 start >/dev/null \
        || { tail -20 "$dir/server.log" >&2; return 1; }
    export VALISE_PG_PORT
}

valise_postgres_stop() {
    local dir=$1 mode=${2:-fast}
    local bin
    bin=$(valise_postgres_bin) || return 0
    [ -f "$dir/data/postmaster.pid" ] || return 0
    valise_postgres_as "$bin/pg_ctl" -D "$dir/data" -m "$mode" -w -t 60 stop >/dev/null 2>&1 || true
}

valise_postgres_psql() {
    local dir=$1 sql=$2
    valise_postgres_as psql -X -q -v ON_ERROR_STOP=1 -h 127.0.0.1 -p "$VALISE_PG_PORT" -U valise -d postgres -c "$sql"
}
