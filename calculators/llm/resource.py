"""The LLM side packet: one engine worker plus the model's tokenizer, shared by every run."""

from __future__ import annotations

import asyncio
import functools
import itertools
import logging
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from calculators.llm.chat_prompt import refuse_surely_too_long, template_messages
from calculators.llm.engine.base import WorkerSpec
from calculators.llm.engine.client import EngineClient
from calculators.llm.gguf import resolve_model_dir
from calculators.llm.grammar_vetter import GrammarVetter
from calculators.llm.kv_cache import eviction_spec, with_kv_cache_precision
from calculators.llm.lora import adapter_specs
from calculators.llm.model_files import ModelTokenizer
from calculators.llm.options import LLMOptions, Speculation
from calculators.llm.scorer import PromptScorer
from calculators.llm.speculative import draft_spec
from calculators.openai.parsed_text import ParsedText
from calculators.openai.tokenize import (
    TokenizeChat,
    check_detokenize_size,
    check_prompt_tokens,
    check_token_ids,
    parse_detokenize,
    parse_tokenize,
)
from calculators.ov_infer import plugin_properties
from calculators.parsers import OutputParser, prompt_opens_reasoning
from graphs.calculator import ResourceContext
from graphs.errors import UnavailableError

log = logging.getLogger("ovserve.llm")


# A worker that dies unasked is started again, after these waits while restarts keep failing.
RESTART_BACKOFF_S = (0.0, 1.0, 2.0, 5.0, 10.0, 30.0)


@dataclass
class LLMResource:
    options: LLMOptions
    model_dir: Path
    engine: EngineClient
    tokenizer: ModelTokenizer
    eos_token_ids: frozenset[int]
    servable_name: str = ""  # the metrics' `model` label
    restarts: int = 0
    _closed: bool = False
    _restarting: asyncio.Task[None] | None = None
    # Structured output's grammars are compiled on trial before the engine sees them (its
    # process starts with the first grammar).
    grammar_vetter: GrammarVetter = field(init=False)
    # Echo with logprobs when the engine caches prefixes: a non-caching engine, started on use.
    scorer: PromptScorer = field(init=False)

    def __post_init__(self) -> None:
        self.engine.on_exit = self._engine_exited
        self.grammar_vetter = GrammarVetter(str(self.model_dir), log_level=self.engine.spec.log_level)
        self.scorer = PromptScorer(self.engine.spec, self.servable_name)

    @property
    def healthy(self) -> bool:
        """False while the engine worker is down (being restarted): readiness follows it."""
        return self.engine.alive

    def _engine_exited(self, reason: str) -> None:
        # Requests in flight already got a clear error (EngineClient._fail_all); new ones get a
        # 503 from submit() until the new worker is up.
        if not self._closed and self._restarting is None:
            self._restarting = asyncio.get_running_loop().create_task(self._restart(), name="engine-restart")

    async def _restart(self) -> None:
        spec = self.engine.spec
        try:
            for attempt in itertools.count():
                await asyncio.sleep(RESTART_BACKOFF_S[min(attempt, len(RESTART_BACKOFF_S) - 1)])
                log.warning("restarting the engine worker for %s (attempt %d)", self.model_dir, attempt + 1)
                try:
                    engine = await EngineClient.start(spec, self.engine.servable_name)
                except UnavailableError as exc:
                    log.error("engine restart failed: %s", exc)
                    continue
                if self._closed:
                    await engine.aclose()
                    return
                engine.on_exit = self._engine_exited
                self.engine = engine
                self.restarts += 1
                log.warning("engine worker for %s is back (restart %d)", self.model_dir, self.restarts)
                return
        finally:
            self._restarting = None

    @property
    def context_length(self) -> int | None:
        return self.tokenizer.context_length

    @functools.cached_property  # from load-time options only: worked out once, not per request
    def prompt_limit(self) -> int | None:
        """The most prompt tokens a request may bring: the node's max_prompt_tokens if set and
        below the context (a prompt must leave room for one new token), else none beyond it."""
        limit = self.options.max_prompt_tokens or None
        npu_limit = npu_prompt_limit(self.options)
        if npu_limit is not None and (limit is None or npu_limit < limit):
            limit = npu_limit
        context = self.context_length
        if context is not None and (limit is None or limit >= context):
            return None
        return limit

    @functools.cached_property
    def speculation(self) -> Speculation | None:
        """The servable's speculative decoding (options.speculation(), parsed once)."""
        return self.options.speculation()

    def output_shaper(self, parse_tools: bool, template_kwargs: dict[str, Any], single_call: bool = False) -> Any:
        """A text shaper for chat output (the node's reasoning / tool parsers), or None for plain
        text. Whether the output starts inside a reasoning block depends on the template's
        generation prompt (e.g. `enable_thinking`), so that prompt is rendered once to see."""
        tool_parser = self.options.tool_parser if parse_tools else None
        reasoning_parser = self.options.reasoning_parser
        if tool_parser is None and reasoning_parser is None:
            return None
        starts_in_reasoning = False
        if reasoning_parser is not None and self.tokenizer.chat_template:
            probe = self.tokenizer.render_chat([{"role": "user", "content": "?"}], add_generation_prompt=True, **template_kwargs)
            starts_in_reasoning = prompt_opens_reasoning(probe)
        return ParsedText(OutputParser(tool_parser, reasoning_parser, starts_in_reasoning), single_call)

    def tokenize_request(self, body: dict[str, Any]) -> dict[str, Any]:
        """`/v3/tokenize`: a prompt, or chat messages through the chat template, to token ids,
        within the bounds chat puts on a prompt (a 400 beyond them). Blocking: the front end runs
        it in a thread, under admission."""
        request = parse_tokenize(body)
        if isinstance(request, TokenizeChat):
            tools = [t.model_dump(exclude_none=True) for t in request.tools] if request.tools else None
            text = self.tokenizer.render_chat(
                template_messages(request.messages),
                add_generation_prompt=request.add_generation_prompt,
                tools=tools,
                **(request.chat_template_kwargs or {}),
            )
            param = "messages"
        else:
            text, param = request.prompt, "prompt"
        # genai's encode holds the GIL throughout: a text that cannot fit is refused unencoded
        refuse_surely_too_long(text, self.tokenizer.token_bytes, self.context_length, self.prompt_limit, param)
        tokens = self.tokenizer.encode(text, add_special_tokens=request.add_special_tokens)
        check_prompt_tokens(len(tokens), self.prompt_limit, self.context_length, param)
        return {"count": len(tokens), "max_model_len": self.context_length, "tokens": tokens}

    def detokenize_request(self, body: dict[str, Any]) -> dict[str, Any]:
        """`/v3/detokenize`: token ids (at most a context's worth) to text (special tokens shown).
        Blocking, like tokenize_request."""
        check_detokenize_size(body, self.context_length or self.prompt_limit)
        request = parse_detokenize(body)
        if self.tokenizer.token_bytes is not None:
            check_token_ids(request.tokens, len(self.tokenizer.token_bytes.table))
        return {"prompt": self.tokenizer.decode(request.tokens, skip_special_tokens=False)}

    def stats(self) -> dict[str, object]:
        """Engine figures for /debug/stats and /metrics: requests in flight here and in the worker
        (the worker's last STEP stats; with metrics on also `scheduled`, `kv_usage`, `kv_bytes`)."""
        return {
            "alive": self.engine.alive,
            "pid": self.engine.pid,
            "restarts": self.restarts,
            "active_requests": self.engine.active_requests,
            "scorer_started": self.scorer.started,
            **self.engine.last_stats,
        }

    async def aclose(self) -> None:
        self._closed = True
        if self._restarting is not None:
            self._restarting.cancel()
            await asyncio.gather(self._restarting, return_exceptions=True)
        await self.grammar_vetter.aclose()
        await self.scorer.aclose()
        await self.engine.aclose()


