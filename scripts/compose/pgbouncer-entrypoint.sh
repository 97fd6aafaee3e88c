#!/bin/sh
# The stand-in's entrypoint (pgbouncer.Dockerfile): pgbouncer.ini from the variables, then
# pgbouncer in the foreground as an unprivileged user (it refuses to run as root).
set -eu
dir=/etc/pgbouncer
cat > "$dir/pgbouncer.ini" <<INI
[databases]
* = host=${DB_HOST:?set DB_HOST} port=${DB_PORT:-5432} user=${DB_USER:-postgres}
[pgbouncer]
listen_addr = 0.0.0.0
listen_port = ${LISTEN_PORT:-5432}
unix_socket_dir =
auth_type = ${AUTH_TYPE:-md5}
auth_file = $dir/userlist.txt
pool_mode = ${POOL_MODE:-session}
max_client_conn = ${MAX_CLIENT_CONN:-100}
default_pool_size = ${DEFAULT_POOL_SIZE:-20}
ignore_startup_parameters = extra_float_digits
INI
printf '"%s" "%s"\n' "${DB_USER:-postgres}" "${DB_PASSWORD:-}" > "$dir/userlist.txt"
chown -R postgres:postgres "$dir"
exec runuser -u postgres -- pgbouncer "$dir/pgbouncer.ini"
