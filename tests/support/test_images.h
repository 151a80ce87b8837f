#pragma once
// TestImages: fleetlet's test images (see hack/build-images.sh), built once per build tree
// and pushed into a LocalRegistry.
//
//   busybox:1  3 layers (busybox + applets; files; a whiteout and an overwrite), linux/amd64,
//              Cmd ["/bin/cat","hello.txt"] in WorkingDir /srv/app: running it prints
//              kBusyboxOutput. /etc/fleetlet-test/motd reads "motd from layer 3";
//              /etc/fleetlet-test/removed.txt does not exist (whited out).
//   big:1      ~50 MB: busybox + 3 layers of 16 MiB random data under /data.
//
// The OCI layouts are cached under $FLEETLET_BINARY_DIR/test-images (hack/build-images.sh
// --out), so only the first test of a build tree pays for the build; concurrent test
// binaries serialize on the script's lock. Needs FLEETLET_SOURCE_DIR and
// FLEETLET_BINARY_DIR, which fleetlet_integration_test() sets.

#include <filesystem>
#include <string>
#include <string_view>

#include "error/error.h"
#include "support/local_registry.h"

namespace fleetlet::testing {

class TestImages {
 public:
  // What running busybox:1 with its default Cmd prints.
  static constexpr std::string_view kBusyboxOutput = "hello from fleetlet-test busybox\n";
  // The image name recorded in busyboxOciTar()'s index.json (ref.name annotation); what
  // `ctr images import` calls the image.
  static constexpr std::string_view kBusyboxTarRef = "fleetlet.test/fleetlet-test/busybox:1";

  struct Options {
    bool include_big = true;  // big:1 costs ~50 MB of registry storage per push.
  };

  // Builds the layouts if the cache lacks them and pushes them into `registry`. Fails with
  // the script's stderr when hack/build-images.sh fails, kFailedPrecondition when the
  // FLEETLET_* variables are missing.
  static Result<TestImages> push(const LocalRegistry& registry, Options options);
  static Result<TestImages> push(const LocalRegistry& registry) { return push(registry, {}); }
  // Builds (or finds) the layouts and the OCI tar without pushing; refs are empty.
  static Result<TestImages> build();

  // "127.0.0.1:PORT/fleetlet-test/busybox:1".
  const std::string& busybox() const { return busybox_; }
  // "127.0.0.1:PORT/fleetlet-test/big:1", or empty when not pushed.
  const std::string& big() const { return big_; }
  // OCI image-layout tarball of busybox:1 (oci-layout, index.json, blobs/sha256/...).
  std::filesystem::path busyboxOciTar() const { return layouts_ / "busybox-oci.tar"; }
  // The OCI layout directory of an image ("busybox" or "big"), tag "1".
  std::filesystem::path layout(std::string_view name) const { return layouts_ / name; }

 private:
  TestImages() = default;
  static Result<TestImages> run(const LocalRegistry* registry, Options options);

  std::filesystem::path layouts_;
  std::string busybox_;
  std::string big_;
};

}  // namespace fleetlet::testing
