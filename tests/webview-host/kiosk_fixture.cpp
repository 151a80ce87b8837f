#include "kiosk_fixture.h"

#include <cairo.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <fstream>
#include <set>
#include <sstream>
#include <thread>

#include "crypto/base64.h"
#include "os/unique_fd.h"

namespace fleetlet::webview::testing {
namespace fs = std::filesystem;
using namespace std::chrono_literals;

namespace {

// A connection to the kiosk's control socket; an invalid fd (errno set) when it is refused.
UniqueFd connectTo(const fs::path& socket) {
  UniqueFd fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (!fd) return fd;
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  (void)std::snprintf(addr.sun_path, sizeof(addr.sun_path), "%s", socket.c_str());
  if (::connect(fd.get(), reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
    const int error = errno;
    fd.reset();  // closes: errno is restored below for the caller
    errno = error;
  }
  return fd;
}

}  // namespace

Result<Xvfb> Xvfb::start(int width, int height) {
  for (int n = 150; n < 250; ++n) {
    if (fs::exists(fmt::format("/tmp/.X{}-lock", n)) ||
        fs::exists(fmt::format("/tmp/.X11-unix/X{}", n))) {
      continue;
    }
    SpawnOptions options;
    options.argv = {"Xvfb",
                    fmt::format(":{}", n),
                    "-screen",
                    "0",
                    fmt::format("{}x{}x24", width, height),
                    "-nolisten",
                    "tcp",
                    "-noreset"};
    options.stdout_path = "/dev/null";
    options.stderr_path = "/dev/null";
    FLEETLET_ASSIGN_OR_RETURN(ChildProcess process, ChildProcess::spawn(options));
    for (int i = 0; i < 200; ++i) {
      if (process.poll()) break;  // lost a race for this display: try the next
      if (fs::exists(fmt::format("/tmp/.X11-unix/X{}", n))) {
        return Xvfb(std::move(process), fmt::format(":{}", n));
      }
      std::this_thread::sleep_for(25ms);
    }
  }
  return fail(ErrorCode::kUnavailable, "no Xvfb display could be started");
}

Xvfb::~Xvfb() {
  // SIGTERM lets Xvfb remove its lock file and socket; SIGKILL would leave them behind.
  if (process_.pid() > 0) process_.stop(SIGTERM, 3s);
}

Result<Image> Image::decodePng(const std::string& png) {
  struct Reader {
    std::string_view data;
  } reader{png};
  cairo_surface_t* surface = cairo_image_surface_create_from_png_stream(
      [](void* closure, unsigned char* out, unsigned int length) {
        auto* r = static_cast<Reader*>(closure);
        if (r->data.size() < length) return CAIRO_STATUS_READ_ERROR;
        std::memcpy(out, r->data.data(), length);
        r->data.remove_prefix(length);
        return CAIRO_STATUS_SUCCESS;
      },
      &reader);
  if (cairo_surface_status(surface) != CAIRO_STATUS_SUCCESS) {
    cairo_surface_destroy(surface);
    return fail(ErrorCode::kInvalidArgument, "not a PNG ({} bytes)", png.size());
  }
  cairo_surface_flush(surface);
  Image image;
  image.width_ = cairo_image_surface_get_width(surface);
  image.height_ = cairo_image_surface_get_height(surface);
  const int stride = cairo_image_surface_get_stride(surface);
  const unsigned char* data = cairo_image_surface_get_data(surface);
  image.pixels_.resize(static_cast<size_t>(image.width_) * image.height_);
  for (int y = 0; y < image.height_; ++y) {
    std::memcpy(&image.pixels_[static_cast<size_t>(y) * image.width_],
                data + static_cast<ptrdiff_t>(y) * stride, static_cast<size_t>(image.width_) * 4);
  }
  cairo_surface_destroy(surface);
  return image;
}

Rgb Image::at(int x, int y) const {
  uint32_t p = pixels_.at(static_cast<size_t>(y) * width_ + x);
  return Rgb{static_cast<int>((p >> 16) & 0xff), static_cast<int>((p >> 8) & 0xff),
             static_cast<int>(p & 0xff)};
}

int Image::count(Rgb c, int x0, int y0, int x1, int y1) const {
  int n = 0;
  for (int y = y0; y < y1 && y < height_; ++y) {
    for (int x = x0; x < x1 && x < width_; ++x) n += at(x, y) == c ? 1 : 0;
  }
  return n;
}

UnixHttpRecorder::UnixHttpRecorder(fs::path path) : path_(std::move(path)) {
  listener_ = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  (void)std::snprintf(addr.sun_path, sizeof(addr.sun_path), "%s", path_.c_str());
  ::unlink(path_.c_str());
  if (listener_ < 0 || ::bind(listener_, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0 ||
      ::listen(listener_, 8) != 0) {
    ADD_FAILURE() << "listen on " << path_ << ": " << std::strerror(errno);
  }
  thread_ = std::thread([this] { serve(); });
}

UnixHttpRecorder::~UnixHttpRecorder() {
  ::shutdown(listener_, SHUT_RDWR);
  thread_.join();
  ::close(listener_);
}

std::vector<std::string> UnixHttpRecorder::requests() const {
  std::lock_guard lock(mu_);
  return requests_;
}

void UnixHttpRecorder::serve() {
  for (;;) {
    UniqueFd conn(::accept4(listener_, nullptr, nullptr, SOCK_CLOEXEC));
    if (!conn) return;
    std::string data;
    char buf[4096];
    size_t head_end = std::string::npos;
    size_t length = 0;
    while (head_end == std::string::npos || data.size() < head_end + 4 + length) {
      ssize_t n = ::recv(conn.get(), buf, sizeof(buf), 0);
      if (n <= 0) break;
      data.append(buf, static_cast<size_t>(n));
      if (head_end != std::string::npos) continue;
      head_end = data.find("\r\n\r\n");
      if (head_end != std::string::npos) {
        std::string lower = data.substr(0, head_end);
        std::ranges::transform(lower, lower.begin(),
                               [](unsigned char c) { return std::tolower(c); });
        if (auto at = lower.find("content-length:"); at != std::string::npos) {
          length = std::stoul(lower.substr(at + 15));
        }
      }
    }
    if (head_end == std::string::npos) continue;
    std::istringstream line(data.substr(0, data.find("\r\n")));
    std::string method, target;
    line >> method >> target;
    {
      std::lock_guard lock(mu_);
      std::string request = method;
      request.append(" ").append(target).append(" ").append(data.substr(head_end + 4));
      requests_.push_back(std::move(request));
    }
    const std::string answer =
        "HTTP/1.0 200 OK\r\nContent-Type: application/json\r\nContent-Length: 11\r\n\r\n"
        "{\"ok\":true}";
    (void)::send(conn.get(), answer.data(), answer.size(), MSG_NOSIGNAL);
  }
}

Result<KioskProcess> KioskProcess::start(
    const std::string& display, const fs::path& dir,
    const std::vector<std::pair<std::string, std::string>>& apps,
    std::vector<std::string> extra_args) {
  return start(display, dir, apps, KioskStart{.extra_args = std::move(extra_args)});
}

Result<KioskProcess> KioskProcess::start(
    const std::string& display, const fs::path& dir,
    const std::vector<std::pair<std::string, std::string>>& apps, KioskStart how) {
  const fs::path socket = dir / "control.sock";
  const fs::path log = dir / "kiosk.log";
  SpawnOptions options;
  options.argv = std::move(how.wrapper);
  for (std::string arg : {std::string(FLEETLET_WEBVIEW_PATH), std::string("--socket"),
                          socket.string(), std::string("--state-dir"), (dir / "state").string(),
                          std::string("--window"), std::string("1024x600")}) {
    options.argv.push_back(std::move(arg));
  }
  for (const auto& [name, bundle] : apps) {
    options.argv.push_back("--app");
    options.argv.push_back(fmt::format("{}={}", name, bundle));
  }
  for (auto& arg : how.extra_args) options.argv.push_back(std::move(arg));
  options.env = std::move(how.env);
  options.env["DISPLAY"] = display;
  options.env[kKioskTag] = dir.string();
  options.stdout_path = log;
  options.stderr_path = log;
  FLEETLET_ASSIGN_OR_RETURN(ChildProcess process, ChildProcess::spawn(options));
  // Ready once the control socket takes connections: its file appears at bind(), a moment
  // before listen(), and a connect() in between is refused.
  bool ready = false;
  for (int i = 0; i < 400 && !(ready = fs::exists(socket) && connectTo(socket)); ++i) {
    if (auto ended = process.poll()) {
      return fail(ErrorCode::kUnavailable, "fleetlet-webview ended ({}): {}", ended->describe(),
                  readFile(log));
    }
    std::this_thread::sleep_for(25ms);
  }
  if (!ready) {
    return fail(ErrorCode::kUnavailable, "no control socket taking connections after 10 s: {}",
                readFile(log));
  }
  return KioskProcess(std::move(process), socket, log);
}

Result<Json> KioskProcess::control(const Json& request) const {
  UniqueFd fd = connectTo(socket_);
  if (!fd) return failErrno(errno, "connect {}", socket_.string());
  timeval timeout{.tv_sec = 20, .tv_usec = 0};
  ::setsockopt(fd.get(), SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof(timeout));
  std::string line = request.dump() + "\n";
  if (::send(fd.get(), line.data(), line.size(), MSG_NOSIGNAL) !=
      static_cast<ssize_t>(line.size())) {
    return failErrno(errno, "send");
  }
  std::string answer;
  char buf[65536];
  while (answer.find('\n') == std::string::npos) {
    ssize_t n = ::recv(fd.get(), buf, sizeof(buf), 0);
    if (n <= 0) return fail(ErrorCode::kUnavailable, "no answer to {}", request.dump());
    answer.append(buf, static_cast<size_t>(n));
  }
  return parseJson(answer, "answer");
}

Result<Json> KioskProcess::status(const std::string& app) const {
  FLEETLET_ASSIGN_OR_RETURN(Json answer, control({{"cmd", "status"}, {"app", app}}));
  if (!answer.value("ok", false)) {
    return fail(ErrorCode::kUnavailable, "status {}: {}", app, answer.dump());
  }
  return answer["status"];
}

Json KioskProcess::waitFor(const std::string& app, const std::function<bool(const Json&)>& done,
                           std::chrono::milliseconds timeout) const {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  Json last;
  while (std::chrono::steady_clock::now() < deadline) {
    if (auto s = status(app)) {
      last = *s;
      if (done(last)) return last;
    }
    std::this_thread::sleep_for(20ms);
  }
  return last;
}

Result<Image> KioskProcess::screenshot(const std::string& app) const {
  Json request = {{"cmd", "screenshot"}};
  if (!app.empty()) request["app"] = app;
  FLEETLET_ASSIGN_OR_RETURN(Json answer, control(request));
  if (!answer.value("ok", false)) {
    return fail(ErrorCode::kUnavailable, "screenshot: {}", answer.dump());
  }
  FLEETLET_ASSIGN_OR_RETURN(std::string png, base64Decode(answer["png"].get<std::string>()));
  return Image::decodePng(png);
}

std::string KioskProcess::log() const { return readFile(log_); }

std::optional<ExitStatus> KioskProcess::waitEnded(std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  for (;;) {
    if (auto ended = process_.poll()) return ended;
    if (std::chrono::steady_clock::now() >= deadline) return std::nullopt;
    std::this_thread::sleep_for(20ms);
  }
}

namespace {

// Processes whose /proc/<pid>/<file> (NUL-separated: environ, cmdline) holds `wanted` as one
// of its entries.
std::vector<pid_t> processesWithEntry(const char* file, std::string_view wanted) {
  std::vector<pid_t> out;
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator("/proc", ec)) {
    const std::string s = entry.path().filename().string();
    if (s.empty() || !std::isdigit(static_cast<unsigned char>(s[0]))) continue;
    const std::string entries = readFile(entry.path() / file);
    size_t at = 0;
    while (at < entries.size()) {
      size_t end = entries.find('\0', at);
      if (end == std::string::npos) end = entries.size();
      if (std::string_view(entries).substr(at, end - at) == wanted) {
        out.push_back(std::stoi(s));
        break;
      }
      at = end + 1;
    }
  }
  return out;
}

}  // namespace

std::vector<pid_t> processesWithEnv(std::string_view variable, std::string_view value) {
  return processesWithEntry("environ", std::string(variable) + "=" + std::string(value));
}

std::vector<pid_t> processesWithArg(std::string_view arg) {
  return processesWithEntry("cmdline", arg);
}

std::vector<pid_t> KioskProcess::webProcesses() const { return webProcessesBelow(pid()); }

std::vector<pid_t> processesBelow(pid_t ancestor, std::string_view comm_prefix) {
  std::map<pid_t, pid_t> parent;
  std::map<pid_t, std::string> name;
  for (const auto& entry : fs::directory_iterator("/proc")) {
    const std::string s = entry.path().filename().string();
    if (s.empty() || !std::isdigit(static_cast<unsigned char>(s[0]))) continue;
    std::string stat = readFile(entry.path() / "stat");
    auto open = stat.find('(');
    auto close = stat.rfind(')');
    if (open == std::string::npos || close == std::string::npos) continue;
    const pid_t pid = std::stoi(s);
    name[pid] = stat.substr(open + 1, close - open - 1);
    std::istringstream rest(stat.substr(close + 2));
    char state = 0;
    pid_t ppid = 0;
    rest >> state >> ppid;
    parent[pid] = ppid;
  }
  std::vector<pid_t> out;
  for (const auto& [pid, comm] : name) {
    if (!comm.starts_with(comm_prefix)) continue;
    for (pid_t p = parent[pid]; p > 1; p = parent[p]) {
      if (p == ancestor) {
        out.push_back(pid);
        break;
      }
    }
  }
  return out;
}

std::vector<pid_t> webProcessesBelow(pid_t ancestor) {
  return processesBelow(ancestor, "WebKitWebProces");
}

std::optional<pid_t> oldestProcess(const std::vector<pid_t>& pids) {
  std::optional<pid_t> oldest;
  unsigned long long oldest_start = 0;
  for (pid_t pid : pids) {
    std::string stat = readFile(fs::path("/proc") / std::to_string(pid) / "stat");
    auto close = stat.rfind(')');
    if (close == std::string::npos) continue;
    // Fields after "(comm) ": state is field 3; starttime is field 22.
    std::istringstream rest(stat.substr(close + 2));
    std::string field;
    unsigned long long start = 0;
    for (int i = 3; i <= 22 && rest >> field; ++i) {
      if (i == 22) start = std::stoull(field);
    }
    if (!oldest || start < oldest_start) {
      oldest = pid;
      oldest_start = start;
    }
  }
  return oldest;
}

// A page of one colour with a green box at (100,100)-(300,200) and white text, whose first
// script records in the title what window.ax held when it ran.
std::string readFile(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

size_t countOf(const std::string& text, const std::string& what) {
  size_t n = 0;
  for (auto at = text.find(what); at != std::string::npos; at = text.find(what, at + 1)) ++n;
  return n;
}

std::string colourPage(std::string_view css_colour) {
  return fmt::format(R"(<!doctype html><html><head>
<script>document.title = 'ax:' + (typeof window.ax === 'object'
    ? window.ax.appName + ':' + JSON.stringify(window.ax.settings) + ':' + Object.isFrozen(window.ax)
    : 'missing');</script>
<style>html,body{{margin:0;height:100%;background:{};}}
#box{{position:absolute;left:100px;top:100px;width:200px;height:100px;background:rgb(0,200,0);}}
#text{{position:absolute;left:400px;top:100px;font:bold 64px sans-serif;color:#fff;}}</style>
</head><body><div id=box></div><div id=text>KIOSK</div></body></html>)",
                     css_colour);
}

std::optional<Xvfb>& sharedXvfb() {
  static std::optional<Xvfb> xvfb = []() -> std::optional<Xvfb> {
    if (!fs::exists("/usr/bin/Xvfb")) return std::nullopt;
    auto started = Xvfb::start();
    if (!started) return std::nullopt;
    return std::move(*started);
  }();
  return xvfb;
}

std::string sharedDisplay() {
  const auto& xvfb = sharedXvfb();
  return xvfb.has_value() ? xvfb->display() : std::string();
}

}  // namespace fleetlet::webview::testing
