#include "local_registry.h"

#include <arpa/inet.h>
#include <crypt.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <chrono>
#include <csignal>
#include <fstream>
#include <random>
#include <sstream>

#include "http/client.h"
#include "oci/digest.h"
#include "registry/auth.h"

namespace fleetlet::registry::testing {
namespace {

Result<std::string> bcryptHash(const std::string& password) {
  char salt[CRYPT_GENSALT_OUTPUT_SIZE];
  if (crypt_gensalt_rn("$2b$", 5, nullptr, 0, salt, sizeof(salt)) == nullptr) {
    return failErrno(errno, "crypt_gensalt_rn");
  }
  crypt_data data{};
  const char* hash = crypt_r(password.c_str(), salt, &data);
  if (hash == nullptr || hash[0] == '*') return fail(ErrorCode::kInternal, "crypt_r failed");
  return std::string(hash);
}

Status writeFile(const std::filesystem::path& path, const std::string& text) {
  std::ofstream out(path);
  out << text;
  if (!out) return fail(ErrorCode::kInternal, "cannot write {}", path.string());
  return {};
}

std::string lower(std::string s) {
  for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

}  // namespace

uint16_t freePort() {
  UniqueFd fd(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::bind(fd.get(), reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) return 0;
  socklen_t len = sizeof(addr);
  ::getsockname(fd.get(), reinterpret_cast<sockaddr*>(&addr), &len);
  return ntohs(addr.sin_port);
}

Result<std::unique_ptr<LocalRegistry>> LocalRegistry::start(LocalRegistryOptions options) {
  std::unique_ptr<LocalRegistry> r(new LocalRegistry());
  std::string tmpl = (std::filesystem::temp_directory_path() / "fleetlet-registry-XXXXXX").string();
  if (::mkdtemp(tmpl.data()) == nullptr) return failErrno(errno, "mkdtemp");
  r->dir_ = tmpl;
  r->storage_ = r->dir_ / "storage";
  std::filesystem::create_directories(r->storage_);
  uint16_t port = freePort();
  r->host_ = "127.0.0.1:" + std::to_string(port);

  std::string auth;
  if (options.htpasswd_user) {
    const auto& [user, password] = *options.htpasswd_user;
    FLEETLET_ASSIGN_OR_RETURN(std::string hash, bcryptHash(password));
    FLEETLET_RETURN_IF_ERROR(writeFile(r->dir_ / "htpasswd", user + ":" + hash + "\n"));
    auth = fmt::format("auth:\n  htpasswd:\n    realm: fleetlet-test\n    path: {}\n",
                       (r->dir_ / "htpasswd").string());
    r->authorization_ = basicAuthorization(user, password);
  }
  std::string config = fmt::format(
      "version: 0.1\n"
      "log:\n  level: error\n  accesslog:\n    disabled: true\n"
      "storage:\n  filesystem:\n    rootdirectory: {}\n  delete:\n    enabled: true\n"
      "http:\n  addr: {}\n  secret: fleetlet-test-secret\n"
      "{}",
      r->storage_.string(), r->host_, auth);
  FLEETLET_RETURN_IF_ERROR(writeFile(r->dir_ / "config.yml", config));

  SpawnOptions spawn;
  spawn.argv = {"docker-registry", "serve", (r->dir_ / "config.yml").string()};
  // If the test process dies without unwinding (crash, SIGKILL, ctest timeout), the registry
  // must not outlive it: setpriv makes the kernel kill it with its parent.
  if (std::filesystem::exists("/usr/bin/setpriv")) {
    spawn.argv.insert(spawn.argv.begin(), {"/usr/bin/setpriv", "--pdeathsig", "KILL", "--"});
  }
  spawn.stdout_path = r->dir_ / "registry.log";
  spawn.stderr_path = r->dir_ / "registry.log";
  FLEETLET_ASSIGN_OR_RETURN(ChildProcess child, ChildProcess::spawn(spawn));
  r->process_.emplace(std::move(child));

  http::Client client;
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
  while (true) {
    http::ClientRequest ping;
    ping.url = "http://" + r->host_ + "/v2/";
    auto response = client.send(ping);
    if (response && (response->status == 200 || response->status == 401)) break;
    if (auto exited = r->process_->poll()) {
      std::ifstream log(r->dir_ / "registry.log");
      std::ostringstream text_stream;
      text_stream << log.rdbuf();
      std::string text = text_stream.str();
      return fail(ErrorCode::kUnavailable, "docker-registry exited ({}): {}", exited->describe(),
                  text);
    }
    if (std::chrono::steady_clock::now() > deadline) {
      return fail(ErrorCode::kUnavailable, "docker-registry did not answer on {}", r->host_);
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  return r;
}

LocalRegistry::~LocalRegistry() {
  if (process_) process_->stop(SIGTERM, std::chrono::seconds(5));
  std::error_code ec;
  if (!dir_.empty()) std::filesystem::remove_all(dir_, ec);
}

Result<oci::Descriptor> LocalRegistry::pushBlob(const std::string& repo, const std::string& bytes,
                                                std::string media_type) {
  http::Client client;
  std::string digest = oci::digestOf(bytes);
  http::ClientRequest start;
  start.method = "POST";
  start.url = "http://" + host_ + "/v2/" + repo + "/blobs/uploads/";
  if (authorization_) start.headers.add("Authorization", *authorization_);
  FLEETLET_ASSIGN_OR_RETURN(http::ClientResponse started, client.send(start));
  auto location = started.headers.find("Location");
  if (started.status != 202 || !location) {
    return fail(ErrorCode::kInternal, "upload start: HTTP {}: {}", started.status, started.body);
  }
  std::string url = location->starts_with("/") ? "http://" + host_ + *location : *location;
  url += (url.find('?') == std::string::npos ? "?" : "&") + std::string("digest=") + digest;
  http::ClientRequest put;
  put.method = "PUT";
  put.url = url;
  put.body = bytes;
  put.headers.add("Content-Type", "application/octet-stream");
  if (authorization_) put.headers.add("Authorization", *authorization_);
  FLEETLET_ASSIGN_OR_RETURN(http::ClientResponse done, client.send(put));
  if (done.status != 201) {
    return fail(ErrorCode::kInternal, "upload finish: HTTP {}: {}", done.status, done.body);
  }
  return oci::Descriptor{std::move(media_type), digest, static_cast<int64_t>(bytes.size()),
                         std::nullopt,          {},     {}};
}

Result<oci::Descriptor> LocalRegistry::pushManifest(const std::string& repo, const std::string& tag,
                                                    const std::string& bytes,
                                                    std::string media_type) {
  http::Client client;
  http::ClientRequest put;
  put.method = "PUT";
  put.url = "http://" + host_ + "/v2/" + repo + "/manifests/" + tag;
  put.body = bytes;
  put.headers.add("Content-Type", media_type);
  if (authorization_) put.headers.add("Authorization", *authorization_);
  FLEETLET_ASSIGN_OR_RETURN(http::ClientResponse done, client.send(put));
  if (done.status != 201) {
    return fail(ErrorCode::kInternal, "manifest put: HTTP {}: {}", done.status, done.body);
  }
  return oci::Descriptor{std::move(media_type),
                         oci::digestOf(bytes),
                         static_cast<int64_t>(bytes.size()),
                         std::nullopt,
                         {},
                         {}};
}

std::filesystem::path LocalRegistry::blobDataPath(const std::string& digest) const {
  std::string hex = digest.substr(digest.find(':') + 1);
  return storage_ / "docker/registry/v2/blobs/sha256" / hex.substr(0, 2) / hex / "data";
}

ScriptedServer::ScriptedServer(Handler handler) : handler_(std::move(handler)) {
  listener_.reset(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ::bind(listener_.get(), reinterpret_cast<sockaddr*>(&addr), sizeof(addr));
  socklen_t len = sizeof(addr);
  ::getsockname(listener_.get(), reinterpret_cast<sockaddr*>(&addr), &len);
  port_ = ntohs(addr.sin_port);
  ::listen(listener_.get(), 16);
  thread_ = std::thread([this] { serve(); });
}

ScriptedServer::~ScriptedServer() {
  stopping_ = true;
  ::shutdown(listener_.get(), SHUT_RDWR);
  thread_.join();
}

std::vector<ScriptedRequest> ScriptedServer::requests() const {
  std::lock_guard lock(mutex_);
  return requests_;
}

std::string ScriptedServer::response(int status, std::string body,
                                     std::vector<std::pair<std::string, std::string>> headers) {
  std::string out = fmt::format("HTTP/1.1 {} X\r\nContent-Length: {}\r\nConnection: close\r\n",
                                status, body.size());
  for (const auto& [k, v] : headers) out += k + ": " + v + "\r\n";
  return out + "\r\n" + body;
}

void ScriptedServer::serve() {
  while (!stopping_) {
    UniqueFd conn(::accept4(listener_.get(), nullptr, nullptr, SOCK_CLOEXEC));
    if (!conn) {
      if (stopping_) return;
      continue;
    }
    std::string head;
    char buf[4096];
    while (head.find("\r\n\r\n") == std::string::npos) {
      ssize_t n = ::read(conn.get(), buf, sizeof(buf));
      if (n <= 0) break;
      head.append(buf, static_cast<size_t>(n));
    }
    ScriptedRequest request;
    size_t line_end = head.find("\r\n");
    std::string line = head.substr(0, line_end);
    size_t sp1 = line.find(' ');
    size_t sp2 = line.find(' ', sp1 + 1);
    if (sp1 == std::string::npos || sp2 == std::string::npos) continue;
    request.method = line.substr(0, sp1);
    request.target = line.substr(sp1 + 1, sp2 - sp1 - 1);
    size_t pos = line_end + 2;
    while (pos < head.size()) {
      size_t end = head.find("\r\n", pos);
      if (end == std::string::npos || end == pos) break;
      std::string h = head.substr(pos, end - pos);
      size_t colon = h.find(':');
      if (colon != std::string::npos) {
        std::string value = h.substr(colon + 1);
        while (!value.empty() && value.front() == ' ') value.erase(0, 1);
        request.headers[lower(h.substr(0, colon))] = value;
      }
      pos = end + 2;
    }
    {
      std::lock_guard lock(mutex_);
      requests_.push_back(request);
    }
    std::string answer = handler_(request);
    size_t written = 0;
    while (written < answer.size()) {
      ssize_t n =
          ::send(conn.get(), answer.data() + written, answer.size() - written, MSG_NOSIGNAL);
      if (n <= 0) break;
      written += static_cast<size_t>(n);
    }
  }
}

}  // namespace fleetlet::registry::testing
