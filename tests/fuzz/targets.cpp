#include "targets.h"

#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "multipart/multipart_parser.h"
#include "oci/digest.h"
#include "oci/manifest.h"
#include "oci/media_types.h"
#include "oci/reference.h"
#include "registry/auth.h"
#include "registry/registry_error.h"

namespace fleetlet::fuzz {
namespace {

void check(bool ok, const char* what) {
  if (!ok) {
    std::fprintf(stderr, "fuzz invariant broken: %s\n", what);
    std::abort();
  }
}

}  // namespace

void fuzzReference(std::string_view data) {
  auto ref = oci::Reference::parse(data);
  if (!ref) {
    check(ref.error().code() == ErrorCode::kInvalidArgument, "reference error code");
    check(ref.error().message().starts_with("invalid reference \""), "reference error prefix");
    return;
  }
  check(!ref->registry().empty() && !ref->repository().empty(), "reference has a name");
  check(!ref->tag().empty() || !ref->digest().empty(), "reference has a tag or digest");
  auto again = oci::Reference::parse(ref->toString());
  check(again.has_value(), "canonical reference parses");
  check(*again == *ref, "canonical reference round-trips");
}

void fuzzManifest(std::string_view data) {
  namespace mt = oci::media_type;
  static constexpr std::string_view kHints[] = {"",
                                                mt::kOciManifest,
                                                mt::kOciIndex,
                                                mt::kDockerManifest,
                                                mt::kDockerManifestList,
                                                "application/json",
                                                mt::kDockerSchema1SignedManifest,
                                                mt::kOciConfig};
  std::string_view hint;
  if (!data.empty()) {
    hint = kHints[static_cast<unsigned char>(data[0]) % std::size(kHints)];
    data.remove_prefix(1);
  }
  auto type = oci::detectManifestType(data, hint);
  if (type) check(mt::isIndex(*type) || mt::isManifest(*type), "detected type is known");

  if (auto m = oci::parseManifest(data, hint)) {
    check(mt::isManifest(m->media_type), "manifest media type");
    check(oci::validateDigest(m->config.digest).has_value(), "config digest valid");
    check(m->config.size >= 0, "config size");
    for (const auto& layer : m->layers) {
      check(oci::validateDigest(layer.digest).has_value() && layer.size >= 0, "layer valid");
      check(mt::classifyLayer(layer.media_type).has_value(), "layer type known");
    }
  }
  if (auto index = oci::parseIndex(data, hint)) {
    check(mt::isIndex(index->media_type), "index media type");
    auto chosen = oci::selectManifest(*index, oci::hostPlatform());
    if (chosen) check(mt::isManifest(chosen->media_type), "chosen entry is a manifest");
    (void)oci::selectManifest(*index, oci::Platform{"linux", "arm", "v7", "", {}});
  }
  if (auto config = oci::parseImageConfig(data)) {
    auto chain = oci::chainIds(config->diff_ids);
    check(chain.has_value() && chain->size() == config->diff_ids.size(), "chain ids");
  }
}

void fuzzAuthChallenge(std::string_view data) {
  auto challenges = registry::parseChallenges(data);
  if (!challenges) {
    check(challenges.error().code() == ErrorCode::kInvalidArgument, "challenge error code");
    return;
  }
  check(!challenges->empty(), "at least one challenge");
  for (const auto& c : *challenges) {
    check(!c.scheme.empty(), "scheme");
    for (char ch : c.scheme) check(!(ch >= 'A' && ch <= 'Z'), "scheme lower-cased");
  }
}

void fuzzRegistryError(std::string_view data) {
  long status = 400;
  if (data.size() >= 2) {
    status =
        300 +
        (static_cast<unsigned char>(data[0]) * 256 + static_cast<unsigned char>(data[1])) % 300;
    data.remove_prefix(2);
  }
  Error e = registry::decodeRegistryError(status, data, "127.0.0.1:5000/acme/x:1");
  check(e.message().find("127.0.0.1:5000/acme/x:1") != std::string::npos, "error names what");
  check(e.message().size() < 4096, "error message bounded");
}

namespace {

// Records what the multipart parser reports, as one comparable transcript.
class MultipartTranscript : public multipart::PartSink {
 public:
  Status onPartBegin(const multipart::PartHeaders& headers) override {
    check(!headers.name.empty(), "part has a name");
    check(!in_part_, "parts do not nest");
    in_part_ = true;
    text += "[begin " + headers.name + "|" + headers.filename.value_or("-") + "|" +
            headers.content_type + "]";
    return Status();
  }
  Status onPartData(std::string_view data) override {
    check(in_part_, "data inside a part");
    check(!data.empty(), "no empty data pieces");
    text += data;
    return Status();
  }
  Status onPartEnd() override {
    check(in_part_, "end after begin");
    in_part_ = false;
    text += "[end]";
    return Status();
  }
  std::string text;

 private:
  bool in_part_ = false;
};

std::string runMultipart(std::string_view body, std::size_t chunk) {
  MultipartTranscript sink;
  multipart::MultipartParser parser("bnd", sink, {.max_header_bytes = 256, .max_parts = 8});
  Status status;
  for (std::size_t i = 0; i < body.size() && status; i += chunk) {
    status = parser.feed(body.substr(i, chunk));
  }
  if (status) status = parser.finish();
  if (!status) {
    check(status.error().code() == ErrorCode::kInvalidArgument, "multipart error code");
    check(status.error().message().starts_with("multipart: "), "multipart error prefix");
    // What was emitted before the error may differ by chunking (held-back bytes).
    return "error: " + status.error().message();
  }
  check(parser.done(), "finish() succeeded only after the closing boundary");
  return sink.text;
}

}  // namespace

void fuzzMultipart(std::string_view data) {
  std::size_t chunk = 1;
  if (!data.empty()) {
    chunk = 1 + static_cast<unsigned char>(data[0]) % 17;
    data.remove_prefix(1);
  }
  (void)multipart::boundaryFromContentType(data.substr(0, 120));
  std::string whole = runMultipart(data, std::max<std::size_t>(data.size(), 1));
  std::string pieces = runMultipart(data, chunk);
  check(whole == pieces, "multipart result does not depend on chunking");
}

}  // namespace fleetlet::fuzz
