#include "shim/spec.h"

#include <gtest/gtest.h>
#include <sys/resource.h>

namespace fleetlet::shim {
namespace {

const char* kCtrSpec = R"({
  "ociVersion": "1.0.2-dev",
  "process": {"user": {"uid": 0, "gid": 0}, "args": ["/bin/sh", "-c", "true"],
              "env": ["PATH=/usr/bin:/bin"], "cwd": "/",
              "capabilities": {"bounding": ["CAP_CHOWN", "CAP_KILL"]},
              "rlimits": [{"type": "RLIMIT_NOFILE", "hard": 1024, "soft": 1024}],
              "noNewPrivileges": true},
  "root": {"path": "/"},
  "mounts": [{"destination": "/proc", "type": "proc", "source": "proc"},
             {"destination": "/data", "type": "bind", "source": "/srv/data",
              "options": ["rbind", "ro"]}],
  "annotations": {"io.fleetlet.sandbox": "contained",
                  "io.fleetlet.sandbox.state-dir": "/var/lib/app"},
  "linux": {"cgroupsPath": "/shimtest/app",
            "resources": {"memory": {"limit": 16777216}, "cpu": {"shares": 512, "quota": 50000,
                          "period": 100000}, "pids": {"limit": 32}},
            "namespaces": [{"type": "network", "path": "/var/run/netns/app"}]}
})";

TEST(ShimSpecTest, ReadsWhatNativeModeHonours) {
  auto spec = parseSpec(kCtrSpec, "/bundle");
  ASSERT_TRUE(spec) << spec.error().message();
  EXPECT_TRUE(spec->native());
  EXPECT_EQ(spec->args, (std::vector<std::string>{"/bin/sh", "-c", "true"}));
  EXPECT_TRUE(spec->no_new_privileges);
  EXPECT_EQ(spec->bounding_caps, (std::vector<std::string>{"CAP_CHOWN", "CAP_KILL"}));
  ASSERT_EQ(spec->rlimits.size(), 1u);
  EXPECT_EQ(spec->rlimits[0].resource, RLIMIT_NOFILE);
  // Only bind mounts: proc, sysfs and the like belong to containers.
  ASSERT_EQ(spec->binds.size(), 1u);
  EXPECT_EQ(spec->binds[0].destination, "/data");
  EXPECT_TRUE(spec->binds[0].read_only);
  EXPECT_EQ(spec->level, SandboxLevel::kContained);
  EXPECT_EQ(spec->state_dir, std::filesystem::path("/var/lib/app"));
  EXPECT_EQ(spec->cgroups_path, "/shimtest/app");
  EXPECT_EQ(spec->resources.memory_limit, 16777216);
  EXPECT_EQ(spec->resources.cpu_shares, 512u);
  EXPECT_EQ(spec->resources.cpu_quota, 50000);
  EXPECT_EQ(spec->resources.pids_limit, 32);
  EXPECT_EQ(spec->netns_path, "/var/run/netns/app");
}

TEST(ShimSpecTest, AnImageRootIsNotNative) {
  auto spec = parseSpec(R"({"root": {"path": "rootfs"}, "process": {"args": ["/x"]}})", "/b");
  ASSERT_TRUE(spec);
  EXPECT_FALSE(spec->native());
  EXPECT_EQ(spec->root, "/b/rootfs");
  EXPECT_EQ(spec->level, SandboxLevel::kSandboxed) << "sandboxed by default";
}

TEST(ShimSpecTest, BadInputNamesTheField) {
  struct Case {
    const char* json;
    const char* names;
  } cases[] = {
      {"not json", "not valid JSON"},
      {R"({"process": {"args": ["/x"]}})", "root.path"},
      {R"({"root": {"path": "/"}, "process": {"args": []}})", "process.args"},
      {R"({"root": {"path": "/"}, "process": {"args": ["/x"], "cwd": "rel"}})", "process.cwd"},
      {R"({"root": {"path": "/"}, "process": {"args": ["/x"],
          "rlimits": [{"type": "RLIMIT_BOGUS"}]}})",
       "RLIMIT_BOGUS"},
      {R"({"root": {"path": "/"}, "process": {"args": ["/x"]},
          "annotations": {"io.fleetlet.sandbox": "jail"}})",
       "jail"},
      {R"({"root": {"path": "/"}, "process": {"args": ["/x"]},
          "annotations": {"io.fleetlet.sandbox.state-dir": "rel"}})",
       "state-dir"},
      {R"({"root": {"path": "/"}, "process": {"args": ["/x"]},
          "mounts": [{"type": "bind", "source": "rel", "destination": "/d"}]})",
       "absolute"},
      {R"({"root": {"path": "/"}, "process": {"args": ["/x"]},
          "linux": {"cgroupsPath": "/a/../../b"}})",
       "cgroupsPath"},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.json);
    auto spec = parseSpec(c.json, "/b");
    ASSERT_FALSE(spec);
    EXPECT_EQ(spec.error().code(), ErrorCode::kInvalidArgument);
    EXPECT_NE(spec.error().message().find(c.names), std::string::npos) << spec.error().message();
  }
}

TEST(ShimSpecTest, AnExecProcessSpecIsReadLikeABundlesProcess) {
  auto p = parseProcessSpec(R"({"args": ["/bin/sh", "-c", "test -f /ready"], "cwd": "/srv",
      "env": ["A=b"], "user": {"uid": 7, "gid": 8},
      "capabilities": {"bounding": ["CAP_NET_BIND_SERVICE"], "ambient": ["CAP_NET_BIND_SERVICE"]}})");
  ASSERT_TRUE(p) << p.error().message();
  EXPECT_EQ(p->args, (std::vector<std::string>{"/bin/sh", "-c", "test -f /ready"}));
  EXPECT_EQ(p->cwd, "/srv");
  EXPECT_EQ(p->env, std::vector<std::string>{"A=b"});
  EXPECT_EQ(p->uid, 7u);
  EXPECT_EQ(p->gid, 8u);
  EXPECT_EQ(p->ambient_caps, std::vector<std::string>{"CAP_NET_BIND_SERVICE"});
  for (const char* bad : {"", "[1]", R"({"args": []})", R"({"args": ["x"], "cwd": "rel"})"}) {
    auto r = parseProcessSpec(bad);
    ASSERT_FALSE(r) << bad;
    EXPECT_EQ(r.error().code(), ErrorCode::kInvalidArgument) << bad;
  }
}

TEST(ShimSpecTest, UpdateResourcesParse) {
  auto r = parseResources(R"({"memory": {"limit": 1048576}, "pids": {"limit": 5}})");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->memory_limit, 1048576);
  EXPECT_EQ(r->pids_limit, 5);
  EXPECT_FALSE(r->cpu_shares);
  EXPECT_FALSE(parseResources("[]"));
  EXPECT_FALSE(parseResources(R"({"memory": {"limit": 0}})"));
}

TEST(ShimSpecTest, DynamicUidIsStableAndInSystemdsRange) {
  uid_t a = dynamicUid("fleetlet", "app");
  EXPECT_EQ(a, dynamicUid("fleetlet", "app"));
  EXPECT_NE(a, dynamicUid("fleetlet", "app2"));
  EXPECT_GE(a, 61184u);
  EXPECT_LE(a, 65519u);
}

}  // namespace
}  // namespace fleetlet::shim
