#pragma once
// Image references: `[host[:port]/]repository[:tag][@sha256:<hex>]` with Docker's defaults.
//
//   busybox                     -> docker.io/library/busybox:latest
//   acme/app:1                  -> docker.io/acme/app:1
//   127.0.0.1:5000/acme/app@sha256:... (digest only, no tag)
//
// The first path component is a registry host when it contains '.' or ':', is "localhost",
// or has upper-case letters (as in Docker). index.docker.io is folded into docker.io. A
// reference with a digest and no tag keeps the tag empty; one with neither gets "latest".
// Values are immutable after parse(); thread-safe.

#include <string>
#include <string_view>

#include "error/error.h"

namespace fleetlet::oci {

inline constexpr std::string_view kDockerHubRegistry = "docker.io";

class Reference {
 public:
  // Fails with kInvalidArgument `invalid reference "<text>": <reason>`.
  static Result<Reference> parse(std::string_view text);

  // "docker.io", "127.0.0.1:5000", "[::1]:5000".
  const std::string& registry() const { return registry_; }
  // "library/busybox", "acme/app".
  const std::string& repository() const { return repository_; }
  // Empty when the reference names only a digest.
  const std::string& tag() const { return tag_; }
  // "sha256:<hex>" or empty.
  const std::string& digest() const { return digest_; }

  // The digest when there is one, else the tag: what to put after /manifests/.
  const std::string& tagOrDigest() const { return digest_.empty() ? tag_ : digest_; }
  // "registry/repository".
  std::string name() const { return registry_ + "/" + repository_; }
  // Fully qualified: "docker.io/library/busybox:latest", "host/repo:tag@sha256:...".
  std::string toString() const;

  bool operator==(const Reference&) const = default;

 private:
  std::string registry_;
  std::string repository_;
  std::string tag_;
  std::string digest_;
};

}  // namespace fleetlet::oci
