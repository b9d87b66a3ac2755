"""The engine worker for `pipeline_type: LM` (and `VLM`): one stateful `openvino_genai.LLMPipeline`
(a vision-language model: `VLMPipeline`, which takes the prompt as text with its images).

The pipeline NPU runs (and CPU/GPU on request): it generates for one request at a time, so the
others wait in a queue, in the order they came. It speaks the same protocol as the continuous
batching loop (cb_loop.py), so the engine client cannot tell them apart: each generated token
reaches the server as a STEP message through the same Outbox, sent from the pipeline's streamer
callback, which also takes the server's commands (ADD, CANCEL, ...) between two tokens, so a
cancelled request stops at once and new ones are queued while a generation runs.

What genai 2026.4's stateful pipeline cannot do with a streamer (n > 1, beam search), per-token
log-probabilities (it reports one score per sequence) and echo are refused before they get here
(calculators/openai/support.py `check_pipeline`).
"""

from __future__ import annotations

import logging
import time
from collections import deque
from collections.abc import Callable
from multiprocessing.connection import Connection
from typing import Any

from calculators.llm.engine.base import EngineBase, WorkerSpec, engine_info, generation_config, model_defaults
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

log = logging.getLogger("ovserve.engine")


def stateful_properties(spec: WorkerSpec) -> dict[str, Any]:
    """The pipeline's properties: the plugin_config, and on CPU/GPU the SDPA attention backend
    (genai otherwise builds its continuous-batching implementation behind LLMPipeline there),
    unless the plugin_config chooses one."""
    properties = dict(spec.properties)
    if not spec.device.startswith("NPU"):
        properties.setdefault("ATTENTION_BACKEND", "SDPA")
    return properties


