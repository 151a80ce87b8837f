#pragma once
// Parsing and validation of manifest v1 (apiVersion fleetlet.io/v1, kind NodeState) from YAML
// or JSON. Pure; thread-safe.

#include <string>
#include <string_view>

#include "error/error.h"
#include "json/json.h"
#include "manifest/types.h"

namespace fleetlet::manifest {

// Parses and validates a whole manifest. On failure: kInvalidArgument whose message names the
// field path and the problem, e.g. `apps.camera.resources.memory: "64Q" is not a quantity`,
// `apps.ui.dependsOn: cycle ui -> camera -> ui`, `apps.camera.network.expose[0].hostPort: 18080
// is already used by apps.cam2`, `apps.camera.colour: unknown field`. `source` names the input
// in messages when it is not empty ("demo.yaml: ...").
Result<NodeState> parseNodeState(std::string_view text, std::string_view source = {});

// Whether `name` may name an app: a DNS label (lower-case letters, digits and '-', starting
// and ending with a letter or digit, 1..63 characters). Every place that takes an app name from
// outside (manifests, the local API, fleetletctl) checks it with this one rule, so a name can
// safely become a path component (logs/<app>/, volumes/<app>/). kInvalidArgument
// `invalid app name "../x" (...)` otherwise.
Status checkAppName(std::string_view name);

// The canonical JSON of one app (sorted keys, defaults filled in); what spec_hash hashes.
Json canonicalJson(const App& app);

// Quantities and durations as the manifest writes them.
Result<int64_t> parseQuantity(std::string_view text);  // "64Mi", "1G", "512" -> bytes
Result<double> parseCpu(std::string_view text);        // "0.5", "500m" -> cores
Result<std::chrono::milliseconds> parseDuration(std::string_view text);  // "10s", "1m30s", "250ms"

}  // namespace fleetlet::manifest
