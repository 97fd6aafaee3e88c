#!/bin/sh
# The stand-in's entrypoint (postgres.Dockerfile): as the official image's, the first start
# makes the cluster, then loads /docker-entrypoint-initdb.d/*.sql behind a server that listens
# on its Unix socket only, then starts PostgreSQL on every address with the given arguments.
set -eu
[ "${1:-}" = postgres ] && shift
user=${POSTGRES_USER:-postgres}
auth=${POSTGRES_HOST_AUTH_METHOD:-scram-sha-256}
mkdir -p "$PGDATA" /var/run/postgresql
chown -R postgres:postgres "$PGDATA" /var/run/postgresql
chmod 700 "$PGDATA"
as_postgres() { runuser -u postgres -- "$@"; }
if [ ! -s "$PGDATA/PG_VERSION" ]; then
    as_postgres initdb -D "$PGDATA" -U "$user" --auth-local=trust --auth-host="$auth" >/dev/null
    echo "host all all all $auth" >> "$PGDATA/pg_hba.conf"
    as_postgres pg_ctl -D "$PGDATA" -w -o "-c listen_addresses='' $*" start >/dev/null
    for script in /docker-entrypoint-initdb.d/*.sql; do
        [ -e "$script" ] || continue
        echo "postgres stand-in: running $script"
        as_postgres psql -v ON_ERROR_STOP=1 -q -U "$user" -d postgres -f "$script"
    done
    as_postgres pg_ctl -D "$PGDATA" -m fast -w stop >/dev/null
fi
exec runuser -u postgres -- postgres -D "$PGDATA" -c listen_addresses='*' "$@"
