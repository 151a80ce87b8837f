#include "trust/envelope.h"

#include "json/json.h"
#include "trust/base64.h"

namespace fleetlet::trust {
namespace {

Result<std::string> stringField(const Json& object, std::string_view key, std::string_view path) {
  auto it = object.find(key);
  if (it == object.end()) return fail(ErrorCode::kInvalidArgument, "envelope: {}: required", path);
  if (!it->is_string()) {
    return fail(ErrorCode::kInvalidArgument, "envelope: {}: expected a string, got {}", path,
                it->type_name());
  }
  return it->get<std::string>();
}

Result<std::string> base64Field(const Json& object, std::string_view key, std::string_view path) {
  FLEETLET_ASSIGN_OR_RETURN(std::string text, stringField(object, key, path));
  auto bytes = base64Decode(text);
  if (!bytes) return fail(ErrorCode::kInvalidArgument, "envelope: {}: not base64", path);
  return std::move(*bytes);
}

}  // namespace

std::string pae(std::string_view payload_type, std::string_view payload) {
  std::string out =
      fmt::format("DSSEv1 {} {} {} ", payload_type.size(), payload_type, payload.size());
  out.append(payload);
  return out;
}

bool looksLikeEnvelope(std::string_view text) {
  auto start = text.find_first_not_of(" \t\r\n");
  if (start == std::string_view::npos || text[start] != '{') return false;
  auto key = text.find_first_not_of(" \t\r\n", start + 1);
  if (key == std::string_view::npos) return false;
  text.remove_prefix(key);
  return text.starts_with("\"payloadType\"") || text.starts_with("\"payload\"") ||
         text.starts_with("\"signatures\"");
}

Result<Envelope> parseEnvelope(std::string_view text) {
  if (text.size() > kMaxEnvelopeBytes) {
    return fail(ErrorCode::kInvalidArgument, "envelope: {} bytes is more than {}", text.size(),
                kMaxEnvelopeBytes);
  }
  Json doc = Json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (doc.is_discarded()) {
    return fail(ErrorCode::kInvalidArgument,
                "envelope: not JSON (a DSSE envelope is a JSON "
                "object with payloadType, payload and signatures)");
  }
  if (!doc.is_object()) {
    return fail(ErrorCode::kInvalidArgument, "envelope: expected a JSON object, got {}",
                doc.type_name());
  }
  for (const auto& [key, value] : doc.items()) {
    if (key != "payloadType" && key != "payload" && key != "signatures") {
      return fail(ErrorCode::kInvalidArgument, "envelope: unknown field \"{}\"", key.substr(0, 64));
    }
  }
  Envelope env;
  FLEETLET_ASSIGN_OR_RETURN(env.payload_type, stringField(doc, "payloadType", "payloadType"));
  if (env.payload_type.empty()) {
    return fail(ErrorCode::kInvalidArgument, "envelope: payloadType: empty");
  }
  FLEETLET_ASSIGN_OR_RETURN(env.payload, base64Field(doc, "payload", "payload"));
  auto sigs = doc.find("signatures");
  if (sigs == doc.end()) return fail(ErrorCode::kInvalidArgument, "envelope: signatures: required");
  if (!sigs->is_array()) {
    return fail(ErrorCode::kInvalidArgument, "envelope: signatures: expected a list, got {}",
                sigs->type_name());
  }
  if (sigs->empty()) return fail(ErrorCode::kInvalidArgument, "envelope: signatures: none");
  if (sigs->size() > kMaxSignatures) {
    return fail(ErrorCode::kInvalidArgument, "envelope: signatures: {} is more than {}",
                sigs->size(), kMaxSignatures);
  }
  for (size_t i = 0; i < sigs->size(); ++i) {
    const Json& s = (*sigs)[i];
    std::string path = fmt::format("signatures[{}]", i);
    if (!s.is_object()) {
      return fail(ErrorCode::kInvalidArgument, "envelope: {}: expected an object", path);
    }
    Signature sig;
    if (auto keyid = s.find("keyid"); keyid != s.end() && !keyid->is_null()) {
      FLEETLET_ASSIGN_OR_RETURN(sig.keyid, stringField(s, "keyid", path + ".keyid"));
    }
    FLEETLET_ASSIGN_OR_RETURN(sig.sig, base64Field(s, "sig", path + ".sig"));
    env.signatures.push_back(std::move(sig));
  }
  return env;
}

std::string serializeEnvelope(const Envelope& envelope) {
  Json sigs = Json::array();
  for (const auto& s : envelope.signatures) {
    sigs.push_back(Json{{"keyid", s.keyid}, {"sig", base64Encode(s.sig)}});
  }
  Json doc = {{"payloadType", envelope.payload_type},
              {"payload", base64Encode(envelope.payload)},
              {"signatures", std::move(sigs)}};
  return doc.dump(-1, ' ', false, Json::error_handler_t::replace);
}

}  // namespace fleetlet::trust
