"""`reasoning_effort` mapped onto the chat template's own switches, where it has them.

A template that reads `reasoning_effort` (gpt-oss style) gets the value as a template variable.
A template that reads `enable_thinking` (Qwen3 style) gets `false` for "none" / "minimal" and
`true` for "low" / "medium" / "high" (the grade itself has no effect there). A template that
reads neither makes the field ignored (named in the response header). Keys the client set in
`chat_template_kwargs` win.
"""

from __future__ import annotations

import functools
from typing import TYPE_CHECKING

import jinja2
import jinja2.meta

if TYPE_CHECKING:
    from calculators.openai.protocol import ChatCompletionRequest

NO_THINKING = frozenset({"none", "minimal"})


@functools.lru_cache(maxsize=16)
def template_variables(template: str) -> frozenset[str]:
    """The variables a chat template reads (parsed once per template text)."""
    try:
        ast = jinja2.Environment(extensions=["jinja2.ext.loopcontrols"]).parse(template)  # as HF templates
    except jinja2.TemplateSyntaxError:
        return frozenset()
    return frozenset(jinja2.meta.find_undeclared_variables(ast))


def apply_reasoning_effort(params: ChatCompletionRequest, template: str | None) -> tuple[ChatCompletionRequest, bool]:
    """The request with `reasoning_effort` turned into template variables, and whether it took
    effect (False: ignored, for the response header)."""
    effort = params.reasoning_effort
    if effort is None:
        return params, True
    reads = template_variables(template) if template else frozenset()
    given = params.chat_template_kwargs or {}
    mapped: dict[str, object] = {}
    if "reasoning_effort" in reads and "reasoning_effort" not in given:
        mapped["reasoning_effort"] = effort
    if "enable_thinking" in reads and "enable_thinking" not in given:
        mapped["enable_thinking"] = effort not in NO_THINKING
    if not mapped:
        return params, False
    return params.model_copy(update={"chat_template_kwargs": {**given, **mapped}}), True
