#pragma once
// Leases protect content and snapshots from containerd's garbage collector while an image is
// being pulled or unpacked; namespaces scope everything fleetlet creates.

#include <chrono>
#include <string>

#include "containerd/connection.h"
#include "containerd/types.h"

namespace fleetlet::containerd {

// Creates the namespace if it does not exist yet.
Status ensureNamespace(const std::shared_ptr<Connection>& connection, const std::string& ns);

class LeaseService : public ServiceBase {
 public:
  using ServiceBase::ServiceBase;
  // Creates a lease that containerd expires by itself after `expire` (label
  // containerd.io/gc.expire), so a crashed client leaks nothing for long.
  Result<std::string> create(const std::string& id, std::chrono::seconds expire) const;
  // Deletes a lease; succeeds when it is already gone.
  Status remove(const std::string& id) const;
  Result<std::vector<std::string>> list() const;
};

// Owns a lease and deletes it when it goes out of scope (best effort: a failure is logged and
// containerd expires the lease later).
class ScopedLease {
 public:
  static Result<ScopedLease> create(const LeaseService& leases, const std::string& id,
                                    std::chrono::seconds expire);
  ScopedLease(ScopedLease&& other) noexcept;
  ScopedLease& operator=(ScopedLease&&) = delete;
  ScopedLease(const ScopedLease&) = delete;
  ScopedLease& operator=(const ScopedLease&) = delete;
  ~ScopedLease();

  const std::string& id() const { return id_; }

 private:
  ScopedLease(LeaseService leases, std::string id)
      : leases_(std::move(leases)), id_(std::move(id)) {}
  LeaseService leases_;
  std::string id_;
};

}  // namespace fleetlet::containerd
