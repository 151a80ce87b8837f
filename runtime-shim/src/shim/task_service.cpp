#include "shim/task_service.h"

#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <fstream>

#include "github.com/containerd/cgroups/stats/v1/metrics.pb.h"
#include "github.com/containerd/containerd/api/events/task.pb.h"
#include "github.com/containerd/containerd/runtime/v2/runc/options/oci.pb.h"
#include "shim/bundle_files.h"
#include "shim/event_types.h"
#include "shim/proto_time.h"

namespace fleetlet::shim {
namespace {

namespace fs = std::filesystem;
namespace events = containerd::events;
using ttrpc::RpcResult;
using ttrpc::RpcStatus;
using ttrpc::StatusCode;

constexpr const char* kVersion = "fleetlet-shim 0.1.0";

std::unexpected<RpcStatus> rpcFail(StatusCode code, std::string message) {
  return std::unexpected(RpcStatus{code, std::move(message)});
}

std::unexpected<RpcStatus> rpcFail(const Error& error) {
  return std::unexpected(RpcStatus::fromError(error));
}

// Registers one RPC: parses Req, calls `fn`, serializes the answer (Empty for void).
template <typename Req, typename Fn>
void route(ttrpc::Server& server, const char* method, Fn fn) {
  server.registerMethod(
      "containerd.task.v2.Task", method,
      [fn](const ttrpc::RequestContext&, std::string_view payload) -> RpcResult<std::string> {
        Req request;
        if (!request.ParseFromArray(payload.data(), static_cast<int>(payload.size()))) {
          return rpcFail(StatusCode::kInvalidArgument, "malformed request message");
        }
        auto result = fn(request);
        if (!result) return std::unexpected(std::move(result).error());
        if constexpr (std::is_void_v<typename decltype(result)::value_type>) {
          return std::string();  // google.protobuf.Empty
        } else {
          return result->SerializeAsString();
        }
      });
}

void unimplemented(ttrpc::Server& server, const char* method) {
  server.registerMethod(
      "containerd.task.v2.Task", method, [method](const ttrpc::RequestContext&, std::string_view) {
        return RpcResult<std::string>(
            rpcFail(StatusCode::kUnimplemented,
                    fmt::format("{} is not supported by the fleetlet shim", method)));
      });
}

}  // namespace

std::string cgroupPathFor(const NativeSpec& spec, const std::string& ns, const std::string& id) {
  if (!spec.cgroups_path.empty()) {
    // systemd-style "slice:prefix:name" paths are not supported: use the name part.
    if (spec.cgroups_path.find(':') != std::string::npos) {
      return "/" + ns + "/" + spec.cgroups_path.substr(spec.cgroups_path.rfind(':') + 1);
    }
    return spec.cgroups_path;
  }
  return "/" + ns + "/" + id;
}

TaskService::TaskService(ShimContext ctx, Reaper& reaper, Publisher& publisher)
    : ctx_(std::move(ctx)), reaper_(reaper), publisher_(publisher) {
  oom_stop_.reset(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));
}

TaskService::~TaskService() {
  std::uint64_t one = 1;
  (void)!::write(oom_stop_.get(), &one, sizeof(one));
  if (oom_thread_ && oom_thread_->joinable()) oom_thread_->join();
}

void TaskService::registerWith(ttrpc::Server& server) {
  route<task::CreateTaskRequest>(server, "Create", [this](const auto& r) { return create(r); });
  route<task::StartRequest>(server, "Start", [this](const auto& r) { return start(r); });
  route<task::StateRequest>(server, "State", [this](const auto& r) { return state(r); });
  route<task::DeleteRequest>(server, "Delete", [this](const auto& r) { return remove(r); });
  route<task::PidsRequest>(server, "Pids", [this](const auto& r) { return pids(r); });
  route<task::KillRequest>(server, "Kill", [this](const auto& r) { return kill(r); });
  route<task::WaitRequest>(server, "Wait", [this](const auto& r) { return wait(r); });
  route<task::StatsRequest>(server, "Stats", [this](const auto& r) { return stats(r); });
  route<task::ConnectRequest>(server, "Connect", [this](const auto& r) { return connect(r); });
  route<task::ShutdownRequest>(server, "Shutdown", [this](const auto& r) { return shutdown(r); });
  route<task::CloseIORequest>(server, "CloseIO", [this](const auto& r) { return closeIo(r); });
  route<task::UpdateTaskRequest>(server, "Update", [this](const auto& r) { return update(r); });
  route<task::ExecProcessRequest>(server, "Exec", [this](const auto& r) { return exec(r); });
  for (const char* m : {"Pause", "Resume", "Checkpoint", "ResizePty"}) {
    unimplemented(server, m);
  }
}

