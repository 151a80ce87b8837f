#!/usr/bin/env bash
# Builds and runs fleetlet's benchmarks. Each prints its figures and a ratio against a peer
# measured in the same run (see docs/benchmarks.md). Run as root.
#   hack/bench.sh [pull|apply|shim|blobs|kiosk|cloud|sidecar] [extra args for that benchmark]
set -euo pipefail
cd "$(dirname "$0")/.."
hack/install-deps.sh >/dev/null
hack/build.sh >/dev/null
# The benchmarks reuse the test fixtures, which find the image scripts and cache through these.
export FLEETLET_SOURCE_DIR=$PWD FLEETLET_BINARY_DIR=$PWD/build
which=${1:-all}
if [[ $which == all || $which == pull ]]; then
  build/tests/bench/pull/bench_pull "${@:2}"
fi
if [[ $which == all || $which == apply ]]; then
  build/tests/bench/apply/bench_apply "${@:2}"
fi
if [[ $which == all || $which == shim ]]; then
  build/tests/bench/shim/bench_shim "${@:2}"
fi
if [[ $which == all || $which == blobs ]]; then
  build/tests/bench/blobs/blobs_bench "${@:2}"
fi
if [[ $which == all || $which == kiosk ]]; then
  build/tests/bench/kiosk/bench_kiosk "${@:2}"
fi
if [[ $which == all || $which == cloud ]]; then
  build/tests/bench/cloud/bench_cloud "${@:2}"
fi
if [[ $which == all || $which == sidecar ]]; then
  build/tests/bench/sidecar/bench_sidecar "${@:2}"
fi
