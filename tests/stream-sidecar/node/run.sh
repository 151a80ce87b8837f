#!/usr/bin/env bash
# Runs test.js (the ActyxOS SDK @actyx/os-sdk 0.3.1 against fleetlet-streams).
# usage: run.sh STREAMS_BINARY CACHE_DIR
# The SDK is installed into CACHE_DIR by install-sdk.sh. The service runs on port 0 with a
# fresh data dir and is stopped by PID. (The same suite from inside a container, through
# fleetletd's handoff: SystemAppsTest.TheActyxOsSdkSuitePassesFromAContainerOnItsOwnEvents.)
set -euo pipefail
bin=$1
cache=$2
here=$(cd "$(dirname "$0")" && pwd)
command -v node >/dev/null || { echo "SKIP: node is not installed"; exit 77; }

"$here/install-sdk.sh" "$cache"

work=$(mktemp -d /tmp/streams-node-XXXXXX)
pid=
cleanup() {
  [[ -n $pid ]] && kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT
"$bin" --data-dir "$work/data" --listen 127.0.0.1:0 --console-listen 127.0.0.1:0 \
  --source-id node-sdk >"$work/log" 2>&1 &
pid=$!
events= console=
for _ in $(seq 200); do
  events=$(grep -o 'events listening on 127.0.0.1:[0-9]*' "$work/log" | grep -o '[0-9]*$' || true)
  console=$(grep -o 'console listening on 127.0.0.1:[0-9]*' "$work/log" | grep -o '[0-9]*$' || true)
  [[ -n $events && -n $console ]] && break
  sleep 0.05
done
[[ -n $events && -n $console ]] || { cat "$work/log"; echo "service did not start"; exit 1; }

SDK_EXPECT_SOURCE=node-sdk \
AX_EVENT_SERVICE_URI=http://127.0.0.1:$events/api \
AX_CONSOLE_SERVICE_URI=http://127.0.0.1:$console/api \
NODE_PATH=$cache/node_modules node "$here/test.js"