class StatefulEngine(EngineBase):
    def __init__(self, spec: WorkerSpec, conn: Connection) -> None:
        super().__init__(spec, conn)
        ov_genai = self.ov_genai
        self.vision: VisionInputs | None = None
        if spec.pipeline == "VLM":
            self.pipe = ov_genai.VLMPipeline(spec.models_path, spec.device, **stateful_properties(spec))
            self.vision = VisionInputs(self.pipe.get_tokenizer())
        else:
            self.pipe = ov_genai.LLMPipeline(spec.models_path, spec.device, stateful_properties(spec))
        self.defaults = model_defaults(self.pipe.get_generation_config())
        self.queue: deque[tuple[Add | AddVision, float]] = deque()  # waiting, in order, with when each came
        self.current: int | None = None  # the request being generated
        self.cancel_current = False
        self.stopping = False  # SHUTDOWN came (or the server went away) during a generation
        self.counts = {"added": 0, "cancelled": 0, "finished": 0, "failed": 0}
        self.last_token_at = 0.0  # step_times here: the time per token
        self.streamed = 0  # tokens of the current generation passed on so far
        self.streamer_class = _streamer_class(ov_genai)

    def info(self) -> dict[str, Any]:
        return engine_info(self.defaults, self.spec.pipeline)

    def stats(self, step_s: float = 0.0) -> dict[str, Any]:
        """The same figures as the continuous-batching worker's (see cb_loop.py stats())."""
        stats = self.base_stats(step_s, len(self.queue) + (self.current is not None))
        if self.telemetry:
            stats["scheduled"] = int(self.current is not None)
            self.take_timings(stats)
        return stats

    # -- commands -----------------------------------------------------------------------
    def handle_command(self, message: ToWorker) -> None:
        if self.bookkeeping(message):
            return
        if isinstance(message, (Add, AddVision)):
            self.expected = max(0, self.expected - 1)
            self.queue.append((message, time.perf_counter()))
            self.counts["added"] += 1
        elif isinstance(message, Cancel):
            request_id = message.request_id
            self.outbox.drop(request_id)
            if request_id == self.current:
                self.cancel_current = True
            else:
                before = len(self.queue)
                self.queue = deque(item for item in self.queue if item[0].request_id != request_id)
                if len(self.queue) == before:
                    return
            self.counts["cancelled"] += 1
        elif isinstance(message, Shutdown):
            self.stopping = True

    def take_commands(self, wait: float | None) -> None:
        """Handle every pending command, waiting up to `wait` for the first."""
        conn = self.conn
        while not self.stopping and conn.poll(wait):
            self.handle_command(decode_to_worker(conn.recv_bytes()))
            wait = 0

    # -- generation ---------------------------------------------------------------------
    def on_tokens(self, token: int | list[int]) -> Any:
        """The streamer callback: pass the new tokens on, take commands, say whether to go on."""
        running = self.ov_genai.StreamingStatus.RUNNING
        tokens = [token] if isinstance(token, int) else list(token)
        self.streamed += len(tokens)
        now = time.perf_counter()
        if self.telemetry:
            self.step_times.append(now - self.last_token_at)
        self.last_token_at = now
        assert self.current is not None
        if not self.cancel_current:
            self.outbox.add([Update(self.current, Status.RUNNING, [SequenceDelta(0, tokens, Finish.NONE)])])
            if self.outbox.due(now):
                try:
                    self.send(Step(self.outbox.take(now), self.stats()))
                except OSError:  # the server went away
                    self.stopping = True
        try:
            self.take_commands(0)
        except (EOFError, OSError):  # the server went away: stop here, then the worker ends
            self.stopping = True
        return self.ov_genai.StreamingStatus.CANCEL if self.cancel_current or self.stopping else running

    def generate(self, request: Add | AddVision, added: float) -> None:
        request_id = request.request_id
        try:
            config = generation_config(self.ov_genai, self.defaults, request.config)
            run = self._runner(request, config)
        except Exception as exc:  # the engine refused this request only; others go on
            self.send(Rejected(request_id, str(exc)))
            return
        self.current, self.cancel_current = request_id, False
        self.last_token_at = started = time.perf_counter()
        if self.telemetry:
            self.queue_times.append(max(0.0, started - added))
        self.streamed = 0  # tokens the streamer passed on (on_tokens)
        streamer = self.streamer_class(self.on_tokens)
        try:
            result = run(streamer)
        except Exception:  # a failed generation fails this request, not the worker
            if self.stopping:
                raise
            log.exception("generation failed")  # the client answers with a stable message (client.py)
            if not self.cancel_current:
                self.outbox.add([Update(request_id, Status.FAILED, [])])
                self.counts["failed"] += 1
        else:
            if not self.cancel_current:
                # anything the streamer did not see (a VLM's result has no token ids: it streams them all)
                tokens = list(result.tokens[0])[self.streamed :] if hasattr(result, "tokens") else []
                if isinstance(request, AddVision) and (length := prompt_length(result)) is not None:
                    self.send(PromptLength(request_id, length))
                reasons = list(result.finish_reasons)
                finish = self.finish_map.get(reasons[0], Finish.STOP) if reasons else Finish.STOP
                self.outbox.add([Update(request_id, Status.FINISHED, [SequenceDelta(0, tokens, finish)])])
                self.counts["finished"] += 1
        finally:
            self.current = None
        if self.stopping:
            return
        now = time.perf_counter()
        self.send(Step(self.outbox.take(now), self.stats(now - started)))

    def _runner(self, request: Add | AddVision, config: Any) -> Callable[[Any], Any]:
        """The generate() call for this request, given a streamer (ValueError: a bad request)."""
        if isinstance(request, AddVision):
            if self.vision is None:
                raise ValueError("a text engine takes no images (AddVision)")
            text, images = self.vision.prompt(request), self.vision.images(request)
            config = vision_config(config)
            return lambda streamer: self.pipe.generate(text, images=images, generation_config=config, streamer=streamer)
        if self.vision is not None:
            raise ValueError("a vision-language engine takes its prompt as text (AddVision)")
        import numpy as np
        import openvino as ov

        tensor = ov.Tensor(np.asarray([request.token_ids], dtype=np.int64))
        return lambda streamer: self.pipe.generate(tensor, config, streamer)

    def run(self) -> None:
        reported = self.counts["cancelled"]
        while not self.stopping:
            self.take_commands(None if not self.queue else 0)
            if self.queue and not self.stopping:
                self.generate(*self.queue.popleft())
                reported = self.counts["cancelled"]
            elif not self.queue and self.counts["cancelled"] != reported:  # queued requests went: say so
                reported = self.counts["cancelled"]
                self.send(Step([], self.stats()))


def _streamer_class(ov_genai: Any) -> type:
    class Streamer(ov_genai.StreamerBase):  # type: ignore[misc,name-defined]
        """Hands each step's token ids to `write` (genai's text callbacks give text, not ids)."""

        def __init__(self, write: Callable[[int | list[int]], Any]) -> None:
            super().__init__()
            self._write = write

        def write(self, token: int | list[int]) -> Any:
            return self._write(token)

        def end(self) -> None:
            pass

    return Streamer
