#pragma once
// RegistryClient: the OCI distribution client the image puller uses.
//
// Thread-safety: a RegistryClient is safe for concurrent calls from many threads (the puller
// downloads layers in parallel). Each call borrows an http::Client from an internal pool
// (one is created when none is idle, and kept for reuse, so N threads end up with N
// connections); bearer tokens and the last auth challenge are shared under `mutex_`. All
// calls block on the network.
//
// One client talks to one registry host. Auth: requests go out anonymously until the
// registry answers 401; a Bearer challenge makes the client fetch a token from the realm
// (with Basic credentials when configured), cache it per repository and retry once; a Basic
// challenge makes it send the configured credentials. Later requests reuse what was learnt.
//
// Failures: kUnavailable "registry unreachable: <host>: <reason>" when no answer came;
// registry error answers decoded by decodeRegistryError ("manifest unknown: <ref>" kNotFound,
// "unauthorized: ..." kFailedPrecondition, ...); kInvalidArgument when content does not match
// its digest or size, or a document is malformed.

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <stop_token>
#include <string>
#include <string_view>
#include <vector>

#include "error/error.h"
#include "http/client.h"
#include "oci/manifest.h"
#include "oci/reference.h"
#include "registry/auth.h"

namespace fleetlet::registry {

// Whether `registry` ("host[:port]") is on this machine: localhost, 127.0.0.0/8 or ::1 (as
// "[::1]:5000"). Such registries are reached over plain HTTP unless configured otherwise, as
// Docker does; every other registry over HTTPS unless named plain-HTTP.
bool isLoopbackRegistry(std::string_view registry);

// The scheme fleetletd and fleetletctl use for `registry`: plain HTTP when it is named in
// `plain_http`, or is a loopback registry not named in `https`; HTTPS otherwise.
bool usesPlainHttp(std::string_view registry, const std::set<std::string>& plain_http,
                   const std::set<std::string>& https);

struct Credentials {
  std::string username;
  std::string password;
};

struct RegistryOptions {
  // Talk http:// instead of https:// (--plain-http; loopback test registries).
  bool plain_http = false;
  std::optional<Credentials> credentials;
  std::string user_agent = "fleetlet/0.1";
  std::chrono::milliseconds connect_timeout{10000};
  // A transfer under min_bytes_per_second on average over stall_timeout fails.
  std::chrono::milliseconds stall_timeout{30000};
  int64_t min_bytes_per_second = 1;
  // No request runs past this point; a stop request ends transfers in progress.
  std::optional<std::chrono::steady_clock::time_point> deadline;
  std::stop_token stop;
  // Manifests and indexes larger than this are refused (registries cap them at 4 MiB).
  uint64_t max_manifest_bytes = 4 << 20;
  // fetchBlob() refuses blobs larger than this; use streamBlob() for layers.
  uint64_t max_buffered_blob_bytes = 32 << 20;
};

// What a tag or digest resolved to: the top-level descriptor (index or manifest; size and
// digest of `bytes`, media type from the registry or sniffed) and the verified bytes.
struct Resolved {
  oci::Descriptor descriptor;
  std::string bytes;
};

// Receives blob bytes in order; an Error stops the download and is returned by streamBlob.
using BlobSink = std::function<Status(std::string_view chunk)>;

class RegistryClient {
 public:
  // `registry` is a host[:port] as in Reference::registry(); "docker.io" is reached at
  // registry-1.docker.io.
  RegistryClient(std::string registry, RegistryOptions options = {});
  ~RegistryClient();
  RegistryClient(const RegistryClient&) = delete;
  RegistryClient& operator=(const RegistryClient&) = delete;

  const std::string& registry() const { return registry_; }

  // GET /v2/<repo>/manifests/<digest or tag>, accepting OCI index/manifest and Docker
  // manifest list/schema2. The bytes are verified against the reference's digest when it has
  // one, else against Docker-Content-Digest when the registry sent it. Fails with
  // kInvalidArgument when `ref` names another registry, on a digest mismatch or on a schema1
  // manifest; kNotFound "manifest unknown: <ref>" for an unknown tag or digest.
  Result<Resolved> resolve(const oci::Reference& ref);

  // The manifest or index `descriptor` names, verified against its digest and size.
  Result<std::string> fetchManifest(std::string_view repository, const oci::Descriptor& descriptor);

  // A small blob (an image config) buffered and verified against digest and size. Refuses
  // descriptors larger than max_buffered_blob_bytes with kInvalidArgument.
  Result<std::string> fetchBlob(std::string_view repository, const oci::Descriptor& descriptor);

  // Streams the blob's bytes from `offset` to the end into `sink`, resuming with an HTTP
  // Range request when offset > 0 (a server that ignores Range and answers 200 is handled by
  // skipping the first `offset` bytes). Redirects (to blob storage) are followed. The size is
  // always checked: a body longer than the descriptor's size is cut off with an error. The
  // digest is verified only when offset == 0 (a resumed download's earlier bytes are not
  // seen here; containerd verifies the whole blob at commit). offset == size returns at once.
  Status streamBlob(std::string_view repository, const oci::Descriptor& descriptor, uint64_t offset,
                    const BlobSink& sink);

 private:
  class ClientLease;
  ClientLease borrowClient();
  void returnClient(std::unique_ptr<http::Client> client);

  std::string url(std::string_view repository, std::string_view kind, std::string_view name) const;
  // Sends `request` for `repository` with the auth learnt so far and handles one round of
  // 401 challenges. With a sink, a 2xx body goes to it; the Response then has no body.
  Result<http::ClientResponse> perform(http::Client& http, std::string_view repository,
                                       const http::ClientRequest& request,
                                       const http::BodySink* sink);
  // Learns from a 401's challenges; false when they give nothing new to retry with.
  Result<bool> answerChallenge(http::Client& http, std::string_view repository,
                               const http::ClientResponse& response, bool sent_basic);
  Result<std::string> fetchToken(http::Client& http, const Challenge& challenge,
                                 std::string_view repository);
  std::optional<std::string> authorizationFor(std::string_view repository);
  Result<std::string> fetchBuffered(std::string_view repository, std::string_view kind,
                                    std::string_view name, std::string_view accept, uint64_t limit,
                                    std::string_view what, http::ClientResponse* response_out);

  const std::string registry_;
  const std::string base_url_;  // "https://host[:port]"
  const RegistryOptions options_;

  std::mutex mutex_;
  std::vector<std::unique_ptr<http::Client>> idle_clients_;  // guarded by mutex_
  std::optional<Challenge> bearer_challenge_;                // guarded by mutex_
  bool use_basic_ = false;                                   // guarded by mutex_
  std::map<std::string, std::string, std::less<>> tokens_;   // repository -> token; mutex_
};

}  // namespace fleetlet::registry
