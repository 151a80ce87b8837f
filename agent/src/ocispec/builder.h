#pragma once
// Builds the OCI runtime spec (config.json) for a container app, from the manifest and the
// image's config, as containerd's client would for `ctr run` plus fleetlet's limits. Pure;
// thread-safe.

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>

#include "error/error.h"
#include "json/json.h"
#include "manifest/types.h"
#include "oci/manifest.h"

namespace fleetlet::ocispec {

struct SpecInputs {
  std::string container_id;
  std::string ns;  // containerd namespace: cgroupsPath is /<ns>/<container_id>
  // Host directory under which the app's named volumes live: <volumes_root>/<volume name>.
  std::filesystem::path volumes_root;
  // Extra environment the agent adds (AX_EVENT_SERVICE_URI, ...); the app's own env wins.
  std::map<std::string, std::string> extra_env;
  // Network namespace path to join, or empty for a new one. Ignored for `network.mode: host`
  // (no network namespace: the node's).
  std::string netns_path;
  // A hosts file bind-mounted read-only at /etc/hosts (so that `localhost`, which the AX_*
  // service URIs name, resolves in images that bring none); empty: the image's own.
  std::filesystem::path hosts_file;
  // runtime: native: the app's state directory on the host (made by the caller), bound
  // read-write at the same path by the shim and named in $STATE_DIRECTORY; empty: none.
  std::filesystem::path state_dir;
  // runtime: native: the uid (and gid) a native app that names no user runs as at the
  // sandboxed and contained levels; unset: the shim derives one from the container id.
  std::optional<uint32_t> native_uid;
};

// The /etc/hosts fleetletd gives an app: localhost (IPv4 and IPv6) and the app's hostname.
std::string hostsFile(const std::string& hostname);

// process.args: the app's args when set, else the image's entrypoint + cmd (kInvalidArgument
// when both are empty); env: image env, then extra_env, then the app's env; cwd: the app's, the
// image's, or "/"; user from the app or the image (numeric uid[:gid] only; a name is
// kInvalidArgument naming it); cgroup limits from resources (cpu → quota/period 100000, memory
// → limit, pids → limit); a bind mount per volume (rbind, rw or ro) and per host mount (rbind, rw);
// default mounts, capabilities, masked and read-only paths as containerd's default spec; hostname =
// app name.
Result<Json> buildSpec(const manifest::App& app, const oci::ImageConfig& image,
                       const SpecInputs& inputs);

// The runtime annotation the fleetlet shim reads the sandbox level from, and the one naming
// the state directory (runtime-shim/src/shim/spec.cpp).
inline constexpr char kSandboxAnnotation[] = "io.fleetlet.sandbox";
inline constexpr char kStateDirAnnotation[] = "io.fleetlet.sandbox.state-dir";

// runtime: native: the spec the fleetlet shim (io.containerd.fleetlet.v1) runs on the host's
// own root: root.path "/" (no image, no snapshot), args = exec.path then exec.args, env = a
// default PATH, then extra_env, then the app's, cwd = the app's or "/", user = the app's
// (numeric) or else native_uid (or 0, which the shim replaces by a uid of its own), the level
// as annotation io.fleetlet.sandbox (default "sandboxed") and the state directory as
// io.fleetlet.sandbox.state-dir, cgroupsPath /<ns>/<id> with the app's limits, a bind per
// volume, noNewPrivileges, containerd's default capabilities as the bounding set (the shim
// leaves a non-root sandboxed user none). A contained app joins netns_path when it is set
// (else the shim gives it a loopback-only network); the other levels share the host's.
// kInvalidArgument for a non-native app or a bad id.
Result<Json> buildNativeSpec(const manifest::App& app, const SpecInputs& inputs);

}  // namespace fleetlet::ocispec
