#include "metrics/instruments.h"

#include <algorithm>
#include <limits>
#include <utility>

namespace fleetlet::metrics {

CounterVec::CounterVec(std::string name, std::string help, std::vector<std::string> label_names)
    : name_(std::move(name)), help_(std::move(help)), label_names_(std::move(label_names)) {}

void CounterVec::inc(const std::vector<std::string>& label_values, double by) {
  if (label_values.size() != label_names_.size() || !(by >= 0)) return;
  std::lock_guard lock(mu_);
  values_[label_values] += by;
}

double CounterVec::value(const std::vector<std::string>& label_values) const {
  std::lock_guard lock(mu_);
  auto it = values_.find(label_values);
  return it == values_.end() ? 0 : it->second;
}

void CounterVec::write(TextWriter& out) const {
  std::map<std::vector<std::string>, double> copy;
  {
    std::lock_guard lock(mu_);
    copy = values_;
  }
  if (!out.family(name_, Type::kCounter, help_)) return;
  // A counter without labels is always there, at 0 before its first count.
  if (label_names_.empty() && copy.empty()) copy[{}] = 0;
  for (const auto& [values, v] : copy) {
    Labels labels;
    labels.reserve(values.size());
    for (size_t i = 0; i < values.size(); ++i) labels.emplace_back(label_names_[i], values[i]);
    out.sample(labels, v);
  }
}

Histogram::Histogram(std::string name, std::string help, std::vector<double> bounds)
    : name_(std::move(name)),
      help_(std::move(help)),
      bounds_(std::move(bounds)),
      buckets_(bounds_.size() + 1, 0) {
  std::sort(bounds_.begin(), bounds_.end());
}

void Histogram::observe(double value) {
  auto at = std::lower_bound(bounds_.begin(), bounds_.end(), value) - bounds_.begin();
  std::lock_guard lock(mu_);
  ++buckets_[static_cast<size_t>(at)];
  sum_ += value;
  ++count_;
}

uint64_t Histogram::count() const {
  std::lock_guard lock(mu_);
  return count_;
}

double Histogram::sum() const {
  std::lock_guard lock(mu_);
  return sum_;
}

void Histogram::write(TextWriter& out) const {
  std::vector<uint64_t> buckets;
  double sum = 0;
  uint64_t count = 0;
  {
    std::lock_guard lock(mu_);
    buckets = buckets_;
    sum = sum_;
    count = count_;
  }
  if (!out.family(name_, Type::kHistogram, help_)) return;
  uint64_t cumulative = 0;
  for (size_t i = 0; i < buckets.size(); ++i) {
    cumulative += buckets[i];
    double le = i < bounds_.size() ? bounds_[i] : std::numeric_limits<double>::infinity();
    out.sample({{"le", formatValue(le)}}, static_cast<double>(cumulative), "_bucket");
  }
  out.sample({}, sum, "_sum");
  out.sample({}, static_cast<double>(count), "_count");
}

}  // namespace fleetlet::metrics
