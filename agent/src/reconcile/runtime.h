#pragma once
// ContainerRuntime: the narrow view of containerd the reconciler needs. The real one is
// ContainerdRuntime (containerd_runtime.h); unit tests use a fake behind this interface.
//
// Every method is idempotent, so that repeating a step after a crash is harmless, and may
// block on containerd (and on a registry for ensureImage).

#include <chrono>
#include <optional>
#include <set>
#include <stop_token>
#include <string>
#include <vector>

#include "error/error.h"
#include "manifest/types.h"
#include "reconcile/model.h"

namespace fleetlet::reconcile {

class ContainerRuntime {
 public:
  virtual ~ContainerRuntime() = default;
  // Every container carrying the fleetlet.io/app label, with its task state.
  virtual Result<std::vector<ActualContainer>> list() = 0;
  // The containers with these ids that exist, with their task state (a cheap, per-app read).
  virtual Result<std::vector<ActualContainer>> inspect(const std::vector<std::string>& ids) = 0;
  // Whether containerd has the app's image unpacked (no registry is asked).
  virtual Result<bool> hasImage(const manifest::App& app) = 0;
  // Pulls the app's image unless containerd has it unpacked already. Bounded in time (an overall
  // deadline, and a minimum transfer rate a dripping registry cannot evade); returns early,
  // failing, once `stop` is requested.
  virtual Status ensureImage(const manifest::App& app, std::stop_token stop) = 0;
  // Creates container `id` (snapshot + record with the fleetlet labels) for `app`; succeeds
  // when a container with that id and the app's spec hash exists already.
  virtual Status create(const manifest::App& app, const std::string& id, int64_t revision) = 0;
  // Creates the task when there is none (deleting a stopped one first; the app's network is
  // brought up to date before a task is created) and starts it. Returns the pid.
  virtual Result<uint32_t> start(const manifest::App& app, const std::string& id) = 0;
  // Brings what lives beside a running task up to date with the app's spec without touching
  // the task: its node-service listeners (a restarted fleetletd makes them again). Called on
  // every pass over a desired app whose container runs; cheap when nothing changed.
  virtual Status refresh(const manifest::App& app) = 0;
  // A host directory a running task of `app` binds that is no longer there (its volume was
  // removed, or the node lost its data directory while the task ran): that task writes into a
  // deleted directory and can create nothing in it, so it must start again to bind a new one.
  // std::nullopt when every one exists. Cheap (a stat per volume).
  virtual std::optional<std::string> lostHostPath(const manifest::App& /*app*/) {
    return std::nullopt;
  }
  // SIGTERM, then SIGKILL once `grace` has passed; succeeds when no task runs.
  virtual Status stop(const std::string& id, std::chrono::milliseconds grace) = 0;
  // Deletes task, snapshot and container; succeeds when they are gone already.
  virtual Status remove(const std::string& id) = 0;
  // Deletes per-app data kept beside containerd of every app not in `live`: its network
  // (namespace, attachment) at once, its logs once their retention has passed. Best effort:
  // problems are logged and retried on the next call.
  virtual void pruneAppData(const std::set<std::string>& live) = 0;
};

}  // namespace fleetlet::reconcile
