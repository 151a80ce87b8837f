#!/usr/bin/env bash
# Stops the test cloud nginx started by hack/cloud/up.sh DIR (by its pid file only) and waits
# up to 5 s for it to exit.
#
# Usage: hack/cloud/down.sh DIR
set -euo pipefail
dir=$(realpath -m "${1:?usage: down.sh DIR}")
if [[ -f $dir/nginx.pid ]] && pid=$(cat "$dir/nginx.pid") && kill -0 "$pid" 2>/dev/null; then
  kill -QUIT "$pid"
  for ((i = 0; i < 50; i++)); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  echo "cloud: nginx (pid $pid) stopped"
else
  echo "cloud: not running"
fi
