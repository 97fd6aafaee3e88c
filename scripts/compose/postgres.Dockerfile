# A stand-in for the official postgres:15 image, for the compose test only (no registry is
# reachable on the build machines): Debian's PostgreSQL 15, the same environment (PGDATA,
# POSTGRES_USER, POSTGRES_HOST_AUTH_METHOD), port and init folder, and an entrypoint that
# runs /docker-entrypoint-initdb.d/*.sql behind a socket-only server before the real start.
FROM debian:bookworm-slim
RUN mkdir -p /etc/postgresql-common \
 && echo 'create_main_cluster = false' > /etc/postgresql-common/createcluster.conf \
 && apt-get update \
 && apt-get install -y --no-install-recommends postgresql-15 \
 && rm -rf /var/lib/apt/lists/*
ENV PGDATA=/var/lib/postgresql/data PATH=/usr/lib/postgresql/15/bin:$PATH
COPY postgres-entrypoint.sh /usr/local/bin/docker-entrypoint.sh
EXPOSE 5432
ENTRYPOINT ["/usr/local/bin/docker-entrypoint.sh"]
CMD ["postgres"]
