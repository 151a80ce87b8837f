#!/usr/bin/env bash
# The fleetlet demo, from a fresh Debian 12 machine (as root): installs dependencies, builds,
# starts the private dev environment (containerd + loopback registry, never the system
# containerd), builds and pushes a small test image, pulls it with `fleetletctl image pull`,
# runs it, imports it from an OCI archive as an air-gapped device would, then starts a test
# cloud (nginx over mTLS, hack/cloud/) and fleetletd polling it, signs
# manifests/examples/demo.yaml (four apps) for the node, publishes it, and shows the apps
# converge with `fleetletctl get apps` beside the node services, which fleetletd runs as system
# apps (manifests/system/, images imported from OCI archives); a manifest signed by a stranger is
# refused. Then the photo story (manifests/examples/photos.yaml): a camera uploads photos to the
# blob service on its own localhost, an inspector follows the metadata events and fetches each
# photo; the demo prints the events (sourceApp: camera) and checks a photo is byte-identical.
# Last, site replication (hack/demo-replication.sh, stopped again at its end): an event published
# on one node reaches a subscriber on another through a NATS JetStream site hub.
# Everything stays up afterwards; `hack/demo.sh --stop` stops it. The demo exits non-zero,
# saying which step, when something it shows does not happen (hack/test.sh runs it twice).
#
# Usage: hack/demo.sh [--down | --stop | --help]
#   --down   stop everything again at the end
#   --stop   only stop what an earlier run left running (fleetletd, Xvfb, hack/dev-down.sh)
# Environment: FLEETLET_DEV_DIR (default /tmp/fleetlet-dev), FLEETLET_REGISTRY_ADDR and
# FLEETLET_CLOUD_PORT (hack/dev-up.sh), FLEETLET_DEMO_DISPLAY (the private X display, :97).
set -euo pipefail
cd "$(dirname "$0")/.."
usage() { sed -n '2,/^set -euo/p' "$0" | sed -e '$d' -e 's/^# \{0,1\}//'; }
down=0
stop_only=0
while (($#)); do
  case "$1" in
    --down) down=1; shift ;;
    --stop) stop_only=1; shift ;;
    -h|--help) usage; exit 0 ;;
    *) echo "demo: unknown argument '$1' (see --help)" >&2; exit 2 ;;
  esac
done
export FLEETLET_DEV_DIR=${FLEETLET_DEV_DIR:-/tmp/fleetlet-dev}
pidfile=$FLEETLET_DEV_DIR/fleetletd.pid

step() { printf '\n\033[1m==> %s\033[0m\n' "$*"; }
# A step whose outcome did not happen: says so and stops the demo (exit 1).
fail() {
  printf '\ndemo: %s\n' "$*" >&2
  exit 1
}
# Stops the fleetletd an earlier run started, waiting for it to exit.
stop_fleetletd() {
  local pid
  if [[ -f $pidfile ]] && pid=$(cat "$pidfile") && kill -0 "$pid" 2>/dev/null; then
    kill "$pid"
    while kill -0 "$pid" 2>/dev/null; do sleep 0.2; done
  fi
  rm -f "$pidfile"
}
# Stops fleetletd, the demo's Xvfb and the dev environment.
stop_demo() {
  stop_fleetletd
  if [[ -f $FLEETLET_DEV_DIR/xvfb.pid ]]; then
    kill "$(cat "$FLEETLET_DEV_DIR/xvfb.pid")" 2>/dev/null || true
    rm -f "$FLEETLET_DEV_DIR/xvfb.pid"
  fi
  hack/dev-down.sh
}
if ((stop_only)); then
  stop_demo
  exit 0
fi

step "Installing dependencies"
hack/install-deps.sh
step "Building"
hack/build.sh  # ninja prints its progress; a cold build takes ~25 min on 2 cores
export BUILD_DIR=${BUILD_DIR:-build}
export PATH=$PWD/$BUILD_DIR/agent/fleetletctl:$PWD/$BUILD_DIR/agent/fleetletd:$PATH

step "Starting the dev environment (private containerd + registry on 127.0.0.1:5000 + test cloud)"
hack/dev-up.sh --images --cloud
export CONTAINERD_ADDRESS=$FLEETLET_DEV_DIR/containerd.sock
export CONTAINERD_NAMESPACE=fleetlet
registry=${FLEETLET_REGISTRY_ADDR:-127.0.0.1:5000}
image=$registry/fleetlet-test/busybox:1
# The example manifests name the default registry; the demo's may listen elsewhere.
our_registry="s|127.0.0.1:5000/|$registry/|"

step "fleetletctl image pull --plain-http $image"
fleetletctl image rm "$image" >/dev/null 2>&1 || true
fleetletctl image pull --plain-http "$image"

step "fleetletctl image ls"
fleetletctl image ls

step "Running it with containerd's own client: ctr run --rm $image"
ctr run --rm "$image" "demo-$$"

