#include "targets.h"

#include <fcntl.h>

#include <cstdio>
#include <cstdlib>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "bundle/unpack.h"
#include "console/log_entry.h"
#include "core/control_protocol.h"
#include "core/policy.h"
#include "events/replicated.h"
#include "events/requests.h"
#include "executor/executor.h"
#include "handoff/protocol.h"
#include "json/json.h"
#include "manifest/parse.h"
#include "manifest/yaml_json.h"
#include "multipart/multipart_parser.h"
#include "oci/digest.h"
#include "oci/manifest.h"
#include "oci/media_types.h"
#include "oci/reference.h"
#include "ocispec/builder.h"
#include "registry/auth.h"
#include "registry/registry_error.h"
#include "remote/protocol.h"
#include "spec/types.h"
#include "trust/envelope.h"
#include "trust/policy.h"
#include "ttrpc/frame.h"
#include "ttrpc/ttrpc.pb.h"

namespace fleetlet::fuzz {
namespace {

void check(bool ok, const char* what) {
  if (!ok) {
    (void)std::fprintf(stderr, "fuzz invariant broken: %s\n", what);
    std::abort();
  }
}

// The first byte of `data` (0 when it is empty), which targets use to choose what the rest
// is fed to; removed from `data`.
unsigned takeFirstByte(std::string_view& data) {
  if (data.empty()) return 0;
  const auto first = static_cast<unsigned char>(data[0]);
  data.remove_prefix(1);
  return first;
}

// A refusal of a malformed request: kInvalidArgument, with a message.
void checkInvalidArgument(const Error& e) {
  check(e.code() == ErrorCode::kInvalidArgument, "refusal is kInvalidArgument");
  check(!e.message().empty(), "refusal has a message");
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

void fuzzHandoffMessage(std::string_view data) {
  std::size_t fds = 0;
  if (!data.empty()) {
    fds = static_cast<unsigned char>(data[0]) % 4;
    data.remove_prefix(1);
  }
  auto message = handoff::decodeMessage(data, fds);
  if (!message) {
    check(message.error().code() == ErrorCode::kInvalidArgument, "handoff error code");
    check(message.error().message().size() < 4096, "handoff error message bounded");
    return;
  }
  check(!message->fd.valid(), "decoded message owns no fd");
  bool named = message->op == handoff::Op::kAdd || message->op == handoff::Op::kRemove;
  check(fds == (message->op == handoff::Op::kAdd ? 1u : 0u), "fd count matches op");
  check(named == !message->app.empty(), "app present exactly for add/remove");
  if (named) check(handoff::validateName("app", message->app).has_value(), "app valid");
  if (!message->listener.empty()) {
    check(handoff::validateName("listener", message->listener).has_value(), "listener valid");
  }
  check(message->op != handoff::Op::kAdd || !message->listener.empty(), "add names a listener");
  // Re-encoding (with a stand-in fd for add) decodes to the same message.
  handoff::Message copy{message->op, message->app, message->listener, UniqueFd()};
  if (copy.op == handoff::Op::kAdd) copy.fd.reset(::open("/dev/null", O_RDONLY | O_CLOEXEC));
  if (copy.op != handoff::Op::kAdd || copy.fd) {
    auto body = handoff::encodeMessage(copy);
    check(body.has_value(), "decoded message encodes");
    auto again = handoff::decodeMessage(*body, fds);
    check(again.has_value() && again->op == message->op && again->app == message->app &&
              again->listener == message->listener,
          "handoff message round-trips");
  }
}

void fuzzNodeState(std::string_view data) {
  auto state = manifest::parseNodeState(data, "fuzz");
  if (!state) {
    check(state.error().code() == ErrorCode::kInvalidArgument, "nodestate error code");
    check(state.error().message().starts_with("fuzz: "), "nodestate error names the source");
    return;
  }
  check(state->revision >= 1, "revision positive");
  check(state->start_order.size() == state->apps.size(), "start order covers every app");
  std::set<std::string> started;
  for (const auto& name : state->start_order) {
    const auto it = state->apps.find(name);
    check(it != state->apps.end(), "start order names apps");
    for (const auto& dep : it->second.depends_on) check(started.contains(dep), "deps start first");
    check(started.insert(name).second, "start order has no repeats");
  }
  for (const auto& [name, app] : state->apps) {
    check(app.name == name && app.spec_hash.size() == 64, "app name and hash");
    if (app.runtime != manifest::Runtime::kContainer) continue;
    oci::ImageConfig image;
    image.cmd = {"sh"};
    ocispec::SpecInputs inputs{"id", "fleetlet", "/var/lib/fleetlet/volumes", {}, ""};
    auto spec = ocispec::buildSpec(app, image, inputs);
    check(spec.has_value(), "a valid container app gets a spec");
  }
  // The same document as JSON gives the same hashes.
  auto json = manifest::manifestToJson(data);
  check(json.has_value(), "an accepted manifest converts");
  auto again = manifest::parseNodeState(json->dump(-1, ' ', false, Json::error_handler_t::replace));
  check(again.has_value(), "an accepted manifest re-reads as JSON");
  for (const auto& [name, app] : state->apps) {
    check(again->apps.at(name).spec_hash == app.spec_hash, "hash stable across formats");
  }
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

void fuzzReplicatedEvent(std::string_view data) {
  std::uint64_t seq = takeFirstByte(data);
  auto parsed = streams::parseReplicatedEvent(data, "src", seq, std::size_t{64} * 1024);
  if (!parsed) {
    check(!parsed.error().message.empty(), "replicated event rejection message");
    return;
  }
  check(parsed->source == "src", "replicated event source");
  check(parsed->offset == static_cast<std::int64_t>(seq) - 1, "replicated event offset");
  auto again = streams::parseReplicatedEvent(streams::replicatedEventJson(*parsed), "src", seq,
                                             std::size_t{1024} * 1024);
  check(again.has_value(), "replicated event round trip parses");
  check(again->semantics == parsed->semantics && again->name == parsed->name &&
            again->lamport == parsed->lamport && again->timestamp == parsed->timestamp &&
            again->payload == parsed->payload && again->app == parsed->app,
        "replicated event round trip is identical");
}

void fuzzBlobRemote(std::string_view data) {
  unsigned selector = takeFirstByte(data) % 3;
  switch (selector) {
    case 0: {
      auto answer = remote::parseHolderAnswer(data);
      if (!answer) {
        check(answer.error().code() == ErrorCode::kInvalidArgument, "holder answer error code");
        return;
      }
      check(remote::checkNode(answer->node).has_value(), "holder answer node is a token");
      check(remote::isHandle(answer->metadata.handle), "holder answer handle");
      check(answer->metadata.sha256.size() == 64, "holder answer sha256");
      auto again = remote::parseHolderAnswer(remote::encodeHolderAnswer(*answer));
      check(again.has_value(), "holder answer round trip parses");
      // (A fractional `until` may move by a microsecond through its decimal form.)
      const store::BlobMetadata& a = answer->metadata;
      const store::BlobMetadata& b = again->metadata;
      check(again->node == answer->node && a.handle == b.handle && a.sha256 == b.sha256 &&
                a.bytes == b.bytes && a.source == b.source && a.source_app == b.source_app &&
                a.semantics == b.semantics && a.retention.kind == b.retention.kind,
            "holder answer round trip is identical");
      return;
    }
    case 1: {
      auto request = remote::parseChunkRequest(data);
      if (!request) {
        check(request.error().code() == ErrorCode::kInvalidArgument, "chunk request error code");
        return;
      }
      check(request->length > 0 && remote::isHandle(request->handle), "chunk request fields");
      auto again = remote::parseChunkRequest(remote::encodeChunkRequest(*request));
      check(again && again->handle == request->handle && again->offset == request->offset &&
                again->length == request->length,
            "chunk request round trip");
      return;
    }
    default: {
      remote::ChunkRequest asked{.handle = "0123456789abcdef0123456789abcdef"};
      if (data.size() >= 2) {
        asked.offset = static_cast<unsigned char>(data[0]);
        asked.length = static_cast<unsigned char>(data[1]) + 1u;
        data.remove_prefix(2);
      } else {
        asked.length = 1;
      }
      auto chunk = remote::parseChunkReply(data, asked);
      if (chunk) {
        check(!chunk->empty() && chunk->size() <= asked.length, "chunk size within the asked");
        check(chunk->data() >= data.data() &&
                  chunk->data() + chunk->size() == data.data() + data.size(),
              "chunk data is the tail of the answer");
        return;
      }
      const Error& e = chunk.error();
      if (e.code() == ErrorCode::kNotFound || e.code() == ErrorCode::kUnavailable) {
        for (char c : e.message()) check(c >= 0x20 && c < 0x7f, "holder error is printable");
        check(e.message().size() <= remote::kMaxErrorMessageBytes + 16, "holder error bounded");
      } else {
        check(e.code() == ErrorCode::kInvalidArgument, "chunk answer error code");
      }
      return;
    }
  }
}

void fuzzStreamsRequest(std::string_view data) {
  unsigned selector = takeFirstByte(data) % 4;
  auto valid = [](const std::string& text) {
    return !Json::parse(text, nullptr, false).is_discarded();
  };
  switch (selector) {
    case 0: {
      auto r = streams::parsePublishRequest(data);
      if (!r) return checkInvalidArgument(r.error());
      for (const auto& e : r->events) {
        check(!e.semantics.empty() && !e.name.empty(), "publish stream names");
        check(valid(e.payload), "publish payload is JSON");
        streams::Event stored{e.semantics, e.name, "src", 1, 1, 0, e.payload, ""};
        check(valid(streams::eventJson(stored)), "event line is JSON");
      }
      return;
    }
    case 1: {
      auto r = streams::parseQueryRequest(data);
      if (!r) return checkInvalidArgument(r.error());
      check(valid(streams::offsetMapJson(r->upper_bound)), "upper bound is JSON");
      return;
    }
    case 2: {
      auto r = streams::parseSubscribeRequest(data);
      if (!r) return checkInvalidArgument(r.error());
      check(valid(streams::offsetMapJson(r->lower_bound)), "lower bound is JSON");
      return;
    }
    default: {
      auto r = streams::parseLogRequest(data);
      if (!r) return checkInvalidArgument(r.error());
      check(!r->log_name.empty() && streams::isSeverity(r->severity), "log entry fields");
      check(valid(streams::logEntryJson(*r)), "log entry line is JSON");
      return;
    }
  }
}

void fuzzCniResult(std::string_view data) {
  unsigned selector = takeFirstByte(data);
  static constexpr std::string_view kCommands[] = {"ADD", "DEL", "CHECK"};
  cni::PluginOutput output{.exit_code = (selector & 1U) != 0 ? 1 : 0,
                           .out = std::string(data),
                           .err = (selector & 2U) != 0 ? std::string(data) : std::string()};
  auto interpreted = cni::interpretPluginOutput("fuzzed", kCommands[(selector >> 2U) % 3], output);
  if (!interpreted) {
    check(interpreted.error().message().starts_with("CNI plugin \"fuzzed\""), "names the plugin");
  } else if (const std::optional<cni::AddResult>& added = *interpreted; added) {
    const cni::AddResult& result = *added;
    auto again = cni::parseAddResult(cni::dumpJson(result.raw));
    check(again.has_value(), "accepted result re-parses");
    check(again && again->ips.size() == result.ips.size(), "same addresses");
  }
  if (auto list = cni::parseConfList(data, "fuzz")) {
    check(!list->plugins.empty() && cni::isSupportedVersion(list->cni_version), "valid conflist");
    auto request = cni::requestConfig(*list, list->plugins.front(), Json::object(), nullptr);
    check(request.is_object() && !request.contains("capabilities"), "request config");
  }
  (void)cni::parseErrorObject(data);
}

void fuzzBundleArchive(std::string_view data) {
  const bundle::UnpackLimits limits{
      .max_files = 64, .max_total_bytes = 1 << 20, .max_path_length = 256, .max_depth = 8};
  auto summary = bundle::inspectArchive(data, limits);
  if (!summary) {
    check(summary.error().code() == ErrorCode::kInvalidArgument ||
              summary.error().code() == ErrorCode::kResourceExhausted,
          "bundle error code");
    return;
  }
  check(summary->files + summary->directories <= limits.max_files, "bundle file limit");
  check(summary->bytes <= limits.max_total_bytes, "bundle size limit");
  std::set<std::string> seen;
  for (const auto& path : summary->paths) {
    check(!path.empty() && path.front() != '/', "bundle path relative");
    check(path.size() <= limits.max_path_length, "bundle path length");
    auto again = bundle::checkEntryPath(path, limits);
    check(again.has_value() && *again == path, "bundle path normalised");
    check(("/" + path + "/").find("/../") == std::string::npos, "bundle path has no ..");
    check(seen.insert(path).second, "bundle path unique");
  }
}

}  // namespace fleetlet::fuzz

namespace fleetlet::fuzz {

void fuzzEnvelope(std::string_view data) {
  (void)trust::looksLikeEnvelope(data);
  auto env = trust::parseEnvelope(data);
  if (!env) {
    check(env.error().code() == ErrorCode::kInvalidArgument, "envelope error code");
    check(env.error().message().starts_with("envelope: "), "envelope error prefix");
    return;
  }
  check(!env->signatures.empty() && env->signatures.size() <= trust::kMaxSignatures,
        "envelope signature count");
  auto text = trust::serializeEnvelope(*env);
  auto again = trust::parseEnvelope(text);
  check(again.has_value(), "serialized envelope parses");
  check(again->payload_type == env->payload_type && again->payload == env->payload &&
            again->signatures.size() == env->signatures.size(),
        "envelope round-trips");
  for (size_t i = 0; i < env->signatures.size(); ++i) {
    check(again->signatures[i].sig == env->signatures[i].sig &&
              again->signatures[i].keyid == env->signatures[i].keyid,
          "signature round-trips");
  }
  check(!trust::Policy().admit(text, trust::Origin::kCloud).has_value(),
        "no keys: nothing verifies");
}

void fuzzTtrpcFrame(std::string_view data) {
  std::size_t chunk = data.empty() ? 1 : 1 + takeFirstByte(data) % 64;
  // The frames found must not depend on how the bytes were split.
  auto decode = [&](std::size_t step) {
    ttrpc::FrameDecoder decoder;
    std::vector<ttrpc::Frame> frames;
    for (std::size_t i = 0; i < data.size(); i += step) {
      decoder.feed(data.substr(i, step));
      while (auto f = decoder.next()) {
        check(f->payload.size() <= ttrpc::kMaxMessageSize, "payload within the limit");
        check(f->oversized == (f->header.length > ttrpc::kMaxMessageSize), "oversized flag");
        check(f->oversized || f->payload.size() == f->header.length, "payload length");
        frames.push_back(std::move(*f));
      }
      check(decoder.buffered() <= ttrpc::kHeaderSize + ttrpc::kMaxMessageSize + step,
            "bounded buffer");
    }
    return frames;
  };
  auto whole = decode(data.empty() ? 1 : data.size());
  auto split = decode(chunk);
  check(whole.size() == split.size(), "same frame count however split");
  for (std::size_t i = 0; i < whole.size() && i < split.size(); ++i) {
    check(whole[i].header == split[i].header && whole[i].payload == split[i].payload,
          "same frames however split");
    // What the server does next with a request's bytes.
    ttrpc::wire::Request request;
    if (request.ParseFromString(whole[i].payload)) {
      auto again = ttrpc::encodeFrame(whole[i].header.stream_id, ttrpc::MessageType::kRequest,
                                      request.SerializeAsString());
      check(again.has_value() || request.ByteSizeLong() > ttrpc::kMaxMessageSize, "re-encodes");
    }
  }
}

void fuzzWebviewRequest(std::string_view data) {
  unsigned selector = takeFirstByte(data) % 4;
  switch (selector) {
    case 0: {
      auto path = webview::bundlePathOf(data);
      if (!path) return checkInvalidArgument(path.error());
      check(!path->empty() && path->front() != '/', "bundle path relative");
      check(path->find('\0') == std::string::npos, "bundle path has no NUL");
      check(("/" + *path + "/").find("/../") == std::string::npos, "bundle path has no ..");
      auto again = bundle::checkEntryPath(*path, bundle::UnpackLimits{});
      check(again.has_value() && *again == *path, "bundle path normalised");
      return;
    }
    case 1: {
      auto route = webview::serviceRouteOf(data);
      if (!route) return checkInvalidArgument(route.error());
      const std::optional<webview::ServiceRoute>& found = *route;
      if (!found) {
        check(!data.starts_with(webview::kServicePrefix), "a /.ax/ path is a route or refused");
        return;
      }
      const webview::ServiceRoute& r = *found;
      check(webview::isServiceName(r.service), "route names a service");
      check(r.path.starts_with('/'), "route path absolute");
      for (char c : r.path) check(c > ' ' && c <= '~', "route path printable ASCII");
      std::string_view bare = std::string_view(r.path).substr(0, r.path.find('?'));
      check(bare.find('%') == std::string_view::npos, "route path unescaped");
      check(("/" + std::string(bare) + "/").find("/../") == std::string::npos,
            "route path has no ..");
      return;
    }
    case 2: {
      const webview::NavigationRules rules{.app = "cam",
                                           .allowed_origins = {"https://example.com"}};
      if (!webview::navigationAllowed(rules, data)) return;
      auto origin = webview::originOf(data);
      check(data == "about:blank" ||
                (origin && (*origin == "app://cam" || *origin == "https://example.com")),
            "navigation allowed only to the app's origins");
      return;
    }
    default: {
      auto request = webview::parseControlRequest(data);
      if (!request) {
        checkInvalidArgument(request.error());
        check(!webview::controlError(request.error()).empty(), "control error line");
        return;
      }
      check(!request->command.empty(), "control request command");
      return;
    }
  }
}

}  // namespace fleetlet::fuzz
