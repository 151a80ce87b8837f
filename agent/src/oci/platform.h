#pragma once
// Platforms (os/architecture/variant) of images: the host's, normalised names, and matching.
//
// Names follow the OCI image index spec and containerd's normalisation: x86_64 -> amd64,
// aarch64 -> arm64 (variant v8 dropped), armhf -> arm/v7, armel -> arm/v6, i386/i686 -> 386.
// Pure and thread-safe.

#include <string>
#include <string_view>
#include <vector>

namespace fleetlet::oci {

struct Platform {
  std::string os;
  std::string architecture;
  std::string variant;  // empty when none
  std::string os_version;
  std::vector<std::string> os_features;

  // "linux/amd64", "linux/arm/v7".
  std::string toString() const;
  bool operator==(const Platform&) const = default;
};

// The platform with normalised os, architecture and variant (see the header comment).
Platform normalize(Platform platform);

// Normalises an architecture name as uname -m or a manifest may spell it; `variant` is
// updated when the name carries one (armv7l -> arm + v7).
void normalizeArchitecture(std::string& architecture, std::string& variant);

// The platform this process runs on, from uname(2); "linux/amd64" on x86-64 Linux.
Platform hostPlatform();

// How well an image for `candidate` runs on `wanted`: 0 when it cannot, higher is better.
// An exact variant beats an unspecified one, which beats an older compatible variant
// (arm/v6 on an arm/v7 host). Both platforms are normalised first.
int platformScore(const Platform& candidate, const Platform& wanted);

inline bool platformMatches(const Platform& candidate, const Platform& wanted) {
  return platformScore(candidate, wanted) > 0;
}

}  // namespace fleetlet::oci
