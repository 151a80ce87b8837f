#pragma once
// containerd's image store: names pointing at a target (index or manifest) descriptor.

#include <optional>
#include <string>
#include <vector>

#include "containerd/connection.h"
#include "containerd/types.h"

namespace fleetlet::containerd {

struct Image {
  std::string name;
  Descriptor target;
  Labels labels;
};

class ImageService : public ServiceBase {
 public:
  using ServiceBase::ServiceBase;
  // The image, or nullopt when no image has that name.
  // `timeout`: how long to wait for a containerd that is restarting (connection.h).
  Result<std::optional<Image>> get(const std::string& name,
                                   std::chrono::milliseconds timeout = kDefaultCallTimeout) const;
  Result<std::vector<Image>> list(const std::vector<std::string>& filters = {}) const;
  // Creates the image, or points an existing one at the new target and labels.
  Status put(const Image& image) const;
  // Deletes the image; kNotFound when absent. `sync` waits for garbage collection.
  Status remove(const std::string& name, bool sync = false) const;
};

}  // namespace fleetlet::containerd
