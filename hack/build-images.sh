#!/usr/bin/env bash
# Builds fleetlet's small test images from busybox-static with umoci (OCI layouts, no
# daemon) and pushes them with skopeo to a plain-HTTP registry (see hack/dev-up.sh).
#
# Images (repositories under fleetlet-test/, tag 1, linux/amd64):
#   busybox:1  3 layers: (1) /bin/busybox + a symlink per applet (sh, echo, sleep, cat, ...);
#              (2) /etc/passwd, /etc/group, /srv/app/hello.txt, /etc/fleetlet-test/{motd,
#              removed.txt}; (3) a whiteout of /etc/fleetlet-test/removed.txt and a new motd.
#              Config: Cmd ["/bin/cat","hello.txt"], WorkingDir /srv/app,
#              Env PATH=/usr/sbin:/usr/bin:/sbin:/bin FLEETLET_TEST_IMAGE=busybox.
#              Running it prints "hello from fleetlet-test busybox".
#   big:1      busybox layer + 3 layers of 16 MiB random (incompressible) data under /data,
#              ~50 MB in all; for pull benchmarks. Cmd ["/bin/sh","-c","du -sk /data"] (prints /data's size in KiB, ~49156).
#
# Output (--out DIR): DIR/<name>/ is the OCI layout of each image (tag "1"), and
# DIR/busybox-oci.tar an OCI image-layout tarball of busybox:1 (oci-layout, index.json,
# blobs/sha256/...) for air-gapped import tests; its index.json names the image
# "fleetlet.test/fleetlet-test/busybox:1" in org.opencontainers.image.ref.name.
# Layouts that exist are reused unless --rebuild is given or this script changed since.
# Concurrent runs on one DIR serialize on DIR/.lock. Timestamps are fixed, so the configs
# are reproducible.
#
# The node services' images (--system BUILD_DIR, nothing else is built or pushed then):
#   fleetlet/streams, fleetlet/blobs   one layer from scratch: the service binary from BUILD_DIR
#              (stripped) at /usr/bin, the shared libraries it loads (ldd) at their paths, and
#              libcurl with its libraries when the binary loads it lazily (dlopen),
#              /etc/passwd and /etc/group, an empty /tmp and /data. Entrypoint the binary,
#              Cmd ["--data-dir","/data"]. Written as DIR/fleetlet-<name>-oci.tar (image-layout
#              tarballs named fleetlet.local/fleetlet/<name>:1) for fleetletd --system-images and
#              `fleetletctl image import`.
#
# The ActyxOS SDK suite's image (--node-sdk CACHE_DIR, nothing else is built or pushed then):
#   node-sdk   one layer from scratch: the host's node binary at /usr/bin/node and the shared
#              libraries it loads (ldd), tests/stream-sidecar/node/test.js at /app/test.js and
#              CACHE_DIR/node_modules (tests/stream-sidecar/node/install-sdk.sh) at
#              /app/node_modules. Entrypoint ["/usr/bin/node","/app/test.js"]. Written as
#              DIR/node-sdk-oci.tar, named fleetlet.test/fleetlet-test/node-sdk:1.
#
# Usage: hack/build-images.sh [--registry HOST:PORT] [--out DIR] [--only NAME] [--rebuild]
#                             [--no-push] [--verify] [--system BUILD_DIR] [--node-sdk CACHE_DIR]
#   --registry HOST:PORT  push target (default $FLEETLET_REGISTRY_ADDR or 127.0.0.1:5000)
#   --out DIR             where layouts live (default ${FLEETLET_DEV_DIR:-/tmp/fleetlet-dev}/images)
#   --only NAME           build/push only this image (busybox or big)
#   --rebuild             rebuild layouts even if they exist
#   --no-push             build only
#   --system BUILD_DIR    build the node services' images from BUILD_DIR's binaries instead
#   --node-sdk CACHE_DIR  build the SDK suite's image with the SDK installed in CACHE_DIR instead
#   --verify              after pushing, pull busybox:1 into the containerd at
#                         $CONTAINERD_ADDRESS (default ${FLEETLET_DEV_DIR:-/tmp/fleetlet-dev}/containerd.sock)
#                         and run it; fails unless it prints the expected line
set -euo pipefail

