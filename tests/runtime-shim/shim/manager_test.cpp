#include "shim/manager.h"

#include <gtest/gtest.h>

namespace fleetlet::shim {
namespace {

TEST(ShimManagerTest, ParsesContainerdsStartAndDeleteCommandLines) {
  auto start =
      parseFlags({"-namespace", "fleetlet", "-address", "/run/containerd/containerd.sock",
                  "-publish-binary", "/usr/bin/containerd", "-id", "app", "-debug", "start"});
  ASSERT_TRUE(start) << start.error().message();
  EXPECT_EQ(start->ns, "fleetlet");
  EXPECT_EQ(start->id, "app");
  EXPECT_TRUE(start->debug);
  EXPECT_EQ(start->action, "start");
  auto del = parseFlags({"--namespace=fleetlet", "-id=app", "-bundle", "/b", "delete"});
  ASSERT_TRUE(del) << del.error().message();
  EXPECT_EQ(del->bundle, "/b");
  EXPECT_EQ(del->action, "delete");
  auto serve = parseFlags({"-namespace", "n", "-id", "x"});
  ASSERT_TRUE(serve);
  EXPECT_EQ(serve->action, "");
}

TEST(ShimManagerTest, BadCommandLinesNameTheProblem) {
  struct Case {
    std::vector<std::string> args;
    const char* names;
  } cases[] = {
      {{"-namespace", "n", "-id", "x", "stop"}, "stop"},
      {{"-namespace", "n", "-id", "x", "-color", "red"}, "-color"},
      {{"-namespace", "n", "-id"}, "-id needs a value"},
      {{"-id", "x", "start"}, "-namespace"},
      {{"-namespace", "n", "-id", "../x", "start"}, "'/'"},
  };
  for (const auto& c : cases) {
    auto flags = parseFlags(c.args);
    ASSERT_FALSE(flags);
    EXPECT_NE(flags.error().message().find(c.names), std::string::npos) << flags.error().message();
  }
}

TEST(ShimManagerTest, SocketLivesBesideContainerdsAndFitsSunPath) {
  auto path = socketPathFor("/run/containerd/containerd.sock", "fleetlet", "app");
  EXPECT_EQ(path.parent_path(), "/run/containerd/s");
  EXPECT_EQ(path, socketPathFor("unix:///run/containerd/containerd.sock", "fleetlet", "app"));
  EXPECT_NE(path, socketPathFor("/run/containerd/containerd.sock", "fleetlet", "app2"));
  EXPECT_NE(path, socketPathFor("/tmp/other/containerd.sock", "fleetlet", "app"));
  std::string deep = "/" + std::string(90, 'd') + "/containerd.sock";
  auto fallback = socketPathFor(deep, "fleetlet", "app");
  EXPECT_EQ(fallback.parent_path(), "/run/fleetlet-shim");
  EXPECT_LT(fallback.string().size(), 108u);
}

}  // namespace
}  // namespace fleetlet::shim
