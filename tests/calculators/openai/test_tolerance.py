"""Unknown request fields (ignored, or a 400 when they ask for what we cannot do) and
reasoning_effort mapped onto a chat template, through OpenAIRequestCalculator alone."""

from __future__ import annotations

import logging
from types import SimpleNamespace
from typing import Any

import pytest

from calculators.openai.protocol import ChatCompletionRequest
from calculators.openai.reasoning_effort import template_variables
from calculators.openai.request_calculator import OpenAIRequestCalculator
from calculators.openai.tolerance import MAX_NAMED, IgnoredFields, check_unknown, refused_fields, warn_once
from calculators.packets import Endpoint, GenerationRequest, HttpRequestPayload
from graphs.errors import InvalidRequestError
from graphs.testing import run_calculator
from tests.models.chat import CHAT_TEMPLATE

CHAT: Endpoint = "chat/completions"
COMPLETIONS: Endpoint = "completions"
MESSAGES = [{"role": "user", "content": "hi"}]
# What OpenAI's SDK and frameworks send that changes nothing here.
HARMLESS = {
    "store": False,
    "metadata": {"team": "a"},
    "service_tier": "auto",
    "user": "u-1",
    "verbosity": "low",
    "prompt_cache_key": "k",
    "safety_identifier": "s",
    "modalities": ["text"],
    "prediction": None,
    "audio": None,
    "frobnicate": 1,
}


async def validate(endpoint: Endpoint, body: dict[str, Any], template: str | None = None) -> GenerationRequest:
    side = {"LLM": SimpleNamespace(tokenizer=SimpleNamespace(chat_template=template))} if template is not None else None
    outputs = await run_calculator(
        OpenAIRequestCalculator, {"HTTP_REQUEST_PAYLOAD": [HttpRequestPayload(endpoint, body)]}, side_packets=side
    )
    return outputs["REQUEST"][0].value  # type: ignore[no-any-return]


@pytest.mark.parametrize("endpoint", [CHAT, COMPLETIONS])
async def test_harmless_unknown_fields_are_accepted(endpoint: Endpoint) -> None:
    body = {"model": "tiny", **({"messages": MESSAGES} if endpoint == CHAT else {"prompt": "Once"}), **HARMLESS}
    request = await validate(endpoint, body)
    assert set(request.params.model_extra or {}) == set(HARMLESS)
    assert check_unknown(endpoint, request.params.model_extra or {}) == list(HARMLESS)


@pytest.mark.parametrize(
    ("endpoint", "field", "value", "says"),
    [
        (CHAT, "logit_bias", {"50256": -100}, "logit_bias is not supported"),
        (CHAT, "modalities", ["text", "audio"], "only text output"),
        (CHAT, "audio", {"voice": "alloy", "format": "wav"}, "audio output is not supported"),
        (CHAT, "prediction", {"type": "content", "content": "x = 1"}, "predicted outputs"),
        (CHAT, "web_search_options", {}, None),  # empty: asks for nothing
        (CHAT, "web_search_options", {"search_context_size": "low"}, "web search"),
        (CHAT, "functions", [{"name": "f"}], "use tools"),
        (CHAT, "function_call", {"name": "f"}, "use tools"),
        (CHAT, "prompt", "hi", "unsupported field: prompt"),
        (CHAT, "suffix", "end", "suffix"),
        (CHAT, "echo", True, "echo"),
        (COMPLETIONS, "suffix", "end", "suffix (fill-in-the-middle) is not supported"),
        (COMPLETIONS, "logit_bias", {"5": 1}, "logit_bias"),
        (COMPLETIONS, "messages", MESSAGES, "unsupported field: messages"),
        (COMPLETIONS, "max_completion_tokens", 5, "unsupported field: max_completion_tokens"),
        (COMPLETIONS, "tools", [{"type": "function", "function": {"name": "f"}}], "tools are for chat"),
    ],
)
async def test_fields_asking_for_what_we_cannot_do_are_400s(endpoint: Endpoint, field: str, value: Any, says: str | None) -> None:
    body = {"model": "tiny", **({"messages": MESSAGES} if endpoint == CHAT else {"prompt": "Once"}), field: value}
    if says is None:
        await validate(endpoint, body)
        return
    with pytest.raises(InvalidRequestError) as info:
        await validate(endpoint, body)
    assert info.value.param == field and says in info.value.message


