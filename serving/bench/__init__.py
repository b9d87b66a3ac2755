"""`ovserve bench`: a serving benchmark client (like `vllm bench serve`).

Random prompts of an exact token length, a fixed output length (`ignore_eos`), a concurrency
limit and Poisson arrivals, streamed from any OpenAI-compatible server; or the same workload run
directly on openvino-genai's engine in this process (`--in-process`, the ceiling); or both back to
back (`--compare`). Modules: `workload` (prompts, arrival schedule), `client` (HTTP side),
`stats` (metrics, tables, JSON), `server_process` (start/stop an ovserve process), `cli`.
"""
