// bench_events: fleetlet-streams against mosquitto (the broker a user would otherwise pick),
// same machine, same run, same load shapes:
//   single  - C connections, each publishing one event per request and waiting for the ack
//             (201 once fsync'd / PUBACK at QoS 1). Both sides' publishers are the same kind
//             of client: a blocking socket per thread, one send per publish and reads until
//             the answer (HttpConnection, MqttPublisher). mosquitto also forwards every
//             message to one QoS 1 subscriber with a persistent session (the sink).
//   batch   - B connections publishing 100 events per request (mosquitto: 100 PUBLISH
//             packets in one send, then waiting for all PUBACKs)
//   latency - 10 subscribers, one publisher sending a timestamped event every 2 ms; p50/p99
//             of publish-start to subscriber-receipt (fleetlet-streams delivers only committed,
//             i.e. fsync'd, events). Runs first, on a fresh store.
//   RSS     - peak resident set of the server process (VmHWM)
//   replication - three nodes (A, B, C) and a one-server hub (hack/site-hub.sh): A publish ->
//             B/C subscriber p50/p99; then C is cut off from the hub for --partition-seconds
//             (60) through a relay while A publishes --catchup-events (100k), and the time from
//             the heal until C holds them all gives the catch-up rate.
// Prints figures and ratios (streams / mosquitto). Not a test; but it exits 1 when a publish
// of the replication phase fails or C does not catch up (no rate is printed then).
#include <fcntl.h>
#include <mosquitto.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <atomic>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <functional>
#include <mutex>
#include <optional>
#include <regex>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <tuple>
#include <utility>
#include <vector>

#include "os/child_process.h"
#include "os/unique_fd.h"
#include "support/temp_dir.h"

namespace {

using Clock = std::chrono::steady_clock;
using namespace std::chrono_literals;

std::int64_t nowNs() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(Clock::now().time_since_epoch())
      .count();
}

struct Figures {
  double single_eps = 0;
  double batch_eps = 0;
  double p50_us = 0;
  double p99_us = 0;
  std::size_t latency_samples = 0;
  // The latency phase's publisher: publish start to its acknowledgement (201 / PUBACK).
  double ack_p50_us = 0;
  double ack_p99_us = 0;
  double rss_mib = 0;
  // fleetlet-streams only: events per group commit and microseconds per commit cycle in the
  // single-event phase (from its /metrics).
  double single_events_per_commit = 0;
  double single_commit_us = 0;
  double single_write_us = 0;       // in the writer's transaction (BEGIN..COMMIT)
  double single_group_wait_us = 0;  // waiting for more requests (adaptive group)
  double single_events_per_sync = 0;
  double single_sync_us = 0;  // per fdatasync of the WAL (concurrent ones each count)
};

// Each figure's median over `rounds` (the upper one of an even count); latency samples
// summed, peak RSS the highest.
Figures medianOf(const std::vector<Figures>& rounds) {
  Figures out;
  if (rounds.empty()) return out;
  auto median = [&](double Figures::*field) {
    std::vector<double> values;
    values.reserve(rounds.size());
    for (const auto& f : rounds) values.push_back(f.*field);
    std::sort(values.begin(), values.end());
    out.*field = values[values.size() / 2];
  };
  for (auto field :
       {&Figures::single_eps, &Figures::batch_eps, &Figures::p50_us, &Figures::p99_us,
        &Figures::ack_p50_us, &Figures::ack_p99_us, &Figures::single_events_per_commit,
        &Figures::single_commit_us, &Figures::single_write_us, &Figures::single_group_wait_us,
        &Figures::single_events_per_sync, &Figures::single_sync_us}) {
    median(field);
  }
  for (const auto& f : rounds) {
    out.latency_samples += f.latency_samples;
    out.rss_mib = std::max(out.rss_mib, f.rss_mib);
  }
  return out;
}

struct Options {
  int rounds = 1;
  double seconds = 4;
  int single_connections = 32;
  int batch_connections = 4;
  std::int64_t catchup_events = 100000;
  double partition_seconds = 60;
  bool skip_replication = false;
  bool replication_only = false;
  int group_wait_us = -1;  // fleetlet-streams' --group-wait-us; -1: its default
  int subscribers = 10;
  int latency_events = 1000;
};

double peakRssMib(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/status");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("VmHWM:", 0) == 0) return std::stod(line.substr(6)) / 1024.0;
  }
  return 0;
}

