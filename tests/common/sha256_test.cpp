#include "crypto/sha256.h"

#include <gtest/gtest.h>

namespace fleetlet {
namespace {

TEST(Sha256, KnownVectors) {
  EXPECT_EQ(sha256Hex(""), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  EXPECT_EQ(sha256Hex("abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
}

TEST(Sha256, IncrementalEqualsOneShot) {
  Sha256 h;
  h.update("a");
  h.update("bc");
  EXPECT_EQ(h.finishHex(), sha256Hex("abc"));
}

TEST(Sha256, MissingFileIsNotFound) {
  auto r = sha256File("/nonexistent/fleetlet");
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code(), ErrorCode::kNotFound);
}

}  // namespace
}  // namespace fleetlet

#include "crypto/base64.h"

namespace fleetlet {
namespace {

TEST(Base64, DecodesRfc4648VectorsWithAndWithoutPadding) {
  EXPECT_EQ(base64Decode("").value(), "");
  EXPECT_EQ(base64Decode("Zg==").value(), "f");
  EXPECT_EQ(base64Decode("Zm8=").value(), "fo");
  EXPECT_EQ(base64Decode("Zm9vYmFy").value(), "foobar");
  EXPECT_EQ(base64Decode("Zm9vYg").value(), "foob");
  EXPECT_EQ(base64Decode("Zm9v\r\nYmFy").value(), "foobar");
  EXPECT_EQ(base64Decode("iVBORw0KGgo=").value(), std::string("\x89PNG\r\n\x1a\n", 8));
}

TEST(Base64, RefusesBytesOutsideTheAlphabet) {
  auto r = base64Decode("Zm9v!mFy");
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code(), ErrorCode::kInvalidArgument);
  EXPECT_EQ(r.error().message(), "not base64: byte 33 at offset 4");
  EXPECT_FALSE(base64Decode("Zg==Zg"));
}

}  // namespace
}  // namespace fleetlet
