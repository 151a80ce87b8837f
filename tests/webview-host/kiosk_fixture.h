#pragma once
// Fixtures for fleetlet-webview's integration tests: a private Xvfb on a display number of
// its own, a fleetlet-webview process on it, its control socket, and PNG pixel reading.

#include <chrono>
#include <filesystem>
#include <functional>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "error/error.h"
#include "json/json.h"
#include "os/child_process.h"

namespace fleetlet::webview::testing {

// An X server started by the test (Xvfb :N with the first free N from 150), stopped (by its
// pid) when the object goes.
class Xvfb {
 public:
  static Result<Xvfb> start(int width = 1024, int height = 600);
  Xvfb(Xvfb&&) noexcept = default;
  Xvfb& operator=(Xvfb&&) noexcept = default;
  ~Xvfb();
  const std::string& display() const { return display_; }

 private:
  Xvfb(ChildProcess process, std::string display)
      : process_(std::move(process)), display_(std::move(display)) {}
  ChildProcess process_;
  std::string display_;
};

// One Xvfb per test binary, started on first use (nullopt when Xvfb is missing or will not
// start); stopped at exit.
std::optional<Xvfb>& sharedXvfb();
// sharedXvfb()'s display (":150"); empty when there is none.
std::string sharedDisplay();

// Moves the pointer of `display` to (x, y) and reports whether the cursor shown there is
// invisible (every pixel of XFixes' cursor image fully transparent).
Result<bool> cursorHiddenAt(const std::string& display, int x, int y);

// PIDs of the WebKitWebProcess processes descending from `ancestor`.
std::vector<pid_t> webProcessesBelow(pid_t ancestor);
// The process of `pids` started first (the web process serving a page; the kiosk's spare
// web process of the app is started after the page loaded). nullopt when none is alive.
std::optional<pid_t> oldestProcess(const std::vector<pid_t>& pids);
// PIDs of the processes descending from `ancestor` whose name starts with `comm`.
std::vector<pid_t> processesBelow(pid_t ancestor, std::string_view comm);

// A page of one CSS colour with a green box at (100,100)-(300,200) and white text at
// (400,100), whose first script puts in the title what window.ax held when it ran.
std::string colourPage(std::string_view css_colour);

// The whole file ("" when it cannot be read).
std::string readFile(const std::filesystem::path& path);
// How often `what` occurs in `text` (overlapping occurrences counted).
size_t countOf(const std::string& text, const std::string& what);

struct Rgb {
  int r = 0, g = 0, b = 0;
  bool operator==(const Rgb&) const = default;
};

// A decoded PNG.
class Image {
 public:
  static Result<Image> decodePng(const std::string& png);
  int width() const { return width_; }
  int height() const { return height_; }
  Rgb at(int x, int y) const;
  // Pixels of colour `c` in the rectangle.
  int count(Rgb c, int x0, int y0, int x1, int y1) const;

 private:
  int width_ = 0, height_ = 0;
  std::vector<uint32_t> pixels_;  // ARGB
};

// An HTTP/1.0 server on a unix socket (standing in for a node service's listener of one
// app): records each request as "METHOD PATH BODY" and answers 200 {"ok":true}.
class UnixHttpRecorder {
 public:
  explicit UnixHttpRecorder(std::filesystem::path path);
  ~UnixHttpRecorder();
  const std::filesystem::path& path() const { return path_; }
  std::vector<std::string> requests() const;

 private:
  void serve();
  std::filesystem::path path_;
  int listener_ = -1;
  mutable std::mutex mu_;
  std::vector<std::string> requests_;  // guarded by mu_
  std::thread thread_;
};

// PIDs of the processes whose environment holds `variable`=`value` (a kiosk and whatever it
// started: WebKit's helpers and bubblewrap inherit the kiosk's environment).
std::vector<pid_t> processesWithEnv(std::string_view variable, std::string_view value);
// The processes one of whose command-line arguments is `arg`.
std::vector<pid_t> processesWithArg(std::string_view arg);

// How the kiosk is started: `wrapper` runs it (its argv, the kiosk's command line appended:
// setpriv, unshare, ...).
struct KioskStart {
  std::vector<std::string> extra_args;
  std::vector<std::string> wrapper;
  std::map<std::string, std::string> env;
};

// A fleetlet-webview process on `display` with the given apps (NAME → bundle dir). Its
// environment holds FLEETLET_KIOSK_TEST_DIR=<dir> (kKioskTag), which its helpers inherit.
class KioskProcess {
 public:
  static constexpr char kKioskTag[] = "FLEETLET_KIOSK_TEST_DIR";
  static Result<KioskProcess> start(const std::string& display, const std::filesystem::path& dir,
                                    const std::vector<std::pair<std::string, std::string>>& apps,
                                    std::vector<std::string> extra_args = {});
  static Result<KioskProcess> start(const std::string& display, const std::filesystem::path& dir,
                                    const std::vector<std::pair<std::string, std::string>>& apps,
                                    KioskStart how);
  pid_t pid() const { return process_.pid(); }
  // How the kiosk (or its wrapper) ended, once it has within `timeout`; nullopt while it runs.
  std::optional<ExitStatus> waitEnded(std::chrono::milliseconds timeout);
  // One request line, one answer (parsed). Fails when the socket does not answer.
  Result<Json> control(const Json& request) const;
  // status of `app` (the "status" member of the answer).
  Result<Json> status(const std::string& app) const;
  // Polls status until `done(status)` or `timeout`; returns the last status seen.
  Json waitFor(const std::string& app, const std::function<bool(const Json&)>& done,
               std::chrono::milliseconds timeout) const;
  Result<Image> screenshot(const std::string& app = "") const;
  // The kiosk's stderr so far (for failure messages).
  std::string log() const;
  // PIDs of the WebKitWebProcess processes below this kiosk (children of its sandbox).
  std::vector<pid_t> webProcesses() const;

 private:
  KioskProcess(ChildProcess process, std::filesystem::path socket, std::filesystem::path log)
      : process_(std::move(process)), socket_(std::move(socket)), log_(std::move(log)) {}
  ChildProcess process_;
  std::filesystem::path socket_;
  std::filesystem::path log_;
};

}  // namespace fleetlet::webview::testing
