#pragma once
// RemoteBlobs: where the blob API gets a blob it does not hold (the site's other nodes,
// remote/fetcher.h). A header-only interface, so the API does not depend on NATS.

#include <functional>
#include <string>

#include "error/error.h"

namespace fleetlet::remote {

class RemoteBlobs {
 public:
  virtual ~RemoteBlobs() = default;
  // Makes blob `handle` local by fetching it from a node that holds it; concurrent calls for
  // one handle share one fetch. Never blocks: `done` runs exactly once, on another thread (or
  // at once when the fetcher is stopping), with
  //   ok                  the blob is now in the local store;
  //   kNotFound           no node answered for it in time (or it expired);
  //   kResourceExhausted  it does not fit the quota or the maximum blob size;
  //   any other code      the hub or the holder failed, or sent content that did not verify
  //                       (nothing was stored); the message says which.
  virtual void fetch(std::string handle, std::function<void(Status)> done) = 0;
};

}  // namespace fleetlet::remote
