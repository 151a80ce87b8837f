#!/usr/bin/env bash
# Stops the test cloud nginx started by hack/cloud/up.sh DIR (by its pid file only).
#
# Usage: hack/cloud/down.sh DIR
set -euo pipefail
dir=$(realpath -m "${1:?usage: down.sh DIR}")
if [[ -f $dir/nginx.pid ]] && pid=$(cat "$dir/nginx.pid") && kill -0 "$pid" 2>/dev/null; then
  kill -QUIT "$pid"
  echo "cloud: nginx (pid $pid) stopping"
else
  echo "cloud: not running"
fi
