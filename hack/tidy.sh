#!/usr/bin/env bash
# Runs clang-tidy-19 with the repository's .clang-tidy over fleetlet's own .cpp files, in
# parallel and under `nice`. Fails when any file has a finding (.clang-tidy makes every
# warning an error). Too slow for CI on 2 cores: run `hack/tidy.sh --changed` before committing.
set -euo pipefail
cd "$(dirname "$0")/.."

usage() {
  cat <<'EOF'
Usage: hack/tidy.sh [--changed [REV]] [-j N] [FILE...]

Runs clang-tidy-19 (checks: .clang-tidy at the repository root) over fleetlet's own
translation units: the tracked *.cpp files under common/ agent/ cni/ stream-sidecar/ runtime-shim/
blob-sidecar/ webview-host/ tests/. Generated protobuf code and build/ are never checked; headers are
checked through the .cpp files that include them (HeaderFilterRegex in .clang-tidy).

  hack/tidy.sh                      every translation unit (~10 s each on a busy 2-core box)
  hack/tidy.sh agent/src/foo.cpp    only these files (a .h argument selects one .cpp file
                                    that includes it: foo.cpp for foo.h, else the first)
  hack/tidy.sh --changed            files changed against origin/main (or main when there is
                                    no origin), including uncommitted and untracked changes
  hack/tidy.sh --changed HEAD~3     files changed since HEAD~3
  hack/tidy.sh --all-includers ...  a .h selects every .cpp that includes it, directly or not
                                    (a header that 100 files include costs 100 runs)
  hack/tidy.sh -j 1 ...             parallel jobs (default: nproc)

A header's findings are reported through any file that includes it, so one includer checks the
header itself; --all-includers also re-checks the code of every includer against a changed
header (what a full `hack/tidy.sh` run does anyway).
Needs build/compile_commands.json (run hack/build.sh first; BUILD_DIR overrides build/).
Files missing from the compile database (e.g. fuzz targets when FLEETLET_FUZZ=OFF) are
skipped with a note. Exit status: 0 clean, 1 findings, 2 usage or setup error.
Silence a justified one-off with `// NOLINT(check-name): reason`; disable a check for the
whole code base only in .clang-tidy, with a comment saying why.
EOF
}

BUILD_DIR=${BUILD_DIR:-build}
JOBS=$(nproc)
CHANGED=""
CHANGED_REV=""
ALL_INCLUDERS=0
ARGS=()
while (($#)); do
  case "$1" in
    -h | --help) usage; exit 0 ;;
    -j) JOBS=${2:?-j needs a number}; shift 2 ;;
    --all-includers) ALL_INCLUDERS=1; shift ;;
    -j*) JOBS=${1#-j}; shift ;;
    --changed)
      CHANGED=1; shift
      if (($#)) && [[ "$1" != -* ]] && git rev-parse -q --verify "$1^{commit}" >/dev/null; then
        CHANGED_REV=$1; shift
      fi ;;
    -*) echo "tidy.sh: unknown option $1 (see --help)" >&2; exit 2 ;;
    *) ARGS+=("$1"); shift ;;
  esac
done

TIDY=$(command -v clang-tidy-19 || true)
if [ -z "$TIDY" ]; then
  echo "tidy.sh: clang-tidy-19 not found (apt-get install clang-tidy-19; clang-tidy-14 cannot parse C++23)" >&2
  exit 2
fi
if [ ! -f "$BUILD_DIR/compile_commands.json" ]; then
  echo "tidy.sh: $BUILD_DIR/compile_commands.json missing; run hack/build.sh first" >&2
  exit 2
fi

DIRS=(common agent cni stream-sidecar blob-sidecar runtime-shim webview-host tests)
own() { grep -E "^($(IFS='|'; echo "${DIRS[*]}"))/" | grep -vE '(^|/)build/|\.pb\.(cc|h)$' || true; }

# Maps a list of paths (stdin) to translation units: .cpp files stay, a .h becomes one .cpp that
# includes it (its own foo.cpp if that includes it, else the first in path order; every one with
# --all-includers), directly or not, according to the header dependencies ninja recorded in the
# last build (`ninja -t deps`; a header added since is found by nothing until the next build).
# Only the repository's own .cpp files count as includers.
to_units() {
  # The program comes from -c: stdin carries the paths.
  python3 -c "$(cat <<'PY'
import os, subprocess, sys
build, root, all_includers = sys.argv[1], sys.argv[2], sys.argv[3] == "1"
cpps, headers = set(), set()
includers = {}  # header -> the own .cpp files that include it
for line in sys.stdin:
    f = line.strip()
    if f.endswith(".cpp") and os.path.isfile(f):
        cpps.add(f)
    elif f.endswith(".h"):
        headers.add(os.path.normpath(os.path.join(root, f)))
if headers:
    try:
        deps = subprocess.run(["ninja", "-C", build, "-t", "deps"], capture_output=True,
                              text=True, check=True).stdout
    except (OSError, subprocess.CalledProcessError):
        sys.exit("tidy.sh: `ninja -t deps` failed; pass the .cpp files instead of headers")
    absbuild = os.path.join(root, build)
    source = None  # the first dependency of each object is its source file
    for line in deps.splitlines():
        if not line.startswith(" "):
            source = None
            continue
        dep = os.path.normpath(os.path.join(absbuild, line.strip()))
        if source is None:
            source = dep
        elif dep in headers and source.startswith(root + "/") and source.endswith(".cpp") \
                and "/build" not in source[len(root):]:
            includers.setdefault(dep, set()).add(source[len(root) + 1:])
for header, units in includers.items():
    if all_includers:
        cpps |= units
        continue
    own = os.path.relpath(os.path.splitext(header)[0] + ".cpp", root)
    cpps.add(own if own in units else (sorted(units & cpps) or sorted(units))[0])
for c in sorted(cpps):
    print(c)
PY
)" "$BUILD_DIR" "$PWD" "$ALL_INCLUDERS"
}

