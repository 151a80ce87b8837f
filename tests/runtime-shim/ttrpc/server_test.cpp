// The ttrpc server and client over a real unix socket.
#include "ttrpc/server.h"

#include <gtest/gtest.h>
#include <sys/socket.h>

#include <future>
#include <latch>
#include <thread>

#include "support/temp_dir.h"
#include "ttrpc/client.h"
#include "ttrpc/socket.h"
#include "ttrpc/ttrpc.pb.h"

namespace fleetlet::ttrpc {
namespace {

using testing::TempDir;

class TtrpcServerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto dir = TempDir::create("ttrpc-test");
    ASSERT_TRUE(dir) << dir.error().message();
    dir_ = std::make_unique<TempDir>(std::move(*dir));
    socket_ = (dir_->path() / "s.sock").string();
  }

  // Registers the test methods, then serves on a thread of its own.
  void startServer() {
    auto server = Server::listen(socket_);
    ASSERT_TRUE(server) << server.error().message();
    server_ = std::move(*server);
    server_->registerMethod("test.Echo", "Echo", [](const RequestContext& ctx, std::string_view p) {
      return RpcResult<std::string>(std::string(p) + "|" + std::string(ctx.get("ns")));
    });
    server_->registerMethod("test.Echo", "Fail", [](const RequestContext&, std::string_view) {
      return RpcResult<std::string>(std::unexpected(RpcStatus{StatusCode::kNotFound, "no such"}));
    });
    server_->registerMethod("test.Echo", "Block", [this](const RequestContext&, std::string_view) {
      release_.wait();
      return RpcResult<std::string>("released");
    });
    server_->registerMethod("test.Echo", "Release",
                            [this](const RequestContext&, std::string_view) {
                              release_.count_down();
                              return RpcResult<std::string>("ok");
                            });
    serving_ = std::thread([this] { server_->serve(); });
  }

  void TearDown() override {
    if (server_) server_->shutdown();
    if (serving_.joinable()) serving_.join();
    server_.reset();
  }

  std::unique_ptr<Client> connect() {
    auto client = Client::connect(socket_);
    EXPECT_TRUE(client) << client.error().message();
    return client ? std::move(*client) : nullptr;
  }

  // Sends raw bytes, then reads one response frame.
  static std::optional<Frame> rawExchange(int fd, std::string_view bytes) {
    if (!writeAll(fd, bytes)) return std::nullopt;
    FrameDecoder decoder;
    char buf[4096];
    for (;;) {
      if (auto f = decoder.next()) return f;
      ssize_t n = ::recv(fd, buf, sizeof(buf), 0);
      if (n <= 0) return std::nullopt;
      decoder.feed(std::string_view(buf, static_cast<std::size_t>(n)));
    }
  }

  static StatusCode statusOf(const Frame& frame) {
    wire::Response response;
    EXPECT_TRUE(response.ParseFromString(frame.payload));
    return static_cast<StatusCode>(response.status().code());
  }

  std::unique_ptr<TempDir> dir_;
  std::string socket_;
  std::unique_ptr<Server> server_;
  std::thread serving_;
  std::latch release_{1};
};

TEST_F(TtrpcServerTest, CallCarriesPayloadAndMetadata) {
  startServer();
  auto client = connect();
  ASSERT_TRUE(client);
  auto reply = client->call("test.Echo", "Echo", "hi", {.metadata = {{"ns", "fleetlet"}}});
  ASSERT_TRUE(reply) << reply.error().message;
  EXPECT_EQ(*reply, "hi|fleetlet");
}

TEST_F(TtrpcServerTest, HandlerStatusAndUnknownMethodsReachTheCaller) {
  startServer();
  auto client = connect();
  ASSERT_TRUE(client);
  auto failed = client->call("test.Echo", "Fail", "");
  ASSERT_FALSE(failed);
  EXPECT_EQ(failed.error().code, StatusCode::kNotFound);
  EXPECT_EQ(failed.error().message, "no such");
  auto unknown = client->call("test.Echo", "Nope", "");
  ASSERT_FALSE(unknown);
  EXPECT_EQ(unknown.error().code, StatusCode::kUnimplemented);
  auto unknown_service = client->call("other.Service", "Echo", "");
  ASSERT_FALSE(unknown_service);
  EXPECT_EQ(unknown_service.error().code, StatusCode::kUnimplemented);
}

TEST_F(TtrpcServerTest, ABlockedCallDoesNotHoldUpOthersOnTheSameConnection) {
  startServer();
  auto client = connect();
  ASSERT_TRUE(client);
  auto blocked =
      std::async(std::launch::async, [&] { return client->call("test.Echo", "Block", ""); });
  // Answered while Block still waits (it can only finish after Release ran).
  auto echo = client->call("test.Echo", "Echo", "x");
  ASSERT_TRUE(echo);
  EXPECT_EQ(*echo, "x|");
  ASSERT_TRUE(client->call("test.Echo", "Release", ""));
  auto released = blocked.get();
  ASSERT_TRUE(released);
  EXPECT_EQ(*released, "released");
}

