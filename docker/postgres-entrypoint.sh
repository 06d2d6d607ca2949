#!/bin/sh
# The part of the official postgres image's contract the chart uses: on an empty PGDATA, initdb
# as POSTGRES_USER with POSTGRES_PASSWORD (scram-sha-256 over TCP, trust on the pod-local socket),
# then every /docker-entrypoint-initdb.d/*.sh against a server that listens on its socket only;
# then the server itself on PGPORT, on every address. Any other command runs as given (the
# chart's wait-for-db init container runs `sh -c 'pg_isready ...'`).
set -eu
case "${1:-}:${2:-}" in
    postgres:-V | postgres:--version | postgres:--help | postgres:-C | postgres:--describe-config) exec "$@" ;;
    postgres:*) ;;
    *) exec "$@" ;;
esac
shift
: "${PGDATA:?PGDATA is required}"
export PGHOST="${PGHOST:-/var/run/postgresql}"
if [ ! -s "$PGDATA/PG_VERSION" ]; then
    : "${POSTGRES_PASSWORD:?POSTGRES_PASSWORD is required on first start}"
    mkdir -p "$PGDATA"
    chmod 700 "$PGDATA"
    pwfile=$(mktemp)
    printf '%s\n' "$POSTGRES_PASSWORD" >"$pwfile"
    initdb -D "$PGDATA" -U "${POSTGRES_USER:-postgres}" --pwfile="$pwfile" -E UTF8 --no-locale \
        --auth-local=trust --auth-host=scram-sha-256
    rm -f "$pwfile"
    printf 'host all all all scram-sha-256\n' >>"$PGDATA/pg_hba.conf"
    pg_ctl -D "$PGDATA" -w -t 60 -o "-c listen_addresses='' -c unix_socket_directories=$PGHOST" start
    for script in /docker-entrypoint-initdb.d/*.sh; do
        if [ -e "$script" ]; then
            echo "postgres-entrypoint: running $script"
            sh "$script"
        fi
    done
    pg_ctl -D "$PGDATA" -w -m fast stop
fi
exec postgres -D "$PGDATA" -c listen_addresses='*' -c unix_socket_directories="$PGHOST" "$@"
