"""The continuous-batching engine loop: owns one ContinuousBatchingPipeline and runs its steps.

It runs in its own (spawned) process because `step()` holds the GIL for the whole step
(docs/architecture.md, fact 1). Loop: take every pending command, run one step, then send ONE message
with the new tokens of every request that has any. When nothing is running it blocks on
the connection, so an idle server costs nothing.
"""

from __future__ import annotations

import logging
import time
from multiprocessing.connection import Connection
from typing import Any

from calculators.llm.engine.base import EngineBase, WorkerSpec, engine_info, generation_config, model_defaults
from calculators.llm.engine.cb_pipeline import build_pipeline
from calculators.llm.engine.protocol import (
    Add,
    AddVision,
    Cancel,
    Finish,
    PromptLength,
    Rejected,
    SequenceDelta,
    Shutdown,
    Status,
    Step,
    ToWorker,
    Update,
    decode_to_worker,
)
from calculators.llm.engine.vision import VisionInputs, prompt_length, vision_config
from calculators.llm.engine.warmup import warm_up
from calculators.llm.lora import ADAPTER_KEY

log = logging.getLogger("ovserve.engine")


# Going from idle to busy, before the first step keep taking requests while the server has
# announced more (EXPECT) or they keep arriving less than ADMIT_GAP_S apart, up to ADMIT_MAX_S:
# a burst then starts in one batch, as it would in-process, instead of one request getting a
# whole prefill step to itself while the rest queue behind it. A lone request waits ADMIT_GAP_S.
ADMIT_GAP_S = 0.002
ADMIT_MAX_S = 0.020
# While busy, announced requests get up to JOIN_WAIT_S to arrive before the next step, and
# requests arriving in a burst (less than ADMIT_GAP_S apart) are taken together, so they join
# one step (as they would in-process) instead of straggling into several.
JOIN_WAIT_S = 0.008


