# Shared by hack/dev-up.sh and hack/dev-down.sh (sourced, not run): where the private dev
# environment lives and how to recognise its processes.
#
# Everything of one instance sits under $FLEETLET_DEV_DIR (default /tmp/fleetlet-dev):
#   config.toml containerd.sock containerd.sock.ttrpc containerd.pid containerd.log
#   root/ state/ opt/             containerd's own directories
#   registry.yml registry.pid registry.log registry/   the docker-registry
#   images/                       OCI layouts written by hack/build-images.sh

dev_dir=${FLEETLET_DEV_DIR:-/tmp/fleetlet-dev}
registry_addr=${FLEETLET_REGISTRY_ADDR:-127.0.0.1:5000}

# resolve_dev_dir: makes $dev_dir absolute (containerd wants absolute paths).
resolve_dev_dir() {
  mkdir -p "$dev_dir"
  dev_dir=$(cd "$dev_dir" && pwd)
  containerd_sock="$dev_dir/containerd.sock"
}

# pid_alive PIDFILE NEEDLE: prints the pid recorded in PIDFILE when that process still runs
# and its command line contains NEEDLE (so a recycled pid is never mistaken for ours).
pid_alive() {
  local pidfile=$1 needle=$2 pid
  [[ -f $pidfile ]] || return 1
  pid=$(<"$pidfile")
  [[ $pid =~ ^[0-9]+$ ]] || return 1
  [[ -r /proc/$pid/cmdline ]] || return 1
  tr '\0' ' ' <"/proc/$pid/cmdline" | grep -qF -- "$needle" || return 1
  echo "$pid"
}

# stop_pid PID NAME: SIGTERM, up to 10 s grace, then SIGKILL.
stop_pid() {
  local pid=$1 name=$2 i
  kill -TERM "$pid" 2>/dev/null || return 0
  for ((i = 0; i < 100; i++)); do
    kill -0 "$pid" 2>/dev/null || { echo "dev: stopped $name (pid $pid)"; return 0; }
    sleep 0.1
  done
  kill -KILL "$pid" 2>/dev/null || true
  echo "dev: killed $name (pid $pid) after 10 s"
}
