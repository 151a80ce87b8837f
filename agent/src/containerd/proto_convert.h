#pragma once
// Conversions between this module's plain types and containerd's protobuf messages.
// Private to agent/src/containerd.

#include <google/protobuf/map.h>
#include <google/protobuf/repeated_field.h>
#include <google/protobuf/timestamp.pb.h>

#include <chrono>

#include "containerd/types.h"
#include "github.com/containerd/containerd/api/types/descriptor.pb.h"
#include "github.com/containerd/containerd/api/types/mount.pb.h"

namespace fleetlet::containerd {

inline Mount fromProto(const ::containerd::types::Mount& m) {
  Mount out{.type = m.type(), .source = m.source(), .target = m.target(), .options = {}};
  out.options.assign(m.options().begin(), m.options().end());
  return out;
}

inline void toProto(const Mount& m, ::containerd::types::Mount* out) {
  out->set_type(m.type);
  out->set_source(m.source);
  out->set_target(m.target);
  for (const auto& o : m.options) out->add_options(o);
}

inline std::vector<Mount> fromProto(
    const google::protobuf::RepeatedPtrField<::containerd::types::Mount>& mounts) {
  std::vector<Mount> out;
  out.reserve(mounts.size());
  for (const auto& m : mounts) out.push_back(fromProto(m));
  return out;
}

inline Descriptor fromProto(const ::containerd::types::Descriptor& d) {
  return Descriptor{.media_type = d.media_type(),
                    .digest = d.digest(),
                    .size = d.size(),
                    .annotations = {d.annotations().begin(), d.annotations().end()}};
}

inline void toProto(const Descriptor& d, ::containerd::types::Descriptor* out) {
  out->set_media_type(d.media_type);
  out->set_digest(d.digest);
  out->set_size(d.size);
  for (const auto& [k, v] : d.annotations) (*out->mutable_annotations())[k] = v;
}

inline Labels fromProto(const google::protobuf::Map<std::string, std::string>& map) {
  return Labels(map.begin(), map.end());
}

inline void toProto(const Labels& labels, google::protobuf::Map<std::string, std::string>* out) {
  for (const auto& [k, v] : labels) (*out)[k] = v;
}

inline std::chrono::system_clock::time_point fromProto(const google::protobuf::Timestamp& ts) {
  return std::chrono::system_clock::time_point(
      std::chrono::duration_cast<std::chrono::system_clock::duration>(
          std::chrono::seconds(ts.seconds()) + std::chrono::nanoseconds(ts.nanos())));
}

}  // namespace fleetlet::containerd
