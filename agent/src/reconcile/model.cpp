#include "reconcile/model.h"

namespace fleetlet::reconcile {

std::string containerId(const std::string& app, const std::string& spec_hash) {
  return app + "-" + spec_hash.substr(0, 12);
}

}  // namespace fleetlet::reconcile