step "fleetletctl image import (an OCI archive, as on a device without a registry)"
fleetletctl image import "$FLEETLET_DEV_DIR/images/busybox-oci.tar"
ctr run --rm fleetlet.test/fleetlet-test/busybox:1 "demo-import-$$" cat /etc/fleetlet-test/motd

step "Asking for an image that does not exist shows a clear error"
fleetletctl image pull --plain-http "${image%:1}:missing" || true

step "Starting fleetletd (log: $FLEETLET_DEV_DIR/fleetletd.log)"
stop_fleetletd
rm -rf "$FLEETLET_DEV_DIR/fleetletd"   # a fresh node: revision 1 is new to it
export FLEETLET_API_SOCKET=$FLEETLET_DEV_DIR/fleetletd.sock
# The apps' networks (bridge, port maps, firewall) live in a namespace of the demo's own that
# stands in for the node's, so the demo leaves this machine's network untouched
# (hack/dev-down.sh removes it); a real node runs without --cni-netns/--netns-dir.
node_ns=fleetlet-dev-node
ip netns list | grep -qw "$node_ns" || ip netns add "$node_ns"
ip -n "$node_ns" link set lo up
# A screen for runtime: webview apps (the photo viewer): a private X server.
display=${FLEETLET_DEMO_DISPLAY:-:97}
if [[ ! -f $FLEETLET_DEV_DIR/xvfb.pid ]] || ! kill -0 "$(cat "$FLEETLET_DEV_DIR/xvfb.pid")" 2>/dev/null; then
  Xvfb "$display" -screen 0 1280x800x24 -nolisten tcp >"$FLEETLET_DEV_DIR/xvfb.log" 2>&1 &
  echo $! >"$FLEETLET_DEV_DIR/xvfb.pid"
fi
cloud=$FLEETLET_DEV_DIR/cloud
rm -f "$cloud/www/nodes/dev-node.json"
# The node services' images as an air-gapped node gets them: OCI archives fleetletd imports.
hack/build-images.sh --system "$BUILD_DIR" --out "$FLEETLET_DEV_DIR/system-images"
fleetletd --config "$cloud/fleetletd.yaml" \
  --system-manifest manifests/system/node-services.yaml \
  --system-images "$FLEETLET_DEV_DIR/system-images" --handoff-dir "$FLEETLET_DEV_DIR/handoff" \
  --containerd "$CONTAINERD_ADDRESS" --data-dir "$FLEETLET_DEV_DIR/fleetletd" \
  --api-socket "$FLEETLET_API_SOCKET" --plain-http-registry "$registry" \
  --cni-netns "/run/netns/$node_ns" --netns-dir "$FLEETLET_DEV_DIR/netns" \
  --display "$display" \
  >"$FLEETLET_DEV_DIR/fleetletd.log" 2>&1 &
echo $! >"$pidfile"
for _ in $(seq 1 100); do [[ -S $FLEETLET_API_SOCKET ]] && break; sleep 0.1; done

step "Signing manifests/examples/demo.yaml for node dev-node and publishing it in the test cloud"
sed -e 's/^revision: 1$/revision: 1\nnode: dev-node/' -e "$our_registry" manifests/examples/demo.yaml >"$cloud/demo.yaml"
fleetletctl manifest sign -f "$cloud/demo.yaml" --key "$cloud/fleet.key" -o "$cloud/demo.dsse.json"
fleetletctl manifest verify -f "$cloud/demo.dsse.json" --key "$cloud/fleet.key.pub" --node dev-node
mv "$cloud/demo.dsse.json" "$cloud/www/nodes/dev-node.json"
# demo.yaml's four apps and the three system apps (fleetlet-streams, fleetlet-blobs, and the
# kiosk fleetlet-webview: a native app, on the display).
converged=0
for _ in $(seq 1 60); do
  [[ $(fleetletctl get apps | grep -c running) -eq 7 ]] && converged=1 && break
  sleep 1
done
((converged)) || { fleetletctl get apps >&2 || true; fail "the apps did not all run within 60 s (log: $FLEETLET_DEV_DIR/fleetletd.log)"; }

step "fleetletctl get apps (the node services run as the system apps fleetlet-streams and fleetlet-blobs, the kiosk as fleetlet-webview)"
fleetletctl get apps
step "fleetletctl status"
fleetletctl status
step "Each app has a network of its own; web's port 8080 is exposed as the node's 18080"
sleep 1
ip netns exec "$node_ns" curl -s --max-time 5 http://10.90.0.1:18080/ || true
fleetletctl describe app web | grep -E '^(Network|Namespace|Sent|Received|Refused):' || true
step "fleetletctl logs ticker --tail 3"
sleep 1
fleetletctl logs ticker --tail 3 || true

step "A manifest with a mistake is refused and changes nothing"
if sed -e 's/revision: 1/revision: 2/' -e 's/memory: 32Mi/memory: 32Q/' -e "$our_registry" manifests/examples/demo.yaml |
  fleetletctl apply -f -; then
  fail "fleetletd accepted a manifest with memory: 32Q"
