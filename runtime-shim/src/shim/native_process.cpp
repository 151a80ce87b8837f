#include "shim/native_process.h"

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <linux/capability.h>
#include <net/if.h>
#include <sched.h>
#include <seccomp.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cstdint>
#include <cstring>
#include <filesystem>
#include <map>
#include <vector>

namespace fleetlet::shim {
namespace {

namespace fs = std::filesystem;

// Syscall groups a sandboxed app may not use (systemd's @mount @module @reboot @swap
// @raw-io @clock @debug @obsolete and friends): they answer EPERM.
constexpr const char* kDeniedSyscalls[] = {"mount",
                                           "umount",
                                           "umount2",
                                           "pivot_root",
                                           "chroot",
                                           "fsopen",
                                           "fsmount",
                                           "fspick",
                                           "move_mount",
                                           "open_tree",
                                           "mount_setattr",
                                           "swapon",
                                           "swapoff",
                                           "reboot",
                                           "kexec_load",
                                           "kexec_file_load",
                                           "init_module",
                                           "finit_module",
                                           "delete_module",
                                           "iopl",
                                           "ioperm",
                                           "settimeofday",
                                           "clock_settime",
                                           "clock_adjtime",
                                           "adjtimex",
                                           "acct",
                                           "bpf",
                                           "perf_event_open",
                                           "ptrace",
                                           "process_vm_readv",
                                           "process_vm_writev",
                                           "add_key",
                                           "request_key",
                                           "keyctl",
                                           "userfaultfd",
                                           "open_by_handle_at",
                                           "name_to_handle_at",
                                           "setns",
                                           "unshare",
                                           "io_uring_setup",
                                           "io_uring_enter",
                                           "io_uring_register",
                                           "syslog",
                                           "lookup_dcookie",
                                           "quotactl",
                                           "nfsservctl",
                                           "vhangup",
                                           "uselib",
                                           "_sysctl",
                                           "create_module",
                                           "get_kernel_syms",
                                           "query_module"};

// Device nodes every sandboxed app gets in its private /dev (systemd's PrivateDevices set).
constexpr const char* kDefaultDevices[] = {"/dev/null",   "/dev/zero",    "/dev/full",
                                           "/dev/random", "/dev/urandom", "/dev/tty"};

const std::map<std::string_view, int>& capabilityNumbers() {
  static const std::map<std::string_view, int> kCaps = {{"CAP_CHOWN", 0},
                                                        {"CAP_DAC_OVERRIDE", 1},
                                                        {"CAP_DAC_READ_SEARCH", 2},
                                                        {"CAP_FOWNER", 3},
                                                        {"CAP_FSETID", 4},
                                                        {"CAP_KILL", 5},
                                                        {"CAP_SETGID", 6},
                                                        {"CAP_SETUID", 7},
                                                        {"CAP_SETPCAP", 8},
                                                        {"CAP_LINUX_IMMUTABLE", 9},
                                                        {"CAP_NET_BIND_SERVICE", 10},
                                                        {"CAP_NET_BROADCAST", 11},
                                                        {"CAP_NET_ADMIN", 12},
                                                        {"CAP_NET_RAW", 13},
                                                        {"CAP_IPC_LOCK", 14},
                                                        {"CAP_IPC_OWNER", 15},
                                                        {"CAP_SYS_MODULE", 16},
                                                        {"CAP_SYS_RAWIO", 17},
                                                        {"CAP_SYS_CHROOT", 18},
                                                        {"CAP_SYS_PTRACE", 19},
                                                        {"CAP_SYS_PACCT", 20},
                                                        {"CAP_SYS_ADMIN", 21},
                                                        {"CAP_SYS_BOOT", 22},
                                                        {"CAP_SYS_NICE", 23},
                                                        {"CAP_SYS_RESOURCE", 24},
                                                        {"CAP_SYS_TIME", 25},
                                                        {"CAP_SYS_TTY_CONFIG", 26},
                                                        {"CAP_MKNOD", 27},
                                                        {"CAP_LEASE", 28},
                                                        {"CAP_AUDIT_WRITE", 29},
                                                        {"CAP_AUDIT_CONTROL", 30},
                                                        {"CAP_SETFCAP", 31},
                                                        {"CAP_MAC_OVERRIDE", 32},
                                                        {"CAP_MAC_ADMIN", 33},
                                                        {"CAP_SYSLOG", 34},
                                                        {"CAP_WAKE_ALARM", 35},
                                                        {"CAP_BLOCK_SUSPEND", 36},
                                                        {"CAP_AUDIT_READ", 37},
                                                        {"CAP_PERFMON", 38},
                                                        {"CAP_BPF", 39},
                                                        {"CAP_CHECKPOINT_RESTORE", 40}};
  return kCaps;
}

// Everything the child needs, computed before fork so the child only makes system calls.
struct ChildPlan {
  std::vector<std::string> args, env;
  std::string cwd;
  uid_t uid = 0;
  gid_t gid = 0;
  std::vector<gid_t> groups;
  bool no_new_privs = false;
  bool mount_ns = false;
  int unshare_flags = 0;
  int netns_fd = -1;
  std::vector<int> join_fds;      // namespaces to enter (an exec in a running app), mount last
  std::vector<int> keep_caps;     // bounding set to keep; others dropped
  std::vector<int> ambient_caps;  // raised for a non-root uid (permitted, inheritable, ambient)
  bool drop_caps = false;
  std::vector<Rlimit> rlimits;
  std::vector<BindMount> binds;
  std::vector<std::string> devices;
  std::vector<std::string> hidden;  // directories covered with an empty read-only tmpfs
  scmp_filter_ctx seccomp = nullptr;
  int in = -1, out = -1, err = -1;
  int status_w = -1, go_r = -1;
};

[[noreturn]] void childFail(int status_w, const char* what, int err) {
  char buf[512];
  int n = std::snprintf(buf, sizeof(buf), "E%s: %s", what, std::strerror(err));
  if (n > 0) (void)!::write(status_w, buf, std::min<std::size_t>(n, sizeof(buf) - 1));
  ::_exit(127);
}

void touch(const char* path, bool dir) {
  if (dir) {
    ::mkdir(path, 0755);
  } else {
    int fd = ::open(path, O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
    if (fd >= 0) ::close(fd);
  }
}

// The mount namespace of a sandboxed app: host read-only, private /dev, /tmp, /var/tmp,
// hidden home directories, then the spec's binds (read-write unless "ro").
void setUpMounts(const ChildPlan& plan) {
  const int w = plan.status_w;
  if (::unshare(CLONE_NEWNS) != 0) childFail(w, "unshare mount namespace", errno);
  if (::mount(nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr) != 0) {
    childFail(w, "make / private", errno);
  }
  // Clone what must stay reachable before anything covers it.
  std::vector<std::pair<int, std::string>> device_trees;
  for (const auto& d : plan.devices) {
    int fd = ::open_tree(AT_FDCWD, d.c_str(), OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC);
    if (fd < 0) childFail(w, ("device " + d).c_str(), errno);
    device_trees.emplace_back(fd, d);
  }
  std::vector<std::pair<int, const BindMount*>> bind_trees;
  for (const auto& b : plan.binds) {
    int fd =
        ::open_tree(AT_FDCWD, b.source.c_str(), OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC | AT_RECURSIVE);
    if (fd < 0) childFail(w, ("bind source " + b.source.string()).c_str(), errno);
    bind_trees.emplace_back(fd, &b);
  }

  mount_attr ro{};
  ro.attr_set = MOUNT_ATTR_RDONLY | MOUNT_ATTR_NOSUID;
  if (::mount_setattr(AT_FDCWD, "/", AT_RECURSIVE, &ro, sizeof(ro)) != 0) {
    childFail(w, "make the host read-only", errno);
  }
  // New mounts below are writable: they are not part of the read-only tree.
  if (::mount("tmpfs", "/dev", "tmpfs", MS_NOSUID | MS_NOEXEC, "mode=755,size=64k") != 0) {
    childFail(w, "mount /dev", errno);
  }
  for (auto& [fd, path] : device_trees) {
    touch(path.c_str(), false);
    if (::move_mount(fd, "", AT_FDCWD, path.c_str(), MOVE_MOUNT_F_EMPTY_PATH) != 0) {
      childFail(w, ("device " + path).c_str(), errno);
    }
    ::close(fd);
  }
  ::mkdir("/dev/shm", 01777);
  ::mount("tmpfs", "/dev/shm", "tmpfs", MS_NOSUID | MS_NODEV, "mode=1777");
  ::mkdir("/dev/pts", 0755);
  ::symlink("/proc/self/fd", "/dev/fd");
  ::symlink("/proc/self/fd/0", "/dev/stdin");
  ::symlink("/proc/self/fd/1", "/dev/stdout");
  ::symlink("/proc/self/fd/2", "/dev/stderr");
  ::mount(nullptr, "/dev", nullptr, MS_REMOUNT | MS_RDONLY | MS_NOSUID | MS_NOEXEC, nullptr);

  for (const char* tmp : {"/tmp", "/var/tmp"}) {
    struct stat st {};
    if (::stat(tmp, &st) == 0 &&
        ::mount("tmpfs", tmp, "tmpfs", MS_NOSUID | MS_NODEV, "mode=1777") != 0) {
      childFail(w, tmp, errno);
    }
  }
  for (const auto& h : plan.hidden) {
    struct stat st {};
    if (::stat(h.c_str(), &st) != 0) continue;
    if (::mount("tmpfs", h.c_str(), "tmpfs", MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC,
                "mode=755,size=4k") != 0) {
      childFail(w, ("hide " + h).c_str(), errno);
    }
  }
  for (auto& [fd, bind] : bind_trees) {
    const char* dst = bind->destination.c_str();
    struct stat st {};
    // A destination under a fresh tmpfs (/tmp, /var/tmp) is made there; elsewhere the host is
    // read-only and it must exist.
    if (::stat(dst, &st) != 0 && (bind->destination.string().starts_with("/tmp/") ||
                                  bind->destination.string().starts_with("/var/tmp/"))) {
      const std::string& path = bind->destination.string();
      for (std::size_t at = path.find('/', 1); at != std::string::npos;
           at = path.find('/', at + 1)) {
        ::mkdir(path.substr(0, at).c_str(), 0755);
      }
      // The source may be hidden by now (under the new /tmp): ask the cloned tree.
      touch(dst, ::fstat(fd, &st) == 0 && S_ISDIR(st.st_mode));
    }
    if (::stat(dst, &st) != 0) {
      childFail(w, ("bind destination " + bind->destination.string() + " (must exist)").c_str(),
                errno);
    }
    if (::move_mount(fd, "", AT_FDCWD, dst, MOVE_MOUNT_F_EMPTY_PATH) != 0) {
      childFail(w, ("bind " + bind->destination.string()).c_str(), errno);
    }
    ::close(fd);
    // The clone keeps the source's flags; set what the spec asks for.
    mount_attr attr{};
    if (bind->read_only) {
      attr.attr_set = MOUNT_ATTR_RDONLY | MOUNT_ATTR_NOSUID;
    } else {
      attr.attr_set = MOUNT_ATTR_NOSUID;
      attr.attr_clr = MOUNT_ATTR_RDONLY;
    }
    if (::mount_setattr(AT_FDCWD, dst, AT_RECURSIVE, &attr, sizeof(attr)) != 0) {
      childFail(w, ("bind flags " + bind->destination.string()).c_str(), errno);
    }
  }
}

void bringUpLoopback() {
  int s = ::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (s < 0) return;
  ifreq ifr{};
  std::strncpy(ifr.ifr_name, "lo", IFNAMSIZ - 1);
  if (::ioctl(s, SIOCGIFFLAGS, &ifr) == 0) {
    ifr.ifr_flags = static_cast<short>(ifr.ifr_flags | IFF_UP);
    ::ioctl(s, SIOCSIFFLAGS, &ifr);
  }
  ::close(s);
}

// argv[0] as execvp would find it, but on the app's PATH and inside its mount namespace
// (binds may add programs). Runs in the child; "" when nothing executable is found.
std::string resolveExecutable(const std::string& name, const std::vector<std::string>& env) {
  auto usable = [](const std::string& candidate) {
    struct stat st {};
    return ::stat(candidate.c_str(), &st) == 0 && S_ISREG(st.st_mode) &&
           ::access(candidate.c_str(), X_OK) == 0;
  };
  if (name.find('/') != std::string::npos) return usable(name) ? name : std::string();
  std::string path = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
  for (const auto& e : env) {
    if (e.starts_with("PATH=")) path = e.substr(5);
  }
  std::size_t start = 0;
  for (;;) {
    auto end = path.find(':', start);
    std::string dir =
        path.substr(start, end == std::string::npos ? std::string::npos : end - start);
    std::string candidate = (dir.empty() ? std::string(".") : dir) + "/" + name;
    if (usable(candidate)) return candidate;
    if (end == std::string::npos) return {};
    start = end + 1;
  }
}

[[noreturn]] void runChild(const ChildPlan& plan) {
  const int w = plan.status_w;
  sigset_t none;
  sigemptyset(&none);
  for (int sig = 1; sig < NSIG; ++sig) (void)::signal(sig, SIG_DFL);
  ::pthread_sigmask(SIG_SETMASK, &none, nullptr);
  ::setsid();

  if (::dup2(plan.in, 0) < 0 || ::dup2(plan.out, 1) < 0 || ::dup2(plan.err, 2) < 0) {
    childFail(w, "stdio", errno);
  }
  for (int fd : plan.join_fds) {
    if (::setns(fd, 0) != 0) childFail(w, "join the app's namespaces", errno);
  }
  if (plan.netns_fd >= 0 && ::setns(plan.netns_fd, CLONE_NEWNET) != 0) {
    childFail(w, "join network namespace", errno);
  }
  if (plan.unshare_flags != 0) {
    if (::unshare(plan.unshare_flags) != 0) childFail(w, "unshare namespaces", errno);
    if (plan.unshare_flags & CLONE_NEWNET) bringUpLoopback();
  }
  if (plan.mount_ns) setUpMounts(plan);
  for (const auto& r : plan.rlimits) {
    rlimit lim{r.soft, r.hard};
    if (::setrlimit(r.resource, &lim) != 0) childFail(w, "setrlimit", errno);
  }

  const std::string exe = resolveExecutable(plan.args.front(), plan.env);
  if (exe.empty()) {
    char buf[512];
    int n = std::snprintf(buf, sizeof(buf),
                          "Eexecutable '%s' not found (or not executable) on "
                          "the app's PATH",
                          plan.args.front().c_str());
    if (n > 0) (void)!::write(w, buf, std::min<std::size_t>(n, sizeof(buf) - 1));
    ::_exit(127);
  }
  (void)!::write(w, "R", 1);
  char go = 0;
  // EOF: the shim gave up on this task or died (PR_SET_PDEATHSIG would follow the thread
  // that forked, which ends with its request, so the pipe is the only signal).
  if (::read(plan.go_r, &go, 1) != 1) ::_exit(0);

  if (plan.drop_caps) {
    for (int cap = 0; cap <= CAP_LAST_CAP; ++cap) {
      if (std::find(plan.keep_caps.begin(), plan.keep_caps.end(), cap) != plan.keep_caps.end()) {
        continue;
      }
      if (::prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) != 0 && errno != EINVAL) {
        childFail(w, "drop capability", errno);
      }
    }
  }
  const bool raise_ambient = !plan.ambient_caps.empty() && plan.uid != 0;
  // Keep the permitted set across setuid, to raise the listed ones as ambient after it.
  if (raise_ambient && ::prctl(PR_SET_KEEPCAPS, 1, 0, 0, 0) != 0) {
    childFail(w, "keep capabilities", errno);
  }
  if (::setgroups(plan.groups.size(), plan.groups.data()) != 0) childFail(w, "setgroups", errno);
  if (::setresgid(plan.gid, plan.gid, plan.gid) != 0) childFail(w, "setgid", errno);
  if (::setresuid(plan.uid, plan.uid, plan.uid) != 0) childFail(w, "setuid", errno);
  if (raise_ambient) {
    // Exactly the listed ones: permitted, effective and inheritable (ambient needs the last).
    __user_cap_header_struct header{_LINUX_CAPABILITY_VERSION_3, 0};
    __user_cap_data_struct data[2]{};
    for (int cap : plan.ambient_caps) {
      const auto bit = 1u << (cap % 32);
      data[cap / 32].permitted |= bit;
      data[cap / 32].effective |= bit;
      data[cap / 32].inheritable |= bit;
    }
    if (::syscall(SYS_capset, &header, data) != 0) childFail(w, "set capabilities", errno);
    for (int cap : plan.ambient_caps) {
      if (::prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_RAISE, cap, 0, 0) != 0) {
        childFail(w, "raise ambient capability", errno);
      }
    }
    (void)::prctl(PR_SET_KEEPCAPS, 0, 0, 0, 0);
  }
  if (::chdir(plan.cwd.c_str()) != 0) childFail(w, ("cwd " + plan.cwd).c_str(), errno);
  if (plan.no_new_privs && ::prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) {
    childFail(w, "no_new_privs", errno);
  }
  std::vector<char*> argv, envp;
  argv.reserve(plan.args.size() + 1);
  envp.reserve(plan.env.size() + 1);
  for (const auto& a : plan.args) argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);
  for (const auto& e : plan.env) envp.push_back(const_cast<char*>(e.c_str()));
  envp.push_back(nullptr);
  if (plan.seccomp != nullptr) {
    int rc = seccomp_load(plan.seccomp);
    if (rc != 0) childFail(w, "load seccomp filter", -rc);
  }
  ::execve(exe.c_str(), argv.data(), envp.data());
  childFail(w, ("exec " + exe).c_str(), errno);
}

