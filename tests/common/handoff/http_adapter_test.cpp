// startHttpHandoff(): handed-over listeners served by fleetlet::http::Server, tagged per app.
#include "handoff/http_adapter.h"

#include <gtest/gtest.h>

#include "handoff/netns_listener.h"
#include "handoff/sender.h"
#include "support/temp_dir.h"
#include "test_util.h"

namespace fleetlet::handoff {
namespace {

using test_util::bodyOf;
using test_util::connectLoopback;
using test_util::eventually;
using test_util::httpGet;
using test_util::loopbackListener;

// A server whose every response body is "<server name> <listener tag>".
std::unique_ptr<http::Server> taggingServer(std::string name) {
  auto server = std::make_unique<http::Server>();
  auto handler = [name](http::Request& request) -> http::Task<http::Response> {
    co_return http::Response::text(200, name + " " + request.listenerTag());
  };
  EXPECT_TRUE(server->route("GET", "/", handler));
  return server;
}

TEST(HandoffTagTest, RoundTrips) {
  EXPECT_EQ(appTag("camera"), "app:camera");
  EXPECT_EQ(appFromTag("app:camera"), "camera");
  EXPECT_EQ(appFromTag("host"), std::nullopt);
  EXPECT_EQ(appFromTag(""), std::nullopt);
  EXPECT_EQ(appFromTag("app:"), std::nullopt);
}

// fleetletd's own listeners carry no app identity, and no app can be tagged "node".
TEST(HandoffTagTest, TheNodesOwnListenersAreTaggedNodeNotAsAnApp) {
  EXPECT_EQ(appTag(kNodeApp), kNodeTag);
  EXPECT_EQ(appFromTag(kNodeTag), std::nullopt);
  EXPECT_TRUE(validateName("app", kNodeApp));
}

TEST(HttpHandoffTest, RoutesListenersByNameAndTagsThemByApp) {
  auto dir = fleetlet::testing::TempDir::create("fleetlet-handoff");
  ASSERT_TRUE(dir);
  auto events = taggingServer("events");
  auto console = taggingServer("console");
  ASSERT_TRUE(events->start());
  ASSERT_TRUE(console->start());
  auto receiver = startHttpHandoff({.socket_path = dir->path() / "h.sock"},
                                   {{"events", events.get()}, {"console", console.get()}});
  ASSERT_TRUE(receiver) << receiver.error().message();

  HandoffSender sender;
  ASSERT_TRUE(sender.connect(dir->path() / "h.sock"));
  UniqueFd camera_events = loopbackListener();
  UniqueFd camera_console = loopbackListener();
  UniqueFd plc_events = loopbackListener();
  UniqueFd unrouted = loopbackListener();
  auto port = [](const UniqueFd& fd) { return *boundPort(fd.get()); };
  std::uint16_t camera_events_port = port(camera_events);
  std::uint16_t camera_console_port = port(camera_console);
  std::uint16_t plc_events_port = port(plc_events);
  ASSERT_TRUE(sender.add("camera", "events", std::move(camera_events)));
  ASSERT_TRUE(sender.add("camera", "console", std::move(camera_console)));
  ASSERT_TRUE(sender.add("plc", "events", std::move(plc_events)));
  ASSERT_TRUE(sender.add("plc", "blobs", std::move(unrouted)));

  auto get = [](std::uint16_t p) {
    UniqueFd client;
    if (connectLoopback(p, client) != 0) return std::string("refused");
    return bodyOf(httpGet(client));
  };
  EXPECT_EQ(get(camera_events_port), "events app:camera");
  EXPECT_EQ(get(camera_console_port), "console app:camera");
  EXPECT_EQ(get(plc_events_port), "events app:plc");
  ASSERT_TRUE(eventually([&] { return (*receiver)->stats().failed_adds == 1; }));

  ASSERT_TRUE(sender.remove("camera", "console"));
  ASSERT_TRUE(eventually([&] { return console->listeners().empty(); }));
  // Both copies are closed now (the server closes its copy just after listeners() drops it).
  EXPECT_TRUE(eventually([&] { return get(camera_console_port) == "refused"; }));
  EXPECT_EQ(get(camera_events_port), "events app:camera");
  EXPECT_EQ(events->listeners().size(), 2u);

  receiver->reset();
  events->stop();
  console->stop();
}

TEST(HttpHandoffTest, RefusesAmbiguousRoutes) {
  auto dir = fleetlet::testing::TempDir::create("fleetlet-handoff");
  ASSERT_TRUE(dir);
  http::Server server;
  auto twice = startHttpHandoff({.socket_path = dir->path() / "h.sock"},
                                {{"events", &server}, {"console", &server}});
  ASSERT_FALSE(twice);
  EXPECT_EQ(twice.error().code(), ErrorCode::kInvalidArgument);
  auto null = startHttpHandoff({.socket_path = dir->path() / "h.sock"}, {{"events", nullptr}});
  ASSERT_FALSE(null);
}

}  // namespace
}  // namespace fleetlet::handoff
