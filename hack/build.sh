#!/usr/bin/env bash
# Configures and builds fleetlet into ${BUILD_DIR:-build} with Ninja and ccache.
# Extra arguments go to cmake's configure step, e.g. -DFLEETLET_SANITIZE=ON.
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD_DIR=${BUILD_DIR:-build}
# Let every clone of the repository share ccache's entries (CI builds a fresh clone each time).
export CCACHE_BASEDIR=${CCACHE_BASEDIR:-$PWD} CCACHE_NOHASHDIR=${CCACHE_NOHASHDIR:-true}
cmake -S . -B "$BUILD_DIR" -G Ninja -DCMAKE_BUILD_TYPE=${BUILD_TYPE:-RelWithDebInfo} "$@"
# Ninja prints one "[done/total] ..." line per step, so a long build shows where it is. A cold
# build (empty ccache) takes about 25 minutes on 2 cores; a warm one, seconds.
echo "build.sh: building $BUILD_DIR with $(nproc) jobs (cold: ~25 min on 2 cores; ninja counts the steps)"
cmake --build "$BUILD_DIR" --parallel "$(nproc)"
