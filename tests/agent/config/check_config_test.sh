#!/usr/bin/env bash
# fleetletd --check-config: exit 0 and "settings are valid" for good settings; exit 2 and the
# key or flag named on stderr (nothing on stdout) for bad ones.
# Usage: check_config_test.sh FLEETLETD PACKAGED_CONFIG
set -uo pipefail
fleetletd=$1 packaged=$2
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
failures=0

matches() {  # matches PATTERN FILE: "" means the file is empty
  if [[ -z $1 ]]; then [[ ! -s $2 ]]; else grep -qE -- "$1" "$2"; fi
}

expect() {  # expect CODE STDOUT_PATTERN STDERR_PATTERN ARGS...
  local code=$1 out_pattern=$2 err_pattern=$3
  shift 3
  "$fleetletd" --check-config "$@" >"$dir/out" 2>"$dir/err"
  local got=$?
  if [[ $got -ne $code ]] || ! matches "$out_pattern" "$dir/out" ||
     ! matches "$err_pattern" "$dir/err"; then
    echo "FAIL: fleetletd --check-config $*: exit $got (want $code)"
    echo "  stdout: $(cat "$dir/out")"
    echo "  stderr: $(cat "$dir/err")"
    failures=$((failures + 1))
  else
    echo "ok: $* -> exit $got $(cat "$dir/out" "$dir/err")"
  fi
}

expect 0 'settings are valid' '' --config "$packaged"
expect 0 'settings are valid' '' --config "$packaged" --pull-timeout 5m --log-level debug
printf 'pullTimout: 5m\n' >"$dir/typo.yaml"
expect 2 '' 'typo.yaml: unknown key "pullTimout"' --config "$dir/typo.yaml"
printf 'parallelism: many\n' >"$dir/type.yaml"
expect 2 '' 'parallelism: "many" has the wrong type' --config "$dir/type.yaml"
printf 'cloud: {manifestUrl: "https://x/{node}"}\nnode: {idFile: %s/none}\n' "$dir" >"$dir/noid.yaml"
expect 2 '' 'node id' --config "$dir/noid.yaml"
printf 'trust: {keys: [missing.pub]}\n' >"$dir/trust.yaml"
expect 2 '' 'trust.*missing.pub' --config "$dir/trust.yaml"
expect 2 '' '--pull-timeout: "soon" is not a duration' --config "$packaged" --pull-timeout soon
expect 2 '' 'does not exist' --config "$dir/absent.yaml"

echo "$((8 - failures)) passed, $failures failed"
[[ $failures -eq 0 ]]
