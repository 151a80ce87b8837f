#include "core/policy.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <fstream>

#include "support/temp_dir.h"

namespace fleetlet::webview {
namespace {

using ::testing::HasSubstr;

TEST(PolicyTest, OriginOf) {
  EXPECT_EQ(originOf("app://demo/index.html?x#y"), "app://demo");
  EXPECT_EQ(originOf("HTTPS://Docs.Example.com:8443/a"), "https://docs.example.com:8443");
  EXPECT_EQ(originOf("https://user:pw@host.test/"), "https://host.test");
  EXPECT_EQ(originOf("about:blank"), std::nullopt);
  EXPECT_EQ(originOf("file:///etc/passwd"), std::nullopt);
  EXPECT_EQ(originOf("data:text/html,hi"), std::nullopt);
}

TEST(PolicyTest, NavigationStaysWithTheAppAndItsAllowList) {
  NavigationRules rules{"demo", {"https://docs.example.com"}};
  EXPECT_TRUE(navigationAllowed(rules, "app://demo/"));
  EXPECT_TRUE(navigationAllowed(rules, "app://demo/page/2?x=1"));
  EXPECT_TRUE(navigationAllowed(rules, "https://docs.example.com/manual"));
  EXPECT_TRUE(navigationAllowed(rules, "about:blank"));
  EXPECT_FALSE(navigationAllowed(rules, "app://other/"));
  EXPECT_FALSE(navigationAllowed(rules, "app://demo.evil/"));
  EXPECT_FALSE(navigationAllowed(rules, "http://docs.example.com/"));
  EXPECT_FALSE(navigationAllowed(rules, "https://docs.example.com:444/"));
  EXPECT_FALSE(navigationAllowed(rules, "https://evil.test/"));
  EXPECT_FALSE(navigationAllowed(rules, "file:///etc/passwd"));
  EXPECT_FALSE(navigationAllowed(rules, "data:text/html,<script>1</script>"));
  EXPECT_FALSE(navigationAllowed(rules, "javascript:alert(1)"));
  // A backslash ends an https host as a slash does (the browser goes to evil.test); in the
  // app scheme it belongs to the user info (the browser goes to other).
  EXPECT_EQ(originOf("https://evil.test\\@docs.example.com/"), "https://evil.test");
  EXPECT_FALSE(navigationAllowed(rules, "https://evil.test\\@docs.example.com/"));
  EXPECT_EQ(originOf("app://demo\\@other/"), "app://other");
  EXPECT_FALSE(navigationAllowed(rules, "app://demo\\@other/"));
}

TEST(PolicyTest, BundlePathsStayInTheBundle) {
  EXPECT_EQ(bundlePathOf("/").value(), "index.html");
  EXPECT_EQ(bundlePathOf("").value(), "index.html");
  EXPECT_EQ(bundlePathOf("/assets/").value(), "assets/index.html");
  EXPECT_EQ(bundlePathOf("/assets/app.js?v=3#x").value(), "assets/app.js");
  EXPECT_EQ(bundlePathOf("/a%20b.css").value(), "a b.css");
  EXPECT_EQ(bundlePathOf("/./x.js").value(), "x.js");
  for (const char* bad : {"/../etc/passwd", "/a/../../x", "/%2e%2e/x", "/a/%2E%2E/%2e%2e/x",
                          "/a%00b", "/a//b", "/a/./b"}) {
    auto r = bundlePathOf(bad);
    ASSERT_FALSE(r) << bad;
    EXPECT_EQ(r.error().code(), ErrorCode::kInvalidArgument);
  }
  EXPECT_THAT(bundlePathOf("/%2e%2e/x").error().message(), HasSubstr("leaves the bundle"));
}

TEST(PolicyTest, ClientRoutesAndContentTypes) {
  EXPECT_TRUE(isClientRoute("settings/network"));
  EXPECT_FALSE(isClientRoute("assets/app.js"));
  EXPECT_EQ(contentTypeOf("a/b.HTML"), "text/html; charset=utf-8");
  EXPECT_EQ(contentTypeOf("x.mjs"), "text/javascript; charset=utf-8");
  EXPECT_EQ(contentTypeOf("x.wasm"), "application/wasm");
  EXPECT_EQ(contentTypeOf("x.bin"), "application/octet-stream");
}

TEST(PolicyTest, ServiceRoutes) {
  // The path of the route `path_and_query` names ("" when none).
  auto routedPath = [](std::string_view path_and_query) -> std::string {
    auto route = serviceRouteOf(path_and_query);
    if (!route) return "";
    const std::optional<ServiceRoute>& found = *route;
    return found ? found->path : "";
  };
  auto route = serviceRouteOf("/.ax/events/api/v2/events/publish?x=1");
  ASSERT_TRUE(route);
  const std::optional<ServiceRoute>& found = *route;
  if (!found) FAIL() << "no route";
  EXPECT_EQ(found->service, "events");
  EXPECT_EQ(found->path, "/api/v2/events/publish?x=1");
  EXPECT_EQ(routedPath("/.ax/blobs"), "/");
  EXPECT_EQ(routedPath("/.ax/logs?tail=1"), "/?tail=1");
  EXPECT_FALSE(*serviceRouteOf("/index.html"));
  EXPECT_FALSE(*serviceRouteOf("/.axe/events/x"));
  EXPECT_THAT(serviceRouteOf("/.ax/mail/x").error().message(), HasSubstr("unknown service"));
  EXPECT_THAT(serviceRouteOf("/.ax/events/../blobs/x").error().message(),
              HasSubstr("not a plain path"));
  EXPECT_FALSE(serviceRouteOf("/.ax/events/%2e%2e/x"));
  // The path becomes an HTTP request line: nothing may split it.
  EXPECT_THAT(
      serviceRouteOf("/.ax/events/api?x=1 HTTP/1.1\r\nX-Fleetlet-App: mallory").error().message(),
      HasSubstr("holds character 0x20"));
  EXPECT_THAT(serviceRouteOf("/.ax/logs/a\nb").error().message(), HasSubstr("0x0a"));
  EXPECT_THAT(serviceRouteOf("/.ax/blobs/\xc3\xa9").error().message(), HasSubstr("0xc3"));
}

TEST(PolicyTest, AxScriptCarriesTheAppsValuesAsJson) {
  AxInfo info{.app = "demo",
              .display_name = "Demo </script>",
              .settings = {{"line", 3}},
              .services = {{"events", "app://demo/.ax/events"}},
              .heartbeat_interval_ms = 250};
  std::string script = axScript(info);
  EXPECT_THAT(script, HasSubstr(R"("appName":"demo")"));
  EXPECT_THAT(script, HasSubstr(R"("settings":{"line":3})"));
  EXPECT_THAT(script, HasSubstr(R"("eventServiceUri":"app://demo/.ax/events")"));
  EXPECT_THAT(script, HasSubstr(R"("blobServiceUri":null)"));
  EXPECT_THAT(script, HasSubstr("setInterval(beat, 250)"));
  EXPECT_THAT(script, HasSubstr("location.href === 'about:blank') return;"));
  EXPECT_THAT(script, HasSubstr("Object.defineProperty(window, 'ax'"));
}

TEST(PolicyTest, GpuCompositingOnlyWithARenderNode) {
  auto dir = fleetlet::testing::TempDir::create("policy-gpu");
  ASSERT_TRUE(dir) << dir.error().describe();
  EXPECT_FALSE(haveRenderNode(dir->path() / "missing"));
  EXPECT_FALSE(haveRenderNode(dir->path()));
  std::ofstream(dir->path() / "card0") << "";  // a display controller only: no render node
  EXPECT_FALSE(haveRenderNode(dir->path()));
  std::ofstream(dir->path() / "renderD128") << "";
  EXPECT_TRUE(haveRenderNode(dir->path()));
}

}  // namespace
}  // namespace fleetlet::webview
