#pragma once
// The instruments a daemon updates as things happen and writes into each exposition:
//   CounterVec  a counter per label set ("fleetlet_pulls_total{result="ok"}"),
//   Histogram   observations in fixed buckets, with their sum and count.
// Values live since the process started (Prometheus' rate() handles the restarts).
//
// Concurrency: every method may be called from any thread; each instrument has its own lock,
// held only to add a number or copy the values out.

#include <cstdint>
#include <map>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

#include "metrics/exposition.h"

namespace fleetlet::metrics {

class CounterVec {
 public:
  // `label_names` are the names of the label values inc() takes, in order.
  CounterVec(std::string name, std::string help, std::vector<std::string> label_names = {});

  // Adds `by` (≥ 0; a negative amount is ignored) to the counter of `label_values`, which must
  // have one value per label name (otherwise ignored).
  void inc(const std::vector<std::string>& label_values = {}, double by = 1);
  // Makes the counter of `label_values` appear at 0 before anything is counted, so that a
  // series exists from the first scrape.
  void touch(const std::vector<std::string>& label_values = {}) { inc(label_values, 0); }
  // The current value (0 for a label set never counted).
  double value(const std::vector<std::string>& label_values = {}) const;
  // Writes the family and every label set counted so far.
  void write(TextWriter& out) const;

 private:
  std::string name_;
  std::string help_;
  std::vector<std::string> label_names_;
  mutable std::mutex mu_;
  std::map<std::vector<std::string>, double> values_;  // guarded by mu_
};

class Histogram {
 public:
  // `bounds` are the buckets' upper bounds, ascending; +Inf is added.
  Histogram(std::string name, std::string help, std::vector<double> bounds);

  void observe(double value);
  uint64_t count() const;
  double sum() const;
  // Writes the family: cumulative _bucket{le=...} lines, _sum and _count.
  void write(TextWriter& out) const;

 private:
  std::string name_;
  std::string help_;
  std::vector<double> bounds_;
  mutable std::mutex mu_;
  std::vector<uint64_t> buckets_;  // guarded by mu_: per bound, not cumulative; last = +Inf
  double sum_ = 0;                 // guarded by mu_
  uint64_t count_ = 0;             // guarded by mu_
};

}  // namespace fleetlet::metrics
