"""The in-process engine run of `ovserve bench`: the same workload straight on openvino-genai's
`ContinuousBatchingPipeline`, with no server, IPC or HTTP in the way. This is the ceiling a
server on the same engine can reach.

The driver loop admits the requests whose arrival time has come (at most `max_concurrency` at
once), runs one `step()`, then reads every handle that has news and timestamps its new tokens:
a request's new tokens of one step are one "chunk", as the server sends one SSE chunk per step.
Lives in calculators/ because serving/ never imports openvino_genai.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True, slots=True)
class EngineSettings:
    """The scheduler settings of the LLM node (graphs/stock/llm.pbtxt's values as defaults)."""

    models_path: str
    device: str = "CPU"
    cache_size: int = 1
    max_num_seqs: int = 256
    max_num_batched_tokens: int = 2048
    enable_prefix_caching: bool = True
    dynamic_split_fuse: bool = True
    plugin_config: dict[str, Any] = field(default_factory=dict)


@dataclass(slots=True)
class EngineRequestResult:
    start: float = 0.0  # perf_counter seconds, just before add_request
    chunk_times: list[float] = field(default_factory=list)  # after each step that gave it tokens
    end: float = 0.0
    prompt_tokens: int = 0
    output_tokens: int = 0
    error: str | None = None


# GenerationConfig fields taken from the model's defaults, as the engine worker does.
_DEFAULT_FIELDS = ("eos_token_id", "stop_token_ids", "do_sample", "temperature", "top_p", "top_k", "repetition_penalty", "min_p")


class EngineBench:
    def __init__(self, settings: EngineSettings) -> None:
        import openvino_genai as ov_genai

        self._ov_genai = ov_genai
        scheduler = ov_genai.SchedulerConfig()
        scheduler.cache_size = settings.cache_size
        scheduler.max_num_seqs = settings.max_num_seqs
        scheduler.max_num_batched_tokens = settings.max_num_batched_tokens
        scheduler.enable_prefix_caching = settings.enable_prefix_caching
        scheduler.dynamic_split_fuse = settings.dynamic_split_fuse
        self.pipe = ov_genai.ContinuousBatchingPipeline(settings.models_path, scheduler, settings.device, settings.plugin_config)
        base = self.pipe.get_config()
        self._defaults = {n: v for n in _DEFAULT_FIELDS if not (isinstance(v := getattr(base, n), int) and v >= 2**62)}
        self._next_id = 0

    def _config(self, output_len: int) -> Any:
        # What the server asks for: max_tokens, ignore_eos, temperature 0 (greedy).
        config = self._ov_genai.GenerationConfig(**self._defaults)
        config.update_generation_config(max_new_tokens=output_len, do_sample=False, ignore_eos=True)
        config.validate()
        return config

    def run(
        self,
        prompts: Sequence[Sequence[int]],
        arrivals: Sequence[float],
        output_len: int,
        max_concurrency: int | None,
        on_done: Callable[[], None] | None = None,
    ) -> tuple[list[EngineRequestResult], float]:
        """Run the workload; returns per-request results (in prompt order) and the wall time."""
        import numpy as np
        import openvino as ov

        status = self._ov_genai.GenerationStatus
        ok_states = (status.FINISHED, status.STOP)
        config = self._config(output_len)
        tensors = [ov.Tensor(np.asarray([list(ids)], dtype=np.int64)) for ids in prompts]
        results = [EngineRequestResult(prompt_tokens=len(ids)) for ids in prompts]
        limit = max_concurrency or len(prompts) or 1
        pending = deque(sorted(range(len(prompts)), key=lambda i: arrivals[i]))
        active: dict[int, tuple[Any, EngineRequestResult]] = {}  # keep handles alive while they run
        clock = time.perf_counter
        started = clock()
        while pending or active:
            now = clock()
            while pending and len(active) < limit and started + arrivals[pending[0]] <= now:
                index = pending.popleft()
                result = results[index]
                result.start = clock()
                request_id = self._next_id
                self._next_id += 1
                active[request_id] = (self.pipe.add_request(request_id, tensors[index], config), result)
            if not active:
                time.sleep(max(0.0, started + arrivals[pending[0]] - clock()))
                continue
            self.pipe.step()
            now = clock()
            finished = []
            for request_id, (handle, result) in active.items():
                state = handle.get_status()
                if handle.can_read():
                    new_tokens = sum(len(out.generated_ids) for out in handle.read().values())
                    if new_tokens:
                        result.chunk_times.append(now)
                        result.output_tokens += new_tokens
                if state != status.RUNNING:
                    result.end = now
                    if state not in ok_states:
                        result.error = f"engine request ended with status {state}"
                    finished.append(request_id)
            for request_id in finished:
                del active[request_id]
                if on_done is not None:
                    on_done()
        return results, clock() - started
