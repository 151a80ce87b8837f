#include "support/test_cloud.h"

#include <signal.h>

#include <algorithm>
#include <chrono>
#include <fstream>
#include <sstream>
#include <thread>

#include "support/local_registry.h"

namespace fleetlet::testing {
namespace {

using namespace std::chrono_literals;

std::string readAll(const std::filesystem::path& p) {
  std::stringstream s;
  s << std::ifstream(p).rdbuf();
  return s.str();
}

std::filesystem::path sourceDir() {
  const char* dir = std::getenv("FLEETLET_SOURCE_DIR");
  return dir != nullptr ? dir : FLEETLET_TEST_SOURCE_DIR;
}

}  // namespace

TestCloud::TestCloud(TempDir dir, uint16_t port, uint16_t rogue_port)
    : dir_(std::move(dir)), port_(port), rogue_port_(rogue_port) {}

TestCloud::~TestCloud() { stop(); }

std::string TestCloud::url() const { return fmt::format("https://127.0.0.1:{}", port_); }
std::string TestCloud::rogueUrl() const { return fmt::format("https://127.0.0.1:{}", rogue_port_); }

Result<TestCloud> TestCloud::start() {
  Error last(ErrorCode::kUnavailable, "not started");
  for (int attempt = 0; attempt < 5; ++attempt) {
    FLEETLET_ASSIGN_OR_RETURN(TempDir dir, TempDir::create("fleetlet-cloud"));
    FLEETLET_ASSIGN_OR_RETURN(uint16_t port, freePort());
    FLEETLET_ASSIGN_OR_RETURN(uint16_t rogue, freePort());
    auto setup = runCommand(
        RunOptions{.argv = {(sourceDir() / "hack/cloud/setup.sh").string(), dir.path().string(),
                            std::to_string(port), std::to_string(rogue)}});
    if (!setup) return std::unexpected(setup.error().wrap("hack/cloud/setup.sh"));
    if (!setup->status.success()) {
      return fail(ErrorCode::kInternal, "hack/cloud/setup.sh: {}{}", setup->out, setup->err);
    }
    TestCloud cloud(std::move(dir), port, rogue);
    auto st = cloud.launch();
    if (st) return cloud;
    last = st.error();
    if (last.message().find("Address already in use") == std::string::npos) break;
  }
  return std::unexpected(last);
}

Status TestCloud::launch() {
  const auto log = dir() / "logs" / "nginx.out";
  auto child = ChildProcess::spawn(
      {.argv = {"nginx", "-e", (dir() / "logs/error.log").string(), "-p", dir().string(), "-c",
                (dir() / "nginx.conf").string(), "-g", "daemon off;"},
       .stdout_path = log,
       .stderr_path = log});
  if (!child) return std::unexpected(child.error().wrap("start nginx"));
  process_ = std::make_unique<ChildProcess>(std::move(*child));
  auto deadline = std::chrono::steady_clock::now() + 20s;
  while (std::chrono::steady_clock::now() < deadline) {
    if (auto exited = process_->poll()) {
      process_.reset();
      return fail(ErrorCode::kUnavailable, "nginx exited ({}):\n{}{}", exited->describe(),
                  readAll(log), readAll(dir() / "logs/error.log"));
    }
    // Plain HTTP to the TLS port: nginx answers 400, which means it listens.
    if (httpGetStatus("127.0.0.1", port_, "/").has_value() &&
        httpGetStatus("127.0.0.1", rogue_port_, "/").has_value()) {
      return {};
    }
    std::this_thread::sleep_for(20ms);
  }
  return fail(ErrorCode::kUnavailable, "nginx did not listen in 20 s:\n{}",
              readAll(dir() / "logs/error.log"));
}

void TestCloud::stop() {
  if (!process_) return;
  process_->stop(SIGTERM, 5s);
  process_.reset();
}

Status TestCloud::restart() {
  stop();
  return launch();
}

Status TestCloud::publish(const std::string& path, const std::string& content) const {
  auto target = www() / path;
  std::filesystem::create_directories(target.parent_path());
  auto tmp = target.parent_path() / ("." + target.filename().string() + ".tmp");
  {
    std::ofstream out(tmp, std::ios::binary);
    out << content;
    if (!out) return fail(ErrorCode::kInternal, "write {}", tmp.string());
  }
  // nginx's ETag is the mtime in seconds and the size: a body of the same size published in
  // the same second would look unchanged (304). Each version gets a later mtime, as any store
  // gives a new version a new ETag.
  std::error_code ec;
  auto previous = std::filesystem::last_write_time(target, ec);
  if (!ec) {
    auto mtime =
        std::max(std::filesystem::last_write_time(tmp), previous + std::chrono::seconds(1));
    std::filesystem::last_write_time(tmp, mtime);
  }
  std::filesystem::rename(tmp, target);
  return {};
}

std::string TestCloud::accessLog() const { return readAll(dir() / "logs/access.log"); }

}  // namespace fleetlet::testing
