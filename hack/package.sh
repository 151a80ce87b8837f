#!/usr/bin/env bash
# Builds the Debian packages fleetlet_<version>_<arch>.deb and, when WebKitGTK 4.1 is installed,
# fleetlet-kiosk_<version>_<arch>.deb (packaging/CMakeLists.txt says what each holds): a Release build in ${BUILD_DIR:-build-release} without the tests, the node
# services' images from its binaries (hack/build-images.sh --system), then CPack. As root on
# Debian 12 with hack/install-deps.sh done. A cold Release build takes ~25 min on 2 cores.
# Prints each package's contents, then the kiosk's path and size if it was built, then the main
# package's path and size on the last line.
#   FLEETLET_VERSION_OVERRIDE=0.0.1 BUILD_DIR=build-old hack/package.sh   a package numbered 0.0.1
set -euo pipefail
cd "$(dirname "$0")/.."
export BUILD_DIR=${BUILD_DIR:-build-release} BUILD_TYPE=${BUILD_TYPE:-Release}
images="$PWD/$BUILD_DIR/system-images"
hack/build.sh -DFLEETLET_BUILD_TESTS=OFF -DFLEETLET_SYSTEM_IMAGES_DIR="$images" \
  -DFLEETLET_VERSION_OVERRIDE="${FLEETLET_VERSION_OVERRIDE:-}"
echo "package.sh: the node services' images"
hack/build-images.sh --system "$BUILD_DIR" --out "$images"
echo "package.sh: cpack"
rm -f "$BUILD_DIR"/packages/fleetlet_*.deb "$BUILD_DIR"/packages/fleetlet-kiosk_*.deb
(cd "$BUILD_DIR" && cpack -G DEB -B "$PWD/packages")
deb=$(ls "$BUILD_DIR"/packages/fleetlet_*.deb)
for kiosk in "$BUILD_DIR"/packages/fleetlet-kiosk_*.deb; do
  [[ -f $kiosk ]] || { echo "package.sh: no WebKitGTK 4.1, so no fleetlet-kiosk package"; continue; }
  dpkg-deb --contents "$kiosk"
  echo "package.sh: $kiosk ($(du -k "$kiosk" | cut -f1) KiB)"
done
dpkg-deb --contents "$deb"
echo "package.sh: $deb ($(du -k "$deb" | cut -f1) KiB)"
