#include "core/sandbox_diagnosis.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

namespace fleetlet::webview {
namespace {

using ::testing::AllOf;
using ::testing::HasSubstr;
using ::testing::Not;

SandboxFacts failing(std::string probe_error) {
  SandboxFacts f;
  f.max_user_namespaces = 15000;
  f.probe_error = std::move(probe_error);
  return f;
}

TEST(SandboxDiagnosisTest, RecognisesWebKitsSandboxedLaunchFailuresOnly) {
  EXPECT_TRUE(isSandboxLaunchFailure(
      "readPIDFromPeer: Unexpected short read from PID socket. (This usually means the auxiliary "
      "process crashed immediately. Investigate that instead!)"));
  EXPECT_TRUE(isSandboxLaunchFailure(
      "Unable to spawn a new child process: Failed to spawn child process “/usr/bin/bwrap” (No "
      "such file or directory)"));
  EXPECT_FALSE(isSandboxLaunchFailure(
      "Unable to spawn a new child process: Failed to spawn child process "
      "“/usr/lib/x86_64-linux-gnu/webkit2gtk-4.1/WebKitNetworkProcess” (No such file or "
      "directory)"));
  EXPECT_FALSE(isSandboxLaunchFailure("Failed to create GBM device"));
}

TEST(SandboxDiagnosisTest, NamesAMissingOrUnexecutableBubblewrap) {
  SandboxFacts missing = failing("");
  missing.bwrap_exists = false;
  missing.bwrap_executable = false;
  EXPECT_THAT(explainSandboxFailure(missing, "Unable to spawn"),
              AllOf(HasSubstr("bubblewrap is not installed (/usr/bin/bwrap is missing)"),
                    HasSubstr("apt-get install bubblewrap"), HasSubstr("No web content is shown")));
  SandboxFacts noexec = failing("");
  noexec.bwrap_executable = false;
  EXPECT_THAT(explainSandboxFailure(noexec, ""), HasSubstr("/usr/bin/bwrap cannot be executed"));
}

TEST(SandboxDiagnosisTest, RootWithoutCapSysAdminIsToldWhichCapabilitiesToGrant) {
  SandboxFacts f = failing("bwrap: Creating new namespace failed: Operation not permitted");
  parseProcStatus("Name:\tx\nCapEff:\t000001fffedfffff\nSeccomp:\t0\n", f);
  EXPECT_FALSE(f.cap_sys_admin);
  EXPECT_TRUE(f.cap_net_admin);
  EXPECT_THAT(explainSandboxFailure(f, ""),
              AllOf(HasSubstr("(bwrap: Creating new namespace failed: Operation not permitted)"),
                    HasSubstr("runs as root without CAP_SYS_ADMIN,"),
                    HasSubstr("give the kiosk CAP_SYS_ADMIN and CAP_NET_ADMIN")));
  parseProcStatus("CapEff:\t0000000000000000\n", f);
  EXPECT_THAT(explainSandboxFailure(f, ""), HasSubstr("without CAP_SYS_ADMIN and CAP_NET_ADMIN,"));
}

TEST(SandboxDiagnosisTest, AnUnprivilegedKioskIsToldWhichSysctlForbidsUserNamespaces) {
  SandboxFacts f = failing(
      "bwrap: Creating new namespace failed: nesting depth or /proc/sys/user/max_*_namespaces "
      "exceeded (ENOSPC)");
  f.uid = 1000;
  f.max_user_namespaces = 0;
  EXPECT_THAT(explainSandboxFailure(f, ""),
              AllOf(HasSubstr("runs as uid 1000"),
                    HasSubstr("user.max_user_namespaces is 0 on "
                              "this node"),
                    HasSubstr("sysctl -w user.max_user_namespaces=15000")));
  f.in_user_namespace = true;
  EXPECT_THAT(explainSandboxFailure(f, ""), HasSubstr("in the user namespace (container)"));

  f.max_user_namespaces = 15000;
  f.unprivileged_userns_clone = 0;
  EXPECT_THAT(explainSandboxFailure(f, ""), HasSubstr("kernel.unprivileged_userns_clone is 0"));
  f.unprivileged_userns_clone = 1;
  f.apparmor_restrict_unprivileged_userns = 1;
  EXPECT_THAT(
      explainSandboxFailure(f, ""),
      HasSubstr("AppArmor restricts them (kernel.apparmor_restrict_unprivileged_userns=1)"));
}

TEST(SandboxDiagnosisTest, AContainersSeccompFilterOrUserNamespaceIsNamedWhenNothingElseIs) {
  SandboxFacts f = failing("bwrap: Creating new namespace failed: Operation not permitted");
  parseProcStatus("CapEff:\t000001ffffffffff\nSeccomp:\t2\n", f);
  EXPECT_THAT(explainSandboxFailure(f, ""), HasSubstr("seccomp filter"));
  f.seccomp_filter = false;
  f.in_user_namespace = !isInitialUidMap("         0       1000          1\n");
  EXPECT_THAT(explainSandboxFailure(f, ""), HasSubstr("runs in a user namespace (a container)"));
  EXPECT_TRUE(isInitialUidMap("         0          0 4294967295\n"));
}

TEST(SandboxDiagnosisTest, AWorkingBubblewrapPointsAtWebKitsOwnMessage) {
  SandboxFacts f;
  f.probe_ok = true;
  EXPECT_THAT(explainSandboxFailure(f, "readPIDFromPeer: Unexpected short read"),
              AllOf(HasSubstr("(readPIDFromPeer: Unexpected short read)"),
                    HasSubstr("works on its own"), Not(HasSubstr("Fix:"))));
}

}  // namespace
}  // namespace fleetlet::webview
