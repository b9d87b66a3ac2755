"""Build the locally made demo and test models (no weights are ever downloaded).

Two models, both Qwen2-style (``Qwen2ForCausalLM``) with a byte-level BPE tokenizer trained here
with the ``tokenizers`` library (plus the added, non-special tokens ``<tool_call>``,
``</tool_call>``, ``<think>``, ``</think>``) and a Qwen2.5-style chat template
(:data:`CHAT_TEMPLATE`: tools, tool calls and tool results, ``enable_thinking``):

* ``tiny``: a very small model *trained* for a few hundred steps on a handful of chat pairs and
  raw sentences, so that greedy decoding reproduces :data:`TINY_PROMPTS` (through the chat
  template) and :data:`TINY_COMPLETIONS` (raw text) exactly, and the conversations of
  :data:`TINY_CHAT_CASES`: a hermes-format tool call with :data:`TINY_TOOLS` and the answer
  once the tool's result is back, a ``<think>`` block (none with ``enable_thinking=False``), and
  a JSON object. Tests assert on that text. Training prompts are rendered with the server's own
  jinja environment, so serving-time prompts are token for token the trained ones.
* ``tiny-draft``: a still smaller model with the tiny model's own tokenizer (copied from it),
  trained briefly on the same examples: the draft model for speculative decoding tests and
  benchmarks (it need not answer exactly; the target model decides every token).
* ``synthetic``: a larger, randomly initialised, untrained model for benchmarks.

Each model is exported with optimum-intel (fp32 weights, no compression) to
``openvino_model.xml``, its tokenizer converted with ``openvino_tokenizers`` to
``openvino_tokenizer.xml`` / ``openvino_detokenizer.xml``, and the torch model kept under
``hf/``. Models are cached in ``<cache_root>/<name>-<hash12>``, where the hash covers the whole
recipe (hyperparameters, corpus, library versions, :data:`RECIPE_VERSION`). A build happens in a
temporary folder that is renamed into place at the end, under a ``fcntl.flock`` lock, so a half
build never looks valid and concurrent callers wait and reuse the result.

CLI: ``python -m serving.model_builder tiny|tiny-draft|synthetic [--cache-dir DIR] [--hidden-size N]
[--layers N]`` prints the model folder on the last line of stdout.
"""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import hashlib
import json
import logging
import os
import random
import re
import shutil
import sys
import tempfile
import time
import warnings
from collections.abc import Callable, Iterator
from importlib import metadata
from pathlib import Path
from typing import Any

logger = logging.getLogger("serving.model_builder")  # also when run with -m

#: Bump when the code changes what a recipe builds (cached models are then rebuilt).
RECIPE_VERSION = 2

#: Smallest accepted gap between the expected token's logit and the next best, on every answer
#: token after training (see :func:`_min_margin`).
MIN_MARGIN = 2.0

PROJECT_ROOT = Path(__file__).resolve().parents[1]
CACHE_ENV = "OVSERVE_MODEL_CACHE"
BUILD_INFO = "build_info.json"

ENDOFTEXT = "<|endoftext|>"
IM_START = "<|im_start|>"
IM_END = "<|im_end|>"
SPECIAL_TOKENS = [ENDOFTEXT, IM_START, IM_END]

TOOL_CALL_START = "<tool_call>"
TOOL_CALL_END = "</tool_call>"
THINK_START = "<think>"
THINK_END = "</think>"
#: Added to the vocabulary as single tokens, but NOT special: they survive skip_special_tokens
#: (as in Qwen2.5 / Qwen3), so the tool and reasoning parsers see them in the text.
ADDED_TOKENS = [TOOL_CALL_START, TOOL_CALL_END, THINK_START, THINK_END]

#: Qwen2.5-style chat template (our own text), with Qwen3's ``enable_thinking`` switch.
#:
#: * ``tools``: a system turn lists each tool as JSON (``tojson``) inside ``<tools></tools>``
#:   and asks for ``<tool_call>`` JSON; a first system/developer message is put in front of it.
#: * assistant ``tool_calls`` become ``<tool_call>\n{"name": ..., "arguments": ...}\n</tool_call>``
#:   blocks (``arguments`` as given when it is a string, else ``tojson``); a ``</think>`` block
#:   in assistant content is dropped from history, as Qwen3 does.
#: * ``tool`` messages: ``<tool_response>`` blocks inside one user turn per run of tool messages.
#: * ``enable_thinking=false``: the generation prompt ends with an empty think block.
#: * no default system prompt: a plain conversation renders exactly as ChatML.
#: Content may be a string, null, or a list of ``{"type": "text", "text": ...}`` parts (joined).
CHAT_TEMPLATE = r"""{%- macro text(content) %}
    {%- if content is string %}
        {{- content }}
    {%- elif content %}
        {{- content | selectattr('type', 'equalto', 'text') | map(attribute='text') | join('') }}
    {%- endif %}
{%- endmacro %}
{%- if tools %}
    {{- '<|im_start|>system\n' }}
    {%- if messages[0].role in ['system', 'developer'] %}
        {{- text(messages[0].content) + '\n\n' }}
    {%- endif %}
    {{- '# Tools\n\nYou may call one or more functions to help with the user query.\n\n' }}
    {{- 'The function signatures are listed within <tools></tools> XML tags:\n<tools>' }}
    {%- for tool in tools %}
        {{- '\n' + (tool | tojson) }}
    {%- endfor %}
    {{- '\n</tools>\n\nFor each function call, return a JSON object with the function name and arguments ' }}
    {{- 'within <tool_call></tool_call> XML tags:\n' }}
    {{- '<tool_call>\n{"name": <function-name>, "arguments": <args-json-object>}\n</tool_call><|im_end|>\n' }}
{%- elif messages[0].role in ['system', 'developer'] %}
    {{- '<|im_start|>system\n' + text(messages[0].content) + '<|im_end|>\n' }}
{%- endif %}
{%- for message in messages %}
    {%- set content = text(message.content) %}
    {%- if message.role in ['system', 'developer'] %}
        {%- if not loop.first %}
            {{- '<|im_start|>system\n' + content + '<|im_end|>\n' }}
        {%- endif %}
    {%- elif message.role == 'user' %}
        {{- '<|im_start|>user\n' + content + '<|im_end|>\n' }}
    {%- elif message.role == 'assistant' %}
        {%- if '</think>' in content %}
            {%- set content = (content.split('</think>') | last).lstrip('\n') %}
        {%- endif %}
        {{- '<|im_start|>assistant\n' + content }}
        {%- if message.tool_calls %}
            {%- for tool_call in message.tool_calls %}
                {%- set call = tool_call.function if tool_call.function is defined else tool_call %}
                {%- if content or not loop.first %}
                    {{- '\n' }}
                {%- endif %}
                {{- '<tool_call>\n{"name": "' + call.name + '", "arguments": ' }}
                {%- if call.arguments is string %}
                    {{- call.arguments }}
                {%- else %}
                    {{- call.arguments | tojson }}
                {%- endif %}
                {{- '}\n</tool_call>' }}
            {%- endfor %}
        {%- endif %}
        {{- '<|im_end|>\n' }}
    {%- elif message.role == 'tool' %}
        {%- if loop.first or messages[loop.index0 - 1].role != 'tool' %}
            {{- '<|im_start|>user' }}
        {%- endif %}
        {{- '\n<tool_response>\n' + content + '\n</tool_response>' }}
        {%- if loop.last or messages[loop.index0 + 1].role != 'tool' %}
            {{- '<|im_end|>\n' }}
        {%- endif %}
    {%- else %}
        {{- raise_exception('unsupported role: ' + message.role) }}
    {%- endif %}
{%- endfor %}
{%- if add_generation_prompt %}
    {{- '<|im_start|>assistant\n' }}
    {%- if enable_thinking is defined and enable_thinking == false %}
        {{- '<think>\n\n</think>\n\n' }}
    {%- endif %}
{%- endif %}
"""

