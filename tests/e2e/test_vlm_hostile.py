"""Hostile images and URLs against a real server (tests/helpers/vlm_server.py): each is a 400 in
OpenAI's error shape naming the rule it broke and the request field, sent over raw HTTP while a
text stream on the tiny model is in flight (its engine worker paused meanwhile), which then
finishes with its exact answer; the VLM still answers afterwards."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.helpers.http import CHAT, RawStream, assert_openai_error, post, user
from tests.helpers.images import ImageServer, data_url, png, png_claiming, png_url
from tests.helpers.processes import paused
from tests.helpers.server import Server
from tests.helpers.stats import engine
from tests.helpers.vlm_server import SHORT_PROMPT_LIMIT, start_vlm_server, vlm_image_server
from tests.models import TINY_PROMPTS
from tests.models.vlm_data import COLOR_PROMPT, color_image

PARAM = "messages.0.content.1.image_url"
STORY = "Tell me a story."


@pytest.fixture(scope="module")
def images() -> Iterator[ImageServer]:
    with vlm_image_server() as server:
        yield server


@pytest.fixture(scope="module")
def server(tiny_model_dir: Path, tiny_vlm_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    srv = start_vlm_server(tmp_path_factory.mktemp("vlm-hostile"), tiny_model_dir, tiny_vlm_dir)
    yield srv
    assert srv.process.poll() is None, "the server exited during the module's tests:\n" + "\n".join(srv.output)
    assert srv.stop() == 0, "\n".join(srv.output)


def ask(image_url: Any, text: str = COLOR_PROMPT) -> dict[str, Any]:
    content = [{"type": "text", "text": text}, {"type": "image_url", "image_url": image_url}]
    return {"model": "vlm", "messages": [{"role": "user", "content": content}]}


RED_PNG = png(color_image("red"))

# (what, body, the rule's words in the message, param)
HOSTILE: list[tuple[str, dict[str, Any], str, str]] = [
    ("a domain not allowed", ask("http://images.example.com/red.png"), "not in --allowed_media_domains", PARAM),
    ("a cloud metadata address, even listed", ask("http://169.254.169.254/latest/meta-data/"), "cloud metadata address", PARAM),
    ("a file path without the flag", ask("/etc/hostname"), "--allowed_local_media_path is not set", PARAM),
    ("a file URL without the flag", ask({"url": "file:///etc/passwd"}), "--allowed_local_media_path is not set", PARAM),
    ("a scheme not served", ask("ftp://127.0.0.1/red.png"), "scheme 'ftp'", PARAM),
    ("undecodable bytes", ask(data_url(b"these bytes are no image at all")), "not a supported image", PARAM),
    ("a truncated png", ask(data_url(RED_PNG[: len(RED_PNG) // 2])), "truncated or corrupt", PARAM),
    ("a huge-pixel png header", ask(data_url(png_claiming(100_000, 100_000))), "--max_image_pixels", PARAM),
    ("an empty data URL", ask("data:image/png;base64,"), "image data is empty", PARAM),
    ("not an image media type", ask(data_url(RED_PNG, "text/html")), "media type 'text/html'", PARAM),
    ("an unknown detail", ask({"url": png_url(color_image("red")), "detail": "max"}), "'auto', 'low' or 'high'", PARAM + ".detail"),
    ("an image tag typed into the text", ask(png_url(color_image("red")), "What is <image>?"), "must not contain image tags", "messages"),
    (
        "an image in an assistant message",
        {"model": "vlm", "messages": [*user("hi"), {"role": "assistant", "content": ask("data:,")["messages"][0]["content"]}]},
        "go in user messages",
        "messages.1.content",
    ),
    ("an image to the text model", {**ask(png_url(color_image("red"))), "model": "tiny"}, "need a vision model", "messages.0.content"),
]


def hostile_while_streaming(server: Server, images: ImageServer) -> list[tuple[str, int, dict[str, Any]]]:
    """Every hostile request (and one of too many images, all on the image server) sent while a
    text stream is surely in flight; the stream must then finish exactly."""
    stream = RawStream(server, {"model": "tiny", "messages": user(STORY), "stream": True})
    stream.read_until(b'"content"')
    answers = []
    with paused(engine(server, "tiny")["pid"]):
        for what, body, _, _ in HOSTILE:
            status, _, reply = post(server, CHAT, body)
            answers.append((what, status, json.loads(reply)))
        many = {**ask(images.url("counted.png")), "model": "vlm"}
        many["messages"][0]["content"] += [{"type": "image_url", "image_url": images.url("counted.png")}] * 8
        status, _, reply = post(server, CHAT, many)
        answers.append(("too many images", status, json.loads(reply)))
    stream.read_to_end()
    text = "".join(e["choices"][0]["delta"].get("content") or "" for e in stream.events() if e.get("choices"))
    assert text == TINY_PROMPTS[STORY]
    return answers


def test_hostile_images_are_400s_naming_their_rule_while_a_stream_finishes(server: Server, images: ImageServer) -> None:
    answers = hostile_while_streaming(server, images)
    expected = [(what, rule, param) for what, _, rule, param in HOSTILE] + [("too many images", "--max_images_per_request", "messages")]
    for (what, status, reply), (_, rule, param) in zip(answers, expected, strict=True):
        error = assert_openai_error(status, json.dumps(reply).encode(), 400, param)
        assert error["type"] == "invalid_request_error" and rule in error["message"], (what, error)
    assert "counted.png" not in images.hits  # too many images: refused before any was fetched


def test_a_missing_http_image_names_the_host_s_answer(server: Server, images: ImageServer) -> None:
    status, _, reply = post(server, CHAT, ask(images.url("missing.png")))
    error = assert_openai_error(status, reply, 400, PARAM)
    assert error["message"] == "image_url host '127.0.0.1' answered HTTP 404"


def test_the_vlm_still_answers_after_the_hostile_ones(server: Server, images: ImageServer) -> None:
    for image_url, answer in ((png_url(color_image("green")), "green."), (images.url("red.png"), "red.")):
        status, _, reply = post(server, CHAT, ask(image_url))
        assert status == 200, reply
        assert json.loads(reply)["choices"][0]["message"]["content"] == answer


def test_the_prompt_limit_counts_the_image_tokens(server: Server) -> None:
    """A one-image question whose text fits under max_prompt_tokens but not with its image's tokens."""
    body = {**ask(png_url(color_image("red"))), "model": "vlm-short"}
    status, _, reply = post(server, CHAT, body)
    error = assert_openai_error(status, reply, 400, "messages")
    assert error["code"] == "context_length_exceeded"
    assert error["message"] == f"the prompt has 19 tokens; this server takes at most {SHORT_PROMPT_LIMIT} (max_prompt_tokens)"
    status, _, reply = post(server, CHAT, {"model": "vlm-short", "messages": user("Hello")})  # text only: fits
    assert status == 200 and json.loads(reply)["choices"][0]["message"]["content"] == "Hello! Send me an image."
