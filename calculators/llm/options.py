"""Node options of the LLM calculators: the field names of OVMS's `LLMCalculatorOptions`,
so an OVMS `graph.pbtxt` means the same here."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Annotated, Literal

from pydantic import Field

from graphs.calculator import Options

# genai 2026.4 refuses a speculative request (added with add_request) that says neither how many
# tokens to propose nor (draft model) a confidence threshold, and a prompt lookup request without
# an n-gram size: what a request that leaves them out gets.
DEFAULT_ASSISTANT_TOKENS = 5
PROMPT_LOOKUP_NGRAM_SIZE = 3


class LoraAdapterOption(Options):
    """One `lora_adapters { name path alpha }` entry (served as "<servable>:<name>"; checked at
    load: calculators/llm/lora.py)."""

    name: str
    path: str
    alpha: float = 1.0


@dataclass(frozen=True, slots=True)
class Speculation:
    """How the servable's engine proposes tokens ahead: a draft model or prompt lookup."""

    kind: Literal["draft", "prompt_lookup"]
    max_ngram_size: int = PROMPT_LOOKUP_NGRAM_SIZE  # prompt lookup: the requests' default


class KVCrushOptions(Options):
    """OVMS's `kv_crush_config` (genai's KVCrushConfig): evicted blocks kept as a compressed budget."""

    budget: Annotated[int, Field(ge=0)] = 0
    anchor_point_mode: Literal["RANDOM", "ZEROS", "ONES", "MEAN", "ALTERNATING"] = "RANDOM"
    rng_seed: Annotated[int, Field(ge=0)] = 0


class CacheEvictionOptions(Options):
    """OVMS's `cache_eviction_config` message: each sequence keeps its first `start_size` and last
    `recent_size` tokens and at most `max_cache_size` tokens in all; the least important tokens in
    between are evicted (importance summed over attention, `aggregation_mode`)."""

    aggregation_mode: Literal["SUM", "NORM_SUM"] = "SUM"
    start_size: Annotated[int, Field(ge=0)] | None = None
    recent_size: Annotated[int, Field(ge=0)] | None = None
    max_cache_size: Annotated[int, Field(ge=0)] | None = None
    apply_rotation: bool = False
    snapkv_window_size: Annotated[int, Field(ge=1)] = 8
    kv_crush_config: KVCrushOptions | None = None


class LLMOptions(Options):
    models_path: str
    device: str = "CPU"
    plugin_config: str = ""  # JSON object of OpenVINO properties
    cache_size: Annotated[int, Field(ge=0)] = 8  # GB of KV cache; 0: dynamic (grows on demand)
    max_num_seqs: Annotated[int, Field(ge=1)] = 256
    max_num_batched_tokens: Annotated[int, Field(ge=1)] = 256
    dynamic_split_fuse: bool = True
    enable_prefix_caching: bool = False
    best_of_limit: Annotated[int, Field(ge=1)] = 20
    max_tokens_limit: Annotated[int, Field(ge=1)] = 4096
    # ovserve's own: plain progress may wait this long to share one message with later steps
    # (first tokens and endings never wait). Helps very fast models; 0 sends every step.
    stream_interval_ms: Annotated[float, Field(ge=0, le=1000)] = 0.0
    # ovserve's own: the KV cache in blocks (genai's SchedulerConfig.num_kv_blocks; a CPU block
    # holds 32 tokens) instead of cache_size GB, for caches smaller than 1 GB. 0: use cache_size.
    num_kv_blocks: Annotated[int, Field(ge=0)] = 0
    # ovserve's own: the largest prompt in tokens, below the model's context if the operator
    # wants (a long prompt costs a long prefill that every running request waits for). 0: the context.
    max_prompt_tokens: Annotated[int, Field(ge=0)] = 0
    pipeline_type: Literal["LM", "LM_CB", "VLM", "VLM_CB", "AUTO"] | None = None
    # Speculative decoding: a draft model (same tokenizer) on draft_device; unset draft_* take
    # the main model's values (OVMS's rule).
    draft_models_path: str | None = None
    draft_device: str | None = None
    draft_max_num_batched_tokens: Annotated[int, Field(ge=1)] | None = None
    draft_cache_size: Annotated[int, Field(ge=0)] | None = None
    draft_max_num_seqs: Annotated[int, Field(ge=1)] | None = None
    draft_dynamic_split_fuse: bool | None = None
    draft_block_size: Annotated[int, Field(ge=1)] | None = None
    # ovserve's own: LoRA adapters on the base model, each served as "<servable>:<name>".
    lora_adapters: tuple[LoraAdapterOption, ...] = ()
    # Accepted so OVMS graphs parse; the resource refuses the ones not served yet, by name.
    response_parser: str | None = None
    tool_parser: str | None = None
    reasoning_parser: str | None = None
    enable_tool_guided_generation: bool | None = None
    kv_cache_precision: str | None = None
    # Prompt lookup (plugin_config {"prompt_lookup": true}): the n-gram size requests get by default.
    max_ngram_size: Annotated[int, Field(ge=1, le=64)] | None = None
    # KV-cache eviction (OVMS's message above; checked at load: calculators/llm/kv_cache.py).
    cache_eviction_config: CacheEvictionOptions | None = None

    def unsupported(self) -> list[str]:
        """Options set here that this version does not serve (each needs its own work)."""
        names = ["response_parser"]
        found = [n for n in names if getattr(self, n) is not None]
        if self.enable_tool_guided_generation:
            found.append("enable_tool_guided_generation")
        if self.pipeline_type in ("VLM", "VLM_CB"):
            found.append(f"pipeline_type={self.pipeline_type} (vision models: this server serves text only)")
        return found

    @property
    def pipeline(self) -> Literal["LM", "LM_CB"]:
        """The engine to run. OVMS's AUTO rule (also with no pipeline_type): NPU runs the stateful
        LLMPipeline (LM), every other device continuous batching (LM_CB)."""
        if self.pipeline_type in ("LM", "LM_CB"):
            return self.pipeline_type
        return "LM" if self.device.split(".")[0] == "NPU" else "LM_CB"

    def prompt_lookup(self) -> bool:
        """plugin_config asks for prompt lookup decoding ({"prompt_lookup": true}, as OVMS)."""
        try:
            config = json.loads(self.plugin_config) if self.plugin_config.strip() else {}
        except json.JSONDecodeError:
            return False  # the resource reports the bad JSON
        return isinstance(config, dict) and config.get("prompt_lookup") is True

    def speculation(self) -> Speculation | None:
        """The servable's speculative decoding, if any (both at once is refused at load)."""
        if self.draft_models_path:
            return Speculation("draft")
        if self.prompt_lookup():
            return Speculation("prompt_lookup", self.max_ngram_size or PROMPT_LOOKUP_NGRAM_SIZE)
        return None
