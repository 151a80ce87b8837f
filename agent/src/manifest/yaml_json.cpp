#include "manifest/yaml_json.h"

#include <yaml-cpp/eventhandler.h>
#include <yaml-cpp/exceptions.h>
#include <yaml-cpp/mark.h>
#include <yaml-cpp/parser.h>

#include <exception>
#include <optional>
#include <set>
#include <sstream>
#include <string>
#include <vector>

namespace fleetlet::manifest {
namespace {

constexpr std::string_view kStrTag = "tag:yaml.org,2002:str";
constexpr std::string_view kMapTag = "tag:yaml.org,2002:map";
constexpr std::string_view kSeqTag = "tag:yaml.org,2002:seq";

std::string quote(std::string_view text) {
  return Json(std::string(text)).dump(-1, ' ', false, Json::error_handler_t::replace);
}

bool validUtf8(std::string_view s) {
  size_t i = 0;
  while (i < s.size()) {
    const auto c = static_cast<unsigned char>(s[i]);
    size_t extra = 0;
    uint32_t cp = 0;
    if (c < 0x80) {
      ++i;
      continue;
    } else if ((c & 0xE0) == 0xC0) {
      extra = 1;
      cp = c & 0x1F;
    } else if ((c & 0xF0) == 0xE0) {
      extra = 2;
      cp = c & 0x0F;
    } else if ((c & 0xF8) == 0xF0) {
      extra = 3;
      cp = c & 0x07;
    } else {
      return false;
    }
    if (i + extra >= s.size()) return false;  // truncated sequence
    for (size_t k = 1; k <= extra; ++k) {
      const auto cc = static_cast<unsigned char>(s[i + k]);
      if ((cc & 0xC0) != 0x80) return false;
      cp = (cp << 6) | (cc & 0x3F);
    }
    // Overlong forms, surrogates and values past U+10FFFF.
    if ((extra == 1 && cp < 0x80) || (extra == 2 && cp < 0x800) || (extra == 3 && cp < 0x10000) ||
        (cp >= 0xD800 && cp <= 0xDFFF) || cp > 0x10FFFF) {
      return false;
    }
    i += extra + 1;
  }
  return true;
}

// The JSON number grammar: -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?
bool isJsonNumber(std::string_view s) {
  size_t i = 0;
  auto digits = [&] {
    size_t start = i;
    while (i < s.size() && s[i] >= '0' && s[i] <= '9') ++i;
    return i > start;
  };
  if (i < s.size() && s[i] == '-') ++i;
  if (i < s.size() && s[i] == '0') {
    ++i;
  } else if (!digits()) {
    return false;
  }
  if (i < s.size() && s[i] == '.') {
    ++i;
    if (!digits()) return false;
  }
  if (i < s.size() && (s[i] == 'e' || s[i] == 'E')) {
    ++i;
    if (i < s.size() && (s[i] == '+' || s[i] == '-')) ++i;
    if (!digits()) return false;
  }
  return i == s.size();
}

// A plain (unquoted, untagged) scalar's JSON value; see the header.
Json resolvePlain(const std::string& text) {
  if (text == "true" || text == "True" || text == "TRUE") return true;
  if (text == "false" || text == "False" || text == "FALSE") return false;
  if (text == "null" || text == "Null" || text == "NULL" || text == "~" || text.empty()) {
    return nullptr;
  }
  if (isJsonNumber(text)) {
    // The same conversion the JSON path applies to the same digits. Out-of-range numbers
    // ("1e999") stay strings; the validator then reports their type.
    Json number = Json::parse(text, nullptr, /*allow_exceptions=*/false);
    if (!number.is_discarded()) return number;
  }
  return text;
}

// Builds one JSON value from yaml-cpp's event stream. The first problem is kept (with its
// position) and every later event is ignored.
class JsonBuilder final : public YAML::EventHandler {
 public:
  const std::optional<std::string>& error() const { return error_; }
  std::optional<Json>& root() { return root_; }

  void OnDocumentStart(const YAML::Mark&) override {}
  void OnDocumentEnd() override {}

  void OnNull(const YAML::Mark& mark, YAML::anchor_t) override {
    if (error_) return;
    if (expectingKey()) return fail(mark, "a mapping key is empty");
    add(nullptr);
  }

  void OnAlias(const YAML::Mark& mark, YAML::anchor_t) override {
    fail(mark, "aliases (*name) are not supported");
  }

  void OnScalar(const YAML::Mark& mark, const std::string& tag, YAML::anchor_t,
                const std::string& value) override {
    if (error_) return;
    if (!validUtf8(value)) return fail(mark, "invalid UTF-8");
    if (tag != "?" && tag != "!" && tag != kStrTag) {
      return fail(mark, fmt::format("unsupported tag {}", quote(tag)));
    }
    if (expectingKey()) {
      Frame& top = stack_.back();
      if (top.keys.contains(value)) {
        return fail(mark, fmt::format("duplicate key {}", quote(value)));
      }
      top.keys.insert(value);
      top.key = value;
      top.have_key = true;
      return;
    }
    add(tag == "?" ? resolvePlain(value) : Json(value));
  }

  void OnSequenceStart(const YAML::Mark& mark, const std::string& tag, YAML::anchor_t,
                       YAML::EmitterStyle::value) override {
    start(mark, tag, kSeqTag, Json::array());
  }
  void OnSequenceEnd() override { end(); }

  void OnMapStart(const YAML::Mark& mark, const std::string& tag, YAML::anchor_t,
                  YAML::EmitterStyle::value) override {
    start(mark, tag, kMapTag, Json::object());
  }
  void OnMapEnd() override { end(); }