def test_refused_lists_name_the_documented_fields() -> None:
    assert {"modalities", "audio", "prediction", "functions", "function_call", "web_search_options"} <= set(refused_fields(CHAT))
    assert {"messages", "max_completion_tokens", "tools"} <= set(refused_fields(COMPLETIONS))


async def test_nested_unknown_fields_stay_400s() -> None:
    with pytest.raises(InvalidRequestError) as info:
        await validate(CHAT, {"model": "tiny", "messages": [{"role": "user", "content": "hi", "mood": "x"}]})
    assert info.value.param == "messages.0.mood"


def test_header_names_plain_names_only_and_is_bounded() -> None:
    notes = IgnoredFields()
    assert notes.header() is None
    notes.add(["store", "metadata", "store", "bad\r\nname", "é"])
    assert notes.header() == "store, metadata, (+2 more)"
    many = IgnoredFields()
    many.add(f"f{i}" for i in range(MAX_NAMED + 3))
    assert many.header() is not None and many.header().endswith(f"f{MAX_NAMED - 1}, (+3 more)")  # type: ignore[union-attr]


def test_each_name_is_logged_once(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="ovserve.openai"):
        warn_once(CHAT, ["tolerance_test_a", "tolerance_test_b"])
        warn_once(CHAT, ["tolerance_test_a", "tolerance_test_c"])
    lines = [r.getMessage() for r in caplog.records]
    assert len(lines) == 2
    assert "'tolerance_test_a', 'tolerance_test_b'" in lines[0] and "X-Ovserve-Ignored-Fields" in lines[0]
    assert "'tolerance_test_c'" in lines[1] and "tolerance_test_a" not in lines[1]


# --- reasoning_effort ------------------------------------------------------------------------

EFFORT_TEMPLATE = "{{ messages[0].content }}{% if reasoning_effort %} effort={{ reasoning_effort }}{% endif %}"


def test_the_tiny_template_reads_enable_thinking_only() -> None:
    reads = template_variables(CHAT_TEMPLATE)
    assert "enable_thinking" in reads and "reasoning_effort" not in reads


@pytest.mark.parametrize(
    ("template", "effort", "given", "kwargs"),
    [
        (CHAT_TEMPLATE, "none", None, {"enable_thinking": False}),
        (CHAT_TEMPLATE, "minimal", None, {"enable_thinking": False}),
        (CHAT_TEMPLATE, "high", None, {"enable_thinking": True}),
        (CHAT_TEMPLATE, "none", {"enable_thinking": True}, {"enable_thinking": True}),  # the client's kwargs win: ignored
        (EFFORT_TEMPLATE, "low", None, {"reasoning_effort": "low"}),
        (EFFORT_TEMPLATE, "high", {"x": 1}, {"x": 1, "reasoning_effort": "high"}),
        ("{{ messages }}", "low", None, None),  # the template has no switch: ignored
    ],
)
async def test_reasoning_effort_reaches_the_template(template: str, effort: str, given: dict[str, Any] | None, kwargs: Any) -> None:
    body = {"model": "tiny", "messages": MESSAGES, "reasoning_effort": effort, "chat_template_kwargs": given}
    params = (await validate(CHAT, body, template)).params
    assert isinstance(params, ChatCompletionRequest)
    assert params.chat_template_kwargs == (kwargs if kwargs is not None else given)


async def test_reasoning_effort_without_a_template_and_bad_values() -> None:
    params = (await validate(CHAT, {"model": "tiny", "messages": MESSAGES, "reasoning_effort": "high"})).params
    assert isinstance(params, ChatCompletionRequest) and params.chat_template_kwargs is None  # no LLM side packet: ignored
    with pytest.raises(InvalidRequestError) as info:
        await validate(CHAT, {"model": "tiny", "messages": MESSAGES, "reasoning_effort": "extreme"})
    assert info.value.param == "reasoning_effort"
