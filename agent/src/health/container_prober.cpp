#include "health/container_prober.h"

#include <arpa/inet.h>
#include <curl/curl.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <chrono>
#include <condition_variable>
#include <cstring>
#include <memory>
#include <mutex>
#include <random>
#include <thread>

#include "containerd/containers.h"
#include "containerd/tasks.h"
#include "health/netns.h"
#include "json/json.h"
#include "os/unique_fd.h"

namespace fleetlet::health {
namespace {

using std::chrono::milliseconds;
using SteadyTime = std::chrono::steady_clock::time_point;

// containerd's own latency for creating, starting and removing an exec process.
constexpr milliseconds kExecSetupTimeout{10000};
// How long the shim may take to copy the rest of an exited exec process's output.
constexpr milliseconds kOutputDrain{2000};
// How long a killed exec process may take to be reported gone.
constexpr milliseconds kExecKillWait{5000};
// Body bytes read before an HTTP probe stops listening (the status is known by then).
constexpr size_t kHttpBodyLimit = size_t{10} * 1024;

Error unhealthy(std::string message, int sys_errno = 0) {
  return Error(ErrorCode::kUnavailable, std::move(message), sys_errno);
}

milliseconds remaining(SteadyTime deadline) {
  auto left = std::chrono::duration_cast<milliseconds>(deadline - std::chrono::steady_clock::now());
  return std::max(left, milliseconds(0));
}

std::string httpPath(const std::string& path) {
  if (path.empty() || path.front() != '/') return "/" + path;
  return path;
}

// --- http ---

struct CurlHandleDeleter {
  void operator()(CURL* handle) const { curl_easy_cleanup(handle); }
};

struct HttpProbeState {
  pid_t pid = 0;
  std::optional<Error> socket_error;  // why curl got no socket
  size_t body_bytes = 0;
  bool stopped_reading = false;
};

curl_socket_t openSocketInNamespace(void* clientp, curlsocktype purpose,
                                    struct curl_sockaddr* address) {
  auto* state = static_cast<HttpProbeState*>(clientp);
  if (purpose != CURLSOCKTYPE_IPCXN) return CURL_SOCKET_BAD;
  auto fd =
      socketInNetworkNamespace(state->pid, address->family, address->socktype, address->protocol);
  if (!fd) {
    state->socket_error = fd.error();
    return CURL_SOCKET_BAD;
  }
  return fd->release();  // curl closes it
}

size_t discardBody(char* /*data*/, size_t size, size_t count, void* userdata) {
  auto* state = static_cast<HttpProbeState*>(userdata);
  state->body_bytes += size * count;
  if (state->body_bytes > kHttpBodyLimit) {
    state->stopped_reading = true;
    return 0;  // aborts the transfer with CURLE_WRITE_ERROR
  }
  return size * count;
}

// The FIFO an exec probe's stdout and stderr go to, drained by a thread of its own that keeps
// the last bytes; removed on destruction. The shim closes its ends once it has copied all of
// the process's output, so end of file means the output is complete — no guessing how long
// the copy takes under load. Draining while the command runs keeps a chatty command from
// blocking on a full pipe.
class ExecOutput {
 public:
  static Result<std::unique_ptr<ExecOutput>> create(std::filesystem::path path) {
    if (::mkfifo(path.c_str(), 0600) != 0) return failErrno(errno, "mkfifo {}", path.string());
    // Non-blocking, so the open does not wait for a writer and the shim's open for writing
    // finds a reader.
    UniqueFd fd(::open(path.c_str(), O_RDONLY | O_NONBLOCK | O_CLOEXEC));
    if (!fd) {
      int err = errno;
      ::unlink(path.c_str());
      return failErrno(err, "open {}", path.string());
    }
    return std::unique_ptr<ExecOutput>(new ExecOutput(std::move(path), std::move(fd)));
  }
  ExecOutput(const ExecOutput&) = delete;
  ExecOutput& operator=(const ExecOutput&) = delete;
  ~ExecOutput() {
    if (drainer_.joinable()) {
      drainer_.request_stop();
      drainer_.join();
    }
    ::unlink(path_.c_str());
  }