usage() { sed -n '2,/^set -euo/p' "$0" | sed -e '$d' -e 's/^# \{0,1\}//'; }

dev_dir=${FLEETLET_DEV_DIR:-/tmp/fleetlet-dev}
registry=${FLEETLET_REGISTRY_ADDR:-127.0.0.1:5000}
out="$dev_dir/images"
only=""
rebuild=0
push=1
verify=0
system_build=""
node_sdk=""
while (($#)); do
  case "$1" in
    --registry) registry=${2:?--registry needs HOST:PORT}; shift 2 ;;
    --out) out=${2:?--out needs DIR}; shift 2 ;;
    --only) only=${2:?--only needs NAME}; shift 2 ;;
    --rebuild) rebuild=1; shift ;;
    --no-push) push=0; shift ;;
    --verify) verify=1; shift ;;
    --system) system_build=${2:?--system needs the build directory}; shift 2 ;;
    --node-sdk) node_sdk=${2:?--node-sdk needs the SDK cache directory}; shift 2 ;;
    -h|--help) usage; exit 0 ;;
    *) echo "build-images: unknown argument '$1' (see --help)" >&2; exit 2 ;;
  esac
done

readonly all_images=(busybox big)
images=("${all_images[@]}")
if [[ -n $only ]]; then
  case " ${all_images[*]} " in
    *" $only "*) images=("$only") ;;
    *) echo "build-images: unknown image '$only' (known: ${all_images[*]})" >&2; exit 2 ;;
  esac
fi

busybox_bin=${FLEETLET_BUSYBOX:-/bin/busybox}
for tool in umoci skopeo tar jq flock; do
  command -v "$tool" >/dev/null || {
    echo "build-images: '$tool' not found; run hack/install-deps.sh" >&2
    exit 1
  }
done
[[ -x $busybox_bin ]] || {
  echo "build-images: $busybox_bin not found; install busybox-static" >&2
  exit 1
}

readonly tag=1
readonly created=2024-01-01T00:00:00Z
readonly tar_name=fleetlet.test/fleetlet-test/busybox:1
readonly expected_output="hello from fleetlet-test busybox"

log() { echo "build-images: $*" >&2; }

# Layouts record the hash of the script that built them; a changed script rebuilds them.
script_hash=$(sha256sum "$0" | cut -d' ' -f1)

mkdir -p "$out"
out=$(cd "$out" && pwd)
exec 9>"$out/.lock"
flock 9

work=$(mktemp -d "${TMPDIR:-/tmp}/fleetlet-images.XXXXXX")
trap 'rm -rf "$work"' EXIT

# make_layer SRC_DIR TAR: an uncompressed, reproducible layer tarball of SRC_DIR's contents.
make_layer() {
  local src=$1 tarball=$2
  local entries
  mapfile -t entries < <(cd "$src" && ls -A)
  tar -C "$src" --format=gnu --sort=name --numeric-owner --owner=0 --group=0 \
    --mtime=@1704067200 -cf "$tarball" "${entries[@]}"
}

# add_layer LAYOUT SRC_DIR COMMENT
add_layer() {
  local layout=$1 src=$2 comment=$3
  local tarball
  tarball="$work/layer-$RANDOM$RANDOM.tar"
  make_layer "$src" "$tarball"
  umoci raw add-layer --image "$layout:$tag" --history.created "$created" \
    --history.created_by "hack/build-images.sh" --history.comment "$comment" "$tarball"
  rm -f "$tarball"
}

# new_layout LAYOUT: an empty linux/amd64 image tagged $tag.
new_layout() {
  local layout=$1
  umoci init --layout "$layout"
  umoci new --image "$layout:$tag"
}

