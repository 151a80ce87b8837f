// Upgrading the Debian package while apps run: fleetletd installed from the previous version's
// package (dpkg-deb -x into a throwaway root) runs an app in a private containerd; the new
// version's files then replace the old ones as dpkg replaces them (a new file renamed over each
// old one) and fleetletd is restarted as systemd restarts it with KillMode=process (SIGTERM to
// fleetletd alone). The app's task must be the same process, adopted by the new fleetletd.
//
// The packages: $FLEETLET_PREVIOUS_PACKAGE_DEB and $FLEETLET_PACKAGE_DEB (hack/test.sh builds
// both Release from this tree, the previous one numbered 0.0.1). Without them the test packs this
// build tree and upgrades it to itself, and says so.
#include <cstdlib>
#include <iostream>
#include <string_view>

#include "../agent/fleetletd/fleetletd_fixture.h"

namespace fleetlet::fleetletd_testing {
namespace {

class PackageUpgradeTest : public FleetletdTest {
 protected:
  // The private containerd finds the installed package's containerd-shim-fleetlet-v1 (a real
  // install: /usr/bin, on containerd's PATH); containerd looks it up when it starts a shim.
  std::filesystem::path shimDirectory() const override { return dir_->path() / "root/usr/bin"; }

  // The .deb named by the environment variable `variable`, else CPack of this build tree.
  void packageFrom(const char* variable, std::filesystem::path& deb) {
    if (const char* named = std::getenv(variable); named != nullptr && *named != '\0') {
      deb = named;
      ASSERT_TRUE(std::filesystem::is_regular_file(deb)) << variable << "=" << named;
      return;
    }
    std::cout << variable << " is not set: packing this build tree\n";
    auto out = dir_->path() / "cpack";
    std::filesystem::remove_all(out);
    auto cpack =
        runCommand({"cpack", "-G", "DEB", "--config",
                    std::string(PACKAGE_BUILD_DIR) + "/CPackConfig.cmake", "-B", out.string()});
    ASSERT_TRUE(cpack) << cpack.error().message();
    ASSERT_EQ(cpack->status.exit_code, 0) << cpack->out << cpack->err;
    deb.clear();
    for (const auto& e : std::filesystem::directory_iterator(out)) {
      // fleetlet_<version>_<arch>.deb, not the fleetlet-kiosk package CPack makes beside it.
      const auto name = e.path().filename().string();
      if (e.path().extension() == ".deb" && name.starts_with("fleetlet_")) deb = e.path();
    }
    ASSERT_FALSE(deb.empty()) << cpack->out;
    auto moved = dir_->path() / (std::string(variable) + ".deb");
    std::filesystem::rename(deb, moved);
    deb = moved;
  }

  // Unpacks `deb` into `root` (dpkg-deb -x) and returns the package's version.
  std::string install(const std::filesystem::path& deb, const std::filesystem::path& root) {
    auto unpack = runCommand({"dpkg-deb", "-x", deb.string(), root.string()});
    EXPECT_TRUE(unpack && unpack->status.exit_code == 0)
        << (unpack ? unpack->err : unpack.error().message());
    auto field = runCommand({"dpkg-deb", "--field", deb.string(), "Version"});
    EXPECT_TRUE(field && field->status.exit_code == 0);
    return field ? std::string(trimmed(field->out)) : std::string();
  }

  // What the installed fleetletd answers to --version.
  static std::string versionOf(const std::filesystem::path& root) {
    auto out = runCommand({(root / "usr/bin/fleetletd").string(), "--version"});
    return out ? std::string(trimmed(out->out)) : out.error().message();
  }

  static std::string_view trimmed(std::string_view s) {
    while (!s.empty() && (s.back() == '\n' || s.back() == ' ')) s.remove_suffix(1);
    return s;
  }