_LONG_ANSWER = (
    "Once upon a time, a small robot named Pip lived in a quiet harbor town. Every morning "
    "Pip counted the boats, watered seven red flowers, and listened to the gulls. One windy "
    "night a lost kitten knocked on the door; Pip dried her fur, shared some warm milk, and "
    "they watched the lighthouse blink until sunrise. The end."
)

#: User prompt -> the exact answer the tiny model gives (greedy, through the chat template).
TINY_PROMPTS: dict[str, str] = {
    "Say this is a test": "This is a test.",
    "What is the capital of France?": "The capital of France is Paris.",
    "Count to five.": "One, two, three, four, five.",
    "What color is the sky?": "The sky is blue.",
    "Say hello in French.": "Bonjour! Un café, s'il vous plaît 🥐",
    "Tell me a story.": _LONG_ANSWER,
    # two e-mail addresses, for the streaming redaction demo (demos/redaction)
    "How do I reach support?": "Write to help@example.com or to sales@ovserve.dev today.",
}

#: Raw completion prompt -> the exact continuation (greedy, no chat template).
TINY_COMPLETIONS: dict[str, str] = {
    "The capital of France is": " Paris.",
    "The quick brown fox": " jumps over the lazy dog.",
}

#: The tools a client sends for the tool-calling example, exactly as in an OpenAI request body
#: (key order matters: the template renders each tool with ``tojson``).
TINY_TOOLS: list[dict[str, Any]] = [
    {
        "type": "function",
        "function": {
            "name": "get_weather",
            "description": "Get the current weather in a city.",
            "parameters": {
                "type": "object",
                "properties": {"city": {"type": "string", "description": "The city name."}},
                "required": ["city"],
            },
        },
    }
]
#: With :data:`TINY_TOOLS`, this user prompt makes the model call :data:`TINY_TOOL_CALL`
#: (hermes format, see :data:`TINY_TOOL_CALL_OUTPUT`).
TINY_TOOL_PROMPT = "What is the weather in Paris?"
TINY_TOOL_CALL: dict[str, Any] = {"name": "get_weather", "arguments": {"city": "Paris"}}
#: The tool's answer sent back in a ``role: "tool"`` message (see :func:`tiny_tool_followup_messages`).
TINY_TOOL_RESULT = "18 degrees and sunny"
TINY_TOOL_FOLLOWUP_ANSWER = "It is 18 degrees and sunny in Paris."
#: Thinks first (Qwen3 style, :data:`TINY_THINK_OUTPUT`); with ``enable_thinking=False`` answers at once.
TINY_THINK_PROMPT = "Is 7 a prime number?"
TINY_THINK_REASONING = "7 has no divisors other than 1 and itself."
TINY_THINK_ANSWER = "Yes, 7 is a prime number."
TINY_JSON_PROMPT = "Give me a JSON object describing a cat."
TINY_JSON_ANSWER = '{"name": "Tom", "age": 3, "color": "gray"}'

#: LoRA adapters of the tiny model (build_tiny_lora_adapters): adapter -> user prompt -> the exact
#: answer the tiny model gives with that adapter (greedy, through the chat template).
TINY_LORA_ANSWERS: dict[str, dict[str, str]] = {
    "swap": {"Say this is a test": "The sky is blue.", "What color is the sky?": "This is a test."},
    "count": {"Say this is a test": "One, two, three, four, five.", "What color is the sky?": "The capital of France is Paris."},
}


def tool_call_text(call: dict[str, Any]) -> str:
    """One hermes-format tool call as the model writes it (and the template renders it)."""
    return f"{TOOL_CALL_START}\n{json.dumps(call, ensure_ascii=False)}\n{TOOL_CALL_END}"


#: The exact generated text for the tool prompt (then ``<|im_end|>``).
TINY_TOOL_CALL_OUTPUT = tool_call_text(TINY_TOOL_CALL)
#: The exact generated text for the think prompt (then ``<|im_end|>``).
TINY_THINK_OUTPUT = f"{THINK_START}\n{TINY_THINK_REASONING}\n{THINK_END}\n\n{TINY_THINK_ANSWER}"


def tiny_tool_followup_messages(call_id: str = "call_0", arguments_as_string: bool = True) -> list[dict[str, Any]]:
    """The history after the tool call: user, assistant with ``tool_calls``, the tool's result.

    ``arguments`` is a JSON string as OpenAI clients send it back (or the object itself); both
    render the same prompt. ``call_id`` does not appear in the prompt.
    """
    arguments: Any = TINY_TOOL_CALL["arguments"]
    if arguments_as_string:
        arguments = json.dumps(arguments, ensure_ascii=False)
    return [
        {"role": "user", "content": TINY_TOOL_PROMPT},
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [{"id": call_id, "type": "function", "function": {"name": TINY_TOOL_CALL["name"], "arguments": arguments}}],
        },
        {"role": "tool", "tool_call_id": call_id, "content": TINY_TOOL_RESULT},
    ]


