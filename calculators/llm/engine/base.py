"""What both engine loops share (cb_loop.py and stateful_loop.py): the worker's spec, the
model's generation defaults, a request's GenerationConfig, and EngineBase (the connection, the
Outbox, the EXPECT and TELEMETRY bookkeeping, the head of every STEP's figures)."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from typing import Any

from calculators.llm.engine.outbox import Outbox
from calculators.llm.engine.protocol import Expect, Finish, FromWorker, Telemetry, ToWorker, encode
from calculators.llm.guided import GRAMMAR_KEY, structured_output
from calculators.llm.lora import ADAPTER_KEY

log = logging.getLogger("ovserve.engine")


@dataclass(frozen=True, slots=True)
class WorkerSpec:
    """Everything the worker needs to build its pipeline (picklable: crosses the spawn)."""

    models_path: str
    device: str = "CPU"
    scheduler: dict[str, Any] = field(default_factory=dict)  # SchedulerConfig fields
    properties: dict[str, Any] = field(default_factory=dict)  # plugin_config
    log_level: str = "INFO"
    stream_interval_s: float = 0.0  # see Outbox: how long plain progress may wait
    # LM_CB, VLM_CB: cb_loop.py; LM, VLM: stateful_loop.py (one request at a time)
    pipeline: str = "LM_CB"
    # Speculative decoding: the draft model's {"models_path", "device", "scheduler"} (or None).
    draft: dict[str, Any] | None = None
    # LoRA adapters: [{"name", "path" (.safetensors), "alpha"}]; requests pick one by name.
    adapters: list[dict[str, Any]] = field(default_factory=list)


# GenerationConfig fields copied from the model's defaults into every request's config.
_DEFAULT_FIELDS = (
    "eos_token_id", "stop_token_ids", "do_sample", "temperature", "top_p", "top_k",
    "repetition_penalty", "min_p",
)  # fmt: skip


def model_defaults(base: Any) -> dict[str, Any]:
    """The fields of the model's GenerationConfig every request starts from. Unset limits come
    back as SIZE_MAX, which the constructor cannot take back: dropped."""
    return {n: v for n in _DEFAULT_FIELDS if not (isinstance(v := getattr(base, n), int) and v >= 2**62)}


def engine_info(defaults: dict[str, Any], pipeline: str) -> dict[str, Any]:
    """What the READY message tells the server: the stop token ids, whether the model samples,
    the pipeline type, and (a vision model) that it takes images."""
    eos = defaults.get("eos_token_id", -1)
    stop_ids = sorted(set(defaults.get("stop_token_ids", ())) | ({eos} if eos >= 0 else set()))
    info = {"eos_token_ids": stop_ids, "do_sample": bool(defaults.get("do_sample", False)), "pipeline": pipeline}
    return {**info, VISION: True} if pipeline in ("VLM", "VLM_CB") else info


# READY's info key: why this servable cannot hold output to a grammar (absent when it can).
NO_STRUCTURED_OUTPUT = "structured_output_unavailable"
# READY's info key: the engine runs a vision-language model (takes AddVision, never Add).
VISION = "vision"


def structured_output_problem(pipe: Any) -> str | None:
    """Why genai's structured output cannot work with this pipeline's tokenizer, or None. genai
    2026.4 builds its grammar compiler from the tokenizer's vocabulary (the detokenizer's), and
    refuses an empty one only when a grammar is first compiled, failing that whole engine step
    with a native check message. The same vocabulary is asked for here, once, at load."""
    problem = "its tokenizer exposes no vocabulary (the grammar engine needs the detokenizer's vocabulary)"
    try:
        vocab = pipe.get_tokenizer().get_vocab_vector()
    except UnicodeDecodeError:
        return None  # there is a vocabulary: some byte-level tokens are not UTF-8 text
    except Exception as exc:  # genai's check: no vocabulary (e.g. no detokenizer, a SentencePiece wrapper)
        log.warning("structured output is unavailable: %s (genai: %s)", problem, exc)
        return problem
    return None if vocab else problem


def generation_config(ov_genai: Any, defaults: dict[str, Any], kwargs: dict[str, Any]) -> Any:
    """A request's GenerationConfig: the model's defaults, then the request's fields (its grammar
    as structured output); validated (a ValueError/RuntimeError names what the engine refuses)."""
    held_to = kwargs.pop(GRAMMAR_KEY, None)
    kwargs.pop(ADAPTER_KEY, None)  # LoRA: applied to the whole batch in turns (see cb_loop's ContinuousBatchingEngine.add())
    if "stop_token_ids" in kwargs:  # a set over there; the model's own stay in it
        kwargs["stop_token_ids"] = set(kwargs["stop_token_ids"]) | set(defaults.get("stop_token_ids", ()))
    config = ov_genai.GenerationConfig(**defaults)
    config.update_generation_config(**kwargs)
    if held_to is not None:
        config.structured_output_config = structured_output(ov_genai, held_to)
    config.validate()
    return config


class EngineBase:
    """What both engine loops share (cb_loop's and stateful_loop's): the connection, the
    Outbox, the EXPECT and TELEMETRY bookkeeping, and the head of every STEP's figures."""

    counts: dict[str, int]
    pipe: Any  # the genai pipeline

    def __init__(self, spec: WorkerSpec, conn: Connection) -> None:
        import openvino_genai as ov_genai  # imported here: only the worker process needs it

        self.ov_genai = ov_genai
        self.conn = conn
        self.spec = spec
        self.outbox = Outbox(spec.stream_interval_s)
        self.expected = 0  # requests announced by the server and not added yet
        # Metrics (ToWorker.TELEMETRY): off until the server asks; then see stats().
        self.telemetry = False
        self.step_times: list[float] = []  # durations of the steps since the last message
        self.queue_times: list[float] = []  # queue times of requests whose first tokens came since then
        reason = ov_genai.GenerationFinishReason
        self.finish_map = {reason.NONE: Finish.NONE, reason.STOP: Finish.STOP, reason.LENGTH: Finish.LENGTH}

    def info(self) -> dict[str, Any]:
        raise NotImplementedError

    def run(self) -> None:
        raise NotImplementedError

    def send(self, message: FromWorker) -> None:
        self.conn.send_bytes(encode(message))

    def bookkeeping(self, message: ToWorker) -> bool:
        """EXPECT and TELEMETRY, the commands both loops take alike; False for the others."""
        if isinstance(message, Expect):
            self.expected = max(0, self.expected + message.delta)
        elif isinstance(message, Telemetry):
            self.telemetry = bool(message.on)
        else:
            return False
        return True

    def base_stats(self, step_s: float, running: int) -> dict[str, Any]:
        return {"step_s": step_s, "running": running, "expected": self.expected, **self.counts}

    def take_timings(self, stats: dict[str, Any]) -> None:
        """Metrics on: the step and queue times since the last message go into `stats`."""
        if self.step_times:
            stats["steps"], self.step_times = self.step_times, []
        if self.queue_times:
            stats["queue_s"], self.queue_times = self.queue_times, []
