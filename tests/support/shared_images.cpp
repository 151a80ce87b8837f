#include "support/shared_images.h"

#include <memory>
#include <mutex>

namespace fleetlet::testing {

Result<const SharedImages*> SharedImages::get(TestImages::Options options) {
  static std::mutex mu;
  static std::unique_ptr<SharedImages> shared;
  static std::optional<Error> failure;
  std::lock_guard lock(mu);
  if (shared) return shared.get();
  if (failure) return std::unexpected(*failure);
  auto registry = LocalRegistry::start();
  if (!registry) {
    failure = registry.error();
    return std::unexpected(*failure);
  }
  auto images = TestImages::push(*registry, options);
  if (!images) {
    failure = images.error();
    return std::unexpected(*failure);
  }
  shared.reset(new SharedImages(std::move(*registry), std::move(*images)));
  return shared.get();
}

}  // namespace fleetlet::testing