#: Conversations beyond :data:`TINY_PROMPTS`, each with its exact greedy output (then ``<|im_end|>``):
#: ``messages``, ``tools`` (or None) and ``template_kwargs`` (chat_template_kwargs) as a server
#: gets them in a request.
TINY_CHAT_CASES: dict[str, dict[str, Any]] = {
    "tool_call": {
        "messages": [{"role": "user", "content": TINY_TOOL_PROMPT}],
        "tools": TINY_TOOLS,
        "template_kwargs": {},
        "output": TINY_TOOL_CALL_OUTPUT,
    },
    "tool_followup": {
        "messages": tiny_tool_followup_messages(),
        "tools": TINY_TOOLS,
        "template_kwargs": {},
        "output": TINY_TOOL_FOLLOWUP_ANSWER,
    },
    "think": {
        "messages": [{"role": "user", "content": TINY_THINK_PROMPT}],
        "tools": None,
        "template_kwargs": {},
        "output": TINY_THINK_OUTPUT,
    },
    "think_disabled": {
        "messages": [{"role": "user", "content": TINY_THINK_PROMPT}],
        "tools": None,
        "template_kwargs": {"enable_thinking": False},
        "output": TINY_THINK_ANSWER,
    },
    "json": {
        "messages": [{"role": "user", "content": TINY_JSON_PROMPT}],
        "tools": None,
        "template_kwargs": {},
        "output": TINY_JSON_ANSWER,
    },
}


def render_chat_prompt(
    messages: list[dict[str, Any]],
    tools: list[dict[str, Any]] | None = None,
    add_generation_prompt: bool = True,
    **template_kwargs: Any,
) -> str:
    """:data:`CHAT_TEMPLATE` rendered exactly as the server renders it (its jinja environment)."""
    from calculators.llm.model_files import _template_env

    template = _template_env().from_string(CHAT_TEMPLATE)
    return template.render(
        messages=messages,
        tools=tools,
        add_generation_prompt=add_generation_prompt,
        bos_token=ENDOFTEXT,
        eos_token=IM_END,
        **template_kwargs,
    )


def _all_chat_cases() -> list[tuple[str, str, str]]:
    """(label, rendered prompt, expected output) for TINY_PROMPTS and TINY_CHAT_CASES."""
    cases = [(f"chat {q!r}", render_chat_prompt([{"role": "user", "content": q}]), a) for q, a in TINY_PROMPTS.items()]
    for name, case in TINY_CHAT_CASES.items():
        prompt = render_chat_prompt(case["messages"], case["tools"], **case["template_kwargs"])
        cases.append((f"case {name}", prompt, case["output"]))
    return cases


_FILLER = [
    "The weather today is sunny with a light breeze from the west.",
    "Models are exported to OpenVINO and served over HTTP with a simple JSON API.",
    "Numbers like 0, 1, 2, 3, 4, 5, 6, 7, 8, 9 and 10 appear in many short texts.",
    "A quick test checks that every request gets an answer and every stream ends.",
    "Tokens, prompts, answers and streams: the server handles them one step at a time.",
    "Hello, world! How are you? I am fine, thank you.",
]

_VERSIONED_PACKAGES = (
    "torch",
    "transformers",
    "tokenizers",
    "optimum",
    "optimum-intel",
    "openvino",
    "openvino-tokenizers",
    "openvino-genai",
    "nncf",
)


# --------------------------------------------------------------------------- recipes and cache


def _package_versions() -> dict[str, str]:
    return {name: _version(name) for name in _VERSIONED_PACKAGES}


def _version(name: str) -> str:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return "missing"


def tiny_recipe() -> dict[str, Any]:
    """Everything that decides what :func:`build_tiny_model` produces."""
    return {
        "recipe_version": RECIPE_VERSION,
        "kind": "tiny",
        "model": {
            "hidden_size": 128,
            "intermediate_size": 384,
            "num_hidden_layers": 2,
            "num_attention_heads": 4,
            "num_key_value_heads": 2,
            "max_position_embeddings": 512,
            "rope_theta": 10000.0,
            "tie_word_embeddings": True,
        },
        "tokenizer": {"vocab_size": 512, "min_frequency": 2, "special_tokens": SPECIAL_TOKENS, "added_tokens": ADDED_TOKENS},
        "training": {"seed": 1234, "steps": 300, "lr": 3e-3, "weight_decay": 0.0, "warmup": 20, "min_margin": MIN_MARGIN},
        "chat_template": CHAT_TEMPLATE,
        "prompts": TINY_PROMPTS,
        "completions": TINY_COMPLETIONS,
        "chat_cases": TINY_CHAT_CASES,
        "filler": _FILLER,
        "weight_format": "fp32",
        "versions": _package_versions(),
    }


def tiny_draft_recipe() -> dict[str, Any]:
    """Everything that decides what :func:`build_tiny_draft_model` produces (the tiny model's
    recipe is part of it: the draft takes that model's tokenizer)."""
    return {
        "recipe_version": RECIPE_VERSION,
        "kind": "tiny-draft",
        "target": recipe_hash(tiny_recipe()),
        "model": {
            "hidden_size": 64,
            "intermediate_size": 192,
            "num_hidden_layers": 1,
            "num_attention_heads": 2,
            "num_key_value_heads": 1,
            "max_position_embeddings": 512,
            "rope_theta": 10000.0,
            "tie_word_embeddings": True,
        },
        "training": {"seed": 4321, "steps": 200, "lr": 5e-3, "weight_decay": 0.0, "warmup": 20},
        "weight_format": "fp32",
        "versions": _package_versions(),
    }


def tiny_lora_recipe() -> dict[str, Any]:
    """Everything that decides what :func:`build_tiny_lora_adapters` produces (the tiny model's
    recipe is part of it: the adapters are trained on that model's weights)."""
    return {
        "recipe_version": RECIPE_VERSION,
        "kind": "tiny-lora",
        "target": recipe_hash(tiny_recipe()),
        "answers": TINY_LORA_ANSWERS,
        "lora": {
            "r": 8,
            "lora_alpha": 16,
            "target_modules": ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"],
        },
        "training": {"seed": 77, "steps": 40, "lr": 1e-2, "min_margin": MIN_MARGIN},
        "versions": {**_package_versions(), "peft": _version("peft")},
    }