# stage_busybox DIR: /bin/busybox plus one absolute symlink per applet.
stage_busybox() {
  local root=$1 applet
  mkdir -p "$root/bin" "$root/sbin" "$root/usr/bin" "$root/usr/sbin" "$root/tmp" "$root/root" \
    "$root/proc" "$root/sys" "$root/dev" "$root/etc"
  chmod 1777 "$root/tmp"
  chmod 700 "$root/root"
  install -m 0755 "$busybox_bin" "$root/bin/busybox"
  while read -r applet; do
    [[ -z $applet || -e $root/$applet || -L $root/$applet ]] && continue
    mkdir -p "$root/$(dirname "$applet")"
    ln -s /bin/busybox "$root/$applet"
  done < <("$busybox_bin" --list-full)
  [[ -L $root/bin/sh ]] || ln -s /bin/busybox "$root/bin/sh"
}

build_busybox() {
  local layout=$1 stage="$work/busybox"
  new_layout "$layout"

  stage_busybox "$stage/l1"
  add_layer "$layout" "$stage/l1" "busybox and applet symlinks"

  local l2="$stage/l2"
  mkdir -p "$l2/etc/fleetlet-test" "$l2/srv/app"
  printf 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n' \
    >"$l2/etc/passwd"
  printf 'root:x:0:\nnogroup:x:65534:\n' >"$l2/etc/group"
  echo "$expected_output" >"$l2/srv/app/hello.txt"
  echo "motd from layer 2" >"$l2/etc/fleetlet-test/motd"
  echo "this file is deleted by layer 3" >"$l2/etc/fleetlet-test/removed.txt"
  add_layer "$layout" "$l2" "test files"

  local l3="$stage/l3"
  mkdir -p "$l3/etc/fleetlet-test"
  : >"$l3/etc/fleetlet-test/.wh.removed.txt"
  echo "motd from layer 3" >"$l3/etc/fleetlet-test/motd"
  add_layer "$layout" "$l3" "whiteout removed.txt, overwrite motd"

  umoci config --image "$layout:$tag" --no-history --created "$created" \
    --architecture amd64 --os linux \
    --config.cmd /bin/cat --config.cmd hello.txt \
    --config.workingdir /srv/app \
    --config.env PATH=/usr/sbin:/usr/bin:/sbin:/bin --config.env FLEETLET_TEST_IMAGE=busybox \
    --config.label org.opencontainers.image.title=fleetlet-test/busybox
}

build_big() {
  local layout=$1 stage="$work/big" i
  new_layout "$layout"
  stage_busybox "$stage/l0"
  add_layer "$layout" "$stage/l0" "busybox and applet symlinks"
  for i in 1 2 3; do
    mkdir -p "$stage/l$i/data"
    head -c $((16 * 1024 * 1024)) /dev/urandom >"$stage/l$i/data/random-$i.bin"
    add_layer "$layout" "$stage/l$i" "16 MiB of random data"
    rm -rf "$stage/l$i"
  done
  umoci config --image "$layout:$tag" --no-history --created "$created" \
    --architecture amd64 --os linux \
    --config.cmd /bin/sh --config.cmd -c --config.cmd "du -sk /data" \
    --config.workingdir / \
    --config.env PATH=/usr/sbin:/usr/bin:/sbin:/bin --config.env FLEETLET_TEST_IMAGE=big \
    --config.label org.opencontainers.image.title=fleetlet-test/big
}

# write_oci_tar LAYOUT TAR [NAME]: an image-layout tarball holding only $tag, named NAME
# (default $tar_name).
write_oci_tar() {
  local layout=$1 tarball=$2 name=${3:-$tar_name} copy="$work/oci-tar"
  rm -rf "$copy"
  cp -a "$layout" "$copy"
  jq --arg tag "$tag" --arg name "$name" '
    .manifests |= map(select(.annotations["org.opencontainers.image.ref.name"] == $tag)
                      | .annotations["org.opencontainers.image.ref.name"] = $name)' \
    "$layout/index.json" >"$copy/index.json"
  tar -C "$copy" --format=gnu --sort=name --numeric-owner --owner=0 --group=0 \
    -cf "$tarball.tmp" oci-layout index.json blobs
  mv "$tarball.tmp" "$tarball"
  rm -rf "$copy"
}