  // The flags an installed fleetletd needs here: its logger and plugin from the root (a real
  // install finds them at /usr/libexec/fleetlet, the defaults).
  std::vector<std::string> installedFlags(const std::filesystem::path& root) const {
    return {"--logger",          (root / "usr/libexec/fleetlet/fleetlet-logger").string(),
            "--cni-bin-dir",     (root / "usr/libexec/fleetlet/cni").string(),
            "--system-manifest", "none"};
  }
};

TEST_F(PackageUpgradeTest, AppsKeepRunningAndTheNewAgentAdoptsThem) {
  std::filesystem::path previous_deb, deb;
  ASSERT_NO_FATAL_FAILURE(packageFrom("FLEETLET_PREVIOUS_PACKAGE_DEB", previous_deb));
  ASSERT_NO_FATAL_FAILURE(packageFrom("FLEETLET_PACKAGE_DEB", deb));
  const auto root = dir_->path() / "root";
  const auto previous = install(previous_deb, root);
  ASSERT_FALSE(HasFailure());
  EXPECT_EQ(versionOf(root), "fleetletd " + previous);
  agent_binary_ = (root / "usr/bin/fleetletd").string();
  startAgent(installedFlags(root));
  apply(manifest(1, busyboxApp("a", "sleep 1000")));
  ASSERT_TRUE(waitRunning({"a"})) << agentLog();
  const auto id = containerOf("a");
  Json before;
  ASSERT_TRUE(testing::waitFor(
      [&] {
        before = apiApps()["a"];
        return before.value("pid", 0) != 0;
      },
      30s))
      << before.dump();
  if (containerRuntime() == "io.containerd.fleetlet.v1") {
    // The task's parent is the package's shim (container mode: the subreaper runc's child
    // was reparented to).
    std::ifstream status("/proc/" + std::to_string(before.value("pid", 0)) + "/status");
    int ppid = 0;
    for (std::string line; std::getline(status, line);) {
      if (line.starts_with("PPid:")) ppid = std::stoi(line.substr(5));
    }
    std::error_code ec;
    EXPECT_EQ(std::filesystem::read_symlink("/proc/" + std::to_string(ppid) + "/exe", ec),
              root / "usr/bin/containerd-shim-fleetlet-v1");
  }

  // dpkg unpacks the new version beside each file and renames it over the old one.
  const auto next = dir_->path() / "next";
  const auto version = install(deb, next);
  ASSERT_FALSE(HasFailure());
  if (std::getenv("FLEETLET_PREVIOUS_PACKAGE_DEB") != nullptr) {
    EXPECT_NE(version, previous) << "the upgrade must change the version";
  }
  for (const auto& e : std::filesystem::recursive_directory_iterator(next)) {
    if (!e.is_regular_file()) continue;
    auto target = root / std::filesystem::relative(e.path(), next);
    std::filesystem::create_directories(target.parent_path());
    std::filesystem::rename(e.path(), target);
  }
  stopAgent();  // systemctl restart with KillMode=process: fleetletd alone gets SIGTERM
  EXPECT_TRUE(runningTasks().contains(id)) << "the app stopped with the agent";
  EXPECT_EQ(versionOf(root), "fleetletd " + version) << "the new fleetletd is installed";
  startAgent(installedFlags(root));

  Json after;
  ASSERT_TRUE(testing::waitFor(
      [&] {
        auto apps = apiApps();
        if (!apps.contains("a")) return false;
        after = apps["a"];
        return after.value("state", "") == "running";
      },
      30s))
      << after.dump() << agentLog();
  EXPECT_EQ(after.value("containerId", ""), id) << after.dump();
  EXPECT_EQ(after.value("pid", 0), before.value("pid", 0)) << after.dump();
  EXPECT_EQ(after.value("restarts", -1), before.value("restarts", -2)) << after.dump();
  EXPECT_EQ(containers(), std::set<std::string>{id});
}

}  // namespace
}  // namespace fleetlet::fleetletd_testing
