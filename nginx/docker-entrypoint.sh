#!/bin/sh
# Renders the nginx templates from the environment, as the bench stack does, then runs nginx.
#   ROLE=upstream  LISTEN (default 0.0.0.0:8090)
#   ROLE=proxy     TARGETS="name=host:port=listen-port ..."  KEEPALIVE=on|off (default on)
# TEMPLATES and RUN_DIR move the folders, and NGINX_TEST=1 only checks the rendered config
# (nginx -t): the compose test renders both roles this way, without Docker.
set -eu
templates=${TEMPLATES:-/etc/rust-web-perf}
run=${RUN_DIR:-/var/run/rust-web-perf}
mkdir -p "$run"
fill() { sed -e "s|{{RUN_DIR}}|$run|g" "$@"; }

case "${ROLE:-}" in
upstream)
    fill -e "s|{{ECHO_MODULE}}|/usr/lib/nginx/modules/ngx_http_echo_module.so|" \
         -e "s|{{LISTEN}}|${LISTEN:-0.0.0.0:8090}|" \
         "$templates/upstream.conf.template" > "$run/nginx.conf"
    ;;
proxy)
    : > "$run/targets.conf"
    for entry in ${TARGETS:?set TARGETS=name=host:port=listen-port ...}; do
        name=${entry%%=*}; rest=${entry#*=}
        target=${rest%%=*}; port=${rest#*=}
        block=$(sed -e "s|{{NAME}}|target_$(echo "$name" | tr -c 'a-zA-Z0-9\n' _)|g" \
                    -e "s|{{LISTEN}}|0.0.0.0:$port|" -e "s|{{TARGET}}|$target|" \
                    -e "s|{{KEEPALIVE}}|${KEEPALIVE:-on}|" "$templates/proxy-target.conf.template")
        if [ "${KEEPALIVE:-on}" = on ]; then
            block=$(printf '%s\n' "$block" | sed 's|# keepalive-on: ||')
        fi
        printf '%s\n' "$block" >> "$run/targets.conf"
    done
    fill -e "s|{{WORKERS}}|${WORKERS:-auto}|" -e "/{{TARGETS}}/{r $run/targets.conf" -e 'd}' \
         "$templates/proxy.conf.template" > "$run/nginx.conf"
    ;;
*)
    echo "docker-entrypoint: set ROLE=upstream or ROLE=proxy" >&2
    exit 2
    ;;
esac
for sub in body proxy fastcgi scgi uwsgi; do
    mkdir -p "$run/upstream-tmp/$sub" "$run/proxy-tmp/$sub"
done
if [ "${NGINX_TEST:-}" = 1 ]; then
    exec nginx -t -q -e /dev/stderr -c "$run/nginx.conf"
fi
exec nginx -e /dev/stderr -c "$run/nginx.conf"
