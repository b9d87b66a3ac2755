"""The LLM side packet: the supervised engine worker plus the model's tokenizer, shared by every run,
and its loading from the node's options."""

from __future__ import annotations

import asyncio
import logging
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from calculators.llm.engine.base import WorkerSpec
from calculators.llm.engine.client import EngineClient
from calculators.llm.engine.supervisor import EngineSupervisor
from calculators.llm.gguf import resolve_model_dir
from calculators.llm.grammar_vetter import GrammarVetter
from calculators.llm.kv_cache import eviction_spec, with_kv_cache_precision
from calculators.llm.lora import adapter_specs
from calculators.llm.model_files import ModelTokenizer
from calculators.llm.options import LLMOptions
from calculators.llm.output_shaper import check_parser_names
from calculators.llm.pipeline_type import engine_model_file, resolve_pipeline
from calculators.llm.prompt_policy import PromptPolicy
from calculators.llm.scorer import PromptScorer
from calculators.llm.speculative import draft_spec
from calculators.llm.vision_prompt import VisionTemplate
from calculators.openai.tokenize import detokenize, tokenize
from calculators.ov_infer import plugin_properties
from graphs.calculator import ResourceContext
from graphs.errors import UnavailableError

log = logging.getLogger("ovserve.llm")


@dataclass
class LLMResource:
    """What the LLM graph's nodes share per servable: the supervised engine worker and the model's
    tokenizer, with what is worked out from them once (prompt policy, grammar vetter, scorer)."""

    options: LLMOptions
    model_dir: Path
    supervisor: EngineSupervisor
    tokenizer: ModelTokenizer
    eos_token_ids: frozenset[int]
    servable_name: str = ""  # the metrics' `model` label
    policy: PromptPolicy = field(init=False)
    # Structured output's grammars are compiled on trial before the engine sees them (its
    # process starts with the first grammar).
    grammar_vetter: GrammarVetter = field(init=False)
    # Echo with logprobs when the engine caches prefixes: a non-caching engine, started on use.
    scorer: PromptScorer = field(init=False)
    # A vision-language servable: how its chat template writes image parts (None: a text model).
    vision: VisionTemplate | None = field(init=False)

    def __post_init__(self) -> None:
        self.policy = PromptPolicy.of(self.options, self.tokenizer.context_length, self.tokenizer.token_bytes)
        spec = self.supervisor.client.spec
        self.grammar_vetter = GrammarVetter(str(self.model_dir), log_level=spec.log_level)
        self.scorer = PromptScorer(spec, self.servable_name)
        self.vision = VisionTemplate.probe(self.tokenizer, self.model_dir) if self.supervisor.client.vision else None

    @property
    def engine(self) -> EngineClient:
        """The current worker's client (a new one after a restart): read it per use, never keep it."""
        return self.supervisor.client

    @property
    def healthy(self) -> bool:
        """False while the engine worker is being restarted: the servable's readiness follows it."""
        return self.supervisor.healthy

    def tokenize_request(self, body: dict[str, Any]) -> dict[str, Any]:  # the front end's `/v3/tokenize`
        return tokenize(body, self.tokenizer, self.policy)

    def detokenize_request(self, body: dict[str, Any]) -> dict[str, Any]:  # the front end's `/v3/detokenize`
        return detokenize(body, self.tokenizer, self.policy)

    def stats(self) -> dict[str, object]:
        """Engine figures for /debug/stats and /metrics: requests in flight here and in the worker
        (the worker's last STEP stats; with metrics on also `scheduled`, `kv_usage`, `kv_bytes`)."""
        return {**self.supervisor.stats(), "scorer_started": self.scorer.started, **self.engine.last_stats}

    async def aclose(self) -> None:
        await self.supervisor.aclose()  # first: no restart once closing
        await self.grammar_vetter.aclose()
        await self.scorer.aclose()


