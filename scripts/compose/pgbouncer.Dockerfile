# A stand-in for edoburu/pgbouncer, for the compose test only (no registry is reachable on
# the build machines): Debian's pgbouncer, configured from the same variables (DB_HOST,
# DB_PORT, DB_USER, DB_PASSWORD, AUTH_TYPE, POOL_MODE, MAX_CLIENT_CONN, DEFAULT_POOL_SIZE,
# LISTEN_PORT), listening on 5432 as that image does.
FROM debian:bookworm-slim
RUN apt-get update \
 && apt-get install -y --no-install-recommends pgbouncer \
 && rm -rf /var/lib/apt/lists/*
COPY pgbouncer-entrypoint.sh /usr/local/bin/docker-entrypoint.sh
EXPOSE 5432
ENTRYPOINT ["/usr/local/bin/docker-entrypoint.sh"]