def check_device(device: str) -> None:
    """Fail clearly when a plain device name is not on this machine (HETERO:/MULTI:/AUTO pass)."""
    if ":" in device or device.startswith(("AUTO", "HETERO", "MULTI", "BATCH")):
        return
    import openvino as ov

    available = ov.Core().available_devices
    if device not in available and not any(d.split(".")[0] == device for d in available):
        raise UnavailableError(f"device {device!r} is not available here; available devices: {', '.join(available)}")


# genai's stateful pipeline on NPU compiles the model for prompts up to MAX_PROMPT_LEN tokens
# (plugin_config; genai's default below): longer prompts are refused with a 400 before the engine.
NPU_DEFAULT_MAX_PROMPT_LEN = 1024


def npu_prompt_limit(options: LLMOptions) -> int | None:
    """The prompt limit the NPU's stateful pipeline sets (None elsewhere)."""
    if options.pipeline != "LM" or options.device.split(".")[0] != "NPU":
        return None
    try:
        value = plugin_properties(options.plugin_config).get("MAX_PROMPT_LEN", NPU_DEFAULT_MAX_PROMPT_LEN)
        return int(value)  # type: ignore[call-overload]
    except (UnavailableError, TypeError, ValueError):
        return NPU_DEFAULT_MAX_PROMPT_LEN  # the load reports a bad plugin_config


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
    try:  # unknown parser names fail the servable at load, not each request
        OutputParser(options.tool_parser, options.reasoning_parser)
    except ValueError as exc:
        raise UnavailableError(f"node {ctx.node_name!r}: {exc}") from None
    model_dir = (ctx.base_path / options.models_path).resolve()
    # A .gguf file (or a folder holding one) is served from its cached IR conversion.
    cache_dir = plugin_properties(options.plugin_config).get("CACHE_DIR")
    model_dir = await resolve_model_dir(model_dir, str(cache_dir) if cache_dir else None)
    if not (model_dir / "openvino_model.xml").is_file():
        raise UnavailableError(f"no OpenVINO model (openvino_model.xml) in {model_dir}")
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
    return LLMResource(options, model_dir, engine, tokenizer, frozenset(engine.info.get("eos_token_ids", [])), ctx.servable_name)
