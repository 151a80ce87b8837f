#!/usr/bin/env bash
# Installs the ActyxOS SDK @actyx/os-sdk 0.3.1 into CACHE_DIR/node_modules (kept across runs;
# needs the npm registry once). usage: install-sdk.sh CACHE_DIR
# The SDK is installed without its dependencies (its package.json pins http@0.0.0, which the
# registry no longer serves; http, stream and string_decoder are Node built-ins) plus fp-ts,
# io-ts and uri-js.
set -euo pipefail
cache=${1:?usage: install-sdk.sh CACHE_DIR}
if [[ ! -f $cache/node_modules/@actyx/os-sdk/package.json ]]; then
  mkdir -p "$cache"
  (cd "$cache" && npm install --no-save --no-audit --no-fund --no-package-lock \
      fp-ts@2.1.0 io-ts@2.0.1 uri-js@4.2.2 >/dev/null &&
    npm pack --silent @actyx/os-sdk@0.3.1 >/dev/null &&
    mkdir -p node_modules/@actyx/os-sdk &&
    tar xzf actyx-os-sdk-0.3.1.tgz -C node_modules/@actyx/os-sdk --strip-components=1 &&
    rm -f actyx-os-sdk-0.3.1.tgz)
fi
