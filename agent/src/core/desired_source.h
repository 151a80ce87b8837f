#pragma once
// DesiredSource: the --desired path — one manifest file, or a directory of them — watched for
// changes. The newest valid revision found is applied; an invalid file is reported once per
// version of the file and changes nothing.
//
// Threading: owns one thread that polls the path every `interval`; stops on destruction.

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <filesystem>
#include <map>
#include <mutex>
#include <string>
#include <thread>

#include "core/node_service.h"

namespace fleetlet::core {

class DesiredSource {
 public:
  DesiredSource(std::filesystem::path path, NodeService& node,
                std::chrono::milliseconds interval = std::chrono::milliseconds(1000));
  DesiredSource(const DesiredSource&) = delete;
  DesiredSource& operator=(const DesiredSource&) = delete;
  ~DesiredSource();

  // One scan, synchronously (the thread calls it; tests may too).
  void scan();

 private:
  void run();

  std::filesystem::path path_;
  NodeService& node_;
  std::chrono::milliseconds interval_;
  // File → the (mtime, size) last looked at, so each version is read and reported once.
  std::map<std::string, std::pair<std::filesystem::file_time_type, uintmax_t>> seen_;
  std::mutex mu_;
  std::condition_variable cv_;
  bool stopping_ = false;  // guarded by mu_
  std::thread thread_;
};

}  // namespace fleetlet::core
