#!/usr/bin/env bash
# The Debian package (packaging/CMakeLists.txt; $FLEETLET_PACKAGE_DEB, else CPack of this build
# tree): apt resolves its dependencies, lintian finds no error in it, it unpacks into a
# throwaway root with the files where containerd, CNI and systemd look for them, the installed
# fleetletd accepts the installed default config, and systemd-analyze verifies the unit. When
# this build has the kiosk (WebKitGTK 4.1), the fleetlet-kiosk package beside it gets the same
# checks. Prints the packages' sizes and contents.
# Usage: package_test.sh BINARY_DIR
set -uo pipefail
binary_dir=$1
work=$(mktemp -d /tmp/fleetlet-package-test.XXXXXX)
trap 'rm -rf "$work"' EXIT
failures=0 passed=0
check() {  # check NAME COMMAND...: one assertion
  local name=$1
  shift
  if "$@" >"$work/check.log" 2>&1; then
    passed=$((passed + 1))
    echo "ok: $name"
  else
    failures=$((failures + 1))
    echo "FAIL: $name"
    sed 's/^/    /' "$work/check.log"
  fi
}
lintian_check() {  # lintian_check DEB: lintian's report on DEB, and a check that it has no error
  local deb=$1 name status
  name=$(dpkg-deb --field "$1" Package)
  lintian --fail-on error --tag-display-limit 0 "$deb" >"$work/lintian-$name.log" 2>&1
  status=$?
  echo "lintian $name (exit $status):"
  sed 's/^/  /' "$work/lintian-$name.log"
  check "lintian reports no error in $name" bash -c "
    [[ $status -eq 0 ]] && ! grep -q '^E:' '$work/lintian-$name.log'"
}

# The package under test: $FLEETLET_PACKAGE_DEB (hack/test.sh builds it Release with
# hack/package.sh, as a device gets it), else CPack of this build tree into the work dir (the
# build's own packages/ stays untouched).
if [[ -n ${FLEETLET_PACKAGE_DEB:-} ]]; then
  deb=$FLEETLET_PACKAGE_DEB
  [[ -f $deb ]] || { echo "FLEETLET_PACKAGE_DEB=$deb: no such file"; echo "0 passed, 1 failed"; exit 1; }
else
  echo "FLEETLET_PACKAGE_DEB is not set: packing this build tree ($binary_dir)"
  if ! cpack -G DEB --config "$binary_dir/CPackConfig.cmake" -B "$work/out" >"$work/cpack.log" 2>&1; then
    cat "$work/cpack.log"
    echo "0 passed, 1 failed"
    exit 1
  fi
  deb=$(ls "$work"/out/fleetlet_*.deb 2>/dev/null)
  if [[ -z $deb ]]; then
    cat "$work/cpack.log"
    echo "0 passed, 1 failed (cpack made no fleetlet_*.deb)"
    exit 1
  fi
fi
echo "package: $(basename "$deb"), $(du -k "$deb" | cut -f1) KiB"
dpkg-deb --contents "$deb"

check "file name is fleetlet_<version>_<arch>.deb" \
  bash -c "[[ $(basename "$deb") =~ ^fleetlet_[0-9][^_]*_$(dpkg --print-architecture)\.deb$ ]]"