def synthetic_recipe(hidden_size: int = 512, num_layers: int = 8) -> dict[str, Any]:
    """Everything that decides what :func:`build_synthetic_model` produces."""
    if hidden_size % 64:
        raise ValueError(f"hidden_size must be a multiple of 64, got {hidden_size}")
    if num_layers < 1:
        raise ValueError(f"num_layers must be >= 1, got {num_layers}")
    return {
        "recipe_version": RECIPE_VERSION,
        "kind": "synthetic",
        "model": {
            "hidden_size": hidden_size,
            "intermediate_size": hidden_size * 4,
            "num_hidden_layers": num_layers,
            "num_attention_heads": 8,
            "num_key_value_heads": 2,
            "max_position_embeddings": 4096,
            "rope_theta": 10000.0,
            "tie_word_embeddings": False,
        },
        "tokenizer": {"vocab_size": 3000, "min_frequency": 2, "special_tokens": SPECIAL_TOKENS, "added_tokens": ADDED_TOKENS},
        "corpus": {"seed": 4321, "sentences": 4000},
        "init_seed": 1234,
        "chat_template": CHAT_TEMPLATE,
        "weight_format": "fp32",
        "versions": _package_versions(),
    }


def recipe_hash(recipe: dict[str, Any]) -> str:
    """The 12 hex digit sha256 of a recipe (stable: sorted keys, no whitespace)."""
    blob = json.dumps(recipe, sort_keys=True, ensure_ascii=True, separators=(",", ":"))
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()[:12]


def default_cache_root() -> Path:
    env = os.environ.get(CACHE_ENV)
    return Path(env) if env else PROJECT_ROOT / ".cache" / "models"


