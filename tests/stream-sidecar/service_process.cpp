#include "service_process.h"

#include <gtest/gtest.h>

#include <fstream>
#include <regex>
#include <thread>

#include "test_client.h"

namespace fleetlet::streams::testing {
namespace {

std::string readFile(const std::filesystem::path& path) {
  std::ifstream in(path);
  return {std::istreambuf_iterator<char>(in), {}};
}

// A "Key:   123 kB" line of /proc/<pid>/status, in bytes.
std::uint64_t statusBytes(pid_t pid, const std::string& key) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/status");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind(key + ":", 0) == 0) return std::stoull(line.substr(key.size() + 1)) * 1024;
  }
  return 0;
}

}  // namespace

std::optional<ServiceProcess> startServiceProcess(const std::filesystem::path& dir, int run,
                                                  const std::vector<std::string>& extra_args,
                                                  const std::string& source_id,
                                                  std::filesystem::path data_dir) {
  if (data_dir.empty()) data_dir = dir / "data";
  const char* bin = std::getenv("FLEETLET_STREAMS_BIN");
  EXPECT_NE(bin, nullptr) << "FLEETLET_STREAMS_BIN is not set (run through ctest)";
  if (bin == nullptr) return std::nullopt;
  auto log = dir / fmt::format("service-{}.log", run);
  std::vector<std::string> argv = {bin,           "--data-dir",  data_dir.string(),
                                   "--listen",    "127.0.0.1:0", "--console-listen",
                                   "127.0.0.1:0", "--source-id", source_id};
  argv.insert(argv.end(), extra_args.begin(), extra_args.end());
  auto child = ChildProcess::spawn({.argv = argv, .stdout_path = log, .stderr_path = log});
  EXPECT_TRUE(child) << child.error().message();
  if (!child) return std::nullopt;
  ServiceProcess s{std::move(*child), 0, log};
  std::regex pattern("events listening on 127\\.0\\.0\\.1:([0-9]+)");
  auto deadline = std::chrono::steady_clock::now() + kPatience;
  bool exited = false;
  while (s.port == 0 && std::chrono::steady_clock::now() < deadline && !exited) {
    std::string text = readFile(log);
    std::smatch m;
    if (std::regex_search(text, m, pattern)) s.port = static_cast<std::uint16_t>(std::stoi(m[1]));
    exited = s.port == 0 && s.process.poll().has_value();
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  // A process that exited is the caller's to judge (some tests expect a refusal).
  if (!exited) {
    EXPECT_NE(s.port, 0) << "no listening line in " << log;
  }
  return s;
}

std::uint64_t peakRssBytes(pid_t pid) { return statusBytes(pid, "VmHWM"); }
std::uint64_t rssBytes(pid_t pid) { return statusBytes(pid, "VmRSS"); }

}  // namespace fleetlet::streams::testing
