#!/usr/bin/env bash
# The image's smoke test: run as a pod would run it, against a PostgreSQL and a Redis the
# caller names (`make run`'s embedded ones will do), with buildah (BUILDAH, default `buildah`,
# may add its options: BUILDAH="buildah --storage-driver vfs").
#
#   DATABASE_URL=postgresql://... REDIS_URL=redis://... helm/image-smoke-test.sh villagelink:0.1.0
#
# Checks: non-root; no Node, npm, pip or compiler in the image; the roles are there; `migrate`
# brings the database to head; `gateway` answers /readyz and serves the consoles; `live`
# answers /healthz; a `worker` registers for its queue; the `scheduler` keeps running.
set -euo pipefail
image=${1:?usage: $0 IMAGE}
: "${DATABASE_URL:?DATABASE_URL of a PostgreSQL the image may migrate}"
: "${REDIS_URL:?REDIS_URL of a Redis or Valkey}"
port=${SMOKE_PORT:-18000}
read -r -a buildah <<<"${BUILDAH:-buildah}"

container=$("${buildah[@]}" from --pull-never "$image")
cleanup() { "${buildah[@]}" rm "$container" >/dev/null; }
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

# The roles run in one container, started and stopped by its shell (a `buildah run` that is
# stopped leaves its process running); the image's Python polls them, it has no curl.
checks='
import os, time, urllib.request

def until(path, port, holds, what):
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=5) as answer:
                if holds(answer.read().decode()):
                    print("ok:", what, flush=True)
                    return
        except OSError:
            pass
        time.sleep(0.5)
    raise SystemExit(f"not within 90 s: {what}")

gateway, live = os.environ["VILLAGELINK_PORT"], os.environ["LIVE_PORT"]
until("/readyz", gateway, lambda body: True, "the gateway is ready")
until("/healthz", live, lambda body: True, "the live process is subscribed")
until("/console/", gateway, lambda body: "<div id=\"app\"" in body, "the consoles are served")
until("/metrics", gateway, lambda body: "villagelink_queue_workers{queue=\"sync\"} 1.0" in body,
      "a sync worker is registered")
'
say "gateway, live, a sync worker and the scheduler serve"
in_image "${settings[@]}" "$container" -- sh -ec '
    villagelink gateway & gateway=$!
    villagelink live & live=$!
    villagelink worker --queue sync & worker=$!
    villagelink scheduler & scheduler=$!
    trap "kill -TERM $gateway $live $worker $scheduler; wait" EXIT
    python3 -c "$1"
    kill -0 $scheduler && echo "ok: the scheduler runs"
' smoke "$checks"
say "the image passed its smoke test"
