// End to end: listeners created inside two network namespaces, handed to an http::Server in
// the host namespace through HandoffSender → HandoffReceiver, and reached by clients inside
// those namespaces. Needs root (ip netns, setns, SIOCGSKNS).
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <unistd.h>

#include <cstring>
#include <string>

#include "handoff/http_adapter.h"
#include "handoff/netns_listener.h"
#include "handoff/sender.h"
#include "os/child_process.h"
#include "support/require_root.h"
#include "support/temp_dir.h"
#include "test_util.h"

namespace fleetlet::handoff {
namespace {

using test_util::bodyOf;
using test_util::connectLoopback;
using test_util::eventually;
using test_util::httpGet;

// A network namespace made with `ip netns add` and deleted (`ip netns del`) by the destructor,
// also when an assertion failed.
class ScopedNetns {
 public:
  static Result<std::unique_ptr<ScopedNetns>> create(const std::string& suffix) {
    auto ns = std::unique_ptr<ScopedNetns>(
        new ScopedNetns(fmt::format("fleetlet-handoff-{}-{}", ::getpid(), suffix)));
    FLEETLET_RETURN_IF_ERROR(ns->add());
    ns->created_ = true;
    return ns;
  }
  ~ScopedNetns() {
    if (created_) (void)ip({"netns", "del", name_});
  }
  ScopedNetns(const ScopedNetns&) = delete;
  ScopedNetns& operator=(const ScopedNetns&) = delete;

  std::filesystem::path path() const { return "/var/run/netns/" + name_; }
  // Deletes the namespace and creates a new one under the same name.
  Status recreate() {
    FLEETLET_RETURN_IF_ERROR(ip({"netns", "del", name_}));
    return add();
  }

 private:
  explicit ScopedNetns(std::string name) : name_(std::move(name)) {}
  Status add() { return ip({"netns", "add", name_}); }
  static Status ip(std::vector<std::string> args) {
    args.insert(args.begin(), "ip");
    FLEETLET_ASSIGN_OR_RETURN(CommandOutput out, runCommand(args));
    if (!out.status.success()) {
      return fail(ErrorCode::kInternal, "{} {} {}: {}", args[0], args[1], args[2], out.err);
    }
    return {};
  }

  std::string name_;
  bool created_ = false;
};

// A port that is free on the host's 127.0.0.1 and stays reserved (bound, not listening) for
// the test: a host client connecting to it is refused.
struct ReservedPort {
  UniqueFd fd;
  std::uint16_t port = 0;
};
ReservedPort reservePort() {
  ReservedPort reserved{UniqueFd(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0)), 0};
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::bind(reserved.fd.get(), reinterpret_cast<sockaddr*>(&address), sizeof(address)) == 0) {
    reserved.port = *boundPort(reserved.fd.get());
  }
  return reserved;
}

// A server answering "<name> <listener tag>".
std::unique_ptr<http::Server> taggingServer(std::string name) {
  auto server = std::make_unique<http::Server>();
  auto handler = [name](http::Request& request) -> http::Task<http::Response> {
    co_return http::Response::text(200, name + " " + request.listenerTag());
  };
  EXPECT_TRUE(server->route("GET", "/", handler));
  EXPECT_TRUE(server->start());
  return server;
}

// GET / on 127.0.0.1:port from inside `netns`: the body, or "connect: <errno>".
std::string getInNetns(const std::filesystem::path& netns, std::uint16_t port) {
  std::string result = "not run";
  auto ran = runInNetns(netns, [&] {
    UniqueFd client;
    if (int err = connectLoopback(port, client); err != 0) {
      result = fmt::format("connect: {}", std::strerror(-err));
      return;
    }
    result = bodyOf(httpGet(client));
  });
  EXPECT_TRUE(ran) << ran.error().message();
  return result;
}

class NetnsHandoffTest : public ::testing::Test {
 protected:
  void SetUp() override {
    FLEETLET_REQUIRE_ROOT();
    auto dir = fleetlet::testing::TempDir::create("fleetlet-handoff");
    ASSERT_TRUE(dir) << dir.error().message();
    dir_.emplace(std::move(*dir));
    socket_ = dir_->path() / "streams-handoff.sock";
    for (const char* suffix : {"a", "b"}) {
      auto ns = ScopedNetns::create(suffix);
      ASSERT_TRUE(ns) << ns.error().message();
      namespaces_.push_back(std::move(*ns));
    }
    port_ = reservePort();
    ASSERT_NE(port_.port, 0);
  }

