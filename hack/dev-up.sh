#!/usr/bin/env bash
# Starts fleetlet's private dev environment: a containerd that shares nothing with the
# system one (own root, state, sockets, opt dir; CRI disabled) and a docker-registry on
# 127.0.0.1, all under one directory. Idempotent: what already runs is left alone.
# Prints the environment variables to export. Stop it with hack/dev-down.sh.
#
# Usage: hack/dev-up.sh [--images] [--cloud] [--help]
#   --images   also build and push the test images (hack/build-images.sh)
#   --cloud    also start a test cloud: nginx over mTLS on 127.0.0.1 (hack/cloud/, docs/cloud.md)
#              with a fleet signing key, and print a matching fleetletd config
# Environment:
#   FLEETLET_DEV_DIR        the directory (default /tmp/fleetlet-dev)
#   FLEETLET_REGISTRY_ADDR  registry listen address (default 127.0.0.1:5000)
#   FLEETLET_CLOUD_PORT     test cloud HTTPS port (default 8443)
#
# Note: containerd 1.6 always puts shim sockets under /run/containerd/s/ (named by a hash
# that includes our socket path, so they never clash) and runc keeps container state under
# /run/containerd/runc/<namespace>/ unless the client sets another runc root.
set -euo pipefail
cd "$(dirname "$0")/.."
source hack/lib/dev-env.sh

usage() { sed -n '2,/^set -euo/p' "$0" | sed -e '$d' -e 's/^# \{0,1\}//'; }
images=0
cloud=0
while (($#)); do
  case "$1" in
    --images) images=1; shift ;;
    --cloud) cloud=1; shift ;;
    -h|--help) usage; exit 0 ;;
    *) echo "dev-up: unknown argument '$1' (see --help)" >&2; exit 2 ;;
  esac
done

if [[ $(id -u) -ne 0 ]]; then
  echo "dev-up: containerd needs root" >&2
  exit 1
fi
for tool in containerd ctr runc containerd-shim-runc-v2 docker-registry curl; do
  command -v "$tool" >/dev/null || {
    echo "dev-up: '$tool' not found; run hack/install-deps.sh" >&2
    exit 1
  }
done

resolve_dev_dir
mkdir -p "$dev_dir"/{root,state,opt,registry}

# ---- containerd ----
if pid=$(pid_alive "$dev_dir/containerd.pid" "$dev_dir/config.toml"); then
  echo "dev-up: containerd already up (pid $pid, $containerd_sock)"
else
  cat >"$dev_dir/config.toml" <<TOML
# Written by hack/dev-up.sh: a private containerd for fleetlet development.
version = 2
root = "$dev_dir/root"
state = "$dev_dir/state"
disabled_plugins = [
  "io.containerd.grpc.v1.cri",
  "io.containerd.snapshotter.v1.aufs",
  "io.containerd.snapshotter.v1.btrfs",
  "io.containerd.snapshotter.v1.devmapper",
  "io.containerd.snapshotter.v1.zfs",
]

[grpc]
  address = "$containerd_sock"

[ttrpc]
  address = "$containerd_sock.ttrpc"

[debug]
  level = "info"

[plugins."io.containerd.internal.v1.opt"]
  path = "$dev_dir/opt"
TOML
  rm -f "$containerd_sock" "$containerd_sock.ttrpc"
  # Native apps and the kiosk (runtime: native) need containerd-shim-fleetlet-v1 on
  # containerd's PATH: the build's, when there is one.
  shim_path=$PATH
  [[ -x ${BUILD_DIR:-build}/runtime-shim/containerd-shim-fleetlet-v1 ]] && shim_path=$PWD/${BUILD_DIR:-build}/runtime-shim:$PATH
  PATH=$shim_path setsid containerd --config "$dev_dir/config.toml" >>"$dev_dir/containerd.log" 2>&1 </dev/null &
  pid=$!
  echo "$pid" >"$dev_dir/containerd.pid"
  for ((i = 0; ; i++)); do
    if ctr --address "$containerd_sock" version >/dev/null 2>&1; then break; fi
    if ! kill -0 "$pid" 2>/dev/null || ((i >= 200)); then
      echo "dev-up: containerd did not come up; last lines of $dev_dir/containerd.log:" >&2
      tail -n 20 "$dev_dir/containerd.log" >&2
      exit 1
    fi
    sleep 0.1
  done
  echo "dev-up: containerd up (pid $pid, $containerd_sock)"