check "depends on containerd, runc, CNI plugins and nftables" bash -c "
  deps=\$(dpkg-deb --field '$deb' Depends)
  for d in containerd runc containernetworking-plugins nftables; do
    [[ \$deps == *\"\$d\"* ]] || { echo \"missing \$d in: \$deps\"; exit 1; }
  done"
check "config and conflist are conffiles" bash -c "
  dpkg-deb --ctrl-tarfile '$deb' | tar -xO ./conffiles | tee /dev/stderr |
    grep -qx /etc/fleetlet/config.yaml &&
  dpkg-deb --ctrl-tarfile '$deb' | tar -xO ./conffiles | grep -qx /etc/fleetlet/cni/10-fleetlet.conflist"
# apt resolves the package's dependencies on this Debian 12 as `apt install ./fleetlet_*.deb`
# would (simulated: installing it would start a system fleetletd beside the tests).
check "apt can install it (simulated)" bash -c "
  apt-get install --simulate --no-download '$(realpath "$deb")' | tee /dev/stderr | grep -q '^Inst fleetlet '"
lintian_check "$deb"

root="$work/root"
dpkg-deb -x "$deb" "$root"
for path in usr/bin/fleetletd usr/bin/fleetletctl usr/bin/fleetlet-streams usr/bin/fleetlet-blobs \
            usr/bin/containerd-shim-fleetlet-v1 usr/libexec/fleetlet/fleetlet-logger \
            usr/libexec/fleetlet/cni/fleetlet-firewall usr/share/fleetlet/system/node-services.yaml \
            etc/fleetlet/config.yaml etc/fleetlet/cni/10-fleetlet.conflist \
            lib/systemd/system/fleetletd.service usr/share/bash-completion/completions/fleetletctl \
            usr/share/zsh/vendor-completions/_fleetletctl usr/share/doc/fleetlet/copyright; do
  check "installs /$path" test -s "$root/$path"
done
check "installs /var/lib/fleetlet and /usr/share/fleetlet/images" \
  test -d "$root/var/lib/fleetlet" -a -d "$root/usr/share/fleetlet/images"
if [[ -n ${FLEETLET_PACKAGE_DEB:-} ]]; then  # hack/package.sh ships the node services' images
  for image in fleetlet-streams fleetlet-blobs; do
    check "installs the $image image" test -s "$root/usr/share/fleetlet/images/$image-oci.tar"
  done
fi
version=$(dpkg-deb --field "$deb" Version)
check "installed binaries print the package version" bash -c "
  for b in usr/bin/fleetletd usr/bin/fleetletctl usr/libexec/fleetlet/fleetlet-logger \
           usr/bin/containerd-shim-fleetlet-v1 usr/libexec/fleetlet/cni/fleetlet-firewall; do
    out=\$('$root'/\$b --version) || exit 1
    [[ \$out == \"\$(basename \$b) $version\" ]] || { echo \"\$b: \$out\"; exit 1; }
  done"
# containerd finds io.containerd.fleetlet.v1 (fleetletd's default shim for container apps and its
# only one for native apps) on its PATH or beside its own binary: /usr/bin for Debian's containerd.
check "installs the shim beside containerd" bash -c "
  [[ -x '$root'\$(dirname \$(command -v containerd))/containerd-shim-fleetlet-v1 ]]"
check "installed fleetletd runs container apps on the fleetlet shim by default" bash -c "
  '$root/usr/bin/fleetletd' --help | grep -- '--container-shim' | grep -q 'fleetlet]$'"
# The kiosk package, beside the main one with the same version.
arch=$(dpkg --print-architecture)
kiosk_deb="$(dirname "$deb")/fleetlet-kiosk_${version}_${arch}.deb"
if [[ -x $binary_dir/webview-host/fleetlet-webview ]]; then
  check "fleetlet-kiosk_<version>_<arch>.deb is built beside it" test -f "$kiosk_deb"
fi
if [[ -f $kiosk_deb ]]; then
  echo "package: $(basename "$kiosk_deb"), $(du -k "$kiosk_deb" | cut -f1) KiB"
  dpkg-deb --contents "$kiosk_deb"
  check "kiosk depends on this very fleetlet and on WebKitGTK 4.1" bash -c "
    deps=\$(dpkg-deb --field '$kiosk_deb' Depends); echo \"\$deps\"
    [[ \$deps == *'fleetlet (= $version)'* && \$deps == *libwebkit2gtk-4.1-0* ]]"
  check "fleetlet does not depend on WebKit (a headless device stays small)" bash -c "
    ! dpkg-deb --field '$deb' Depends | grep -i webkit"
  check "apt can install fleetlet and fleetlet-kiosk together (simulated)" bash -c "
    apt-get install --simulate --no-download '$(realpath "$deb")' '$(realpath "$kiosk_deb")' |
      tee /dev/stderr | grep -q '^Inst fleetlet-kiosk '"
  lintian_check "$kiosk_deb"
  dpkg-deb -x "$kiosk_deb" "$root"
  # /usr/libexec/fleetlet/fleetlet-webview is where the packaged fleetletd looks for the kiosk
  # (webview::defaultKioskBinary), the extension where the kiosk looks for it.
  for path in usr/libexec/fleetlet/fleetlet-webview \
              usr/lib/fleetlet/webview-extensions/libfleetlet-webview-memory.so \
              usr/share/doc/fleetlet-kiosk/copyright; do
    check "fleetlet-kiosk installs /$path" test -s "$root/$path"
  done
  check "installed kiosk prints the package version" bash -c "
    out=\$('$root/usr/libexec/fleetlet/fleetlet-webview' --version) &&
    [[ \$out == 'fleetlet-webview $version' ]] || { echo \"\$out\"; exit 1; }"
  check "every library the kiosk and its extension need is installed" bash -c "
    out=\$(ldd '$root/usr/libexec/fleetlet/fleetlet-webview' \
               '$root/usr/lib/fleetlet/webview-extensions/libfleetlet-webview-memory.so') || exit 1
    echo \"\$out\"; [[ \$out != *'not found'* ]]"
fi
check "installed fleetletd accepts the installed config" \
  "$root/usr/bin/fleetletd" --check-config --config "$root/etc/fleetlet/config.yaml"
check "installed CNI conflist is the built-in network" bash -c "
  jq -e '.name == \"fleetlet\" and .plugins[0].bridge == \"fleetlet0\" and
         (.plugins | map(.type) == [\"bridge\", \"portmap\", \"fleetlet-firewall\"])' \
     '$root/etc/fleetlet/cni/10-fleetlet.conflist'"
check "unit: after containerd, Restart=always, KillMode=process" bash -c "
  u='$root/lib/systemd/system/fleetletd.service'
  grep -qx 'After=containerd.service network-online.target' \$u &&
  grep -qx 'Restart=always' \$u && grep -qx 'KillMode=process' \$u"
# verify resolves ExecStart= inside the root and loads the units the unit names from there: the
# root gets this machine's units beside the package's (containerd.service among them). Any
# message (a bad setting is only a warning) fails the check.
cp -rn /lib/systemd/system/. "$root/lib/systemd/system/"
check "systemd-analyze verify passes" bash -c "
  out=\$(systemd-analyze verify --root='$root' /lib/systemd/system/fleetletd.service 2>&1); rc=\$?
  echo \"\$out\"; [[ \$rc -eq 0 && -z \$out ]]"

echo "$passed passed, $failures failed"
[[ $failures -eq 0 ]]
