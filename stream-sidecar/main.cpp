// fleetlet-streams: the event service (:4454) and console service (:4457) of a node.
#include <malloc.h>
#include <signal.h>
#include <spdlog/spdlog.h>

#include <CLI/CLI.hpp>
#include <charconv>
#include <cstdio>
#include <fstream>

#include "log/log.h"
#include "service/service.h"
#include "version/version.h"

namespace {

// "ADDR:PORT" or "[V6]:PORT".
bool splitAddress(const std::string& text, std::string& address, std::uint16_t& port) {
  auto colon = text.rfind(':');
  if (colon == std::string::npos) return false;
  address = text.substr(0, colon);
  if (address.size() >= 2 && address.front() == '[' && address.back() == ']') {
    address = address.substr(1, address.size() - 2);
  }
  const char* begin = text.data() + colon + 1;
  const char* end = text.data() + text.size();
  auto [ptr, ec] = std::from_chars(begin, end, port);
  return ec == std::errc() && ptr == end && !address.empty();
}

}  // namespace

int main(int argc, char** argv) {
  // glibc gives each thread that allocates concurrently its own arena (up to 8 per core), and
  // raises its mmap threshold after a large block is freed, so that later large blocks come
  // from (and stay in) the arenas. A fixed threshold keeps event-sized buffers (query pages,
  // 1 MiB payloads) in their own mappings, returned to the kernel when freed; two arenas
  // suffice for two io/pool threads. What still piles up is trimmed (MemoryTrimmer).
  // Before any thread starts.
  mallopt(M_ARENA_MAX, 2);
  mallopt(M_MMAP_THRESHOLD, 256 * 1024);
  CLI::App app{"fleetlet-streams: event and console services (ActyxOS v1 API)"};
  app.set_version_flag("--version", fleetlet::versionLine("fleetlet-streams"));
  fleetlet::streams::ServiceOptions options;
  std::string data_dir = "/var/lib/fleetlet/streams";
  std::string listen = "127.0.0.1:4454";
  std::string console_listen = "127.0.0.1:4457";
  std::string log_level = "info";
  std::uint64_t header_timeout_ms = 30000;
  std::uint64_t heartbeat_ms = 30000;
  app.add_option("--data-dir", data_dir, "Directory for events.db and logs.db");
  app.add_option("--listen", listen, "Event service address ADDR:PORT (port 0: any)");
  app.add_option("--console-listen", console_listen, "Console service address ADDR:PORT");
  app.add_option("--source-id", options.source_id,
                 "This node's source id (default: generated once, kept in the data dir)");
  app.add_option("--max-body", options.events.max_body, "Largest request body in bytes");
  app.add_option("--subscriber-queue", options.events.subscriber_queue.events,
                 "Events a live subscriber may fall behind before it is cut off");
  app.add_option("--subscriber-queue-bytes", options.events.subscriber_queue.bytes,
                 "Bytes of events a live subscriber may fall behind before it is cut off");
  app.add_option("--page-bytes", options.events.page.bytes,
                 "Bytes of events a query or catch-up reads from storage at a time");
  app.add_option("--log-retention-bytes", options.log_app_cap_bytes,
                 "Console loop-buffer size per app in bytes");
  app.add_option("--log-retention-total-bytes", options.log_total_cap_bytes,
                 "Console loop-buffer size of all apps together in bytes");
  app.add_option("--header-timeout-ms", header_timeout_ms,
                 "Time a client has to send a complete request header");
  app.add_option("--heartbeat-ms", heartbeat_ms, "WebSocket heartbeat interval");
  std::string handoff_socket;
  app.add_option("--handoff-socket", handoff_socket,
                 "Unix socket on which fleetletd hands over per-app listeners");
  app.add_option("--log-level", log_level, "trace|debug|info|warn|error");
  std::uint64_t group_wait_us = 0;
  app.add_option("--group-wait-us", group_wait_us,
                 "Longest wait of a group commit for concurrent publishers' next requests "
                 "(0: commit at once)")
      ->check(CLI::Range(0, 10000));
  int sync_threads = 2;
  app.add_option("--sync-threads", sync_threads,
                 "Writer threads of the event log: fdatasyncs that may run at once (each "
                 "acknowledges every publish committed before it began)")
      ->check(CLI::Range(1, 64));
  // Site replication (docs/replication.md).
  auto& rep = options.replication;
  std::string nats_urls;
  std::string password_file;
  std::uint64_t connect_timeout_ms = 5000;
  app.add_option("--nats", nats_urls,
                 "Site hub URLs nats://HOST:PORT[,...]: replicate the event log (off when unset)");
  app.add_option("--site", rep.site, "Site name: streams FL_<site>_<source>, subjects fl.<site>.*");
  app.add_option("--nats-user", rep.user, "Hub user name");
  app.add_option("--nats-password-file", password_file, "File holding the hub user's password");
  app.add_option("--nats-creds", rep.credentials_file, "NATS credentials file (JWT and seed)");
  app.add_option("--nats-tls-ca", rep.tls_ca, "CA file to verify the hub with (turns TLS on)");
  app.add_option("--nats-tls-cert", rep.tls_cert, "Client certificate for the hub (PEM)");
  app.add_option("--nats-tls-key", rep.tls_key, "Key of --nats-tls-cert (PEM)");
  app.add_option("--stream-max-bytes", rep.stream_max_bytes,
                 "Size limit of this node's stream on the hub when created (-1: none)");
  app.add_option("--stream-max-msgs", rep.stream_max_msgs,
                 "Message limit of this node's stream on the hub when created (-1: none)");
  app.add_option("--stream-replicas", rep.stream_replicas, "1, or 3 on a 3-server hub");
  app.add_option("--replication-max-event-bytes", rep.max_event_bytes,
                 "Largest replicated message accepted from the hub");
  app.add_option("--hub-connect-timeout-ms", connect_timeout_ms,
                 "How long start-up waits for the hub before serving without it");
  CLI11_PARSE(app, argc, argv);
  options.group_wait = std::chrono::microseconds(group_wait_us);
  options.sync_threads = sync_threads;

  if (auto s = fleetlet::setupLogging("streams", log_level); !s) {
    (void)std::fprintf(stderr, "fleetlet-streams: %s\n", s.error().message().c_str());
    return 2;
  }
  if (!splitAddress(listen, options.events_address, options.events_port) ||
      !splitAddress(console_listen, options.console_address, options.console_port)) {
    (void)std::fprintf(stderr, "fleetlet-streams: addresses must look like 127.0.0.1:4454\n");
    return 2;
  }
  if (!nats_urls.empty()) {
    auto urls = fleetlet::streams::splitHubUrls(nats_urls);
    if (!urls) {
      (void)std::fprintf(stderr, "fleetlet-streams: %s\n", urls.error().message().c_str());
      return 2;
    }
    rep.urls = std::move(*urls);
    rep.connect_timeout = std::chrono::milliseconds(connect_timeout_ms);
    if (!password_file.empty()) {
      std::ifstream in(password_file);
      if (!in || !std::getline(in, rep.password)) {
        (void)std::fprintf(stderr, "fleetlet-streams: --nats-password-file %s: cannot read it\n",
                           password_file.c_str());
        return 2;
      }
    }
  }
  options.data_dir = data_dir;
  options.handoff_socket = handoff_socket;
  options.console.max_body = options.events.max_body;
  options.header_timeout = std::chrono::milliseconds(header_timeout_ms);
  options.events.heartbeat_interval = std::chrono::milliseconds(heartbeat_ms);

  // Block the stop signals before any thread starts, then wait for one here.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);

  auto service = fleetlet::streams::Service::start(std::move(options));
  if (!service) {
    spdlog::error("fleetlet-streams: {}", service.error().describe());
    return 1;
  }
  int signal = 0;
  sigwait(&signals, &signal);
  spdlog::info("[streams] signal {}, stopping", signal);
  (*service)->stop();
  return 0;
}
