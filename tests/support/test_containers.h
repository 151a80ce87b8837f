#pragma once
// TestContainers: containers of the busybox test image made directly through fleetlet's
// containerd client, for integration tests of the parts below the reconciler (client, logs,
// health). It does what containerd's own client does: the snapshot is prepared under a lease
// until the container record references it, so the collector cannot take it in between.
//
// Thread-safety: const methods may run from several threads.
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "containerd/connection.h"
#include "containerd/tasks.h"
#include "json/json.h"
#include "support/private_containerd.h"

namespace fleetlet::testing {

// The containerd runtime tests make containers with, as fleetletd's default:
// io.containerd.fleetlet.v1 (PrivateContainerd puts the shim on containerd's PATH), or
// io.containerd.runc.v2 when FLEETLET_TEST_CONTAINER_SHIM=runc. Any other value is a test error.
Result<std::string> testContainerRuntime();

class TestContainers {
 public:
  // Connects to `containerd`, pulls `image` into namespace `ns` with ctr (so tests depend only
  // on the client they test), resolves its top layer chain and takes ctr's default OCI spec as
  // the base.
  static Result<TestContainers> prepare(const PrivateContainerd& containerd, std::string ns,
                                        std::string image);

  // Creates a container running `args`, with an id from PrivateContainerd::uniqueId(prefix),
  // labelled fleetlet.io/app=`app`, PATH set and its cgroup under /<ns>/<id>, on
  // testContainerRuntime(). `edit` may
  // change the spec further. Returns the id.
  Result<std::string> create(std::string_view prefix, const std::vector<std::string>& args,
                             const std::string& app,
                             const std::function<void(Json&)>& edit = {}) const;
  // Creates the task of container `id` with `io`; returns its pid (not started yet).
  Result<uint32_t> createTask(const std::string& id, const containerd::TaskIo& io) const;
  // Kills the task if it runs and removes it, then removes the snapshot while the container
  // still protects it, then the container.
  Status destroy(const std::string& id) const;

  // The client connection the containers are made through; tests may use it too.
  const std::shared_ptr<containerd::Connection>& connection() const { return connection_; }
  const std::string& ns() const { return ns_; }
  const std::string& image() const { return image_; }

 private:
  TestContainers(std::shared_ptr<containerd::Connection> connection, std::string ns,
                 std::string image, std::string top_chain, Json base_spec)
      : connection_(std::move(connection)),
        ns_(std::move(ns)),
        image_(std::move(image)),
        top_chain_(std::move(top_chain)),
        base_spec_(std::move(base_spec)) {}

  std::shared_ptr<containerd::Connection> connection_;
  std::string ns_;
  std::string image_;
  std::string top_chain_;
  Json base_spec_;
};

}  // namespace fleetlet::testing