fi

# ---- registry ----
if pid=$(pid_alive "$dev_dir/registry.pid" "$dev_dir/registry.yml"); then
  echo "dev-up: registry already up (pid $pid, http://$registry_addr)"
else
  if curl -fsS -o /dev/null "http://$registry_addr/v2/" 2>/dev/null; then
    echo "dev-up: something else already serves http://$registry_addr; set FLEETLET_REGISTRY_ADDR" >&2
    exit 1
  fi
  cat >"$dev_dir/registry.yml" <<YAML
# Written by hack/dev-up.sh: a plain-HTTP registry for fleetlet development.
version: 0.1
log:
  level: info
storage:
  filesystem:
    rootdirectory: $dev_dir/registry
  delete:
    enabled: true
http:
  addr: $registry_addr
YAML
  setsid docker-registry serve "$dev_dir/registry.yml" >>"$dev_dir/registry.log" 2>&1 </dev/null &
  pid=$!
  echo "$pid" >"$dev_dir/registry.pid"
  for ((i = 0; ; i++)); do
    code=$(curl -s -o /dev/null -w '%{http_code}' "http://$registry_addr/v2/" || true)
    [[ $code == 200 ]] && break
    if ! kill -0 "$pid" 2>/dev/null || ((i >= 100)); then
      echo "dev-up: registry did not come up; last lines of $dev_dir/registry.log:" >&2
      tail -n 20 "$dev_dir/registry.log" >&2
      exit 1
    fi
    sleep 0.1
  done
  echo "dev-up: registry up (pid $pid, http://$registry_addr)"
fi

if ((images)); then
  FLEETLET_DEV_DIR=$dev_dir hack/build-images.sh --registry "$registry_addr" --out "$dev_dir/images"
fi

if ((cloud)); then
  cloud_dir=$dev_dir/cloud
  cloud_port=${FLEETLET_CLOUD_PORT:-8443}
  hack/cloud/up.sh "$cloud_dir" "$cloud_port"
  if [[ ! -f $cloud_dir/fleet.key ]]; then
    openssl genpkey -algorithm ed25519 -out "$cloud_dir/fleet.key"
    chmod 600 "$cloud_dir/fleet.key"
    openssl pkey -in "$cloud_dir/fleet.key" -pubout -out "$cloud_dir/fleet.key.pub"
  fi
  cat >"$cloud_dir/fleetletd.yaml" <<YAML
# Written by hack/dev-up.sh --cloud: fleetletd polling the test cloud (docs/cloud.md).
node: {id: dev-node}
trust: {keys: [$cloud_dir/fleet.key.pub], allowUnsigned: local}
cloud:
  manifestUrl: https://127.0.0.1:$cloud_port/nodes/{node}.json
  interval: 5s
  statusUrl: https://127.0.0.1:$cloud_port/status/{node}/{seq}.json
  tls: {ca: $cloud_dir/ca.crt, cert: $cloud_dir/client.crt, key: $cloud_dir/client.key}
YAML
  cat <<CLOUD

# Test cloud: sign a manifest (node: dev-node) into $cloud_dir/www/nodes/dev-node.json:
#   fleetletctl manifest sign -f node.yaml --key $cloud_dir/fleet.key -o $cloud_dir/www/nodes/dev-node.json
#   fleetletd --config $cloud_dir/fleetletd.yaml --containerd $containerd_sock ...
# Status reports arrive as $cloud_dir/www/status/dev-node/<seq>.json.
CLOUD
fi

cat <<EXPORTS

# To use it:
export FLEETLET_DEV_DIR=$dev_dir
export CONTAINERD_ADDRESS=$containerd_sock
export CONTAINERD_NAMESPACE=fleetlet
export FLEETLET_REGISTRY_ADDR=$registry_addr
EXPORTS
