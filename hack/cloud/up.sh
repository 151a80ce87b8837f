#!/usr/bin/env bash
# Starts the test cloud of hack/cloud/setup.sh with Debian's nginx in the background (it never
# touches the system nginx: own config, pid file and logs under DIR). Idempotent.
#
# Usage: hack/cloud/up.sh DIR PORT
set -euo pipefail
dir=$(realpath -m "${1:?usage: up.sh DIR PORT}")
port=${2:?usage: up.sh DIR PORT}
here=$(dirname "$0")
command -v nginx >/dev/null || { echo "cloud: nginx not found; run hack/install-deps.sh" >&2; exit 1; }
"$here/setup.sh" "$dir" "$port" >/dev/null
if [[ -f $dir/nginx.pid ]] && kill -0 "$(cat "$dir/nginx.pid")" 2>/dev/null; then
  echo "cloud: nginx already up (pid $(cat "$dir/nginx.pid")) on https://127.0.0.1:$port"
  exit 0
fi
nginx -e "$dir/logs/error.log" -p "$dir" -c "$dir/nginx.conf"
echo "cloud: nginx up on https://127.0.0.1:$port (CA $dir/ca.crt, client $dir/client.crt)"
