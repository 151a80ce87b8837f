// Runs every seed and regression input under tests/fuzz/corpus/<target>/ through its fuzz
// target in the normal build, so inputs that once crashed stay fixed without clang.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <sstream>

#include "targets.h"

namespace fleetlet::fuzz {
namespace {

std::string readFile(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

TEST(FuzzCorpusReplayTest, EveryCorpusFileRunsCleanly) {
  const std::filesystem::path root = FLEETLET_FUZZ_CORPUS_DIR;
  for (const Target& target : kTargets) {
    const auto dir = root / target.name;
    ASSERT_TRUE(std::filesystem::is_directory(dir)) << dir;
    size_t files = 0;
    for (const auto& entry : std::filesystem::directory_iterator(dir)) {
      if (!entry.is_regular_file()) continue;
      SCOPED_TRACE(entry.path().string());
      target.run(readFile(entry.path()));
      ++files;
    }
    EXPECT_GT(files, 0u) << "empty corpus for " << target.name;
  }
}

TEST(FuzzCorpusReplayTest, HostileShapes) {
  std::string deep_array(100000, '[');
  std::string deep_object;
  for (int i = 0; i < 20000; ++i) deep_object += "{\"a\":";
  for (const Target& target : kTargets) {
    SCOPED_TRACE(std::string(target.name));
    target.run("");
    target.run(std::string(1, '\0'));
    target.run(deep_array);
    target.run(deep_object);
    target.run(std::string(70000, '"'));
    target.run("\xff\xfe{\"schemaVersion\":2}");
  }
}

}  // namespace
}  // namespace fleetlet::fuzz
