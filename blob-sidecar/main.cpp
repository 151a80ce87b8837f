// fleetlet-blobs: the blob service (docs/blobs.md, shared/api/blobs-v1.md).
#include <malloc.h>
#include <signal.h>
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <fstream>

#include "log/log.h"
#include "service/blob_service.h"
#include "version/version.h"

namespace {

int fatal(const fleetlet::Error& error) {
  spdlog::error("fleetlet-blobs: {}", error.describe());
  return 1;
}

}  // namespace

int main(int argc, char** argv) {
  using namespace fleetlet;
  // As in fleetlet-streams: glibc's per-thread arenas and its rising mmap threshold would keep
  // the 1 MiB upload batches and staging chunks of finished uploads in the heap. A fixed
  // threshold maps them on their own (returned when freed); two arenas serve the io and pool
  // threads. Before any thread starts.
  mallopt(M_ARENA_MAX, 2);
  mallopt(M_MMAP_THRESHOLD, 256 * 1024);
  CLI::App app{
      "fleetlet-blobs — the blob service of a fleetlet node.\n\n"
      "  fleetlet-blobs --data-dir /var/lib/fleetlet/blobs --listen 127.0.0.1:4455\n"};
  app.set_version_flag("--version", fleetlet::versionLine("fleetlet-blobs"));
  service::ServiceOptions options;
  std::string data_dir, max_blob_size = "0", quota = "0", log_level = "info";
  int64_t collect_ms = options.collect_interval.count();
  app.add_option("--data-dir", data_dir, "where blobs and their index live")->required();
  app.add_option("--listen", options.listen, "host listener ADDRESS:PORT (port 0: any)")
      ->capture_default_str();
  app.add_option("--events-url", options.events_url,
                 "base URL of the event service receiving metadata events (http:// only)")
      ->capture_default_str();
  app.add_option("--upload-concurrency", options.concurrent_uploads,
                 "uploads that read their bodies at the same time; more wait their turn (each "
                 "keeps up to 4 MiB of buffers resident)")
      ->capture_default_str()
      ->check(CLI::Range(1, 1024));
  app.add_option("--max-blob-size", max_blob_size, "largest blob, e.g. 4Gi (0: unlimited)")
      ->capture_default_str();
  app.add_option("--quota", quota, "bytes of content the store may hold (0: unlimited)")
      ->capture_default_str();
  app.add_option("--source,--source-id", options.source,
                 "this node's id, the `source` of blobs (and its name on the site hub)")
      ->capture_default_str();
  app.add_option("--collect-interval-ms", collect_ms, "how often expired blobs are deleted")
      ->capture_default_str();
  app.add_option("--direct-io", options.direct_io,
                 "write uploads with O_DIRECT where the filesystem supports it (false: through "
                 "the page cache)")
      ->capture_default_str();
  std::string handoff_socket;
  app.add_option("--handoff-socket", handoff_socket,
                 "unix socket where the agent hands over each app's listener");
  app.add_option("--log-level", log_level, "trace|debug|info|warn|error")->capture_default_str();
  // Blobs from other nodes, through the site hub fleetlet-streams replicates through.
  std::string nats_urls, password_file;
  remote::HubOptions hub;
  int64_t find_timeout_ms = options.fetch.find_timeout.count();
  int64_t chunk_timeout_ms = options.fetch.chunk_timeout.count();
  std::string chunk_bytes = std::to_string(options.fetch.chunk_bytes);
  app.add_option("--nats", nats_urls,
                 "site hub URLs nats://HOST:PORT[,...]: serve blobs to and fetch blobs from the "
                 "site's other nodes (off when unset)");
  app.add_option("--site", hub.site, "site name (as fleetlet-streams' --site)")
      ->capture_default_str();
  app.add_option("--nats-user", hub.user, "hub user name");
  app.add_option("--nats-password-file", password_file, "file holding the hub user's password");
  app.add_option("--nats-creds", hub.credentials_file, "NATS credentials file (JWT and seed)");
  app.add_option("--nats-tls-ca", hub.tls_ca, "CA file to verify the hub with (turns TLS on)");
  app.add_option("--nats-tls-cert", hub.tls_cert, "client certificate for the hub (PEM)");
  app.add_option("--nats-tls-key", hub.tls_key, "key of --nats-tls-cert (PEM)");
  app.add_option("--remote-find-timeout-ms", find_timeout_ms,
                 "how long to wait for a node holding a blob (then 404)")
      ->capture_default_str();
  app.add_option("--remote-chunk-timeout-ms", chunk_timeout_ms,
                 "how long to wait for one chunk from a holder (then 502)")
      ->capture_default_str();
  app.add_option("--remote-chunk-size", chunk_bytes,
                 "bytes per chunk request, e.g. 512Ki (at most the hub's max_payload)")
      ->capture_default_str();
  CLI11_PARSE(app, argc, argv);
  if (auto st = setupLogging("fleetlet-blobs", log_level); !st) return fatal(st.error());

  options.data_dir = data_dir;
  if (!handoff_socket.empty()) options.handoff_socket = handoff_socket;
  options.collect_interval = std::chrono::milliseconds(collect_ms);
  auto max = service::parseByteSize(max_blob_size);
  if (!max) return fatal(max.error().wrap("--max-blob-size"));
  options.max_blob_size = *max;
  auto quota_bytes = service::parseByteSize(quota);
  if (!quota_bytes) return fatal(quota_bytes.error().wrap("--quota"));
  options.quota = *quota_bytes;
  if (!nats_urls.empty()) {
    auto urls = remote::splitUrls(nats_urls);
    if (!urls) return fatal(urls.error());
    hub.urls = std::move(*urls);
    if (!password_file.empty()) {
      std::ifstream in(password_file);
      if (!in || !std::getline(in, hub.password)) {
        return fatal(Error(ErrorCode::kInvalidArgument,
                           fmt::format("--nats-password-file {}: cannot read it", password_file)));
      }
    }
    auto chunk = service::parseByteSize(chunk_bytes);
    if (!chunk) return fatal(chunk.error().wrap("--remote-chunk-size"));
    if (*chunk == 0 || find_timeout_ms <= 0 || chunk_timeout_ms <= 0) {
      return fatal(Error(ErrorCode::kInvalidArgument,
                         "--remote-chunk-size and the --remote-*-timeout-ms must be positive"));
    }
    options.fetch.chunk_bytes = *chunk;
    options.fetch.find_timeout = std::chrono::milliseconds(find_timeout_ms);
    options.fetch.chunk_timeout = std::chrono::milliseconds(chunk_timeout_ms);
    options.hub = std::move(hub);
  }

  // Block the stop signals before any thread starts, so only sigwait below receives them.
  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGINT);
  sigaddset(&stop_signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);
  (void)::signal(SIGPIPE, SIG_IGN);

  auto service =
      service::BlobService::start(std::move(options), std::make_unique<store::SystemClock>());
  if (!service) return fatal(service.error());
  for (const http::ListenerInfo& listener : (*service)->listeners()) {
    spdlog::info("fleetlet-blobs: listening on {}", listener.address);
  }
  int received = 0;
  sigwait(&stop_signals, &received);
  spdlog::info("fleetlet-blobs: signal {}, stopping", received);
  (*service)->stop();
  return 0;
}