if [ -n "$CHANGED" ]; then
  if [ -z "$CHANGED_REV" ]; then
    if git rev-parse -q --verify origin/main >/dev/null; then CHANGED_REV=origin/main; else CHANGED_REV=main; fi
  fi
  base=$(git merge-base "$CHANGED_REV" HEAD)
  mapfile -t UNITS < <({ git diff --name-only --diff-filter=d "$base" -- '*.cpp' '*.h'
                         git ls-files --others --exclude-standard -- '*.cpp' '*.h'; } | to_units | own)
  echo "tidy.sh: ${#UNITS[@]} translation unit(s) changed since $CHANGED_REV ($(git rev-parse --short "$base"))" >&2
elif ((${#ARGS[@]})); then
  for a in "${ARGS[@]}"; do
    [ -e "$a" ] || { echo "tidy.sh: no such file: $a" >&2; exit 2; }
  done
  mapfile -t UNITS < <(printf '%s\n' "${ARGS[@]}" | sed 's|^\./||' | to_units | own)
else
  mapfile -t UNITS < <(git ls-files -- "${DIRS[@]/%//*.cpp}" | own)
fi

# The compile database comes from GCC: drop its warning flags clang does not know, and tell
# Boost.Asio 1.74 that clang has co_await (it only looks for the Coroutines TS's
# __cpp_coroutines and <experimental/coroutine>, so every asio::awaitable would vanish).
EXTRA=(--extra-arg=-Wno-unknown-warning-option --extra-arg=-DBOOST_ASIO_HAS_CO_AWAIT=1)

# Keep only files the compile database knows; clang-tidy would otherwise guess the flags.
mapfile -t KNOWN < <(python3 - "$BUILD_DIR/compile_commands.json" "$PWD" <<'EOF'
import json, os, sys
root = sys.argv[2]
for e in json.load(open(sys.argv[1])):
    p = os.path.normpath(os.path.join(e["directory"], e["file"]))
    if p.startswith(root + "/"):
        print(p[len(root) + 1:])
EOF
)
declare -A IN_DB=()
for k in "${KNOWN[@]}"; do IN_DB[$k]=1; done
FILES=()
for u in "${UNITS[@]}"; do
  if [ -n "${IN_DB[$u]:-}" ]; then FILES+=("$u"); else echo "tidy.sh: skipped (not in compile database): $u" >&2; fi
done
if ((${#FILES[@]} == 0)); then
  echo "tidy.sh: nothing to check"
  exit 0
fi

OUT=$(mktemp -d)
trap 'rm -rf "$OUT"' EXIT
echo "tidy.sh: checking ${#FILES[@]} file(s) with $JOBS job(s)" >&2
start=$SECONDS
# One clang-tidy per file; each writes its report to $OUT/<n>.log and leaves a .fail marker
# when it exits non-zero (findings or a compile error).
printf '%s\n' "${FILES[@]}" | awk '{ print NR "\t" $0 }' |
  nice -n 10 xargs -P "$JOBS" -L 1 bash -c '
    n=$1 f=$2
    if ! "$0" -p "'"$BUILD_DIR"'" --quiet '"${EXTRA[*]}"' "$f" >"'"$OUT"'/$n.log" 2>&1; then
      touch "'"$OUT"'/$n.fail"; echo "tidy.sh: FINDINGS $f" >&2
    fi' "$TIDY"

failed=0
for ((i = 1; i <= ${#FILES[@]}; i++)); do
  if [ -e "$OUT/$i.fail" ]; then
    failed=$((failed + 1))
    # Drop clang-tidy's "N warnings generated" chatter; keep diagnostics and their context.
    grep -vE '^[0-9]+ warnings? (and [0-9]+ errors? )?generated\.$|^Suppressed [0-9]+ warnings|^Use -header-filter|^Use -system-headers' "$OUT/$i.log" || true
  fi
done
echo "tidy.sh: ${#FILES[@]} file(s) in $((SECONDS - start)) s, $failed with findings" >&2
((failed == 0)) || exit 1
