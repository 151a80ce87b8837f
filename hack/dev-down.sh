#!/usr/bin/env bash
# Stops the dev environment that hack/dev-up.sh started in $FLEETLET_DEV_DIR (default
# /tmp/fleetlet-dev), and only that: tasks of every namespace of our containerd are killed
# and deleted, containerd and the registry are stopped by their pidfiles, leftover shims
# whose command line names OUR socket are killed with their children, and whatever is still
# mounted under the directory is unmounted (deepest first, lazily).
#
# Usage: hack/dev-down.sh [--purge] [--help]
#   --purge   also remove the directory (images, registry storage, logs)
set -euo pipefail
cd "$(dirname "$0")/.."
source hack/lib/dev-env.sh

usage() { sed -n '2,/^set -euo/p' "$0" | sed -e '$d' -e 's/^# \{0,1\}//'; }
purge=0
while (($#)); do
  case "$1" in
    --purge) purge=1; shift ;;
    -h|--help) usage; exit 0 ;;
    *) echo "dev-down: unknown argument '$1' (see --help)" >&2; exit 2 ;;
  esac
done

if [[ ! -d $dev_dir ]]; then
  echo "dev-down: $dev_dir does not exist; nothing to do"
  exit 0
fi
resolve_dev_dir

# ---- tasks, then containerd ----
if pid=$(pid_alive "$dev_dir/containerd.pid" "$dev_dir/config.toml"); then
  ctr_cmd=(timeout 20 ctr --address "$containerd_sock")
  for ns in $("${ctr_cmd[@]}" namespaces ls -q 2>/dev/null || true); do
    for task in $("${ctr_cmd[@]}" -n "$ns" tasks ls -q 2>/dev/null || true); do
      "${ctr_cmd[@]}" -n "$ns" tasks kill -a -s SIGKILL "$task" >/dev/null 2>&1 || true
      "${ctr_cmd[@]}" -n "$ns" tasks delete -f "$task" >/dev/null 2>&1 || true
      echo "dev-down: removed task $ns/$task"
    done
  done
  stop_pid "$pid" containerd
else
  echo "dev-down: containerd not running"
fi
rm -f "$dev_dir/containerd.pid"

# ---- registry ----
if pid=$(pid_alive "$dev_dir/registry.pid" "$dev_dir/registry.yml"); then
  stop_pid "$pid" registry
else
  echo "dev-down: registry not running"
fi
rm -f "$dev_dir/registry.pid"

# ---- test cloud (hack/dev-up.sh --cloud) ----
if [[ -f $dev_dir/cloud/nginx.pid ]]; then
  hack/cloud/down.sh "$dev_dir/cloud"
fi

# ---- shims of this instance (their argv has "-address <our socket>") ----
for proc in /proc/[0-9]*; do
  pid=${proc#/proc/}
  mapfile -d '' -t argv <"$proc/cmdline" 2>/dev/null || continue
  ((${#argv[@]})) || continue
  [[ $(basename "${argv[0]}") == containerd-shim* ]] || continue
  ours=0
  for ((i = 1; i < ${#argv[@]}; i++)); do
    if [[ ${argv[i - 1]} == -address && ${argv[i]} == "$containerd_sock" ]]; then ours=1; fi
  done
  ((ours)) || continue
  ns="" id=""
  for ((i = 1; i < ${#argv[@]}; i++)); do
    [[ ${argv[i - 1]} == -namespace ]] && ns=${argv[i]}
    [[ ${argv[i - 1]} == -id ]] && id=${argv[i]}
  done
  for child in $(pgrep -P "$pid" || true); do
    kill -KILL "$child" 2>/dev/null || true
  done
  kill -KILL "$pid" 2>/dev/null || true
  echo "dev-down: killed leftover shim $pid ($ns/$id)"
  # The shim's socket: containerd 1.6 names it sha256("<address>/<ns>/<id>").
  if [[ -n $ns && -n $id ]]; then
    hash=$(printf '%s' "$containerd_sock/$ns/$id" | sha256sum | cut -d' ' -f1)
    rm -f "/run/containerd/s/$hash"
  fi
  # runc's state for the container (the shim would have deleted it); ours only if its
  # rootfs lies under our directory.
  runc_state="/run/containerd/runc/$ns/$id"
  if [[ -n $ns && -n $id && -f $runc_state/state.json ]] &&
    [[ $(jq -r '.config.rootfs // ""' "$runc_state/state.json") == "$dev_dir"/* ]]; then
    rm -rf "$runc_state"
  fi
done

# ---- mounts under the directory, deepest first ----
mapfile -t mounts < <(awk -v dir="$dev_dir" '
  { mp = $5; gsub(/\\040/, " ", mp); gsub(/\\011/, "\t", mp); gsub(/\\134/, "\\", mp) }
  mp == dir || index(mp, dir "/") == 1 { print length(mp) "\t" mp }' /proc/self/mountinfo |
  sort -rn | cut -f2-)
for mp in "${mounts[@]}"; do
  umount -l "$mp" && echo "dev-down: unmounted $mp"
done

# ---- the demo's node network namespace (hack/demo.sh: the apps' bridge and rules) ----
if ip netns list 2>/dev/null | grep -qw fleetlet-dev-node; then
  ip netns del fleetlet-dev-node && echo "dev-down: removed network namespace fleetlet-dev-node"
fi

if ((purge)); then
  rm -rf --one-file-system "$dev_dir"
  echo "dev-down: removed $dev_dir"
fi
echo "dev-down: done"