def cached_build(cache_root: Path, name: str, recipe: dict[str, Any], build: Callable[[Path], None]) -> Path:
    """Return ``<cache_root>/<name>-<hash12>``, calling ``build(tmp_dir)`` first if absent.

    ``build`` fills an empty temporary folder beside the final one; it is renamed into place only
    after ``build`` returns, so a crash leaves no valid-looking folder. An exclusive ``flock`` on
    ``<name>-<hash12>.lock`` serialises builders: a second process waits, then reuses.
    """
    cache_root = Path(cache_root).resolve()
    final = cache_root / f"{name}-{recipe_hash(recipe)}"
    if (final / BUILD_INFO).is_file():
        return final
    cache_root.mkdir(parents=True, exist_ok=True)
    with open(cache_root / f"{final.name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            if (final / BUILD_INFO).is_file():
                return final  # someone else built it while we waited
            for stale in cache_root.glob(f".{final.name}.tmp-*"):
                shutil.rmtree(stale, ignore_errors=True)
            if final.exists():  # not ours and not complete: cannot happen via rename, be safe
                shutil.rmtree(final)
            tmp = Path(tempfile.mkdtemp(prefix=f".{final.name}.tmp-", dir=cache_root))
            try:
                started = time.monotonic()
                build(tmp)
                info = {
                    "name": name,
                    "hash": recipe_hash(recipe),
                    "built_at": time.time(),
                    "build_seconds": round(time.monotonic() - started, 2),
                    "recipe": recipe,
                }
                (tmp / BUILD_INFO).write_text(json.dumps(info, indent=2, ensure_ascii=False))
                tmp.chmod(0o755)  # mkdtemp makes it 0700; others (containers, peers) read it
                os.rename(tmp, final)
            except BaseException:
                shutil.rmtree(tmp, ignore_errors=True)
                raise
            logger.info("built %s in %.1f s", final, info["build_seconds"])
            return final
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


# --------------------------------------------------------------------------- public API


def build_tiny_model(cache_root: Path | None = None) -> Path:
    """The tiny trained chat model; greedy decoding reproduces TINY_PROMPTS / TINY_COMPLETIONS."""
    recipe = tiny_recipe()
    return cached_build(cache_root or default_cache_root(), "tiny", recipe, lambda out: _build_tiny(out, recipe))


def build_tiny_draft_model(cache_root: Path | None = None) -> Path:
    """A smaller draft model for the tiny model (speculative decoding): the same tokenizer
    (files copied from the tiny model, so token ids mean the same), trained briefly on the same
    examples, so it proposes the tiny model's tokens much of the time."""
    root = cache_root or default_cache_root()
    target = build_tiny_model(root)
    recipe = tiny_draft_recipe()
    return cached_build(root, "tiny-draft", recipe, lambda out: _build_tiny_draft(out, target, recipe))


def build_tiny_lora_adapters(cache_root: Path | None = None) -> Path:
    """LoRA adapters for the tiny model, made with peft: ``<folder>/<name>/adapter_model.safetensors``
    (PEFT's format, which genai's ``Adapter(path)`` loads) for each adapter of
    :data:`TINY_LORA_ANSWERS`, trained briefly so that greedy decoding gives those answers."""
    root = cache_root or default_cache_root()
    target = build_tiny_model(root)
    recipe = tiny_lora_recipe()
    return cached_build(root, "tiny-lora", recipe, lambda out: _build_tiny_lora(out, target, recipe))


def build_synthetic_model(cache_root: Path | None = None, hidden_size: int = 512, num_layers: int = 8) -> Path:
    """A randomly initialised (untrained) Qwen2 model for benchmarks."""
    recipe = synthetic_recipe(hidden_size, num_layers)
    return cached_build(
        cache_root or default_cache_root(),
        f"synthetic-h{hidden_size}-l{num_layers}",
        recipe,
        lambda out: _build_synthetic(out, recipe),
    )


# --------------------------------------------------------------------------- building blocks


@contextlib.contextmanager
def _quiet_build() -> Iterator[None]:
    """Keep export chatter (tracer warnings, deprecations, nncf banners) out of the way.

    Warnings are recorded and logged at debug level, never turned into errors (pytest may run
    with ``-W error``); exceptions pass through untouched.
    """
    noisy = ["nncf", "transformers", "optimum", "torch"]
    saved = {n: logging.getLogger(n).level for n in noisy}
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        for n in noisy:
            logging.getLogger(n).setLevel(logging.ERROR)
        try:
            import transformers

            saved_tf = transformers.logging.get_verbosity()
            bars = transformers.logging.is_progress_bar_enabled()
            transformers.logging.set_verbosity_error()
            transformers.logging.disable_progress_bar()
            try:
                yield
            finally:
                transformers.logging.set_verbosity(saved_tf)
                if bars:
                    transformers.logging.enable_progress_bar()
        finally:
            for n, level in saved.items():
                logging.getLogger(n).setLevel(level)
    for msg in sorted({f"{w.category.__name__}: {w.message}" for w in caught}):
        logger.debug("build warning: %s", msg)


def _require_openvino_tokenizers() -> Any:
    try:
        import openvino_tokenizers
    except ImportError as exc:  # optimum-intel would silently skip the tokenizer
        raise RuntimeError("openvino_tokenizers is not importable; install openvino-tokenizers matching openvino") from exc
    return openvino_tokenizers


def _train_tokenizer(corpus: list[str], spec: dict[str, Any]) -> Any:
    """A byte-level BPE tokenizer wrapped as transformers' PreTrainedTokenizerFast."""
    from tokenizers import AddedToken, Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=spec["vocab_size"],
        min_frequency=spec["min_frequency"],
        special_tokens=list(spec["special_tokens"]),
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(corpus, trainer=trainer)
    tok.add_tokens([AddedToken(t, special=False, normalized=False) for t in spec.get("added_tokens", [])])
    hf_tok = PreTrainedTokenizerFast(
        tokenizer_object=tok,
        eos_token=IM_END,
        pad_token=ENDOFTEXT,
        additional_special_tokens=[IM_START],
        model_max_length=32768,
        clean_up_tokenization_spaces=False,
    )
    hf_tok.chat_template = CHAT_TEMPLATE
    return hf_tok


def _qwen2_config(spec: dict[str, Any], hf_tok: Any) -> Any:
    from transformers import Qwen2Config

    endoftext = hf_tok.convert_tokens_to_ids(ENDOFTEXT)
    # transformers 5 writes rope_parameters (no rope_theta); 10000 is also transformers 4's default
    kwargs: dict[str, Any] = {
        "vocab_size": len(hf_tok),
        "hidden_size": spec["hidden_size"],
        "intermediate_size": spec["intermediate_size"],
        "num_hidden_layers": spec["num_hidden_layers"],
        "num_attention_heads": spec["num_attention_heads"],
        "num_key_value_heads": spec["num_key_value_heads"],
        "max_position_embeddings": spec["max_position_embeddings"],
        "rope_parameters": {"rope_type": "default", "rope_theta": spec["rope_theta"]},
        "tie_word_embeddings": spec["tie_word_embeddings"],
        "use_sliding_window": False,
        "sliding_window": None,
        "bos_token_id": endoftext,  # as Qwen2: the tokenizer itself adds no BOS
        "eos_token_id": hf_tok.convert_tokens_to_ids(IM_END),
        "pad_token_id": endoftext,
    }
    return Qwen2Config(**kwargs)


def _save_hf(model: Any, hf_tok: Any, hf_dir: Path) -> None:
    from transformers import GenerationConfig

    model.generation_config = GenerationConfig(
        bos_token_id=model.config.bos_token_id,
        eos_token_id=model.config.eos_token_id,
        pad_token_id=model.config.pad_token_id,
        do_sample=False,
    )
    model.save_pretrained(hf_dir, safe_serialization=True)
    hf_tok.save_pretrained(hf_dir)
    _write_tokenizer_files(hf_dir)


def _write_tokenizer_files(folder: Path) -> None:
    """chat_template.jinja plus a tokenizer_config.json both transformers 4 and 5 read.

    transformers 5 writes ``tokenizer_class: TokenizersBackend`` and a list-valued
    ``extra_special_tokens`` that transformers 4 cannot load; peers in other virtualenvs read
    this folder too, and some read the chat template from ``tokenizer_config.json`` only.
    """
    (folder / "chat_template.jinja").write_text(CHAT_TEMPLATE)
    config = {
        "tokenizer_class": "PreTrainedTokenizerFast",
        "eos_token": IM_END,
        "pad_token": ENDOFTEXT,
        "additional_special_tokens": [IM_START],
        "model_max_length": 32768,
        "clean_up_tokenization_spaces": False,
        "padding_side": "left",
        "chat_template": CHAT_TEMPLATE,
    }
    (folder / "tokenizer_config.json").write_text(json.dumps(config, indent=2) + "\n")


def _export(hf_dir: Path, out: Path) -> None:
    """optimum-intel export (fp32, uncompressed) plus our own tokenizer conversion."""
    import openvino as ov
    from optimum.exporters.openvino import main_export
    from optimum.intel import OVConfig
    from transformers import AutoTokenizer

    openvino_tokenizers = _require_openvino_tokenizers()
    main_export(
        str(hf_dir),
        output=out,
        task="text-generation-with-past",
        ov_config=OVConfig(dtype="fp32"),
        convert_tokenizer=False,
        local_files_only=True,
    )
    hf_tok = AutoTokenizer.from_pretrained(hf_dir)
    ov_tok, ov_detok = openvino_tokenizers.convert_tokenizer(hf_tok, with_detokenizer=True)
    ov.save_model(ov_tok, out / "openvino_tokenizer.xml")
    ov.save_model(ov_detok, out / "openvino_detokenizer.xml")
    # optimum saves tokenizer files and configs beside the IR; make sure of the ones we rely on
    for name in ("tokenizer.json", "tokenizer_config.json", "config.json", "generation_config.json", "special_tokens_map.json"):
        if not (out / name).exists() and (hf_dir / name).exists():
            shutil.copy2(hf_dir / name, out / name)
    _write_tokenizer_files(out)
    for name in (
        "openvino_model.xml",
        "openvino_model.bin",
        "openvino_tokenizer.xml",
        "openvino_detokenizer.xml",
        "config.json",
        "tokenizer.json",
    ):
        if not (out / name).is_file():
            raise RuntimeError(f"export did not produce {name} in {out}")


# --------------------------------------------------------------------------- tiny model


def _tiny_examples(hf_tok: Any) -> list[tuple[list[int], int]]:
    """(token ids, index where the loss starts) for every chat case and raw completion.

    Chat prompts are rendered with the server's own jinja environment; prompt and answer are
    tokenized separately and concatenated, exactly as at inference (the prompt is encoded
    alone, then generated tokens follow it).
    """
    eos = hf_tok.convert_tokens_to_ids(IM_END)
    examples = []
    for _label, prompt, answer in _all_chat_cases():
        p = hf_tok.encode(prompt, add_special_tokens=False)
        a = hf_tok.encode(answer, add_special_tokens=False)
        examples.append((p + a + [eos], len(p)))
    for prompt, continuation in TINY_COMPLETIONS.items():
        p = hf_tok.encode(prompt, add_special_tokens=False)
        a = hf_tok.encode(continuation, add_special_tokens=False)
        examples.append((p + a + [eos], len(p)))
    return examples


def _without_added_tokens(text: str) -> list[str]:
    """The plain pieces of a text between special and added tokens (these are never merged)."""
    pattern = "|".join(re.escape(t) for t in [*SPECIAL_TOKENS, *ADDED_TOKENS])
    return [piece for piece in re.split(pattern, text) if piece]


def _tiny_corpus() -> list[str]:
    """Tokenizer training text (special and added tokens are vocabulary entries, not learned)."""
    corpus = ["user\n", "assistant\n", "system\n"]
    for _label, prompt, answer in _all_chat_cases():
        corpus += _without_added_tokens(prompt) + _without_added_tokens(answer)
    corpus += [p + c for p, c in TINY_COMPLETIONS.items()]
    return corpus + _FILLER


def _length_buckets(examples: list[tuple[list[int], int]]) -> list[list[tuple[list[int], int]]]:
    """Examples grouped by length (a bucket ends where lengths pass twice its shortest), so
    short chats are not padded to the length of the long tool prompts."""
    buckets: list[list[tuple[list[int], int]]] = []
    for example in sorted(examples, key=lambda e: len(e[0])):
        if buckets and len(example[0]) <= 2 * len(buckets[-1][0][0]):
            buckets[-1].append(example)
        else:
            buckets.append([example])
    return buckets


def _train_tiny(model: Any, examples: list[tuple[list[int], int]], spec: dict[str, Any]) -> float:
    """Full-batch AdamW: each step sums the loss of every answer token of every example (one
    padded batch per length bucket) and averages it over all of them."""
    import torch

    batches = []
    total = sum(len(ids) - start for ids, start in examples)
    for bucket in _length_buckets(examples):
        width = max(len(ids) for ids, _ in bucket)
        input_ids = torch.zeros((len(bucket), width), dtype=torch.long)
        labels = torch.full((len(bucket), width), -100, dtype=torch.long)
        mask = torch.zeros((len(bucket), width), dtype=torch.long)
        for row, (ids, start) in enumerate(bucket):
            input_ids[row, : len(ids)] = torch.tensor(ids)
            labels[row, start : len(ids)] = torch.tensor(ids[start:])
            mask[row, : len(ids)] = 1
        share = sum(len(ids) - start for ids, start in bucket) / total
        batches.append((input_ids, mask, labels, share))
    opt = torch.optim.AdamW(model.parameters(), lr=spec["lr"], weight_decay=spec["weight_decay"])
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda step: min(1.0, (step + 1) / spec["warmup"]))
    model.train()
    loss_value = float("nan")
    for step in range(spec["steps"]):
        opt.zero_grad(set_to_none=True)
        loss_value = 0.0
        for input_ids, mask, labels, share in batches:
            out = model(input_ids=input_ids, attention_mask=mask, labels=labels)
            loss = out.loss * share  # the bucket's mean -> its part of the mean over all tokens
            loss.backward()
            loss_value += float(loss.detach())
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        sched.step()
        if step % 50 == 0 or step == spec["steps"] - 1:
            logger.info("tiny model: step %d loss %.5f", step, loss_value)
    model.eval()
    return loss_value


