// bench_pull: image pull time of `fleetletctl image pull` against `ctr images pull`, from the
// same loopback registry into the same private containerd, in one run.
//
// Each round pulls the ~50 MB, 3-layer test image with both tools, alternating which goes
// first. Between pulls the image is removed with a synchronous garbage collection and the
// content store is checked empty, so every pull fetches and unpacks everything afresh.
// Prints each time, the medians and the ratio fleetlet/ctr (target: <= 1.0).
#include <fmt/format.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <chrono>
#include <vector>

#include "os/child_process.h"
#include "support/local_registry.h"
#include "support/private_containerd.h"
#include "support/test_images.h"

namespace {

using fleetlet::runCommand;
using fleetlet::testing::LocalRegistry;
using fleetlet::testing::PrivateContainerd;
using fleetlet::testing::TestImages;

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  size_t n = v.size();
  return n % 2 == 1 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

// Times one command; exits the benchmark when it fails.
double timed(const std::vector<std::string>& argv) {
  auto start = std::chrono::steady_clock::now();
  auto out = runCommand(argv);
  double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  if (!out || !out->status.success()) {
    fmt::print(stderr, "bench_pull: {} failed: {}\n", argv[0],
               out ? out->err : out.error().message());
    std::exit(1);
  }
  return secs;
}

void clean(const PrivateContainerd& ctrd, const std::string& ns, const std::string& image) {
  if (auto rm = ctrd.ctrOk({"images", "rm", "--sync", image}, ns); !rm) {
    fmt::print(stderr, "bench_pull: removing {}: {}\n", image, rm.error().message());
    std::exit(1);
  }
  auto content = ctrd.ctrOk({"content", "ls", "-q"}, ns);
  if (!content || !content->empty()) {
    fmt::print(stderr, "bench_pull: content store of {} not empty after removal\n", ns);
    std::exit(1);
  }
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"Pull benchmark: fleetletctl image pull vs ctr images pull (loopback registry)"};
  int rounds = 5;
  app.add_option("-r,--rounds", rounds, "Pulls per tool")->capture_default_str();
  CLI11_PARSE(app, argc, argv);

  auto registry = LocalRegistry::start();
  if (!registry) {
    fmt::print(stderr, "bench_pull: {}\n", registry.error().message());
    return 1;
  }
  auto images = TestImages::push(*registry);
  if (!images) {
    fmt::print(stderr, "bench_pull: {}\n", images.error().message());
    return 1;
  }
  auto ctrd = PrivateContainerd::start();
  if (!ctrd) {
    fmt::print(stderr, "bench_pull: {}\n", ctrd.error().message());
    return 1;
  }
  const std::string& image = images->big();
  const std::string ns = "bench";
  std::vector<std::string> ours = {FLEETLETCTL_PATH, "--address", ctrd->socket().string(), "-n", ns,
                                   "image",          "pull",      "--plain-http",          image};
  std::vector<std::string> theirs = {"ctr",    "--address", ctrd->socket().string(), "-n", ns,
                                     "images", "pull",      "--plain-http",          image};
  // One untimed pull each warms the registry's and the kernel's caches.
  timed(ours);
  clean(*ctrd, ns, image);
  timed(theirs);
  clean(*ctrd, ns, image);

  std::vector<double> ours_s;
  std::vector<double> theirs_s;
  fmt::print("pull benchmark: {} (~50 MB, busybox + 3 x 16 MiB random layers), {} rounds\n", image,
             rounds);
  for (int i = 0; i < rounds; ++i) {
    bool ours_first = i % 2 == 0;
    for (int k = 0; k < 2; ++k) {
      bool run_ours = (k == 0) == ours_first;
      double s = timed(run_ours ? ours : theirs);
      (run_ours ? ours_s : theirs_s).push_back(s);
      clean(*ctrd, ns, image);
    }
    fmt::print("  round {}: fleetletctl {:.3f} s, ctr {:.3f} s\n", i + 1, ours_s.back(),
               theirs_s.back());
  }
  double a = median(ours_s);
  double b = median(theirs_s);
  fmt::print("median: fleetletctl image pull {:.3f} s, ctr images pull {:.3f} s\n", a, b);
  fmt::print("ratio fleetletctl/ctr: {:.2f} (target <= 1.0)\n", a / b);
  return 0;
}
