#!/usr/bin/env bash
# Builds fleetlet's libFuzzer targets with clang-19 into ${FUZZ_BUILD_DIR:-build-fuzz} and runs
# each for DURATION seconds (first argument, default 30), seeded from tests/fuzz/corpus/<target>.
# New corpus entries go to the build dir, never into the source tree; crashes are written to
# <build>/artifacts/ and make the script fail. Installs clang-19 and libclang-rt-19-dev when
# missing (g++ 12's libstdc++ needs clang >= 16 for std::expected).
#
#   hack/fuzz.sh            # 30 s per target
#   hack/fuzz.sh 300 manifest reference   # 5 min, only these targets
set -euo pipefail
cd "$(dirname "$0")/.."
DURATION=${1:-30}
shift || true
BUILD_DIR=${FUZZ_BUILD_DIR:-build-fuzz}
RT_LIB=/usr/lib/llvm-19/lib/clang/19/lib/linux/libclang_rt.fuzzer-x86_64.a

if ! command -v clang++-19 >/dev/null 2>&1 || [ ! -e "$RT_LIB" ]; then
  echo "fuzz.sh: installing clang-19 and libclang-rt-19-dev" >&2
  SUDO=""
  [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends \
    clang-19 libclang-rt-19-dev >/dev/null
fi

SAN="-fsanitize=fuzzer-no-link,address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined"
CC=clang-19 CXX=clang++-19 cmake -S . -B "$BUILD_DIR" -G Ninja \
  -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DFLEETLET_FUZZ=ON -DFLEETLET_WERROR=OFF -DFLEETLET_BUILD_TESTS=ON \
  -DCMAKE_C_FLAGS="$SAN" -DCMAKE_CXX_FLAGS="$SAN" >/dev/null
cmake --build "$BUILD_DIR" --target fleetlet_fuzz --parallel "$(nproc)"

targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
  targets=()
  for dir in tests/fuzz/corpus/*/; do targets+=("$(basename "$dir")"); done
fi

mkdir -p "$BUILD_DIR/artifacts"
failed=()
for t in "${targets[@]}"; do
  bin="$BUILD_DIR/tests/fuzz/fuzz_$t"
  work="$BUILD_DIR/corpus/$t"
  mkdir -p "$work"
  echo "== fuzz_$t for ${DURATION}s"
  if ! "$bin" -max_total_time="$DURATION" -timeout=10 -rss_limit_mb=2048 -max_len=65536 \
      -print_final_stats=1 -artifact_prefix="$BUILD_DIR/artifacts/$t-" \
      "$work" "tests/fuzz/corpus/$t" 2>"$BUILD_DIR/fuzz_$t.log"; then
    failed+=("$t")
    tail -n 40 "$BUILD_DIR/fuzz_$t.log" >&2
  fi
  grep -E '^(stat::number_of_executed_units|stat::peak_rss_mb)|^#[0-9]+.*DONE' \
    "$BUILD_DIR/fuzz_$t.log" || true
done

if [ ${#failed[@]} -gt 0 ]; then
  echo "fuzz.sh: crashes in: ${failed[*]} (inputs in $BUILD_DIR/artifacts/)" >&2
  exit 1
fi
echo "fuzz.sh: no crashes"