LoggerSpawner TaskService::loggerSpawner() {
  return [this](const std::function<void()>& in_child) {
    // Loggers are reaped like orphans (nobody watches the exit); their end is awaited through
    // the pidfd, opened while the reaper cannot have reaped the child yet.
    SpawnedLogger spawned;
    spawned.pid = reaper_.spawnWatched(
        [&] {
          pid_t pid = ::fork();
          if (pid == 0) in_child();
          if (pid > 0) spawned.pidfd = pidfdOf(pid);
          return pid;
        },
        [](pid_t, ProcessExit) {});
    return spawned;
  };
}

Reaper::Callback TaskService::exitHandler() {
  // The reaper thread must never wait for mu_: an RPC holding mu_ may itself wait for the
  // reaper (runc start/delete). The exit is handled on a thread of its own instead.
  return [this](pid_t pid, ProcessExit exit) {
    std::thread([this, pid, exit] { onExit(pid, exit); }).detach();
  };
}

RpcResult<void> TaskService::checkId(const std::string& id, const std::string& exec_id) const {
  if (id != ctx_.id) {
    return rpcFail(StatusCode::kNotFound,
                   fmt::format("task {} not found (this shim serves {})", id, ctx_.id));
  }
  if (!exec_id.empty()) {
    return rpcFail(StatusCode::kInvalidArgument,
                   fmt::format("exec {}: this call takes no exec id", exec_id));
  }
  return {};
}

