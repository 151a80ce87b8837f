#!/usr/bin/env bash
# From a fresh Debian 12 machine, as root: installs dependencies, builds, runs every test
# (unit and integration) and the style checks. Exit status 0 means everything passed.
# Then the demo, twice (hack/demo.sh; it exits non-zero when a step's outcome does not happen).
#   LABEL=unit hack/test.sh     only the unit tests (and no demo; any LABEL skips the demo)
set -euo pipefail
cd "$(dirname "$0")/.."
hack/install-deps.sh
hack/build.sh
hack/check-format.sh
BUILD_DIR=${BUILD_DIR:-build}
label_args=()
[[ -n ${LABEL:-} ]] && label_args=(-L "$LABEL")
if [[ ${LABEL:-} != unit ]]; then
  # The package as a device gets it (Release, hack/package.sh) and one numbered 0.0.1 from the
  # same tree: the package tests install the first and upgrade from the second to it.
  package() {  # package BUILD_DIR [VERSION]: builds it, showing progress; prints the .deb's path
    BUILD_DIR=$1 FLEETLET_VERSION_OVERRIDE=${2:-} BUILD_TYPE=Release hack/package.sh >&2 &&
      ls "$PWD/$1"/packages/fleetlet_*.deb
  }
  echo "test.sh: the Release package"
  FLEETLET_PACKAGE_DEB=$(package build-release)
  echo "test.sh: the package numbered 0.0.1"
  FLEETLET_PREVIOUS_PACKAGE_DEB=$(package build-release-previous 0.0.1)
  export FLEETLET_PACKAGE_DEB FLEETLET_PREVIOUS_PACKAGE_DEB
fi
ctest --test-dir "$BUILD_DIR" --output-on-failure --parallel "$(nproc)" "${label_args[@]}"
if [[ -z ${LABEL:-} ]]; then
  # README's other command, end to end, twice: the second run starts over what the first left
  # running (fleetletd restarted beside its containers and the node services). In a directory
  # and on ports of its own; stopped again whatever happens.
  demo_dir=$(mktemp -d /tmp/fleetlet-test-demo.XXXXXX)
  export FLEETLET_DEV_DIR=$demo_dir FLEETLET_REGISTRY_ADDR=127.0.0.1:5051
  export FLEETLET_CLOUD_PORT=8453 FLEETLET_DEMO_DISPLAY=:96
  demo_cleanup() {
    local status=$?
    if ((status)) && [[ -f $demo_dir/fleetletd.log ]]; then
      echo "test.sh: the demo failed; the end of fleetletd's log:" >&2
      tail -n 40 "$demo_dir/fleetletd.log" >&2
    fi
    hack/demo.sh --stop >/dev/null 2>&1 || true
    rm -rf "$demo_dir"
  }
  trap demo_cleanup EXIT
  echo "test.sh: the demo (hack/demo.sh), first run"
  hack/demo.sh
  echo "test.sh: the demo again, over what the first run left running"
  hack/demo.sh --down
fi