# copy_libs STAGE FILE: the shared libraries FILE loads (ldd), at their paths in STAGE.
copy_libs() {
  local stage=$1 file=$2 lib
  while read -r lib; do
    mkdir -p "$stage$(dirname "$lib")"
    cp -L "$lib" "$stage$lib"
  done < <(ldd "$file" | grep -o '/[^ ]*' | sort -u)
}

# stage_binary STAGE BINARY DEST: BINARY (stripped) at DEST in STAGE, with the libraries it loads.
stage_binary() {
  local stage=$1 binary=$2 dest=$3 lib
  mkdir -p "$stage$(dirname "$dest")"
  strip --strip-unneeded -o "$stage$dest" "$binary"
  copy_libs "$stage" "$binary"
}

# build_node_sdk LAYOUT CACHE_DIR: node, the SDK suite and the SDK, from scratch.
build_node_sdk() {
  local layout=$1 cache=$2 stage="$work/node-sdk" node
  node=$(command -v node) || { log "node is not installed"; exit 1; }
  node=$(readlink -f "$node")
  [[ -f $cache/node_modules/@actyx/os-sdk/package.json ]] ||
    { log "$cache/node_modules has no @actyx/os-sdk: run tests/stream-sidecar/node/install-sdk.sh"; exit 1; }
  rm -rf "$stage"
  mkdir -p "$stage/etc" "$stage/tmp" "$stage/app"
  chmod 1777 "$stage/tmp"
  stage_binary "$stage" "$node" /usr/bin/node
  cp "$(dirname "$0")/../tests/stream-sidecar/node/test.js" "$stage/app/test.js"
  cp -r "$cache/node_modules" "$stage/app/node_modules"
  printf 'root:x:0:0:root:/:/sbin/nologin\n' >"$stage/etc/passwd"
  printf 'root:x:0:\n' >"$stage/etc/group"
  new_layout "$layout"
  add_layer "$layout" "$stage" "node, the ActyxOS SDK and its test suite"
  umoci config --image "$layout:$tag" --no-history --created "$created" \
    --architecture amd64 --os linux \
    --config.entrypoint /usr/bin/node --config.cmd /app/test.js \
    --config.env NODE_PATH=/app/node_modules --config.workingdir /app \
    --config.label org.opencontainers.image.title=fleetlet-test/node-sdk
}

# build_service LAYOUT BINARY: the binary and the libraries it loads, from scratch.
build_service() {
  local layout=$1 binary=$2 name stage="$work/service" lib
  name=$(basename "$binary")
  rm -rf "$stage"
  mkdir -p "$stage/usr/bin" "$stage/etc" "$stage/tmp" "$stage/data"
  chmod 1777 "$stage/tmp"
  strip --strip-unneeded -o "$stage/usr/bin/$name" "$binary"
  copy_libs "$stage" "$binary"
  # libcurl is loaded on first use with dlopen (common/src/http/lazy_curl.cpp), so ldd does not
  # list it: fleetlet-blobs needs it to publish its metadata events.
  if grep -qa 'libcurl\.so\.4' "$binary"; then
    lib=$(ldconfig -p | awk '/libcurl\.so\.4 .*x86-64/ && !found {found = 1; print $NF}')  # no early exit: SIGPIPE under pipefail
    [[ -n $lib ]] || { log "$name loads libcurl.so.4, which is not installed"; exit 1; }
    mkdir -p "$stage$(dirname "$lib")"
    cp -L "$lib" "$stage$lib"
    copy_libs "$stage" "$lib"
  fi
  printf 'root:x:0:0:root:/:/sbin/nologin\nfleetlet:x:65532:65532:fleetlet:/data:/sbin/nologin\n' \
    >"$stage/etc/passwd"
  printf 'root:x:0:\nfleetlet:x:65532:\n' >"$stage/etc/group"
  new_layout "$layout"
  add_layer "$layout" "$stage" "$name and its shared libraries"
  umoci config --image "$layout:$tag" --no-history --created "$created" \
    --architecture amd64 --os linux \
    --config.entrypoint "/usr/bin/$name" --config.cmd --data-dir --config.cmd /data \
    --config.workingdir /data \
    --config.label "org.opencontainers.image.title=fleetlet/${name#fleetlet-}"
}