RpcResult<task::CreateTaskResponse> TaskService::create(const task::CreateTaskRequest& r) {
  if (r.id() != ctx_.id) {
    return rpcFail(StatusCode::kInvalidArgument,
                   fmt::format("this shim serves task {}, not {}", ctx_.id, r.id()));
  }
  std::unique_lock lock(mu_);
  if (phase_ != Phase::kNone) {
    return rpcFail(StatusCode::kAlreadyExists, fmt::format("task {} already exists", r.id()));
  }
  fs::path bundle = r.bundle().empty() ? ctx_.bundle : fs::path(r.bundle());
  auto spec = loadSpec(bundle);
  if (!spec) return rpcFail(spec.error());
  const bool native = r.rootfs().empty() && spec->native();
  if (r.terminal() || spec->terminal) {
    return rpcFail(StatusCode::kInvalidArgument,
                   "a terminal (ctr run -t) is not supported by the fleetlet shim");
  }
  if (!r.checkpoint().empty()) {
    return rpcFail(StatusCode::kUnimplemented, "checkpoint restore is not supported");
  }

  Cgroup cgroup(cgroupPathFor(*spec, ctx_.ns, ctx_.id), ctx_.cgroup_root);
  // runc makes a container's cgroup itself; a native app's is ours to make.
  auto cleanup_cgroup = [&] {
    if (native) (void)cgroup.remove();
  };
  if (native) {
    if (auto made = cgroup.create(); !made) return rpcFail(made.error().wrap("task {}", r.id()));
    if (auto applied = cgroup.apply(spec->resources); !applied) {
      cleanup_cgroup();
      return rpcFail(applied.error().wrap("limits of task {}", r.id()));
    }
  }

  auto io = openStdio({r.stdin(), r.stdout(), r.stderr()}, ctx_.ns, ctx_.id, loggerSpawner());
  if (!io) {
    cleanup_cgroup();
    return rpcFail(io.error().wrap("stdio of task {}", r.id()));
  }
  UniqueFd logger = std::move(io->logger);
  auto on_exit = exitHandler();
  Result<std::unique_ptr<TaskProcess>> process = std::unexpected(Error(ErrorCode::kInternal, ""));
  if (native) {
    auto made = NativeProcess::create(*spec, ctx_.ns, ctx_.id, std::move(*io), reaper_, on_exit,
                                      [&](pid_t pid) { return cgroup.addProcess(pid); });
    if (made) {
      native_spec_ = *spec;
      sandbox_ = (*made)->sandbox();
      process = std::unique_ptr<TaskProcess>(std::move(*made));
    } else {
      process = std::unexpected(made.error());
    }
  } else {
    RuncConfig config{
        .id = ctx_.id, .bundle = bundle, .root = ctx_.runc_root.string(), .binary = "runc"};
    containerd::runc::v1::Options options;
    if (r.options().type_url().ends_with("containerd.runc.v1.Options") &&
        options.ParseFromString(r.options().value())) {
      if (!options.root().empty()) config.root = options.root();
      if (!options.binary_name().empty()) config.binary = options.binary_name();
    }
    std::vector<RootfsMount> rootfs;
    for (const auto& m : r.rootfs()) {
      rootfs.push_back({m.type(), m.source(), {m.options().begin(), m.options().end()}});
    }
    auto made = RuncProcess::create(config, rootfs, std::move(*io), reaper_, on_exit);
    if (made) {
      process = std::unique_ptr<TaskProcess>(std::move(*made));
    } else {
      process = std::unexpected(made.error());
    }
  }
  if (!process) {
    lock.unlock();  // the child's exit callback needs mu_
    cleanup_cgroup();
    return rpcFail(process.error().wrap("create task {}", r.id()));
  }
  pid_ = (*process)->pid();
  process_ = std::move(*process);
  logger_ = std::move(logger);
  cgroup_ = cgroup;
  created_ = r;
  created_.set_bundle(bundle.string());
  // onExit may already have run (the child died after reporting ready): keep kStopped then.
  if (phase_ == Phase::kNone) phase_ = Phase::kCreated;
  writeSmallFile(bundle / kInitPidFile, std::to_string(pid_));
  writeSmallFile(bundle / kCgroupFile, cgroup.path());

  events::TaskCreate event;
  event.set_container_id(ctx_.id);
  event.set_bundle(bundle.string());
  *event.mutable_rootfs() = r.rootfs();
  event.mutable_io()->set_stdin(r.stdin());
  event.mutable_io()->set_stdout(r.stdout());
  event.mutable_io()->set_stderr(r.stderr());
  event.set_pid(static_cast<std::uint32_t>(pid_));
  publisher_.publish("/tasks/create", type_names::kTaskCreate, event);

  if (!oom_thread_) {
    oom_seen_ = cgroup.oomKills();
    if (auto notifier = cgroup.oomNotifier()) {
      oom_thread_.emplace(
          [this, fd = std::make_shared<UniqueFd>(std::move(*notifier))] { watchOom(fd->get()); });
    }
  }
  task::CreateTaskResponse response;
  response.set_pid(static_cast<std::uint32_t>(pid_));
  return response;
}

void TaskService::watchOom(int fd) {
  for (;;) {
    pollfd fds[2] = {{fd, POLLIN, 0}, {oom_stop_.get(), POLLIN, 0}};
    if (::poll(fds, 2, -1) < 0) {
      if (errno == EINTR) continue;
      return;
    }
    if (fds[1].revents & POLLIN) return;
    char buf[4096];
    while (::read(fd, buf, sizeof(buf)) > 0) {
    }
    std::lock_guard lock(mu_);
    if (!cgroup_ || phase_ == Phase::kDeleted) return;
    publishOomIfNew();
  }
}

void TaskService::publishOomIfNew() {
  if (!cgroup_) return;
  // v1 also wakes the eventfd when the cgroup goes away: only a new kill is an OOM.
  std::uint64_t kills = cgroup_->oomKills();
  if (kills <= oom_seen_) return;
  oom_seen_ = kills;
  events::TaskOOM event;
  event.set_container_id(ctx_.id);
  publisher_.publish("/tasks/oom", type_names::kTaskOom, event);
}

