#include "remote/hub_connection.h"

#include <fmt/ranges.h>
#include <nats/nats.h>

#include "remote/protocol.h"

namespace fleetlet::remote {
namespace {

Status natsCheck(natsStatus s, std::string_view what) {
  if (s == NATS_OK) return Status();
  return fail(ErrorCode::kInvalidArgument, "{}: {}", what, natsStatus_GetText(s));
}

void onConnected(natsConnection*, void*) {}

}  // namespace

Result<std::vector<std::string>> splitUrls(std::string_view text) {
  std::vector<std::string> urls;
  for (std::size_t start = 0; start <= text.size();) {
    std::size_t comma = std::min(text.find(',', start), text.size());
    if (comma == start) {
      return fail(ErrorCode::kInvalidArgument, "--nats '{}': empty URL in the list", text);
    }
    urls.emplace_back(text.substr(start, comma - start));
    start = comma + 1;
  }
  return urls;
}

Result<std::unique_ptr<HubConnection>> HubConnection::connect(const HubOptions& options) {
  FLEETLET_RETURN_IF_ERROR(checkSite(options.site));
  if (auto node = checkNode(options.node); !node) {
    return std::unexpected(node.error().wrap("--source (the node's name on the site)"));
  }
  if (options.urls.empty()) return fail(ErrorCode::kInvalidArgument, "--nats: no hub URL");
  std::unique_ptr<HubConnection> hub(new HubConnection(options));
  natsOptions* raw = nullptr;
  if (natsStatus s = natsOptions_Create(&raw); s != NATS_OK) {
    return fail(ErrorCode::kUnavailable, "nats options: {}", natsStatus_GetText(s));
  }
  std::unique_ptr<natsOptions, decltype(&natsOptions_Destroy)> opts(raw, natsOptions_Destroy);
  std::vector<const char*> urls;
  urls.reserve(options.urls.size());
  for (const std::string& url : options.urls) urls.push_back(url.c_str());
  std::string name = fmt::format("fleetlet-blobs {} {}", options.site, options.node);
  FLEETLET_RETURN_IF_ERROR(natsCheck(
      natsOptions_SetServers(opts.get(), urls.data(), static_cast<int>(urls.size())), "--nats"));
  FLEETLET_RETURN_IF_ERROR(natsCheck(natsOptions_SetName(opts.get(), name.c_str()), "name"));
  FLEETLET_RETURN_IF_ERROR(natsCheck(natsOptions_SetMaxReconnect(opts.get(), -1), "reconnect"));
  FLEETLET_RETURN_IF_ERROR(natsCheck(natsOptions_SetReconnectWait(opts.get(), 250), "reconnect"));
  FLEETLET_RETURN_IF_ERROR(natsCheck(natsOptions_SetTimeout(opts.get(), 2000), "timeout"));
  // A node never answers its own find requests.
  FLEETLET_RETURN_IF_ERROR(natsCheck(natsOptions_SetNoEcho(opts.get(), true), "no echo"));
  // With a connected callback (even one that does nothing) nats.c connects in the
  // background; without one natsConnection_Connect blocks until the hub is up.
  FLEETLET_RETURN_IF_ERROR(natsCheck(
      natsOptions_SetRetryOnFailedConnect(opts.get(), true, onConnected, nullptr), "retry"));
  if (!options.user.empty()) {
    FLEETLET_RETURN_IF_ERROR(natsCheck(
        natsOptions_SetUserInfo(opts.get(), options.user.c_str(), options.password.c_str()),
        "--nats-user"));
  }
  if (!options.credentials_file.empty()) {
    FLEETLET_RETURN_IF_ERROR(natsCheck(natsOptions_SetUserCredentialsFromFiles(
                                           opts.get(), options.credentials_file.c_str(), nullptr),
                                       "--nats-creds"));
  }
  if (!options.tls_ca.empty()) {
    FLEETLET_RETURN_IF_ERROR(natsCheck(natsOptions_SetSecure(opts.get(), true), "--nats-tls-ca"));
    FLEETLET_RETURN_IF_ERROR(
        natsCheck(natsOptions_LoadCATrustedCertificates(opts.get(), options.tls_ca.c_str()),
                  "--nats-tls-ca"));
  }
  if (!options.tls_cert.empty()) {
    FLEETLET_RETURN_IF_ERROR(
        natsCheck(natsOptions_LoadCertificatesChain(opts.get(), options.tls_cert.c_str(),
                                                    options.tls_key.c_str()),
                  "--nats-tls-cert/--nats-tls-key"));
  }
  natsStatus s = natsConnection_Connect(&hub->nc_, opts.get());
  if (s != NATS_OK && s != NATS_NOT_YET_CONNECTED) {
    return fail(ErrorCode::kUnavailable, "connect to the site hub {}: {}",
                fmt::join(options.urls, ","), natsStatus_GetText(s));
  }
  return hub;
}

HubConnection::~HubConnection() {
  if (nc_ != nullptr) natsConnection_Destroy(nc_);
}

bool HubConnection::connected() const {
  return natsConnection_Status(nc_) == NATS_CONN_STATUS_CONNECTED;
}

int64_t HubConnection::maxPayload() const { return natsConnection_GetMaxPayload(nc_); }

}  // namespace fleetlet::remote
