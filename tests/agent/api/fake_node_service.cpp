#include "fake_node_service.h"

#include <regex>

namespace fleetlet::api::test {

Result<core::ApplyResult> FakeNodeService::apply(std::string_view manifest_text,
                                                 std::string_view source) {
  std::string text(manifest_text);
  std::string prefix = source.empty() ? "" : std::string(source) + ": ";
  if (text.find("\"64Q\"") != std::string::npos || text.find(" 64Q") != std::string::npos) {
    return fail(ErrorCode::kInvalidArgument,
                "{}apps.camera.resources.memory: \"64Q\" is not a quantity", prefix);
  }
  std::smatch m;
  if (!std::regex_search(text, m, std::regex(R"("?revision"?:\s*(\d+))"))) {
    return fail(ErrorCode::kInvalidArgument, "{}revision: missing", prefix);
  }
  int64_t revision = std::stoll(m[1]);
  int apps = 0;
  for (size_t at = 0; (at = text.find("runtime", at)) != std::string::npos; ++at) ++apps;
  {
    std::lock_guard lock(mu_);
    if (revision <= status_.desired_revision) {
      return fail(ErrorCode::kFailedPrecondition,
                  "revision {} is not newer than the applied revision {}", revision,
                  status_.desired_revision);
    }
    status_.desired_revision = revision;
    applied_.emplace_back(text, std::string(source));
  }
  publish("", "applied", "revision " + std::to_string(revision));
  return core::ApplyResult{.revision = revision, .apps = apps};
}

Result<std::vector<core::AppStatus>> FakeNodeService::apps() {
  std::lock_guard lock(mu_);
  std::vector<core::AppStatus> out;
  out.reserve(apps_.size());
  for (const auto& [name, detail] : apps_) out.push_back(detail.status);
  return out;
}

Result<core::AppDetail> FakeNodeService::describe(std::string_view app) {
  std::lock_guard lock(mu_);
  auto it = apps_.find(app);
  if (it == apps_.end()) return fail(ErrorCode::kNotFound, "app \"{}\" not found", app);
  return it->second;
}

Status FakeNodeService::restart(std::string_view app) {
  {
    std::lock_guard lock(mu_);
    if (!apps_.contains(app)) return fail(ErrorCode::kNotFound, "app \"{}\" not found", app);
    restarted_.emplace_back(app);
  }
  publish(std::string(app), "restarting", "restart requested");
  return {};
}

Result<core::NodeStatus> FakeNodeService::status() {
  std::lock_guard lock(mu_);
  return status_;
}

std::vector<core::NodeEvent> FakeNodeService::events(int64_t after_seq, size_t limit) {
  std::lock_guard lock(mu_);
  std::vector<core::NodeEvent> out;
  for (const auto& e : events_) {
    if (e.seq > after_seq && out.size() < limit) out.push_back(e);
  }
  return out;
}

std::unique_ptr<core::EventWatch> FakeNodeService::watchEvents(std::function<void()> wake) {
  return notifier_.watch(std::move(wake));
}

Result<std::filesystem::path> FakeNodeService::logDir(std::string_view app) {
  std::lock_guard lock(mu_);
  auto it = log_dirs_.find(app);
  if (it != log_dirs_.end()) return it->second;
  std::error_code ec;
  if (!log_root_.empty() && std::filesystem::is_directory(log_root_ / app, ec)) {
    return log_root_ / app;
  }
  return fail(ErrorCode::kNotFound, "app \"{}\" has no logs", app);
}

Result<core::NodeService::LogSource> FakeNodeService::logSource(std::string_view app) {
  {
    std::lock_guard lock(mu_);
    auto it = log_sources_.find(app);
    if (it != log_sources_.end()) return it->second;
  }
  return NodeService::logSource(app);
}

void FakeNodeService::setLogSource(std::string app, std::filesystem::path dir, std::string only) {
  std::lock_guard lock(mu_);
  log_sources_[std::move(app)] = LogSource{.dir = std::move(dir), .only = std::move(only)};
}

void FakeNodeService::setLogRoot(std::filesystem::path root) {
  std::lock_guard lock(mu_);
  log_root_ = std::move(root);
}

void FakeNodeService::seedExample(core::Clock::time_point now) {
  using namespace std::chrono_literals;
  core::AppDetail camera;
  camera.status = {.name = "camera",
                   .runtime = "container",
                   .image = "127.0.0.1:5000/acme/camera:1.4",
                   .state = "running",
                   .restarts = 2,
                   .last_exit_code = 137,
                   .last_exit_at = now - 4min,
                   .started_at = now - 3min - 5s,
                   .container_id = "camera-3f2a",
                   .spec_hash = "sha256:0123abcd",
                   .pid = 4242};
  camera.spec = Json::parse(R"({"runtime":"container","image":"127.0.0.1:5000/acme/camera:1.4",
      "args":["/bin/camera","--fps","2"],"env":{"CAMERA_ID":"cam-7"},
      "network":{"egress":"none","expose":[{"port":8080,"hostPort":18080}]}})");
  camera.recent_events = {
      {.seq = 1, .time = now - 4min, .app = "camera", .kind = "exited", .message = "code 137"},
      {.seq = 2, .time = now - 3min, .app = "camera", .kind = "started", .message = "pid 4242"}};
  addApp(std::move(camera));
  core::AppDetail plc;
  plc.status = {.name = "plc-bridge",
                .runtime = "native",
                .state = "backoff",
                .restarts = 5,
                .last_exit_code = 1,
                .last_exit_at = now - 10s,
                .backoff_until = now + 20s,
                .message = "exited with code 1",
                .healthy = false};
  plc.spec = Json::parse(R"({"runtime":"native","exec":{"path":"/opt/plc/bridge"}})");
  addApp(std::move(plc));
  setStatus({.desired_revision = 7,
             .applied_revision = 6,
             .last_good_revision = 6,
             .converged = false,
             .errors = {"apps.plc-bridge: exited with code 1"}});
}