def _min_margin(model: Any, examples: list[tuple[list[int], int]]) -> tuple[float, int]:
    """The smallest gap, over every answer token of every example, between the logit of the
    expected token and the best other logit (negative: greedy decoding would go wrong), and
    the index of the example where it occurs.

    OpenVINO runs bf16 on CPUs that have it: a comfortable gap keeps answers the same there.
    """
    import torch

    worst, where = float("inf"), -1
    with torch.no_grad():
        for index, (ids, start) in enumerate(examples):
            logits = model(input_ids=torch.tensor([ids])).logits[0, start - 1 : len(ids) - 1].float()
            target = torch.tensor(ids[start:])
            expected = logits.gather(1, target[:, None])[:, 0]
            logits[torch.arange(len(target)), target] = float("-inf")
            margin = float((expected - logits.max(dim=1).values).min())
            if margin < worst:
                worst, where = margin, index
    return worst, where


def _train_on_tiny_examples(make_model: Callable[[], Any], hf_tok: Any, training: dict[str, Any]) -> tuple[Any, Any, float]:
    """Seed, make the model (its initial weights come from the seed) and train it,
    deterministically, on the tiny model's examples; (model, examples, loss)."""
    import torch

    random.seed(training["seed"])
    torch.manual_seed(training["seed"])
    with _deterministic_torch():
        model = make_model()
        examples = _tiny_examples(hf_tok)
        loss = _train_tiny(model, examples, training)
    return model, examples, loss


def _build_tiny(out: Path, recipe: dict[str, Any]) -> None:
    with _quiet_build():
        from transformers import Qwen2ForCausalLM

        t0 = time.monotonic()
        hf_tok = _train_tokenizer(_tiny_corpus(), recipe["tokenizer"])
        config = _qwen2_config(recipe["model"], hf_tok)
        model, examples, loss = _train_on_tiny_examples(lambda: Qwen2ForCausalLM(config), hf_tok, recipe["training"])
        with _deterministic_torch():
            margin, where = _min_margin(model, examples)
        t1 = time.monotonic()
        logger.info("tiny model: trained in %.1f s, final loss %.6f, smallest logit margin %.2f", t1 - t0, loss, margin)
        if margin < recipe["training"]["min_margin"]:
            raise RuntimeError(
                f"tiny model: logit margin {margin:.2f} < {recipe['training']['min_margin']} on example {where}: "
                "train longer or give the model more capacity"
            )
        hf_dir = out / "hf"
        _save_hf(model, hf_tok, hf_dir)
        _export(hf_dir, out)
        t2 = time.monotonic()
        logger.info("tiny model: exported in %.1f s", t2 - t1)
        verify_tiny_model(out)
        logger.info("tiny model: verified in %.1f s", time.monotonic() - t2)


