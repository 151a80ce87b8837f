#include "http/plain_client.h"

// clang-format off
#include <utility>  // first: Boost 1.74's headers use std::exchange without including it
// clang-format on

#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http/error.hpp>
#include <boost/beast/http/parser.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/string_body.hpp>
#include <boost/beast/http/write.hpp>
#include <charconv>
#include <string>
#include <string_view>

namespace fleetlet::http {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
using tcp = asio::ip::tcp;

struct PlainTarget {
  std::string host;         // for the resolver: no brackets
  std::string port = "80";  // service name for the resolver
  std::string host_header;  // as written in the URL
  std::string path = "/";
};

Result<PlainTarget> parsePlainUrl(std::string_view url) {
  constexpr std::string_view kScheme = "http://";
  auto bad = [&](std::string_view why) {
    return fail(ErrorCode::kInvalidArgument, "plain http client: {} in URL \"{}\"", why, url);
  };
  if (!url.starts_with(kScheme)) return bad("only http:// is supported");
  std::string_view rest = url.substr(kScheme.size());
  auto slash = rest.find_first_of("/?#");
  std::string_view authority = rest.substr(0, slash);
  PlainTarget target;
  if (slash != std::string_view::npos) {
    std::string_view path = rest.substr(slash);
    if (auto hash = path.find('#'); hash != std::string_view::npos) path = path.substr(0, hash);
    target.path = path.starts_with('/') ? std::string(path) : "/" + std::string(path);
  }
  if (authority.empty()) return bad("no host");
  if (authority.find('@') != std::string_view::npos) return bad("user info is not supported");
  target.host_header = std::string(authority);
  std::string_view port;
  if (authority.front() == '[') {
    auto close = authority.find(']');
    if (close == std::string_view::npos) return bad("unclosed '[' in the host");
    target.host = std::string(authority.substr(1, close - 1));
    std::string_view after = authority.substr(close + 1);
    if (!after.empty()) {
      if (after.front() != ':') return bad("junk after the IPv6 address");
      port = after.substr(1);
    }
  } else {
    auto colon = authority.find(':');
    target.host = std::string(authority.substr(0, colon));
    if (colon != std::string_view::npos) port = authority.substr(colon + 1);
  }
  if (target.host.empty()) return bad("no host");
  if (!port.empty()) {
    unsigned value = 0;
    auto [end, ec] = std::from_chars(port.data(), port.data() + port.size(), value);
    if (ec != std::errc() || end != port.data() + port.size() || value == 0 || value > 65535) {
      return bad("bad port");
    }
    target.port = std::string(port);
  }
  return target;
}

}  // namespace

Result<ClientResponse> sendPlain(const ClientRequest& request, const PlainClientOptions& options) {
  FLEETLET_ASSIGN_OR_RETURN(PlainTarget target, parsePlainUrl(request.url));
  beast::http::verb verb = beast::http::string_to_verb(request.method);
  if (verb == beast::http::verb::unknown) {
    return fail(ErrorCode::kInvalidArgument, "plain http client: unknown method \"{}\"",
                request.method);
  }

  beast::http::request<beast::http::string_body> req{verb, target.path, 11};
  req.set(beast::http::field::host, target.host_header);
  req.set(beast::http::field::user_agent, options.user_agent);
  req.set(beast::http::field::connection, "close");
  for (const auto& [name, value] : request.headers.all()) req.insert(name, value);
  if (request.range_start) {
    req.set(beast::http::field::range, fmt::format("bytes={}-", *request.range_start));
  }
  req.body() = request.body;
  req.prepare_payload();

  asio::io_context io;
  tcp::resolver resolver(io);
  beast::tcp_stream stream(io);
  beast::flat_buffer buffer;
  beast::http::response_parser<beast::http::string_body> parser;
  parser.body_limit(options.max_body);

  // One chain of handlers on this thread; `stage` names the step a failure or timeout hit.
  std::string_view stage = "resolve";
  beast::error_code failure;
  bool done = false;
  // Beast 1.74 checks body_limit against Content-Length only when the head arrives without
  // the body; a head and body in one segment slip past it. So the head is read first and its
  // length checked here, and the body's size once more at the end.
  auto tooLarge = [&](std::uint64_t bytes) {
    if (bytes <= options.max_body) return false;
    failure = beast::http::error::body_limit;
    return true;
  };
  auto onRead = [&](beast::error_code read_ec, std::size_t /*bytes*/) {
    failure = read_ec;
    done = !read_ec && !tooLarge(parser.get().body().size());
  };
  auto onHead = [&](beast::error_code head_ec, std::size_t /*bytes*/) {
    if (head_ec) {
      failure = head_ec;
      return;
    }
    if (auto length = parser.content_length(); length && tooLarge(*length)) return;
    beast::http::async_read(stream, buffer, parser, onRead);
  };
  auto onWrite = [&](beast::error_code write_ec, std::size_t /*bytes*/) {
    if (write_ec) {
      failure = write_ec;
      return;
    }
    stage = "read";
    beast::http::async_read_header(stream, buffer, parser, onHead);
  };
  auto onConnect = [&](beast::error_code connect_ec, const tcp::endpoint& /*peer*/) {
    if (connect_ec) {
      failure = connect_ec;
      return;
    }
    stage = "write";
    beast::http::async_write(stream, req, onWrite);
  };
  auto onResolve = [&](beast::error_code resolve_ec, const tcp::resolver::results_type& found) {
    if (resolve_ec) {
      failure = resolve_ec;
      return;
    }
    stage = "connect";
    stream.async_connect(found, onConnect);
  };
  resolver.async_resolve(target.host, target.port, onResolve);
  io.run_for(options.timeout);

  std::string what = fmt::format("{} {}", request.method, request.url);
  if (!done && !failure) {
    return fail(ErrorCode::kUnavailable, "{}: {}: timed out after {} ms", what, stage,
                options.timeout.count());
  }
  if (failure == beast::http::error::body_limit) {
    return fail(ErrorCode::kResourceExhausted, "{}: response body over {} bytes", what,
                options.max_body);
  }
  if (failure) {
    return fail(ErrorCode::kUnavailable, "{}: {}: {}", what, stage, failure.message());
  }
  beast::error_code ignored;
  stream.socket().shutdown(tcp::socket::shutdown_both, ignored);

  auto& answer = parser.get();
  ClientResponse response;
  response.status = answer.result_int();
  for (const auto& field : answer) {
    response.headers.add(std::string(field.name_string()), std::string(field.value()));
  }
  response.body = std::move(answer.body());
  response.effective_url = request.url;
  return response;
}

}  // namespace fleetlet::http
