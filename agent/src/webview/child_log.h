#pragma once
// The output of a kiosk run as fleetletd's child (KioskLaunch::kChild), logged as a system
// app's is: CRI records in <dir>/current.log with size-capped rotation (logs/logger.h), so
// that `fleetletctl logs` finds a webview app's lines in it (docs/webview.md, "Console") and
// the log never outgrows its cap.

#include <filesystem>
#include <thread>

#include "error/error.h"
#include "logs/logger.h"
#include "os/unique_fd.h"

namespace fleetlet::webview {

class ChildLog {
 public:
  // Two pipes (the child's stdout and stderr) and a thread copying from them into `dir`
  // (created, mode 0750). When the log cannot be opened there the thread says so (spdlog) and
  // still reads the pipes, so the child never meets a closed pipe. Errors: a pipe or the stop
  // eventfd could not be made.
  static Result<ChildLog> start(const std::filesystem::path& dir,
                                const logs::LoggerOptions& options = {});

  // The pipes' write ends, for the child (SpawnOptions::stdout_fd, stderr_fd). Close them
  // with closeWriteEnds() once the child holds them, or the copy never sees the end.
  int stdoutFd() const { return out_.get(); }
  int stderrFd() const { return err_.get(); }
  void closeWriteEnds() {
    out_.reset();
    err_.reset();
  }

  ChildLog(ChildLog&&) = default;
  ChildLog& operator=(ChildLog&&) = delete;
  ChildLog(const ChildLog&) = delete;
  ChildLog& operator=(const ChildLog&) = delete;
  // Copies what the pipes already hold, then stops the thread; lines written later (by a
  // helper process of the child that outlived it) are lost. Returns at once when every writer
  // had closed the pipes.
  ~ChildLog();

 private:
  ChildLog(UniqueFd out, UniqueFd err, UniqueFd stop, std::thread thread)
      : out_(std::move(out)),
        err_(std::move(err)),
        stop_(std::move(stop)),
        thread_(std::move(thread)) {}

  UniqueFd out_;
  UniqueFd err_;
  UniqueFd stop_;  // an eventfd: readable once the destructor asks the thread to finish
  std::thread thread_;
};

}  // namespace fleetlet::webview
