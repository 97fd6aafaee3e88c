# Images for compose.yaml. scripts/compose-test builds the `targets` and `nginx` stages under
# podman (the `build` stage handed in as this checkout's release build: no registry there),
# and bench/tests/compose.rs checks the files statically.

# 1. Build every target in release.
FROM rust:1.95-bookworm AS build
WORKDIR /src
COPY . .
RUN cargo build --release --locked --workspace --bins \
 && mkdir /out \
 && for bin in $(ls servers) bench; do cp "target/release/$bin" /out/; done

# 2. The targets: one image, the binary chosen by compose's `command` (`bench describe` serves
#    the stack's description).
FROM debian:bookworm-slim AS targets
COPY --from=build /out/ /usr/local/bin/
ENV LISTEN=0.0.0.0:8000
EXPOSE 8000

# 3. nginx with the echo module, for the upstream page and the reverse proxy.
FROM debian:bookworm-slim AS nginx
RUN apt-get update \
 && apt-get install -y --no-install-recommends nginx-light libnginx-mod-http-echo \
 && rm -rf /var/lib/apt/lists/*
COPY nginx/*.template /etc/rust-web-perf/
COPY nginx/docker-entrypoint.sh /usr/local/bin/docker-entrypoint.sh
ENTRYPOINT ["/usr/local/bin/docker-entrypoint.sh"]