void FakeNodeService::addApp(core::AppDetail detail) {
  std::lock_guard lock(mu_);
  apps_[detail.status.name] = std::move(detail);
}

void FakeNodeService::setStatus(core::NodeStatus status) {
  std::lock_guard lock(mu_);
  status_ = std::move(status);
}

void FakeNodeService::setLogDir(std::string app, std::filesystem::path dir) {
  std::lock_guard lock(mu_);
  log_dirs_[std::move(app)] = std::move(dir);
}

int64_t FakeNodeService::publish(std::string app, std::string kind, std::string message) {
  int64_t seq = 0;
  {
    std::lock_guard lock(mu_);
    seq = events_.empty() ? 1 : events_.back().seq + 1;
    events_.push_back({.seq = seq,
                       .time = core::Clock::now(),
                       .app = std::move(app),
                       .kind = std::move(kind),
                       .message = std::move(message)});
  }
  notifier_.notify();
  return seq;
}

Result<std::string> FakeNodeService::screenshot(std::string_view app) {
  std::lock_guard lock(mu_);
  if (!screen_) return NodeService::screenshot(app);
  if (!app.empty() && !apps_.contains(app)) {
    return fail(ErrorCode::kNotFound, "no app \"{}\"", app);
  }
  return *screen_;
}

Status FakeNodeService::show(std::string_view app) {
  std::lock_guard lock(mu_);
  if (!screen_) return NodeService::show(app);
  if (!apps_.contains(app)) return fail(ErrorCode::kNotFound, "no app \"{}\"", app);
  shown_.emplace_back(app);
  return {};
}

void FakeNodeService::setScreen(std::string png) {
  std::lock_guard lock(mu_);
  screen_ = std::move(png);
}

std::vector<std::string> FakeNodeService::shown() {
  std::lock_guard lock(mu_);
  return shown_;
}

std::vector<std::string> FakeNodeService::restarted() {
  std::lock_guard lock(mu_);
  return restarted_;
}

std::vector<std::pair<std::string, std::string>> FakeNodeService::applied() {
  std::lock_guard lock(mu_);
  return applied_;
}

}  // namespace fleetlet::api::test
