#!/usr/bin/env bash
# Starts and stops a site hub for fleetlet-streams replication (docs/replication.md): one
# nats-server with JetStream, or three in a cluster (streams then use --stream-replicas 3),
# all under one directory, on loopback, with one user per node that may publish only to its
# own subject. Stops only the servers it started (by the PIDs it wrote).
#
# Usage:
#   hack/site-hub.sh start DIR [--site NAME] [--nodes a,b,c] [--servers 1|3] [--port P]
#   hack/site-hub.sh stop DIR [--server N]      # all servers, or server N (1..3)
#   hack/site-hub.sh kill DIR --server N        # SIGKILL server N (tests)
#   hack/site-hub.sh env DIR                    # prints the variables of DIR/hub.env
#
# start writes DIR/hub.conf-N (N = 1..servers), DIR/jetstream-N/, DIR/nats-N.log and .pid,
# DIR/<node>.password (one per node, mode 600) and DIR/admin.password, and DIR/hub.env:
#   NATS_URLS=nats://127.0.0.1:P1[,...]  FLEETLET_SITE=NAME  FLEETLET_HUB_DIR=DIR
# and returns once every server answers its health check (http://127.0.0.1:<monitor>/healthz;
# in a cluster that includes JetStream's meta leader, so streams can be created).
# A second start of the same DIR reuses its configuration (same ports and passwords), so a
# hub can be stopped and started again under running nodes. Servers already running are
# left alone. Client ports are picked free at the first start unless --port is given.
#
# Node N connects with: --nats $NATS_URLS --site $FLEETLET_SITE --source-id N
#   --nats-user N --nats-password-file DIR/N.password
# User "admin" (DIR/admin.password) may do anything in the site's account (tests, tools).
set -euo pipefail

usage() { sed -n '2,/^set -euo/p' "$0" | sed -e '$d' -e 's/^# \{0,1\}//'; }
die() {
  echo "site-hub: $*" >&2
  exit 1
}

command=${1:-}
dir=${2:-}
[[ $command == -h || $command == --help ]] && { usage; exit 0; }
[[ -n $command && -n $dir ]] || { usage >&2; exit 2; }
shift 2
site=site
nodes=""
servers=1
port=""
only=""
while (($#)); do
  case "$1" in
    --site) site=$2; shift 2 ;;
    --nodes) nodes=$2; shift 2 ;;
    --servers) servers=$2; shift 2 ;;
    --port) port=$2; shift 2 ;;
    --server) only=$2; shift 2 ;;
    *) die "unknown argument '$1' (see --help)" ;;
  esac
done

valid_token() { [[ $1 =~ ^[A-Za-z0-9_-]+$ ]]; }

# A TCP port no socket uses, below the kernel's ephemeral range (32768-60999 by default, where
# outgoing connections take theirs) and away from the usual services.
free_port() {
  local p
  for _ in $(seq 1 200); do
    p=$((15000 + RANDOM % 17000))
    if ! ss -Htan "sport = :$p" | grep -q . && ! grep -qs "\b$p\b" "$dir"/ports 2>/dev/null; then
      echo "$p" >>"$dir/ports"
      echo "$p"
      return
    fi
  done
  die "no free port found"
}

password() { head -c 18 /dev/urandom | base64 | tr -d '/+=' ; }

running() { [[ -f $1 ]] && kill -0 "$(cat "$1")" 2>/dev/null; }

