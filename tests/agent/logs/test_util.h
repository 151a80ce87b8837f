#pragma once
// Helpers shared by the logs unit tests.

#include <gtest/gtest.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

#include "logs/clock.h"
#include "logs/cri.h"

namespace fleetlet::logs::test {

// A clock that ticks one millisecond per reading, from a fixed instant.
class FakeClock : public Clock {
 public:
  std::chrono::system_clock::time_point now() override {
    return start_ + std::chrono::milliseconds(ticks_++);
  }
  static inline const TimePoint start_ =
      std::chrono::sys_days(std::chrono::year(2026) / std::chrono::November / 21) +
      std::chrono::hours(6);

 private:
  int ticks_ = 0;
};

inline std::string readFile(const std::filesystem::path& path) {
  std::stringstream ss;
  ss << std::ifstream(path, std::ios::binary).rdbuf();
  return ss.str();
}

inline void appendFile(const std::filesystem::path& path, std::string_view data) {
  std::ofstream(path, std::ios::binary | std::ios::app) << data;
}

inline std::string record(Stream stream, bool partial, std::string_view text, int ms = 0) {
  std::string out;
  appendCriRecord(out, FakeClock::start_ + std::chrono::milliseconds(ms), stream, partial, text);
  return out;
}

}  // namespace fleetlet::logs::test
