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

TEST(LoopbackRegistryTest, NamedRegistriesOverrideTheDefault) {
  const std::set<std::string> plain{"registry.lan:5000"};
  const std::set<std::string> https{"127.0.0.1:5443"};
  EXPECT_TRUE(usesPlainHttp("127.0.0.1:5000", plain, https));      // loopback: plain by default
  EXPECT_FALSE(usesPlainHttp("127.0.0.1:5443", plain, https));     // loopback named HTTPS
  EXPECT_TRUE(usesPlainHttp("registry.lan:5000", plain, https));   // named plain HTTP
  EXPECT_FALSE(usesPlainHttp("registry.lan:5001", plain, https));  // everything else
  EXPECT_FALSE(usesPlainHttp("docker.io", {}, {}));
}

}  // namespace
}  // namespace fleetlet::registry