fi

step "A manifest signed by a key the node does not trust is refused and changes nothing"
openssl genpkey -algorithm ed25519 -out "$cloud/stranger.key"
sed 's/^revision: 1$/revision: 3/' "$cloud/demo.yaml" >"$cloud/demo-3.yaml"
fleetletctl manifest sign -f "$cloud/demo-3.yaml" --key "$cloud/stranger.key" -o "$cloud/stranger.json"
mv "$cloud/stranger.json" "$cloud/www/nodes/dev-node.json"
for _ in $(seq 1 20); do
  fleetletctl events | grep -q 'rejected.*no valid signature' && break
  sleep 0.5
done
fleetletctl events | grep 'rejected.*no valid signature' | tail -1 ||
  fail "no event says the stranger's manifest was rejected"
fleetletctl status

step "The photo story (manifests/examples/photos.yaml, revision 4): a camera and an inspector"
sed -e 's/^revision: 1$/revision: 4\nnode: dev-node/' -e "$our_registry" manifests/examples/photos.yaml >"$cloud/photos.yaml"
fleetletctl manifest sign -f "$cloud/photos.yaml" --key "$cloud/fleet.key" -o "$cloud/photos.dsse.json"
mv "$cloud/photos.dsse.json" "$cloud/www/nodes/dev-node.json"
inspected=0
for _ in $(seq 1 90); do
  [[ $(fleetletctl logs inspector 2>/dev/null | grep -c 'inspector: photo') -ge 2 ]] && inspected=1 && break
  sleep 1
done
((inspected)) || { fleetletctl get apps >&2 || true; fail "the inspector saw no two photos within 90 s"; }
fleetletctl get apps
step "fleetletctl logs camera --tail 2"
fleetletctl logs camera --tail 2 || true
step "fleetletctl logs inspector --tail 2"
fleetletctl logs inspector --tail 2 || true

step "The blob service's metadata events, read on the node's own listener 127.0.0.1:4454"
offsets=$(curl -s http://127.0.0.1:4454/api/v1/events/offsets)
events=$(curl -s -H 'Content-Type: application/json' \
  -d "{\"subscriptions\":[{\"semantics\":\"com.actyx.os.blobs.metadata\"}],\"order\":\"lamport\",\"upperBound\":$offsets}" \
  http://127.0.0.1:4454/api/v1/events/query)
jq -c '{semantics: .stream.semantics, photo: .payload.semantics, sourceApp: .payload.sourceApp,
        handle: .payload.handle, bytes: .payload.bytes, filename: .payload.filename}' <<<"$events" | tail -3

step "The last photo, fetched from the blob service, is byte-identical to what the camera took"
last=$(jq -c 'select(.payload.sourceApp == "camera")' <<<"$events" | tail -1)
handle=$(jq -r .payload.handle <<<"$last")
shot=$(jq -r .payload.filename <<<"$last" | sed 's/^shot-0*\([0-9]*\)\.jpg$/\1/')
photos=$FLEETLET_DEV_DIR/photos
mkdir -p "$photos"
curl -s -o "$photos/fetched.jpg" "http://127.0.0.1:4455/api/v1/blobs/$handle"
# What the camera sent: the manifest's JPEG with a comment segment "camera shot NNNNNN".
base64 -d <<<"$(sed -n 's/^ *PHOTO_JPEG_BASE64: "\(.*\)"$/\1/p' manifests/examples/photos.yaml)" >"$photos/base.jpg"
{ printf '\377\330\377\376\000\024'; printf 'camera shot %06d' "$shot"; tail -c +3 "$photos/base.jpg"; } >"$photos/expected.jpg"
if [[ -n $handle && $handle != null ]] && cmp "$photos/expected.jpg" "$photos/fetched.jpg"; then
  echo "photo $handle (shot $shot, $(wc -c <"$photos/fetched.jpg") bytes, sourceApp camera) is byte-identical"
  fleetletctl logs inspector | grep "$handle" || true
else
  echo "the fetched photo differs from the one the camera took (handle '$handle')" >&2
  exit 1
fi
step "The photo viewer on the node's screen (hack/demo-photo-viewer.sh)"
hack/demo-photo-viewer.sh

step "An event crossing two nodes of a site (hack/demo-replication.sh: a NATS site hub and two fleetlet-streams on loopback)"
hack/demo-replication.sh

if ((down)); then
  step "Stopping fleetletd and the dev environment"
  stop_demo
else
  printf '\nfleetletd and the dev environment are still up. Try:\n'
  printf '  export FLEETLET_API_SOCKET=%s CONTAINERD_ADDRESS=%s\n' "$FLEETLET_API_SOCKET" "$CONTAINERD_ADDRESS"
  printf '  %s/agent/fleetletctl/fleetletctl get apps\n' "$BUILD_DIR"
  printf '  %s/agent/fleetletctl/fleetletctl describe app limited\n' "$BUILD_DIR"
  printf 'Stop everything with: hack/demo.sh --stop\n'
fi
