#include "cli/app_commands.h"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <cctype>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <iostream>
#include <sstream>

#include "api/json_codec.h"
#include "cli/api_client.h"
#include "cli/command_line.h"

namespace fleetlet::cli {
namespace {

// -o json and -o yaml: the API's document as it came, in either notation.
void printDocument(const Json& j, std::string_view output) {
  if (output == "yaml") {
    fmt::print("{}", yamlish(j, 0));
  } else {
    fmt::print("{}\n", j.dump(2));
  }
}

bool isDocument(std::string_view output) { return output == "json" || output == "yaml"; }

std::string ago(core::Clock::time_point t, core::Clock::time_point now) {
  if (t > now) return fmt::format("{} (in {})", api::formatTime(t), humanAge(t - now));
  return fmt::format("{} ({} ago)", api::formatTime(t), humanAge(now - t));
}

// Plain YAML scalars need no quotes unless they could be read as something else.
bool needsQuotes(const std::string& s) {
  if (s.empty() || s == "true" || s == "false" || s == "null" || s == "yes" || s == "no" ||
      s == "~") {
    return true;
  }
  if (std::isspace(static_cast<unsigned char>(s.front())) != 0 ||
      std::isspace(static_cast<unsigned char>(s.back())) != 0) {
    return true;
  }
  if (std::string_view("-?:,[]{}#&*!|>'\"%@`").find(s.front()) != std::string_view::npos) {
    return true;
  }
  if (s.find(": ") != std::string::npos || s.find(" #") != std::string::npos ||
      s.find('\n') != std::string::npos) {
    return true;
  }
  char* end = nullptr;
  (void)std::strtod(s.c_str(), &end);
  return end == s.c_str() + s.size();  // a number
}

std::string scalar(const Json& v) {
  if (v.is_string()) {
    const auto& s = v.get_ref<const std::string&>();
    return needsQuotes(s) ? v.dump() : s;
  }
  return v.dump();
}

bool isEmptyContainer(const Json& v) { return (v.is_object() || v.is_array()) && v.empty(); }

void renderYaml(const Json& value, int indent, std::string& out) {
  std::string pad(static_cast<size_t>(indent), ' ');
  if (value.is_object()) {
    for (const auto& [key, v] : value.items()) {
      if (v.is_structured() && !v.empty()) {
        out += fmt::format("{}{}:\n", pad, key);
        renderYaml(v, indent + 2, out);
      } else {
        out += fmt::format("{}{}: {}\n", pad, key,
                           isEmptyContainer(v) ? (v.is_object() ? "{}" : "[]") : scalar(v));
      }
    }
  } else if (value.is_array()) {
    for (const auto& v : value) {
      if (v.is_structured() && !v.empty()) {
        std::string inner;
        renderYaml(v, indent + 2, inner);
        // "  key: v" → "- key: v" on the first line of the element.
        inner.replace(static_cast<size_t>(indent), 2, "- ");
        out += inner;
      } else {
        out += fmt::format("{}- {}\n", pad,
                           isEmptyContainer(v) ? (v.is_object() ? "{}" : "[]") : scalar(v));
      }
    }
  } else {
    out += fmt::format("{}{}\n", pad, scalar(value));
  }
}

int runApply(ApiClient& client, const std::string& file) {
  auto text = readInput(file);
  if (!text) return reportFailure(text.error());
  std::string source = file == "-" ? "stdin" : file;
  auto result = client.apply(*text, source);
  if (!result) return reportFailure(result.error());
  fmt::print("applied revision {} ({} app{})\n", result->revision, result->apps,
             result->apps == 1 ? "" : "s");
  return kExitOk;
}

int runGetApps(ApiClient& client, const std::string& output) {
  if (isDocument(output)) {
    auto body = client.getJson("/v1/apps");
    if (!body) return reportFailure(body.error());
    printDocument(*body, output);
    return kExitOk;
  }
  auto apps = client.apps();
  if (!apps) return reportFailure(apps.error());
  fmt::print("{}", formatAppsTable(*apps, core::Clock::now(), output == "wide"));
  return kExitOk;
}

// -o wide shows what text shows: a description holds every field already.
int runDescribe(ApiClient& client, const std::string& name, const std::string& output) {
  if (isDocument(output)) {
    auto body = client.getJson("/v1/apps/" + escapePathSegment(name));
    if (!body) return reportFailure(body.error());
    printDocument(*body, output);
    return kExitOk;
  }
  auto detail = client.describe(name);
  if (!detail) return reportFailure(detail.error());
  fmt::print("{}", formatDescribe(*detail, core::Clock::now()));
  return kExitOk;
}

int runRestart(ApiClient& client, const std::string& name) {
  if (auto st = client.restart(name); !st) return reportFailure(st.error());
  fmt::print("restarted {}\n", name);
  return kExitOk;
}

int runScreenshot(ApiClient& client, const std::string& name, const std::string& out) {
  auto png = client.screenshot(name);
  if (!png) return reportFailure(png.error());
  std::ofstream file(out, std::ios::binary | std::ios::trunc);
  file.write(png->data(), static_cast<std::streamsize>(png->size()));
  file.close();
  if (!file) return reportFailure(Error(ErrorCode::kInternal, fmt::format("write {}", out)));
  fmt::print("{} ({} bytes)\n", out, png->size());
  return kExitOk;
}

int runShow(ApiClient& client, const std::string& name) {
  if (auto st = client.show(name); !st) return reportFailure(st.error());
  fmt::print("showing {}\n", name);
  return kExitOk;
}

int runStatus(ApiClient& client, const std::string& output) {
  if (isDocument(output)) {
    auto body = client.getJson("/v1/status");
    if (!body) return reportFailure(body.error());
    printDocument(*body, output);
    return kExitOk;
  }
  auto status = client.status();
  if (!status) return reportFailure(status.error());
  fmt::print("{}", formatNodeStatus(*status));
  return kExitOk;
}

int runEvents(ApiClient& client, int64_t after, bool follow) {
  auto st = client.events(after, follow, [](const core::NodeEvent& e) {
    fmt::print("{}\n", formatEvent(e));
    (void)std::fflush(stdout);
    return true;
  });
  if (!st) return reportFailure(st.error());
  return kExitOk;
}

int runLogs(ApiClient& client, const std::string& name, int64_t tail, bool follow,
            const ApiClient::Range& range) {
  std::optional<size_t> count;
  if (tail >= 0) count = static_cast<size_t>(tail);
  auto print = [](const logs::LogEntry& line) {
    fmt::print("{}\n", line.text);
    (void)std::fflush(stdout);
    return true;
  };
  auto st = name.empty() ? client.nodeLogs(count, range, print)
                         : client.logs(name, count, follow, print, range);
  if (!st) return reportFailure(st.error());
  return kExitOk;
}

}  // namespace

std::string humanAge(core::Clock::duration d) {
  auto s = std::chrono::duration_cast<std::chrono::seconds>(d).count();
  if (s < 0) s = 0;
  if (s < 60) return fmt::format("{}s", s);
  if (s < 3600) return fmt::format("{}m", s / 60);
  if (s < 86400) return fmt::format("{}h", s / 3600);
  return fmt::format("{}d", s / 86400);
}

std::string formatAppsTable(const std::vector<core::AppStatus>& apps, core::Clock::time_point now,
                            bool wide) {
  std::vector<std::vector<std::string>> rows{
      {"NAME", "RUNTIME", "STATE", "RESTARTS", "IMAGE", "AGE"}};
  if (wide) rows.front().insert(rows.front().end(), {"PID", "CONTAINER", "MESSAGE"});
  auto orDash = [](const std::string& s) { return s.empty() ? std::string("-") : s; };
  for (const auto& a : apps) {
    rows.push_back({a.name, a.system ? orDash(a.runtime) + " (system)" : orDash(a.runtime),
                    a.healthy ? a.state : a.state + " (unhealthy)", std::to_string(a.restarts),
                    orDash(a.image), a.started_at ? humanAge(now - *a.started_at) : "-"});
    if (wide) {
      rows.back().insert(rows.back().end(), {a.pid != 0 ? std::to_string(a.pid) : "-",
                                             orDash(a.container_id), orDash(a.message)});
    }
  }
  std::vector<size_t> widths(rows.front().size(), 0);
  for (const auto& r : rows) {
    for (size_t i = 0; i < r.size(); ++i) widths[i] = std::max(widths[i], r[i].size());
  }
  std::string out;
  for (const auto& r : rows) {
    std::string line;
    for (size_t i = 0; i < r.size(); ++i) {
      // Every column but the last is padded; two spaces between columns.
      line += i + 1 == r.size() ? r[i] : fmt::format("{:<{}}  ", r[i], widths[i]);
    }
    out += line + "\n";
  }
  return out;
}

std::string formatDescribe(const core::AppDetail& detail, core::Clock::time_point now) {
  const auto& s = detail.status;
  std::string out;
  auto field = [&out](std::string_view label, const std::string& value) {
    out += fmt::format("{:<15}{}\n", fmt::format("{}:", label), value);
  };
  field("Name", s.name);
  field("Runtime", s.runtime.empty() ? "-" : s.runtime);
  if (s.system) field("System", "yes");
  if (!s.image.empty()) field("Image", s.image);
  if (s.runtime == "native" && detail.spec.is_object()) {
    // The level the shim enforces: the manifest's, else the default (docs/runtimes.md).
    std::string level = "sandboxed";
    if (auto sb = detail.spec.find("sandbox"); sb != detail.spec.end() && sb->is_object()) {
      level = sb->value("level", level);
    }
    if (auto exec = detail.spec.find("exec"); exec != detail.spec.end() && exec->is_object()) {
      field("Exec", exec->value("path", std::string("-")));
    }
    field("Sandbox", level);
  }
  field("State", s.state);
  field("Healthy", s.healthy ? "yes" : "no");
  field("Restarts", std::to_string(s.restarts));
  if (s.started_at) field("Started", ago(*s.started_at, now));
  if (s.pid != 0) field("PID", std::to_string(s.pid));
  if (!s.container_id.empty()) field("Container", s.container_id);
  if (!s.spec_hash.empty()) field("Spec hash", s.spec_hash);
  if (s.last_exit_code || s.last_exit_at) {
    std::string text = s.last_exit_code ? fmt::format("code {}", *s.last_exit_code) : "unknown";
    if (s.last_exit_at) text += " at " + ago(*s.last_exit_at, now);
    field("Last exit", text);
  }
  if (s.backoff_until) field("Backoff until", ago(*s.backoff_until, now));
  if (!s.message.empty()) field("Message", s.message);
  if (const auto& n = detail.network) {
    field("Network",
          n->addresses.empty() ? "no address" : fmt::format("{}", fmt::join(n->addresses, ", ")));
    field("Namespace", n->netns);
    auto traffic = [](const core::AppNetworkStatus::Counter& c) {
      return fmt::format("{} packets, {} bytes", c.packets, c.bytes);
    };
    field("Sent", traffic(n->egress));
    field("Received", traffic(n->ingress));
    field("Refused", traffic(n->dropped));
  }
  if (const Json& screen = detail.screen; screen.is_object()) {
    out += "Screen:\n";
    auto line = [&out](std::string_view label, const std::string& value) {
      out += fmt::format("  {:<13}{}\n", fmt::format("{}:", label), value);
    };
    auto text = [&screen](const char* key) {
      auto it = screen.find(key);
      return it != screen.end() && it->is_string() ? it->get<std::string>() : std::string("-");
    };
    line("Shown", screen.value("shown", false) ? "yes" : "no");
    line("URL", text("url"));
    line("Load state", text("loadState"));
    auto beat = screen.find("heartbeatAgeMs");
    line("Heartbeat", beat != screen.end() && beat->is_number()
                          ? fmt::format("{} ms ago", beat->get<int64_t>())
                          : std::string("none yet"));
    auto memory = screen.find("memoryMiB");
    std::string mem = memory != screen.end() && memory->is_number()
                          ? fmt::format("{:.1f} MiB", memory->get<double>())
                          : std::string("-");
    if (screen.value("memoryLimitMiB", 0) > 0) {
      mem += fmt::format(" (limit {} MiB)", screen.value("memoryLimitMiB", 0));
    }
    line("Memory", mem);
    line("Failures", std::to_string(screen.value("failures", 0)));
    if (auto last = screen.find("lastFailure"); last != screen.end() && last->is_object()) {
      line("Last failure", fmt::format("{}: {} ({:.0f}s ago)", last->value("state", ""),
                                       last->value("reason", ""), last->value("secondsAgo", 0.0)));
    }
  }
  if (detail.spec.is_object() && !detail.spec.empty()) {
    out += "Spec:\n";
    out += yamlish(detail.spec, 2);
  }
  out += "Events:\n";
  if (detail.recent_events.empty()) out += "  none\n";
  for (const auto& e : detail.recent_events) {
    out += fmt::format("  {:<8} {:<11} {}\n", humanAge(now - e.time), e.kind, e.message);
  }
  return out;
}

std::string formatNodeStatus(const core::NodeStatus& status) {
  std::string out;
  out += fmt::format("{:<20}{}\n", "Desired revision:", status.desired_revision);
  out += fmt::format("{:<20}{}\n", "Applied revision:", status.applied_revision);
  out += fmt::format("{:<20}{}\n", "Last good revision:", status.last_good_revision);
  out += fmt::format("{:<20}{}\n", "Converged:", status.converged ? "yes" : "no");
  if (status.errors.empty()) {
    out += fmt::format("{:<20}{}\n", "Errors:", "none");
  } else {
    out += "Errors:\n";
    for (const auto& e : status.errors) out += fmt::format("  {}\n", e);
  }
  if (status.rollback_window) {
    out += fmt::format("{:<20}revision {} until {} (a failure rolls back to {})\n",
                       "Rollback window:", status.rollback_window->revision,
                       api::formatTime(status.rollback_window->until),
                       status.rollback_window->back_to);
  }
  if (!status.failed.empty()) {
    out += "Failed revisions:\n";
    for (const auto& f : status.failed) out += fmt::format("  {}: {}\n", f.revision, f.reason);
  }
  return out;
}

std::string formatEvent(const core::NodeEvent& event) {
  return fmt::format("{}  #{:<5} {:<16} {:<11} {}", api::formatTime(event.time), event.seq,
                     event.app.empty() ? "-" : event.app, event.kind, event.message);
}

std::string yamlish(const Json& value, int indent) {
  std::string out;
  renderYaml(value, indent, out);
  return out;
}

void addAppCommands(CLI::App& app, const std::shared_ptr<ApiFlags>& flags, Action& action) {
  const std::string group = "Node (through fleetletd)";
  auto output_option = [](CLI::App* cmd, const std::shared_ptr<std::string>& output) {
    cmd->add_option("-o,--output", *output,
                    "text, wide (text with more columns), json or yaml (the API's document)")
        ->default_val("text")
        ->check(CLI::IsMember({"text", "wide", "json", "yaml"}));
  };

  auto file = std::make_shared<std::string>();
  auto* apply = app.add_subcommand("apply", "Apply a desired-state manifest (YAML or JSON)");
  apply->group(group);
  apply->add_option("-f,--filename", *file, "The manifest file, - for stdin")
      ->required()
      ->check(manifestFile());
  apply->callback([flags, file, &action] {
    action = [=] {
      ApiClient client(flags->socket);
      return runApply(client, *file);
    };
  });

  auto get_output = std::make_shared<std::string>("text");
  auto* get = app.add_subcommand("get", "List resources");
  get->group(group);
  get->require_subcommand(1);
  auto* get_apps = get->add_subcommand("apps", "List the apps and their state");
  get_apps->alias("app");
  get_apps->group("Resources");  // parseCommandLine() then calls unknown ones resources
  output_option(get_apps, get_output);
  get_apps->callback([flags, get_output, &action] {
    action = [=] {
      ApiClient client(flags->socket);
      return runGetApps(client, *get_output);
    };
  });

  auto describe_name = std::make_shared<std::string>();
  auto describe_output = std::make_shared<std::string>("text");
  auto* describe = app.add_subcommand("describe", "Show one resource in detail");
  describe->group(group);
  describe->require_subcommand(1);
  auto* describe_app =
      describe->add_subcommand("app", "An app's spec, state, last exit and recent events");
  describe_app->group("Resources");
  describe_app->add_option("name", *describe_name, "The app")->required()->check(appName());
  output_option(describe_app, describe_output);
  describe_app->callback([flags, describe_name, describe_output, &action] {
    action = [=] {
      ApiClient client(flags->socket);
      return runDescribe(client, *describe_name, *describe_output);
    };
  });

  struct LogsFlags {
    std::string name;
    bool node = false;
    bool follow = false;
    int64_t tail = -1;  // all
    std::string since, until;
  };
  auto lf = std::make_shared<LogsFlags>();
  auto* logs = app.add_subcommand(
      "logs",
      "Print an app's stdout and stderr (or, with --node, fleetletd's own log). A webview\n"
      "app's are the kiosk's lines about it: its console, loads, reloads and refusals.\n\n"
      "Examples:\n"
      "  fleetletctl logs web --since 10m\n"
      "  fleetletctl logs web --since 2026-12-07T06:00:00Z --until 2026-12-07T06:10:00Z\n"
      "  fleetletctl logs --node --since 1h --until 30m");
  logs->group(group);
  logs->add_option("name", lf->name, "The app")->check(appName());
  logs->add_flag("--node", lf->node, "fleetletd's own log instead of an app's");
  logs->add_flag("-f,--follow", lf->follow, "Keep printing new lines until interrupted");
  logs->add_option("--tail", lf->tail, "Only the last N lines (default: all)")
      ->type_name("N")
      ->check(nonNegativeInteger());
  logs->add_option("--since", lf->since,
                   "Only lines from this time on: RFC 3339, or a duration before now (10m, 2h)")
      ->type_name("TIME")
      ->check(timeBound());
  logs->add_option("--until", lf->until, "Only lines before this time (as --since)")
      ->type_name("TIME")
      ->check(timeBound());
  logs->callback([flags, lf, &action] {
    if (lf->node == !lf->name.empty()) {
      throw CLI::ValidationError(lf->node ? "logs: give an app or --node, not both"
                                          : "logs: give an app, or --node for fleetletd's log");
    }
    if (lf->follow && (lf->node || !lf->since.empty() || !lf->until.empty())) {
      throw CLI::ValidationError(
          "logs: --follow cannot be combined with --node, --since or --until");
    }
    // Relative times are taken against this machine's clock, now.
    auto range = resolveTimeRange(lf->since, lf->until);
    if (!range) throw CLI::ValidationError("logs: " + range.error().message());
    action = [=, range = *range] {
      ApiClient client(flags->socket);
      return runLogs(client, lf->name, lf->tail, lf->follow, range);
    };
  });

  auto restart_name = std::make_shared<std::string>();
  auto* restart = app.add_subcommand("restart", "Restart an app's task now");
  restart->group(group);
  restart->add_option("name", *restart_name, "The app")->required()->check(appName());
  restart->callback([flags, restart_name, &action] {
    action = [=] {
      ApiClient client(flags->socket);
      return runRestart(client, *restart_name);
    };
  });

  struct ScreenshotFlags {
    std::string name;
    std::string out = "screenshot.png";
  };
  auto sf = std::make_shared<ScreenshotFlags>();
  auto* screenshot = app.add_subcommand(
      "screenshot",
      "Save what the kiosk shows (runtime: webview) as a PNG: APP, or the app on screen");
  screenshot->group(group);
  screenshot->add_option("name", sf->name, "The app (default: the one on screen)")
      ->check(appName());
  screenshot->add_option("-o,--output", sf->out, "PNG file to write")->capture_default_str();
  screenshot->callback([flags, sf, &action] {
    action = [=] {
      ApiClient client(flags->socket);
      return runScreenshot(client, sf->name, sf->out);
    };
  });

  auto show_name = std::make_shared<std::string>();
  auto* show = app.add_subcommand("show", "Put a webview app on the kiosk's screen");
  show->group(group);
  show->add_option("name", *show_name, "The app")->required()->check(appName());
  show->callback([flags, show_name, &action] {
    action = [=] {
      ApiClient client(flags->socket);
      return runShow(client, *show_name);
    };
  });

  auto status_output = std::make_shared<std::string>("text");
  auto* status = app.add_subcommand(
      "status", "Desired, applied and last good revision; whether the node converged");
  status->group(group);
  output_option(status, status_output);
  status->callback([flags, status_output, &action] {
    action = [=] {
      ApiClient client(flags->socket);
      return runStatus(client, *status_output);
    };
  });

  struct EventsFlags {
    bool follow = false;
    int64_t after = 0;
  };
  auto ef = std::make_shared<EventsFlags>();
  auto* events = app.add_subcommand("events", "Print node events (apply, pull, start, exit...)");
  events->group(group);
  events->add_flag("-f,--follow", ef->follow, "Keep printing new events until interrupted");
  events->add_option("--after", ef->after, "Only events with a sequence number above SEQ")
      ->type_name("SEQ")
      ->check(nonNegativeInteger());
  events->callback([flags, ef, &action] {
    action = [=] {
      ApiClient client(flags->socket);
      return runEvents(client, ef->after, ef->follow);
    };
  });
}

}  // namespace fleetlet::cli