if [[ -n $node_sdk ]]; then
  layout="$work/layout-node-sdk"
  build_node_sdk "$layout" "$node_sdk"
  umoci gc --layout "$layout"
  write_oci_tar "$layout" "$out/node-sdk-oci.tar" "fleetlet.test/fleetlet-test/node-sdk:$tag"
  log "node-sdk: wrote $out/node-sdk-oci.tar ($(du -h "$out/node-sdk-oci.tar" | cut -f1))"
  exit 0
fi

if [[ -n $system_build ]]; then
  for service in streams:stream-sidecar blobs:blob-sidecar; do
    name=${service%%:*}
    binary="$system_build/${service#*:}/fleetlet-$name"
    [[ -x $binary ]] || { log "$binary not found: build it first (hack/build.sh)"; exit 1; }
    layout="$work/layout-$name"
    log "fleetlet/$name: building from $binary"
    build_service "$layout" "$binary"
    umoci gc --layout "$layout"
    write_oci_tar "$layout" "$out/fleetlet-$name-oci.tar" "fleetlet.local/fleetlet/$name:$tag"
    log "fleetlet/$name: wrote $out/fleetlet-$name-oci.tar ($(du -h "$out/fleetlet-$name-oci.tar" | cut -f1))"
  done
  exit 0
fi

for name in "${images[@]}"; do
  layout="$out/$name"
  if [[ $rebuild -eq 0 && -f $layout/index.json ]] &&
    [[ $(cat "$layout/.built-by" 2>/dev/null) == "$script_hash" ]] &&
    jq -e --arg tag "$tag" \
      '.manifests[] | select(.annotations["org.opencontainers.image.ref.name"] == $tag)' \
      "$layout/index.json" >/dev/null; then
    log "$name: reusing $layout"
  else
    log "$name: building $layout"
    tmp_layout="$work/layout-$name"
    "build_$name" "$tmp_layout"
    umoci gc --layout "$tmp_layout"
    echo "$script_hash" >"$tmp_layout/.built-by"
    rm -rf "$layout"
    mv "$tmp_layout" "$layout"
    [[ $name == busybox ]] && rm -f "$out/busybox-oci.tar"
  fi
  if [[ $name == busybox && ! -f $out/busybox-oci.tar ]]; then
    write_oci_tar "$layout" "$out/busybox-oci.tar"
    log "busybox: wrote $out/busybox-oci.tar"
  fi
  if ((push)); then
    ref="$registry/fleetlet-test/$name:$tag"
    log "$name: pushing $ref"
    skopeo --insecure-policy copy --quiet --retry-times 3 --dest-tls-verify=false \
      "oci:$layout:$tag" "docker://$ref"
    echo "$ref"
  fi
done

if ((verify)); then
  address=${CONTAINERD_ADDRESS:-$dev_dir/containerd.sock}
  ref="$registry/fleetlet-test/busybox:$tag"
  ctr_cmd=(ctr --address "$address" -n fleetlet-verify)
  log "verify: pulling $ref into $address"
  "${ctr_cmd[@]}" images pull --plain-http "$ref" >/dev/null
  id="verify-$$"
  output=$("${ctr_cmd[@]}" run --rm "$ref" "$id")
  if [[ $output != "$expected_output" ]]; then
    log "verify: expected '$expected_output', got '$output'"
    exit 1
  fi
  output=$("${ctr_cmd[@]}" run --rm "$ref" "$id" /bin/sh -c \
    'cat /etc/fleetlet-test/motd; test ! -e /etc/fleetlet-test/removed.txt && echo whiteout-ok')
  if [[ $output != $'motd from layer 3\nwhiteout-ok' ]]; then
    log "verify: layer 3 not applied as expected, got '$output'"
    exit 1
  fi
  "${ctr_cmd[@]}" images rm "$ref" >/dev/null
  log "verify: ok ($ref runs and prints '$expected_output')"
fi