RpcResult<task::StartResponse> TaskService::start(const task::StartRequest& r) {
  if (auto ok = checkId(r.id(), ""); !ok) return std::unexpected(ok.error());
  if (!r.exec_id().empty()) return execStart(r);
  std::lock_guard lock(mu_);
  if (phase_ != Phase::kCreated || !process_) {
    return rpcFail(StatusCode::kFailedPrecondition,
                   fmt::format("task {} is not in the created state", r.id()));
  }
  // Under mu_: an exit that follows at once waits for /tasks/start to be queued first.
  if (auto started = process_->start(); !started) {
    return rpcFail(started.error().wrap("task {}", r.id()));
  }
  if (phase_ == Phase::kCreated) phase_ = Phase::kRunning;
  events::TaskStart event;
  event.set_container_id(ctx_.id);
  event.set_pid(static_cast<std::uint32_t>(pid_));
  publisher_.publish("/tasks/start", type_names::kTaskStart, event);
  task::StartResponse response;
  response.set_pid(static_cast<std::uint32_t>(pid_));
  return response;
}

void TaskService::onExit(pid_t pid, ProcessExit exit) {
  std::lock_guard lock(mu_);
  for (auto& [exec_id, e] : execs_) {
    if (e.pid != pid || e.phase != Phase::kRunning) continue;
    e.phase = Phase::kStopped;
    e.exit = exit;
    exited_cv_.notify_all();
    events::TaskExit event;
    event.set_container_id(ctx_.id);
    event.set_id(exec_id);
    event.set_pid(static_cast<std::uint32_t>(pid));
    event.set_exit_status(static_cast<std::uint32_t>(exit.status));
    setTimestamp(event.mutable_exited_at(), exit.at);
    publisher_.publish("/tasks/exit", type_names::kTaskExit, event);
    return;
  }
  // pid_ is 0 while Create runs and after it failed: that child's end is Create's error.
  if (pid_ == 0 || pid != pid_) return;
  exit_ = exit;
  phase_ = Phase::kStopped;
  exited_cv_.notify_all();
  // The OOM watcher may not have woken yet: an OOM kill is reported before the exit.
  if (cgroup_) publishOomIfNew();
  events::TaskExit event;
  event.set_container_id(ctx_.id);
  event.set_id(ctx_.id);
  event.set_pid(static_cast<std::uint32_t>(pid));
  event.set_exit_status(static_cast<std::uint32_t>(exit.status));
  setTimestamp(event.mutable_exited_at(), exit.at);
  publisher_.publish("/tasks/exit", type_names::kTaskExit, event);
}

RpcResult<task::StateResponse> TaskService::state(const task::StateRequest& r) {
  if (auto ok = checkId(r.id(), ""); !ok) return std::unexpected(ok.error());
  if (!r.exec_id().empty()) return execState(r);
  std::lock_guard lock(mu_);
  if (phase_ == Phase::kNone || phase_ == Phase::kDeleted) {
    return rpcFail(StatusCode::kNotFound, fmt::format("task {} not found", r.id()));
  }
  task::StateResponse s;
  s.set_id(ctx_.id);
  s.set_bundle(created_.bundle());
  s.set_pid(static_cast<std::uint32_t>(pid_));
  s.set_stdin(created_.stdin());
  s.set_stdout(created_.stdout());
  s.set_stderr(created_.stderr());
  switch (phase_) {
    case Phase::kCreated:
      s.set_status(containerd::v1::types::CREATED);
      break;
    case Phase::kRunning:
      s.set_status(containerd::v1::types::RUNNING);
      break;
    default:
      s.set_status(containerd::v1::types::STOPPED);
      s.set_exit_status(static_cast<std::uint32_t>(exit_.status));
      setTimestamp(s.mutable_exited_at(), exit_.at);
      break;
  }
  return s;
}

