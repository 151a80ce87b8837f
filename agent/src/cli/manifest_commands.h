#pragma once
// `fleetletctl manifest keygen|keyid|sign|verify`: signed desired state without fleetletd
// (docs/cloud.md). Keys are Ed25519 PEM files, as `openssl genpkey -algorithm ed25519` writes.
//
//   keygen --out fleet.key            writes fleet.key (0600) and fleet.key.pub, prints the id
//   keyid KEY...                      prints "<id>  <file>" per key (public or private)
//   sign -f node.yaml --key fleet.key [--key k2] [-o node.dsse.json]
//                                     validates the manifest, prints/writes the envelope
//   verify -f node.dsse.json --key fleet.key.pub [--threshold N] [--node ID]
//                                     prints "verified: revision N for node X, signed by …"

#include <CLI/CLI.hpp>

#include "cli/image_commands.h"

namespace fleetlet::cli {

void addManifestCommands(CLI::App& app, Action& action);

}  // namespace fleetlet::cli
