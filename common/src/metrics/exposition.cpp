#include "metrics/exposition.h"

#include <fmt/format.h>

#include <cmath>
#include <cstdint>

namespace fleetlet::metrics {
namespace {

bool nameChar(char c, bool first, bool colon) {
  const bool alpha = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_';
  if (colon && c == ':') return true;
  return alpha || (!first && c >= '0' && c <= '9');
}

bool validName(std::string_view name, bool colon) {
  if (name.empty()) return false;
  for (size_t i = 0; i < name.size(); ++i) {
    if (!nameChar(name[i], i == 0, colon)) return false;
  }
  return true;
}

// Label values escape \ " and newline; HELP text escapes \ and newline only.
void appendEscaped(std::string& out, std::string_view text, bool quote) {
  for (char c : text) {
    if (c == '\\') {
      out += "\\\\";
    } else if (c == '\n') {
      out += "\\n";
    } else if (quote && c == '"') {
      out += "\\\"";
    } else {
      out += c;
    }
  }
}

std::string_view typeName(Type type) {
  switch (type) {
    case Type::kCounter:
      return "counter";
    case Type::kGauge:
      return "gauge";
    case Type::kHistogram:
      return "histogram";
    case Type::kUntyped:
      break;
  }
  return "untyped";
}

}  // namespace

bool validMetricName(std::string_view name) { return validName(name, true); }

bool validLabelName(std::string_view name) {
  return validName(name, false) && !name.starts_with("__");
}

std::string formatValue(double value) {
  if (std::isnan(value)) return "NaN";
  if (std::isinf(value)) return value > 0 ? "+Inf" : "-Inf";
  // Integral values below 2^53 are exact in a double: print them as integers.
  if (value == std::trunc(value) && std::fabs(value) < 9007199254740992.0) {
    return fmt::format("{}", static_cast<int64_t>(value));
  }
  return fmt::format("{}", value);  // the shortest text that reads back as `value`
}

bool TextWriter::family(std::string_view name, Type type, std::string_view help) {
  current_.clear();
  if (!validMetricName(name) || seen_.contains(name)) {
    ++dropped_;
    return false;
  }
  seen_.emplace(name);
  current_ = name;
  out_ += "# HELP ";
  out_ += name;
  out_ += ' ';
  appendEscaped(out_, help, false);
  out_ += "\n# TYPE ";
  out_ += name;
  out_ += ' ';
  out_ += typeName(type);
  out_ += '\n';
  return true;
}

void TextWriter::sample(const Labels& labels, double value, std::string_view suffix) {
  if (current_.empty()) {
    ++dropped_;
    return;
  }
  for (const auto& [name, v] : labels) {
    if (!validLabelName(name)) {
      ++dropped_;
      return;
    }
  }
  out_ += current_;
  out_ += suffix;
  if (!labels.empty()) {
    out_ += '{';
    bool first = true;
    for (const auto& [name, v] : labels) {
      if (!first) out_ += ',';
      first = false;
      out_ += name;
      out_ += "=\"";
      appendEscaped(out_, v, true);
      out_ += '"';
    }
    out_ += '}';
  }
  out_ += ' ';
  out_ += formatValue(value);
  out_ += '\n';
}

}  // namespace fleetlet::metrics
