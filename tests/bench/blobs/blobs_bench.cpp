// Blob upload/download throughput of fleetlet-blobs against Debian's nginx in the same run:
// nginx serves the same file (GET, sendfile) and accepts it by WebDAV PUT. Downloads are
// measured from disk (both files dropped from the page cache first) and from the page cache.
// Prints MB/s, fleetlet/nginx ratios and peak RSS. Not a test: no assertion on time.
//
//   blobs_bench [--mib N] [--rounds R] [--direct-io true|false] [--binary PATH]
//   (default 1024 MiB, 2 rounds, best round counts; --direct-io is passed to fleetlet-blobs;
//   --binary runs another build of fleetlet-blobs, e.g. to compare before/after a change)
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/sendfile.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "json/json.h"
#include "os/child_process.h"
#include "support/blob_client.h"
#include "support/temp_dir.h"

namespace {

using namespace fleetlet;
using namespace fleetlet::blobtest;
namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

struct Fatal {
  std::string what;
};

// Unwinds to main() so the nginx and fleetlet-blobs children are stopped and the temp dir
// removed on the way.
[[noreturn]] void die(const std::string& what) { throw Fatal{what}; }

template <typename T>
T check(Result<T> r, const char* what) {
  if (!r) die(std::string(what) + ": " + r.error().message());
  return std::move(*r);
}

void checkStatus(const Status& s, const char* what) {
  if (!s) die(std::string(what) + ": " + s.error().message());
}

uint16_t freePort() {
  UniqueFd fd(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::bind(fd.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) die("bind");
  socklen_t len = sizeof addr;
  ::getsockname(fd.get(), reinterpret_cast<sockaddr*>(&addr), &len);
  return ntohs(addr.sin_port);
}

void sendFileBody(RawConnection& c, const fs::path& file, uint64_t bytes) {
  UniqueFd fd(::open(file.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd) die("open " + file.string());
  off_t off = 0;
  while (static_cast<uint64_t>(off) < bytes) {
    ssize_t n = ::sendfile(c.fd(), fd.get(), &off, bytes - static_cast<uint64_t>(off));
    if (n <= 0) die("sendfile to the server failed");
  }
}

// Seconds for one upload: `head` + file + `tail`, then the response.
double timedUpload(uint16_t port, const std::string& head, const fs::path& file, uint64_t bytes,
                   const std::string& tail, int expect_status, std::string* body = nullptr) {
  auto start = Clock::now();
  RawConnection c = check(RawConnection::connect(port), "connect");
  checkStatus(c.sendAll(head), "send head");
  sendFileBody(c, file, bytes);
  checkStatus(c.sendAll(tail), "send tail");
  RawResponse r = check(c.readResponse(), "upload response");
  double seconds = std::chrono::duration<double>(Clock::now() - start).count();
  if (r.status != expect_status) die(fmt::format("upload answered {}: {}", r.status, r.body));
  if (body) *body = r.body;
  return seconds;
}

double timedDownload(uint16_t port, const std::string& path, uint64_t bytes) {
  auto start = Clock::now();
  RawConnection c = check(RawConnection::connect(port), "connect");
  checkStatus(
      c.sendAll("GET " + path + " HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"),
      "send");
  uint64_t got = 0;
  RawResponse r = check(c.readResponse([&](std::string_view d) { got += d.size(); }), "download");
  double seconds = std::chrono::duration<double>(Clock::now() - start).count();
  if (r.status != 200 || got != bytes)
    die(fmt::format("download: {} with {} bytes", r.status, got));
  return seconds;
}

// Drops `file` from the page cache (it is clean: both servers fsync or only read it).
void evict(const fs::path& file) {
  UniqueFd fd(::open(file.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd || ::fdatasync(fd.get()) != 0 ||
      ::posix_fadvise(fd.get(), 0, 0, POSIX_FADV_DONTNEED) != 0)
    die("evict " + file.string());
}

std::string get(uint16_t port, const std::string& path) {
  RawConnection c = check(RawConnection::connect(port), "connect");
  checkStatus(
      c.sendAll("GET " + path + " HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"),
      "send");
  RawResponse r = check(c.readResponse(), "response");
  if (r.status != 200) die(fmt::format("GET {}: {}", path, r.status));
  return r.body;
}

uint64_t peakKib(pid_t pid) {
  auto rss = readRss(pid);
  return rss ? rss->peak_kib : 0;
}

// CPU seconds (user + system) a process has used so far.
double cpuSeconds(pid_t pid) {
  std::ifstream stat(fmt::format("/proc/{}/stat", pid));
  std::string text((std::istreambuf_iterator<char>(stat)), {});
  std::size_t close = text.rfind(')');  // the command name may hold spaces
  if (close == std::string::npos) return 0;
  std::istringstream fields(text.substr(close + 2));
  std::string skip;
  for (int i = 3; i < 14; ++i) fields >> skip;  // state .. cmajflt
  double utime = 0, stime = 0;
  fields >> utime >> stime;
  return (utime + stime) / static_cast<double>(::sysconf(_SC_CLK_TCK));
}

// nginx's worker: the master's child.
pid_t nginxWorker(pid_t master) {
  std::ifstream children(fmt::format("/proc/{}/task/{}/children", master, master));
  pid_t worker = 0;
  children >> worker;
  return worker;
}

}  // namespace

int run(int argc, char** argv) {
  uint64_t mib = 1024;
  int rounds = 2;
  std::string direct_io;  // fleetlet-blobs' default unless given
  fs::path binary = blobBinary();
  for (int i = 1; i + 1 < argc; i += 2) {
    std::string flag = argv[i];
    if (flag == "--mib") mib = std::stoull(argv[i + 1]);
    if (flag == "--rounds") rounds = std::stoi(argv[i + 1]);
    if (flag == "--direct-io") direct_io = argv[i + 1];
    if (flag == "--binary") binary = argv[i + 1];
  }
  const uint64_t bytes = mib << 20;
  if (std::system("command -v nginx >/dev/null") != 0) {
    die("nginx is not installed (hack/install-deps.sh installs nginx-core)");
  }
  auto dir = check(testing::TempDir::create("fleetlet-bench-blobs"), "temp dir");
  fs::path file = dir.path() / "blob.bin";
  {
    std::ofstream out(file, std::ios::binary);
    std::vector<char> buf(1 << 20);
    for (uint64_t off = 0; off < bytes; off += buf.size()) {
      fillPattern(off, buf.data(), buf.size(), 99);
      out.write(buf.data(), static_cast<std::streamsize>(buf.size()));
    }
  }

  // nginx: WebDAV PUT into www/, GET from www/ with sendfile.
  fs::create_directories(dir.path() / "www" / "dav");
  fs::create_directories(dir.path() / "nginx-tmp");
  fs::copy_file(file, dir.path() / "www" / "served.bin");
  uint16_t nginx_port = freePort();
  {
    std::ofstream conf(dir.path() / "nginx.conf");
    conf << fmt::format(R"(user root;
worker_processes 1;
pid {0}/nginx.pid;
error_log {0}/nginx-error.log warn;
events {{ worker_connections 64; }}
http {{
  access_log off;
  sendfile on;
  tcp_nopush on;
  client_max_body_size 0;
  client_body_temp_path {0}/nginx-tmp;
  server {{
    listen 127.0.0.1:{1};
    root {0}/www;
    location /dav/ {{ dav_methods PUT DELETE; create_full_put_path on; }}
  }}
}}
)",
                        dir.path().string(), nginx_port);
  }
  ChildProcess nginx = check(
      ChildProcess::spawn(
          {.argv = {"nginx", "-c", (dir.path() / "nginx.conf").string(), "-g", "daemon off;"}}),
      "start nginx");
  for (int i = 0; i < 200 && !RawConnection::connect(nginx_port); ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }

  std::vector<std::string> blob_args = {"--data-dir",   (dir.path() / "blobs").string(),
                                        "--events-url", "http://127.0.0.1:1",
                                        "--log-level",  "info"};
  if (!direct_io.empty()) {
    blob_args.push_back("--direct-io");
    blob_args.push_back(direct_io);
  }
  BlobProcess blobs = check(BlobProcess::start(binary, blob_args, dir.path() / "blobs.log"),
                            "start fleetlet-blobs");

  const std::string boundary = "----fleetletBench";
  const std::string meta = R"({"semantics":"bench","retentionPolicy":{"policy":"keepForever"}})";
  const std::string pre = "--" + boundary +
                          "\r\nContent-Disposition: form-data; name=\"metadata\"\r\n\r\n" + meta +
                          "\r\n--" + boundary +
                          "\r\nContent-Disposition: form-data; name=\"blob\"; "
                          "filename=\"blob.bin\"\r\nContent-Type: application/octet-stream\r\n\r\n";
  const std::string post = "\r\n--" + boundary + "--\r\n";

  double best_up_blobs = 1e9, best_up_nginx = 1e9, best_up_nginx_synced = 1e9,
         best_cold_blobs = 1e9, best_cold_nginx = 1e9, best_down_blobs = 1e9, best_down_nginx = 1e9;
  auto mbps = [&](double s) { return static_cast<double>(bytes) / s / 1e6; };
  // CPU seconds per GiB uploaded, of the server process (kernel writeback threads excluded).
  double best_cpu_blobs = 1e9, best_cpu_nginx = 1e9;
  const double gib = static_cast<double>(bytes) / (1 << 30);
  const pid_t nginx_worker = nginxWorker(nginx.pid());
  std::string handle;
  for (int round = 0; round < rounds; ++round) {
    // Distinct content per round, so no round is stored by dedupe.
    {
      UniqueFd fd(::open(file.c_str(), O_WRONLY | O_CLOEXEC));
      uint64_t marker = 0x5eed0000ULL + static_cast<uint64_t>(round);
      if (!fd || ::pwrite(fd.get(), &marker, sizeof marker, 0) != sizeof marker) die("pwrite");
    }
    std::string body;
    double cpu_before = cpuSeconds(blobs.pid());
    double up =
        timedUpload(blobs.port(),
                    fmt::format("POST /api/v1/blobs HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: "
                                "multipart/form-data; boundary={}\r\nContent-Length: {}\r\n\r\n{}",
                                boundary, pre.size() + bytes + post.size(), pre),
                    file, bytes, post, 201, &body);
    best_up_blobs = std::min(best_up_blobs, up);
    best_cpu_blobs = std::min(best_cpu_blobs, (cpuSeconds(blobs.pid()) - cpu_before) / gib);
    handle = check(parseJson(body, "upload response"), "handle")["handle"].get<std::string>();

    cpu_before = cpuSeconds(nginx_worker);
    double nginx_up = timedUpload(
        nginx_port,
        fmt::format("PUT /dav/round{}.bin HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: "
                    "{}\r\n\r\n",
                    round, bytes),
        file, bytes, "", 201);
    best_up_nginx = std::min(best_up_nginx, nginx_up);
    best_cpu_nginx = std::min(best_cpu_nginx, (cpuSeconds(nginx_worker) - cpu_before) / gib);
    // The same durability as fleetlet-blobs' 201: nginx's file made durable afterwards.
    auto sync_start = Clock::now();
    {
      fs::path put = dir.path() / "www" / "dav" / fmt::format("round{}.bin", round);
      UniqueFd fd(::open(put.c_str(), O_RDONLY | O_CLOEXEC));
      if (!fd || ::fdatasync(fd.get()) != 0) die("fdatasync " + put.string());
    }
    double synced = nginx_up + std::chrono::duration<double>(Clock::now() - sync_start).count();
    best_up_nginx_synced = std::min(best_up_nginx_synced, synced);

    std::printf(
        "  round %d: upload fleetlet-blobs %.1f MB/s, nginx PUT %.1f, nginx PUT+fsync %.1f\n",
        round + 1, mbps(up), mbps(nginx_up), mbps(synced));

    // From disk: both files dropped from the page cache first.
    std::string sha =
        check(parseJson(get(blobs.port(), "/api/v1/blobs/" + handle + "/metadata"), "metadata"),
              "metadata")["sha256"]
            .get<std::string>();
    evict(dir.path() / "blobs" / "blobs" / sha);
    evict(dir.path() / "www" / "served.bin");
    best_cold_blobs =
        std::min(best_cold_blobs, timedDownload(blobs.port(), "/api/v1/blobs/" + handle, bytes));
    best_cold_nginx = std::min(best_cold_nginx, timedDownload(nginx_port, "/served.bin", bytes));
    // From the page cache: both files were just read.
    best_down_blobs =
        std::min(best_down_blobs, timedDownload(blobs.port(), "/api/v1/blobs/" + handle, bytes));
    best_down_nginx = std::min(best_down_nginx, timedDownload(nginx_port, "/served.bin", bytes));
  }

  uint64_t blobs_rss = peakKib(blobs.pid());
  uint64_t nginx_rss = peakKib(nginxWorker(nginx.pid()));
  std::printf("blobs benchmark: %llu MiB over loopback, best of %d rounds%s\n",
              static_cast<unsigned long long>(mib), rounds,
              direct_io.empty() ? "" : (", --direct-io " + direct_io).c_str());
  std::printf("  upload    fleetlet-blobs %8.1f MB/s   nginx WebDAV PUT %8.1f MB/s   ratio %.2f\n",
              mbps(best_up_blobs), mbps(best_up_nginx), best_up_nginx / best_up_blobs);
  std::printf("            (equal durability)         nginx PUT+fsync  %8.1f MB/s   ratio %.2f\n",
              mbps(best_up_nginx_synced), best_up_nginx_synced / best_up_blobs);
  std::printf(
      "  download  fleetlet-blobs %8.1f MB/s   nginx GET        %8.1f MB/s   ratio %.2f"
      "   (from disk)\n",
      mbps(best_cold_blobs), mbps(best_cold_nginx), best_cold_nginx / best_cold_blobs);
  std::printf(
      "  download  fleetlet-blobs %8.1f MB/s   nginx GET        %8.1f MB/s   ratio %.2f"
      "   (page cache)\n",
      mbps(best_down_blobs), mbps(best_down_nginx), best_down_nginx / best_down_blobs);
  std::printf(
      "  upload CPU fleetlet-blobs %6.2f s/GiB  nginx worker     %6.2f s/GiB  (server "
      "process; nginx: PUT only)\n",
      best_cpu_blobs, best_cpu_nginx);
  std::printf("  peak RSS  fleetlet-blobs %8.1f MiB    nginx worker     %8.1f MiB\n",
              static_cast<double>(blobs_rss) / 1024, static_cast<double>(nginx_rss) / 1024);
  std::printf(
      "  (fleetlet-blobs answers 201 after sha256 and fsync; nginx's PUT does neither, so the\n"
      "   plain PUT ratio is bounded by disk vs page-cache speed)\n");
  nginx.stop(SIGQUIT, std::chrono::seconds(3));
  return 0;
}

int main(int argc, char** argv) {
  try {
    return run(argc, argv);
  } catch (const Fatal& fatal) {
    std::fprintf(stderr, "blobs_bench: %s\n", fatal.what.c_str());
    return 1;
  }
}
