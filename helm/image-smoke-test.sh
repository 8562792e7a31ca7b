#!/usr/bin/env bash
# The image's smoke test: run as a pod would run it, against a PostgreSQL and a Redis the
# caller names (`make run`'s embedded ones will do), with buildah (BUILDAH, default `buildah`,
# may add its options: BUILDAH="buildah --storage-driver vfs").
#
#   DATABASE_URL=postgresql://... REDIS_URL=redis://... helm/image-smoke-test.sh villagelink:0.1.0
#
# Checks: non-root; no Node, npm, pip or compiler in the image; the roles are there; `migrate`
# brings the database to head; `gateway` answers /readyz and serves the consoles; `live`
# answers /healthz.
set -euo pipefail
image=${1:?usage: $0 IMAGE}
: "${DATABASE_URL:?DATABASE_URL of a PostgreSQL the image may migrate}"
: "${REDIS_URL:?REDIS_URL of a Redis or Valkey}"
port=${SMOKE_PORT:-18000}
read -r -a buildah <<<"${BUILDAH:-buildah}"

container=$("${buildah[@]}" from --pull-never "$image")
pids=()
# `buildah run` leaves the process it started running when it is itself stopped: stop the
# innermost process of each (the role), and buildah returns with it.
innermost() {
    local pid=$1 child
    while child=$(ps -o pid= --ppid "$pid" | head -n 1) && [ -n "$child" ]; do pid=${child// /}; done
    echo "$pid"
}
cleanup() {
    for pid in "${pids[@]}"; do kill -TERM "$(innermost "$pid")" 2>/dev/null || true; done
    wait 2>/dev/null || true
    "${buildah[@]}" rm "$container" >/dev/null
}
trap cleanup EXIT
in_image() { "${buildah[@]}" run --network host "$@"; }
say() { printf '== %s\n' "$*"; }

say "runs as a non-root user"
[ "$(in_image "$container" -- id -u)" = 10001 ]

say "no build tools in the final stage"
in_image "$container" -- sh -c \
    'for tool in node npm npx pip pip3 gcc cc make; do if command -v $tool; then exit 1; fi; done'

say "every role the chart runs is a command"
help=$(in_image "$container" -- villagelink --help)
for role in gateway worker scheduler live migrate; do
    grep -q "^  $role " <<<"$help" || { echo "no role $role"; exit 1; }
done

# As a pod runs it: production, an OIDC issuer (asked for keys only when a token arrives).
settings=(--env "DATABASE_URL=$DATABASE_URL" --env "REDIS_URL=$REDIS_URL"
    --env OIDC_ISSUER=https://sso.invalid/realms/villagelink --env VILLAGELINK_HOST=127.0.0.1
    --env "VILLAGELINK_PORT=$port" --env "LIVE_PORT=$((port + 1))")

say "migrate: the platform schema and every village to head"
in_image "${settings[@]}" "$container" -- villagelink migrate --jobs 2

say "gateway and live serve"
in_image "${settings[@]}" "$container" -- villagelink gateway & pids+=($!)
in_image "${settings[@]}" "$container" -- villagelink live & pids+=($!)
wait_for() {
    for _ in $(seq 120); do
        if curl -fsS -o /dev/null "$1"; then return 0; fi
        sleep 0.5
    done
    echo "$1 did not answer"; return 1
}
wait_for "http://127.0.0.1:$port/readyz"
wait_for "http://127.0.0.1:$((port + 1))/healthz"
curl -fsS "http://127.0.0.1:$port/console/" | grep -q '<div id="app"'
say "the image passed its smoke test"
