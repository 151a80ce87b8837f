#pragma once
// The type names containerd's typeurl gives the messages the shim sends in an Any (gogo types
// are named by their bare proto name). Spelled out so the shim never builds protobuf's
// descriptor pool (reflection costs each shim process memory); shim_test checks them against
// the descriptors.

#include <string_view>

namespace fleetlet::shim::type_names {

inline constexpr std::string_view kTaskCreate = "containerd.events.TaskCreate";
inline constexpr std::string_view kTaskStart = "containerd.events.TaskStart";
inline constexpr std::string_view kTaskExit = "containerd.events.TaskExit";
inline constexpr std::string_view kTaskDelete = "containerd.events.TaskDelete";
inline constexpr std::string_view kTaskOom = "containerd.events.TaskOOM";
inline constexpr std::string_view kCgroupsV1Metrics = "io.containerd.cgroups.v1.Metrics";

}  // namespace fleetlet::shim::type_names
