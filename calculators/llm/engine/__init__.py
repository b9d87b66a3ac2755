"""The LLM engine: one spawned worker process per servable, and the server's client of it.

Read in this order (imports only go down this list's arrows, never back):
- protocol.py: the IPC frames and typed messages (msgspec structs: ToWorker, FromWorker, Step, ...).
- client.py: EngineClient, the server side: starts the worker, sends requests, streams updates.
- supervisor.py: EngineSupervisor, which owns the current client and starts a new worker (with
  backoff) when one dies unasked; counts restarts, tells health.
- worker_main.py: the spawned process's entry point; picks the loop by pipeline type.
- base.py: WorkerSpec and what both loops share (EngineBase, generation_config()).
- cb_loop.py: the continuous-batching loop (pipeline LM_CB); stateful_loop.py: pipeline LM.
- outbox.py: how a loop batches its updates into messages.
"""
