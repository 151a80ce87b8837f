// HandoffSender → HandoffReceiver over a real unix socket, with plain loopback listeners in
// the test's own namespace (no privileges needed).
#include "handoff/receiver.h"

#include <gtest/gtest.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>

#include <cstring>
#include <fstream>
#include <mutex>
#include <string>
#include <vector>

#include "handoff/protocol.h"
#include "handoff/sender.h"
#include "support/temp_dir.h"
#include "test_util.h"

namespace fleetlet::handoff {
namespace {

using test_util::eventually;
using test_util::loopbackListener;
using test_util::openFdCount;

// Records callbacks; keeps the fds it was given.
class Recorder {
 public:
  ReceiverCallbacks callbacks() {
    return ReceiverCallbacks{
        [this](const std::string& app, const std::string& name, UniqueFd fd) -> Status {
          std::lock_guard lock(mutex_);
          if (name == "refused") return fail(ErrorCode::kNotFound, "no such listener");
          events_.push_back("add " + app + "/" + name);
          fds_.push_back(std::move(fd));
          return {};
        },
        [this](const std::string& app, const std::string& name) {
          std::lock_guard lock(mutex_);
          events_.push_back("remove " + app + "/" + name);
        }};
  }
  std::vector<std::string> events() const {
    std::lock_guard lock(mutex_);
    return events_;
  }
  std::size_t count() const { return events().size(); }

 private:
  mutable std::mutex mutex_;
  std::vector<std::string> events_;
  std::vector<UniqueFd> fds_;
};

class HandoffReceiverTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto dir = fleetlet::testing::TempDir::create("fleetlet-handoff");
    ASSERT_TRUE(dir) << dir.error().message();
    dir_.emplace(std::move(*dir));
    path_ = dir_->path() / "handoff.sock";
  }

  std::unique_ptr<HandoffReceiver> startReceiver(Recorder& recorder) {
    auto receiver = HandoffReceiver::start({.socket_path = path_}, recorder.callbacks());
    EXPECT_TRUE(receiver) << receiver.error().message();
    return receiver ? std::move(*receiver) : nullptr;
  }

  UniqueFd rawConnect() {
    UniqueFd fd(::socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0));
    sockaddr_un address{};
    address.sun_family = AF_UNIX;
    std::strncpy(address.sun_path, path_.c_str(), sizeof(address.sun_path) - 1);
    EXPECT_EQ(::connect(fd.get(), reinterpret_cast<sockaddr*>(&address), sizeof(address)), 0);
    return fd;
  }

  std::optional<fleetlet::testing::TempDir> dir_;
  std::filesystem::path path_;
};

using Pairs = std::vector<std::pair<std::string, std::string>>;