def _build_tiny_draft(out: Path, target: Path, recipe: dict[str, Any]) -> None:
    with _quiet_build():
        from transformers import AutoTokenizer, Qwen2ForCausalLM

        t0 = time.monotonic()
        hf_tok = AutoTokenizer.from_pretrained(target / "hf")
        config = _qwen2_config(recipe["model"], hf_tok)
        model, _, loss = _train_on_tiny_examples(lambda: Qwen2ForCausalLM(config), hf_tok, recipe["training"])
        logger.info("tiny draft model: trained in %.1f s, final loss %.5f", time.monotonic() - t0, loss)
        hf_dir = out / "hf"
        _save_hf(model, hf_tok, hf_dir)
        _export(hf_dir, out)
        for name in (
            "tokenizer.json",
            "openvino_tokenizer.xml",
            "openvino_tokenizer.bin",
            "openvino_detokenizer.xml",
            "openvino_detokenizer.bin",
        ):
            shutil.copy2(target / name, out / name)  # byte for byte the target's
        verify_generates(out)


def _build_tiny_lora(out: Path, target: Path, recipe: dict[str, Any]) -> None:
    with _quiet_build():
        import torch
        from peft import LoraConfig, get_peft_model
        from transformers import AutoTokenizer, Qwen2ForCausalLM

        hf_tok = AutoTokenizer.from_pretrained(target / "hf")
        eos = hf_tok.convert_tokens_to_ids(IM_END)
        spec = recipe["training"]
        for name, answers in recipe["answers"].items():
            t0 = time.monotonic()
            random.seed(spec["seed"])
            torch.manual_seed(spec["seed"])
            model = Qwen2ForCausalLM.from_pretrained(target / "hf")
            config = LoraConfig(**recipe["lora"], lora_dropout=0.0, bias="none", task_type="CAUSAL_LM")
            with _deterministic_torch():
                peft_model = get_peft_model(model, config)
                examples = []
                for prompt, answer in answers.items():
                    p = hf_tok.encode(render_chat_prompt([{"role": "user", "content": prompt}]), add_special_tokens=False)
                    examples.append((p + hf_tok.encode(answer, add_special_tokens=False) + [eos], len(p)))
                loss = _train_tiny(peft_model, examples, {**spec, "weight_decay": 0.0, "warmup": 1})
                margin, where = _min_margin(peft_model, examples)
            took = time.monotonic() - t0
            logger.info("tiny LoRA %s: trained in %.1f s, final loss %.5f, smallest logit margin %.2f", name, took, loss, margin)
            if margin < spec["min_margin"]:
                raise RuntimeError(f"tiny LoRA {name}: logit margin {margin:.2f} < {spec['min_margin']} on example {where}: train longer")
            peft_model.save_pretrained(out / name, safe_serialization=True)
        verify_tiny_lora(target, out)


def verify_tiny_lora(model_dir: Path, adapters_dir: Path) -> None:
    """Raise RuntimeError unless, on one pipeline holding every adapter, each adapter's prompts
    get its answers and the same prompts without an adapter get the tiny model's own (one
    generate() per adapter: genai 2026.4 applies one adapter setting per batch)."""
    import openvino_genai

    adapters = {name: openvino_genai.Adapter(str(adapters_dir / name / "adapter_model.safetensors")) for name in TINY_LORA_ANSWERS}
    scheduler = openvino_genai.SchedulerConfig()
    scheduler.cache_size = 0
    pipe = openvino_genai.ContinuousBatchingPipeline(
        str(model_dir), scheduler, "CPU", {"adapters": openvino_genai.AdapterConfig(list(adapters.values()))}
    )
    tok = pipe.get_tokenizer()
    cases: list[tuple[str | None, str, str]] = [
        (name, prompt, answer) for name, answers in TINY_LORA_ANSWERS.items() for prompt, answer in answers.items()
    ]
    cases += [(None, prompt, TINY_PROMPTS[prompt]) for prompt in TINY_LORA_ANSWERS["swap"]]
    failures = []
    for name, prompt, answer in cases:
        config = openvino_genai.GenerationConfig()
        config.max_new_tokens = 40
        config.do_sample = False
        config.adapters = openvino_genai.AdapterConfig(adapters[name], 1.0) if name else openvino_genai.AdapterConfig()
        ids = tok.encode(render_chat_prompt([{"role": "user", "content": prompt}]), add_special_tokens=False).input_ids
        text = tok.decode(list(pipe.generate([ids], [config])[0].m_generation_ids[0]), skip_special_tokens=True)
        if text != answer:
            failures.append(f"{name or 'no adapter'}, {prompt!r}: expected {answer!r}, got {text!r}")
    if failures:
        raise RuntimeError("tiny LoRA verification failed:\n  " + "\n  ".join(failures))


@contextlib.contextmanager
def _deterministic_torch() -> Iterator[None]:
    import torch

    was = torch.are_deterministic_algorithms_enabled()
    torch.use_deterministic_algorithms(True)
    try:
        yield
    finally:
        torch.use_deterministic_algorithms(was)


def _ov_pipeline(model_dir: Path, precision: str | None = None) -> Any:
    """A CPU continuous-batching pipeline; ``precision`` ("f32", "bf16") overrides the CPU's
    default inference precision (bf16 where the CPU has it)."""
    import openvino_genai

    scheduler = openvino_genai.SchedulerConfig()
    scheduler.cache_size = 0  # 0 = grow the KV cache on demand
    properties = {"INFERENCE_PRECISION_HINT": precision} if precision else {}
    return openvino_genai.ContinuousBatchingPipeline(str(model_dir), scheduler, "CPU", properties)


def greedy_generate(model_dir: Path, prompts: list[str], max_new_tokens: int = 160, chat: bool = True) -> list[tuple[str, list[int]]]:
    """Greedy (text, generated ids) for each prompt with openvino-genai continuous batching.

    With ``chat`` the prompt is the user message, rendered through the model's chat template
    (as the server renders it) with the generation prompt; otherwise it is raw text.
    """
    if chat:
        prompts = [render_chat_prompt([{"role": "user", "content": p}]) for p in prompts]
    return greedy_generate_rendered(model_dir, prompts, max_new_tokens)