write_config() {
  [[ $site =~ ^[A-Za-z0-9-]+$ ]] || die "--site '$site': letters, digits and '-' only"
  [[ $servers == 1 || $servers == 3 ]] || die "--servers must be 1 or 3"
  mkdir -p "$dir"
  : >"$dir/ports"
  local i users admin_pw
  admin_pw=$(password)
  (umask 077 && echo "$admin_pw" >"$dir/admin.password")
  # Each node may publish its own events, ask who holds a source id, and use the JetStream
  # API to read every stream but create or change only its own; for blobs (fleetlet-blobs) it
  # may ask the site who holds one and any node for chunks, and answers for its own.
  users="    {user: admin, password: \"$admin_pw\"}"
  IFS=, read -ra node_list <<<"$nodes"
  for n in "${node_list[@]}"; do
    valid_token "$n" || die "node '$n': letters, digits, '_' and '-' only"
    local pw
    pw=$(password)
    (umask 077 && echo "$pw" >"$dir/$n.password")
    users+=",
    {user: \"$n\", password: \"$pw\", permissions: {
      publish: {allow: [\"fl.$site.src.$n\", \"fl.$site.node.*.who\",
        \"\$JS.API.INFO\", \"\$JS.API.STREAM.INFO.*\", \"\$JS.API.STREAM.LIST\",
        \"\$JS.API.STREAM.NAMES\", \"\$JS.API.STREAM.CREATE.FL_${site}_$n\",
        \"\$JS.API.STREAM.UPDATE.FL_${site}_$n\", \"\$JS.API.CONSUMER.CREATE.>\",
        \"\$JS.API.CONSUMER.DELETE.>\", \"\$JS.API.CONSUMER.INFO.>\",
        \"\$JS.API.STREAM.MSG.GET.*\", \"\$JS.API.DIRECT.GET.>\", \"\$JS.FC.>\",
        \"fl.$site.blobs.find\", \"fl.$site.blobs.*.get\"]},
      subscribe: {allow: [\"_INBOX.>\", \"fl.$site.node.$n.who\",
        \"fl.$site.blobs.find\", \"fl.$site.blobs.$n.get\"]},
      allow_responses: true}}"
  done
  local client_ports=() cluster_ports=() http_ports=()
  for ((i = 1; i <= servers; i++)); do
    if [[ -n $port && $i == 1 ]]; then client_ports+=("$port"); else client_ports+=("$(free_port)"); fi
    cluster_ports+=("$(free_port)")
    http_ports+=("$(free_port)")
  done
  local urls=""
  for ((i = 1; i <= servers; i++)); do
    local cluster=""
    if ((servers > 1)); then
      local routes=""
      for ((j = 1; j <= servers; j++)); do
        ((j == i)) || routes+="${routes:+, }nats-route://127.0.0.1:${cluster_ports[j - 1]}"
      done
      cluster="cluster { name: fl-$site, listen: 127.0.0.1:${cluster_ports[i - 1]}, routes: [$routes] }"
    fi
    cat >"$dir/hub.conf-$i" <<EOF
# Written by hack/site-hub.sh: site $site, server $i of $servers.
server_name: fl-$site-$i
listen: 127.0.0.1:${client_ports[i - 1]}
http: 127.0.0.1:${http_ports[i - 1]}
max_payload: 8MB
jetstream { store_dir: "$dir/jetstream-$i", max_memory_store: 64MB, max_file_store: 4GB }
$cluster
accounts {
  SITE: {
    jetstream: enabled
    users: [
$users
    ]
  }
}
EOF
    urls+="${urls:+,}nats://127.0.0.1:${client_ports[i - 1]}"
  done
  cat >"$dir/hub.env" <<EOF
NATS_URLS=$urls
FLEETLET_SITE=$site
FLEETLET_HUB_DIR=$dir
FLEETLET_HUB_SERVERS=$servers
EOF
}

# Waits until the server of config $1 (log $2, pid file $3) answers its health check, which
# in a cluster includes JetStream having a meta leader (streams can be created then).
wait_healthy() {
  local conf=$1 log=$2 p
  p=$(sed -n 's/^http: 127.0.0.1:\([0-9]*\)$/\1/p' "$conf")
  for _ in $(seq 1 300); do
    curl -fs "http://127.0.0.1:$p/healthz" >/dev/null 2>&1 && return 0
    running "$3" || break
    sleep 0.1
  done
  cat "$log" >&2 || true
  die "server of $conf is not healthy (monitoring port $p)"
}

case "$command" in
  start)
    command -v nats-server >/dev/null || [[ -x /usr/sbin/nats-server ]] ||
      die "nats-server not found; run hack/install-deps.sh"
    bin=$(command -v nats-server || echo /usr/sbin/nats-server)
    [[ -f $dir/hub.env ]] || write_config
    dir=$(cd "$dir" && pwd)
    # shellcheck disable=SC1091
    source "$dir/hub.env"
    for ((i = 1; i <= FLEETLET_HUB_SERVERS; i++)); do
      [[ -z $only || $only == "$i" ]] || continue
      running "$dir/nats-$i.pid" && continue
      "$bin" -c "$dir/hub.conf-$i" >>"$dir/nats-$i.log" 2>&1 &
      echo $! >"$dir/nats-$i.pid"
    done
    for ((i = 1; i <= FLEETLET_HUB_SERVERS; i++)); do
      [[ -z $only || $only == "$i" ]] || continue
      wait_healthy "$dir/hub.conf-$i" "$dir/nats-$i.log" "$dir/nats-$i.pid"
    done
    cat "$dir/hub.env"
    ;;
  stop | kill)
    [[ -f $dir/hub.env ]] || die "$dir/hub.env: no hub there"
    # shellcheck disable=SC1091
    source "$dir/hub.env"
    signal=TERM
    [[ $command == kill ]] && signal=KILL
    for ((i = 1; i <= FLEETLET_HUB_SERVERS; i++)); do
      [[ -z $only || $only == "$i" ]] || continue
      pidfile="$dir/nats-$i.pid"
      running "$pidfile" || continue
      pid=$(cat "$pidfile")
      kill -s "$signal" "$pid"
      for _ in $(seq 1 100); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
      done
      kill -0 "$pid" 2>/dev/null && kill -KILL "$pid"
      rm -f "$pidfile"
    done
    ;;
  env)
    cat "$dir/hub.env"
    ;;
  *) die "unknown command '$command' (see --help)" ;;
esac
