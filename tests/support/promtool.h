#pragma once
// Reading and linting Prometheus text expositions in tests.
//
// promtoolProblems() lints with `promtool check metrics` from Debian's `prometheus`
// package (hack/install-deps.sh installs it): valid syntax, HELP and TYPE for every family,
// counters ending in _total, units in names. A missing promtool fails the test.

#include <gtest/gtest.h>

#include <cstdlib>
#include <optional>
#include <string>

#include "os/child_process.h"

namespace fleetlet::testing {

// Empty when promtool accepts `exposition`; otherwise what it (or starting it) said.
inline std::string promtoolProblems(const std::string& exposition) {
  auto out = runCommand({.argv = {"promtool", "check", "metrics"},
                         .input = exposition,
                         .timeout = std::chrono::seconds(60)});
  if (!out) {
    return "promtool (Debian package prometheus, hack/install-deps.sh): " + out.error().message();
  }
  if (out->status.success()) return {};
  return out->out + out->err + "(" + out->status.describe() + ")";
}

// The value of the sample `series` (name and labels exactly as exposed, e.g.
// `fleetlet_app_pids{app="camera"}`), if present.
inline std::optional<double> sampleValue(const std::string& exposition, const std::string& series) {
  const std::string text = "\n" + exposition;
  auto at = text.find("\n" + series + " ");
  if (at == std::string::npos) return std::nullopt;
  at += series.size() + 2;
  return std::strtod(text.substr(at, text.find('\n', at) - at).c_str(), nullptr);
}

}  // namespace fleetlet::testing
