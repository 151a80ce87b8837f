#include "registry/registry_error.h"

#include <gtest/gtest.h>

namespace fleetlet::registry {
namespace {

constexpr std::string_view kRef = "127.0.0.1:5000/acme/x:1";

TEST(RegistryErrorTest, DecodesDistributionErrors) {
  struct Case {
    long status;
    std::string body;
    ErrorCode code;
    std::string message;
  };
  const Case cases[] = {
      {404,
       R"({"errors":[{"code":"MANIFEST_UNKNOWN","message":"manifest unknown","detail":{"Tag":"1"}}]})",
       ErrorCode::kNotFound, "manifest unknown: 127.0.0.1:5000/acme/x:1"},
      {404, R"({"errors":[{"code":"BLOB_UNKNOWN","message":"blob unknown to registry"}]})",
       ErrorCode::kNotFound, "blob unknown: 127.0.0.1:5000/acme/x:1: blob unknown to registry"},
      {404,
       R"({"errors":[{"code":"NAME_UNKNOWN","message":"repository name not known to registry"}]})",
       ErrorCode::kNotFound,
       "repository unknown: 127.0.0.1:5000/acme/x:1: repository name not known to registry"},
      {401,
       R"({"errors":[{"code":"UNAUTHORIZED","message":"authentication required","detail":null}]})",
       ErrorCode::kFailedPrecondition,
       "unauthorized: 127.0.0.1:5000/acme/x:1: authentication required"},
      {403,
       R"({"errors":[{"code":"DENIED","message":"requested access to the resource is denied"}]})",
       ErrorCode::kFailedPrecondition,
       "denied: 127.0.0.1:5000/acme/x:1: requested access to the resource is denied"},
      {429, R"({"errors":[{"code":"TOOMANYREQUESTS","message":"slow down"}]})",
       ErrorCode::kResourceExhausted, "too many requests: 127.0.0.1:5000/acme/x:1: slow down"},
      {400, R"({"errors":[{"code":"MANIFEST_INVALID","message":"bad"},{"code":"X"}]})",
       ErrorCode::kInvalidArgument,
       "invalid manifest: 127.0.0.1:5000/acme/x:1: bad (and 1 more errors)"},
      {503, R"({"errors":[{"code":"UNKNOWN","message":"unknown error"}]})", ErrorCode::kUnavailable,
       "registry error: 127.0.0.1:5000/acme/x:1: UNKNOWN: unknown error"},
      {418, R"({"errors":[{"code":"TEAPOT"}]})", ErrorCode::kInternal,
       "unexpected answer: 127.0.0.1:5000/acme/x:1: TEAPOT"},
  };
  for (const Case& c : cases) {
    Error e = decodeRegistryError(c.status, c.body, kRef);
    EXPECT_EQ(e.code(), c.code) << c.body;
    EXPECT_EQ(e.message(), c.message) << c.body;
  }
}

TEST(RegistryErrorTest, NonJsonAndOddBodiesFallBackToStatus) {
  Error html = decodeRegistryError(502, "<html>\n  <h1>Bad   Gateway</h1></html>", kRef);
  EXPECT_EQ(html.code(), ErrorCode::kUnavailable);
  EXPECT_EQ(
      html.message(),
      "registry error: 127.0.0.1:5000/acme/x:1: HTTP 502: <html> <h1>Bad Gateway</h1></html>");
  Error empty = decodeRegistryError(404, "", kRef);
  EXPECT_EQ(empty.code(), ErrorCode::kNotFound);
  EXPECT_EQ(empty.message(), "not found: 127.0.0.1:5000/acme/x:1: HTTP 404");
  Error binary = decodeRegistryError(401, std::string("\x01\xff{", 3), kRef);
  EXPECT_EQ(binary.code(), ErrorCode::kFailedPrecondition);
  EXPECT_EQ(binary.message(), "unauthorized: 127.0.0.1:5000/acme/x:1: HTTP 401: ??{");
  for (std::string_view odd : {R"({"errors":[]})", R"({"errors":{}})", R"({"errors":[7]})",
                               R"([1,2])", R"({"errors":[{"code":5,"message":[]}]})"}) {
    Error e = decodeRegistryError(403, odd, kRef);
    EXPECT_EQ(e.code(), ErrorCode::kFailedPrecondition) << odd;
    EXPECT_TRUE(e.message().starts_with("denied: 127.0.0.1:5000/acme/x:1")) << e.message();
  }
  std::string long_body(1000, 'x');
  EXPECT_LT(decodeRegistryError(500, long_body, kRef).message().size(), 300u);
}

}  // namespace
}  // namespace fleetlet::registry
