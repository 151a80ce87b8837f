#include "oci/platform.h"

#include <sys/utsname.h>

#include <algorithm>
#include <cctype>

namespace fleetlet::oci {
namespace {

std::string lower(std::string s) {
  std::transform(s.begin(), s.end(), s.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return s;
}

// "v7" -> 7 for arm variants; 0 when the variant is not of the form v<digits>.
int armVersion(std::string_view variant) {
  if (variant.size() < 2 || variant[0] != 'v') return 0;
  int v = 0;
  for (char c : variant.substr(1)) {
    if (c < '0' || c > '9' || v > 100) return 0;
    v = v * 10 + (c - '0');
  }
  return v;
}

}  // namespace

std::string Platform::toString() const {
  std::string s = os + "/" + architecture;
  if (!variant.empty()) s += "/" + variant;
  return s;
}

void normalizeArchitecture(std::string& architecture, std::string& variant) {
  std::string arch = lower(architecture);
  variant = lower(variant);
  if (arch == "x86_64" || arch == "x86-64" || arch == "amd64") {
    arch = "amd64";
    if (variant == "v1") variant.clear();
  } else if (arch == "aarch64" || arch == "arm64") {
    arch = "arm64";
    if (variant == "8" || variant == "v8") variant.clear();
  } else if (arch == "i386" || arch == "i486" || arch == "i586" || arch == "i686" ||
             arch == "386") {
    arch = "386";
  } else if (arch == "armhf") {
    arch = "arm";
    variant = "v7";
  } else if (arch == "armel") {
    arch = "arm";
    variant = "v6";
  } else if (arch.starts_with("armv") && arch.size() >= 5 && std::isdigit(arch[4]) != 0) {
    // uname -m spellings: armv5tel, armv6l, armv7l, armv8l (32-bit userland on 64-bit).
    variant = std::string("v") + arch[4];
    arch = "arm";
  } else if (arch == "arm") {
    if (variant.empty()) variant = "v7";
    if (variant.size() == 1 && std::isdigit(static_cast<unsigned char>(variant[0])) != 0) {
      variant = "v" + variant;
    }
  }
  architecture = std::move(arch);
}

Platform normalize(Platform platform) {
  platform.os = lower(std::move(platform.os));
  if (platform.os == "macos") platform.os = "darwin";
  normalizeArchitecture(platform.architecture, platform.variant);
  return platform;
}

Platform hostPlatform() {
  Platform p;
  utsname u{};
  if (::uname(&u) == 0) {
    p.os = lower(u.sysname);
    p.architecture = u.machine;
  } else {
    p.os = "linux";
    p.architecture = "amd64";
  }
  return normalize(std::move(p));
}

int platformScore(const Platform& candidate_in, const Platform& wanted_in) {
  Platform candidate = normalize(candidate_in);
  Platform wanted = normalize(wanted_in);
  if (candidate.os != wanted.os || candidate.architecture != wanted.architecture) return 0;
  if (candidate.variant == wanted.variant) return 100;
  if (candidate.variant.empty() || wanted.variant.empty()) return 50;
  if (candidate.architecture == "arm") {
    // An armv7 CPU runs v6 and v5 code: older is compatible, closer is better.
    int have = armVersion(wanted.variant);
    int image = armVersion(candidate.variant);
    if (have > 0 && image > 0 && image < have) return 40 - std::min(have - image, 30);
  }
  return 0;
}

}  // namespace fleetlet::oci