std::uint16_t freePort() {
  int raw = ::socket(AF_INET, SOCK_STREAM, 0);
  if (raw < 0) return 0;
  fleetlet::UniqueFd fd(raw);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof(addr);
  if (::bind(raw, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0 ||
      ::getsockname(raw, reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
    return 0;
  }
  return ntohs(addr.sin_port);
}

// p50 and p99 of `samples` (sorts them); 0 when empty.
std::pair<double, double> p50p99(std::vector<double>& samples) {
  if (samples.empty()) return {0, 0};
  std::sort(samples.begin(), samples.end());
  return {samples[samples.size() / 2],
          samples[std::min(samples.size() - 1, samples.size() * 99 / 100)]};
}

void percentiles(std::vector<double>& samples, Figures& f) {
  f.latency_samples = samples.size();
  if (samples.empty()) return;
  std::sort(samples.begin(), samples.end());
  f.p50_us = samples[samples.size() / 2];
  f.p99_us = samples[std::min(samples.size() - 1, samples.size() * 99 / 100)];
}

// ---------------------------------------------------------------- fleetlet-streams (HTTP)

// A keep-alive HTTP/1.1 connection that sends a request and reads a Content-Length response.
class HttpConnection {
 public:
  explicit HttpConnection(std::uint16_t port) : fd_(::socket(AF_INET, SOCK_STREAM, 0)) {
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(port);
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ok_ = ::connect(fd_.get(), reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0;
  }
  int fd() const { return fd_.get(); }
  bool sendAll(std::string_view data) {
    while (ok_ && !data.empty()) {
      ssize_t n = ::send(fd_.get(), data.data(), data.size(), MSG_NOSIGNAL);
      if (n <= 0) ok_ = false;
      if (n > 0) data.remove_prefix(static_cast<std::size_t>(n));
    }
    return ok_;
  }
  // Returns the status code, 0 on failure.
  int publish(const std::string& body) {
    std::string req =
        "POST /api/v1/events/publish HTTP/1.1\r\nHost: b\r\nContent-Type: "
        "application/json\r\nContent-Length: " +
        std::to_string(body.size()) + "\r\n\r\n" + body;
    if (!sendAll(req)) return 0;
    return readResponse();
  }

 private:
  int readResponse() {
    while (true) {
      auto end = buffer_.find("\r\n\r\n");
      if (end != std::string::npos) {
        auto cl = buffer_.find("Content-Length: ");
        std::size_t length = cl < end ? std::stoul(buffer_.substr(cl + 16)) : 0;
        if (buffer_.size() >= end + 4 + length) {
          int status = std::stoi(buffer_.substr(9, 3));
          buffer_.erase(0, end + 4 + length);
          return status;
        }
      }
      char buf[65536];
      ssize_t n = ::recv(fd_.get(), buf, sizeof(buf), 0);
      if (n <= 0) return 0;
      buffer_.append(buf, static_cast<std::size_t>(n));
    }
  }
  fleetlet::UniqueFd fd_;
  bool ok_ = false;
  std::string buffer_;
};

std::string eventsBody(const std::string& semantics, int count, std::int64_t t) {
  std::string body = R"({"data":[)";
  for (int i = 0; i < count; ++i) {
    if (i) body += ',';
    body += R"({"semantics":")" + semantics + R"(","name":"machine-1","payload":{"t":)" +
            std::to_string(t) + R"(,"temperature":21.5,"unit":"C"}})";
  }
  return body + "]}";
}

// The body (with headers) of GET `path` on `port`.
std::string httpGet(std::uint16_t port, const std::string& path) {
  HttpConnection c(port);
  c.sendAll("GET " + path + " HTTP/1.1\r\nHost: b\r\nConnection: close\r\n\r\n");
  std::string text;
  char buf[4096];
  while (true) {
    pollfd pf{c.fd(), POLLIN, 0};
    if (::poll(&pf, 1, 2000) != 1) break;
    ssize_t n = ::recv(c.fd(), buf, sizeof(buf), 0);
    if (n <= 0) break;
    text.append(buf, static_cast<std::size_t>(n));
  }
  return text;
}

// The number after `key` in `text` (0 when absent).
double numberAfter(const std::string& text, const std::string& key) {
  auto pos = text.find(key);
  return pos == std::string::npos ? 0 : std::strtod(text.c_str() + pos + key.size(), nullptr);
}

// The value of counter `name` in fleetlet-streams' GET /metrics on `port` (0 when absent).
double metric(std::uint16_t port, std::string_view name) {
  return numberAfter(httpGet(port, "/metrics"), "\n" + std::string(name) + " ");
}

// Runs `connections` closed-loop publishers for `seconds`; returns events per second.
template <typename Publish>
double closedLoop(int connections, double seconds, int events_per_call, Publish publish) {
  std::atomic<std::int64_t> calls{0};
  std::atomic<bool> stop{false};
  std::vector<std::thread> threads;
  threads.reserve(static_cast<std::size_t>(connections));
  auto start = Clock::now();
  for (int c = 0; c < connections; ++c) {
    threads.emplace_back([&, c] {
      auto session = publish(c);
      while (!stop) {
        if (!session()) break;
        calls++;
      }
    });
  }
  std::this_thread::sleep_for(std::chrono::duration<double>(seconds));
  stop = true;
  for (auto& t : threads) t.join();
  double elapsed = std::chrono::duration<double>(Clock::now() - start).count();
  return static_cast<double>(calls.load()) * events_per_call / elapsed;
}

// Subscribes on `port` to events of `semantics` whose payload starts with {"t":<nowNs() at
// publication>} and returns each one's delay in microseconds, until `stop`. Counts `ready`
// up once the subscription is answered.
std::vector<double> subscriberLatencies(std::uint16_t port, const std::string& semantics,
                                        const std::atomic<bool>& stop, std::atomic<int>& ready) {
  HttpConnection c(port);
  std::string body = R"({"subscriptions":[{"semantics":")" + semantics + R"("}]})";
  c.sendAll("POST /api/v1/events/subscribe HTTP/1.1\r\nHost: b\r\nContent-Length: " +
            std::to_string(body.size()) + "\r\n\r\n" + body);
  std::string raw;      // bytes as received (chunked transfer encoding)
  std::string pending;  // the NDJSON body, de-chunked
  bool header = false;
  std::vector<double> mine;
  while (!stop) {
    pollfd pf{c.fd(), POLLIN, 0};
    if (::poll(&pf, 1, 100) != 1) continue;
    char buf[65536];
    ssize_t n = ::recv(c.fd(), buf, sizeof(buf), 0);
    if (n <= 0) break;
    std::int64_t now = nowNs();
    raw.append(buf, static_cast<std::size_t>(n));
    if (!header) {
      auto end = raw.find("\r\n\r\n");
      if (end == std::string::npos) continue;
      header = true;
      ready++;
      raw.erase(0, end + 4);
    }
    // Chunk framing can split a number; take whole chunks' data only.
    while (true) {
      auto eol = raw.find("\r\n");
      if (eol == std::string::npos) break;
      std::size_t size = std::strtoul(raw.c_str(), nullptr, 16);
      if (raw.size() < eol + 2 + size + 2) break;
      pending.append(raw, eol + 2, size);
      raw.erase(0, eol + 2 + size + 2);
    }
    std::size_t pos;
    while ((pos = pending.find("{\"t\":")) != std::string::npos) {
      std::size_t end = pending.find_first_not_of("0123456789", pos + 5);
      if (end == std::string::npos) break;
      std::int64_t t = std::stoll(pending.substr(pos + 5, end - pos - 5));
      if (t > 0) mine.push_back(static_cast<double>(now - t) / 1000.0);
      pending.erase(0, end);
    }
  }
  return mine;
}

struct StreamsProcess {
  fleetlet::ChildProcess child;
  std::uint16_t port = 0;
};

// The fleetlet-streams binary measured (--streams-binary: e.g. an older build, to alternate
// before/after binaries in the same minutes); set once in main().
std::string& streamsBinary() {
  static std::string path = STREAMS_PATH;
  return path;
}

// Starts fleetlet-streams with `args` (after the binary) and finds its event service port
// (--log-level warn hides the listening line; its listening sockets are found through /proc).
StreamsProcess startStreams(const std::filesystem::path& log, std::vector<std::string> args) {
  args.insert(args.begin(), streamsBinary());
  auto child =
      fleetlet::ChildProcess::spawn({.argv = args, .stdout_path = log, .stderr_path = log});
  if (!child) {
    (void)std::fprintf(stderr, "cannot start fleetlet-streams: %s\n",
                       child.error().message().c_str());
    std::exit(1);
  }
  std::uint16_t port = 0;
  for (int i = 0; i < 400 && port == 0; ++i) {
    std::this_thread::sleep_for(10ms);
    std::ifstream tcp("/proc/" + std::to_string(child->pid()) + "/net/tcp");
    std::string line;
    std::getline(tcp, line);
    std::vector<std::uint16_t> ports;
    // /proc/<pid>/net/tcp lists every socket of the network namespace: keep the child's own
    // (by socket inode), or another fleetlet-streams on the machine would be measured.
    std::set<std::string> inodes;
    std::error_code ec;
    for (const auto& fd :
         std::filesystem::directory_iterator("/proc/" + std::to_string(child->pid()) + "/fd", ec)) {
      auto target = std::filesystem::read_symlink(fd.path(), ec).string();
      if (target.rfind("socket:[", 0) == 0) inodes.insert(target.substr(8, target.size() - 9));
    }
    while (std::getline(tcp, line)) {
      // sl local_address rem_address st tx:rx tr:when retrnsmt uid timeout inode; 0A = LISTEN
      std::istringstream in(line);
      std::string sl, local, remote, state, queues, timer, retransmits, uid, timeout, inode;
      in >> sl >> local >> remote >> state >> queues >> timer >> retransmits >> uid >> timeout >>
          inode;
      if (state == "0A" && local.rfind("0100007F:", 0) == 0 && inodes.contains(inode)) {
        ports.push_back(static_cast<std::uint16_t>(std::stoul(local.substr(9), nullptr, 16)));
      }
    }
    if (ports.size() >= 2) {
      // The events listener is bound first; probe which one answers /api/v1/events/offsets.
      for (auto p : ports) {
        HttpConnection c(p);
        c.sendAll("GET /api/v1/events/offsets HTTP/1.1\r\nHost: b\r\n\r\n");
        char buf[512];
        pollfd pf{c.fd(), POLLIN, 0};
        if (::poll(&pf, 1, 1000) == 1 && ::recv(c.fd(), buf, sizeof(buf), 0) > 12 &&
            std::string_view(buf, 12) == "HTTP/1.1 200") {
          port = p;
          break;
        }
      }
    }
  }
  if (port == 0) {
    (void)std::fprintf(stderr, "fleetlet-streams did not start\n");
    std::exit(1);
  }
  return {std::move(*child), port};
}

Figures benchStreams(const Options& o) {
  Figures f;
  auto dir = fleetlet::testing::TempDir::create("bench-events");
  auto log = dir->path() / "service.log";
  std::vector<std::string> args = {"--data-dir",       (dir->path() / "data").string(),
                                   "--listen",         "127.0.0.1:0",
                                   "--console-listen", "127.0.0.1:0",
                                   "--source-id",      "bench",
                                   "--log-level",      "warn"};
  if (o.group_wait_us >= 0) {
    args.emplace_back("--group-wait-us");
    args.push_back(std::to_string(o.group_wait_us));
  }
  auto started = startStreams(log, args);
  auto* child = &started.child;
  std::uint16_t port = started.port;

  // Latency: subscribers read the chunked NDJSON stream and note each event's arrival.
  std::mutex mutex;
  std::vector<double> samples;
  std::atomic<int> ready{0};
  std::atomic<bool> stop{false};
  std::vector<std::thread> subs;
  subs.reserve(static_cast<std::size_t>(o.subscribers));
  for (int s = 0; s < o.subscribers; ++s) {
    subs.emplace_back([&] {
      auto mine = subscriberLatencies(port, "bench.latency", stop, ready);
      std::lock_guard lock(mutex);
      samples.insert(samples.end(), mine.begin(), mine.end());
    });
  }
  while (ready < o.subscribers) std::this_thread::sleep_for(1ms);
  std::this_thread::sleep_for(200ms);
  {
    HttpConnection pub(port);
    std::vector<double> acks;
    auto next = Clock::now();
    for (int i = 0; i < o.latency_events; ++i) {
      next += 2ms;
      std::this_thread::sleep_until(next);
      std::int64_t start = nowNs();
      pub.publish(eventsBody("bench.latency", 1, start));
      acks.push_back(static_cast<double>(nowNs() - start) / 1000.0);
    }
    std::tie(f.ack_p50_us, f.ack_p99_us) = p50p99(acks);
  }
  std::this_thread::sleep_for(300ms);
  stop = true;
  for (auto& t : subs) t.join();
  percentiles(samples, f);
  // Where the single-event phase's time goes: events per group commit (one fsync each) and
  // the time per commit cycle.
  double commits_before = metric(port, "fleetlet_streams_commits_total");
  double events_before = metric(port, "fleetlet_streams_published_events_total");
  double write_before = metric(port, "fleetlet_streams_commit_seconds_total");
  double wait_before = metric(port, "fleetlet_streams_group_wait_seconds_total");
  double syncs_before = metric(port, "fleetlet_streams_syncs_total");
  double sync_s_before = metric(port, "fleetlet_streams_sync_seconds_total");
  f.single_eps = closedLoop(o.single_connections, o.seconds, 1, [&](int) {
    auto conn = std::make_shared<HttpConnection>(port);
    auto body = eventsBody("bench.single", 1, 0);
    return [conn, body] { return conn->publish(body) == 201; };
  });
  double commits = metric(port, "fleetlet_streams_commits_total") - commits_before;
  double events = metric(port, "fleetlet_streams_published_events_total") - events_before;
  double write_s = metric(port, "fleetlet_streams_commit_seconds_total") - write_before;
  double wait_s = metric(port, "fleetlet_streams_group_wait_seconds_total") - wait_before;
  double syncs = metric(port, "fleetlet_streams_syncs_total") - syncs_before;
  double sync_s = metric(port, "fleetlet_streams_sync_seconds_total") - sync_s_before;
  if (syncs > 0) {
    f.single_events_per_sync = events / syncs;
    f.single_sync_us = sync_s * 1e6 / syncs;
  }
  if (commits > 0) {
    f.single_events_per_commit = events / commits;
    f.single_commit_us = o.seconds * 1e6 / commits;
    f.single_write_us = write_s * 1e6 / commits;
    f.single_group_wait_us = wait_s * 1e6 / commits;
  }
  f.batch_eps = closedLoop(o.batch_connections, o.seconds, 100, [&](int) {
    auto conn = std::make_shared<HttpConnection>(port);
    auto body = eventsBody("bench.batch", 100, 0);
    return [conn, body] { return conn->publish(body) == 201; };
  });

  f.rss_mib = peakRssMib(child->pid());
  child->stop(SIGTERM, 5s);
  return f;
}

// ---------------------------------------------------------------- mosquitto (MQTT, QoS 1)

// A subscribing MQTT client (libmosquitto) with its network loop on its own thread; the
// message callback runs there.
class MqttClient {
 public:
  MqttClient(std::uint16_t port, const std::string& id, bool clean = true) {
    m_ = mosquitto_new(id.c_str(), clean, this);
    mosquitto_max_inflight_messages_set(m_, 1000);
    mosquitto_message_callback_set(m_, [](mosquitto*, void* self, const mosquitto_message* msg) {
      auto* c = static_cast<MqttClient*>(self);
      if (c->on_message_) c->on_message_(msg);
    });
    ok_ = mosquitto_connect(m_, "127.0.0.1", port, 60) == MOSQ_ERR_SUCCESS;
    mosquitto_loop_start(m_);
  }
  ~MqttClient() {
    mosquitto_disconnect(m_);
    mosquitto_loop_stop(m_, true);
    mosquitto_destroy(m_);
  }
  MqttClient(const MqttClient&) = delete;
  MqttClient& operator=(const MqttClient&) = delete;
  void subscribe(const char* topic, std::function<void(const mosquitto_message*)> fn) {
    on_message_ = std::move(fn);
    mosquitto_subscribe(m_, nullptr, topic, 1);
  }
  bool ok() const { return ok_; }

 private:
  mosquitto* m_;
  bool ok_ = false;
  std::function<void(const mosquitto_message*)> on_message_;
};

// A publisher speaking MQTT 3.1.1 on a blocking socket, written like HttpConnection: one
// send per publish (or per batch), then reads until every PUBACK is in; one thread, no
// library network loop. libmosquitto's threaded client (MqttClient) hands each publish to its
// loop thread and each PUBACK back, two thread switches per message that the HTTP client does
// not pay; on two cores that client CPU came out of the brokers' share.
class MqttPublisher {
 public:
  MqttPublisher(std::uint16_t port, const std::string& id) : conn_(port) {
    // CONNECT: protocol "MQTT" level 4, clean session, keep-alive 60 s.
    std::string body = std::string("\x00\x04MQTT\x04\x02\x00\x3c", 10);
    body += static_cast<char>(id.size() >> 8);
    body += static_cast<char>(id.size() & 0xff);
    body += id;
    std::string packet = "\x10" + remainingLength(body.size()) + body;
    ok_ = conn_.sendAll(packet) && readPacket() == 0x20;  // CONNACK
  }
  bool ok() const { return ok_; }
  // Publishes `payload` `count` times at QoS 1 in one send and waits for every PUBACK.
  bool publish(std::string_view topic, std::string_view payload, int count = 1) {
    std::string out;
    for (int i = 0; i < count; ++i) {
      id_ = static_cast<std::uint16_t>(id_ % 65535 + 1);
      std::string body;
      body += static_cast<char>(topic.size() >> 8);
      body += static_cast<char>(topic.size() & 0xff);
      body += topic;
      body += static_cast<char>(id_ >> 8);
      body += static_cast<char>(id_ & 0xff);
      body += payload;
      out += "\x32" + remainingLength(body.size()) + body;  // PUBLISH, QoS 1
    }
    if (!conn_.sendAll(out)) return false;
    for (int i = 0; i < count; ++i) {
      if (readPacket() != 0x40) return false;  // PUBACK
    }
    return true;
  }

 private:
  static std::string remainingLength(std::size_t n) {
    std::string out;
    do {
      char byte = static_cast<char>(n % 128);
      n /= 128;
      if (n > 0) byte = static_cast<char>(byte | 0x80);
      out += byte;
    } while (n > 0);
    return out;
  }
  // Reads one packet; returns its type byte (0 on failure).
  int readPacket() {
    while (true) {
      if (buffer_.size() >= 2) {
        std::size_t length = 0;
        std::size_t pos = 1;
        std::size_t shift = 0;
        bool complete = false;
        while (pos < buffer_.size() && pos < 5) {
          auto byte = static_cast<unsigned char>(buffer_[pos++]);
          length |= static_cast<std::size_t>(byte & 0x7f) << shift;
          shift += 7;
          if ((byte & 0x80) == 0) {
            complete = true;
            break;
          }
        }
        if (complete && buffer_.size() >= pos + length) {
          int type = static_cast<unsigned char>(buffer_[0]) & 0xf0;
          buffer_.erase(0, pos + length);
          return type;
        }
      }
      char buf[4096];
      ssize_t n = ::recv(conn_.fd(), buf, sizeof(buf), 0);
      if (n <= 0) return 0;
      buffer_.append(buf, static_cast<std::size_t>(n));
    }
  }
  HttpConnection conn_;  // only its socket
  bool ok_ = false;
  std::uint16_t id_ = 0;
  std::string buffer_;
};

Figures benchMosquitto(const Options& o) {
  Figures f;
  auto dir = fleetlet::testing::TempDir::create("bench-mosquitto");
  std::uint16_t port = freePort();
  if (port == 0) {
    (void)std::fprintf(stderr, "no free port for mosquitto\n");
    std::exit(1);
  }
  auto conf = dir->path() / "mosquitto.conf";
  {
    std::ofstream out(conf);
    out << "listener " << port << " 127.0.0.1\nallow_anonymous true\nuser root\n"
        << "persistence true\npersistence_location " << dir->path().string() << "/\n"
        << "autosave_interval 1\nmax_queued_messages 1000000\nmax_inflight_messages 1000\n"
        // Like fleetlet-streams' sockets: without it, PUBACKs for a batch sent in one packet
        // wait on Nagle and the client's delayed ACK (~40 ms per batch).
        << "set_tcp_nodelay true\n";
  }
  auto log = dir->path() / "mosquitto.log";
  auto child = fleetlet::ChildProcess::spawn(
      {.argv = {MOSQUITTO_PATH, "-c", conf.string()}, .stdout_path = log, .stderr_path = log});
  if (!child) {
    (void)std::fprintf(stderr, "cannot start mosquitto: %s\n", child.error().message().c_str());
    std::exit(1);
  }
  for (int i = 0; i < 400; ++i) {
    std::this_thread::sleep_for(10ms);
    fleetlet::UniqueFd fd(::socket(AF_INET, SOCK_STREAM, 0));
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(port);
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (::connect(fd.get(), reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0) break;
  }
  // A QoS 1 subscriber with a persistent session stands in for the event store: the broker
  // must keep every message for it.
  MqttClient sink(port, "bench-sink", false);
  std::atomic<std::uint64_t> sunk{0};
  sink.subscribe("bench/#", [&](const mosquitto_message*) { sunk++; });
  std::this_thread::sleep_for(100ms);
  std::string payload = R"({"t":0,"temperature":21.5,"unit":"C"})";

  std::mutex mutex;
  std::vector<double> samples;
  std::vector<std::unique_ptr<MqttClient>> subs;
  for (int s = 0; s < o.subscribers; ++s) {
    subs.push_back(std::make_unique<MqttClient>(port, "lat-" + std::to_string(s)));
    subs.back()->subscribe("lat/x", [&](const mosquitto_message* msg) {
      std::int64_t now = nowNs();
      std::string text(static_cast<const char*>(msg->payload),
                       static_cast<std::size_t>(msg->payloadlen));
      std::int64_t t = std::stoll(text.substr(5));
      std::lock_guard lock(mutex);
      samples.push_back(static_cast<double>(now - t) / 1000.0);
    });
  }
  std::this_thread::sleep_for(300ms);
  {
    MqttPublisher pub(port, "lat-pub");
    std::vector<double> acks;
    auto next = Clock::now();
    for (int i = 0; i < o.latency_events; ++i) {
      next += 2ms;
      std::this_thread::sleep_until(next);
      std::int64_t start = nowNs();
      pub.publish("lat/x", "{\"t\":" + std::to_string(start) + "}");
      acks.push_back(static_cast<double>(nowNs() - start) / 1000.0);
    }
    std::tie(f.ack_p50_us, f.ack_p99_us) = p50p99(acks);
  }
  std::this_thread::sleep_for(300ms);
  subs.clear();
  {
    std::lock_guard lock(mutex);
    percentiles(samples, f);
  }
  f.single_eps = closedLoop(o.single_connections, o.seconds, 1, [&](int c) {
    auto client = std::make_shared<MqttPublisher>(port, "single-" + std::to_string(c));
    return [client, payload] { return client->publish("bench/single", payload); };
  });
  f.batch_eps = closedLoop(o.batch_connections, o.seconds, 100, [&](int c) {
    auto client = std::make_shared<MqttPublisher>(port, "batch-" + std::to_string(c));
    return [client, payload] { return client->publish("bench/batch", payload, 100); };
  });

  f.rss_mib = peakRssMib(child->pid());
  child->stop(SIGTERM, 5s);
  return f;
}

}  // namespace

// ---------------------------------------------------------------- replication (NATS hub)

struct ReplicationFigures {
  double p50_us = 0;
  double p99_us = 0;
  std::size_t samples = 0;
  std::int64_t catchup_events = 0;
  double partition_s = 0;    // how long C was cut off from the hub
  double catchup_s = 0;      // heal -> C holds every event
  double catchup_eps = 0;    // events / catchup_s
  double first_event_s = 0;  // heal -> C's first new event (reconnect, consumer)
  double ingest_eps = 0;     // events / (catchup_s - first_event_s)
  std::string c_status;      // C's /replication afterwards
};

// A TCP relay on loopback between one node and the hub: cut() severs every relayed
// connection and refuses new ones (a network partition as the node sees it: it keeps running
// and publishing, its reconnects fail), heal() lets connections through again.
class TcpProxy {
 public:
  explicit TcpProxy(std::uint16_t upstream)
      : listener_(::socket(AF_INET, SOCK_STREAM, 0)), upstream_(upstream) {
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (::bind(listener_.get(), reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0 ||
        ::listen(listener_.get(), 16) != 0) {
      (void)std::fprintf(stderr, "proxy: cannot listen\n");
      std::exit(1);
    }
    socklen_t len = sizeof(addr);
    ::getsockname(listener_.get(), reinterpret_cast<sockaddr*>(&addr), &len);
    port_ = ntohs(addr.sin_port);
    acceptor_ = std::thread([this] { acceptLoop(); });
  }
  ~TcpProxy() {
    stop_ = true;
    cut();
    acceptor_.join();
    for (auto& t : relays_) t.join();
  }
  TcpProxy(const TcpProxy&) = delete;
  TcpProxy& operator=(const TcpProxy&) = delete;

  std::uint16_t port() const { return port_; }
  void cut() {
    cut_ = true;
    std::lock_guard lock(mutex_);
    for (int fd : open_) ::shutdown(fd, SHUT_RDWR);
  }
  void heal() { cut_ = false; }

 private:
  void acceptLoop() {
    while (!stop_) {
      pollfd pf{listener_.get(), POLLIN, 0};
      if (::poll(&pf, 1, 100) != 1) continue;
      fleetlet::UniqueFd client(::accept(listener_.get(), nullptr, nullptr));
      if (!client || cut_) continue;  // partitioned: the connection closes at once
      fleetlet::UniqueFd hub(::socket(AF_INET, SOCK_STREAM, 0));
      if (!hub) continue;
      sockaddr_in addr{};
      addr.sin_family = AF_INET;
      addr.sin_port = htons(upstream_);
      addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
      if (::connect(hub.get(), reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) continue;
      // Like nats-server and nats.c themselves: without TCP_NODELAY, Nagle's algorithm held a
      // small message behind an unacknowledged one until the peer's delayed ACK (~40 ms), which
      // was the whole replication latency tail of the node behind the relay.
      const int one = 1;
      (void)::setsockopt(client.get(), IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
      (void)::setsockopt(hub.get(), IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
      std::lock_guard lock(mutex_);
      open_.push_back(client.get());
      open_.push_back(hub.get());
      relays_.emplace_back([this, a = std::move(client), b = std::move(hub)]() mutable {
        relay(a.get(), b.get());
        std::lock_guard relay_lock(mutex_);
        std::erase(open_, a.get());
        std::erase(open_, b.get());
      });
    }
  }
  // Copies bytes both ways until either side closes (or cut() shut both down).
  void relay(int a, int b) {
    char buf[65536];
    while (!stop_) {
      pollfd pf[2] = {{a, POLLIN, 0}, {b, POLLIN, 0}};
      if (::poll(pf, 2, 100) <= 0) continue;
      for (int i = 0; i < 2; ++i) {
        if ((pf[i].revents & (POLLIN | POLLHUP | POLLERR)) == 0) continue;
        ssize_t n = ::recv(pf[i].fd, buf, sizeof(buf), 0);
        if (n <= 0) return;
        int to = i == 0 ? b : a;
        for (ssize_t sent = 0; sent < n;) {
          ssize_t w = ::send(to, buf + sent, static_cast<std::size_t>(n - sent), MSG_NOSIGNAL);
          if (w <= 0) return;
          sent += w;
        }
      }
    }
  }

  fleetlet::UniqueFd listener_;
  std::uint16_t upstream_;
  std::uint16_t port_ = 0;
  std::atomic<bool> cut_{false};
  std::atomic<bool> stop_{false};
  std::mutex mutex_;
  std::vector<int> open_;  // relayed sockets, guarded by mutex_
  std::vector<std::thread> relays_;
  std::thread acceptor_;
};

// Polls `done` every 5 ms for up to `limit`; returns whether it held.
bool waitUntil(const std::function<bool()>& done, std::chrono::seconds limit) {
  auto deadline = Clock::now() + limit;
  while (Clock::now() < deadline) {
    if (done()) return true;
    std::this_thread::sleep_for(5ms);
  }
  return false;
}

// Three nodes (a, b, c) and a one-server hub from hack/site-hub.sh: A publish -> B and C
// subscriber latency; then C stopped while A publishes `catchup_events`, restarted, and the
// time until C has them all.
ReplicationFigures benchReplication(const Options& o) {
  ReplicationFigures f;
  auto dir = fleetlet::testing::TempDir::create("bench-replication");
  auto hub = dir->path() / "hub";
  auto hubCommand = [&](const std::string& command) {
    auto out = fleetlet::runCommand(
        {SITE_HUB_PATH, command, hub.string(), "--site", "bench", "--nodes", "a,b,c"});
    if (!out || !out->status.success()) {
      (void)std::fprintf(stderr, "site-hub.sh %s failed: %s\n", command.c_str(),
                         out ? out->err.c_str() : out.error().message().c_str());
      std::exit(1);
    }
  };
  hubCommand("start");
  std::ifstream env(hub / "hub.env");
  std::string urls;
  for (std::string line; std::getline(env, line);) {
    if (line.rfind("NATS_URLS=", 0) == 0) urls = line.substr(10);
  }
  auto node = [&](const std::string& name, const std::string& hub_urls) {
    return startStreams(dir->path() / (name + ".log"), {"--data-dir",
                                                        (dir->path() / name).string(),
                                                        "--listen",
                                                        "127.0.0.1:0",
                                                        "--console-listen",
                                                        "127.0.0.1:0",
                                                        "--source-id",
                                                        name,
                                                        "--log-level",
                                                        "warn",
                                                        "--nats",
                                                        hub_urls,
                                                        "--site",
                                                        "bench",
                                                        "--nats-user",
                                                        name,
                                                        "--nats-password-file",
                                                        (hub / (name + ".password")).string(),
                                                        "--stream-max-bytes",
                                                        "1073741824"});
  };
  // C reaches the hub through a relay the benchmark can cut (the partition below).
  auto colon = urls.rfind(':');
  if (urls.find(',') != std::string::npos || colon == std::string::npos) {
    (void)std::fprintf(stderr, "unexpected hub URLs '%s'\n", urls.c_str());
    std::exit(1);
  }
  TcpProxy proxy(static_cast<std::uint16_t>(std::stoul(urls.substr(colon + 1))));
  auto a = node("a", urls);
  auto b = node("b", urls);
  auto c = node("c", "nats://127.0.0.1:" + std::to_string(proxy.port()));
  auto offsetOf = [](std::uint16_t port, const std::string& source) {
    auto text = httpGet(port, "/api/v1/events/offsets");
    auto key = "\"" + source + "\":";
    return text.find(key) == std::string::npos ? -1.0 : numberAfter(text, key);
  };
  // Warm up: B and C follow A.
  HttpConnection pub(a.port);
  pub.publish(eventsBody("bench.warmup", 1, 0));
  if (!waitUntil([&] { return offsetOf(b.port, "a") >= 0 && offsetOf(c.port, "a") >= 0; }, 30s)) {
    (void)std::fprintf(stderr, "replication did not start\n");
    std::exit(1);
  }

  std::mutex mutex;
  std::vector<double> samples;
  std::atomic<int> ready{0};
  std::atomic<bool> stop{false};
  std::vector<std::thread> subs;
  for (std::uint16_t port : {b.port, c.port}) {
    subs.emplace_back([&, port] {
      auto mine = subscriberLatencies(port, "bench.repl", stop, ready);
      std::lock_guard lock(mutex);
      samples.insert(samples.end(), mine.begin(), mine.end());
    });
  }
  while (ready < 2) std::this_thread::sleep_for(1ms);
  auto next = Clock::now();
  for (int i = 0; i < o.latency_events; ++i) {
    next += 2ms;
    std::this_thread::sleep_until(next);
    pub.publish(eventsBody("bench.repl", 1, nowNs()));
  }
  std::this_thread::sleep_for(500ms);
  stop = true;
  for (auto& t : subs) t.join();
  Figures latency;
  percentiles(samples, latency);
  f.p50_us = latency.p50_us;
  f.p99_us = latency.p99_us;
  f.samples = latency.latency_samples;

  // Catch-up after a partition: C is cut off from the hub for partition_seconds (it keeps
  // running) while A publishes catchup_events, paced over that time in 100-event requests;
  // then the link heals and C catches up.
  auto connected = [&](std::uint16_t port) {
    return httpGet(port, "/replication").find("\"connected\":true") != std::string::npos;
  };
  auto cut_at = Clock::now();
  proxy.cut();
  if (!waitUntil([&] { return !connected(c.port); }, 30s)) {
    (void)std::fprintf(stderr, "FAIL: node c still reports the hub connected after the cut\n");
    std::exit(1);
  }
  double base = offsetOf(a.port, "a");
  const std::int64_t requests = (o.catchup_events + 99) / 100;
  const auto pace =
      std::chrono::duration<double>(o.partition_seconds * 0.9 / static_cast<double>(requests));
  auto next_request = Clock::now();
  for (std::int64_t i = 0; i < requests; ++i) {
    next_request += std::chrono::duration_cast<Clock::duration>(pace);
    std::this_thread::sleep_until(next_request);
    if (int status = pub.publish(eventsBody("bench.catchup", 100, 0)); status != 201) {
      (void)std::fprintf(stderr, "FAIL: publish on node a during the partition answered %d\n",
                         status);
      std::exit(1);
    }
  }
  double last = offsetOf(a.port, "a");
  f.catchup_events = static_cast<std::int64_t>(last - base);
  if (!waitUntil(
          [&] {
            return numberAfter(httpGet(a.port, "/replication"), "\"published\":") >= last + 1;
          },
          120s)) {
    (void)std::fprintf(stderr, "FAIL: node a did not publish its events to the hub\n");
    std::exit(1);
  }
  std::this_thread::sleep_until(cut_at + std::chrono::duration_cast<Clock::duration>(
                                             std::chrono::duration<double>(o.partition_seconds)));
  if (offsetOf(c.port, "a") > base) {
    (void)std::fprintf(stderr, "FAIL: node c received events during the partition\n");
    std::exit(1);
  }
  auto healed_at = Clock::now();
  f.partition_s = std::chrono::duration<double>(healed_at - cut_at).count();
  proxy.heal();
  std::optional<Clock::time_point> first;
  bool caught_up = waitUntil(
      [&] {
        double now = offsetOf(c.port, "a");
        if (!first && now > base) first = Clock::now();
        return now >= last;
      },
      300s);
  auto done_at = Clock::now();
  f.c_status = httpGet(c.port, "/replication");
  if (auto body = f.c_status.find("\r\n\r\n"); body != std::string::npos) {
    f.c_status.erase(0, body + 4);
  }
  if (!caught_up) {
    (void)std::fprintf(stderr,
                       "FAIL: node c did not catch up within 300 s (a at %.0f, c at %.0f)\n%s\n",
                       last, offsetOf(c.port, "a"), f.c_status.c_str());
    std::exit(1);
  }
  f.catchup_s = std::chrono::duration<double>(done_at - healed_at).count();
  f.catchup_eps = static_cast<double>(f.catchup_events) / f.catchup_s;
  f.first_event_s = std::chrono::duration<double>(first.value_or(done_at) - healed_at).count();
  if (f.catchup_s > f.first_event_s) {
    f.ingest_eps = static_cast<double>(f.catchup_events) / (f.catchup_s - f.first_event_s);
  }
  for (auto* n : {&a, &b, &c}) n->child.stop(SIGTERM, 5s);
  hubCommand("stop");
  return f;
}

int main(int argc, char** argv) {
  CLI::App app{"bench_events: fleetlet-streams vs mosquitto"};
  Options o;
  app.add_option("--rounds", o.rounds,
                 "Rounds of the comparison (each server in turn); figures are their medians")
      ->check(CLI::Range(1, 100));
  app.add_option("--seconds", o.seconds, "Duration of each throughput phase");
  app.add_option("--connections", o.single_connections, "Publishers in the single-event phase");
  app.add_option("--batch-connections", o.batch_connections, "Publishers in the batch phase");
  app.add_option("--latency-events", o.latency_events, "Events in the latency phase");
  app.add_option("--catchup-events", o.catchup_events,
                 "Events a stopped node catches up on in the replication phase");
  app.add_option("--partition-seconds", o.partition_seconds,
                 "How long node C is cut off from the hub in the replication phase");
  app.add_option("--group-wait-us", o.group_wait_us,
                 "fleetlet-streams' --group-wait-us (default: its own)");
  app.add_option("--streams-binary", streamsBinary(),
                 "The fleetlet-streams binary to measure (default: the one built with this)");
  app.add_flag("--skip-replication", o.skip_replication, "Leave out the replication phase");
  app.add_flag("--replication-only", o.replication_only,
               "Only the replication phase (no single/batch/latency comparison)");
  CLI11_PARSE(app, argc, argv);
  mosquitto_lib_init();

  std::printf(
      "bench_events: %d single-event publishers, %d x 100-event publishers, %.1f s "
      "each; %d subscribers x %d events for latency\n",
      o.single_connections, o.batch_connections, o.seconds, o.subscribers, o.latency_events);
  Figures s;
  Figures m;
  if (!o.replication_only) {
    // Rounds alternate the two servers, so a slow minute of the machine (or one of
    // mosquitto's own slow runs) moves one round, not the result.
    std::vector<Figures> streams_rounds;
    std::vector<Figures> mosquitto_rounds;
    for (int round = 1; round <= o.rounds; ++round) {
      streams_rounds.push_back(benchStreams(o));
      mosquitto_rounds.push_back(benchMosquitto(o));
      const Figures& a = streams_rounds.back();
      const Figures& b = mosquitto_rounds.back();
      if (o.rounds > 1) {
        std::printf(
            "round %d: single %.0f vs %.0f events/s (%.2fx); batches %.0f vs %.0f; subscriber "
            "p50 %.0f vs %.0f us, p99 %.0f vs %.0f us\n",
            round, a.single_eps, b.single_eps, b.single_eps > 0 ? a.single_eps / b.single_eps : 0,
            a.batch_eps, b.batch_eps, a.p50_us, b.p50_us, a.p99_us, b.p99_us);
        (void)std::fflush(stdout);
      }
    }
    s = medianOf(streams_rounds);
    m = medianOf(mosquitto_rounds);
    if (o.rounds > 1) std::printf("medians of %d rounds:\n", o.rounds);
  }
  mosquitto_lib_cleanup();
  ReplicationFigures r;
  if (!o.skip_replication) r = benchReplication(o);

  auto ratio = [](double a, double b) { return b > 0 ? a / b : 0.0; };
  if (!o.replication_only) {
    std::printf("\n%-36s %18s %18s %10s\n", "", "fleetlet-streams", "mosquitto", "ratio");
    std::printf("%-36s %18.0f %18.0f %9.2fx\n", "publish, single events (events/s)", s.single_eps,
                m.single_eps, ratio(s.single_eps, m.single_eps));
    std::printf("%-36s %18.0f %18.0f %9.2fx\n", "publish, 100-event batches (events/s)",
                s.batch_eps, m.batch_eps, ratio(s.batch_eps, m.batch_eps));
    std::printf("%-36s %18.0f %18.0f %9.2fx\n", "publish->subscriber p50 (us)", s.p50_us, m.p50_us,
                ratio(s.p50_us, m.p50_us));
    std::printf("%-36s %18.0f %18.0f %9.2fx\n", "publish->subscriber p99 (us)", s.p99_us, m.p99_us,
                ratio(s.p99_us, m.p99_us));
    std::printf("%-36s %18.0f %18.0f %9.2fx\n", "publish->ack p50 (us)", s.ack_p50_us, m.ack_p50_us,
                ratio(s.ack_p50_us, m.ack_p50_us));
    std::printf("%-36s %18.0f %18.0f %9.2fx\n", "publish->ack p99 (us)", s.ack_p99_us, m.ack_p99_us,
                ratio(s.ack_p99_us, m.ack_p99_us));
    std::printf("%-36s %18zu %18zu\n", "latency samples (10 subscribers)", s.latency_samples,
                m.latency_samples);
    std::printf("%-36s %18.1f %18.1f %9.2fx\n", "server peak RSS (MiB)", s.rss_mib, m.rss_mib,
                ratio(s.rss_mib, m.rss_mib));
    std::printf(
        "single events: %.1f events per group commit, %.0f us between commits, %.0f us in the "
        "transaction (BEGIN..COMMIT), %.0f us waiting for more requests; %.1f events per "
        "fdatasync of the WAL, %.0f us per fdatasync\n",
        s.single_events_per_commit, s.single_commit_us, s.single_write_us, s.single_group_wait_us,
        s.single_events_per_sync, s.single_sync_us);
  }
  if (!o.skip_replication) {
    std::printf(
        "\nreplication through a one-server hub, 3 nodes (A publishes, B and C subscribe):\n"
        "%-36s %18.0f   (target < 20000)\n%-36s %18.0f\n%-36s %18zu\n"
        "%-36s %18.0f   (target >= 20000; %lld events published during a %.0f s partition)\n"
        "%-36s %18.2f\n%-36s %18.2f\n%-36s %18.0f\n",
        "A publish->B/C subscriber p99 (us)", r.p99_us, "A publish->B/C subscriber p50 (us)",
        r.p50_us, "latency samples", r.samples, "catch-up (events/s)", r.catchup_eps,
        static_cast<long long>(r.catchup_events), r.partition_s, "  heal -> caught up (s)",
        r.catchup_s, "  heal -> first event on C (s)", r.first_event_s,
        "  first event -> caught up (events/s)", r.ingest_eps);
    std::printf("node C after the catch-up: %s\n", r.c_status.c_str());
  }
  std::printf(
      "\nfleetlet-streams acks each publish after fdatasync of its WAL (group commit, "
      "overlapping syncs);\nmosquitto acks QoS 1 from memory and saves its persistence file "
      "every second (autosave_interval 1).\nTargets (DESIGN.md): >= 50k events/s "
      "batched; single events >= 1.0x mosquitto; subscriber p99 < 2 ms.\n");
  return 0;
}
