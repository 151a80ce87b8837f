#include "registry/auth.h"

#include <openssl/evp.h>

#include <cctype>

namespace fleetlet::registry {
namespace {

bool isTchar(char c) {
  if (std::isalnum(static_cast<unsigned char>(c)) != 0) return true;
  switch (c) {
    case '!':
    case '#':
    case '$':
    case '%':
    case '&':
    case '\'':
    case '*':
    case '+':
    case '-':
    case '.':
    case '^':
    case '_':
    case '`':
    case '|':
    case '~':
      return true;
    default:
      return false;
  }
}

bool isToken68Char(char c) {
  return std::isalnum(static_cast<unsigned char>(c)) != 0 || c == '-' || c == '.' || c == '_' ||
         c == '~' || c == '+' || c == '/';
}

std::string lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

class ChallengeParser {
 public:
  explicit ChallengeParser(std::string_view text) : text_(text) {}

  Result<std::vector<Challenge>> parse() {
    std::vector<Challenge> challenges;
    skipSeparators();
    while (pos_ < text_.size()) {
      std::string_view scheme = token();
      if (scheme.empty()) return error("expected an auth scheme");
      Challenge challenge;
      challenge.scheme = lower(scheme);
      skipSpaces();
      FLEETLET_RETURN_IF_ERROR(parseParams(challenge));
      challenges.push_back(std::move(challenge));
      skipSeparators();
    }
    if (challenges.empty()) return error("no challenge");
    return challenges;
  }

 private:
  std::unexpected<Error> error(std::string_view what) const {
    return fail(ErrorCode::kInvalidArgument, "WWW-Authenticate: {} at byte {}", what, pos_);
  }

  void skipSpaces() {
    while (pos_ < text_.size() && (text_[pos_] == ' ' || text_[pos_] == '\t')) ++pos_;
  }
  void skipSeparators() {
    while (pos_ < text_.size() && (text_[pos_] == ' ' || text_[pos_] == '\t' || text_[pos_] == ','))
      ++pos_;
  }
  std::string_view token() {
    size_t start = pos_;
    while (pos_ < text_.size() && isTchar(text_[pos_])) ++pos_;
    return text_.substr(start, pos_ - start);
  }

  // True when, at the current position, "token BWS =" follows (an auth-param starts here).
  bool paramAhead() const {
    size_t p = pos_;
    size_t start = p;
    while (p < text_.size() && isTchar(text_[p])) ++p;
    if (p == start) return false;
    while (p < text_.size() && (text_[p] == ' ' || text_[p] == '\t')) ++p;
    if (p >= text_.size() || text_[p] != '=') return false;
    // "abc==" is token68, not a param whose value starts with '='.
    ++p;
    while (p < text_.size() && (text_[p] == ' ' || text_[p] == '\t')) ++p;
    return p < text_.size() && text_[p] != '=' && text_[p] != ',';
  }

  Result<std::string> quoted() {
    ++pos_;  // opening quote
    std::string value;
    while (pos_ < text_.size()) {
      char c = text_[pos_++];
      if (c == '"') return value;
      if (c == '\\') {
        if (pos_ >= text_.size()) break;
        c = text_[pos_++];
      }
      value.push_back(c);
    }
    return error("unterminated quoted string");
  }

  Status parseParams(Challenge& challenge) {
    if (pos_ >= text_.size() || text_[pos_] == ',') return {};
    if (!paramAhead()) {
      // token68, or nothing when the next challenge's scheme follows.
      size_t start = pos_;
      while (pos_ < text_.size() && isToken68Char(text_[pos_])) ++pos_;
      while (pos_ < text_.size() && text_[pos_] == '=') ++pos_;
      challenge.token68 = std::string(text_.substr(start, pos_ - start));
      skipSpaces();
      if (pos_ < text_.size() && text_[pos_] != ',') return error("unexpected character");
      return {};
    }
    while (true) {
      std::string name = lower(token());
      skipSpaces();
      ++pos_;  // '=' (checked by paramAhead)
      skipSpaces();
      std::string value;
      if (pos_ < text_.size() && text_[pos_] == '"') {
        FLEETLET_ASSIGN_OR_RETURN(value, quoted());
      } else {
        std::string_view t = token();
        if (t.empty()) return error("expected a value after '='");
        value = t;
      }
      challenge.params.emplace(std::move(name), std::move(value));
      skipSpaces();
      if (pos_ >= text_.size()) return {};
      if (text_[pos_] != ',') return error("expected ',' between parameters");
      // A comma ends this param; what follows is another param or the next challenge.
      size_t comma = pos_;
      skipSeparators();
      if (pos_ >= text_.size()) return {};
      if (!paramAhead()) {
        pos_ = comma;
        return {};
      }
    }
  }

  std::string_view text_;
  size_t pos_ = 0;
};

}  // namespace

std::optional<std::string> Challenge::param(std::string_view name) const {
  auto it = params.find(std::string(name));
  if (it == params.end()) return std::nullopt;
  return it->second;
}

Result<std::vector<Challenge>> parseChallenges(std::string_view header) {
  return ChallengeParser(header).parse();
}

std::string basicAuthorization(std::string_view username, std::string_view password) {
  std::string plain = std::string(username) + ":" + std::string(password);
  std::string encoded(4 * ((plain.size() + 2) / 3) + 1, '\0');
  int n = EVP_EncodeBlock(reinterpret_cast<unsigned char*>(encoded.data()),
                          reinterpret_cast<const unsigned char*>(plain.data()),
                          static_cast<int>(plain.size()));
  encoded.resize(static_cast<size_t>(n));
  return "Basic " + encoded;
}

}  // namespace fleetlet::registry
