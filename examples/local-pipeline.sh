#!/usr/bin/env bash
# The stages of examples/github-actions.yml and examples/gitlab-ci.yml, run on
# this machine against sample services on loopback, with the CLI of this
# checkout: build -> deploy stable v1 and the proxy -> deploy canary v2 ->
# canary-proxy start --canary URL -> canary-proxy wait -> complete the rollout
# (v2 is the new stable, v1 is retired), or fail on a rollback.
#
#   examples/local-pipeline.sh            # a healthy v2: exit 0
#   examples/local-pipeline.sh --faulty   # v2 answers 500 to half its requests: rolled back, exit 1
#
# The whole rollout takes ~10 s (steps of 2 s, bake 2 s). CANARY_PROXY names
# the CLI to run (default: node dist/src/main.js of this checkout, built if missing).
set -euo pipefail

faulty=0
case "${1:-}" in
  --faulty) faulty=1 ;;
  "") ;;
  *) echo "usage: $0 [--faulty]" >&2; exit 2 ;;
esac

root=$(cd "$(dirname "$0")/.." && pwd)
work=$(mktemp -d "${TMPDIR:-/tmp}/canary-proxy-pipeline.XXXXXX")
pids=()
cleanup() {
  # Only the processes this script started, by their PIDs.
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
  rm -rf "$work"
}
trap cleanup EXIT

stage() { printf '\n== %s\n' "$*"; }

# Waits (up to 60 s: a busy machine starts node slowly) for a line matching $2 in file $1 and prints it.
wait_for_line() {
  local file=$1 pattern=$2 line
  for _ in $(seq 600); do
    line=$(grep -m 1 -E "$pattern" "$file" 2>/dev/null || true)
    if [ -n "$line" ]; then printf '%s\n' "$line"; return 0; fi
    sleep 0.1
  done
  echo "pipeline: no line matching '$pattern' in $file:" >&2
  cat "$file" >&2
  return 1
}

# Starts a sample service in the background and sets service_url (not in a
# $(...) subshell: its PID must reach the cleanup's list).
deploy_service() {
  local version=$1 error_ratio=$2 log="$work/$1.log" line
  node "$root/examples/local/sample-service.mjs" --version "$version" --error-ratio "$error_ratio" >"$log" 2>&1 &
  pids+=($!)
  line=$(wait_for_line "$log" '^listening ')
  service_url=${line#listening }
}

stage "build"
# A real pipeline builds and pushes the image here; locally: the CLI of this checkout.
if [ -z "${CANARY_PROXY:-}" ]; then
  [ -f "$root/dist/src/main.js" ] || (cd "$root" && npm run -s build)
  CANARY_PROXY="node $root/dist/src/main.js"
fi
cli() { $CANARY_PROXY "$@"; }
echo "CLI: $CANARY_PROXY"

stage "deploy stable v1 and the proxy in front of it"
deploy_service v1 0
stable_url=$service_url
echo "stable v1 at $stable_url"
export CANARY_PROXY_ADMIN_TOKEN="local-$RANDOM$RANDOM"
cat >"$work/canary-proxy.yaml" <<EOF
listen: { host: 127.0.0.1, port: 0 }
admin: { host: 127.0.0.1, port: 0, token: "\${CANARY_PROXY_ADMIN_TOKEN}" }
upstreams: { stable: "$stable_url" }
routing: { stickyHeader: x-user-id }
rollout: { steps: [20, 50, 100], stepDuration: 2s, bake: 2s, autoStart: true }
analysis: { interval: 250ms, window: 5s, minRequests: 20, maxErrorRate: 0.05, maxErrorRateIncrease: 0.05 }
state: { file: "$work/state.json" }
audit: { file: "$work/audit.jsonl" }
log: { level: info }
EOF
$CANARY_PROXY serve --config "$work/canary-proxy.yaml" >"$work/proxy.log" 2>&1 &
pids+=($!)
listening=$(wait_for_line "$work/proxy.log" 'canary-proxy listening on')
proxy_url=$(sed -E 's/.*"proxy":"([^"]+)".*/\1/' <<<"$listening")
export CANARY_PROXY_ADMIN
CANARY_PROXY_ADMIN=$(sed -E 's/.*"admin":"([^"]+)".*/\1/' <<<"$listening")
echo "proxy at $proxy_url, admin at $CANARY_PROXY_ADMIN"
# Production traffic, as the service would have it (stops with this script).
node "$root/examples/local/traffic.mjs" "$proxy_url" --rate 150 --duration 120s >/dev/null 2>&1 &
pids+=($!)

stage "deploy canary v2"
if [ "$faulty" -eq 1 ]; then deploy_service v2 0.5; else deploy_service v2 0; fi
canary_url=$service_url
echo "canary v2 at $canary_url$([ "$faulty" -eq 1 ] && echo ' (faulty: 50% errors)')"

stage "canary-proxy start --canary $canary_url"
cli start --canary "$canary_url"

stage "canary-proxy wait"
if cli wait --timeout 60s; then
  stage "complete the rollout"
  # v2 is the proxy's stable now (wait said so): the old version can go.
  echo "pipeline: v2 released; retiring v1"
  exit 0
else
  code=$?
  stage "rollout failed (canary-proxy wait exit $code)"
  cli events || true
  echo "pipeline: v2 was not released; the canary gets no traffic (fix it and run the pipeline again)" >&2
  exit 1
fi
