#include "handoff/protocol.h"

#include <dirent.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/socket.h>
#include <sys/stat.h>

#include <array>
#include <cstring>
#include <string>
#include <vector>

#include "test_util.h"

namespace fleetlet::handoff {
namespace {

using test_util::openFdCount;

struct SocketPair {
  UniqueFd a;
  UniqueFd b;
};

SocketPair seqpacketPair() {
  int fds[2];
  EXPECT_EQ(::socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, fds), 0);
  return {UniqueFd(fds[0]), UniqueFd(fds[1])};
}

UniqueFd someFd() {
  int fds[2];
  EXPECT_EQ(::pipe2(fds, O_CLOEXEC), 0);
  ::close(fds[1]);
  return UniqueFd(fds[0]);
}

// Sends `body` with `fd_count` fresh fds attached, bypassing encodeMessage().
void sendRaw(int socket, std::string_view body, std::size_t fd_count) {
  std::vector<UniqueFd> owned;
  std::vector<int> raw;
  for (std::size_t i = 0; i < fd_count; ++i) {
    owned.push_back(someFd());
    raw.push_back(owned.back().get());
  }
  iovec iov{const_cast<char*>(body.data()), body.size()};
  msghdr header{};
  header.msg_iov = &iov;
  header.msg_iovlen = 1;
  std::vector<char> control(CMSG_SPACE(sizeof(int) * fd_count));
  if (fd_count > 0) {
    header.msg_control = control.data();
    header.msg_controllen = control.size();
    cmsghdr* cmsg = CMSG_FIRSTHDR(&header);
    cmsg->cmsg_level = SOL_SOCKET;
    cmsg->cmsg_type = SCM_RIGHTS;
    cmsg->cmsg_len = CMSG_LEN(sizeof(int) * fd_count);
    std::memcpy(CMSG_DATA(cmsg), raw.data(), sizeof(int) * fd_count);
  }
  ASSERT_EQ(::sendmsg(socket, &header, MSG_NOSIGNAL), static_cast<ssize_t>(body.size()));
}

TEST(HandoffProtocolTest, RoundTripsEveryOp) {
  auto pair = seqpacketPair();
  UniqueFd listener = someFd();
  struct stat sent_stat {};
  ASSERT_EQ(::fstat(listener.get(), &sent_stat), 0);

  ASSERT_TRUE(sendMessage(pair.a.get(), Message::syncBegin()));
  ASSERT_TRUE(sendMessage(pair.a.get(), Message::add("camera", "events", std::move(listener))));
  ASSERT_TRUE(sendMessage(pair.a.get(), Message::remove("camera", "console")));
  ASSERT_TRUE(sendMessage(pair.a.get(), Message::remove("plc-bridge")));
  ASSERT_TRUE(sendMessage(pair.a.get(), Message::syncEnd()));

  auto begin = receiveMessage(pair.b.get());
  ASSERT_TRUE(begin && *begin) << (begin ? "" : begin.error().message());
  EXPECT_EQ((*begin)->op, Op::kSyncBegin);

  auto add = receiveMessage(pair.b.get());
  ASSERT_TRUE(add && *add);
  EXPECT_EQ((*add)->op, Op::kAdd);
  EXPECT_EQ((*add)->app, "camera");
  EXPECT_EQ((*add)->listener, "events");
  ASSERT_TRUE((*add)->fd.valid());
  struct stat got_stat {};
  ASSERT_EQ(::fstat((*add)->fd.get(), &got_stat), 0);
  EXPECT_EQ(got_stat.st_ino, sent_stat.st_ino);  // the same open file
  EXPECT_NE(::fcntl((*add)->fd.get(), F_GETFD) & FD_CLOEXEC, 0);

  auto remove_one = receiveMessage(pair.b.get());
  ASSERT_TRUE(remove_one && *remove_one);
  EXPECT_EQ((*remove_one)->op, Op::kRemove);
  EXPECT_EQ((*remove_one)->listener, "console");
  auto remove_all = receiveMessage(pair.b.get());
  ASSERT_TRUE(remove_all && *remove_all);
  EXPECT_EQ((*remove_all)->app, "plc-bridge");
  EXPECT_EQ((*remove_all)->listener, "");
  auto end = receiveMessage(pair.b.get());
  ASSERT_TRUE(end && *end);
  EXPECT_EQ((*end)->op, Op::kSyncEnd);

  auto empty = receiveMessage(pair.b.get());
  ASSERT_FALSE(empty);
  EXPECT_EQ(empty.error().sysErrno(), EAGAIN);
  pair.a.reset();
  auto closed = receiveMessage(pair.b.get());
  ASSERT_TRUE(closed);
  EXPECT_FALSE(closed->has_value());
}

TEST(HandoffProtocolTest, EncodeRefusesInvalidMessages) {
  EXPECT_FALSE(encodeMessage(Message::add("camera", "events", UniqueFd())));
  EXPECT_FALSE(encodeMessage(Message::add("", "events", someFd())));
  EXPECT_FALSE(encodeMessage(Message::add("camera", "ev ents", someFd())));
  EXPECT_FALSE(encodeMessage(Message::remove(std::string(65, 'a'))));
  Message sync = Message::syncBegin();
  sync.fd = someFd();
  EXPECT_FALSE(encodeMessage(sync));
  auto pair = seqpacketPair();
  auto sent = sendMessage(pair.a.get(), Message::add("camera", "-events", someFd()));
  ASSERT_FALSE(sent);
  EXPECT_EQ(sent.error().code(), ErrorCode::kInvalidArgument);
}

TEST(HandoffProtocolTest, ValidatesNames) {
  EXPECT_TRUE(validateName("app", "camera"));
  EXPECT_TRUE(validateName("app", "a"));
  EXPECT_TRUE(validateName("app", "Plc_bridge-2.v1"));
  EXPECT_TRUE(validateName("app", std::string(kMaxNameLength, 'x')));
  EXPECT_FALSE(validateName("app", ""));
  EXPECT_FALSE(validateName("app", std::string(kMaxNameLength + 1, 'x')));
  EXPECT_FALSE(validateName("app", ".hidden"));
  EXPECT_FALSE(validateName("app", "a/b"));
  EXPECT_FALSE(validateName("app", "a:b"));
  EXPECT_FALSE(validateName("app", std::string("a\0b", 3)));
  EXPECT_FALSE(validateName("app", "caf\xc3\xa9"));
}

struct MalformedCase {
  const char* name;
  std::string body;
  std::size_t fds;
  const char* expect;  // part of the error message
};

void PrintTo(const MalformedCase& c, std::ostream* os) { *os << c.name; }

class HandoffMalformedTest : public ::testing::TestWithParam<MalformedCase> {};

TEST_P(HandoffMalformedTest, IsRejectedWithoutLeakingFds) {
  const MalformedCase& c = GetParam();
  auto pair = seqpacketPair();
  int before = openFdCount();
  sendRaw(pair.a.get(), c.body, c.fds);
  auto received = receiveMessage(pair.b.get());
  ASSERT_FALSE(received) << c.name << " was accepted";
  EXPECT_EQ(received.error().code(), ErrorCode::kInvalidArgument) << received.error().message();
  EXPECT_NE(received.error().message().find(c.expect), std::string::npos)
      << "error \"" << received.error().message() << "\" does not mention \"" << c.expect << "\"";
  EXPECT_EQ(openFdCount(), before) << "received fds leaked";

  // The decoder alone agrees.
  if (c.body.size() <= kMaxMessageBytes && c.fds <= kMaxReceivedFds) {
    EXPECT_FALSE(decodeMessage(c.body, c.fds));
  }
}

const std::string kAdd = R"({"v":1,"op":"add","app":"camera","listener":"events"})";

INSTANTIATE_TEST_SUITE_P(
    Cases, HandoffMalformedTest,
    ::testing::Values(
        MalformedCase{"BadJson", "{\"v\":1,\"op\":", 1, "handoff message"},
        MalformedCase{"NotObject", "[1,2]", 0, "expected an object"},
        MalformedCase{"MissingVersion", R"({"op":"sync_begin"})", 0, "v"},
        MalformedCase{"WrongVersion", R"({"v":2,"op":"sync_begin"})", 0, "unsupported version 2"},
        MalformedCase{"VersionString", R"({"v":"1","op":"sync_begin"})", 0, "v"},
        MalformedCase{"UnknownOp", R"({"v":1,"op":"frobnicate"})", 0, "unknown op"},
        MalformedCase{"OpNotString", R"({"v":1,"op":3})", 0, "op"},
        MalformedCase{"AddWithoutFd", kAdd, 0, "carries 0 fds, expected 1"},
        MalformedCase{"AddWithTwoFds", kAdd, 2, "carries 2 fds, expected 1"},
        MalformedCase{"RemoveWithFd", R"({"v":1,"op":"remove","app":"camera"})", 1,
                      "carries 1 fds, expected 0"},
        MalformedCase{"SyncWithFd", R"({"v":1,"op":"sync_end"})", 1, "carries 1 fds"},
        MalformedCase{"AppNotString", R"({"v":1,"op":"add","app":7,"listener":"events"})", 1,
                      "app"},
        MalformedCase{"MissingApp", R"({"v":1,"op":"add","listener":"events"})", 1, "app"},
        MalformedCase{"MissingListener", R"({"v":1,"op":"add","app":"camera"})", 1, "listener"},
        MalformedCase{"ListenerNull", R"({"v":1,"op":"add","app":"camera","listener":null})", 1,
                      "listener"},
        MalformedCase{
            "NameTooLong",
            R"({"v":1,"op":"add","app":")" + std::string(65, 'a') + R"(","listener":"events"})", 1,
            "longer than 64"},
        MalformedCase{"NameBadChars", R"({"v":1,"op":"remove","app":"../etc"})", 0,
                      "must start with a letter or digit"},
        MalformedCase{"UnknownField", R"({"v":1,"op":"sync_begin","app":"camera"})", 0,
                      "unknown field \"app\""},
        MalformedCase{"Truncated", std::string(kMaxMessageBytes + 10, ' '), 0, "longer than"},
        MalformedCase{"TooManyFds", kAdd, kMaxReceivedFds + 4, "control data truncated"}),
    [](const auto& test) { return std::string(test.param.name); });

TEST(HandoffProtocolTest, DecodesWithoutSocket) {
  auto add = decodeMessage(kAdd, 1);
  ASSERT_TRUE(add) << add.error().message();
  EXPECT_EQ(add->app, "camera");
  EXPECT_FALSE(add->fd.valid());  // the caller attaches the fd
  EXPECT_TRUE(decodeMessage(R"({"v":1,"op":"remove","app":"camera","listener":null})", 0));
}

}  // namespace
}  // namespace fleetlet::handoff
