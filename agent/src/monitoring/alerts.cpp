#include "monitoring/alerts.h"

#include <fmt/format.h>

#include <algorithm>
#include <charconv>
#include <cmath>

#include "manifest/parse.h"
#include "monitoring/node_stats.h"

namespace fleetlet::monitoring {
namespace {

std::optional<double> number(std::string_view text) {
  double value = 0;
  auto [ptr, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (ec != std::errc() || ptr != text.data() + text.size() || !std::isfinite(value)) {
    return std::nullopt;
  }
  return value;
}

std::string humanBytes(double bytes) {
  if (bytes < 1024) return fmt::format("{:.0f}B", bytes);
  const char* units[] = {"KiB", "MiB", "GiB", "TiB"};
  size_t unit = 0;
  bytes /= 1024;
  while (bytes >= 1024 && unit + 1 < std::size(units)) {
    bytes /= 1024;
    ++unit;
  }
  return fmt::format("{:.1f}{}", bytes, units[unit]);
}

}  // namespace

bool AlertRule::perApp() const {
  return metric == AlertMetric::kAppCpu || metric == AlertMetric::kAppMemoryBytes ||
         metric == AlertMetric::kAppMemoryOfLimit || metric == AlertMetric::kAppRestarts;
}

std::string_view toString(AlertPhase phase) {
  switch (phase) {
    case AlertPhase::kRaise:
      return "raise";
    case AlertPhase::kContinue:
      return "continue";
    case AlertPhase::kFall:
      break;
  }
  return "fall";
}

Result<AlertRule> parseAlertRule(std::string_view text) {
  std::vector<std::string> w;
  for (auto word : splitWords(text)) w.emplace_back(word);
  std::string normal;
  for (const auto& x : w) normal += (normal.empty() ? "" : " ") + x;
  auto bad = [&normal](std::string_view why) {
    return fail(ErrorCode::kInvalidArgument, "alert rule \"{}\": {}", normal, why);
  };
  AlertRule rule{.text = normal};
  // <scope> <metric words> <op> <threshold> [of limit] [for D] [in D]
  auto op = std::find_if(w.begin(), w.end(), [](const auto& x) { return x == ">" || x == "<"; });
  if (w.empty() || op == w.end()) return bad("expected \"<node|app> <metric> > or < <value>\"");
  if (op + 1 == w.end()) return bad("a threshold must follow the comparison");
  std::string subject;
  for (auto it = w.begin(); it != op; ++it) subject += (subject.empty() ? "" : " ") + *it;
  rule.above = *op == ">";
  const std::string& threshold = *(op + 1);
  bool of_limit = false;
  for (auto it = op + 2; it != w.end(); ++it) {
    if (*it == "of" && it + 1 != w.end() && *(it + 1) == "limit") {
      of_limit = true;
      ++it;
    } else if ((*it == "for" || *it == "in") && it + 1 != w.end()) {
      auto d = manifest::parseDuration(*(it + 1));
      if (!d) return bad(fmt::format("\"{}\" is not a duration (10s, 5m, 1h)", *(it + 1)));
      auto secs = std::chrono::duration_cast<std::chrono::seconds>(*d);
      (*it == "for" ? rule.hold : rule.window) = secs;
      ++it;
    } else {
      return bad(
          fmt::format("unexpected \"{}\" (expected \"of limit\", \"for D\" or \"in D\")", *it));
    }
  }
  auto percent = [&]() -> Result<double> {
    if (!threshold.ends_with('%'))
      return bad(fmt::format("\"{}\" must be a percentage", threshold));
    auto v = number(std::string_view(threshold).substr(0, threshold.size() - 1));
    if (!v || *v < 0) return bad(fmt::format("\"{}\" is not a percentage", threshold));
    rule.percent = true;
    return *v / 100;
  };
  auto bytes = [&]() -> Result<double> {
    auto v = manifest::parseQuantity(threshold);
    if (!v) return bad(fmt::format("\"{}\" is not a quantity (500Mi, 2G)", threshold));
    return static_cast<double>(*v);
  };
  Result<double> value = 0.0;
  if (subject == "node cpu") {
    rule.metric = AlertMetric::kNodeCpu;
    value = percent();
  } else if (subject == "node memory") {
    rule.metric = AlertMetric::kNodeMemory;
    value = percent();
  } else if (subject == "node disk free") {
    rule.metric = AlertMetric::kNodeDiskFree;
    value = bytes();
  } else if (subject == "app cpu") {
    rule.metric = AlertMetric::kAppCpu;
    value = percent();
  } else if (subject == "app memory") {
    rule.metric = of_limit ? AlertMetric::kAppMemoryOfLimit : AlertMetric::kAppMemoryBytes;
    value = of_limit ? percent() : bytes();
  } else if (subject == "app restarts") {
    rule.metric = AlertMetric::kAppRestarts;
    auto v = number(threshold);
    if (!v || *v < 0) return bad(fmt::format("\"{}\" is not a count", threshold));
    value = *v;
    if (rule.window.count() <= 0) return bad("restarts need a window (\"in 10m\")");
  } else {
    return bad(
        fmt::format("unknown metric \"{}\" (node cpu, node memory, node disk free, app "
                    "cpu, app memory, app restarts)",
                    subject));
  }
  if (!value) return std::unexpected(value.error());
  if (of_limit && rule.metric != AlertMetric::kAppMemoryOfLimit) {
    return bad("\"of limit\" applies to app memory only");
  }
  if (rule.window.count() > 0 && rule.metric != AlertMetric::kAppRestarts) {
    return bad("\"in D\" applies to app restarts only");
  }
  rule.threshold = *value;
  return rule;
}

std::string alertPublishBody(const AlertEvent& event, const std::string& node_id) {
  const auto ms =
      std::chrono::duration_cast<std::chrono::milliseconds>(event.time.time_since_epoch()).count();
  Json payload{{"phase", toString(event.phase)}, {"rule", event.rule},
               {"app", event.subject},           {"node", node_id},
               {"value", event.value},           {"timeMs", ms},
               {"message", event.message}};
  Json e{{"semantics", "fleetlet.alert"},
         {"name", event.subject.empty() ? node_id : event.subject},
         {"payload", std::move(payload)}};
  return Json{{"data", Json::array({std::move(e)})}}.dump();
}

std::string describeValue(const AlertRule& rule, const std::string& subject, double value) {
  const std::string who = subject.empty() ? "node" : subject;
  switch (rule.metric) {
    case AlertMetric::kNodeDiskFree:
    case AlertMetric::kAppMemoryBytes:
      return fmt::format("{} at {}", who, humanBytes(value));
    case AlertMetric::kAppRestarts:
      return fmt::format("{} at {:.0f}", who, value);
    default:
      return fmt::format("{} at {:.1f}%", who, value * 100);
  }
}

void AlertReadings::observe(const Sample& sample, AlertClock::time_point now) {
  previous_ = std::move(current_);
  previous_at_ = current_at_;
  current_ = sample;
  current_at_ = now;
  for (const auto& a : sample.apps) {
    auto& h = restarts_[a.status.name];
    h.emplace_back(now, a.status.restarts);
    while (!h.empty() && h.front().first < now - std::chrono::hours(24)) h.pop_front();
  }
}

std::map<std::string, double> AlertReadings::values(const AlertRule& rule) const {
  std::map<std::string, double> out;
  if (!current_) return out;
  const Sample& s = *current_;
  switch (rule.metric) {
    case AlertMetric::kNodeCpu: {
      if (!previous_ || !s.cpu || !previous_->cpu) break;
      const double total = s.cpu->total() - previous_->cpu->total();
      auto idle = [](const CpuTimes& c) {
        double sum = 0;
        for (const char* mode : {"idle", "iowait"}) {
          if (auto it = c.seconds.find(mode); it != c.seconds.end()) sum += it->second;
        }
        return sum;
      };
      if (total > 0) out[""] = (total - (idle(*s.cpu) - idle(*previous_->cpu))) / total;
      break;
    }
    case AlertMetric::kNodeMemory:
      if (s.memory && s.memory->total_bytes > 0) {
        out[""] = static_cast<double>(s.memory->total_bytes - s.memory->available_bytes) /
                  static_cast<double>(s.memory->total_bytes);
      }
      break;
    case AlertMetric::kNodeDiskFree:
      if (s.disk) out[""] = static_cast<double>(s.disk->free_bytes);
      break;
    case AlertMetric::kAppCpu: {
      if (!previous_) break;
      const double seconds = std::chrono::duration<double>(current_at_ - previous_at_).count();
      if (seconds <= 0) break;
      for (const auto& a : s.apps) {
        if (!a.resources) continue;
        for (const auto& p : previous_->apps) {
          // The same task only: a replaced one starts its CPU time at 0 again.
          if (p.status.name != a.status.name || !p.resources ||
              p.status.container_id != a.status.container_id ||
              p.resources->cpu_ns > a.resources->cpu_ns) {
            continue;
          }
          out[a.status.name] =
              static_cast<double>(a.resources->cpu_ns - p.resources->cpu_ns) / 1e9 / seconds;
        }
      }
      break;
    }
    case AlertMetric::kAppMemoryBytes:
      for (const auto& a : s.apps) {
        if (a.resources) out[a.status.name] = static_cast<double>(a.resources->memory_bytes);
      }
      break;
    case AlertMetric::kAppMemoryOfLimit:
      for (const auto& a : s.apps) {
        if (a.resources && a.resources->memory_limit_bytes &&
            *a.resources->memory_limit_bytes > 0) {
          out[a.status.name] = static_cast<double>(a.resources->memory_bytes) /
                               static_cast<double>(*a.resources->memory_limit_bytes);
        }
      }
      break;
    case AlertMetric::kAppRestarts:
      for (const auto& a : s.apps) {
        auto it = restarts_.find(a.status.name);
        if (it == restarts_.end() || it->second.empty()) continue;
        // The count at the start of the window (or the oldest one known).
        int64_t base = it->second.front().second;
        for (const auto& [t, n] : it->second) {
          if (t >= current_at_ - rule.window) {
            break;
          }
          base = n;
        }
        out[a.status.name] = static_cast<double>(std::max<int64_t>(0, a.status.restarts - base));
      }
      break;
  }
  return out;
}

AlertEvaluator::AlertEvaluator(std::vector<AlertRule> rules, std::chrono::seconds continue_every)
    : rules_(std::move(rules)), continue_every_(continue_every) {}

void AlertEvaluator::step(size_t rule_index, const std::map<std::string, double>& values,
                          AlertClock::time_point now, std::vector<AlertEvent>& out) {
  const AlertRule& rule = rules_[rule_index];
  auto emit = [&](AlertPhase phase, const std::string& subject, double value) {
    out.push_back(
        {.phase = phase,
         .rule = rule.text,
         .subject = subject,
         .value = value,
         .time = now,
         .message = fmt::format("{}: {}", rule.text, describeValue(rule, subject, value))});
  };
  for (const auto& [subject, value] : values) {
    auto& st = states_[{rule_index, subject}];
    const bool holds = rule.above ? value > rule.threshold : value < rule.threshold;
    st.last_value = value;
    if (!holds) {
      if (st.raised) emit(AlertPhase::kFall, subject, value);
      states_.erase({rule_index, subject});
      continue;
    }
    if (!st.since) st.since = now;
    if (!st.raised) {
      if (now - *st.since >= rule.hold) {
        st.raised = true;
        st.last_emitted = now;
        st.raised_at = now;
        st.emitted_value = value;
        emit(AlertPhase::kRaise, subject, value);
      }
    } else if (now - st.last_emitted >= continue_every_) {
      st.last_emitted = now;
      st.emitted_value = value;
      emit(AlertPhase::kContinue, subject, value);
    }
  }
  // Subjects with no value now (an app removed, a reading lost): their alerts fall.
  for (auto it = states_.begin(); it != states_.end();) {
    if (it->first.first != rule_index || values.contains(it->first.second)) {
      ++it;
      continue;
    }
    if (it->second.raised) emit(AlertPhase::kFall, it->first.second, it->second.last_value);
    it = states_.erase(it);
  }
}

std::vector<std::pair<std::string, std::string>> AlertEvaluator::active() const {
  std::vector<std::pair<std::string, std::string>> out;
  for (const auto& [key, st] : states_) {
    if (st.raised) out.emplace_back(rules_[key.first].text, key.second);
  }
  return out;
}

std::vector<AlertEvaluator::Active> AlertEvaluator::activeAlerts() const {
  std::vector<Active> out;
  for (const auto& [key, st] : states_) {
    if (!st.raised) continue;
    const AlertRule& rule = rules_[key.first];
    out.push_back({.rule = rule.text,
                   .subject = key.second,
                   .value = st.emitted_value,
                   .since = st.raised_at,
                   .message = fmt::format("{}: {}", rule.text,
                                          describeValue(rule, key.second, st.emitted_value))});
  }
  return out;
}

}  // namespace fleetlet::monitoring