// clone(2) flags that make a new namespace (CLONE_NEWTIME is 0x80, inside clone's exit
// signal byte, and exists for unshare/clone3 only, which are refused whole).
constexpr std::uint64_t kNamespaceCloneFlags[] = {CLONE_NEWNS,  CLONE_NEWCGROUP, CLONE_NEWUTS,
                                                  CLONE_NEWIPC, CLONE_NEWUSER,   CLONE_NEWPID,
                                                  CLONE_NEWNET};
// personality(2) values an app may set (docker's list): PER_LINUX, PER_LINUX32, UNAME26 with
// either, and 0xffffffff, which only queries. Everything else (ADDR_NO_RANDOMIZE,
// READ_IMPLIES_EXEC, MMAP_PAGE_ZERO, ...) weakens the process's own hardening.
constexpr std::uint64_t kSafePersonalityBits = 0x0008 | 0x20000;  // PER_LINUX32, UNAME26

Result<scmp_filter_ctx> buildSeccomp() {
  scmp_filter_ctx ctx = seccomp_init(SCMP_ACT_ALLOW);
  if (ctx == nullptr) return fail(ErrorCode::kInternal, "seccomp_init failed");
  auto refuse = [&](const char* what) {
    seccomp_release(ctx);
    return fail(ErrorCode::kInternal, "seccomp rule for {}", what);
  };
  for (const char* name : kDeniedSyscalls) {
    int nr = seccomp_syscall_resolve_name(name);
    if (nr == __NR_SCMP_ERROR) continue;  // not on this architecture
    if (seccomp_rule_add(ctx, SCMP_ACT_ERRNO(EPERM), nr, 0) != 0) return refuse(name);
  }
  // clone with any namespace flag: EPERM (flags are the first argument on x86_64 and arm64;
  // s390's swapped arguments are not handled). A plain fork/thread clone stays allowed.
  for (std::uint64_t flag : kNamespaceCloneFlags) {
    if (seccomp_rule_add(ctx, SCMP_ACT_ERRNO(EPERM), SCMP_SYS(clone), 1,
                         SCMP_A0(SCMP_CMP_MASKED_EQ, flag, flag)) != 0) {
      return refuse("clone");
    }
  }
  // clone3's flags sit in a struct seccomp cannot read: ENOSYS makes libc fall back to clone,
  // which the rules above check.
  if (int nr = seccomp_syscall_resolve_name("clone3"); nr != __NR_SCMP_ERROR) {
    if (seccomp_rule_add(ctx, SCMP_ACT_ERRNO(ENOSYS), nr, 0) != 0) return refuse("clone3");
  }
  // personality: one comparison per argument and rule, so the safe set is spelled out bit by
  // bit over the low 32 bits (the kernel reads an unsigned int). With bit 31 clear, any bit
  // outside kSafePersonalityBits is refused; with bit 31 set, anything but all 32 bits (the
  // query) is.
  constexpr std::uint64_t kBit31 = std::uint64_t{1} << 31;
  for (int bit = 0; bit < 31; ++bit) {
    const std::uint64_t b = std::uint64_t{1} << bit;
    if ((b & kSafePersonalityBits) == 0 &&
        seccomp_rule_add(ctx, SCMP_ACT_ERRNO(EPERM), SCMP_SYS(personality), 1,
                         SCMP_A0(SCMP_CMP_MASKED_EQ, b | kBit31, b)) != 0) {
      return refuse("personality");
    }
    if (seccomp_rule_add(ctx, SCMP_ACT_ERRNO(EPERM), SCMP_SYS(personality), 1,
                         SCMP_A0(SCMP_CMP_MASKED_EQ, b | kBit31, kBit31)) != 0) {
      return refuse("personality");
    }
  }
  return ctx;
}

}  // namespace

