#pragma once
// FakeNodeService: core::NodeService in memory, for the API and CLI tests. Its "manifest
// parser" understands only what the tests send: a `revision: N` line, one `runtime:` line per
// app, and the bad quantity "64Q", which it rejects like the real parser does.

#include <filesystem>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "core/event_notifier.h"
#include "core/node_service.h"

namespace fleetlet::api::test {

class FakeNodeService : public core::NodeService {
 public:
  Result<core::ApplyResult> apply(std::string_view manifest_text, std::string_view source) override;
  Result<std::vector<core::AppStatus>> apps() override;
  Result<core::AppDetail> describe(std::string_view app) override;
  Status restart(std::string_view app) override;
  Result<core::NodeStatus> status() override;
  std::vector<core::NodeEvent> events(int64_t after_seq, size_t limit) override;
  std::unique_ptr<core::EventWatch> watchEvents(std::function<void()> wake) override;
  Result<std::filesystem::path> logDir(std::string_view app) override;
  // setLogSource()'s, else the default (logDir()).
  Result<LogSource> logSource(std::string_view app) override;
  // With setScreen(): that PNG for the app on screen or a known app, and show() records;
  // without: the NodeService defaults (no display).
  Result<std::string> screenshot(std::string_view app) override;
  Status show(std::string_view app) override;

  // Test controls.
  // Two apps and a node status: "camera" (container, running 3m, 2 restarts, spec and two
  // events) and "plc-bridge" (native, backoff after exit code 1); revisions 7/6/6, not
  // converged, one error.
  void seedExample(core::Clock::time_point now);
  void addApp(core::AppDetail detail);
  void setStatus(core::NodeStatus status);
  void setLogDir(std::string app, std::filesystem::path dir);
  // The app's logs are the entries of `dir` whose text contains `only`.
  void setLogSource(std::string app, std::filesystem::path dir, std::string only);
  // Apps without a setLogDir() have their logs in root/<app> when that is a directory, as
  // in the agent (which checks names first: this fake does not).
  void setLogRoot(std::filesystem::path root);
  // Appends an event with the next seq and wakes the watchers. Returns its seq.
  int64_t publish(std::string app, std::string kind, std::string message);
  std::vector<std::string> restarted();
  void setScreen(std::string png);
  std::vector<std::string> shown();
  // The manifests apply() accepted, with their source.
  std::vector<std::pair<std::string, std::string>> applied();

 private:
  std::mutex mu_;
  core::EventNotifier notifier_;
  std::map<std::string, core::AppDetail, std::less<>> apps_;
  std::map<std::string, std::filesystem::path, std::less<>> log_dirs_;
  std::map<std::string, LogSource, std::less<>> log_sources_;
  std::filesystem::path log_root_;
  core::NodeStatus status_;
  std::vector<core::NodeEvent> events_;
  std::vector<std::string> restarted_;
  std::optional<std::string> screen_;
  std::vector<std::string> shown_;
  std::vector<std::pair<std::string, std::string>> applied_;
};

}  // namespace fleetlet::api::test
