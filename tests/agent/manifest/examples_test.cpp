// Every example in manifests/examples/ parses; every one in manifests/examples/bad/ fails with
// the message its first line announces ("# expect: <start of the message>").
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <sstream>

#include "manifest/parse.h"

namespace fleetlet::manifest {
namespace {

namespace fs = std::filesystem;
using ::testing::StartsWith;

std::string readFile(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

std::vector<fs::path> manifestsIn(const fs::path& dir) {
  std::vector<fs::path> out;
  for (const auto& entry : fs::directory_iterator(dir)) {
    const auto ext = entry.path().extension();
    if (entry.is_regular_file() && (ext == ".yaml" || ext == ".yml" || ext == ".json")) {
      out.push_back(entry.path());
    }
  }
  std::sort(out.begin(), out.end());
  return out;
}

const fs::path kExamples = FLEETLET_MANIFEST_EXAMPLES_DIR;

TEST(ExamplesTest, EveryGoodExampleParses) {
  const auto files = manifestsIn(kExamples);
  EXPECT_GE(files.size(), 3u);
  for (const auto& file : files) {
    SCOPED_TRACE(file.string());
    auto state = parseNodeState(readFile(file), file.filename().string());
    ASSERT_TRUE(state) << state.error().message();
    EXPECT_FALSE(state->apps.empty());
  }
}

TEST(ExamplesTest, DemoHasTheAppsTheDemoScriptExpects) {
  auto state = parseNodeState(readFile(kExamples / "demo.yaml"));
  ASSERT_TRUE(state) << state.error().message();
  EXPECT_THAT(state->start_order,
              ::testing::ElementsAre("limited", "ticker", "after-ticker", "web"));
  for (const auto& [name, app] : state->apps) {
    EXPECT_EQ(app.image, "127.0.0.1:5000/fleetlet-test/busybox:1") << name;
  }
}

TEST(ExamplesTest, EveryBadExampleFailsAsAnnounced) {
  const auto files = manifestsIn(kExamples / "bad");
  EXPECT_GE(files.size(), 5u);
  for (const auto& file : files) {
    SCOPED_TRACE(file.string());
    const std::string text = readFile(file);
    constexpr std::string_view kExpect = "# expect: ";
    ASSERT_TRUE(text.starts_with(kExpect)) << "first line must be '# expect: <message>'";
    const std::string expected = text.substr(kExpect.size(), text.find('\n') - kExpect.size());
    auto state = parseNodeState(text, file.filename().string());
    ASSERT_FALSE(state) << "accepted";
    EXPECT_EQ(state.error().code(), ErrorCode::kInvalidArgument);
    EXPECT_THAT(state.error().message(), StartsWith(file.filename().string() + ": " + expected));
  }
}

}  // namespace
}  // namespace fleetlet::manifest
