#!/usr/bin/env bash
# The fleetlet demo, from a fresh Debian 12 machine (as root): installs dependencies, builds,
# starts the private dev environment (containerd + loopback registry, never the system
# containerd), builds and pushes a small test image, pulls it with `fleetletctl image pull`,
# lists it, runs it, and imports the same image from an OCI archive as an air-gapped device
# would. The dev environment stays up afterwards; stop it with hack/dev-down.sh.
#
# Usage: hack/demo.sh [--down]     --down: stop the dev environment at the end
set -euo pipefail
cd "$(dirname "$0")/.."
down=0
[[ ${1:-} == --down ]] && down=1

step() { printf '\n\033[1m==> %s\033[0m\n' "$*"; }

step "Installing dependencies"
hack/install-deps.sh
step "Building"
hack/build.sh >/dev/null
export PATH=$PWD/build/agent/fleetletctl:$PATH

step "Starting the dev environment (private containerd + registry on 127.0.0.1:5000)"
hack/dev-up.sh --images
export FLEETLET_DEV_DIR=${FLEETLET_DEV_DIR:-/tmp/fleetlet-dev}
export CONTAINERD_ADDRESS=$FLEETLET_DEV_DIR/containerd.sock
export CONTAINERD_NAMESPACE=fleetlet
image=${FLEETLET_REGISTRY_ADDR:-127.0.0.1:5000}/fleetlet-test/busybox:1

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

if ((down)); then
  step "Stopping the dev environment"
  hack/dev-down.sh
else
  printf '\nThe dev environment is still up. Try:\n'
  printf '  export CONTAINERD_ADDRESS=%s\n' "$CONTAINERD_ADDRESS"
  printf '  build/agent/fleetletctl/fleetletctl image ls\n'
  printf 'Stop it with: hack/dev-down.sh\n'
fi