RpcResult<void> TaskService::kill(const task::KillRequest& r) {
  if (auto ok = checkId(r.id(), ""); !ok) return std::unexpected(ok.error());
  if (!r.exec_id().empty()) return execKill(r);
  std::lock_guard lock(mu_);
  if (phase_ == Phase::kNone || phase_ == Phase::kDeleted) {
    return rpcFail(StatusCode::kNotFound, fmt::format("task {} not found", r.id()));
  }
  int sig = static_cast<int>(r.signal());
  if (r.all() && cgroup_) {
    if (auto sent = cgroup_->signalAll(sig); !sent) {
      if (phase_ == Phase::kStopped) {
        return rpcFail(StatusCode::kNotFound, "process already finished");
      }
      return rpcFail(sent.error());
    }
    return {};
  }
  if (phase_ == Phase::kStopped) return rpcFail(StatusCode::kNotFound, "process already finished");
  if (::kill(pid_, sig) != 0) {
    return rpcFail(errno == ESRCH ? StatusCode::kNotFound : StatusCode::kInternal,
                   fmt::format("signal {} to {}: {}", sig, pid_, std::strerror(errno)));
  }
  return {};
}

RpcResult<task::WaitResponse> TaskService::wait(const task::WaitRequest& r) {
  if (auto ok = checkId(r.id(), ""); !ok) return std::unexpected(ok.error());
  if (!r.exec_id().empty()) return execWait(r);
  std::unique_lock lock(mu_);
  if (phase_ == Phase::kNone) {
    return rpcFail(StatusCode::kNotFound, fmt::format("task {} not found", r.id()));
  }
  exited_cv_.wait(lock, [&] { return phase_ == Phase::kStopped || phase_ == Phase::kDeleted; });
  task::WaitResponse response;
  response.set_exit_status(static_cast<std::uint32_t>(exit_.status));
  setTimestamp(response.mutable_exited_at(), exit_.at);
  return response;
}

RpcResult<task::DeleteResponse> TaskService::remove(const task::DeleteRequest& r) {
  if (auto ok = checkId(r.id(), ""); !ok) return std::unexpected(ok.error());
  if (!r.exec_id().empty()) return execRemove(r);
  std::unique_lock lock(mu_);
  if (phase_ == Phase::kNone || phase_ == Phase::kDeleted) {
    return rpcFail(StatusCode::kNotFound, fmt::format("task {} not found", r.id()));
  }
  if (phase_ == Phase::kRunning) {
    return rpcFail(StatusCode::kFailedPrecondition,
                   fmt::format("task {} is running: kill it before deleting", r.id()));
  }
  if (phase_ == Phase::kCreated) {
    // Never started: the destructor ends the waiting child (and releases a runc container's
    // state and rootfs itself), so there is nothing left for cleanup(); wait for the exit.
    process_.reset();
    exited_cv_.wait(lock, [&] { return phase_ == Phase::kStopped; });
  }
  if (process_) {
    if (auto cleaned = process_->cleanup(); !cleaned) {
      // The task is gone either way; containerd's `delete` subcommand retries the runc state.
      (void)std::fprintf(stderr, "fleetlet-shim: %s\n", cleaned.error().message().c_str());
    }
    process_.reset();
  }
  if (cgroup_) {
    // Without a pid namespace, children of the app may outlive it: end them with the task.
    for (int attempt = 0; attempt < 100; ++attempt) {
      auto left = cgroup_->pids();
      if (!left || left->empty()) break;
      for (pid_t pid : *left) ::kill(pid, SIGKILL);
      lock.unlock();
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
      lock.lock();
    }
    (void)cgroup_->remove();
  }
  // The app and our copies of its pipes are gone: the logger sees their end; wait for it, so
  // the log is complete when the task's delete returns.
  finishLogger(logger_);
  logger_.reset();
  phase_ = Phase::kDeleted;
  execs_.clear();  // their processes went with the cgroup
  std::error_code ec;
  fs::remove(fs::path(created_.bundle()) / kInitPidFile, ec);
  fs::remove(fs::path(created_.bundle()) / kCgroupFile, ec);

  events::TaskDelete event;
  event.set_container_id(ctx_.id);
  event.set_pid(static_cast<std::uint32_t>(pid_));
  event.set_exit_status(static_cast<std::uint32_t>(exit_.status));
  setTimestamp(event.mutable_exited_at(), exit_.at);
  publisher_.publish("/tasks/delete", type_names::kTaskDelete, event);

  task::DeleteResponse response;
  response.set_pid(static_cast<std::uint32_t>(pid_));
  response.set_exit_status(static_cast<std::uint32_t>(exit_.status));
  setTimestamp(response.mutable_exited_at(), exit_.at);
  exited_cv_.notify_all();
  return response;
}

