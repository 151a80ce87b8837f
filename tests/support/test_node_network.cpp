#include "support/test_node_network.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <unistd.h>

#include <sstream>

#include "json/json.h"
#include "netns/netns.h"
#include "os/child_process.h"
#include "os/unique_fd.h"
#include "support/private_containerd.h"

namespace fleetlet::testing {
namespace {

Result<std::string> inNode(const std::filesystem::path& node, std::vector<std::string> argv) {
  argv.insert(argv.begin(), {"nsenter", "--net=" + node.string()});
  FLEETLET_ASSIGN_OR_RETURN(CommandOutput out, runCommand(argv));
  if (!out.status.success()) return fail(ErrorCode::kInternal, "{}", out.err);
  return out.out;
}

}  // namespace

Result<TestNodeNetwork> TestNodeNetwork::create(const std::filesystem::path& dir) {
  const std::string name = PrivateContainerd::uniqueId("fln") + "-node";
  FLEETLET_ASSIGN_OR_RETURN(auto node, netns::NamedNetns::create(name));
  TestNodeNetwork out(node.release(), dir / "netns", dir / "cni-conf");
  std::error_code ec;
  std::filesystem::create_directories(out.netns_dir_, ec);
  std::filesystem::create_directories(out.conf_dir_, ec);
  if (ec) return failErrno(ec.value(), "create {}", out.netns_dir_.string());
  return out;
}

TestNodeNetwork::TestNodeNetwork(TestNodeNetwork&& other) noexcept
    : node_(std::exchange(other.node_, {})),
      netns_dir_(std::exchange(other.netns_dir_, {})),
      conf_dir_(std::exchange(other.conf_dir_, {})) {}

TestNodeNetwork::~TestNodeNetwork() { cleanUp(); }

void TestNodeNetwork::cleanUp() {
  if (!netns_dir_.empty()) {
    std::error_code ec;
    for (const auto& pin : std::filesystem::directory_iterator(netns_dir_, ec)) {
      (void)netns::NamedNetns::remove(pin.path());
    }
    // fleetletd made the directory a shared mount point (NamedNetns::create).
    ::umount2(netns_dir_.c_str(), MNT_DETACH);
  }
  if (!node_.empty()) (void)netns::NamedNetns::remove(node_);
}

std::vector<std::string> TestNodeNetwork::flags() const {
  return {"--cni-netns",    node_.string(),     "--netns-dir",   netns_dir_.string(),
          "--cni-conf-dir", conf_dir_.string(), "--cni-bin-dir", "/usr/lib/cni"};
}

std::set<std::string> TestNodeNetwork::pinnedApps() const {
  std::set<std::string> out;
  std::error_code ec;
  for (const auto& pin : std::filesystem::directory_iterator(netns_dir_, ec)) {
    auto name = pin.path().filename().string();
    if (name.starts_with("fleetlet-")) out.insert(name.substr(9));
  }
  return out;
}

std::set<std::string> TestNodeNetwork::nodeLinks() const {
  std::set<std::string> out;
  auto listing = inNode(node_, {"ip", "-o", "link", "show"});
  if (!listing) return out;
  std::istringstream lines(*listing);
  for (std::string line; std::getline(lines, line);) {
    auto a = line.find(": ");
    auto b = line.find_first_of(":@", a + 2);
    if (a != std::string::npos && b != std::string::npos) out.insert(line.substr(a + 2, b - a - 2));
  }
  return out;
}

std::set<std::string> TestNodeNetwork::leases(const std::filesystem::path& ipam_dir) {
  std::set<std::string> out;
  std::error_code ec;
  for (const auto& f : std::filesystem::recursive_directory_iterator(ipam_dir, ec)) {
    auto name = f.path().filename().string();
    in6_addr any{};
    if (::inet_pton(AF_INET, name.c_str(), &any) == 1 ||
        ::inet_pton(AF_INET6, name.c_str(), &any) == 1) {
      out.insert(name);
    }
  }
  return out;
}

std::set<std::string> TestNodeNetwork::nftChains() const {
  std::set<std::string> out;
  auto listing = inNode(node_, {"nft", "-j", "list", "table", "inet", "fleetlet"});
  if (!listing) return out;
  auto doc = parseJson(*listing, "nft");
  if (!doc || !doc->contains("nftables")) return out;
  for (const auto& item : (*doc)["nftables"]) {
    if (item.contains("chain")) out.insert(item["chain"].value("name", ""));
  }
  return out;
}

std::string TestNodeNetwork::appAddress(const std::string& app) const {
  auto listing =
      inNode(netns_dir_ / ("fleetlet-" + app), {"ip", "-o", "-4", "addr", "show", "eth0"});
  if (!listing) return "";
  std::istringstream fields(*listing);
  for (std::string word; fields >> word;) {
    if (word == "inet" && fields >> word) return word.substr(0, word.find('/'));
  }
  return "";
}

bool TestNodeNetwork::canConnect(const std::filesystem::path& netns, const std::string& address,
                                 uint16_t port) {
  bool connected = false;
  auto ran = netns::runInNetns(netns, [&] {
    UniqueFd sock(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0));
    if (!sock) return;
    sockaddr_in to{};
    to.sin_family = AF_INET;
    to.sin_port = htons(port);
    ::inet_pton(AF_INET, address.c_str(), &to.sin_addr);
    int rc = ::connect(sock.get(), reinterpret_cast<sockaddr*>(&to), sizeof(to));
    if (rc != 0 && errno != EINPROGRESS) return;
    pollfd pfd{sock.get(), POLLOUT, 0};
    if (::poll(&pfd, 1, 5000) != 1) return;
    int err = 0;
    socklen_t len = sizeof(err);
    ::getsockopt(sock.get(), SOL_SOCKET, SO_ERROR, &err, &len);
    connected = err == 0;
  });
  return ran.has_value() && connected;
}

}  // namespace fleetlet::testing
