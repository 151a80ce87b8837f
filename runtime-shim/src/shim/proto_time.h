#pragma once
// google.protobuf.Timestamp from and to system_clock.

#include <google/protobuf/timestamp.pb.h>

#include <chrono>

namespace fleetlet::shim {

inline void setTimestamp(google::protobuf::Timestamp* out,
                         std::chrono::system_clock::time_point at) {
  auto ns = std::chrono::duration_cast<std::chrono::nanoseconds>(at.time_since_epoch()).count();
  out->set_seconds(ns / 1'000'000'000);
  out->set_nanos(static_cast<int>(ns % 1'000'000'000));
}

}  // namespace fleetlet::shim
