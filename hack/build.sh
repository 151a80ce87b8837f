#!/usr/bin/env bash
# Configures and builds fleetlet into ${BUILD_DIR:-build} with Ninja and ccache.
# Extra arguments go to cmake's configure step, e.g. -DFLEETLET_SANITIZE=ON.
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD_DIR=${BUILD_DIR:-build}
# Let every clone of the repository share ccache's entries (CI builds a fresh clone each time).
export CCACHE_BASEDIR=${CCACHE_BASEDIR:-$PWD} CCACHE_NOHASHDIR=${CCACHE_NOHASHDIR:-true}
cmake -S . -B "$BUILD_DIR" -G Ninja -DCMAKE_BUILD_TYPE=${BUILD_TYPE:-RelWithDebInfo} "$@"
cmake --build "$BUILD_DIR" --parallel "$(nproc)"
