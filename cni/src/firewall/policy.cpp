#include "firewall/policy.h"

namespace fleetlet::cni::firewall {

std::string_view toString(Egress egress) {
  switch (egress) {
    case Egress::kAll:
      return "all";
    case Egress::kLocal:
      return "local";
    case Egress::kNone:
      return "none";
  }
  return "all";
}

Json Policy::toJson() const {
  Json allowed = Json::array();
  for (const auto& cidr : allow) allowed.push_back(cidr.toString());
  return Json{{"egress", toString(egress)}, {"allow", allowed}};
}

Result<Policy> parsePolicy(const Json& object, std::string_view path, Policy base) {
  if (!object.is_object()) {
    return fail(ErrorCode::kInvalidArgument, "{}: expected an object, got {}", path,
                jsonTypeName(object));
  }
  Policy out = std::move(base);
  if (auto e = object.find("egress"); e != object.end() && !e->is_null()) {
    std::string value = e->is_string() ? e->get<std::string>() : "";
    if (value == "all") {
      out.egress = Egress::kAll;
    } else if (value == "local") {
      out.egress = Egress::kLocal;
    } else if (value == "none") {
      out.egress = Egress::kNone;
    } else {
      return fail(ErrorCode::kInvalidArgument,
                  "{}.egress: expected \"none\", \"local\" or "
                  "\"all\", got {}",
                  path, e->dump(-1, ' ', false, Json::error_handler_t::replace));
    }
  }
  if (auto a = object.find("allow"); a != object.end() && !a->is_null()) {
    if (!a->is_array()) {
      return fail(ErrorCode::kInvalidArgument, "{}.allow: expected an array of CIDRs", path);
    }
    out.allow.clear();
    for (size_t i = 0; i < a->size(); ++i) {
      const Json& entry = (*a)[i];
      if (!entry.is_string()) {
        return fail(ErrorCode::kInvalidArgument, "{}.allow[{}]: expected a CIDR string", path, i);
      }
      auto cidr = parseCidr(entry.get<std::string>(), /*prefix_optional=*/true);
      if (!cidr) return std::unexpected(cidr.error().wrap("{}.allow[{}]", path, i));
      out.allow.push_back(cidr->network());
    }
  }
  return out;
}

}  // namespace fleetlet::cni::firewall