def check_device(device: str) -> None:
    """Fail clearly when a plain device name is not on this machine (HETERO:/MULTI:/AUTO pass)."""
    if ":" in device or device.startswith(("AUTO", "HETERO", "MULTI", "BATCH")):
        return
    import openvino as ov

    available = ov.Core().available_devices
    if device not in available and not any(d.split(".")[0] == device for d in available):
        raise UnavailableError(f"device {device!r} is not available here; available devices: {', '.join(available)}")


_UNSUPPORTED_PROPERTY = re.compile(r"Unsupported property ([\w.]+) by (\S+) plugin")


def _load_error(exc: UnavailableError, options: LLMOptions) -> UnavailableError:
    """OpenVINO's error for an unknown plugin_config key is a stack of "Exception from" lines:
    say which key, which device, and where it came from."""
    found = _UNSUPPORTED_PROPERTY.search(str(exc))
    if found is None:
        return exc
    key, device = found.groups()
    return UnavailableError(f"plugin_config: the {device} device has no property {key!r} (OpenVINO refused it when loading the model)")


async def create_llm_resource(options: LLMOptions, ctx: ResourceContext) -> LLMResource:
    unsupported = options.unsupported()
    if unsupported:
        raise UnavailableError(f"node {ctx.node_name!r}: options not supported yet: {', '.join(unsupported)}")
    try:
        check_parser_names(options)
    except ValueError as exc:
        raise UnavailableError(f"node {ctx.node_name!r}: {exc}") from None
    model_dir = (ctx.base_path / options.models_path).resolve()
    # A .gguf file (or a folder holding one) is served from its cached IR conversion.
    cache_dir = plugin_properties(options.plugin_config).get("CACHE_DIR")
    model_dir = await resolve_model_dir(model_dir, str(cache_dir) if cache_dir else None)
    # AUTO resolved against the folder's kind (text or vision): every check below, and the
    # servable's nodes (options.pipeline), see the engine that runs.
    options = options.model_copy(update={"pipeline_type": resolve_pipeline(options.pipeline_type, options.device, model_dir)})
    model_file = engine_model_file(model_dir, options.pipeline)
    if not model_file.is_file():
        raise UnavailableError(f"no OpenVINO model ({model_file.name}) in {model_dir}")
    check_device(options.device)
    spec = WorkerSpec(
        models_path=str(model_dir),
        device=options.device,
        scheduler={
            "cache_size": 0 if options.num_kv_blocks else options.cache_size,
            "num_kv_blocks": options.num_kv_blocks,
            "max_num_seqs": options.max_num_seqs,
            "max_num_batched_tokens": options.max_num_batched_tokens,
            "dynamic_split_fuse": options.dynamic_split_fuse,
            "enable_prefix_caching": options.enable_prefix_caching,
            "cache_eviction_config": eviction_spec(options),
        },
        properties=with_kv_cache_precision(options, plugin_properties(options.plugin_config)),
        log_level=logging.getLevelName(logging.getLogger().getEffectiveLevel()),
        stream_interval_s=options.stream_interval_ms / 1000,
        draft=draft_spec(options, ctx.base_path),
        adapters=adapter_specs(options, ctx.base_path),
        pipeline=options.pipeline,
    )
    loop = asyncio.get_running_loop()
    # The tokenizer loads in a thread while the worker process compiles the model.
    tokenizer_future = loop.run_in_executor(None, ModelTokenizer.load, model_dir, options.tool_parser)
    try:
        engine = await EngineClient.start(spec, ctx.servable_name)
    except UnavailableError as exc:
        await asyncio.gather(tokenizer_future, return_exceptions=True)
        raise _load_error(exc, options) from None
    try:
        tokenizer = await tokenizer_future
    except Exception:
        await engine.aclose()
        raise
    log.info("servable %s: engine ready on %s, pipeline %s (%s)", ctx.servable_name, options.device, options.pipeline, model_dir)
    eos_token_ids = frozenset(engine.info.get("eos_token_ids", []))
    return LLMResource(options, model_dir, EngineSupervisor(engine), tokenizer, eos_token_ids, ctx.servable_name)
