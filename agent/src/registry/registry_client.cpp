#include "registry/registry_client.h"

#include <algorithm>
#include <cctype>

#include "json/json.h"
#include "oci/digest.h"
#include "oci/media_types.h"
#include "registry/registry_error.h"

namespace fleetlet::registry {
namespace {

namespace mt = oci::media_type;

std::string percentEncode(std::string_view s) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string out;
  for (char c : s) {
    auto u = static_cast<unsigned char>(c);
    if (std::isalnum(u) != 0 || c == '-' || c == '.' || c == '_' || c == '~') {
      out.push_back(c);
    } else {
      out.push_back('%');
      out.push_back(kHex[u >> 4]);
      out.push_back(kHex[u & 0xf]);
    }
  }
  return out;
}

// "application/json; charset=utf-8" -> "application/json".
std::string mediaTypeOf(const std::optional<std::string>& content_type) {
  if (!content_type) return {};
  std::string_view v = *content_type;
  v = v.substr(0, v.find(';'));
  while (!v.empty() && v.back() == ' ') v.remove_suffix(1);
  return std::string(v);
}

bool isSuccess(long status) { return status >= 200 && status < 300; }

// The http client says "<host> unreachable: <reason>"; keep the reason.
Error unreachable(std::string_view registry, const Error& error) {
  std::string_view message = error.message();
  std::string_view reason = message;
  if (auto pos = message.find(" unreachable: "); pos != std::string_view::npos) {
    reason = message.substr(pos + std::string_view(" unreachable: ").size());
  }
  return Error(ErrorCode::kUnavailable,
               fmt::format("registry unreachable: {}: {}", registry, reason));
}

}  // namespace

class RegistryClient::ClientLease {
 public:
  ClientLease(RegistryClient* owner, std::unique_ptr<http::Client> client)
      : owner_(owner), client_(std::move(client)) {}
  ClientLease(ClientLease&&) = default;
  ClientLease& operator=(ClientLease&&) = delete;
  ~ClientLease() {
    if (client_) owner_->returnClient(std::move(client_));
  }
  http::Client& operator*() { return *client_; }

 private:
  RegistryClient* owner_;
  std::unique_ptr<http::Client> client_;
};

bool usesPlainHttp(std::string_view registry, const std::set<std::string>& plain_http,
                   const std::set<std::string>& https) {
  const std::string name(registry);
  if (plain_http.contains(name)) return true;
  return isLoopbackRegistry(registry) && !https.contains(name);
}

bool isLoopbackRegistry(std::string_view registry) {
  std::string_view host = registry;
  if (host.starts_with('[')) {
    auto close = host.find(']');
    if (close == std::string_view::npos) return false;
    host = host.substr(1, close - 1);
    return host == "::1";
  }
  if (auto colon = host.find(':'); colon != std::string_view::npos) {
    if (host.find(':', colon + 1) != std::string_view::npos) return host == "::1";  // bare IPv6
    host = host.substr(0, colon);
  }
  if (host == "localhost") return true;
  // 127.a.b.c: four decimal octets, the first 127.
  if (!host.starts_with("127.")) return false;
  int octets = 0;
  size_t i = 0;
  while (i <= host.size()) {
    size_t end = host.find('.', i);
    if (end == std::string_view::npos) end = host.size();
    auto part = host.substr(i, end - i);
    if (part.empty() || part.size() > 3 ||
        part.find_first_not_of("0123456789") != std::string_view::npos ||
        std::stoi(std::string(part)) > 255) {
      return false;
    }
    ++octets;
    i = end + 1;
  }
  return octets == 4;
}

RegistryClient::RegistryClient(std::string registry, RegistryOptions options)
    : registry_(std::move(registry)),
      base_url_(
          fmt::format("{}://{}", options.plain_http ? "http" : "https",
                      registry_ == oci::kDockerHubRegistry ? "registry-1.docker.io" : registry_)),
      options_(std::move(options)) {}

RegistryClient::~RegistryClient() = default;