TEST_F(TtrpcServerTest, ManyConcurrentStreamsGetTheirOwnAnswers) {
  startServer();
  auto client = connect();
  ASSERT_TRUE(client);
  std::vector<std::future<RpcResult<std::string>>> calls;
  for (int i = 0; i < 50; ++i) {
    calls.push_back(std::async(std::launch::async, [&, i] {
      return client->call("test.Echo", "Echo", std::to_string(i));
    }));
  }
  for (int i = 0; i < 50; ++i) {
    auto r = calls[static_cast<std::size_t>(i)].get();
    ASSERT_TRUE(r);
    EXPECT_EQ(*r, std::to_string(i) + "|");
  }
}

TEST_F(TtrpcServerTest, OversizedRequestIsRefusedAndTheConnectionLivesOn) {
  startServer();
  auto client = connect();
  ASSERT_TRUE(client);
  // The client refuses to send it...
  auto local = client->call("test.Echo", "Echo", std::string(kMaxMessageSize + 1, 'a'));
  ASSERT_FALSE(local);
  EXPECT_EQ(local.error().code, StatusCode::kResourceExhausted);
  // ...and a raw peer that does gets RESOURCE_EXHAUSTED on that stream, then normal service.
  auto fd = connectUnix(socket_);
  ASSERT_TRUE(fd);
  auto header = encodeHeader({.length = kMaxMessageSize + 10, .stream_id = 1, .type = 1});
  std::string bytes(header.data(), header.size());
  bytes += std::string(kMaxMessageSize + 10, 'z');
  auto answer = rawExchange(fd->get(), bytes);
  ASSERT_TRUE(answer);
  EXPECT_EQ(answer->header.stream_id, 1u);
  EXPECT_EQ(statusOf(*answer), StatusCode::kResourceExhausted);
  wire::Request request;
  request.set_service("test.Echo");
  request.set_method("Echo");
  request.set_payload("after");
  auto after =
      rawExchange(fd->get(), *encodeFrame(3, MessageType::kRequest, request.SerializeAsString()));
  ASSERT_TRUE(after);
  EXPECT_EQ(statusOf(*after), StatusCode::kOk);
}

TEST_F(TtrpcServerTest, GarbageIsAnsweredOrDroppedAndTheServerKeepsServing) {
  startServer();
  {
    auto fd = connectUnix(socket_);
    ASSERT_TRUE(fd);
    // Not a Request protobuf.
    auto bad = rawExchange(fd->get(), *encodeFrame(1, MessageType::kRequest, "\xff\xff\xff"));
    ASSERT_TRUE(bad);
    EXPECT_EQ(statusOf(*bad), StatusCode::kInvalidArgument);
    // Even stream ids belong to the server.
    auto even = rawExchange(fd->get(), *encodeFrame(2, MessageType::kRequest, ""));
    ASSERT_TRUE(even);
    EXPECT_EQ(statusOf(*even), StatusCode::kInvalidArgument);
    // Random bytes, a truncated frame, then a hang-up.
    ASSERT_TRUE(writeAll(fd->get(), std::string("\x00\x00\x00\x05\x00\x00\x00\x01\x09\x00ab", 12)));
  }
  auto client = connect();
  ASSERT_TRUE(client);
  auto reply = client->call("test.Echo", "Echo", "still");
  ASSERT_TRUE(reply);
  EXPECT_EQ(*reply, "still|");
}

TEST_F(TtrpcServerTest, ClientCallsFailUnavailableWhenTheServerGoes) {
  startServer();
  auto client = connect();
  ASSERT_TRUE(client);
  auto blocked =
      std::async(std::launch::async, [&] { return client->call("test.Echo", "Block", ""); });
  ASSERT_TRUE(client->call("test.Echo", "Echo", ""));  // Block is now in flight
  server_->shutdown();
  auto r = blocked.get();
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, StatusCode::kUnavailable);
  release_.count_down();  // lets the handler thread finish so the server can be destroyed
  auto later = client->call("test.Echo", "Echo", "");
  ASSERT_FALSE(later);
  EXPECT_EQ(later.error().code, StatusCode::kUnavailable);
}

TEST_F(TtrpcServerTest, ListeningTwiceOnOnePathIsAlreadyExists) {
  startServer();
  auto second = listenUnix(socket_);
  ASSERT_FALSE(second);
  EXPECT_EQ(second.error().code(), ErrorCode::kAlreadyExists);
}

}  // namespace
}  // namespace fleetlet::ttrpc
