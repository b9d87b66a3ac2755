"""LoRA adapters: one engine, several served model names.

A servable whose LLM node lists `lora_adapters { name path alpha }` serves its own name (the base
model) and "<servable>:<name>" per adapter. The engine is built with every adapter (genai's
`AdapterConfig`). genai 2026.4 applies one adapter setting to a whole step, so the engine worker
runs requests in turns by adapter: requests for one adapter batch together, requests for other
adapters wait until that batch drains (calculators/llm/engine/cb_loop.py `add`). This module holds the
naming rule (used by the server to resolve a model name and by the tokenizer node to pick the
adapter) and the load-time checks."""

from __future__ import annotations

import logging
import re
from pathlib import Path
from typing import TYPE_CHECKING, Any

from graphs.errors import UnavailableError

if TYPE_CHECKING:
    from calculators.llm.options import LLMOptions

log = logging.getLogger("ovserve.llm")

# "<servable>:<adapter>"
SEPARATOR = ":"
# The engine-config key that carries a request's adapter name to the worker.
ADAPTER_KEY = "__lora_adapter"
ADAPTER_FILE = "adapter_model.safetensors"  # what PEFT's save_pretrained writes
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")


def served_name(base: str, adapter: str) -> str:
    return f"{base}{SEPARATOR}{adapter}"


def split_model_name(name: str) -> tuple[str, str | None]:
    """("base", "adapter") for "base:adapter"; (name, None) for a name without the separator.
    The adapter is what follows the last separator (servable names may hold one; adapter
    names may not)."""
    base, sep, adapter = name.rpartition(SEPARATOR)
    if not sep or not base or not adapter:
        return name, None
    return base, adapter


def check_adapter_name(name: str) -> None:
    if not _NAME.match(name):
        raise ValueError(f"LoRA adapter name {name!r}: use letters, digits, '.', '_' and '-' (starting with a letter or digit)")


def parse_flag(value: str) -> dict[str, Any]:
    """`--lora_adapter NAME=PATH[@ALPHA]` to a `lora_adapters` entry (PATH made absolute)."""
    name, sep, rest = value.partition("=")
    if not sep or not rest:
        raise ValueError(f"--lora_adapter {value!r}: expected NAME=PATH (or NAME=PATH@ALPHA)")
    check_adapter_name(name)
    path, at, alpha = rest.rpartition("@")
    entry: dict[str, Any] = {"name": name}
    if at:
        try:
            entry["alpha"] = float(alpha)
        except ValueError:
            path = rest  # an '@' in the path itself
    else:
        path = alpha
    entry["path"] = str(Path(path).resolve())
    return entry


def adapter_names(options: LLMOptions) -> tuple[str, ...]:
    return tuple(a.name for a in options.lora_adapters)


def adapter_specs(options: LLMOptions, base_path: Path) -> list[dict[str, Any]]:
    """[{"name", "path" (the .safetensors file), "alpha"}] for the worker, after the checks that
    make a servable with bad adapters fail to load with a message naming them."""
    if not options.lora_adapters:
        return []
    if options.pipeline != "LM_CB":  # genai 2026.4's VLM pipelines take no adapters; LM has no turns
        raise UnavailableError(f"lora_adapters are served with pipeline_type LM_CB only (this servable runs {options.pipeline})")
    if options.speculation() is not None:
        raise UnavailableError("lora_adapters do not combine with speculative decoding (draft_models_path, prompt lookup)")
    if options.enable_prefix_caching:  # the worker turns it off: genai would reuse one adapter's cached prefix for another
        log.warning("lora_adapters: prefix caching is off for this engine (the KV cache of a prefix depends on the adapter)")
    specs: list[dict[str, Any]] = []
    seen: set[str] = set()
    for adapter in options.lora_adapters:
        try:
            check_adapter_name(adapter.name)
        except ValueError as exc:
            raise UnavailableError(f"lora_adapters: {exc}") from None
        if adapter.name in seen:
            raise UnavailableError(f"lora_adapters: the name {adapter.name!r} is given twice")
        seen.add(adapter.name)
        path = (base_path / adapter.path).resolve()
        file = path / ADAPTER_FILE if path.is_dir() else path
        if not file.is_file() or file.suffix != ".safetensors":
            raise UnavailableError(
                f"lora_adapters: {adapter.name!r}: no adapter at {path} (a .safetensors file, or a folder with {ADAPTER_FILE})"
            )
        specs.append({"name": adapter.name, "path": str(file), "alpha": adapter.alpha})
    return specs


def request_adapter(model: str, options: LLMOptions) -> str | None:
    """The adapter a request's `model` selects on this engine (None: the base model). The server
    has already resolved the name (an unknown adapter is a 404 there)."""
    _base, adapter = split_model_name(model)
    if adapter is not None and adapter in adapter_names(options):
        return adapter
    return None