RegistryClient::ClientLease RegistryClient::borrowClient() {
  {
    std::lock_guard lock(mutex_);
    if (!idle_clients_.empty()) {
      auto client = std::move(idle_clients_.back());
      idle_clients_.pop_back();
      return ClientLease(this, std::move(client));
    }
  }
  http::ClientOptions http_options;
  http_options.user_agent = options_.user_agent;
  http_options.connect_timeout = options_.connect_timeout;
  http_options.stall_timeout = options_.stall_timeout;
  http_options.min_bytes_per_second = options_.min_bytes_per_second;
  http_options.deadline = options_.deadline;
  http_options.stop = options_.stop;
  return ClientLease(this, std::make_unique<http::Client>(std::move(http_options)));
}

void RegistryClient::returnClient(std::unique_ptr<http::Client> client) {
  std::lock_guard lock(mutex_);
  idle_clients_.push_back(std::move(client));
}

std::string RegistryClient::url(std::string_view repository, std::string_view kind,
                                std::string_view name) const {
  return fmt::format("{}/v2/{}/{}/{}", base_url_, repository, kind, name);
}

std::optional<std::string> RegistryClient::authorizationFor(std::string_view repository) {
  std::lock_guard lock(mutex_);
  if (auto it = tokens_.find(repository); it != tokens_.end()) return "Bearer " + it->second;
  if (use_basic_ && options_.credentials) {
    return basicAuthorization(options_.credentials->username, options_.credentials->password);
  }
  return std::nullopt;
}

Result<std::string> RegistryClient::fetchToken(http::Client& http, const Challenge& challenge,
                                               std::string_view repository) {
  auto realm = challenge.param("realm");
  if (!realm || !(realm->starts_with("https://") || realm->starts_with("http://"))) {
    return fail(ErrorCode::kFailedPrecondition,
                "unauthorized: {}: bearer challenge without a usable realm", registry_);
  }
  if (options_.credentials && realm->starts_with("http://") && !options_.plain_http) {
    return fail(ErrorCode::kFailedPrecondition,
                "unauthorized: {}: refusing to send credentials to plain-HTTP token realm {}",
                registry_, *realm);
  }
  // The challenge's scope is for the repository whose request was refused; a token learnt
  // ahead of time for another repository asks for pull on that one.
  std::string default_scope = fmt::format("repository:{}:pull", repository);
  std::string scope = challenge.param("scope").value_or(default_scope);
  if (scope.find(fmt::format("repository:{}:", repository)) == std::string::npos) {
    scope = default_scope;
  }
  std::string url = *realm + (realm->find('?') == std::string::npos ? "?" : "&");
  bool first = true;
  auto add = [&](std::string_view key, std::string_view value) {
    url += fmt::format("{}{}={}", first ? "" : "&", key, percentEncode(value));
    first = false;
  };
  if (auto service = challenge.param("service")) add("service", *service);
  size_t start = 0;
  while (start < scope.size()) {
    size_t space = scope.find(' ', start);
    std::string_view one = std::string_view(scope).substr(
        start, space == std::string::npos ? std::string::npos : space - start);
    if (!one.empty()) add("scope", one);
    if (space == std::string::npos) break;
    start = space + 1;
  }

  http::ClientRequest request;
  request.url = url;
  if (options_.credentials) {
    request.headers.add("Authorization", basicAuthorization(options_.credentials->username,
                                                            options_.credentials->password));
  }
  auto response = http.send(request);
  std::string what = fmt::format("{}/{} (token from {})", registry_, repository, *realm);
  if (!response) return std::unexpected(unreachable(*realm, response.error()));
  if (!isSuccess(response->status)) {
    return std::unexpected(decodeRegistryError(response->status, response->body, what));
  }
  auto json = parseJson(response->body, "token answer");
  if (!json) return std::unexpected(json.error().wrap("{}", what));
  if (json->is_object()) {
    for (std::string_view key : {"token", "access_token"}) {
      auto it = json->find(key);
      if (it != json->end() && it->is_string() && !it->get<std::string>().empty()) {
        return it->get<std::string>();
      }
    }
  }
  return fail(ErrorCode::kFailedPrecondition,
              "unauthorized: {}: the answer has neither \"token\" nor \"access_token\"", what);
}