  std::string path() const { return path_.string(); }

  // Starts reading; call once the process has started (the shim holds the writing ends).
  void startDraining() {
    drainer_ = std::jthread([this](const std::stop_token& stop) { drain(stop); });
  }

  // Waits (at most `limit`) until every writer has closed the FIFO. False on timeout (a
  // background child may still hold the output open); the tail read so far stays usable.
  bool waitForEnd(std::chrono::milliseconds limit) {
    std::unique_lock lock(mutex_);
    return ended_cv_.wait_for(lock, limit, [this] { return ended_; });
  }

  // The last non-empty line of the output (at most kLastLineLimit bytes of it).
  std::string lastLine() const {
    std::string tail;
    {
      std::lock_guard lock(mutex_);
      tail = tail_;
    }
    while (!tail.empty() && std::isspace(static_cast<unsigned char>(tail.back()))) tail.pop_back();
    auto newline = tail.rfind('\n');
    if (newline != std::string::npos) tail.erase(0, newline + 1);
    if (tail.size() > kLastLineLimit) tail.erase(0, tail.size() - kLastLineLimit);
    return tail;
  }

 private:
  static constexpr size_t kLastLineLimit = 200;
  static constexpr size_t kTailKeep = 1024;
  ExecOutput(std::filesystem::path path, UniqueFd fd)
      : path_(std::move(path)), fd_(std::move(fd)) {}

  void drain(const std::stop_token& stop) {
    char buf[4096];
    while (!stop.stop_requested()) {
      pollfd pfd{.fd = fd_.get(), .events = POLLIN, .revents = 0};
      int ready = ::poll(&pfd, 1, 50);
      if (ready < 0 && errno != EINTR) break;
      if (ready <= 0) continue;
      ssize_t n = ::read(fd_.get(), buf, sizeof buf);
      if (n < 0 && (errno == EAGAIN || errno == EINTR)) continue;
      std::lock_guard lock(mutex_);
      if (n <= 0) {  // every writer closed (or the FIFO failed): nothing more will come
        ended_ = true;
        ended_cv_.notify_all();
        return;
      }
      tail_.append(buf, static_cast<size_t>(n));
      if (tail_.size() > kTailKeep) tail_.erase(0, tail_.size() - kTailKeep);
    }
  }

