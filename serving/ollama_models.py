"""What Ollama's model routes answer about the servables: /api/tags, /api/ps, /api/show,
/api/version, and /api/pull for a model that is already served.

Figures ovserve has are given (size of the model folder, context length, chat template); those it
has not (parameter count, quantization level) are left empty rather than made up. `digest` is a
hash of what the servable was built from, so it changes when a reload rebuilds it.
"""

from __future__ import annotations

import functools
import hashlib
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from serving.kserve.inference import kind_of
from serving.servable import Servable, ServableManager, State

# The Ollama release whose API this front end answers as: clients gate features on /api/version.
OLLAMA_API_VERSION = "0.12.0"
FORMAT = "openvino"


def _time(epoch: int) -> str:
    return datetime.fromtimestamp(epoch, UTC).isoformat().replace("+00:00", "Z")


@functools.lru_cache(maxsize=256)
def _folder_bytes(path: Path, fingerprint: str) -> int:
    """Bytes of the model folder (files below it); cached per build of the servable."""
    if path.is_file():
        return path.stat().st_size
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file()) if path.is_dir() else 0


def digest(servable: Servable) -> str:
    return hashlib.sha256(f"{servable.name}\n{servable.fingerprint}\n{servable.created}".encode()).hexdigest()


def details(servable: Servable, name: str) -> dict[str, Any]:
    return {
        "parent_model": servable.name if name != servable.name else "",  # a LoRA adapter: its base
        "format": FORMAT,
        "family": "",
        "families": None,
        "parameter_size": "",
        "quantization_level": "",
    }


def _entry(servable: Servable, name: str) -> dict[str, Any]:
    return {
        "name": name,
        "model": name,
        "modified_at": _time(servable.created),
        "size": _folder_bytes(servable.base_path, servable.fingerprint),
        "digest": digest(servable),
        "details": details(servable, name),
    }


def usable(servable: Servable) -> bool:
    """Can Ollama's API use it (chat/generate or embed)? Ollama lists no other kind of model, so
    rerank, image and audio servables stay off its lists (they are on /v3/models)."""
    return kind_of(servable) in ("text_generation", "embeddings")


def tags(servables: ServableManager) -> dict[str, Any]:
    """Every model Ollama's API can use that can serve (loaded, or lazy/idle: the next request loads it)."""
    served = (s for s in servables if s.state in (State.AVAILABLE, State.IDLE) and usable(s))
    return {"models": [_entry(s, name) for s in served for name in s.served_names()]}


def _llm(servable: Servable) -> Any:
    """The servable's LLM resource (tokenizer, options), if it has one."""
    return next((v for v in servable.side_packets.values() if hasattr(v, "tokenizer") and hasattr(v, "policy")), None)


def _context_length(servable: Servable) -> int | None:
    llm = _llm(servable)
    return getattr(llm.tokenizer, "context_length", None) if llm is not None else None


def running(servables: ServableManager) -> dict[str, Any]:
    """/api/ps: the models loaded now. Nothing expires (no keep_alive timer here); idle unload,
    when configured, is the server's."""
    models = []
    for servable in servables:
        if servable.state is not State.AVAILABLE or not usable(servable):
            continue
        for name in servable.served_names():
            entry = _entry(servable, name)
            entry.update(expires_at=None, size_vram=0, context_length=_context_length(servable))
            models.append(entry)
    return {"models": models}


def capabilities(servable: Servable) -> list[str]:
    kind = kind_of(servable)
    if kind == "embeddings":
        return ["embedding"]
    if kind != "text_generation":
        return []
    found = ["completion"]
    llm = _llm(servable)
    options = getattr(llm, "options", None)
    template = getattr(getattr(llm, "tokenizer", None), "chat_template", None) or ""
    if getattr(options, "tool_parser", None) or "tools" in template:
        found.append("tools")
    if getattr(options, "reasoning_parser", None):
        found.append("thinking")
    if getattr(llm, "vision", None) is not None:
        found.append("vision")
    return found


def show(servable: Servable, name: str) -> dict[str, Any]:
    llm = _llm(servable)
    template = getattr(getattr(llm, "tokenizer", None), "chat_template", None) or ""
    info: dict[str, Any] = {"general.architecture": FORMAT, "general.basename": servable.name}
    context = _context_length(servable)
    if context:
        info[f"{FORMAT}.context_length"] = context
    return {
        "modelfile": f"# served by ovserve from {servable.base_path.name}\nFROM {name}\n",
        "parameters": "",
        "template": template,
        "details": details(servable, name),
        "model_info": info,
        "capabilities": capabilities(servable),
        "modified_at": _time(servable.created),
    }


def pull_lines(servable: Servable) -> list[dict[str, Any]]:
    """/api/pull of a model this server already serves: Ollama's progress lines, all done."""
    size = _folder_bytes(servable.base_path, servable.fingerprint)
    hashed = digest(servable)
    return [
        {"status": "pulling manifest"},
        {"status": f"pulling {hashed[:12]}", "digest": f"sha256:{hashed}", "total": size, "completed": size},
        {"status": "verifying sha256 digest"},
        {"status": "writing manifest"},
        {"status": "success"},
    ]
