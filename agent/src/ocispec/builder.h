#pragma once
// Builds the OCI runtime spec (config.json) for a container app, from the manifest and the
// image's config, as containerd's client would for `ctr run` plus fleetlet's limits. Pure;
// thread-safe.

#include <filesystem>
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

}  // namespace fleetlet::ocispec
