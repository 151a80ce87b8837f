#include "support/test_containers.h"

#include <signal.h>

#include <cstdlib>
#include <future>
#include <string_view>

#include "containerd/containers.h"
#include "containerd/images.h"
#include "containerd/leases.h"
#include "containerd/snapshots.h"
#include "image/store.h"
#include "oci/digest.h"

namespace fleetlet::testing {

using namespace fleetlet::containerd;

Result<std::string> testContainerRuntime() {
  const char* shim = std::getenv("FLEETLET_TEST_CONTAINER_SHIM");
  if (shim == nullptr || *shim == '\0' || std::string_view(shim) == "fleetlet") {
    return kFleetletRuntime;
  }
  if (std::string_view(shim) == "runc") return kRuncRuntime;
  return fail(ErrorCode::kInvalidArgument,
              "FLEETLET_TEST_CONTAINER_SHIM: \"{}\" (expected runc or fleetlet)", shim);
}

Result<TestContainers> TestContainers::prepare(const PrivateContainerd& containerd, std::string ns,
                                               std::string image) {
  FLEETLET_ASSIGN_OR_RETURN(
      auto connection, Connection::connect(containerd.socket().string(), std::chrono::seconds(10)));
  FLEETLET_RETURN_IF_ERROR(
      discardValue(containerd.ctrOk({"images", "pull", "--plain-http", image}, ns)));
  FLEETLET_ASSIGN_OR_RETURN(auto record, ImageService(connection, {ns, {}}).get(image));
  if (!record) return fail(ErrorCode::kNotFound, "image {} not in containerd after pull", image);
  FLEETLET_ASSIGN_OR_RETURN(auto resolved,
                            image::ImageStore(connection, ns).resolveLocal(record->target));
  FLEETLET_ASSIGN_OR_RETURN(auto chains, oci::chainIds(resolved.second.diff_ids));
  if (chains.empty()) return fail(ErrorCode::kInvalidArgument, "image {} has no layers", image);
  FLEETLET_ASSIGN_OR_RETURN(auto spec_text, containerd.ctrOk({"oci", "spec"}, ns));
  FLEETLET_ASSIGN_OR_RETURN(auto spec, parseJson(spec_text, "ctr oci spec"));
  return TestContainers(std::move(connection), std::move(ns), std::move(image), chains.back(),
                        std::move(spec));
}

Result<std::string> TestContainers::create(std::string_view prefix,
                                           const std::vector<std::string>& args,
                                           const std::string& app,
                                           const std::function<void(Json&)>& edit) const {
  std::string id = PrivateContainerd::uniqueId(prefix);
  Json spec = base_spec_;
  spec["process"]["args"] = args;
  // `ctr oci spec` has no environment; ctr run adds the image's, and so does this helper.
  spec["process"]["env"] = {"PATH=/usr/sbin:/usr/bin:/sbin:/bin"};
  spec["linux"]["cgroupsPath"] = "/" + ns_ + "/" + id;
  if (edit) edit(spec);
  FLEETLET_ASSIGN_OR_RETURN(auto runtime, testContainerRuntime());
  FLEETLET_ASSIGN_OR_RETURN(auto lease, ScopedLease::create(LeaseService(connection_, {ns_, {}}),
                                                            id, std::chrono::minutes(5)));
  FLEETLET_RETURN_IF_ERROR(
      discardValue(SnapshotService(connection_, {ns_, lease.id()}).prepare(id, top_chain_)));
  FLEETLET_RETURN_IF_ERROR(ContainerService(connection_, {ns_, {}})
                               .create({.id = id,
                                        .image = image_,
                                        .labels = {{"fleetlet.io/app", app}},
                                        .runtime = runtime,
                                        .spec_json = spec.dump(),
                                        .snapshotter = kDefaultSnapshotter,
                                        .snapshot_key = id}));
  return id;
}

Result<uint32_t> TestContainers::createTask(const std::string& id, const TaskIo& io) const {
  FLEETLET_ASSIGN_OR_RETURN(auto mounts, SnapshotService(connection_, {ns_, {}}).mounts(id));
  return TaskService(connection_, {ns_, {}}).create(id, mounts, io);
}

Status TestContainers::destroy(const std::string& id) const {
  TaskService tasks(connection_, {ns_, {}});
  FLEETLET_ASSIGN_OR_RETURN(auto info, tasks.get(id));
  if (info && info->state == TaskInfo::State::kRunning) {
    // Wait is issued before the kill, on its own thread, so the exit cannot be missed.
    auto waited = std::async(std::launch::async, [&] { return tasks.wait(id); });
    FLEETLET_RETURN_IF_ERROR(tasks.kill(id, SIGKILL, /*all=*/true));
    FLEETLET_RETURN_IF_ERROR(discardValue(waited.get()));
  }
  if (info) FLEETLET_RETURN_IF_ERROR(discardValue(tasks.remove(id)));
  FLEETLET_RETURN_IF_ERROR(SnapshotService(connection_, {ns_, {}}).remove(id));
  return ContainerService(connection_, {ns_, {}}).remove(id);
}

}  // namespace fleetlet::testing
