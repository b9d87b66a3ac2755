#!/usr/bin/env bash
# Creates the peer server's own virtualenv (openvino-openai-api 0.1.1 on openvino 2025.0), never
# the project's: by default <repo>/.cache/peer-venv (override with PEER_VENV). Idempotent: does
# nothing when the venv exists and imports what the peer needs at the pinned versions.
# Usage: demos/benchmark/peer_setup.sh [--force]
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/../.." && pwd)"
VENV="${PEER_VENV:-$ROOT/.cache/peer-venv}"
REQS="$HERE/peer-requirements.txt"

check() {
    # Every pin installed at its exact version, the peer's imports work, and no torch.
    TRANSFORMERS_NO_ADVISORY_WARNINGS=1 "$VENV/bin/python" - "$REQS" <<'PY'
import sys
from importlib import metadata
bad = []
for line in open(sys.argv[1]):
    line = line.split("#")[0].strip()
    if not line:
        continue
    name, version = line.split("==")
    try:
        have = metadata.version(name)
    except metadata.PackageNotFoundError:
        have = None
    if have != version:
        bad.append(f"{name}: want {version}, have {have}")
if bad:
    sys.exit("peer venv out of date: " + "; ".join(bad))
import openvino_genai, openvino_tokenizers, openvino_openai_api.cli, transformers  # noqa: F401
import importlib.util
if importlib.util.find_spec("torch"):
    sys.exit("torch must not be in the peer venv")
PY
}

if [[ "${1:-}" != "--force" && -x "$VENV/bin/python" ]] && check 2>/dev/null; then
    echo "peer venv ok: $VENV"
    exit 0
fi

# The peer supports Python 3.11 only (its README); openvino 2025.0 has wheels for 3.9-3.12.
PYTHON="${PEER_PYTHON:-}"
if [[ -z "$PYTHON" ]]; then
    for cand in python3.11 python3.12 python3; do
        if command -v "$cand" >/dev/null &&
            "$cand" -c 'import sys; sys.exit(not ((3, 11) <= sys.version_info[:2] <= (3, 12)))'; then
            PYTHON="$cand"
            break
        fi
    done
fi
[[ -n "$PYTHON" ]] || { echo "peer_setup: need python3.11 (or 3.12); set PEER_PYTHON" >&2; exit 1; }

echo "creating peer venv $VENV with $($PYTHON -V)"
rm -rf "$VENV"
"$PYTHON" -m venv "$VENV"
# --no-deps: the peer's metadata pins ~120 packages (torch 2.6, gradio, matplotlib, datasets...)
# that its code never imports; peer-requirements.txt lists the closure it does use.
"$VENV/bin/python" -m pip install --quiet --disable-pip-version-check --no-deps -r "$REQS"
check
echo "peer venv ok: $VENV"
