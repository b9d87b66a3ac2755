"""What the server process needs from a model folder besides the engine: tokenizer, chat
template, token-bytes table, context length."""

from __future__ import annotations

import datetime as _dt
import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jinja2
from jinja2.sandbox import ImmutableSandboxedEnvironment

from calculators.llm.tool_prompt import default_system_prompt, template_ignores_tools, with_tools_in_prompt
from calculators.llm.vocab import TokenBytes, load_token_bytes
from graphs.errors import InvalidRequestError

log = logging.getLogger(__name__)


def _raise(message: str) -> None:
    raise jinja2.TemplateError(message)


def _template_env() -> ImmutableSandboxedEnvironment:
    # Same conventions as Hugging Face chat templates, so templates written for them work.
    env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True, extensions=["jinja2.ext.loopcontrols"])
    env.globals["raise_exception"] = _raise
    env.globals["strftime_now"] = lambda fmt: _dt.datetime.now().strftime(fmt)
    env.filters["tojson"] = lambda value, indent=None, **_: json.dumps(value, ensure_ascii=False, indent=indent)
    return env


def read_chat_template(model_dir: Path, fallback: str | None) -> str | None:
    """`chat_template.jinja` wins, then tokenizer_config.json's, then the tokenizer IR's."""
    jinja_file = model_dir / "chat_template.jinja"
    if jinja_file.is_file():
        return jinja_file.read_text(encoding="utf-8")
    config = model_dir / "tokenizer_config.json"
    if config.is_file():
        template = json.loads(config.read_text(encoding="utf-8")).get("chat_template")
        if isinstance(template, str) and template:
            return template
        if isinstance(template, list) and template:  # [{"name": "default", "template": ...}, ...]
            by_name = {t.get("name"): t.get("template") for t in template if isinstance(t, dict)}
            if by_name.get("default"):
                return str(by_name["default"])
    return fallback or None


def read_context_length(model_dir: Path) -> int | None:
    config = model_dir / "config.json"
    if not config.is_file():
        return None
    data = json.loads(config.read_text(encoding="utf-8"))
    data = data.get("text_config", data)
    for key in ("max_position_embeddings", "n_positions", "max_sequence_length", "seq_length"):
        if isinstance(data.get(key), int):
            return int(data[key])
    return None


@dataclass
class ModelTokenizer:
    """openvino_genai's Tokenizer plus our chat template rendering and token-bytes table."""

    ov_tokenizer: Any
    chat_template: str | None
    token_bytes: TokenBytes | None
    context_length: int | None
    bos_token: str
    eos_token: str

    @classmethod
    def load(cls, model_dir: Path, tool_parser: str | None = None) -> ModelTokenizer:
        """`tool_parser` (the servable's) is the format tools are described in when the template
        ignores them."""
        import openvino_genai as ov_genai

        # One thread: a prompt is small work, and a second thread only fights the engine for CPU
        # (measured: half the CPU per encode at the same latency).
        tok = ov_genai.Tokenizer(str(model_dir), INFERENCE_NUM_THREADS=1)
        try:
            builtin_template = tok.chat_template
        except Exception:
            builtin_template = None
        instance = cls(
            ov_tokenizer=tok,
            chat_template=read_chat_template(model_dir, builtin_template),
            token_bytes=load_token_bytes(model_dir),
            context_length=read_context_length(model_dir),
            bos_token=tok.get_bos_token(),
            eos_token=tok.get_eos_token(),
        )
        instance._compiled = _template_env().from_string(instance.chat_template) if instance.chat_template else None
        instance.tool_parser = tool_parser
        if instance._compiled is not None:
            instance.ignores_tools = template_ignores_tools(instance._render)
            if instance.ignores_tools:
                instance.default_system = default_system_prompt(instance._render)
                how = f"the {tool_parser} format" if tool_parser else "a neutral JSON format (no tool_parser)"
                log.info("the chat template of %s ignores tools: a request's tools go into its system message in %s", model_dir, how)
        return instance

    _compiled: jinja2.Template | None = None
    #: the template renders the same text with tools as without (decided once, at load): tools and
    #: tool-call history are then written into the messages (calculators/llm/tool_prompt.py)
    ignores_tools: bool = False
    tool_parser: str | None = None  # the servable's: the format of tools written into messages
    default_system: str | None = None  # the template's own system text (kept before injected tools)

    def _render(self, messages: list[dict[str, Any]], add_generation_prompt: bool = True, **kwargs: Any) -> str:
        assert self._compiled is not None
        return self._compiled.render(
            messages=messages, add_generation_prompt=add_generation_prompt, bos_token=self.bos_token, eos_token=self.eos_token, **kwargs
        )

    def render_chat(
        self, messages: list[dict[str, Any]], add_generation_prompt: bool = True, tools: list[dict[str, Any]] | None = None, **kwargs: Any
    ) -> str:
        if self._compiled is None:
            raise InvalidRequestError("this model has no chat template; use /v3/completions", param="messages")
        if self.ignores_tools:
            messages, tools = with_tools_in_prompt(messages, tools, self.tool_parser, self.default_system), None
        try:
            return self._render(messages, add_generation_prompt, tools=tools, **kwargs)
        except (jinja2.TemplateError, TypeError, ValueError, LookupError, RecursionError) as exc:
            # the template runs on the request's messages, tools and chat_template_kwargs
            raise InvalidRequestError(f"chat template failed: {exc}", param="messages") from exc

    def encode(self, text: str, add_special_tokens: bool) -> list[int]:
        ids = self.ov_tokenizer.encode(text, add_special_tokens=add_special_tokens).input_ids
        return ids.data[0].tolist()  # type: ignore[no-any-return]  # Python ints, 10x faster than a comprehension

    def decode(self, token_ids: Sequence[int], skip_special_tokens: bool = True) -> str:
        return str(self.ov_tokenizer.decode(list(token_ids), skip_special_tokens=skip_special_tokens))
