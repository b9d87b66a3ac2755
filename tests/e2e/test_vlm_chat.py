"""image_url chats end to end: one real server serving the trained tiny VLM (`vlm`, VLM_CB, and
`vlm-stateful`, VLM) beside the tiny text model (`tiny`), allowed to fetch from a real aiohttp
image server on loopback (--allowed_media_domains 127.0.0.1). Through the `openai` SDK: every
trained answer from base64 images (both part orders, two images, an image in an earlier turn,
text only), streamed, from http, usage with the image tokens, n / stop / logprobs / json_schema
with an image, the stateful pipeline; the metrics and the trace of an image request. Hostile
images and URLs: tests/e2e/test_vlm_hostile.py."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import openai
import pytest

from tests.helpers.http import CHAT, get, post
from tests.helpers.images import ImageServer, png, png_url
from tests.helpers.metrics import scrape, value
from tests.helpers.server import Server
from tests.helpers.vlm_server import start_vlm_server, vlm_image_server
from tests.models.vlm_data import COLOR_PROMPT, TWO_COLORS_PROMPT, VLM_CASES, VlmCase, color_image, shape_image
from tests.models.vlm_train import render_vlm_prompt

CASES = {case.name: case for case in VLM_CASES}
RED = CASES["color_red_text_first"]
TWO = CASES["two_red_blue_text_first"]
GREEN_SQUARE = shape_image("square", "green", size=(56, 60))


@pytest.fixture(scope="module")
def images() -> Iterator[ImageServer]:
    with vlm_image_server() as server:
        yield server


@pytest.fixture(scope="module")
def server(tiny_model_dir: Path, tiny_vlm_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    srv = start_vlm_server(tmp_path_factory.mktemp("vlm-chat"), tiny_model_dir, tiny_vlm_dir)
    yield srv
    assert srv.stop() == 0, "\n".join(srv.output)


@pytest.fixture(scope="module")
def client(server: Server) -> Iterator[openai.OpenAI]:
    with openai.OpenAI(base_url=server.base_url + "/v3", api_key="unused", max_retries=0) as c:
        yield c


def parts(*content: dict[str, Any]) -> list[Any]:
    """One user message of these content parts."""
    return [{"role": "user", "content": list(content)}]


def image(url: str, **more: str) -> dict[str, Any]:
    return {"type": "image_url", "image_url": {"url": url, **more}}


def ask(client: openai.OpenAI, case: VlmCase, model: str = "vlm", **extra: Any) -> Any:
    return client.chat.completions.create(model=model, messages=case.openai_messages(png_url), **extra)  # type: ignore[arg-type]


@pytest.mark.parametrize("name", list(CASES))
def test_every_trained_answer_from_base64_images(client: openai.OpenAI, name: str) -> None:
    """Both part orders, two images in one message, an image in an earlier turn, text only."""
    case = CASES[name]
    reply = ask(client, case)
    assert reply.choices[0].message.content == case.answer
    assert reply.choices[0].finish_reason == "stop"


@pytest.mark.parametrize("case", [RED, TWO, CASES["followup_circle_red_image_first"]], ids=lambda c: c.name)
def test_streamed_answers_and_usage_equal_the_unary_ones(client: openai.OpenAI, case: VlmCase) -> None:
    unary = ask(client, case)
    chunks = list(ask(client, case, stream=True, stream_options={"include_usage": True}))
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == case.answer
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == "stop"
    assert chunks[-1].usage is not None and chunks[-1].usage.prompt_tokens == unary.usage.prompt_tokens
    assert chunks[-1].usage.completion_tokens == unary.usage.completion_tokens


def test_an_http_image_from_an_allowed_host(client: openai.OpenAI, images: ImageServer) -> None:
    before = images.hits.get("blue.png", 0)
    messages = parts({"type": "text", "text": COLOR_PROMPT}, image(images.url("blue.png"), detail="low"))
    reply = client.chat.completions.create(model="vlm", messages=messages)
    assert reply.choices[0].message.content == "blue."
    assert images.hits["blue.png"] == before + 1
    # an image in an earlier turn, fetched over http too
    history = CASES["followup_square_blue_text_first"].openai_messages(lambda _: images.url("square-blue.png"))
    assert client.chat.completions.create(model="vlm", messages=history).choices[0].message.content == "blue."  # type: ignore[arg-type]


def tokenized(server: Server, case: VlmCase) -> int:
    """The prompt's text tokens without its images (/v3/tokenize leaves image parts out)."""
    status, _, body = post(server, "/v3/tokenize", {"model": "vlm", "messages": case.openai_messages(png_url)})
    assert status == 200, body
    return int(json.loads(body)["count"])


def test_usage_counts_the_image_tokens(server: Server, client: openai.OpenAI, tiny_vlm_dir: Path) -> None:
    """genai replaces each image tag by one token per patch and a newline (tests/models/vlm.py)."""
    per_image = json.loads((tiny_vlm_dir / "config.json").read_text())["image_seq_length"] + 1
    for case in (RED, TWO, CASES["text"]):
        reply = ask(client, case)
        assert reply.usage.prompt_tokens == tokenized(server, case) + len(case.images) * per_image, case.name
        assert reply.usage.total_tokens == reply.usage.prompt_tokens + reply.usage.completion_tokens


