#pragma once
// FLEETLET_REQUIRE_ROOT(): skips the current test (or, in SetUpTestSuite, the suite) with a
// clear message unless running as root, the one prerequisite of integration tests that a
// machine may legitimately lack. Missing binaries are not a reason to skip: the fixtures
// fail with kNotFound instead.

#include <gtest/gtest.h>
#include <unistd.h>

namespace fleetlet::testing {

inline bool isRoot() { return ::geteuid() == 0; }

}  // namespace fleetlet::testing

#define FLEETLET_REQUIRE_ROOT()                                                            \
  do {                                                                                     \
    if (!::fleetlet::testing::isRoot()) {                                                  \
      GTEST_SKIP() << "needs root (runs a private containerd and mounts); run as root to " \
                      "include this test";                                                 \
    }                                                                                      \
  } while (false)
