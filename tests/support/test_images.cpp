#include "support/test_images.h"

#include <cstdlib>

#include "os/child_process.h"

namespace fleetlet::testing {
namespace {

Result<std::filesystem::path> envPath(const char* name) {
  const char* value = std::getenv(name);
  if (value == nullptr || *value == '\0') {
    return fail(ErrorCode::kFailedPrecondition,
                "{} is not set; run integration tests through ctest (fleetlet_integration_test "
                "sets it)",
                name);
  }
  return std::filesystem::path(value);
}

}  // namespace

Result<TestImages> TestImages::push(const LocalRegistry& registry, Options options) {
  return run(&registry, options);
}

Result<TestImages> TestImages::build() { return run(nullptr, Options{.include_big = true}); }

Result<TestImages> TestImages::run(const LocalRegistry* registry, Options options) {
  FLEETLET_ASSIGN_OR_RETURN(auto source_dir, envPath("FLEETLET_SOURCE_DIR"));
  FLEETLET_ASSIGN_OR_RETURN(auto binary_dir, envPath("FLEETLET_BINARY_DIR"));
  TestImages images;
  images.layouts_ = binary_dir / "test-images";

  std::vector<std::string> argv = {(source_dir / "hack" / "build-images.sh").string(), "--out",
                                   images.layouts_.string()};
  if (registry != nullptr) {
    argv.insert(argv.end(), {"--registry", registry->address()});
  } else {
    argv.push_back("--no-push");
  }
  if (!options.include_big) argv.insert(argv.end(), {"--only", "busybox"});

  FLEETLET_ASSIGN_OR_RETURN(CommandOutput out, runCommand(argv));
  if (!out.status.success()) {
    return fail(ErrorCode::kInternal, "hack/build-images.sh failed ({}):\n{}",
                out.status.describe(), out.err);
  }
  if (registry != nullptr) {
    images.busybox_ = registry->address() + "/fleetlet-test/busybox:1";
    if (options.include_big) images.big_ = registry->address() + "/fleetlet-test/big:1";
  }
  return images;
}

}  // namespace fleetlet::testing