Result<bool> RegistryClient::answerChallenge(http::Client& http, std::string_view repository,
                                             const http::ClientResponse& response,
                                             bool sent_basic) {
  auto header = response.headers.find("WWW-Authenticate");
  if (!header) return false;
  auto challenges = parseChallenges(*header);
  if (!challenges) return false;
  for (const Challenge& c : *challenges) {
    if (c.scheme != "bearer") continue;
    FLEETLET_ASSIGN_OR_RETURN(std::string token, fetchToken(http, c, repository));
    std::lock_guard lock(mutex_);
    tokens_[std::string(repository)] = std::move(token);
    bearer_challenge_ = c;
    return true;
  }
  for (const Challenge& c : *challenges) {
    if (c.scheme != "basic") continue;
    // Without credentials there is nothing to offer; if they were sent, they were refused.
    if (!options_.credentials || sent_basic) return false;
    std::lock_guard lock(mutex_);
    use_basic_ = true;
    return true;
  }
  return false;
}

Result<http::ClientResponse> RegistryClient::perform(http::Client& http,
                                                     std::string_view repository,
                                                     const http::ClientRequest& request,
                                                     const http::BodySink* sink) {
  // Once the registry is known to want bearer tokens, get one before asking: saves a 401.
  std::optional<Challenge> known_bearer;
  {
    std::lock_guard lock(mutex_);
    if (bearer_challenge_ && !tokens_.contains(repository)) known_bearer = bearer_challenge_;
  }
  if (known_bearer) {
    FLEETLET_ASSIGN_OR_RETURN(std::string token, fetchToken(http, *known_bearer, repository));
    std::lock_guard lock(mutex_);
    tokens_[std::string(repository)] = std::move(token);
  }
  for (int attempt = 0;; ++attempt) {
    http::ClientRequest sent = request;
    auto auth = authorizationFor(repository);
    if (auth) sent.headers.add("Authorization", *auth);
    auto response = sink != nullptr ? http.stream(sent, *sink) : http.send(sent);
    if (!response) return std::unexpected(unreachable(registry_, response.error()));
    if (response->status != 401 || attempt > 0) return response;
    bool sent_basic = auth && auth->starts_with("Basic ");
    FLEETLET_ASSIGN_OR_RETURN(bool retry, answerChallenge(http, repository, *response, sent_basic));
    if (!retry) return response;
  }
}

Result<std::string> RegistryClient::fetchBuffered(std::string_view repository,
                                                  std::string_view kind, std::string_view name,
                                                  std::string_view accept, uint64_t limit,
                                                  std::string_view what,
                                                  http::ClientResponse* response_out) {
  ClientLease lease = borrowClient();
  std::string body;
  bool too_large = false;
  http::BodySink sink = [&](std::string_view chunk) {
    if (body.size() + chunk.size() > limit) {
      too_large = true;
      return false;
    }
    body.append(chunk);
    return true;
  };
  http::ClientRequest request;
  request.url = url(repository, kind, name);
  if (!accept.empty()) request.headers.add("Accept", std::string(accept));
  auto response = perform(*lease, repository, request, &sink);
  if (too_large) {
    return fail(ErrorCode::kInvalidArgument, "{}: larger than {} bytes", what, limit);
  }
  if (!response) return std::unexpected(response.error());
  if (!isSuccess(response->status)) {
    return std::unexpected(decodeRegistryError(response->status, response->body, what));
  }
  if (response_out != nullptr) *response_out = std::move(*response);
  return body;
}