Result<std::unique_ptr<NativeProcess>> NativeProcess::create(
    const NativeSpec& spec, const std::string& ns, const std::string& id, OpenedStdio io,
    Reaper& reaper, Reaper::Callback on_exit, const std::function<Status(pid_t)>& place,
    pid_t join) {
  const bool sandboxed = spec.level != SandboxLevel::kProcess;
  ChildPlan plan;
  plan.args = spec.args;
  plan.env = spec.env;
  plan.cwd = spec.cwd.string();
  plan.uid = spec.uid;
  plan.gid = spec.gid;
  plan.groups = spec.additional_gids;
  plan.rlimits = spec.rlimits;
  plan.no_new_privs = spec.no_new_privileges || sandboxed;

  auto summary = SandboxSummary{spec.level, spec.uid, spec.gid};
  std::vector<UniqueFd> join_fds;
  if (join > 0) {
    // The app's namespaces, opened before fork (the mount namespace last: after it, the
    // child sees the app's /proc). Only those that differ from the shim's are entered.
    for (const char* kind : {"net", "ipc", "uts", "mnt"}) {
      const fs::path mine = fs::path("/proc/self/ns") / kind;
      const fs::path theirs = fs::path("/proc") / std::to_string(join) / "ns" / kind;
      struct stat a {
      }, b{};
      if (::stat(mine.c_str(), &a) == 0 && ::stat(theirs.c_str(), &b) == 0 &&
          a.st_ino == b.st_ino && a.st_dev == b.st_dev) {
        continue;
      }
      UniqueFd fd(::open(theirs.c_str(), O_RDONLY | O_CLOEXEC));
      if (!fd) return failErrno(errno, "namespace {} of process {}", kind, join);
      plan.join_fds.push_back(fd.get());
      join_fds.push_back(std::move(fd));
    }
  }
  if (sandboxed && join > 0) {
    if (spec.uid == 0) return fail(ErrorCode::kInternal, "exec in a sandboxed app without its uid");
    FLEETLET_ASSIGN_OR_RETURN(plan.seccomp, buildSeccomp());
  } else if (sandboxed) {
    if (spec.uid == 0) {
      plan.uid = dynamicUid(ns, id);
      plan.gid = plan.uid;
      plan.groups.clear();
    }
    plan.mount_ns = true;
    plan.hidden = {"/home", "/root", "/run/user"};
    plan.binds = spec.binds;
    for (const char* d : kDefaultDevices) plan.devices.emplace_back(d);
    for (const auto& d : spec.devices) {
      if (std::find(plan.devices.begin(), plan.devices.end(), d.path.string()) ==
          plan.devices.end()) {
        plan.devices.push_back(d.path.string());
      }
    }
    if (spec.state_dir) {
      std::error_code ec;
      fs::create_directories(*spec.state_dir, ec);
      if (ec) return failErrno(ec.value(), "create state directory {}", spec.state_dir->string());
      if (::chown(spec.state_dir->c_str(), plan.uid, plan.gid) != 0) {
        return failErrno(errno, "chown state directory {}", spec.state_dir->string());
      }
      plan.binds.push_back({*spec.state_dir, *spec.state_dir, false});
      plan.env.push_back("STATE_DIRECTORY=" + spec.state_dir->string());
    }
    FLEETLET_ASSIGN_OR_RETURN(plan.seccomp, buildSeccomp());
  }
  summary.uid = plan.uid;
  summary.gid = plan.gid;
  // The bounding set is the spec's in every level; an app that runs as another user keeps
  // none of them after setuid, except the spec's ambient ones (raised after setuid).
  plan.drop_caps = true;
  for (const auto& name : spec.bounding_caps) {
    auto it = capabilityNumbers().find(name);
    if (it == capabilityNumbers().end()) {
      if (plan.seccomp) seccomp_release(plan.seccomp);
      return fail(ErrorCode::kInvalidArgument, "process.capabilities: unknown capability '{}'",
                  name);
    }
    plan.keep_caps.push_back(it->second);
  }
  for (const auto& name : spec.ambient_caps) {
    auto it = capabilityNumbers().find(name);
    if (it == capabilityNumbers().end() || std::find(plan.keep_caps.begin(), plan.keep_caps.end(),
                                                     it->second) == plan.keep_caps.end()) {
      if (plan.seccomp) seccomp_release(plan.seccomp);
      return fail(ErrorCode::kInvalidArgument,
                  "process.capabilities.ambient: '{}' is unknown or not in the bounding set", name);
    }
    plan.ambient_caps.push_back(it->second);
  }
  UniqueFd netns;
  if (spec.level == SandboxLevel::kContained && join <= 0) {
    plan.unshare_flags = CLONE_NEWIPC | CLONE_NEWUTS;
    if (spec.netns_path) {
      netns.reset(::open(spec.netns_path->c_str(), O_RDONLY | O_CLOEXEC));
      if (!netns) {
        if (plan.seccomp) seccomp_release(plan.seccomp);
        return failErrno(errno, "network namespace {}", *spec.netns_path);
      }
      plan.netns_fd = netns.get();
    } else {
      plan.unshare_flags |= CLONE_NEWNET;
    }
  }

  int status_pipe[2], go_pipe[2];
  if (::pipe2(status_pipe, O_CLOEXEC) != 0 || ::pipe2(go_pipe, O_CLOEXEC) != 0) {
    if (plan.seccomp) seccomp_release(plan.seccomp);
    return failErrno(errno, "pipe");
  }
  UniqueFd status_r(status_pipe[0]), status_w(status_pipe[1]);
  UniqueFd go_r(go_pipe[0]), go_w(go_pipe[1]);
  plan.in = io.in.get();
  plan.out = io.out.get();
  plan.err = io.err.get();
  plan.status_w = status_w.get();
  plan.go_r = go_r.get();

  pid_t pid = reaper.spawnWatched(
      [&] {
        pid_t child = ::fork();
        if (child == 0) {
          go_w.release();  // never closed in the child: it is close-on-exec anyway
          runChild(plan);
        }
        return child;
      },
      std::move(on_exit));
  int fork_errno = errno;
  if (plan.seccomp) seccomp_release(plan.seccomp);
  if (pid < 0) return failErrno(fork_errno, "fork {}", plan.args.front());
  status_w.reset();
  go_r.reset();

  auto process = std::unique_ptr<NativeProcess>(new NativeProcess());
  process->pid_ = pid;
  process->go_ = std::move(go_w);
  process->status_ = std::move(status_r);
  process->summary_ = summary;
  // From here the destructor kills the child on failure.
  auto placed = place(pid);
  char buf[512];
  ssize_t n = 0;
  do {
    n = ::read(process->status_.get(), buf, sizeof(buf));
  } while (n < 0 && errno == EINTR);
  // A child that failed set-up is gone before it could be placed: its own message says why.
  if (!placed && !(n > 1 && buf[0] == 'E')) return std::unexpected(placed.error());
  if (n <= 0) return fail(ErrorCode::kInternal, "child {} died while setting up", pid);
  if (buf[0] != 'R') {
    return fail(ErrorCode::kInvalidArgument, "set up {}: {}", plan.args.front(),
                std::string_view(buf + 1, static_cast<std::size_t>(n - 1)));
  }
  return process;
}

NativeProcess::~NativeProcess() {
  // Never started: closing go_ makes the waiting child exit 0, and SIGKILL makes sure. Its exit
  // reaches the reaper like any other.
  if (go_) ::kill(pid_, SIGKILL);
}

Status NativeProcess::start() {
  if (!go_) return fail(ErrorCode::kFailedPrecondition, "process {} already started", pid_);
  if (::write(go_.get(), "G", 1) != 1) return failErrno(errno, "release process {}", pid_);
  go_.reset();
  std::string message;
  char buf[512];
  for (;;) {
    ssize_t n = ::read(status_.get(), buf, sizeof(buf));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    message.append(buf, static_cast<std::size_t>(n));
  }
  status_.reset();
  if (!message.empty()) {
    return fail(ErrorCode::kInvalidArgument, "start: {}",
                message.starts_with('E') ? message.substr(1) : message);
  }
  return {};
}

}  // namespace fleetlet::shim
