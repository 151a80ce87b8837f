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
ctest --test-dir "$BUILD_DIR" --output-on-failure --parallel "$(nproc)" "${label_args[@]}"