TEST_F(HandoffReceiverTest, DeliversAddAndRemove) {
  Recorder recorder;
  auto receiver = startReceiver(recorder);
  ASSERT_TRUE(receiver);
  struct stat st {};
  ASSERT_EQ(::stat(path_.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);

  HandoffSender sender;
  ASSERT_TRUE(sender.connect(path_));
  ASSERT_TRUE(sender.add("camera", "events", loopbackListener()));
  ASSERT_TRUE(sender.add("camera", "console", loopbackListener()));
  ASSERT_TRUE(sender.add("plc", "events", loopbackListener()));
  ASSERT_TRUE(eventually([&] { return receiver->listeners().size() == 3; }));
  ASSERT_TRUE(sender.remove("camera", "console"));
  ASSERT_TRUE(eventually([&] { return receiver->listeners().size() == 2; }));
  ASSERT_TRUE(sender.remove("plc"));
  ASSERT_TRUE(eventually([&] { return receiver->listeners().size() == 1; }));
  EXPECT_EQ(receiver->listeners(), (Pairs{{"camera", "events"}}));
  EXPECT_EQ(recorder.events(),
            (std::vector<std::string>{"add camera/events", "add camera/console", "add plc/events",
                                      "remove camera/console", "remove plc/events"}));
  EXPECT_EQ(sender.listeners(), (Pairs{{"camera", "events"}}));
  EXPECT_EQ(receiver->stats().protocol_errors, 0u);
}

TEST_F(HandoffReceiverTest, ReSyncSendsNothingNewForTheSameSockets) {
  Recorder recorder;
  auto receiver = startReceiver(recorder);
  ASSERT_TRUE(receiver);
  HandoffSender sender;
  ASSERT_TRUE(sender.add("camera", "events", loopbackListener()));  // before connecting
  ASSERT_TRUE(sender.connect(path_));
  ASSERT_TRUE(eventually([&] { return receiver->stats().messages == 3; }));  // begin, add, end
  ASSERT_TRUE(sender.connect(path_));                                        // a second sync
  ASSERT_TRUE(eventually([&] { return receiver->stats().messages == 6; }));
  EXPECT_EQ(recorder.events(), (std::vector<std::string>{"add camera/events"}));
}

TEST_F(HandoffReceiverTest, ReplacingAListenerSwapsItAtTheService) {
  Recorder recorder;
  auto receiver = startReceiver(recorder);
  ASSERT_TRUE(receiver);
  HandoffSender sender;
  ASSERT_TRUE(sender.connect(path_));
  ASSERT_TRUE(sender.add("camera", "events", loopbackListener()));
  ASSERT_TRUE(sender.add("camera", "events", loopbackListener()));  // e.g. a re-created netns
  ASSERT_TRUE(eventually([&] { return recorder.count() == 3; }));
  EXPECT_EQ(
      recorder.events(),
      (std::vector<std::string>{"add camera/events", "remove camera/events", "add camera/events"}));
  EXPECT_NE(sender.find("camera", "events"), -1);
  EXPECT_EQ(sender.find("camera", "nothing"), -1);
}

TEST_F(HandoffReceiverTest, SyncRemovesWhatTheAgentNoLongerHas) {
  Recorder recorder;
  auto receiver = startReceiver(recorder);
  ASSERT_TRUE(receiver);
  {
    HandoffSender old_agent;
    ASSERT_TRUE(old_agent.connect(path_));
    ASSERT_TRUE(old_agent.add("camera", "events", loopbackListener()));
    ASSERT_TRUE(old_agent.add("plc", "events", loopbackListener()));
    ASSERT_TRUE(eventually([&] { return receiver->listeners().size() == 2; }));
  }  // the agent dies: the service keeps serving its listeners
  ASSERT_TRUE(eventually([&] { return receiver->stats().connections == 1; }));
  EXPECT_EQ(receiver->listeners().size(), 2u);

  HandoffSender new_agent;
  ASSERT_TRUE(new_agent.add("camera", "events", loopbackListener()));
  ASSERT_TRUE(new_agent.connect(path_));
  ASSERT_TRUE(eventually([&] { return receiver->stats().messages == 4 + 3; }));
  EXPECT_EQ(receiver->listeners(), (Pairs{{"camera", "events"}}));
  EXPECT_EQ(recorder.events(),
            (std::vector<std::string>{"add camera/events", "add plc/events", "remove camera/events",
                                      "add camera/events", "remove plc/events"}));
}

TEST_F(HandoffReceiverTest, SenderReconnectsAfterServiceRestart) {
  Recorder first;
  auto receiver = startReceiver(first);
  ASSERT_TRUE(receiver);
  HandoffSender sender;
  ASSERT_TRUE(sender.connect(path_));
  ASSERT_TRUE(sender.add("camera", "events", loopbackListener()));
  ASSERT_TRUE(sender.add("plc", "events", loopbackListener()));
  ASSERT_TRUE(eventually([&] { return receiver->listeners().size() == 2; }));

  receiver.reset();  // the service goes away
  EXPECT_FALSE(std::filesystem::exists(path_));
  ASSERT_TRUE(sender.remove("plc"));  // while it is gone
  auto gone = sender.reconnectIfNeeded();
  ASSERT_FALSE(gone);
  EXPECT_EQ(gone.error().code(), ErrorCode::kUnavailable);
  EXPECT_FALSE(sender.connected());

  Recorder second;
  receiver = startReceiver(second);
  ASSERT_TRUE(receiver);
  ASSERT_TRUE(sender.reconnectIfNeeded());
  EXPECT_TRUE(sender.connected());
  ASSERT_TRUE(eventually([&] { return receiver->stats().messages == 3; }));
  EXPECT_EQ(second.events(), (std::vector<std::string>{"add camera/events"}));
}

TEST_F(HandoffReceiverTest, AddOnDeadConnectionReconnectsAtOnce) {
  Recorder first;
  auto receiver = startReceiver(first);
  ASSERT_TRUE(receiver);
  HandoffSender sender;
  ASSERT_TRUE(sender.connect(path_));
  receiver.reset();
  Recorder second;
  receiver = startReceiver(second);
  ASSERT_TRUE(receiver);
  ASSERT_TRUE(sender.add("camera", "events", loopbackListener()));
  ASSERT_TRUE(eventually([&] { return receiver->listeners().size() == 1; }));
  EXPECT_TRUE(sender.connected());
}

TEST_F(HandoffReceiverTest, FailedAddIsNotHeld) {
  Recorder recorder;
  auto receiver = startReceiver(recorder);
  ASSERT_TRUE(receiver);
  HandoffSender sender;
  ASSERT_TRUE(sender.connect(path_));
  ASSERT_TRUE(sender.add("camera", "refused", loopbackListener()));
  ASSERT_TRUE(eventually([&] { return receiver->stats().failed_adds == 1; }));
  EXPECT_TRUE(receiver->listeners().empty());
  EXPECT_EQ(receiver->stats().protocol_errors, 0u);
}

TEST_F(HandoffReceiverTest, MalformedMessageDropsOnlyThatConnection) {
  Recorder recorder;
  auto receiver = startReceiver(recorder);
  ASSERT_TRUE(receiver);
  HandoffSender sender;
  ASSERT_TRUE(sender.connect(path_));
  ASSERT_TRUE(eventually([&] { return receiver->stats().messages == 2; }));

  int before = openFdCount();
  {
    UniqueFd bad = rawConnect();
    UniqueFd listener = loopbackListener();
    // An add carrying two fds.
    std::string body = R"({"v":1,"op":"add","app":"evil","listener":"events"})";
    int fds[2] = {listener.get(), listener.get()};
    iovec iov{body.data(), body.size()};
    alignas(cmsghdr) char control[CMSG_SPACE(sizeof(fds))] = {};
    msghdr header{};
    header.msg_iov = &iov;
    header.msg_iovlen = 1;
    header.msg_control = control;
    header.msg_controllen = sizeof(control);
    cmsghdr* cmsg = CMSG_FIRSTHDR(&header);
    cmsg->cmsg_level = SOL_SOCKET;
    cmsg->cmsg_type = SCM_RIGHTS;
    cmsg->cmsg_len = CMSG_LEN(sizeof(fds));
    std::memcpy(CMSG_DATA(cmsg), fds, sizeof(fds));
    ASSERT_GT(::sendmsg(bad.get(), &header, MSG_NOSIGNAL), 0);
    ASSERT_TRUE(eventually([&] { return receiver->stats().protocol_errors == 1; }));
    char byte;
    EXPECT_EQ(::recv(bad.get(), &byte, 1, 0), 0);  // the receiver closed it
  }
  EXPECT_EQ(openFdCount(), before);
  auto error = receiver->lastProtocolError();
  ASSERT_TRUE(error);
  EXPECT_NE(error->message().find("carries 2 fds"), std::string::npos) << error->message();

  // A protocol error in the middle of the sync state machine too.
  {
    UniqueFd bad = rawConnect();
    ASSERT_TRUE(sendMessage(bad.get(), Message::syncEnd()));
    ASSERT_TRUE(eventually([&] { return receiver->stats().protocol_errors == 2; }));
  }
  // The agent's connection still works.
  ASSERT_TRUE(sender.add("camera", "events", loopbackListener()));
  ASSERT_TRUE(eventually([&] { return receiver->listeners().size() == 1; }));
  EXPECT_EQ(recorder.events(), (std::vector<std::string>{"add camera/events"}));
}

TEST_F(HandoffReceiverTest, ReplacesStaleSocketRefusesLiveOne) {
  {
    // A socket file nobody listens on, as left by a killed service.
    UniqueFd stale(::socket(AF_UNIX, SOCK_SEQPACKET, 0));
    sockaddr_un address{};
    address.sun_family = AF_UNIX;
    std::strncpy(address.sun_path, path_.c_str(), sizeof(address.sun_path) - 1);
    ASSERT_EQ(::bind(stale.get(), reinterpret_cast<sockaddr*>(&address), sizeof(address)), 0);
  }
  ASSERT_TRUE(std::filesystem::exists(path_));
  Recorder recorder;
  auto receiver = startReceiver(recorder);
  ASSERT_TRUE(receiver);

  auto second = HandoffReceiver::start({.socket_path = path_}, recorder.callbacks());
  ASSERT_FALSE(second);
  EXPECT_EQ(second.error().code(), ErrorCode::kAlreadyExists) << second.error().message();
  EXPECT_TRUE(std::filesystem::exists(path_));  // the live one is untouched

  auto file_path = dir_->path() / "plain";
  std::ofstream(file_path) << "x";
  auto on_file = HandoffReceiver::start({.socket_path = file_path}, recorder.callbacks());
  ASSERT_FALSE(on_file);
  EXPECT_EQ(on_file.error().code(), ErrorCode::kFailedPrecondition);

  auto no_callbacks = HandoffReceiver::start({.socket_path = dir_->path() / "x.sock"}, {});
  ASSERT_FALSE(no_callbacks);
  EXPECT_EQ(no_callbacks.error().code(), ErrorCode::kInvalidArgument);
}

TEST_F(HandoffReceiverTest, SenderRefusesInvalidInput) {
  HandoffSender sender;
  EXPECT_EQ(sender.add("bad name", "events", loopbackListener()).error().code(),
            ErrorCode::kInvalidArgument);
  EXPECT_EQ(sender.add("camera", "events", UniqueFd()).error().code(), ErrorCode::kInvalidArgument);
  EXPECT_EQ(sender.remove("camera", "a/b").error().code(), ErrorCode::kInvalidArgument);
  EXPECT_TRUE(sender.listeners().empty());
  EXPECT_EQ(sender.reconnectIfNeeded().error().code(), ErrorCode::kFailedPrecondition);
  auto missing = sender.connect(path_);
  ASSERT_FALSE(missing);
  EXPECT_EQ(missing.error().code(), ErrorCode::kUnavailable);
}

}  // namespace
}  // namespace fleetlet::handoff
