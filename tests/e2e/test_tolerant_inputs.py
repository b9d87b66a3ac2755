"""Tolerant where the ecosystem is tolerant (issue 19), on a real server with the tiny model:
unknown OpenAI fields through the SDK's extra_body (the exact answer, and the header naming
them, unary and streamed), a 400 for what the engine cannot do, reasoning_effort on the tiny
model's template (it reads enable_thinking), and OVMS's CLI flags ovserve has no use for."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import openai
import pytest

from calculators.openai.tolerance import HEADER
from tests.helpers.http import assert_openai_error, post
from tests.helpers.servables import ovms_servable
from tests.helpers.server import Server, start_server, wait_for
from tests.models import TINY_PROMPTS, TINY_THINK_ANSWER, TINY_THINK_PROMPT

PROMPT = "Say this is a test"
EXTRA = {
    "store": False,
    "metadata": {"app": "x"},
    "service_tier": "auto",
    "verbosity": "low",
    "prediction": None,
    "modalities": ["text"],
    "prompt_cache_key": "k1",
    "safety_identifier": "s1",
    "user": "u1",
}
OVMS_FLAGS = ("--grpc_workers", "4", "--log_level", "TRACE", "--sequence_cleaner_poll_wait_minutes", "5", "--cpu_extension", "/none.so")


@pytest.fixture(scope="module")
def server(tiny_model_dir: Path) -> Iterator[Server]:
    srv = start_server("--model_path", str(tiny_model_dir), "--model_name", "tiny", *OVMS_FLAGS)
    try:
        yield srv
    finally:
        assert srv.stop() == 0


def names(header: str | None) -> set[str]:
    return set(header.split(", ")) if header else set()


def chat(client: openai.OpenAI, prompt: str, **kwargs: Any) -> Any:
    return client.chat.completions.with_raw_response.create(model="tiny", messages=[{"role": "user", "content": prompt}], **kwargs)


def test_ovms_flags_without_use_here_are_one_warning(server: Server) -> None:
    startup = "\n".join(server.output)
    [line] = [line for line in startup.splitlines() if "have no effect here" in line]
    for flag in ("--grpc_workers", "--log_level TRACE", "--sequence_cleaner_poll_wait_minutes", "--cpu_extension"):
        assert flag in line


def test_unknown_fields_are_ignored_and_named_unary(client: openai.OpenAI) -> None:
    raw = chat(client, PROMPT, extra_body=EXTRA)
    assert raw.parse().choices[0].message.content == TINY_PROMPTS[PROMPT]
    assert names(raw.headers.get(HEADER)) == set(EXTRA)
    plain = chat(client, PROMPT)
    assert HEADER not in plain.headers  # nothing ignored, no header


def test_unknown_fields_are_ignored_and_named_streaming(client: openai.OpenAI) -> None:
    raw = chat(client, PROMPT, stream=True, extra_body={"store": True, "metadata": {"a": "b"}})
    assert names(raw.headers.get(HEADER)) == {"store", "metadata"}
    text = "".join(c.choices[0].delta.content or "" for c in raw.parse() if c.choices)
    assert text == TINY_PROMPTS[PROMPT]


def test_completions_too(client: openai.OpenAI) -> None:
    raw = client.completions.with_raw_response.create(
        model="tiny", prompt="The capital of France is", max_tokens=3, extra_body={"store": 1}
    )
    assert raw.parse().choices[0].text and names(raw.headers.get(HEADER)) == {"store"}


def test_a_reply_sent_back_as_the_sdk_returned_it_is_history(client: openai.OpenAI) -> None:
    """Agent loops append `reply.choices[0].message` as the SDK parsed it: with refusal,
    annotations, audio and function_call (null) beside role and content. The answer is the one
    the same history gets with role and content only."""
    first = client.chat.completions.create(model="tiny", messages=[{"role": "user", "content": PROMPT}])
    echoed = first.choices[0].message.model_dump()
    assert {"refusal", "annotations", "audio", "function_call"} <= echoed.keys()
    follow = {"role": "user", "content": PROMPT}
    answers = [
        client.chat.completions.create(model="tiny", messages=[{"role": "user", "content": PROMPT}, message, follow])
        .choices[0]
        .message.content
        for message in (echoed, {"role": "assistant", "content": echoed["content"]})
    ]
    assert answers[0] == answers[1]


def test_each_ignored_name_is_logged_once(server: Server, client: openai.OpenAI) -> None:
    chat(client, PROMPT, extra_body={"e3_log_probe": 1})
    chat(client, PROMPT, extra_body={"e3_log_probe": 2})
    wait_for(lambda: any("e3_log_probe" in line for line in server.output), "the warning")
    chat(client, PROMPT, extra_body={"e3_log_probe_end": 1})  # logged after the second probe, if ever
    wait_for(lambda: any("e3_log_probe_end" in line for line in server.output), "the second warning")
    assert sum("'e3_log_probe'" in line for line in server.output) == 1


@pytest.mark.parametrize(
    ("extra", "param"),
    [
        ({"logit_bias": {"5": 2.0}}, "logit_bias"),
        ({"modalities": ["text", "audio"], "audio": {"voice": "alloy", "format": "wav"}}, "modalities"),
        ({"prediction": {"type": "content", "content": "Hi"}}, "prediction"),
        ({"functions": [{"name": "f", "parameters": {}}]}, "functions"),
    ],
)
def test_what_the_engine_cannot_do_is_a_400(server: Server, extra: dict[str, Any], param: str) -> None:
    body = {"model": "tiny", "messages": [{"role": "user", "content": PROMPT}], "store": False, **extra}
    status, headers, reply = post(server, "/v3/chat/completions", body)
    assert_openai_error(status, reply, 400, param)
    assert HEADER not in headers


def test_reasoning_effort_maps_onto_enable_thinking(client: openai.OpenAI) -> None:
    direct = chat(client, TINY_THINK_PROMPT, reasoning_effort="minimal")  # the SDK's own parameter
    assert direct.parse().choices[0].message.content == TINY_THINK_ANSWER
    assert HEADER not in direct.headers
    off = chat(client, TINY_THINK_PROMPT, extra_body={"reasoning_effort": "none"}, stream=True)
    assert "".join(c.choices[0].delta.content or "" for c in off.parse() if c.choices) == TINY_THINK_ANSWER
    thinking = chat(client, TINY_THINK_PROMPT, reasoning_effort="high")
    assert thinking.parse().choices[0].message.content.startswith("<think>") and HEADER not in thinking.headers
    kept = chat(client, TINY_THINK_PROMPT, reasoning_effort="none", extra_body={"chat_template_kwargs": {"enable_thinking": True}})
    assert kept.parse().choices[0].message.content.startswith("<think>")  # the client's own kwargs win
    assert names(kept.headers.get(HEADER)) == {"reasoning_effort"}


def test_ovms_config_keys_without_use_here_serve_with_a_warning(tiny_model_dir: Path, tmp_path: Path) -> None:
    ovms_servable(tmp_path / "models" / "chat", tiny_model_dir)  # OVMS's HttpLLMCalculator graph
    config = {
        "model_config_list": [{"config": {"name": "chat", "base_path": "models/chat", "nireq": 4, "model_version_policy": {"all": {}}}}],
        "pipeline_config_list": [],
    }
    (tmp_path / "config.json").write_text(json.dumps(config))
    srv = start_server("--config_path", str(tmp_path / "config.json"))
    try:
        [line] = [line for line in srv.output if "have no effect here" in line]
        assert "pipeline_config_list" in line and "chat: nireq" in line and "chat: model_version_policy" in line
        with openai.OpenAI(base_url=srv.base_url + "/v3", api_key="x", max_retries=0) as client:
            raw = client.chat.completions.with_raw_response.create(
                model="chat", messages=[{"role": "user", "content": TINY_THINK_PROMPT}], reasoning_effort="none", extra_body={"store": True}
            )
            assert raw.parse().choices[0].message.content == TINY_THINK_ANSWER  # reasoning_effort through OVMS's graph too
            assert names(raw.headers.get(HEADER)) == {"store"}
    finally:
        assert srv.stop() == 0
