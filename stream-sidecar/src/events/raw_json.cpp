#include "events/raw_json.h"

#include "json/json.h"

namespace fleetlet::streams {
namespace {

bool isSpace(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; }

std::size_t skipSpace(std::string_view text, std::size_t pos) {
  while (pos < text.size() && isSpace(text[pos])) ++pos;
  return pos;
}

// `pos` is at an opening quote; returns the position after the closing one.
std::size_t skipString(std::string_view text, std::size_t pos) {
  ++pos;
  while (true) {
    pos = text.find_first_of("\"\\", pos);
    if (pos == std::string_view::npos) return text.size();
    if (text[pos] == '"') return pos + 1;
    pos += 2;  // an escape and the character it escapes
  }
}

// `pos` is at the start of a value; returns the position after it.
std::size_t skipValue(std::string_view text, std::size_t pos) {
  if (pos >= text.size()) return pos;
  char c = text[pos];
  if (c == '"') return skipString(text, pos);
  if (c == '{' || c == '[') {
    int depth = 0;
    while (pos < text.size()) {
      c = text[pos];
      if (c == '"') {
        pos = skipString(text, pos);
        continue;
      }
      if (c == '{' || c == '[') ++depth;
      if ((c == '}' || c == ']') && --depth == 0) return pos + 1;
      ++pos;
    }
    return pos;
  }
  // A number, true, false or null: up to the next delimiter.
  while (pos < text.size() && !isSpace(text[pos]) && text[pos] != ',' && text[pos] != ']' &&
         text[pos] != '}') {
    ++pos;
  }
  return pos;
}

// Calls fn(value) for each element of the array, or fn(key, value) for each member of the
// object, starting at `text` (which must begin with the opening bracket after whitespace).
template <typename F>
void forEachItem(std::string_view text, bool object, F&& fn) {
  std::size_t pos = skipSpace(text, 0);
  if (pos >= text.size() || text[pos] != (object ? '{' : '[')) return;
  pos = skipSpace(text, pos + 1);
  while (pos < text.size() && text[pos] != (object ? '}' : ']')) {
    std::string_view key;
    if (object) {
      std::size_t end = skipString(text, pos);
      key = text.substr(pos, end - pos);
      pos = skipSpace(text, end);
      pos = skipSpace(text, pos + 1);  // the ':'
    }
    std::size_t end = skipValue(text, pos);
    fn(key, text.substr(pos, end - pos));
    pos = skipSpace(text, end);
    if (pos < text.size() && text[pos] == ',') pos = skipSpace(text, pos + 1);
  }
}

// Whether the quoted JSON string `quoted` denotes `key`.
bool keyEquals(std::string_view quoted, std::string_view key) {
  if (quoted.size() < 2) return false;
  std::string_view inner = quoted.substr(1, quoted.size() - 2);
  if (inner.find('\\') == std::string_view::npos) return inner == key;
  Json decoded = Json::parse(quoted, nullptr, false);
  return decoded.is_string() && decoded.get_ref<const std::string&>() == key;
}

}  // namespace

std::string_view rawMember(std::string_view object, std::string_view key) {
  std::string_view found;
  forEachItem(object, true, [&](std::string_view k, std::string_view value) {
    if (keyEquals(k, key)) found = value;
  });
  return found;
}

std::vector<std::string_view> rawElements(std::string_view array) {
  std::vector<std::string_view> out;
  forEachItem(array, false,
              [&](std::string_view, std::string_view value) { out.push_back(value); });
  return out;
}

std::string compactJson(std::string_view value) {
  std::string out;
  out.reserve(value.size());
  std::size_t pos = 0;
  while (pos < value.size()) {
    if (value[pos] == '"') {
      std::size_t end = skipString(value, pos);
      out.append(value.substr(pos, end - pos));
      pos = end;
    } else if (isSpace(value[pos])) {
      ++pos;
    } else {
      std::size_t run = pos;
      while (pos < value.size() && value[pos] != '"' && !isSpace(value[pos])) ++pos;
      out.append(value.substr(run, pos - run));
    }
  }
  return out;
}

}  // namespace fleetlet::streams
