// Upgrading the Debian package while apps run: fleetletd installed from this tree's package
// (dpkg-deb -x into a throwaway root) runs an app in a private containerd; the package's files
// are then replaced as dpkg replaces them (a new file renamed over each old one) and fleetletd
// is restarted as systemd restarts it with KillMode=process (SIGTERM to fleetletd alone). The
// app's task must be the same process, adopted by the new fleetletd, not replaced.
#include "../agent/fleetletd/fleetletd_fixture.h"

namespace fleetlet::fleetletd_testing {
namespace {

class PackageUpgradeTest : public FleetletdTest {
 protected:
  // Builds the package of this build tree with CPack and unpacks it into `root`.
  void installPackage(const std::filesystem::path& root) {
    auto out = dir_->path() / "cpack";
    auto cpack =
        runCommand({"cpack", "-G", "DEB", "--config",
                    std::string(PACKAGE_BUILD_DIR) + "/CPackConfig.cmake", "-B", out.string()});
    ASSERT_TRUE(cpack) << cpack.error().message();
    ASSERT_EQ(cpack->status.exit_code, 0) << cpack->out << cpack->err;
    std::filesystem::path deb;
    for (const auto& e : std::filesystem::directory_iterator(out)) {
      if (e.path().extension() == ".deb") deb = e.path();
    }
    ASSERT_FALSE(deb.empty()) << cpack->out;
    auto unpack = runCommand({"dpkg-deb", "-x", deb.string(), root.string()});
    ASSERT_TRUE(unpack) << unpack.error().message();
    ASSERT_EQ(unpack->status.exit_code, 0) << unpack->err;
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
  const auto root = dir_->path() / "root";
  ASSERT_NO_FATAL_FAILURE(installPackage(root));
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

  // dpkg unpacks the new version beside each file and renames it over the old one.
  const auto next = dir_->path() / "next";
  ASSERT_NO_FATAL_FAILURE(installPackage(next));
  for (const auto& e : std::filesystem::recursive_directory_iterator(next)) {
    if (!e.is_regular_file()) continue;
    auto target = root / std::filesystem::relative(e.path(), next);
    std::filesystem::create_directories(target.parent_path());
    std::filesystem::rename(e.path(), target);
  }
  stopAgent();  // systemctl restart with KillMode=process: fleetletd alone gets SIGTERM
  EXPECT_TRUE(runningTasks().contains(id)) << "the app stopped with the agent";
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