class ContinuousBatchingEngine(EngineBase):
    def __init__(self, spec: WorkerSpec, conn: Connection) -> None:
        super().__init__(spec, conn)
        ov_genai = self.ov_genai
        # LoRA: the pipeline holds every adapter; requests take turns by adapter (see add()).
        self.adapters = {a["name"]: (ov_genai.Adapter(a["path"]), a["alpha"]) for a in spec.adapters}
        self.current_adapter: str | None = None  # what the pipeline's steps apply now (see add())
        self.waiting: list[Add | AddVision] = []  # requests waiting for their adapter's turn
        self.pipe = self.new_pipeline()
        self.defaults = model_defaults(self.pipe.get_config())
        # A vision model (VLM_CB): requests come as AddVision, prompts as text with images.
        self.vision = VisionInputs(self.pipe.get_tokenizer()) if spec.pipeline == "VLM_CB" else None
        self.vision_requests: set[int] = set()  # their prompt length is genai's, sent at their end
        if (seconds := warm_up(self.pipe, ov_genai, assisted=spec.draft is not None, vision=self.vision is not None)) is None:
            self.pipe = self.new_pipeline()  # what the failed warm-up left in it must not run
        else:
            log.info("engine warmed up in %.2f s", seconds)
        self.handles: dict[int, Any] = {}
        self.counts = {"added": 0, "cancelled": 0, "finished": 0, "failed": 0, "preempted": 0}
        # Preemption (genai 2026.4 has no figure for it): a generating request that goes a step
        # without tokens while still RUNNING was preempted: the scheduler freed its KV blocks for
        # others and recomputes it later. Counted once per stall, in dynamic split-fuse scheduling
        # only (the other mode runs prompt-only steps in which generating requests wait).
        self.stalled: set[int] = set()
        self.count_preemptions = bool(spec.scheduler.get("dynamic_split_fuse", True))
        self.added_at: dict[int, float] = {}  # requests with no tokens yet: when add_request took them
        self.step_started = 0.0
        self.cancelled_unstepped = False  # a request was cancelled: genai frees it in its next step()
        # KV-cache overflow (see ignored()): each request's prompt length and output so far, and
        # what a request that has produced nothing yet was added with (to add it again).
        self.footprint: dict[int, int] = {}
        self.unstarted: dict[int, tuple[Any, Any]] = {}
        self.readded: set[int] = set()
        self.beam_width: dict[int, int] = {}  # beam-search requests: how many sequences to return
        self.wants_logprobs: dict[int, bool] = {}
        # per request: engine sequence id -> index in the response's `choices`
        self.seq_index: dict[int, dict[int, int]] = {}
        status = ov_genai.GenerationStatus
        self.status_map = {
            status.RUNNING: Status.RUNNING,
            status.FINISHED: Status.FINISHED,
            status.IGNORED: Status.IGNORED,
            status.CANCEL: Status.CANCELLED,
            status.STOP: Status.FINISHED,
        }

    def new_pipeline(self) -> Any:
        self.current_adapter = None  # a new pipeline starts with no adapter applied
        return build_pipeline(self.ov_genai, self.spec, [adapter for adapter, _alpha in self.adapters.values()])

    def info(self) -> dict[str, Any]:
        return engine_info(self.defaults, self.spec.pipeline)

    # -- commands -----------------------------------------------------------------------
    def handle_command(self, message: ToWorker) -> bool:
        if self.bookkeeping(message):
            pass
        elif isinstance(message, (Add, AddVision)):
            self.expected = max(0, self.expected - 1)
            self.add(message)
        elif isinstance(message, Cancel):
            self.cancel(message.request_id)
        elif isinstance(message, Shutdown):
            return False
        return True

    def cancel(self, request_id: int) -> None:
        handle = self.handles.pop(request_id, None)
        self.seq_index.pop(request_id, None)
        self.added_at.pop(request_id, None)
        self.outbox.drop(request_id)
        self._forget(request_id)
        if handle is not None:
            handle.cancel()
            self.counts["cancelled"] += 1
            self.cancelled_unstepped = True
        if self.adapters:
            self.waiting = [w for w in self.waiting if w.request_id != request_id]

    def add(self, request: Add | AddVision) -> None:
        """LoRA: genai 2026.4 runs each step with ONE adapter setting for the whole batch (a
        request's GenerationConfig.adapters is applied only by generate(), which needs an idle
        pipeline). So requests take turns by adapter: one joins the running batch if it uses the
        same adapter and no request of another adapter waits (so none starves); otherwise it
        waits, and when the batch drains the adapter of the longest-waiting request gets the
        next turn, with every waiting request of that adapter (_next_turn, from run())."""
        if self.adapters:
            adapter = request.config.get(ADAPTER_KEY)
            if self.waiting or (self.handles and adapter != self.current_adapter):
                self.waiting.append(request)
                return
            self._switch_adapter(adapter)
        self._add(request)

    def _next_turn(self) -> None:
        while not self.handles and self.waiting:
            adapter = self.waiting[0].config.get(ADAPTER_KEY)
            turn = [w for w in self.waiting if w.config.get(ADAPTER_KEY) == adapter]
            self.waiting = [w for w in self.waiting if w.config.get(ADAPTER_KEY) != adapter]
            self._switch_adapter(adapter)
            for request in turn:
                self._add(request)

    def _switch_adapter(self, adapter: str | None) -> None:
        """Make the pipeline's steps apply `adapter` (None: the base model): genai applies a
        config's adapters in generate() only, so generate one token from a short prompt (of 8
        tokens: after some request sequences, a one-token prompt here corrupted genai 2026.4's heap)."""
        if adapter == self.current_adapter:
            return
        import numpy as np
        import openvino as ov

        if self.cancelled_unstepped:  # generate() needs no request left in the pipeline
            self.release_cancelled()
        config = self.ov_genai.GenerationConfig(max_new_tokens=1, do_sample=False)
        config.adapters = self.ov_genai.AdapterConfig(*self.adapters[adapter]) if adapter else self.ov_genai.AdapterConfig()
        self.pipe.generate([ov.Tensor(np.zeros((1, 8), dtype=np.int64))], [config])
        self.current_adapter = adapter

    def _add(self, request: Add | AddVision) -> None:
        request_id = request.request_id
        try:
            config = generation_config(self.ov_genai, self.defaults, request.config)
            prompt = self._prompt(request, config)
            self.handles[request_id] = self.pipe.add_request(request_id, *prompt)
            self.footprint[request_id] = len(request.token_ids) if isinstance(request, Add) else request.prompt_tokens
            self.unstarted[request_id] = prompt
            if isinstance(request, AddVision):
                self.vision_requests.add(request_id)
            self.counts["added"] += 1
            if self.telemetry:
                self.added_at[request_id] = time.perf_counter()
            self.seq_index[request_id] = {}
            self.wants_logprobs[request_id] = config.logprobs > 0
            if config.num_beams > 1:  # beams arrive once, ranked: keep the best num_return_sequences
                self.beam_width[request_id] = config.num_return_sequences
        except Exception as exc:  # the engine refused this request only; others go on
            self.send(Rejected(request_id, str(exc)))

    def _prompt(self, request: Add | AddVision, config: Any) -> tuple[Any, ...]:
        """add_request's arguments after the id: (token ids, config), or (text, images, config)."""
        if isinstance(request, Add):
            if self.vision is not None:  # (the client never sends it: it would fail the whole step)
                raise ValueError("a vision-language engine takes its prompt as text (AddVision)")
            import numpy as np
            import openvino as ov

            return ov.Tensor(np.asarray([request.token_ids], dtype=np.int64)), config
        if self.vision is None:
            raise ValueError("a text engine takes no images (AddVision)")
        return self.vision.prompt(request), self.vision.images(request), vision_config(config)

    # -- the step loop ------------------------------------------------------------------
    def collect(self) -> list[Update]:
        updates: list[Update] = []
        done: list[int] = []
        any_ignored = False
        for request_id, handle in self.handles.items():
            status = self.status_map.get(handle.get_status(), Status.FAILED)
            any_ignored = any_ignored or status == Status.IGNORED
            outputs: list[SequenceDelta] = []
            if handle.can_read():
                indices = self.seq_index[request_id]
                read = list(handle.read().items())
                keep = self.beam_width.get(request_id)
                if keep is not None:  # best beams first
                    read = sorted(read, key=lambda item: item[1].score, reverse=True)[:keep]
                for seq_id, out in read:
                    ids = list(out.generated_ids)  # the binding builds a new list on every read: read once
                    self.footprint[request_id] += len(ids)
                    index = indices.setdefault(seq_id, len(indices))
                    logprobs = list(out.generated_log_probs) if self.wants_logprobs.get(request_id) else None
                    outputs.append(SequenceDelta(index, ids, self.finish_map.get(out.finish_reason, Finish.NONE), logprobs))
                    if ids and self.unstarted:  # (not on an empty read: genai gives one with IGNORED)
                        self.unstarted.pop(request_id, None)
            if status != Status.RUNNING:
                done.append(request_id)
                if request_id in self.vision_requests and (tokens := prompt_length(handle)) is not None:
                    self.send(PromptLength(request_id, tokens))  # before the STEP that ends it
            elif self.count_preemptions and request_id not in self.unstarted and request_id not in self.beam_width:
                self._preempted(request_id, any(output.token_ids for output in outputs))
            if outputs or status != Status.RUNNING:
                updates.append(Update(request_id, status, outputs))
        if any_ignored:
            updates, done = self.ignored(updates, done)
        self.counts["finished"] += len(done)
        for request_id in done:
            del self.handles[request_id]
            del self.seq_index[request_id]
            self._forget(request_id)
        if self.added_at:  # metrics on and some request still waits for its first tokens
            self._queue_times(updates, done)
        return updates

    def _preempted(self, request_id: int, produced: bool) -> None:
        if produced:
            self.stalled.discard(request_id)
        elif request_id not in self.stalled:
            self.stalled.add(request_id)
            self.counts["preempted"] += 1

    def _forget(self, request_id: int) -> None:
        self.stalled.discard(request_id)
        self.vision_requests.discard(request_id)
        self.beam_width.pop(request_id, None)
        self.wants_logprobs.pop(request_id, None)
        self.footprint.pop(request_id, None)
        self.unstarted.pop(request_id, None)
        self.readded.discard(request_id)

    def ignored(self, updates: list[Update], done: list[int]) -> tuple[list[Update], list[int]]:
        """genai 2026.4, when a step can schedule nothing because one request outgrew the whole KV
        cache, marks every request it holds IGNORED, not only that one. Only the largest (prompt
        plus output) stays IGNORED (a 400: it can never fit). The others were dropped: those with
        no output yet are added again once, as they came (their clients notice nothing); the rest
        end as DROPPED (a 503: a retry will do)."""
        ignored = [update.request_id for update in updates if update.status == Status.IGNORED]
        culprit = max(ignored, key=lambda request_id: self.footprint.get(request_id, 0))
        kept: list[Update] = []
        for update in updates:
            request_id = update.request_id
            if update.status != Status.IGNORED or request_id == culprit:
                kept.append(update)
                continue
            log.warning("request %d was dropped by the engine when request %d outgrew the KV cache", request_id, culprit)
            again = self.unstarted.get(request_id)
            if again is not None and request_id not in self.readded:
                self.handles[request_id] = self.pipe.add_request(request_id, *again)
                self.readded.add(request_id)
                done.remove(request_id)
                continue
            kept.append(Update(request_id, Status.DROPPED, update.outputs))
        return kept, done

    def _queue_times(self, updates: list[Update], done: list[int]) -> None:
        """Queue time: from add_request to the start of the step that produced a request's first
        tokens (a prompt prefilled in several chunks also waits for its earlier chunks)."""
        for update in updates:
            if update.outputs and (added := self.added_at.pop(update.request_id, None)) is not None:
                self.queue_times.append(max(0.0, self.step_started - added))
        for request_id in done:  # ended without a token (cancelled, ignored, failed)
            self.added_at.pop(request_id, None)

    def stats(self, step_s: float = 0.0) -> dict[str, Any]:
        """The figures every STEP carries. With telemetry on, also: `scheduled` (requests the
        last step scheduled), `kv_usage` (KV-cache use 0..1 in the last step; genai reports a
        percentage), `kv_bytes` (the KV cache's size), and, when any, `steps` and `queue_s`
        (durations since the previous message; they are taken here, so call this only to send)."""
        stats = self.base_stats(step_s, len(self.handles))
        if self.telemetry:
            metrics = self.pipe.get_metrics()
            busy = bool(self.handles)  # idle: the figures still describe the last step
            stats["scheduled"] = min(metrics.scheduled_requests, len(self.handles))
            stats["kv_usage"] = metrics.cache_usage / 100 if busy else 0.0
            stats["kv_bytes"] = metrics.kv_cache_size_in_bytes
            self.take_timings(stats)
        return stats

    def take_commands(self, wait: float | None) -> bool:
        """Handle every pending command (waiting up to `wait` for the first); False on shutdown."""
        conn = self.conn
        while conn.poll(wait):
            if not self.handle_command(decode_to_worker(conn.recv_bytes())):
                return False
            wait = 0
        return True

    def gather(self, limit_s: float) -> bool:
        """Take commands while requests are announced or keep coming, for up to `limit_s`."""
        deadline = time.monotonic() + limit_s
        while (left := deadline - time.monotonic()) > 0:
            if not self.conn.poll(left if self.expected > 0 else min(left, ADMIT_GAP_S)):
                break
            if not self.take_commands(0):
                return False
        return True

    def release_cancelled(self) -> None:
        """genai frees a cancelled request (its KV blocks, its sequences) only in its next step():
        when the last live request was cancelled, step once more, so that an idle engine holds
        no KV cache (found by tests/e2e/test_disconnects.py: the blocks stayed taken until the
        next request, and genai reported them leaked at shutdown)."""
        self.cancelled_unstepped = False
        try:
            self.pipe.step()
        except Exception:
            log.exception("engine step releasing cancelled requests failed")

    def run(self) -> None:
        while True:
            # LoRA: the batch drained (finished, cancelled, or a failed step): the next adapter's turn
            if self.waiting and not self.handles:
                self._next_turn()
            # Block only when idle; otherwise take what is pending and step.
            busy = bool(self.handles)
            added = self.counts["added"]
            if not self.take_commands(None if not busy else 0):
                return
            arrived = self.counts["added"] > added
            if busy and (self.expected > 0 or arrived) and not self.gather(JOIN_WAIT_S):
                return
            if not self.handles:
                if self.cancelled_unstepped:
                    self.release_cancelled()
                if busy:  # just went idle (e.g. the last request was cancelled): say so
                    self.send(Step([], self.stats()))
                continue
            if not busy and not self.gather(ADMIT_MAX_S):
                return
            started = self.step_started = time.perf_counter()
            try:
                self.pipe.step()
            except Exception:  # a failed step fails the requests in it, not the worker
                log.exception("engine step failed")
                # The native text (build paths, check expressions) stays in the log: the client
                # gets a stable meaning (engine/client.py renders FAILED without it).
                self.outbox.add([Update(rid, Status.FAILED, []) for rid in self.handles])
                self.counts["failed"] += len(self.handles)
                for request_id in list(self.handles):
                    self._forget(request_id)
                self.handles.clear()
                self.seq_index.clear()
                self.added_at.clear()
                self.send(Step(self.outbox.take(time.perf_counter()), self.stats()))
                # A pipeline whose step raised stays broken (every later step fails "already in
                # scheduling phase", genai 2026.4): one bad request (e.g. a JSON schema the grammar
                # compiler refuses) would fail all requests after it. Start a fresh one.
                del self.pipe
                self.pipe = self.new_pipeline()
                continue
            now = time.perf_counter()
            if self.telemetry:
                self.step_times.append(now - started)
            self.outbox.add(self.collect())
            if self.outbox.due(now):
                self.send(Step(self.outbox.take(now), self.stats(now - started)))
