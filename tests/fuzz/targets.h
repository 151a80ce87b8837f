#pragma once
// Fuzz target bodies, shared by the libFuzzer binaries (FLEETLET_FUZZ=ON, clang) and by the
// corpus replay unit test of the normal build. Each feeds untrusted bytes to one parser and
// checks the invariants its contract promises; a broken invariant aborts.

#include <cstddef>
#include <cstdint>
#include <string_view>

namespace fleetlet::fuzz {

// Reference::parse; a parsed reference's toString() parses back to the same reference.
void fuzzReference(std::string_view data);
// detectManifestType, parseManifest, parseIndex (+ selectManifest), parseImageConfig
// (+ chainIds); the first byte chooses the media type hint.
void fuzzManifest(std::string_view data);
// parseChallenges on a WWW-Authenticate value.
void fuzzAuthChallenge(std::string_view data);
// decodeRegistryError; the first two bytes choose the HTTP status.
void fuzzRegistryError(std::string_view data);
// fleetlet-streams request bodies; the first byte chooses publish, query, subscribe or a log
// entry. Accepted bodies serialize back to valid JSON.
void fuzzStreamsRequest(std::string_view data);
// parseReplicatedEvent (a message from the site hub); the first byte is the stream sequence.
// An accepted event is of the stream's source at offset sequence - 1 and round-trips through
// replicatedEventJson.
void fuzzReplicatedEvent(std::string_view data);
// The blob service's messages between nodes (remote/protocol.h, from the site hub): the first
// byte chooses a holder's answer to a find, a chunk request, or a chunk answer (then the next
// two bytes are the offset and length asked). Accepted messages re-encode to the same
// message; accepted chunk data lies within what was asked; a holder's error message reaches
// us printable only.
void fuzzBlobRemote(std::string_view data);
// handoff::decodeMessage; the first byte is the number of fds that came with the body (0-3).
void fuzzHandoffMessage(std::string_view data);
// parseNodeState on a YAML or JSON manifest; an accepted one has a valid start order and the
// same spec hashes when re-read as JSON, and every container app gets a spec.
void fuzzNodeState(std::string_view data);
// MultipartParser (blob uploads); the first byte chooses a chunk size, and the parts found
// must not depend on how the body was chunked.
void fuzzMultipart(std::string_view data);

// CNI plugin output as the executor reads it: the first byte chooses the exit status and
// command; the rest is stdout (parsed as a result or an error object), and parseConfList and
// parseAddResult read it directly. Errors name the plugin; accepted results re-parse.
void fuzzCniResult(std::string_view data);

// bundle::inspectArchive on a .tar(.gz) SPA bundle, with small limits: an accepted archive's
// paths are all relative, free of "." and ".." components, unique and within the limits; a
// refused one says kInvalidArgument or kResourceExhausted.
void fuzzBundleArchive(std::string_view data);
// trust::parseEnvelope on a DSSE envelope (a cloud's answer); an accepted envelope serializes
// and parses back to the same envelope, and admitting it with no pinned keys is refused.
void fuzzEnvelope(std::string_view data);
// ttrpc::FrameDecoder on a byte stream from a shim's socket; the first byte chooses a chunk
// size, and the frames found must not depend on how the stream was chunked.
void fuzzTtrpcFrame(std::string_view data);
// What a page in the kiosk (web content: untrusted) hands the kiosk's rules, and the kiosk's
// control requests; the first byte chooses: an app:// request path (bundlePathOf: an accepted
// path stays inside the bundle), a /.ax/ service route (serviceRouteOf: an accepted one names
// a service and a plain path of printable ASCII), a navigation (navigationAllowed: only the
// app's own origin, its allowed ones or about:blank), or a control request line.
void fuzzWebviewRequest(std::string_view data);

struct Target {
  std::string_view name;  // also the corpus folder: tests/fuzz/corpus/<name>/
  void (*run)(std::string_view);
};

inline constexpr Target kTargets[] = {
    {"reference", &fuzzReference},
    {"manifest", &fuzzManifest},
    {"auth_challenge", &fuzzAuthChallenge},
    {"registry_error", &fuzzRegistryError},
    {"streams_request", &fuzzStreamsRequest},
    {"replicated_event", &fuzzReplicatedEvent},
    {"blob_remote", &fuzzBlobRemote},
    {"handoff_message", &fuzzHandoffMessage},
    {"nodestate", &fuzzNodeState},
    {"multipart", &fuzzMultipart},
    {"cni_result", &fuzzCniResult},
    {"bundle_archive", &fuzzBundleArchive},
    {"envelope", &fuzzEnvelope},
    {"ttrpc_frame", &fuzzTtrpcFrame},
    {"webview_request", &fuzzWebviewRequest},
};

}  // namespace fleetlet::fuzz