RpcResult<task::PidsResponse> TaskService::pids(const task::PidsRequest& r) {
  if (auto ok = checkId(r.id(), ""); !ok) return std::unexpected(ok.error());
  std::lock_guard lock(mu_);
  if (!cgroup_) return rpcFail(StatusCode::kNotFound, fmt::format("task {} not found", r.id()));
  auto pids = cgroup_->pids();
  if (!pids) return rpcFail(pids.error());
  task::PidsResponse response;
  for (pid_t pid : *pids) response.add_processes()->set_pid(static_cast<std::uint32_t>(pid));
  return response;
}

RpcResult<task::StatsResponse> TaskService::stats(const task::StatsRequest& r) {
  if (auto ok = checkId(r.id(), ""); !ok) return std::unexpected(ok.error());
  std::lock_guard lock(mu_);
  if (!cgroup_) return rpcFail(StatusCode::kNotFound, fmt::format("task {} not found", r.id()));
  CgroupStats s = cgroup_->stats();
  io::containerd::cgroups::v1::Metrics metrics;
  metrics.mutable_pids()->set_current(s.pids_current);
  metrics.mutable_pids()->set_limit(s.pids_limit);
  metrics.mutable_cpu()->mutable_usage()->set_total(s.cpu_usage_ns);
  metrics.mutable_memory()->mutable_usage()->set_usage(s.memory_usage);
  metrics.mutable_memory()->mutable_usage()->set_max(s.memory_max_usage);
  metrics.mutable_memory()->mutable_usage()->set_limit(s.memory_limit);
  metrics.mutable_memory_oom_control()->set_oom_kill(s.oom_kills);
  task::StatsResponse response;
  response.mutable_stats()->set_type_url(std::string(type_names::kCgroupsV1Metrics));
  metrics.SerializeToString(response.mutable_stats()->mutable_value());
  return response;
}

RpcResult<task::ConnectResponse> TaskService::connect(const task::ConnectRequest& r) {
  if (auto ok = checkId(r.id(), ""); !ok) return std::unexpected(ok.error());
  std::lock_guard lock(mu_);
  task::ConnectResponse response;
  response.set_shim_pid(static_cast<std::uint32_t>(::getpid()));
  response.set_task_pid(static_cast<std::uint32_t>(pid_));
  response.set_version(kVersion);
  return response;
}

RpcResult<void> TaskService::shutdown(const task::ShutdownRequest&) {
  std::lock_guard lock(mu_);
  // Like containerd's shims: stay while the task exists, so containerd can come back to it.
  if (phase_ != Phase::kNone && phase_ != Phase::kDeleted) return {};
  if (ctx_.request_exit) ctx_.request_exit();
  return {};
}

RpcResult<void> TaskService::closeIo(const task::CloseIORequest& r) {
  if (auto ok = checkId(r.id(), ""); !ok) return std::unexpected(ok.error());
  return {};
}

RpcResult<void> TaskService::update(const task::UpdateTaskRequest& r) {
  if (auto ok = checkId(r.id(), ""); !ok) return std::unexpected(ok.error());
  std::lock_guard lock(mu_);
  if (!cgroup_ || phase_ == Phase::kDeleted) {
    return rpcFail(StatusCode::kNotFound, fmt::format("task {} not found", r.id()));
  }
  auto resources = parseResources(r.resources().value());
  if (!resources) return rpcFail(resources.error());
  if (auto applied = cgroup_->apply(*resources); !applied) return rpcFail(applied.error());
  return {};
}

