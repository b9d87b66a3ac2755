"""The locally made test and demo models (no weights are ever downloaded): test fixtures, not
part of the wheel.

* ``tiny`` (:mod:`.tiny`): a very small Qwen2-style chat model *trained* so that greedy decoding
  reproduces :mod:`.answers` exactly (chat prompts, raw completions, a hermes tool call and its
  follow-up, a ``<think>`` block, a JSON object). Tests assert on that text.
* ``tiny-draft`` (:mod:`.draft`): a smaller model with the tiny model's tokenizer, the draft for
  speculative decoding; ``tiny-lora`` (:mod:`.adapters`): LoRA adapters of the tiny model.
* ``synthetic`` (:mod:`.synthetic`): a larger, randomly initialised model for benchmarks.
* ``minilm`` (:mod:`.minilm`): the real all-MiniLM-L6-v2 (from a PyPI package) as OpenVINO IR;
  ``tiny-reranker`` (:mod:`.reranker`): a toy cross-encoder.
* ``tiny-vlm`` (:mod:`.vlm`): a tiny LLaVA trained to name the colour of an image, a shape, two
  images' colours and a shape's colour a turn later (:data:`VLM_CASES`); how openvino-genai
  takes its prompts is written down in :mod:`.vlm`.
* ``tiny-whisper`` (:mod:`.whisper`): a TOY Whisper trained to transcribe (and "translate") pure-tone
  "words" synthesized with numpy (:data:`WHISPER_CASES`); what WhisperPipeline needs is in :mod:`.whisper`.
* ``tiny-diffusion`` (:mod:`.diffusion`): a TOY Stable Diffusion with random weights (64×64 noise-like
  images, deterministic under a seed) for genai's image pipelines; ``tiny-tts`` (:mod:`.tts`): a TOY
  SpeechT5 + HiFi-GAN with random weights (noise of a predictable length) for Text2SpeechPipeline.

The Qwen2 family shares :mod:`.chat` (tokens, chat template, tokenizer training, export) and
:mod:`.training`; every model shares :mod:`.common` (the recipe-hash cache). Every export goes
through the product's own :func:`serving.repository.export.optimum_export`.

CLI: ``python -m tests.models tiny|tiny-draft|tiny-lora|synthetic|minilm|tiny-reranker|tiny-vlm|tiny-whisper|tiny-diffusion|tiny-tts
[--cache-dir DIR] [--hidden-size N] [--layers N]`` prints the model folder on the last line of
stdout (``ovserve build-model`` runs it from a source checkout).
"""

from tests.models.adapters import build_tiny_lora_adapters, tiny_lora_recipe
from tests.models.answers import (
    FILLER,
    TINY_CHAT_CASES,
    TINY_COMPLETIONS,
    TINY_JSON_ANSWER,
    TINY_JSON_PROMPT,
    TINY_LORA_ANSWERS,
    TINY_PROMPTS,
    TINY_THINK_ANSWER,
    TINY_THINK_OUTPUT,
    TINY_THINK_PROMPT,
    TINY_THINK_REASONING,
    TINY_TOOL_CALL,
    TINY_TOOL_CALL_OUTPUT,
    TINY_TOOL_FOLLOWUP_ANSWER,
    TINY_TOOL_PROMPT,
    TINY_TOOL_RESULT,
    TINY_TOOLS,
    tiny_tool_followup_messages,
)
from tests.models.chat import ADDED_TOKENS, CHAT_TEMPLATE, SPECIAL_TOKENS, render_chat_prompt
from tests.models.common import BUILD_INFO, CACHE_ENV, PROJECT_ROOT, cached_build, default_cache_root, recipe_hash
from tests.models.diffusion import build_tiny_diffusion, tiny_diffusion_recipe
from tests.models.draft import build_tiny_draft_model, tiny_draft_recipe
from tests.models.minilm import build_minilm_model
from tests.models.reranker import RERANK_QUERIES, build_tiny_reranker
from tests.models.synthetic import build_synthetic_model, synthetic_recipe
from tests.models.tiny import build_tiny_model, tiny_recipe
from tests.models.tts import build_tiny_tts, tiny_tts_recipe
from tests.models.vlm import build_tiny_vlm, tiny_vlm_recipe
from tests.models.vlm_data import VLM_ANSWERS, VLM_CASES, VLM_CHAT_TEMPLATE, VlmCase
from tests.models.whisper import build_tiny_whisper, tiny_whisper_recipe
from tests.models.whisper_data import WHISPER_CASES, WhisperCase

__all__ = [
    "ADDED_TOKENS",
    "BUILD_INFO",
    "CACHE_ENV",
    "CHAT_TEMPLATE",
    "FILLER",
    "PROJECT_ROOT",
    "RERANK_QUERIES",
    "SPECIAL_TOKENS",
    "TINY_CHAT_CASES",
    "TINY_COMPLETIONS",
    "TINY_JSON_ANSWER",
    "TINY_JSON_PROMPT",
    "TINY_LORA_ANSWERS",
    "TINY_PROMPTS",
    "TINY_THINK_ANSWER",
    "TINY_THINK_OUTPUT",
    "TINY_THINK_PROMPT",
    "TINY_THINK_REASONING",
    "TINY_TOOLS",
    "TINY_TOOL_CALL",
    "TINY_TOOL_CALL_OUTPUT",
    "TINY_TOOL_FOLLOWUP_ANSWER",
    "TINY_TOOL_PROMPT",
    "TINY_TOOL_RESULT",
    "VLM_ANSWERS",
    "VLM_CASES",
    "VLM_CHAT_TEMPLATE",
    "WHISPER_CASES",
    "VlmCase",
    "WhisperCase",
    "build_minilm_model",
    "build_synthetic_model",
    "build_tiny_diffusion",
    "build_tiny_draft_model",
    "build_tiny_lora_adapters",
    "build_tiny_model",
    "build_tiny_reranker",
    "build_tiny_tts",
    "build_tiny_vlm",
    "build_tiny_whisper",
    "cached_build",
    "default_cache_root",
    "recipe_hash",
    "render_chat_prompt",
    "synthetic_recipe",
    "tiny_diffusion_recipe",
    "tiny_draft_recipe",
    "tiny_lora_recipe",
    "tiny_recipe",
    "tiny_tool_followup_messages",
    "tiny_tts_recipe",
    "tiny_vlm_recipe",
    "tiny_whisper_recipe",
]
