#!/usr/bin/env bash
# Builds llama.cpp's llama-server (the second benchmark peer, issue 17) from the vendored llama.cpp
# of the llama-cpp-python sdist pinned in llama-server.version: CPU only, Release, only the
# llama-server target, into <repo>/.cache/llama-server/<version>/bin/llama-server (override the
# root with LLAMA_SERVER_CACHE). The sdist from PyPI is the only download; the build fetches
# nothing (no web UI from the net, no HTTPS client), and the server loads a local GGUF only.
# Idempotent: does nothing when the binary exists and answers --version. Takes ~10 min on 2 cores.
# Usage: demos/benchmark/llama_server_setup.sh [--force]
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/../.." && pwd)"
PIN="$HERE/llama-server.version"
VERSION="$(sed -n 's/^version=//p' "$PIN")"
SHA256="$(sed -n 's/^sha256=//p' "$PIN")"
[[ -n "$VERSION" && -n "$SHA256" ]] || { echo "llama_server_setup: no version/sha256 in $PIN" >&2; exit 1; }
CACHE="${LLAMA_SERVER_CACHE:-$ROOT/.cache/llama-server}/$VERSION"
BIN="$CACHE/bin/llama-server"
JOBS="${LLAMA_SERVER_JOBS:-2}"

if [[ "${1:-}" != "--force" && -x "$BIN" ]] && "$BIN" --version >/dev/null 2>&1; then
    echo "llama-server ok: $BIN"
    exit 0
fi

for tool in cmake c++ tar; do
    command -v "$tool" >/dev/null || { echo "llama_server_setup: needs $tool" >&2; exit 1; }
done
PYTHON="${PYTHON:-}"
if [[ -z "$PYTHON" ]]; then
    if [[ -x "$ROOT/.venv/bin/python" ]]; then PYTHON="$ROOT/.venv/bin/python"; else PYTHON=python3; fi
fi

WORK="$(mktemp -d "${TMPDIR:-/tmp}/llama-server-build.XXXXXX")"
trap 'rm -rf "$WORK"' EXIT
start=$SECONDS

echo "downloading the llama-cpp-python $VERSION sdist"
"$PYTHON" -m pip download --quiet --disable-pip-version-check --no-deps --no-binary :all: \
    --dest "$WORK" "llama-cpp-python==$VERSION"
SDIST="$WORK/llama_cpp_python-$VERSION.tar.gz"
echo "$SHA256  $SDIST" | sha256sum --check --quiet -
# Only the vendored llama.cpp is needed (the sdist is ~75 MB, mostly that tree).
tar -xzf "$SDIST" -C "$WORK" "llama_cpp_python-$VERSION/vendor/llama.cpp"
SRC="$WORK/llama_cpp_python-$VERSION/vendor/llama.cpp"
fetched=$SECONDS

# Static, so the one binary in the cache is all it takes. GGML_NATIVE tunes for this CPU: a local
# bench, not a binary to ship. LLAMA_USE_PREBUILT_UI=OFF: otherwise the web UI is downloaded at
# build time; without it the server runs with no embedded UI. LLAMA_OPENSSL=OFF: no HTTPS client
# (it only serves downloads of models by URL, which we never use). LLAMA_CURL is gone upstream
# (deprecated, ignored) but kept OFF for older pins.
FLAGS=(
    -DCMAKE_BUILD_TYPE=Release
    -DBUILD_SHARED_LIBS=OFF
    -DGGML_NATIVE=ON
    -DLLAMA_CURL=OFF
    -DLLAMA_OPENSSL=OFF
    -DLLAMA_BUILD_TESTS=OFF
    -DLLAMA_BUILD_EXAMPLES=OFF
    -DLLAMA_BUILD_TOOLS=ON
    -DLLAMA_BUILD_SERVER=ON
    -DLLAMA_BUILD_APP=OFF
    -DLLAMA_BUILD_UI=OFF
    -DLLAMA_USE_PREBUILT_UI=OFF
)
cmake -S "$SRC" -B "$WORK/build" "${FLAGS[@]}" >"$WORK/configure.log" 2>&1 ||
    { tail -n 40 "$WORK/configure.log" >&2; exit 1; }
cmake --build "$WORK/build" --target llama-server -j "$JOBS" >"$WORK/build.log" 2>&1 ||
    { tail -n 40 "$WORK/build.log" >&2; exit 1; }
built=$SECONDS

rm -rf "$CACHE"
mkdir -p "$CACHE/bin"
cp "$WORK/build/bin/llama-server" "$BIN"
"$BIN" --version >"$CACHE/version.txt" 2>&1
printf '{"llama_cpp_python": "%s", "download_s": %d, "build_s": %d, "jobs": %d, "cmake_flags": "%s"}\n' \
    "$VERSION" $((fetched - start)) $((built - fetched)) "$JOBS" "${FLAGS[*]}" >"$CACHE/build.json"
echo "llama-server built in $((built - fetched)) s (+ $((fetched - start)) s download): $BIN"
cat "$CACHE/version.txt"
