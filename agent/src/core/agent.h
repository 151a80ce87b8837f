#pragma once
// Agent: fleetletd's core. Accepts manifests (validated, stored durably, then handed to the
// reconciler), keeps the node's event log, and answers the local API through NodeService.
//
// Threading: the reconciler's workers run while run() blocks; every NodeService method may be
// called from any thread.

#include <condition_variable>
#include <deque>
#include <filesystem>
#include <functional>
#include <memory>
#include <mutex>

#include "core/node_service.h"
#include "reconcile/reconciler.h"
#include "state/store.h"

namespace fleetlet::core {

struct AgentOptions {
  size_t parallelism = 4;        // reconcile workers
  size_t pull_parallelism = 2;   // images pulled at once
  size_t event_capacity = 2000;  // node events kept in memory
  // Where an app's logs live (for logDir()).
  std::function<std::filesystem::path(const std::string& app)> log_dir;
  // An app's status changed (see ReconcilerOptions::on_app).
  std::function<void(const reconcile::AppSnapshot&)> on_app;
};

class Agent : public NodeService {
 public:
  Agent(reconcile::ContainerRuntime& runtime, state::StateStore& store, AgentOptions options);

  // Loads the newest stored manifest, so a restarted agent converges to what it had accepted.
  Status load();
  // Runs the reconciler until stop(); fails only when it could not start a single worker.
  Status run() { return reconciler_.run(); }
  void stop() { reconciler_.stop(); }
  // A containerd event about a container arrived: reconcile its app soon.
  void containerChanged(const std::string& container_id, std::optional<uint32_t> exited_pid) {
    reconciler_.containerChanged(container_id, exited_pid);
  }
  // containerd events may have been missed: list every container again.
  void resync() { reconciler_.resync(); }
  // An app failed its health check.
  void unhealthy(const std::string& app, const std::string& why);
  reconcile::Reconciler& reconciler() { return reconciler_; }

  Result<ApplyResult> apply(std::string_view manifest_text, std::string_view source) override;
  Result<std::vector<AppStatus>> apps() override;
  Result<AppDetail> describe(std::string_view app) override;
  Status restart(std::string_view app) override;
  Result<NodeStatus> status() override;
  std::vector<NodeEvent> events(int64_t after_seq, size_t limit,
                                std::chrono::milliseconds wait) override;
  Result<std::filesystem::path> logDir(std::string_view app) override;

 private:
  void record(const std::string& app, const std::string& kind, const std::string& message);

  state::StateStore& store_;
  AgentOptions options_;
  reconcile::Reconciler reconciler_;
  std::mutex apply_mu_;  // serialises apply(): check revision, store, hand over

  std::mutex events_mu_;
  std::condition_variable events_cv_;
  std::deque<NodeEvent> events_;  // guarded by events_mu_
  int64_t next_seq_ = 1;          // guarded by events_mu_
};

}  // namespace fleetlet::core