  std::filesystem::path path_;
  UniqueFd fd_;
  mutable std::mutex mutex_;
  std::condition_variable ended_cv_;
  bool ended_ = false;
  std::string tail_;
  std::jthread drainer_;
};

void initCurlOnce() {
  // curl_global_init is not thread-safe; run it once before the first handle. Called by the
  // first HTTP probe, not at construction: libcurl (loaded on first use, see
  // common/src/http/lazy_curl.cpp) and OpenSSL's initialisation cost an agent whose apps have
  // no HTTP checks about 6 MiB of resident memory for nothing.
  static std::once_flag once;
  std::call_once(once, [] { curl_global_init(CURL_GLOBAL_DEFAULT); });
}

}  // namespace

ContainerProber::ContainerProber(std::shared_ptr<containerd::Connection> connection, std::string ns,
                                 std::filesystem::path output_dir)
    : connection_(std::move(connection)),
      ns_(std::move(ns)),
      output_dir_(std::move(output_dir)),
      exec_nonce_(std::random_device{}()) {}

Status ContainerProber::probe(const Target& target) {
  switch (target.check.kind) {
    case manifest::HealthCheck::Kind::kHttp:
      return probeHttp(target);
    case manifest::HealthCheck::Kind::kTcp:
      return probeTcp(target);
    case manifest::HealthCheck::Kind::kExec:
      return probeExec(target);
  }
  return fail(ErrorCode::kInvalidArgument, "unknown health check kind");
}

Status ContainerProber::probeHttp(const Target& target) const {
  const auto& check = target.check;
  std::string where = fmt::format(":{}{}", check.port, httpPath(check.path));
  initCurlOnce();
  std::unique_ptr<CURL, CurlHandleDeleter> curl(curl_easy_init());
  if (!curl) return fail(ErrorCode::kResourceExhausted, "http {}: no curl handle", where);
  HttpProbeState state{.pid = static_cast<pid_t>(target.pid)};
  std::string url = fmt::format("http://127.0.0.1{}", where);
  char curl_error[CURL_ERROR_SIZE] = {};
  long timeout_ms = std::max<long>(1, static_cast<long>(check.timeout.count()));
  CURL* h = curl.get();
  curl_easy_setopt(h, CURLOPT_URL, url.c_str());
  curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(h, CURLOPT_NOPROXY, "*");  // the app's localhost, never a proxy
  curl_easy_setopt(h, CURLOPT_FOLLOWLOCATION, 0L);
  curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, timeout_ms);
  curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, timeout_ms);
  curl_easy_setopt(h, CURLOPT_USERAGENT, "fleetlet-health/0.1");
  curl_easy_setopt(h, CURLOPT_ERRORBUFFER, curl_error);
  curl_easy_setopt(h, CURLOPT_OPENSOCKETFUNCTION, openSocketInNamespace);
  curl_easy_setopt(h, CURLOPT_OPENSOCKETDATA, &state);
  curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, discardBody);
  curl_easy_setopt(h, CURLOPT_WRITEDATA, &state);
  CURLcode rc = curl_easy_perform(h);

  if (state.socket_error)
    return std::unexpected(unhealthy(state.socket_error->wrap("http {}", where).message()));
  bool answered = rc == CURLE_OK || (rc == CURLE_WRITE_ERROR && state.stopped_reading);
  if (!answered) {
    if (rc == CURLE_OPERATION_TIMEDOUT) {
      return std::unexpected(
          unhealthy(fmt::format("http {}: no answer within {}ms", where, timeout_ms)));
    }
    long os_errno = 0;
    curl_easy_getinfo(h, CURLINFO_OS_ERRNO, &os_errno);
    if (rc == CURLE_COULDNT_CONNECT && os_errno != 0) {
      return std::unexpected(unhealthy(fmt::format("http {}: connect :{}: {}", where, check.port,
                                                   std::strerror(static_cast<int>(os_errno))),
                                       static_cast<int>(os_errno)));
    }
    return std::unexpected(unhealthy(fmt::format(
        "http {}: {}", where, curl_error[0] != '\0' ? curl_error : curl_easy_strerror(rc))));
  }
  long status = 0;
  curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
  if (status < 200 || status >= 400) {
    return std::unexpected(unhealthy(fmt::format("http {} from {}", status, where)));
  }
  return {};
}

Status ContainerProber::probeTcp(const Target& target) const {
  const auto& check = target.check;
  auto deadline = std::chrono::steady_clock::now() + check.timeout;
  auto fd = socketInNetworkNamespace(static_cast<pid_t>(target.pid), AF_INET,
                                     SOCK_STREAM | SOCK_NONBLOCK);
  if (!fd) return std::unexpected(unhealthy(fd.error().wrap("connect :{}", check.port).message()));
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(check.port);
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  int err = 0;
  if (::connect(fd->get(), reinterpret_cast<const sockaddr*>(&addr), sizeof addr) != 0) {
    err = errno;
  }
  if (err == EINPROGRESS || err == EINTR) {
    err = 0;
    for (;;) {
      pollfd p{.fd = fd->get(), .events = POLLOUT, .revents = 0};
      int n = ::poll(&p, 1, static_cast<int>(remaining(deadline).count()));
      if (n < 0 && errno == EINTR) continue;
      if (n < 0) {
        err = errno;
        break;
      }
      if (n == 0) {
        return std::unexpected(unhealthy(
            fmt::format("connect :{}: no answer within {}ms", check.port, check.timeout.count())));
      }
      socklen_t len = sizeof err;
      if (::getsockopt(fd->get(), SOL_SOCKET, SO_ERROR, &err, &len) != 0) err = errno;
      break;
    }
  }
  if (err != 0) {
    return std::unexpected(
        unhealthy(fmt::format("connect :{}: {}", check.port, std::strerror(err)), err));
  }
  return {};
}

