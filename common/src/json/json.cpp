#include "json/json.h"

namespace fleetlet {
namespace {

std::unexpected<Error> typeError(const Json& value, std::string_view path, std::string_view key,
                                 std::string_view expected) {
  return fail(ErrorCode::kInvalidArgument, "{}.{}: expected {}, got {}", path, key, expected,
              jsonTypeName(value));
}

Result<const Json*> member(const Json& object, std::string_view key, std::string_view path) {
  if (!object.is_object()) {
    return fail(ErrorCode::kInvalidArgument, "{}: expected an object, got {}", path,
                jsonTypeName(object));
  }
  auto it = object.find(key);
  if (it == object.end()) return fail(ErrorCode::kInvalidArgument, "{}.{}: missing", path, key);
  return &*it;
}

}  // namespace

Result<Json> parseJson(std::string_view text, std::string_view what) {
  // nlohmann reports the position only through its exception; it stays inside this function.
  try {
    return Json::parse(text);
  } catch (const Json::parse_error& e) {
    return fail(ErrorCode::kInvalidArgument, "{}: malformed JSON at byte {}", what, e.byte);
  } catch (const Json::exception& e) {
    // Well-formed but unrepresentable, e.g. a number out of range ("4e722").
    return fail(ErrorCode::kInvalidArgument, "{}: malformed JSON: {}", what, e.what());
  }
}

std::string_view jsonTypeName(const Json& value) {
  switch (value.type()) {
    case Json::value_t::null:
      return "null";
    case Json::value_t::object:
      return "object";
    case Json::value_t::array:
      return "array";
    case Json::value_t::string:
      return "string";
    case Json::value_t::boolean:
      return "boolean";
    case Json::value_t::number_integer:
    case Json::value_t::number_unsigned:
      return "integer";
    case Json::value_t::number_float:
      return "number";
    case Json::value_t::binary:
      return "binary";
    case Json::value_t::discarded:
      return "invalid";
  }
  return "unknown";
}

Result<std::string> requireString(const Json& object, std::string_view key, std::string_view path) {
  FLEETLET_ASSIGN_OR_RETURN(const Json* v, member(object, key, path));
  if (!v->is_string()) return typeError(*v, path, key, "a string");
  return v->get<std::string>();
}

Result<int64_t> requireInt(const Json& object, std::string_view key, std::string_view path) {
  FLEETLET_ASSIGN_OR_RETURN(const Json* v, member(object, key, path));
  if (!v->is_number_integer()) return typeError(*v, path, key, "an integer");
  return v->get<int64_t>();
}

Result<const Json*> requireObject(const Json& object, std::string_view key, std::string_view path) {
  FLEETLET_ASSIGN_OR_RETURN(const Json* v, member(object, key, path));
  if (!v->is_object()) return typeError(*v, path, key, "an object");
  return v;
}

Result<const Json*> requireArray(const Json& object, std::string_view key, std::string_view path) {
  FLEETLET_ASSIGN_OR_RETURN(const Json* v, member(object, key, path));
  if (!v->is_array()) return typeError(*v, path, key, "an array");
  return v;
}

Result<std::optional<std::string>> optionalString(const Json& object, std::string_view key,
                                                  std::string_view path) {
  if (!object.is_object()) {
    return fail(ErrorCode::kInvalidArgument, "{}: expected an object, got {}", path,
                jsonTypeName(object));
  }
  auto it = object.find(key);
  if (it == object.end() || it->is_null()) return std::optional<std::string>();
  if (!it->is_string()) return typeError(*it, path, key, "a string");
  return std::optional<std::string>(it->get<std::string>());
}

}  // namespace fleetlet
