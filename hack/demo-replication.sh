#!/usr/bin/env bash
# Demo of site replication (docs/replication.md): starts a site hub (hack/site-hub.sh) and two
# fleetlet-streams nodes on loopback, publishes an event on node a and shows it arriving at a
# subscriber on node b, then each node's replication status. Stops everything it started.
#
# Usage: hack/demo-replication.sh [DIR]     (default: a new directory under /tmp, removed at
# the end unless something failed)
# Needs a build (hack/build.sh) and nats-server (hack/install-deps.sh).
set -euo pipefail
cd "$(dirname "$0")/.."
own_dir=0
if [[ -n ${1:-} ]]; then dir=$1; else dir=$(mktemp -d /tmp/fleetlet-replication-demo.XXXXXX) && own_dir=1; fi
bin=${BUILD_DIR:-build}/stream-sidecar/fleetlet-streams
[[ -x $bin ]] || { echo "demo-replication: build first (hack/build.sh)" >&2; exit 1; }
step() { printf '\n\033[1m==> %s\033[0m\n' "$*"; }
pids=()
cleanup() {
  local status=$?
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  hack/site-hub.sh stop "$dir/hub" 2>/dev/null || true
  # A directory of its own goes again unless something failed (its logs say what).
  if ((own_dir && status == 0)); then rm -rf "$dir"; fi
}
trap cleanup EXIT

step "Starting a site hub (nats-server with JetStream) in $dir/hub"
hack/site-hub.sh start "$dir/hub" --site demo --nodes a,b
# shellcheck disable=SC1091
source "$dir/hub/hub.env"

port_of() {
  for _ in $(seq 1 100); do
    if grep -q "events listening on" "$1"; then
      sed -n 's/.*events listening on 127.0.0.1:\([0-9]*\).*/\1/p' "$1" | head -1
      return
    fi
    sleep 0.1
  done
  cat "$1" >&2
  exit 1
}
declare -A port
for n in a b; do
  step "Starting node $n"
  "$bin" --data-dir "$dir/$n" --source-id "$n" --listen 127.0.0.1:0 --console-listen 127.0.0.1:0 \
    --nats "$NATS_URLS" --site "$FLEETLET_SITE" --nats-user "$n" \
    --nats-password-file "$dir/hub/$n.password" --stream-max-bytes 67108864 >"$dir/$n.log" 2>&1 &
  pids+=($!)
  port[$n]=$(port_of "$dir/$n.log")
  echo "node $n: http://127.0.0.1:${port[$n]}/api/v1/events"
done

step "Subscribing on node b to the events of node a"
curl -sN -XPOST "http://127.0.0.1:${port[b]}/api/v1/events/subscribe" \
  -d '{"subscriptions":[{"source":"a"}]}' >"$dir/b-subscriber.ndjson" &
pids+=($!)
sleep 0.5

step "Publishing on node a"
curl -s -XPOST "http://127.0.0.1:${port[a]}/api/v1/events/publish" \
  -d '{"data":[{"semantics":"com.demo.valve","name":"valve3","payload":{"open":true}}]}'
echo

step "What node b's subscriber received"
for _ in $(seq 1 200); do grep -q valve3 "$dir/b-subscriber.ndjson" && break; sleep 0.05; done
cat "$dir/b-subscriber.ndjson"
if ! grep -q '"valve3"' "$dir/b-subscriber.ndjson"; then
  echo "demo-replication: node a's event did not reach node b within 10 s (logs: $dir/a.log, $dir/b.log)" >&2
  exit 1
fi

step "Replication status of node b (GET /replication)"
curl -s "http://127.0.0.1:${port[b]}/replication"
echo
