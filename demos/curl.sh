#!/usr/bin/env bash
# curl against ovserve (start it first: `make serve`). Usage: demos/curl.sh [base_url] [model]
set -euo pipefail
BASE=${1:-http://127.0.0.1:8000}
MODEL=${2:-tiny}
curl -s "$BASE/v3/models"; echo
curl -s "$BASE/v3/chat/completions" -H 'Content-Type: application/json' \
  -d "{\"model\":\"$MODEL\",\"messages\":[{\"role\":\"user\",\"content\":\"Say this is a test\"}]}"; echo
# Streaming (Server-Sent Events); -N turns off curl's buffering.
curl -sN "$BASE/v3/chat/completions" -H 'Content-Type: application/json' \
  -d "{\"model\":\"$MODEL\",\"stream\":true,\"stream_options\":{\"include_usage\":true},\"messages\":[{\"role\":\"user\",\"content\":\"Count to five.\"}]}"
curl -s "$BASE/v3/completions" -H 'Content-Type: application/json' \
  -d "{\"model\":\"$MODEL\",\"prompt\":\"The capital of France is\",\"max_tokens\":5}"; echo