RpcResult<void> TaskService::exec(const task::ExecProcessRequest& r) {
  if (auto ok = checkId(r.id(), ""); !ok) return std::unexpected(ok.error());
  if (r.exec_id().empty()) return rpcFail(StatusCode::kInvalidArgument, "exec: no exec id");
  if (r.terminal()) {
    return rpcFail(StatusCode::kInvalidArgument,
                   "exec: a terminal is not supported by the fleetlet shim");
  }
  auto process = parseProcessSpec(r.spec().value());
  if (!process) return rpcFail(process.error().wrap("exec {}", r.exec_id()));
  if (process->terminal) {
    return rpcFail(StatusCode::kInvalidArgument,
                   "exec: a terminal is not supported by the fleetlet shim");
  }
  std::lock_guard lock(mu_);
  if (phase_ != Phase::kRunning) {
    return rpcFail(StatusCode::kFailedPrecondition,
                   fmt::format("exec {}: task {} is not running", r.exec_id(), r.id()));
  }
  if (execs_.contains(r.exec_id())) {
    return rpcFail(StatusCode::kAlreadyExists, fmt::format("exec {} already exists", r.exec_id()));
  }
  if (!native_spec_) {
    // A container: runc runs the request's process spec as it is, at Start.
    execs_.emplace(r.exec_id(), ExecProcess{.request = r});
    return {};
  }
  // The app's sandbox with the exec's program: its level, binds and limits stay the app's.
  NativeSpec spec = *native_spec_;
  spec.args = process->args;
  spec.env = process->env;
  spec.cwd = process->cwd;
  spec.rlimits = process->rlimits;
  if (spec.level == SandboxLevel::kProcess) {
    spec.bounding_caps = process->bounding_caps;
    spec.ambient_caps = process->ambient_caps;
    spec.uid = process->uid;
    spec.gid = process->gid;
    spec.additional_gids = process->additional_gids;
  } else {
    // A sandboxed app's exec runs as the app, with its capabilities, whatever the request
    // names.
    spec.uid = sandbox_.uid;
    spec.gid = sandbox_.gid;
    spec.additional_gids.clear();
  }
  execs_.emplace(r.exec_id(), ExecProcess{.spec = std::move(spec), .request = r});
  return {};
}

RpcResult<task::StartResponse> TaskService::execStart(const task::StartRequest& r) {
  std::lock_guard lock(mu_);
  auto it = execs_.find(r.exec_id());
  if (it == execs_.end()) {
    return rpcFail(StatusCode::kNotFound, fmt::format("exec {} not found", r.exec_id()));
  }
  ExecProcess& e = it->second;
  if (e.phase != Phase::kCreated) {
    return rpcFail(StatusCode::kFailedPrecondition,
                   fmt::format("exec {} is not in the created state", r.exec_id()));
  }
  if (phase_ != Phase::kRunning || !cgroup_) {
    return rpcFail(StatusCode::kFailedPrecondition,
                   fmt::format("exec {}: task {} is not running", r.exec_id(), r.id()));
  }
  auto io = openStdio({e.request.stdin(), e.request.stdout(), e.request.stderr()}, ctx_.ns, ctx_.id,
                      loggerSpawner());
  if (!io) return rpcFail(io.error().wrap("stdio of exec {}", r.exec_id()));
  e.logger = std::move(io->logger);
  auto on_exit = exitHandler();
  // Under mu_, with the phase set before the exit can be handled (onExit needs mu_).
  if (!native_spec_) {
    auto* container = dynamic_cast<RuncProcess*>(process_.get());
    if (container == nullptr) {
      return rpcFail(StatusCode::kFailedPrecondition,
                     fmt::format("exec {}: task {} has no container", r.exec_id(), r.id()));
    }
    auto pid = container->exec(r.exec_id(), e.request.spec().value(), std::move(*io), on_exit);
    if (!pid) return rpcFail(pid.error().wrap("exec {}", r.exec_id()));
    e.pid = *pid;
    e.phase = Phase::kRunning;
    task::StartResponse response;
    response.set_pid(static_cast<std::uint32_t>(e.pid));
    return response;
  }
  auto made = NativeProcess::create(
      e.spec, ctx_.ns, ctx_.id, std::move(*io), reaper_, on_exit,
      [&](pid_t pid) { return cgroup_->addProcess(pid); }, pid_);
  if (!made) return rpcFail(made.error().wrap("exec {}", r.exec_id()));
  if (auto started = (*made)->start(); !started) {
    return rpcFail(started.error().wrap("exec {}", r.exec_id()));
  }
  e.pid = (*made)->pid();
  e.process = std::move(*made);
  e.phase = Phase::kRunning;
  task::StartResponse response;
  response.set_pid(static_cast<std::uint32_t>(e.pid));
  return response;
}