Result<Resolved> RegistryClient::resolve(const oci::Reference& ref) {
  std::string what = ref.toString();
  if (ref.registry() != registry_) {
    return fail(ErrorCode::kInvalidArgument, "{}: not on registry {}", what, registry_);
  }
  http::ClientResponse response;
  FLEETLET_ASSIGN_OR_RETURN(
      std::string bytes,
      fetchBuffered(ref.repository(), "manifests", ref.tagOrDigest(), mt::kManifestAccept,
                    options_.max_manifest_bytes, what, &response));

  std::string digest;
  if (!ref.digest().empty()) {
    digest = ref.digest();
  } else if (auto header = response.headers.find("Docker-Content-Digest")) {
    digest = *header;
  }
  if (digest.empty()) {
    digest = oci::digestOf(bytes);
  } else if (auto ok = oci::verify(bytes, digest); !ok) {
    return std::unexpected(ok.error().wrap("{}", what));
  }
  // Verified first: a tampered document is reported as such, not as malformed.
  std::string content_type = mediaTypeOf(response.headers.find("Content-Type"));
  auto media_type = oci::detectManifestType(bytes, content_type);
  if (!media_type) return std::unexpected(media_type.error().wrap("{}", what));
  Resolved resolved;
  resolved.descriptor.media_type = std::move(*media_type);
  resolved.descriptor.digest = std::move(digest);
  resolved.descriptor.size = static_cast<int64_t>(bytes.size());
  resolved.bytes = std::move(bytes);
  return resolved;
}

Result<std::string> RegistryClient::fetchManifest(std::string_view repository,
                                                  const oci::Descriptor& descriptor) {
  std::string what = fmt::format("{}/{}@{}", registry_, repository, descriptor.digest);
  if (auto ok = oci::validateDigest(descriptor.digest); !ok) {
    return std::unexpected(ok.error().wrap("{}", what));
  }
  if (descriptor.size < 0 || static_cast<uint64_t>(descriptor.size) > options_.max_manifest_bytes) {
    return fail(ErrorCode::kInvalidArgument, "{}: manifest size {} out of range (limit {})", what,
                descriptor.size, options_.max_manifest_bytes);
  }
  std::string accept(mt::kManifestAccept);
  if (!descriptor.media_type.empty() && accept.find(descriptor.media_type) == std::string::npos) {
    accept = descriptor.media_type + ", " + accept;
  }
  FLEETLET_ASSIGN_OR_RETURN(std::string bytes,
                            fetchBuffered(repository, "manifests", descriptor.digest, accept,
                                          static_cast<uint64_t>(descriptor.size), what, nullptr));
  if (bytes.size() != static_cast<uint64_t>(descriptor.size)) {
    return fail(ErrorCode::kInvalidArgument, "{}: size mismatch: expected {} bytes, got {}", what,
                descriptor.size, bytes.size());
  }
  if (auto ok = oci::verify(bytes, descriptor.digest); !ok) {
    return std::unexpected(ok.error().wrap("{}", what));
  }
  return bytes;
}

Result<std::string> RegistryClient::fetchBlob(std::string_view repository,
                                              const oci::Descriptor& descriptor) {
  std::string what = fmt::format("{}/{}@{}", registry_, repository, descriptor.digest);
  if (auto ok = oci::validateDigest(descriptor.digest); !ok) {
    return std::unexpected(ok.error().wrap("{}", what));
  }
  if (descriptor.size < 0 ||
      static_cast<uint64_t>(descriptor.size) > options_.max_buffered_blob_bytes) {
    return fail(ErrorCode::kInvalidArgument,
                "{}: blob size {} out of range for a buffered fetch (limit {})", what,
                descriptor.size, options_.max_buffered_blob_bytes);
  }
  FLEETLET_ASSIGN_OR_RETURN(std::string bytes,
                            fetchBuffered(repository, "blobs", descriptor.digest, {},
                                          static_cast<uint64_t>(descriptor.size), what, nullptr));
  if (bytes.size() != static_cast<uint64_t>(descriptor.size)) {
    return fail(ErrorCode::kInvalidArgument, "{}: size mismatch: expected {} bytes, got {}", what,
                descriptor.size, bytes.size());
  }
  if (auto ok = oci::verify(bytes, descriptor.digest); !ok) {
    return std::unexpected(ok.error().wrap("{}", what));
  }
  return bytes;
}

