#include "api/upload_gate.h"

#include <gtest/gtest.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <chrono>
#include <vector>

namespace fleetlet::api {
namespace {

namespace asio = boost::asio;
using std::chrono::milliseconds;

// Holds a slot for `hold`, recording how many held one at once.
http::Task<void> upload(UploadGate& gate, milliseconds hold, int& inside, int& most,
                        std::vector<int>& order, int id) {
  auto slot = co_await gate.enter();
  ++inside;
  most = std::max(most, inside);
  order.push_back(id);
  asio::steady_timer timer(co_await asio::this_coro::executor, hold);
  boost::system::error_code ignored;
  co_await timer.async_wait(asio::redirect_error(asio::use_awaitable, ignored));
  --inside;
}

TEST(UploadGate, AtMostTheLimitHoldASlotAndWaitersGoInArrivalOrder) {
  asio::io_context io;
  UploadGate gate(2);
  int inside = 0;
  int most = 0;
  std::vector<int> order;
  for (int id = 0; id < 6; ++id) {
    auto run = [&, id]() { return upload(gate, milliseconds(20), inside, most, order, id); };
    asio::co_spawn(io, run, asio::detached);
  }
  io.run();
  EXPECT_EQ(most, 2);
  EXPECT_EQ(order, (std::vector<int>{0, 1, 2, 3, 4, 5}));
  EXPECT_EQ(gate.active(), 0u);
  EXPECT_EQ(gate.waiting(), 0u);
}

TEST(UploadGate, AWaiterThatGoesAwayGivesUpItsPlace) {
  asio::io_context io;
  UploadGate gate(1);
  int inside = 0;
  int most = 0;
  std::vector<int> order;
  auto first = [&]() { return upload(gate, milliseconds(50), inside, most, order, 1); };
  asio::co_spawn(io, first, asio::detached);
  io.poll();  // the first holds the only slot
  ASSERT_EQ(gate.active(), 1u);
  // The second waits, then its io_context is gone: the coroutine is destroyed mid-wait.
  {
    asio::io_context doomed;
    auto second = [&]() { return upload(gate, milliseconds(1), inside, most, order, 2); };
    asio::co_spawn(doomed, second, asio::detached);
    doomed.run_for(milliseconds(10));
    EXPECT_EQ(gate.waiting(), 1u);
  }
  EXPECT_EQ(gate.waiting(), 0u);
  auto third = [&]() { return upload(gate, milliseconds(1), inside, most, order, 3); };
  asio::co_spawn(io, third, asio::detached);
  io.run();
  EXPECT_EQ(order, (std::vector<int>{1, 3}));
  EXPECT_EQ(gate.active(), 0u);
}

}  // namespace
}  // namespace fleetlet::api