Status ContainerProber::probeExec(const Target& target) {
  const auto& check = target.check;
  if (check.command.empty()) {
    return fail(ErrorCode::kInvalidArgument, "exec check of {} has no command", target.app);
  }
  if (!connection_) {
    return fail(ErrorCode::kFailedPrecondition, "exec check of {}: no containerd connection",
                target.app);
  }
  containerd::Scope scope{ns_, {}};
  // The command runs like the app's own process: same env, cwd, user and capabilities.
  auto container = containerd::ContainerService(connection_, scope).get(target.container_id);
  if (!container) return std::unexpected(unhealthy(container.error().wrap("exec").message()));
  const auto& found = *container;
  if (!found) {
    return std::unexpected(unhealthy(fmt::format("exec: no container {}", target.container_id)));
  }
  auto spec = parseJson(found->spec_json, "container spec");
  if (!spec || !spec->contains("process") || !(*spec)["process"].is_object()) {
    return fail(ErrorCode::kInternal, "exec: container {} has no process spec",
                target.container_id);
  }
  Json process = (*spec)["process"];
  process["args"] = check.command;
  process["terminal"] = false;
  process.erase("consoleSize");

  containerd::TaskService tasks(connection_, scope);
  std::string exec_id =
      fmt::format("health-{:08x}-{}", exec_nonce_, exec_counter_.fetch_add(1) + 1);
  // Without stdio the shim leaves the process's stdout closed, so commands that print fail.
  auto output = ExecOutput::create(output_dir_ / ("fleetlet-" + exec_id + ".out"));
  if (!output) return std::unexpected(output.error().wrap("exec"));
  containerd::TaskIo io{.stdout_uri = (*output)->path(), .stderr_uri = (*output)->path()};
  auto created = tasks.exec(target.container_id, exec_id, process.dump(), io, kExecSetupTimeout);
  if (!created) return std::unexpected(unhealthy(created.error().wrap("exec").message()));
  // From here the exec id is taken until removed, whatever happens.
  struct Remover {
    const containerd::TaskService& tasks;
    const std::string& container_id;
    const std::string& exec_id;
    bool done = false;
    void now() {
      if (!std::exchange(done, true)) {
        (void)tasks.removeProcess(container_id, exec_id, kExecSetupTimeout);
      }
    }
    ~Remover() { now(); }
  } remover{tasks, target.container_id, exec_id};

  auto started = tasks.startProcess(target.container_id, exec_id, kExecSetupTimeout);
  if (!started) return std::unexpected(unhealthy(started.error().wrap("exec").message()));
  (*output)->startDraining();
  auto exited =
      tasks.waitProcess(target.container_id, exec_id, std::max(check.timeout, milliseconds(1)));
  if (!exited) return std::unexpected(unhealthy(exited.error().wrap("exec").message()));
  const auto& exit_info = *exited;
  if (!exit_info) {
    (void)tasks.killProcess(target.container_id, exec_id, SIGKILL, kExecSetupTimeout);
    (void)tasks.waitProcess(target.container_id, exec_id, kExecKillWait);
    return std::unexpected(
        unhealthy(fmt::format("exec did not exit within {}ms (killed)", check.timeout.count())));
  }
  if (exit_info->exit_status != 0) {
    (*output)->waitForEnd(kOutputDrain);
    std::string last = (*output)->lastLine();
    return std::unexpected(unhealthy(
        fmt::format("exec exited {}{}{}", exit_info->exit_status, last.empty() ? "" : ": ", last)));
  }
  return {};
}

}  // namespace fleetlet::health
