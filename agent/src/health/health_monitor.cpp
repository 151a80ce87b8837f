#include "health/health_monitor.h"

#include <algorithm>
#include <utility>

namespace fleetlet::health {
namespace {

// Intervals below this count as this, so that a zero interval cannot spin the scheduler.
constexpr std::chrono::milliseconds kMinInterval{100};

std::chrono::milliseconds intervalOf(const Target& target) {
  return std::max(target.check.interval, kMinInterval);
}

}  // namespace

HealthMonitor::HealthMonitor(Prober& prober, Clock& clock, HealthCallbacks callbacks,
                             HealthMonitorOptions options)
    : prober_(prober), clock_(clock), callbacks_(std::move(callbacks)), options_(options) {
  workers_.reserve(options_.probe_threads);
  for (size_t i = 0; i < options_.probe_threads; ++i) {
    workers_.emplace_back([this] { workerLoop(); });
  }
  scheduler_ = std::thread([this] { schedulerLoop(); });
}

HealthMonitor::~HealthMonitor() { stop(); }

void HealthMonitor::stop() {
  std::lock_guard stop_lock(stop_mu_);
  {
    std::lock_guard lock(mu_);
    stopping_ = true;
    jobs_.clear();
  }
  scheduler_cv_.notify_all();
  worker_cv_.notify_all();
  if (scheduler_.joinable()) scheduler_.join();
  for (auto& worker : workers_) {
    if (worker.joinable()) worker.join();
  }
}

void HealthMonitor::setTargets(std::vector<Target> targets) {
  std::map<std::string, Target> wanted;
  for (auto& target : targets) wanted.insert_or_assign(target.app, std::move(target));
  {
    std::lock_guard lock(mu_);
    auto now = clock_.now();
    std::map<std::string, Entry> next;
    for (auto& [app, target] : wanted) {
      auto old = entries_.find(app);
      if (old != entries_.end() && sameTarget(old->second.target, target)) {
        next.emplace(app, std::move(old->second));
        continue;
      }
      Entry entry;
      entry.generation = next_generation_++;
      entry.next_probe = now + intervalOf(target);
      entry.target = std::move(target);
      next.emplace(app, std::move(entry));
    }
    entries_ = std::move(next);
    // Queued probes of targets that are gone would only be discarded: drop them now.
    std::erase_if(jobs_, [&](const Job& job) {
      auto it = entries_.find(job.target.app);
      return it == entries_.end() || it->second.generation != job.generation;
    });
  }
  scheduler_cv_.notify_all();
}

std::vector<AppHealth> HealthMonitor::snapshot() const {
  std::lock_guard lock(mu_);
  std::vector<AppHealth> out;
  out.reserve(entries_.size());
  for (const auto& [app, entry] : entries_) {
    out.push_back(AppHealth{.app = app,
                            .consecutive_failures = entry.failures,
                            .unhealthy = entry.unhealthy,
                            .last_error = entry.last_error,
                            .probes = entry.probes,
                            .next_probe = entry.next_probe,
                            .probing = entry.probing});
  }
  return out;
}

void HealthMonitor::schedulerLoop() {
  std::unique_lock lock(mu_);
  while (!stopping_) {
    std::vector<std::function<void()>> calls;
    while (!outcomes_.empty()) {
      Outcome outcome = std::move(outcomes_.front());
      outcomes_.pop_front();
      applyLocked(outcome, calls);
    }
    if (!calls.empty()) {
      lock.unlock();
      for (auto& call : calls) call();
      lock.lock();
      continue;
    }
    std::vector<Job> inline_jobs = dispatchDueLocked(clock_.now());
    if (!inline_jobs.empty()) {
      lock.unlock();
      std::vector<Outcome> done;
      done.reserve(inline_jobs.size());
      for (auto& job : inline_jobs) {
        done.push_back(Outcome{job.target.app, job.generation, prober_.probe(job.target)});
      }
      lock.lock();
      for (auto& outcome : done) outcomes_.push_back(std::move(outcome));
      continue;
    }
    clock_.waitUntil(lock, scheduler_cv_, nextDeadlineLocked());
  }
}

void HealthMonitor::workerLoop() {
  std::unique_lock lock(mu_);
  for (;;) {
    worker_cv_.wait(lock, [this] { return stopping_ || !jobs_.empty(); });
    if (stopping_) return;
    Job job = std::move(jobs_.front());
    jobs_.pop_front();
    lock.unlock();
    Status status = prober_.probe(job.target);
    lock.lock();
    outcomes_.push_back(Outcome{job.target.app, job.generation, std::move(status)});
    scheduler_cv_.notify_all();
  }
}

void HealthMonitor::applyLocked(const Outcome& outcome, std::vector<std::function<void()>>& calls) {
  auto it = entries_.find(outcome.app);
  if (it == entries_.end() || it->second.generation != outcome.generation) return;
  Entry& entry = it->second;
  entry.probing = false;
  ++entry.probes;
  const std::string& app = it->first;
  if (outcome.status) {
    entry.failures = 0;
    if (entry.unhealthy) {
      entry.unhealthy = false;
      if (callbacks_.on_healthy) calls.push_back([this, app] { callbacks_.on_healthy(app); });
    }
    return;
  }
  entry.last_error = outcome.status.error();
  if (++entry.failures < std::max(1, entry.target.check.failures)) return;
  entry.failures = 0;
  entry.unhealthy = true;
  if (callbacks_.on_unhealthy) {
    calls.push_back(
        [this, app, error = *entry.last_error] { callbacks_.on_unhealthy(app, error); });
  }
}

std::vector<HealthMonitor::Job> HealthMonitor::dispatchDueLocked(Clock::TimePoint now) {
  std::vector<Job> inline_jobs;
  bool queued = false;
  for (auto& [app, entry] : entries_) {
    if (entry.probing || entry.next_probe > now) continue;
    entry.probing = true;
    // Probes start every interval; one that overran its interval is followed at once.
    entry.next_probe = now + intervalOf(entry.target);
    Job job{entry.target, entry.generation};
    if (options_.probe_threads == 0) {
      inline_jobs.push_back(std::move(job));
    } else {
      jobs_.push_back(std::move(job));
      queued = true;
    }
  }
  if (queued) worker_cv_.notify_all();
  return inline_jobs;
}

Clock::TimePoint HealthMonitor::nextDeadlineLocked() const {
  auto deadline = Clock::TimePoint::max();
  for (const auto& [app, entry] : entries_) {
    if (!entry.probing) deadline = std::min(deadline, entry.next_probe);
  }
  return deadline;
}

}  // namespace fleetlet::health