Status RegistryClient::streamBlob(std::string_view repository, const oci::Descriptor& descriptor,
                                  uint64_t offset, const BlobSink& sink) {
  std::string what = fmt::format("{}/{}@{}", registry_, repository, descriptor.digest);
  if (auto ok = oci::validateDigest(descriptor.digest); !ok) {
    return std::unexpected(ok.error().wrap("{}", what));
  }
  if (descriptor.size < 0) {
    return fail(ErrorCode::kInvalidArgument, "{}: negative size {}", what, descriptor.size);
  }
  const auto size = static_cast<uint64_t>(descriptor.size);
  if (offset > size) {
    return fail(ErrorCode::kInvalidArgument, "{}: offset {} is past the blob's size {}", what,
                offset, size);
  }
  if (offset == size) return {};

  ClientLease lease = borrowClient();
  std::string blob_url = url(repository, "blobs", descriptor.digest);

  // The http client hands body bytes over before it reports the status, so whether the
  // server honours Range has to be known before the real request: ask for the last byte.
  // One byte back means it does; a whole body (cut off after the first chunk) means it does
  // not, and the real request then reads from 0 and skips `offset` bytes.
  bool skip_prefix = false;
  if (offset > 0) {
    uint64_t probe_bytes = 0;
    http::BodySink probe_sink = [&](std::string_view chunk) {
      probe_bytes += chunk.size();
      return probe_bytes <= 1;
    };
    http::ClientRequest probe;
    probe.url = blob_url;
    probe.range_start = size - 1;
    auto response = perform(*lease, repository, probe, &probe_sink);
    if (probe_bytes > 1) {
      skip_prefix = true;
    } else if (!response) {
      return std::unexpected(response.error());
    } else if (!isSuccess(response->status)) {
      return std::unexpected(decodeRegistryError(response->status, response->body, what));
    } else {
      skip_prefix = response->status != 206;
    }
  }

  std::optional<oci::DigestVerifier> verifier;
  if (offset == 0) {
    FLEETLET_ASSIGN_OR_RETURN(verifier, oci::DigestVerifier::create(descriptor.digest, size));
  }
  uint64_t to_skip = skip_prefix ? offset : 0;
  uint64_t position = offset - to_skip;  // blob offset of the next byte to arrive
  std::optional<Error> sink_error;
  http::BodySink body_sink = [&](std::string_view chunk) {
    if (to_skip > 0) {
      uint64_t n = std::min<uint64_t>(to_skip, chunk.size());
      chunk.remove_prefix(n);
      to_skip -= n;
      position += n;
      if (chunk.empty()) return true;
    }
    if (position + chunk.size() > size) {
      sink_error =
          Error(ErrorCode::kInvalidArgument,
                fmt::format("{}: size mismatch: more than the expected {} bytes", what, size));
      return false;
    }
    if (verifier) {
      if (auto ok = verifier->update(chunk); !ok) {
        sink_error = ok.error().wrap("{}", what);
        return false;
      }
    }
    position += chunk.size();
    if (auto ok = sink(chunk); !ok) {
      sink_error = ok.error();
      return false;
    }
    return true;
  };
  http::ClientRequest request;
  request.url = blob_url;
  if (offset > 0 && !skip_prefix) request.range_start = offset;
  auto response = perform(*lease, repository, request, &body_sink);
  if (sink_error) return std::unexpected(*sink_error);
  if (!response) return std::unexpected(response.error());
  if (!isSuccess(response->status)) {
    return std::unexpected(decodeRegistryError(response->status, response->body, what));
  }
  if (response->status == 206) {
    auto range = response->headers.find("Content-Range");
    std::string expected = fmt::format("bytes {}-", offset);
    if (range && !range->starts_with(expected)) {
      return fail(ErrorCode::kUnavailable, "{}: asked for bytes from {}, got \"{}\"", what, offset,
                  *range);
    }
  }
  if (position != size) {
    return fail(ErrorCode::kUnavailable, "{}: download ended at byte {} of {}", what, position,
                size);
  }
  if (verifier) {
    if (auto ok = verifier->finish(); !ok) return std::unexpected(ok.error().wrap("{}", what));
  }
  return {};
}

}  // namespace fleetlet::registry