  const ScopedNetns& a() const { return *namespaces_[0]; }
  const ScopedNetns& b() const { return *namespaces_[1]; }

  std::optional<fleetlet::testing::TempDir> dir_;
  std::filesystem::path socket_;
  std::vector<std::unique_ptr<ScopedNetns>> namespaces_;
  ReservedPort port_;
};

TEST_F(NetnsHandoffTest, EachNamespaceIsServedWithItsOwnAppTag) {
  auto in_a = listenInNetns(a().path(), "127.0.0.1", port_.port, 0);
  ASSERT_TRUE(in_a) << in_a.error().message();
  auto in_b = listenInNetns(b().path(), "127.0.0.1", port_.port);
  ASSERT_TRUE(in_b) << in_b.error().message();
  EXPECT_EQ(*socketNetnsInode(in_a->get()), *netnsInode(a().path()));
  EXPECT_EQ(*socketNetnsInode(in_b->get()), *netnsInode(b().path()));

  auto server = taggingServer("streams");
  auto receiver = startHttpHandoff({.socket_path = socket_}, {{"events", server.get()}});
  ASSERT_TRUE(receiver) << receiver.error().message();
  HandoffSender sender;
  ASSERT_TRUE(sender.connect(socket_));
  ASSERT_TRUE(sender.add("app-a", "events", std::move(*in_a)));
  ASSERT_TRUE(sender.add("app-b", "events", std::move(*in_b)));

  for (int i = 0; i < 3; ++i) {
    EXPECT_EQ(getInNetns(a().path(), port_.port), "streams app:app-a");
    EXPECT_EQ(getInNetns(b().path(), port_.port), "streams app:app-b");
  }
  UniqueFd host_client;
  EXPECT_EQ(connectLoopback(port_.port, host_client), -ECONNREFUSED)
      << "the host's 127.0.0.1 must not reach the apps' listeners";
  receiver->reset();
}

TEST_F(NetnsHandoffTest, ClientsOfARestartGapAreServedByTheNextInstance) {
  auto in_a = listenInNetns(a().path(), "127.0.0.1", port_.port);
  ASSERT_TRUE(in_a) << in_a.error().message();
  HandoffSender sender;
  ASSERT_TRUE(sender.add("app-a", "events", std::move(*in_a)));

  auto first = taggingServer("first");
  auto receiver = startHttpHandoff({.socket_path = socket_}, {{"events", first.get()}});
  ASSERT_TRUE(receiver) << receiver.error().message();
  ASSERT_TRUE(sender.connect(socket_));
  EXPECT_EQ(getInNetns(a().path(), port_.port), "first app:app-a");

  // The service goes down.
  receiver->reset();
  first->stop();
  first.reset();

  // A client arrives in the gap: its connect completes into the agent's copy's backlog.
  UniqueFd gap_client;
  std::string request = "GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
  ASSERT_TRUE(runInNetns(a().path(), [&] {
    ASSERT_EQ(connectLoopback(port_.port, gap_client), 0);
    ASSERT_EQ(::send(gap_client.get(), request.data(), request.size(), MSG_NOSIGNAL),
              static_cast<ssize_t>(request.size()));
  }));
  ASSERT_TRUE(gap_client);
  EXPECT_FALSE(sender.reconnectIfNeeded());

  // The next instance on the same handoff socket.
  auto second = taggingServer("second");
  receiver = startHttpHandoff({.socket_path = socket_}, {{"events", second.get()}});
  ASSERT_TRUE(receiver) << receiver.error().message();
  ASSERT_TRUE(sender.reconnectIfNeeded());

  std::string response;
  char buffer[4096];
  while (true) {
    ssize_t n = ::recv(gap_client.get(), buffer, sizeof(buffer), 0);
    if (n <= 0) break;
    response.append(buffer, static_cast<std::size_t>(n));
  }
  EXPECT_EQ(bodyOf(response), "second app:app-a");
  EXPECT_EQ(getInNetns(a().path(), port_.port), "second app:app-a");
  receiver->reset();
}

