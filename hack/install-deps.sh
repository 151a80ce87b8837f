#!/usr/bin/env bash
# Installs every build, run and test dependency of fleetlet on Debian 12. Idempotent: it
# installs only what is missing, so a second run takes a second. Run as root.
set -euo pipefail

BUILD_PKGS=(
  cmake ninja-build g++ ccache pkg-config
  libgrpc++-dev protobuf-compiler-grpc libprotobuf-dev
  libsqlite3-dev libcurl4-openssl-dev libssl-dev libyaml-cpp-dev nlohmann-json3-dev
  libspdlog-dev libfmt-dev libcli11-dev libboost1.74-dev libarchive-dev
  libgtest-dev libgmock-dev libbenchmark-dev
  # Their static archives, linked by cmake/Deps.cmake (gRPC's dependencies).
  libabsl-dev libre2-dev libc-ares-dev zlib1g-dev  # zlib: also fleetletd's log uploads (gzip)
  golang-github-containerd-containerd-dev golang-github-gogo-protobuf-dev
  golang-github-gogo-googleapis-dev
  clang-format clang-tidy clang-tidy-19  # hack/tidy.sh needs 19 (14 cannot parse C++23)
)
RUN_PKGS=(
  containerd runc containernetworking-plugins docker-registry umoci skopeo busybox-static
  iproute2 curl ca-certificates jq procps util-linux
  nginx-core nodejs
  openssl  # hack/cloud/: the test cloud's CA and certificates
)
# cni/: fleetlet-firewall programs nftables through libnftables; the tests inspect with nft.
BUILD_PKGS+=(libnftables-dev)
RUN_PKGS+=(nftables)
# fleetlet-streams: the benchmark's peer broker (and its C client library), the npm SDK test.
BUILD_PKGS+=(libmosquitto-dev)
RUN_PKGS+=(mosquitto)
# webview-host/: fleetlet-webview on WebKitGTK 4.1; its integration tests run it under Xvfb;
# tests/bench/kiosk measures it against Cog (WPE).
BUILD_PKGS+=(libwebkit2gtk-4.1-dev libxfixes-dev)  # XFixes: the tests read the cursor image
RUN_PKGS+=(xvfb xauth cog weston)  # weston: Cog's Wayland platform inside Xvfb (bench)
# fleetlet-streams site replication: the NATS client library; a hub for tests and the demo.
BUILD_PKGS+=(libnats-dev)
RUN_PKGS+=(nats-server)
# runtime-shim/: the native sandbox's syscall filter; cgroups v1 metrics.proto for Stats
# (also pulled in by golang-github-containerd-containerd-dev, listed for clarity).
BUILD_PKGS+=(libseccomp-dev golang-github-containerd-cgroups-dev)
# Metrics (docs/observability.md): promtool lints the expositions, a real Prometheus scrapes a
# node in tests/agent/fleetletd/metrics_test.cpp.
RUN_PKGS+=(prometheus)
# packaging/: CPack's DEB generator reads the binaries' library dependencies with
# dpkg-shlibdeps (dpkg-dev) and finds ELF files with `file`; the package test runs lintian and
# systemd-analyze (systemd).
BUILD_PKGS+=(dpkg-dev file)
RUN_PKGS+=(lintian systemd)
# The fleetletctl completion test runs the generated zsh script.
RUN_PKGS+=(zsh)
RUN_PKGS+=(python3)  # the native sandbox test makes raw syscalls through python3
# Node.js for the SDK and browser-API tests. A machine may carry its own Node.js build that
# bundles npm (Debian's npm package conflicts with it): add npm only when none is there.
if ! command -v npm >/dev/null 2>&1; then
  RUN_PKGS+=(npm)
fi

if [[ $(id -u) -ne 0 ]]; then
  echo "install-deps: run as root (it calls apt-get)" >&2
  exit 1
fi

missing=()
for p in "${BUILD_PKGS[@]}" "${RUN_PKGS[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done

if ((${#missing[@]} == 0)); then
  echo "install-deps: all ${#BUILD_PKGS[@]} build and ${#RUN_PKGS[@]} run packages present"
  exit 0
fi

echo "install-deps: installing ${#missing[@]} packages: ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -q
apt-get install -y -q --no-install-recommends "${missing[@]}"

# The Debian containerd package starts a system daemon. fleetlet's tests and dev environment
# never use it (they run their own); leave it as the administrator configured it.
echo "install-deps: done"
