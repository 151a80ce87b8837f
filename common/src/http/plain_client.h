#pragma once
// fleetlet::http::sendPlain: one HTTP/1.1 request over plain TCP, on Boost.Beast — for calls
// between a node's own services on loopback (fleetlet-blobs posting metadata events to
// fleetlet-streams).
//
// Why not http::Client: libcurl loads its whole TLS and auth tree (GnuTLS, OpenSSL's SSL
// initialisation, Kerberos, LDAP, p11-kit, …) on first use, ~4 MiB of resident memory that a
// sidecar with a 10 MiB budget (DESIGN.md) cannot spend on a loopback POST. Beast is already in
// every service (the server).
//
// Contract: `http://host[:port][/path]` URLs only (host: a name, an IPv4 address or a bracketed
// IPv6 one; port 80 when absent); anything else fails with kInvalidArgument naming the URL. A
// new connection per call, `Connection: close`; no proxies, redirects, TLS or cookies. The
// whole exchange (resolve, connect, write, read) must finish within `timeout`, else
// kUnavailable "timed out". A response body over `max_body` fails with kResourceExhausted;
// an HTTP error status is not an Error (it comes back in ClientResponse::status, as with
// Client). Thread-safe: every call has its own io_context. Blocks.

#include <chrono>
#include <cstddef>

#include "error/error.h"
#include "http/client.h"

namespace fleetlet::http {

struct PlainClientOptions {
  std::chrono::milliseconds timeout{15000};
  std::size_t max_body = std::size_t{1} * 1024 * 1024;
  std::string user_agent = "fleetlet/0.1";
};

Result<ClientResponse> sendPlain(const ClientRequest& request,
                                 const PlainClientOptions& options = {});

}  // namespace fleetlet::http
