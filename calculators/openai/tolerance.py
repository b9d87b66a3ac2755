"""Request fields we do not know: accepted and ignored, as vLLM and OpenAI-compatible clients
expect (`store`, `metadata`, `service_tier`, `verbosity`, … arrive from SDKs and frameworks),
unless they ask for something the engine cannot do, which stays a 400 naming the field.

What was ignored is logged once per field name per process (WARNING) and told to the client in
the `X-Ovserve-Ignored-Fields` response header: the front end attaches an `IgnoredFields` to the
run's request values (`IGNORED_FIELDS`) and reads it when it writes the headers.
"""

from __future__ import annotations

import logging
import re
import threading
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from graphs.errors import InvalidRequestError

log = logging.getLogger("ovserve.openai")

#: the request-value key under which the front end attaches the request's `IgnoredFields`
IGNORED_FIELDS = "ignored_fields"
HEADER = "X-Ovserve-Ignored-Fields"
# A name goes into the header only if it is a plain identifier (the header stays readable and
# nothing a client sends can break it); the header names at most this many.
_PLAIN_NAME = re.compile(r"^[A-Za-z0-9_.\-]{1,64}$")
MAX_NAMED = 32
# Names warned about: per process, bounded (random names from clients must not grow it forever).
MAX_WARNED = 1024


class IgnoredFields:
    """The request fields that had no effect on one request, in the order met."""

    __slots__ = ("names",)

    def __init__(self) -> None:
        self.names: list[str] = []

    def add(self, names: Iterable[str]) -> None:
        for name in names:
            if name not in self.names:
                self.names.append(name)

    def header(self) -> str | None:
        """The header's value: the plain names (at most MAX_NAMED), and how many others."""
        if not self.names:
            return None
        shown = [n for n in self.names if _PLAIN_NAME.match(n)][:MAX_NAMED]
        others = len(self.names) - len(shown)
        return ", ".join(shown + ([f"(+{others} more)"] if others else []))


class _WarnOnce:
    """Logs each ignored field name once per process (thread-safe, bounded)."""

    def __init__(self) -> None:
        self._seen: set[str] = set()
        self._lock = threading.Lock()

    def __call__(self, endpoint: str, names: Iterable[str]) -> None:
        new: list[str] = []
        with self._lock:
            for name in names:
                if name not in self._seen and len(self._seen) < MAX_WARNED:
                    self._seen.add(name)
                    new.append(name)
        if new:
            shown = ", ".join(repr(n[:64]) for n in new)
            log.warning("%s: ignoring request field(s) %s: they have no effect here (named in %s; logged once)", endpoint, shown, HEADER)


warn_once = _WarnOnce()


def _meaningful(value: Any) -> bool:
    return value not in (None, "", [], {}, False)


def _not_text_only(value: Any) -> bool:
    return value is not None and value != ["text"] and value != "text"


def _predicted_content(value: Any) -> bool:
    return isinstance(value, dict) and _meaningful(value.get("content"))


def _function_call(value: Any) -> bool:
    return value not in (None, "none", "auto")


# Unknown fields that ask for what we cannot do: (asks for it?, why not). Declared fields we
# cannot honour (`logit_bias`, `suffix`, …) are refused by calculators.openai.support.
_COMMON: dict[str, tuple[Callable[[Any], bool], str]] = {
    "modalities": (_not_text_only, 'only text output is supported (modalities ["text"])'),
    "audio": (_meaningful, "audio output is not supported"),
    "prediction": (_predicted_content, "predicted outputs are not supported"),
    "web_search_options": (_meaningful, "web search is not supported"),
    "functions": (_meaningful, "the legacy functions are not supported; use tools"),
    "function_call": (_function_call, "the legacy function_call is not supported; use tools and tool_choice"),
}
_BY_ENDPOINT: dict[str, dict[str, tuple[Callable[[Any], bool], str]]] = {
    "chat/completions": {
        **_COMMON,
        "prompt": (lambda v: v is not None, "unsupported field: prompt (chat takes messages; use /v3/completions)"),
        "suffix": (_meaningful, "suffix (fill-in-the-middle) is not supported"),
        "echo": (_meaningful, "echo is a completions field; chat does not echo"),
    },
    "completions": {
        **_COMMON,
        "messages": (lambda v: v is not None, "unsupported field: messages (completions take prompt; use /v3/chat/completions)"),
        "max_completion_tokens": (lambda v: v is not None, "unsupported field: max_completion_tokens (completions take max_tokens)"),
        "tools": (_meaningful, "unsupported field: tools (tools are for chat completions)"),
        "tool_choice": (_meaningful, "unsupported field: tool_choice (tools are for chat completions)"),
    },
}


def refused_fields(endpoint: str) -> tuple[str, ...]:
    """The unknown fields refused when they ask for something (docs and tests)."""
    return tuple(_BY_ENDPOINT.get(endpoint, {}))


def check_unknown(endpoint: str, extra: Mapping[str, Any]) -> list[str]:
    """A 400 for an unknown field that asks for what we cannot do; else the names ignored."""
    rules = _BY_ENDPOINT.get(endpoint, {})
    for name, value in extra.items():
        rule = rules.get(name)
        if rule is not None and rule[0](value):
            raise InvalidRequestError(rule[1], param=name)
    return list(extra)
