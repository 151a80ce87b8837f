#pragma once
// Plain values exchanged with containerd, free of protobuf types.

#include <cstdint>
#include <map>
#include <string>
#include <vector>

namespace fleetlet::containerd {

using Labels = std::map<std::string, std::string>;

// A mount as containerd describes a snapshot's filesystem (type, source, options).
struct Mount {
  std::string type;
  std::string source;
  std::string target;
  std::vector<std::string> options;
};

// A content-addressed blob reference (containerd.types.Descriptor).
struct Descriptor {
  std::string media_type;
  std::string digest;
  int64_t size = 0;
  std::map<std::string, std::string> annotations;
};

}  // namespace fleetlet::containerd