RpcResult<task::StateResponse> TaskService::execState(const task::StateRequest& r) {
  std::lock_guard lock(mu_);
  auto it = execs_.find(r.exec_id());
  if (it == execs_.end()) {
    return rpcFail(StatusCode::kNotFound, fmt::format("exec {} not found", r.exec_id()));
  }
  const ExecProcess& e = it->second;
  task::StateResponse s;
  s.set_id(r.exec_id());
  s.set_bundle(created_.bundle());
  s.set_pid(static_cast<std::uint32_t>(e.pid));
  s.set_stdin(e.request.stdin());
  s.set_stdout(e.request.stdout());
  s.set_stderr(e.request.stderr());
  s.set_exec_id(r.exec_id());
  switch (e.phase) {
    case Phase::kCreated:
      s.set_status(containerd::v1::types::CREATED);
      break;
    case Phase::kRunning:
      s.set_status(containerd::v1::types::RUNNING);
      break;
    default:
      s.set_status(containerd::v1::types::STOPPED);
      s.set_exit_status(static_cast<std::uint32_t>(e.exit.status));
      setTimestamp(s.mutable_exited_at(), e.exit.at);
      break;
  }
  return s;
}

RpcResult<void> TaskService::execKill(const task::KillRequest& r) {
  std::lock_guard lock(mu_);
  auto it = execs_.find(r.exec_id());
  if (it == execs_.end()) {
    return rpcFail(StatusCode::kNotFound, fmt::format("exec {} not found", r.exec_id()));
  }
  if (it->second.phase != Phase::kRunning) {
    return rpcFail(StatusCode::kNotFound, "process already finished");
  }
  if (::kill(it->second.pid, static_cast<int>(r.signal())) != 0) {
    return rpcFail(
        errno == ESRCH ? StatusCode::kNotFound : StatusCode::kInternal,
        fmt::format("signal {} to exec {}: {}", r.signal(), r.exec_id(), std::strerror(errno)));
  }
  return {};
}

RpcResult<task::WaitResponse> TaskService::execWait(const task::WaitRequest& r) {
  std::unique_lock lock(mu_);
  auto find = [&] { return execs_.find(r.exec_id()); };
  if (find() == execs_.end()) {
    return rpcFail(StatusCode::kNotFound, fmt::format("exec {} not found", r.exec_id()));
  }
  // Deleted meanwhile (or never started and then deleted): answer NOT_FOUND, not a hang.
  exited_cv_.wait(
      lock, [&] { return find() == execs_.end() || find()->second.phase == Phase::kStopped; });
  auto it = find();
  if (it == execs_.end()) {
    return rpcFail(StatusCode::kNotFound, fmt::format("exec {} was deleted", r.exec_id()));
  }
  task::WaitResponse response;
  response.set_exit_status(static_cast<std::uint32_t>(it->second.exit.status));
  setTimestamp(response.mutable_exited_at(), it->second.exit.at);
  return response;
}

RpcResult<task::DeleteResponse> TaskService::execRemove(const task::DeleteRequest& r) {
  std::lock_guard lock(mu_);
  auto it = execs_.find(r.exec_id());
  if (it == execs_.end()) {
    return rpcFail(StatusCode::kNotFound, fmt::format("exec {} not found", r.exec_id()));
  }
  if (it->second.phase == Phase::kRunning) {
    return rpcFail(StatusCode::kFailedPrecondition,
                   fmt::format("exec {} is running: kill it before deleting", r.exec_id()));
  }
  task::DeleteResponse response;
  response.set_pid(static_cast<std::uint32_t>(it->second.pid));
  response.set_exit_status(static_cast<std::uint32_t>(it->second.exit.status));
  setTimestamp(response.mutable_exited_at(), it->second.exit.at);
  it->second.process.reset();  // our copies of its pipes, if it kept any
  finishLogger(it->second.logger);
  execs_.erase(it);
  exited_cv_.notify_all();
  return response;
}

}  // namespace fleetlet::shim
