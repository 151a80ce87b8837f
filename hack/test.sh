#!/usr/bin/env bash
# From a fresh Debian 12 machine, as root: installs dependencies, builds, runs every test
# (unit and integration) and the style checks. Exit status 0 means everything passed.
#   LABEL=unit hack/test.sh     only the unit tests
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
