// Which registries are reached over plain HTTP without being named (registry_client.h).
#include <gtest/gtest.h>

#include "registry/registry_client.h"

namespace fleetlet::registry {
namespace {

TEST(LoopbackRegistryTest, LoopbackHostsArePlainHttpByDefault) {
  for (const char* registry : {"127.0.0.1:5000", "127.0.0.1", "127.1.2.3:80", "localhost:5000",
                               "localhost", "[::1]:5000", "::1"}) {
    EXPECT_TRUE(isLoopbackRegistry(registry)) << registry;
  }
}

TEST(LoopbackRegistryTest, EverythingElseIsHttps) {
  for (const char* registry :
       {"docker.io", "registry.lan:5000", "10.0.0.1:5000", "128.0.0.1:5000", "127.0.0.256:5000",
        "127.0.0:5000", "127.0.0.1.example.com", "localhost.example.com:5000", "[::2]:5000",
        "[fe80::1]:5000", "127.evil.com", "", "[::1"}) {
    EXPECT_FALSE(isLoopbackRegistry(registry)) << registry;
  }
}

}  // namespace
}  // namespace fleetlet::registry
