#!/usr/bin/env bash
# Runs replication.js: the ActyxOS SDK @actyx/os-sdk 0.3.1 on node B of a two-node site sees
# the events published on node A (replicated through a hub from hack/site-hub.sh).
# usage: run_replication.sh STREAMS_BINARY CACHE_DIR SOURCE_DIR
# Both nodes and the hub run on loopback with fresh directories and are stopped by PID.
set -euo pipefail
bin=$1
cache=$2
source_dir=$3
here=$(cd "$(dirname "$0")" && pwd)
command -v node >/dev/null || { echo "SKIP: node is not installed"; exit 77; }

"$here/install-sdk.sh" "$cache"

work=$(mktemp -d /tmp/streams-node-repl-XXXXXX)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null && wait "$p" 2>/dev/null || true; done
  "$source_dir/hack/site-hub.sh" stop "$work/hub" >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT
"$source_dir/hack/site-hub.sh" start "$work/hub" --site sdk --nodes a,b >/dev/null
urls=$(sed -n 's/^NATS_URLS=//p' "$work/hub/hub.env")

# Starts node $1 (its PID joins pids, for cleanup); sets port to its events port. Not run in
# a $(...) subshell, which would lose the PID.
port=
start_node() {
  local n=$1
  port=
  "$bin" --data-dir "$work/$n" --listen 127.0.0.1:0 --console-listen 127.0.0.1:0 \
    --source-id "$n" --nats "$urls" --site sdk --nats-user "$n" \
    --nats-password-file "$work/hub/$n.password" >"$work/$n.log" 2>&1 &
  pids+=($!)
  for _ in $(seq 200); do
    port=$(grep -o 'events listening on 127.0.0.1:[0-9]*' "$work/$n.log" | grep -o '[0-9]*$' || true)
    [[ -n $port ]] && break
    sleep 0.05
  done
  [[ -n $port ]] || { cat "$work/$n.log" >&2; echo "node $n did not start" >&2; exit 1; }
}
start_node a
a=$port
start_node b
b=$port

AX_EVENT_SERVICE_URI=http://127.0.0.1:$b/api A_EVENTS_URI=http://127.0.0.1:$a/api \
NODE_PATH=$cache/node_modules node "$here/replication.js" ||
  { echo "--- node a"; cat "$work/a.log"; echo "--- node b"; cat "$work/b.log"; exit 1; }
