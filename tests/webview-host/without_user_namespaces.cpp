// without_user_namespaces PROGRAM [ARGS...]: runs PROGRAM as uid and gid 65534 in a user
// namespace of its own whose user.max_user_namespaces is 0, i.e. on what looks like a node
// with user namespaces turned off, while nothing outside this process tree changes (the
// limit is per user namespace). Needs root (it writes the namespace's uid and gid maps).
// Exits with PROGRAM's exit code, or 128+N when signal N ended it.
#include <fcntl.h>
#include <grp.h>
#include <sched.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <csignal>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <string>

namespace {

bool writeFile(const std::string& path, const std::string& text) {
  std::ofstream out(path);
  out << text;
  out.flush();
  return static_cast<bool>(out);
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) {
    (void)std::fprintf(stderr, "usage: without_user_namespaces PROGRAM [ARGS...]\n");
    return 2;
  }
  int ready[2];
  int go[2];
  if (::pipe2(ready, O_CLOEXEC) != 0 || ::pipe2(go, O_CLOEXEC) != 0) return 1;
  const pid_t child = ::fork();
  if (child < 0) return 1;
  char byte = 0;
  if (child == 0) {
    if (::unshare(CLONE_NEWUSER) != 0) {
      (void)std::fprintf(stderr, "unshare(CLONE_NEWUSER): %s\n", std::strerror(errno));
      ::_exit(1);
    }
    (void)::write(ready[1], "x", 1);
    if (::read(go[0], &byte, 1) != 1) ::_exit(1);  // the parent wrote our maps
    // Root of the new namespace until the uid changes below: the limit is set for it.
    if (!writeFile("/proc/sys/user/max_user_namespaces", "0") || ::setgroups(0, nullptr) != 0 ||
        ::setresgid(65534, 65534, 65534) != 0 || ::setresuid(65534, 65534, 65534) != 0) {
      (void)std::fprintf(stderr, "set up the namespace: %s\n", std::strerror(errno));
      ::_exit(1);
    }
    ::execv(argv[1], argv + 1);
    (void)std::fprintf(stderr, "exec %s: %s\n", argv[1], std::strerror(errno));
    ::_exit(127);
  }
  if (::read(ready[0], &byte, 1) != 1) return 1;
  const std::string proc = "/proc/" + std::to_string(child);
  if (!writeFile(proc + "/uid_map", "0 0 65536") || !writeFile(proc + "/gid_map", "0 0 65536")) {
    (void)std::fprintf(stderr, "write the uid/gid maps of %d: %s\n", child, std::strerror(errno));
    ::kill(child, SIGKILL);
  }
  (void)::write(go[1], "x", 1);
  int status = 0;
  while (::waitpid(child, &status, 0) < 0 && errno == EINTR) {
  }
  return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}