def test_sampled_choices_with_an_image(client: openai.OpenAI) -> None:
    reply = ask(client, RED, n=3, temperature=1.0, seed=7, max_tokens=8)
    assert [c.index for c in reply.choices] == [0, 1, 2]
    assert all(c.message.content and c.finish_reason in ("stop", "length") for c in reply.choices)
    assert reply.usage.prompt_tokens == ask(client, RED).usage.prompt_tokens


def test_a_stop_string_with_an_image_keeps_the_image_tokens_in_usage(client: openai.OpenAI) -> None:
    """A request the server stops (stop string) gets no count from genai: LLaVA's is known ahead."""
    reply = ask(client, TWO, stop=[" and"])
    assert reply.choices[0].message.content == "red" and reply.choices[0].finish_reason == "stop"
    assert reply.usage.prompt_tokens == ask(client, TWO).usage.prompt_tokens


def test_logprobs_with_an_image(client: openai.OpenAI) -> None:
    reply = ask(client, RED, logprobs=True)
    tokens = reply.choices[0].logprobs.content
    assert "".join(t.token for t in tokens).startswith(RED.answer)
    assert all(t.logprob <= 0 for t in tokens)


def test_json_schema_output_with_an_image(client: openai.OpenAI) -> None:
    schema = {
        "type": "object",
        "properties": {"color": {"type": "string", "enum": ["red", "green", "blue"]}},
        "required": ["color"],
        "additionalProperties": False,
    }
    reply = ask(client, RED, max_tokens=40, response_format={"type": "json_schema", "json_schema": {"name": "c", "schema": schema}})
    assert json.loads(reply.choices[0].message.content)["color"] in ("red", "green", "blue")


@pytest.mark.parametrize("name", ["shape_circle_green_text_first", "two_green_red_image_first", "followup_square_blue_image_first"])
def test_the_stateful_vlm_pipeline_answers(client: openai.OpenAI, name: str) -> None:
    case = CASES[name]
    assert ask(client, case, model="vlm-stateful").choices[0].message.content == case.answer
    chunks = list(ask(client, case, model="vlm-stateful", stream=True))
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == case.answer


def test_a_text_completion_on_the_vlm(client: openai.OpenAI) -> None:
    """/v3/completions sends its prompt's text to the vision engine (no template, no image)."""
    case = CASES["text"]
    reply = client.completions.create(model="vlm", prompt=render_vlm_prompt(case.messages))
    assert reply.choices[0].text == case.answer


def test_the_metrics_show_the_image_preprocessing(server: Server, client: openai.OpenAI, images: ImageServer) -> None:
    def counts() -> tuple[float, float, float]:
        families = scrape(server)
        return (
            value(families, "ovserve_image_preprocess_seconds_count", model="vlm"),
            value(families, "ovserve_images_per_request_count", model="vlm"),
            value(families, "ovserve_images_per_request_sum", model="vlm"),
        )

    before = counts()
    messages = parts({"type": "text", "text": TWO_COLORS_PROMPT}, image(images.url("red.png")), image(png_url(color_image("blue"))))
    reply = client.chat.completions.create(model="vlm", messages=messages)
    assert reply.choices[0].message.content == "red and blue."
    after = counts()
    assert (after[0] - before[0], after[1] - before[1], after[2] - before[2]) == (2, 1, 2)
    families = scrape(server)
    assert value(families, "ovserve_image_preprocess_seconds_bucket", model="vlm", le="+Inf") == after[0]
    assert value(families, "ovserve_image_preprocess_seconds_sum", model="vlm") > 0


def test_each_image_load_is_a_span_in_the_request_trace(server: Server, images: ImageServer) -> None:
    url = images.url("red.png")  # image_url as the URL alone (a string), as some clients send it
    messages = parts({"type": "text", "text": TWO_COLORS_PROMPT}, {"type": "image_url", "image_url": url}, image(png_url(GREEN_SQUARE)))
    status, headers, reply = post(server, CHAT, {"model": "vlm", "messages": messages}, {"X-Ovserve-Trace": "1"})
    assert status == 200, reply
    status, raw = get(server, f"/debug/traces/{headers['X-Ovserve-Trace-Id']}")
    assert status == 200
    spans = [e for e in json.loads(raw)["traceEvents"] if e.get("cat") == "span" and e["name"] == "image"]
    assert sorted(e["args"]["source"] for e in spans) == ["data", "http"]
    by_source = {e["args"]["source"]: e["args"] for e in spans}
    assert by_source["http"]["bytes"] == len(png(color_image("red")))
    assert (by_source["data"]["width"], by_source["data"]["height"]) == GREEN_SQUARE.shape[1::-1]
    assert url not in raw.decode()  # names, times and sizes only