TEST_F(NetnsHandoffTest, RemoveClosesTheListener) {
  auto in_a = listenInNetns(a().path(), "127.0.0.1", port_.port);
  ASSERT_TRUE(in_a) << in_a.error().message();
  auto server = taggingServer("streams");
  auto receiver = startHttpHandoff({.socket_path = socket_}, {{"events", server.get()}});
  ASSERT_TRUE(receiver) << receiver.error().message();
  HandoffSender sender;
  ASSERT_TRUE(sender.connect(socket_));
  ASSERT_TRUE(sender.add("app-a", "events", std::move(*in_a)));
  EXPECT_EQ(getInNetns(a().path(), port_.port), "streams app:app-a");

  ASSERT_TRUE(sender.remove("app-a"));
  ASSERT_TRUE(eventually([&] { return server->listeners().empty(); }));
  // The server closes its copy just after listeners() drops it; the agent's is closed already.
  EXPECT_TRUE(eventually(
      [&] { return getInNetns(a().path(), port_.port) == "connect: Connection refused"; }));
  receiver->reset();
}

TEST_F(NetnsHandoffTest, DetectsARecreatedNamespace) {
  auto listener = listenInNetns(a().path(), "127.0.0.1", port_.port);
  ASSERT_TRUE(listener) << listener.error().message();
  auto before = netnsInode(a().path());
  ASSERT_TRUE(before);
  EXPECT_EQ(*socketNetnsInode(listener->get()), *before);

  ASSERT_TRUE(namespaces_[0]->recreate());
  auto after = netnsInode(a().path());
  ASSERT_TRUE(after);
  EXPECT_NE(*after, *before);
  EXPECT_NE(*socketNetnsInode(listener->get()), *after) << "stale listener not detected";
  // The stale listener is unreachable from the new namespace; a new one there is.
  EXPECT_EQ(getInNetns(a().path(), port_.port).rfind("connect: ", 0), 0u);
  auto renewed = listenInNetns(a().path(), "127.0.0.1", port_.port);
  ASSERT_TRUE(renewed) << renewed.error().message();
  EXPECT_EQ(*socketNetnsInode(renewed->get()), *after);
}

TEST_F(NetnsHandoffTest, ListenInNetnsReportsErrors) {
  auto missing = listenInNetns(dir_->path() / "no-such-netns", "127.0.0.1", port_.port);
  ASSERT_FALSE(missing);
  EXPECT_EQ(missing.error().code(), ErrorCode::kNotFound);
  auto bad_address = listenInNetns(a().path(), "localhost", port_.port);
  ASSERT_FALSE(bad_address);
  EXPECT_EQ(bad_address.error().code(), ErrorCode::kInvalidArgument);
  auto first = listenInNetns(a().path(), "127.0.0.1", port_.port);
  ASSERT_TRUE(first);
  auto second = listenInNetns(a().path(), "127.0.0.1", port_.port);
  ASSERT_FALSE(second);
  EXPECT_EQ(second.error().sysErrno(), EADDRINUSE) << second.error().message();
  auto v6 = listenInNetns(a().path(), "::1", 0);
  ASSERT_TRUE(v6) << v6.error().message();
  EXPECT_NE(*boundPort(v6->get()), 0);
}

// A restarted fleetletd re-creates an app's listener while the service still holds the one
// the previous fleetletd made: with reuse_port both may be bound.
TEST_F(NetnsHandoffTest, ReusePortBindsBesideAListenerAnotherHolderKeeps) {
  auto held = listenInNetns(a().path(), "127.0.0.1", port_.port, kDefaultBacklog, true);
  ASSERT_TRUE(held) << held.error().message();
  auto again = listenInNetns(a().path(), "127.0.0.1", port_.port, kDefaultBacklog, true);
  ASSERT_TRUE(again) << again.error().message();
  EXPECT_FALSE(listenInNetns(a().path(), "127.0.0.1", port_.port)) << "only when both set it";
}

}  // namespace
}  // namespace fleetlet::handoff