 private:
  struct Frame {
    Json value;
    std::set<std::string> keys;  // maps: keys seen so far
    std::string key;             // maps: the key whose value comes next
    bool have_key = false;
  };

  bool expectingKey() const {
    return !stack_.empty() && stack_.back().value.is_object() && !stack_.back().have_key;
  }

  void fail(const YAML::Mark& mark, std::string message) {
    if (error_) return;
    error_ = fmt::format("line {}, column {}: {}", mark.line + 1, mark.column + 1, message);
  }

  void start(const YAML::Mark& mark, const std::string& tag, std::string_view own_tag, Json empty) {
    if (error_) return;
    if (tag != "?" && tag != "!" && tag != own_tag) {
      return fail(mark, fmt::format("unsupported tag {}", quote(tag)));
    }
    if (expectingKey()) return fail(mark, "only scalar mapping keys are supported");
    stack_.push_back(Frame{std::move(empty), {}, {}, false});
  }

  void end() {
    if (error_ || stack_.empty()) return;
    Json value = std::move(stack_.back().value);
    stack_.pop_back();
    add(std::move(value));
  }

  void add(Json value) {
    if (stack_.empty()) {
      root_ = std::move(value);
      return;
    }
    Frame& top = stack_.back();
    if (top.value.is_array()) {
      top.value.push_back(std::move(value));
    } else {
      top.value[top.key] = std::move(value);
      top.have_key = false;
    }
  }

  std::vector<Frame> stack_;
  std::optional<Json> root_;
  std::optional<std::string> error_;
};

// "line L, column C" of the byte at `offset` (0-based) in `text`.
std::string position(std::string_view text, size_t offset) {
  size_t line = 1;
  size_t column = 1;
  for (size_t i = 0; i < offset && i < text.size(); ++i) {
    if (text[i] == '\n') {
      ++line;
      column = 1;
    } else {
      ++column;
    }
  }
  return fmt::format("line {}, column {}", line, column);
}

// Strict JSON with duplicate keys refused (nlohmann would keep the last one silently).
Result<Json> jsonToJson(std::string_view text) {
  std::vector<std::set<std::string>> keys;
  std::optional<std::string> duplicate;
  auto callback = [&](int, Json::parse_event_t event, Json& parsed) {
    switch (event) {
      case Json::parse_event_t::object_start:
        keys.emplace_back();
        break;
      case Json::parse_event_t::key:
        if (!keys.empty() && parsed.is_string() &&
            !keys.back().insert(parsed.get_ref<const std::string&>()).second && !duplicate) {
          duplicate = parsed.get<std::string>();
        }
        break;
      case Json::parse_event_t::object_end:
        if (!keys.empty()) keys.pop_back();
        break;
      default:
        break;
    }
    return true;
  };
  // nlohmann reports positions only through its exceptions; they stay inside this function.
  try {
    Json value = Json::parse(text, callback);
    if (duplicate) {
      return fail(ErrorCode::kInvalidArgument, "duplicate key {}", quote(*duplicate));
    }
    return value;
  } catch (const Json::parse_error& e) {
    const size_t at = e.byte > 0 ? e.byte - 1 : 0;
    return fail(ErrorCode::kInvalidArgument, "{}: malformed JSON", position(text, at));
  } catch (const std::exception& e) {
    return fail(ErrorCode::kInvalidArgument, "malformed JSON: {}", e.what());
  }
}

}  // namespace

Result<Json> yamlToJson(std::string_view text) {
  if (text.size() > kMaxManifestBytes) {
    return fail(ErrorCode::kInvalidArgument, "manifest is larger than {} bytes", kMaxManifestBytes);
  }
  if (!validUtf8(text)) {
    // yaml-cpp reads bytes; refuse what no YAML or JSON document may contain.
    return fail(ErrorCode::kInvalidArgument, "manifest is not valid UTF-8");
  }
  // yaml-cpp reports syntax errors only by throwing; they stay inside this function.
  try {
    std::istringstream in{std::string(text)};
    YAML::Parser parser(in);
    JsonBuilder builder;
    if (!parser.HandleNextDocument(builder)) {
      return fail(ErrorCode::kInvalidArgument, "manifest is empty");
    }
    if (const auto& error = builder.error()) return fail(ErrorCode::kInvalidArgument, "{}", *error);
    JsonBuilder second;
    if (parser.HandleNextDocument(second)) {
      return fail(ErrorCode::kInvalidArgument, "manifest has more than one YAML document");
    }
    std::optional<Json>& root = builder.root();
    if (!root) return fail(ErrorCode::kInvalidArgument, "manifest is empty");
    return std::move(*root);
  } catch (const YAML::Exception& e) {
    return fail(ErrorCode::kInvalidArgument, "line {}, column {}: {}", e.mark.line + 1,
                e.mark.column + 1, e.msg);
  } catch (const std::exception& e) {
    return fail(ErrorCode::kInvalidArgument, "malformed YAML: {}", e.what());
  }
}

Result<Json> manifestToJson(std::string_view text) {
  if (text.size() > kMaxManifestBytes) {
    return fail(ErrorCode::kInvalidArgument, "manifest is larger than {} bytes", kMaxManifestBytes);
  }
  std::string_view body = text;
  if (body.starts_with("\xEF\xBB\xBF")) body.remove_prefix(3);
  const size_t first = body.find_first_not_of(" \t\r\n");
  if (first != std::string_view::npos && body[first] == '{') return jsonToJson(body);
  return yamlToJson(text);
}

}  // namespace fleetlet::manifest
