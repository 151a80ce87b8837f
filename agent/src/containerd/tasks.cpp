#include "containerd/tasks.h"

#include <fcntl.h>

#include <cerrno>

#include "containerd/proto_convert.h"
#include "github.com/containerd/cgroups/stats/v1/metrics.pb.h"
#include "github.com/containerd/containerd/api/services/tasks/v1/tasks.grpc.pb.h"
#include "os/unique_fd.h"

namespace fleetlet::containerd {
namespace {

namespace api = ::containerd::services::tasks::v1;

TaskInfo fromProto(const ::containerd::v1::types::Process& p) {
  // containerd fills `id` (the task's id, equal to the container's for an init process) and
  // leaves container_id empty in Tasks.List and Tasks.Get answers.
  TaskInfo out{.id = p.id().empty() ? p.container_id() : p.id(),
               .pid = p.pid(),
               .exit_status = p.exit_status()};
  switch (p.status()) {
    case ::containerd::v1::types::CREATED:
      out.state = TaskInfo::State::kCreated;
      break;
    case ::containerd::v1::types::RUNNING:
      out.state = TaskInfo::State::kRunning;
      break;
    case ::containerd::v1::types::STOPPED:
      out.state = TaskInfo::State::kStopped;
      break;
    case ::containerd::v1::types::PAUSED:
      out.state = TaskInfo::State::kPaused;
      break;
    case ::containerd::v1::types::PAUSING:
      out.state = TaskInfo::State::kPausing;
      break;
    default:
      break;
  }
  return out;
}

}  // namespace

Result<TaskIo> fileIo(const std::string& stdout_path, const std::string& stderr_path) {
  // A file:// URI would make the shim write both streams into the stdout file; plain paths
  // keep them apart but must exist, since the shim opens them without O_CREAT.
  for (const auto& path : {stdout_path, stderr_path}) {
    UniqueFd fd(::open(path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0640));
    if (!fd) return failErrno(errno, "create task output {}", path);
  }
  return TaskIo{.stdin_uri = "", .stdout_uri = stdout_path, .stderr_uri = stderr_path};
}

std::string_view toString(TaskInfo::State state) {
  switch (state) {
    case TaskInfo::State::kCreated:
      return "created";
    case TaskInfo::State::kRunning:
      return "running";
    case TaskInfo::State::kStopped:
      return "stopped";
    case TaskInfo::State::kPaused:
      return "paused";
    case TaskInfo::State::kPausing:
      return "pausing";
    case TaskInfo::State::kUnknown:
      break;
  }
  return "unknown";
}

Result<uint32_t> TaskService::create(const std::string& container_id,
                                     const std::vector<Mount>& rootfs, const TaskIo& io) const {
  auto stub = api::Tasks::NewStub(channel());
  auto ctx = context();
  api::CreateTaskRequest req;
  req.set_container_id(container_id);
  for (const auto& m : rootfs) toProto(m, req.add_rootfs());
  req.set_stdin(io.stdin_uri);
  req.set_stdout(io.stdout_uri);
  req.set_stderr(io.stderr_uri);
  api::CreateTaskResponse resp;
  auto status = stub->Create(ctx.get(), req, &resp);
  if (!status.ok()) return std::unexpected(fromGrpc(status, "tasks.create " + container_id));
  return resp.pid();
}

Result<uint32_t> TaskService::start(const std::string& container_id) const {
  auto stub = api::Tasks::NewStub(channel());
  auto ctx = context();
  api::StartRequest req;
  req.set_container_id(container_id);
  api::StartResponse resp;
  auto status = stub->Start(ctx.get(), req, &resp);
  if (!status.ok()) return std::unexpected(fromGrpc(status, "tasks.start " + container_id));
  return resp.pid();
}

Result<ExitInfo> TaskService::wait(const std::string& container_id) const {
  auto stub = api::Tasks::NewStub(channel());
  auto ctx = context(std::chrono::milliseconds(0));
  api::WaitRequest req;
  req.set_container_id(container_id);
  api::WaitResponse resp;
  auto status = stub->Wait(ctx.get(), req, &resp);
  if (!status.ok()) return std::unexpected(fromGrpc(status, "tasks.wait " + container_id));
  return ExitInfo{.exit_status = resp.exit_status(), .exited_at = fromProto(resp.exited_at())};
}

Status TaskService::kill(const std::string& container_id, int signal, bool all) const {
  auto stub = api::Tasks::NewStub(channel());
  auto ctx = context();
  api::KillRequest req;
  req.set_container_id(container_id);
  req.set_signal(static_cast<uint32_t>(signal));
  req.set_all(all);
  google::protobuf::Empty resp;
  auto status = stub->Kill(ctx.get(), req, &resp);
  if (!status.ok()) return std::unexpected(fromGrpc(status, "tasks.kill " + container_id));
  return {};
}

Result<ExitInfo> TaskService::remove(const std::string& container_id) const {
  auto stub = api::Tasks::NewStub(channel());
  auto ctx = context();
  api::DeleteTaskRequest req;
  req.set_container_id(container_id);
  api::DeleteResponse resp;
  auto status = stub->Delete(ctx.get(), req, &resp);
  if (!status.ok()) return std::unexpected(fromGrpc(status, "tasks.delete " + container_id));
  return ExitInfo{.exit_status = resp.exit_status(), .exited_at = fromProto(resp.exited_at())};
}

Result<std::optional<TaskInfo>> TaskService::get(const std::string& container_id) const {
  auto stub = api::Tasks::NewStub(channel());
  auto ctx = context();
  api::GetRequest req;
  req.set_container_id(container_id);
  api::GetResponse resp;
  auto status = stub->Get(ctx.get(), req, &resp);
  if (status.error_code() == grpc::StatusCode::NOT_FOUND) return std::nullopt;
  if (!status.ok()) return std::unexpected(fromGrpc(status, "tasks.get " + container_id));
  return fromProto(resp.process());
}

Result<std::vector<TaskInfo>> TaskService::list() const {
  auto stub = api::Tasks::NewStub(channel());
  auto ctx = context();
  api::ListTasksRequest req;
  api::ListTasksResponse resp;
  auto status = stub->List(ctx.get(), req, &resp);
  if (!status.ok()) return std::unexpected(fromGrpc(status, "tasks.list"));
  std::vector<TaskInfo> out;
  for (const auto& p : resp.tasks()) out.push_back(fromProto(p));
  return out;
}

namespace {

// The type of a runc (or fleetlet shim) task's statistics in Tasks.Metrics (typeurl's name).
constexpr std::string_view kCgroupsV1Metrics = "io.containerd.cgroups.v1.Metrics";
// cgroup v1 writes "no limit" as the largest page-aligned int64 (and 0 pids.max as "max").
constexpr uint64_t kNoLimitAbove = uint64_t{1} << 62;

std::optional<uint64_t> limit(uint64_t value) {
  if (value == 0 || value >= kNoLimitAbove) return std::nullopt;
  return value;
}

}  // namespace

Result<std::map<std::string, TaskMetrics>> TaskService::metrics(
    std::chrono::milliseconds timeout) const {
  auto stub = api::Tasks::NewStub(channel());
  auto ctx = context(timeout);
  api::MetricsRequest req;
  api::MetricsResponse resp;
  auto status = stub->Metrics(ctx.get(), req, &resp);
  if (!status.ok()) return std::unexpected(fromGrpc(status, "tasks.metrics"));
  std::map<std::string, TaskMetrics> out;
  for (const auto& m : resp.metrics()) {
    const auto& url = m.data().type_url();
    if (!url.ends_with(kCgroupsV1Metrics)) continue;
    ::io::containerd::cgroups::v1::Metrics stats;
    if (!stats.ParseFromString(m.data().value())) continue;
    out[m.id()] = TaskMetrics{.cpu_ns = stats.cpu().usage().total(),
                              .memory_bytes = stats.memory().usage().usage(),
                              .memory_max_bytes = stats.memory().usage().max(),
                              .memory_limit_bytes = limit(stats.memory().usage().limit()),
                              .pids = stats.pids().current(),
                              .pids_limit = limit(stats.pids().limit()),
                              .oom_kills = stats.memory_oom_control().oom_kill()};
  }
  return out;
}

// --- Exec processes ---

Status TaskService::exec(const std::string& container_id, const std::string& exec_id,
                         const std::string& process_spec_json, const TaskIo& io,
                         std::chrono::milliseconds timeout) const {
  auto stub = api::Tasks::NewStub(channel());
  auto ctx = context(timeout);
  api::ExecProcessRequest req;
  req.set_container_id(container_id);
  req.set_exec_id(exec_id);
  req.set_stdin(io.stdin_uri);
  req.set_stdout(io.stdout_uri);
  req.set_stderr(io.stderr_uri);
  req.set_terminal(false);
  req.mutable_spec()->set_type_url(kOciProcessTypeUrl);
  req.mutable_spec()->set_value(process_spec_json);
  google::protobuf::Empty resp;
  auto status = stub->Exec(ctx.get(), req, &resp);
  if (!status.ok()) {
    return std::unexpected(fromGrpc(status, "tasks.exec " + container_id + "/" + exec_id));
  }
  return {};
}

Result<uint32_t> TaskService::startProcess(const std::string& container_id,
                                           const std::string& exec_id,
                                           std::chrono::milliseconds timeout) const {
  auto stub = api::Tasks::NewStub(channel());
  auto ctx = context(timeout);
  api::StartRequest req;
  req.set_container_id(container_id);
  req.set_exec_id(exec_id);
  api::StartResponse resp;
  auto status = stub->Start(ctx.get(), req, &resp);
  if (!status.ok()) {
    return std::unexpected(fromGrpc(status, "tasks.start " + container_id + "/" + exec_id));
  }
  return resp.pid();
}

Result<std::optional<ExitInfo>> TaskService::waitProcess(const std::string& container_id,
                                                         const std::string& exec_id,
                                                         std::chrono::milliseconds timeout) const {
  auto stub = api::Tasks::NewStub(channel());
  auto ctx = context(timeout);
  api::WaitRequest req;
  req.set_container_id(container_id);
  req.set_exec_id(exec_id);
  api::WaitResponse resp;
  auto status = stub->Wait(ctx.get(), req, &resp);
  if (status.error_code() == grpc::StatusCode::DEADLINE_EXCEEDED) return std::nullopt;
  // The deadline travels to containerd and its shim: when theirs fires first, containerd
  // answers UNKNOWN "context deadline exceeded" — the same timeout.
  if (!status.ok() && timeout.count() > 0 &&
      status.error_message().find("context deadline exceeded") != std::string::npos) {
    return std::nullopt;
  }
  if (!status.ok()) {
    return std::unexpected(fromGrpc(status, "tasks.wait " + container_id + "/" + exec_id));
  }
  return ExitInfo{.exit_status = resp.exit_status(), .exited_at = fromProto(resp.exited_at())};
}

Status TaskService::killProcess(const std::string& container_id, const std::string& exec_id,
                                int signal, std::chrono::milliseconds timeout) const {
  auto stub = api::Tasks::NewStub(channel());
  auto ctx = context(timeout);
  api::KillRequest req;
  req.set_container_id(container_id);
  req.set_exec_id(exec_id);
  req.set_signal(static_cast<uint32_t>(signal));
  google::protobuf::Empty resp;
  auto status = stub->Kill(ctx.get(), req, &resp);
  if (!status.ok()) {
    return std::unexpected(fromGrpc(status, "tasks.kill " + container_id + "/" + exec_id));
  }
  return {};
}

Result<ExitInfo> TaskService::removeProcess(const std::string& container_id,
                                            const std::string& exec_id,
                                            std::chrono::milliseconds timeout) const {
  auto stub = api::Tasks::NewStub(channel());
  auto ctx = context(timeout);
  api::DeleteProcessRequest req;
  req.set_container_id(container_id);
  req.set_exec_id(exec_id);
  api::DeleteResponse resp;
  auto status = stub->DeleteProcess(ctx.get(), req, &resp);
  if (!status.ok()) {
    return std::unexpected(
        fromGrpc(status, "tasks.delete-process " + container_id + "/" + exec_id));
  }
  return ExitInfo{.exit_status = resp.exit_status(), .exited_at = fromProto(resp.exited_at())};
}

}  // namespace fleetlet::containerd