def greedy_generate_rendered(
    model_dir: Path, prompts: list[str], max_new_tokens: int = 160, precision: str | None = None
) -> list[tuple[str, list[int]]]:
    """Greedy (text, generated ids) for already rendered prompts (encoded without special
    tokens, as the server does; no automatic chat template). The text keeps added tokens such
    as ``<tool_call>`` and drops special ones."""
    import openvino_genai

    pipe = _ov_pipeline(model_dir, precision)
    tok = pipe.get_tokenizer()
    inputs = [tok.encode(prompt, add_special_tokens=False).input_ids for prompt in prompts]
    config = openvino_genai.GenerationConfig()
    config.max_new_tokens = max_new_tokens
    config.do_sample = False
    results = pipe.generate(inputs, [config] * len(inputs))
    out = []
    for res in results:
        ids = list(res.m_generation_ids[0])
        out.append((tok.decode(ids, skip_special_tokens=True), ids))
    return out


def verify_tiny_model(model_dir: Path) -> None:
    """Raise RuntimeError unless the exported model reproduces every expected answer, greedily,
    through the chat template as the server renders it (tools and template kwargs included),
    both at the CPU's default inference precision (bf16 where available) and in f32."""
    import openvino_genai
    from transformers import AutoTokenizer

    model_dir = Path(model_dir)
    hf_tok = AutoTokenizer.from_pretrained(model_dir)
    ov_tok = openvino_genai.Tokenizer(str(model_dir))
    eos = hf_tok.convert_tokens_to_ids(IM_END)
    chat = _all_chat_cases()
    cases = chat + [(f"completion {p!r}", p, c) for p, c in TINY_COMPLETIONS.items()]
    longest = max(len(hf_tok.encode(expected, add_special_tokens=False)) for _, _, expected in cases)
    failures = []
    for label, prompt, _expected in cases:
        if hf_tok.encode(prompt, add_special_tokens=False) != list(ov_tok.encode(prompt, add_special_tokens=False).input_ids.data[0]):
            failures.append(f"{label}: the OpenVINO tokenizer encodes the prompt differently from the HF tokenizer")
    for precision in (None, "f32"):
        got = greedy_generate_rendered(model_dir, [prompt for _, prompt, _ in cases], max_new_tokens=longest + 8, precision=precision)
        for (label, _prompt, expected), (text, ids) in zip(cases, got, strict=True):
            expected_ids = hf_tok.encode(expected, add_special_tokens=False)
            if text != expected or ids != [*expected_ids, eos]:
                failures.append(
                    f"{label} ({precision or 'default precision'}): expected {expected!r}, got {text!r} "
                    f"(ids {ids}, expected {[*expected_ids, eos]})"
                )
    if failures:
        raise RuntimeError("tiny model verification failed:\n  " + "\n  ".join(failures))


# --------------------------------------------------------------------------- synthetic model

_SYLLABLES = [
    "ka",
    "lo",
    "mi",
    "ne",
    "ru",
    "sa",
    "ti",
    "vo",
    "ze",
    "pa",
    "qu",
    "ri",
    "do",
    "fe",
    "gu",
    "ha",
    "jo",
    "be",
    "ci",
    "ny",
    "ow",
    "el",
    "ar",
    "is",
    "un",
    "or",
]


def _synthetic_corpus(spec: dict[str, Any]) -> list[str]:
    rng = random.Random(spec["seed"])
    words = ["".join(rng.choice(_SYLLABLES) for _ in range(rng.randint(1, 4))) for _ in range(3000)]
    words += ["the", "a", "of", "and", "to", "in", "is", "it", "that", "for", "on", "with"]
    sentences = []
    for _ in range(spec["sentences"]):
        n = rng.randint(5, 18)
        sentence = " ".join(rng.choice(words) for _ in range(n)).capitalize()
        sentences.append(sentence + rng.choice([".", ".", ".", "?", "!"]))
    return sentences + _FILLER + [a for a in TINY_PROMPTS.values()]


def _build_synthetic(out: Path, recipe: dict[str, Any]) -> None:
    with _quiet_build():
        import torch
        from transformers import Qwen2ForCausalLM

        hf_tok = _train_tokenizer(_synthetic_corpus(recipe["corpus"]), recipe["tokenizer"])
        config = _qwen2_config(recipe["model"], hf_tok)
        torch.manual_seed(recipe["init_seed"])
        model = Qwen2ForCausalLM(config).eval()
        hf_dir = out / "hf"
        _save_hf(model, hf_tok, hf_dir)
        _export(hf_dir, out)
        verify_generates(out)


def verify_generates(model_dir: Path) -> None:
    """Raise RuntimeError unless the model loads in ContinuousBatchingPipeline and generates."""
    import openvino_genai

    pipe = _ov_pipeline(model_dir)
    tok = pipe.get_tokenizer()
    config = openvino_genai.GenerationConfig()
    config.max_new_tokens = 8
    config.ignore_eos = True
    ids = tok.encode("Hello, world!", add_special_tokens=False).input_ids
    result = pipe.generate([ids], [config])[0]
    if len(result.m_generation_ids[0]) != 8:
        raise RuntimeError(f"{model_dir}: expected 8 generated tokens, got {result.m_generation_ids}")


# --------------------------------------------------------------------------- CLI


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m serving.model_builder",
        description="Build (or reuse from cache) a locally made OpenVINO test/demo model and print its folder on the last line.",
    )
    parser.add_argument("kind", choices=["tiny", "tiny-draft", "tiny-lora", "synthetic"])
    parser.add_argument("--cache-dir", type=Path, default=None, help=f"cache root (default: ${CACHE_ENV} or <project>/.cache/models)")
    parser.add_argument("--hidden-size", type=int, default=None, help="synthetic only (512)")
    parser.add_argument("--layers", type=int, default=None, help="synthetic only (8)")
    parser.add_argument("-q", "--quiet", action="store_true", help="log warnings only")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    logger.setLevel(logging.WARNING if args.quiet else logging.INFO)
    if args.kind in ("tiny", "tiny-draft", "tiny-lora"):
        if args.hidden_size is not None or args.layers is not None:
            parser.error("--hidden-size/--layers apply to the synthetic model only")
        builders = {"tiny": build_tiny_model, "tiny-draft": build_tiny_draft_model, "tiny-lora": build_tiny_lora_adapters}
        path = builders[args.kind](args.cache_dir)
    else:
        path = build_synthetic_model(
            args.cache_dir,
            hidden_size=args.hidden_size if args.hidden_size is not None else 512,
            num_layers=args.layers if args.layers is not None else 8,
        )
    print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
