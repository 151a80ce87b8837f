#include "error/error.h"

#include <gtest/gtest.h>

#include <cerrno>

namespace fleetlet {
namespace {

Result<int> half(int x) {
  if (x % 2 != 0) return fail(ErrorCode::kInvalidArgument, "{} is odd", x);
  return x / 2;
}

Result<int> quarter(int x) {
  FLEETLET_ASSIGN_OR_RETURN(int h, half(x));
  auto q = half(h);
  if (!q) return std::unexpected(q.error().wrap("quarter of {}", x));
  return *q;
}

TEST(Error, WrapPrefixesContextAndKeepsCode) {
  auto r = quarter(6);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code(), ErrorCode::kInvalidArgument);
  EXPECT_EQ(r.error().message(), "quarter of 6: 3 is odd");
}

TEST(Error, AssignOrReturnPropagatesAndAssigns) {
  EXPECT_EQ(quarter(8).value(), 2);
  EXPECT_EQ(quarter(3).error().message(), "3 is odd");
}

TEST(Error, ErrnoMapsToCodesAndKeepsErrno) {
  Error e = errnoError(ENOENT, "open /x");
  EXPECT_EQ(e.code(), ErrorCode::kNotFound);
  EXPECT_EQ(e.sysErrno(), ENOENT);
  EXPECT_EQ(e.message(), "open /x: No such file or directory");
  EXPECT_EQ(errnoError(ENOSPC, "w").code(), ErrorCode::kResourceExhausted);
  EXPECT_EQ(errnoError(EIO, "w").code(), ErrorCode::kInternal);
  EXPECT_EQ(e.describe(), "not found: open /x: No such file or directory");
}

}  // namespace
}  // namespace fleetlet
