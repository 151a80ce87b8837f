#pragma once
// SharedImages: one loopback registry with the test images pushed, shared by every test of
// one test binary. Started on first use and stopped when the process exits, so fixtures need
// no SetUpTestSuite bookkeeping of their own.
//
// Thread-safety: get() may be called from any thread; the first call does the work.

#include "support/local_registry.h"
#include "support/test_images.h"

namespace fleetlet::testing {

class SharedImages {
 public:
  // The registry and images of this process. The options of the first call win (a binary
  // uses one set). Fails with the registry's or the image build's error, every time.
  static Result<const SharedImages*> get(TestImages::Options options = {});

  const LocalRegistry& registry() const { return registry_; }
  const TestImages& images() const { return images_; }

 private:
  SharedImages(LocalRegistry registry, TestImages images)
      : registry_(std::move(registry)), images_(std::move(images)) {}

  LocalRegistry registry_;
  TestImages images_;
};

}  // namespace fleetlet::testing
