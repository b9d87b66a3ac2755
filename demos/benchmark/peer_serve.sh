#!/usr/bin/env bash
# Serve MODEL_DIR with the peer openvino-openai-api 0.1.1 on 127.0.0.1:PORT (foreground).
# Usage: demos/benchmark/peer_serve.sh MODEL_DIR PORT [--ignore-eos]
# Sets up the peer venv if needed and serves a prepared copy of MODEL_DIR (see peer.py).
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
[[ $# -ge 2 ]] || { echo "usage: $0 MODEL_DIR PORT [--ignore-eos]" >&2; exit 2; }
bash "$HERE/peer_setup.sh" >&2
exec "${PEER_VENV:-$HERE/../../.cache/peer-venv}/bin/python" "$HERE/peer.py" serve "$@"
