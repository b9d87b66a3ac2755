"""Node options of the LLM calculators: the field names of OVMS's `LLMCalculatorOptions`,
so an OVMS `graph.pbtxt` means the same here."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated, Literal

from pydantic import Field

from calculators.llm.lora import parse_flag
from calculators.llm.pipeline_type import PipelineType, is_stateful
from graphs.calculator import Options

# genai 2026.4 refuses a speculative request (added with add_request) that says neither how many
# tokens to propose nor (draft model) a confidence threshold, and a prompt lookup request without
# an n-gram size: what a request that leaves them out gets.
DEFAULT_ASSISTANT_TOKENS = 5
PROMPT_LOOKUP_NGRAM_SIZE = 3


@dataclass(frozen=True, slots=True)
class Flag:
    """Marks an LLMOptions field as a single-model CLI flag (`--<option>` unless `name` says
    otherwise); its type, default and help come from the field (calculators/llm/flags.py)."""

    name: str | None = None  # the flag's name when it is not the option's (OVMS: --target_device)
    pull: bool = False  # also written into the graph.pbtxt that --source_model prepares
    choices: tuple[str, ...] = ()  # the values the flag takes, where the field's type is wider
    plugin_property: str | None = None  # OVMS folds the flag into plugin_config under this key
    absolute_path: bool = False  # a path from the working folder (the node resolves from the graph's)
    repeat: bool = False  # repeatable: each one item of the option's list
    parse: Callable[[str], object] | None = None  # one item's parser (ValueError: a bad value)
    metavar: str | None = None
    help: str | None = None  # the flag's help where it differs from the option's description


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
    """The LLM node's options. Each is written once, here: type, default and meaning; a `Flag`
    makes it a single-model CLI flag too (calculators/llm/flags.py derives the flags, the pull-mode
    options and the docs table from these fields)."""

    models_path: Annotated[str, Field(description="the model's folder (OpenVINO IR + tokenizer) or a .gguf file")]
    device: Annotated[str, Field(description="CPU, GPU, NPU, AUTO, HETERO:… [CPU]"), Flag("target_device", pull=True)] = "CPU"
    plugin_config: Annotated[str, Field(description='OpenVINO properties as JSON, e.g. {"NUM_STREAMS": 1}'), Flag(pull=True)] = ""
    cache_size: Annotated[int, Field(ge=0, description="KV cache size in GB; 0: dynamic (grows on demand)"), Flag(pull=True)] = 8
    max_num_seqs: Annotated[int, Field(ge=1, description="most sequences in one batch"), Flag(pull=True)] = 256
    max_num_batched_tokens: Annotated[int, Field(ge=1, description="most tokens in one step"), Flag(pull=True)] = 256
    dynamic_split_fuse: Annotated[
        bool, Field(description="long prompts split into chunks that share steps with generating requests (true/false)"), Flag(pull=True)
    ] = True
    enable_prefix_caching: Annotated[
        bool, Field(description="reuse the KV cache of a prompt prefix seen before (true/false)"), Flag(pull=True)
    ] = False
    best_of_limit: Annotated[int, Field(ge=1, description="largest n and best_of a request may ask for [20]"), Flag()] = 20
    max_tokens_limit: Annotated[int, Field(ge=1, description="largest max_tokens a request may ask for"), Flag(pull=True)] = 4096
    # ovserve's own; first tokens and endings never wait. Helps very fast models.
    stream_interval_ms: Annotated[
        float, Field(ge=0, le=1000, description="plain progress may wait this long to share a message (0: every step)"), Flag()
    ] = 0.0
    # ovserve's own, for caches smaller than 1 GB (a CPU block holds 32 tokens).
    num_kv_blocks: Annotated[
        int, Field(ge=0, description="the KV cache in blocks (genai's num_kv_blocks) instead of cache_size GB; 0: use cache_size")
    ] = 0
    # ovserve's own: a long prompt costs a long prefill that every running request waits for.
    max_prompt_tokens: Annotated[int, Field(ge=0, description="largest prompt in tokens (a 400 beyond) [the model's context]"), Flag()] = 0
    pipeline_type: Annotated[
        Literal["LM", "LM_CB", "VLM", "VLM_CB", "AUTO"] | None,
        Field(description="engine pipeline [AUTO: LM_CB, VLM_CB for a vision model; LM / VLM on NPU]"),
        Flag(pull=True),
    ] = None
    # Speculative decoding: a draft model (same tokenizer); unset draft_* take the main model's
    # values (OVMS's rule).
    draft_models_path: Annotated[
        str | None,
        Field(description="speculative decoding: a draft model's folder (same tokenizer as the model)"),
        Flag(absolute_path=True),
    ] = None
    draft_device: Annotated[str | None, Field(description="device of the draft model [the model's]"), Flag()] = None
    draft_max_num_batched_tokens: Annotated[
        int | None, Field(ge=1, description="the draft model's max_num_batched_tokens [the model's]"), Flag()
    ] = None
    draft_cache_size: Annotated[int | None, Field(ge=0, description="the draft model's KV cache in GB [the model's]"), Flag()] = None
    draft_max_num_seqs: Annotated[int | None, Field(ge=1, description="the draft model's max_num_seqs [the model's]"), Flag()] = None
    draft_dynamic_split_fuse: Annotated[
        bool | None, Field(description="the draft model's dynamic_split_fuse (true/false) [the model's]"), Flag()
    ] = None
    draft_block_size: Annotated[int | None, Field(ge=1, description="the draft model's KV block size [the model's]")] = None
    # ovserve's own; checked at load: calculators/llm/lora.py.
    lora_adapters: Annotated[
        tuple[LoraAdapterOption, ...],
        Field(description="LoRA adapters on the base model ({name path alpha} each), each served as '<servable>:<name>'"),
        Flag(
            "lora_adapter",
            repeat=True,
            parse=parse_flag,
            metavar="NAME=PATH[@ALPHA]",
            help="a LoRA adapter (a .safetensors file or a PEFT folder), served as the model '<model_name>:NAME'; repeatable",
        ),
    ] = ()
    # Accepted so OVMS graphs parse; the resource refuses the ones not served yet, by name.
    response_parser: Annotated[str | None, Field(description="not served yet: refused at load")] = None
    tool_parser: Annotated[str | None, Field(description="parse tool calls out of chat output: hermes3, llama3"), Flag(pull=True)] = None
    reasoning_parser: Annotated[str | None, Field(description="split <think> reasoning out of chat output: qwen3"), Flag(pull=True)] = None
    enable_tool_guided_generation: Annotated[bool | None, Field(description="not served yet: true is refused at load")] = None
    # The flag goes into plugin_config (as OVMS); the node option is checked against it at load
    # (calculators/llm/kv_cache.py).
    kv_cache_precision: Annotated[
        str | None,
        Field(description="KV cache precision (plugin_config KV_CACHE_PRECISION)"),
        Flag(choices=("u8", "u4", "f16", "f32", "bf16"), plugin_property="KV_CACHE_PRECISION"),
    ] = None
    max_ngram_size: Annotated[
        int | None,
        Field(
            ge=1, le=64, description='prompt lookup (plugin_config {"prompt_lookup": true}): the n-gram size requests get by default [3]'
        ),
        Flag(),
    ] = None
    # Checked at load: calculators/llm/kv_cache.py.
    cache_eviction_config: Annotated[
        CacheEvictionOptions | None, Field(description="KV-cache eviction (OVMS's cache_eviction_config message)")
    ] = None

    def unsupported(self) -> list[str]:
        """Options set here that this version does not serve (each needs its own work)."""
        names = ["response_parser"]
        found = [n for n in names if getattr(self, n) is not None]
        if self.enable_tool_guided_generation:
            found.append("enable_tool_guided_generation")
        return found

    @property
    def pipeline(self) -> PipelineType:
        """The engine to run. OVMS's AUTO rule (also with no pipeline_type): NPU runs the stateful
        pipeline, every other device continuous batching. The LLM resource resolves AUTO against
        the model folder (a vision model: VLM / VLM_CB) and keeps options with the resolved type,
        so this is the servable's engine from then on (calculators/llm/pipeline_type.py)."""
        if self.pipeline_type is not None and self.pipeline_type != "AUTO":
            return self.pipeline_type
        return "LM" if self.device.split(".")[0] == "NPU" else "LM_CB"

    @property
    def stateful(self) -> bool:
        """The engine runs one request at a time (LM, VLM): no scheduler, no batching features."""
        return is_stateful(self.pipeline)

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
