"""Hostile image requests against a real server (the toy Stable Diffusion with small limits, and
the tiny text model): each is a 400 (413, 415, 404) in OpenAI's error shape naming the field,
sent over raw HTTP while a chat stream on the tiny model is in flight (its engine worker paused
meanwhile, so the stream is surely open) and while a real image generation runs; the stream then
finishes with its exact answer and the image servable still answers."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import openai
import pytest

from tests.helpers.bystander import STORY, chat_stream_paused
from tests.helpers.http import CHAT, assert_openai_error, post, user
from tests.helpers.image_gen import decoded, image_graph, openai_mask, png
from tests.helpers.servables import llm_graph, write_config
from tests.helpers.server import Server, start_server
from tests.models import TINY_PROMPTS

GENERATIONS, EDITS = "/v3/images/generations", "/v3/images/edits"
BODY_LIMIT = 256 * 1024


@pytest.fixture(scope="module")
def server(tiny_model_dir: Path, tiny_diffusion_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    config = write_config(
        tmp_path_factory.mktemp("images-hostile"), {"tiny": llm_graph(tiny_model_dir), "sd": image_graph(tiny_diffusion_dir)}
    )
    # the URL store off: url answers are refused (tests/e2e/test_image_urls.py serves them)
    srv = start_server("--config_path", str(config), "--max_request_size", str(BODY_LIMIT), "--image_url_store_mb", "0")
    yield srv
    assert srv.process.poll() is None, "the server exited during the module's tests:\n" + "\n".join(srv.output)
    assert srv.stop() == 0, "\n".join(srv.output)


def form(fields: dict[str, str], files: dict[str, tuple[str, bytes, str]]) -> tuple[bytes, dict[str, str]]:
    """A multipart/form-data body and its Content-Type header."""
    boundary = uuid.uuid4().hex
    parts = [f'--{boundary}\r\nContent-Disposition: form-data; name="{k}"\r\n\r\n{v}\r\n'.encode() for k, v in fields.items()]
    for name, (filename, data, kind) in files.items():
        head = f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"; filename="{filename}"\r\nContent-Type: {kind}\r\n\r\n'
        parts.append(head.encode() + data + b"\r\n")
    return b"".join(parts) + f"--{boundary}--\r\n".encode(), {"Content-Type": f"multipart/form-data; boundary={boundary}"}


def gen(**fields: Any) -> tuple[str, bytes, dict[str, str]]:
    return GENERATIONS, json.dumps({"model": "sd", "prompt": "a red cat", **fields}).encode(), {}


def edit(files: dict[str, tuple[str, bytes, str]], **fields: str) -> tuple[str, bytes, dict[str, str]]:
    body, headers = form({"model": "sd", "prompt": "a red cat", **fields}, files)
    return EDITS, body, headers


IMAGE = ("in.png", png(), "image/png")
# (what, request, status, param, words in the message)
HOSTILE: list[tuple[str, tuple[str, bytes, dict[str, str]], int, str | None, str]] = [
    ("a size off the VAE's grid", gen(size="63x64"), 400, "size", "multiples of 2"),
    ("a size past max_resolution", gen(size="256x64"), 400, "size", "max_resolution 128x128"),
    ("a size that is no size", gen(size="large"), 400, "size", "WIDTHxHEIGHT"),
    ("too many images", gen(n=4), 400, "n", "at most 3"),
    ("no image at all", gen(n=0), 400, "n", "greater than or equal to 1"),
    ("too many steps", gen(num_inference_steps=9), 400, "num_inference_steps", "at most 8"),
    ("zero steps (genai would crash the process)", gen(num_inference_steps=0), 400, "num_inference_steps", "greater than or equal"),
    ("a url answer, the URL store off", gen(response_format="url"), 400, "response_format", "--image_url_store_mb"),
    ("no prompt", (GENERATIONS, json.dumps({"model": "sd"}).encode(), {}), 400, "prompt", "missing required field"),
    ("a second prompt for a one-encoder model", gen(prompt_2="x"), 400, "prompt_2", "1 text encoder"),
    ("strength without an image", gen(strength=0.5), 400, "strength", "images/edits"),
    ("a style the engine cannot", gen(style="vivid"), 400, "style", "not supported"),
    ("an unknown model", (GENERATIONS, json.dumps({"model": "nope", "prompt": "x"}).encode(), {}), 404, "model", "not found"),
    ("a chat model", (GENERATIONS, json.dumps({"model": "tiny", "prompt": "x"}).encode(), {}), 400, "model", ""),
    ("a file that is no image", edit({"image": ("in.png", b"%PDF-1.4 not an image", "image/png")}), 400, "image", "not a supported image"),
    ("an empty file", edit({"image": ("in.png", b"", "image/png")}), 400, "image", "empty"),
    ("no image file", edit({}), 400, "image", "missing required file"),
    ("the image as a text field", (lambda b: (EDITS, *b))(form({"model": "sd", "prompt": "x", "image": "abc"}, {})), 400, "image", ""),
    ("a mask of another size", edit({"image": IMAGE, "mask": ("m.png", openai_mask(32, 32), "image/png")}), 400, "mask", "must match"),
    ("strength above 1", edit({"image": IMAGE}, strength="1.5"), 400, "strength", "less than or equal to 1"),
    ("n as words", edit({"image": IMAGE}, n="two"), 400, "n", "integer"),
    ("a file past the body limit", edit({"image": ("big.png", b"\0" * (BODY_LIMIT + 1), "image/png")}), 413, None, "limit"),
    ("an edit sent as JSON", (EDITS, json.dumps({"model": "sd", "prompt": "x"}).encode(), {}), 415, None, "multipart/form-data"),
]


def send(server: Server, request: tuple[str, bytes, dict[str, str]]) -> tuple[int, bytes]:
    path, body, headers = request
    status, _, reply = post(server, path, body, headers)
    return status, reply


def test_hostile_image_requests_are_refused_while_a_chat_stream_and_a_generation_run(server: Server) -> None:
    with chat_stream_paused(server), openai.OpenAI(base_url=server.base_url + "/v3", api_key="x", max_retries=0) as sdk:
        import concurrent.futures

        with concurrent.futures.ThreadPoolExecutor(1) as pool:
            generation = pool.submit(
                sdk.images.generate, model="sd", prompt="a red cat", size="64x64", extra_body={"num_inference_steps": 8}
            )
            answers = [(what, *send(server, request)) for what, request, *_ in HOSTILE]
            result = generation.result(timeout=120)
    assert result.data is not None and decoded(result.data[0].b64_json)[1] == (64, 64)
    for (what, status, reply), (_, _, expected, param, words) in zip(answers, HOSTILE, strict=True):
        error = assert_openai_error(status, reply, expected, param)
        assert words in error["message"], (what, error)


def test_the_image_servable_still_answers(server: Server) -> None:
    status, reply = send(server, gen(size="32x32", rng_seed=1))
    assert status == 200, reply
    assert decoded(json.loads(reply)["data"][0]["b64_json"])[1] == (32, 32)
    status, _, reply = post(server, CHAT, {"model": "tiny", "messages": user(STORY)})
    assert status == 200 and json.loads(reply)["choices"][0]["message"]["content"] == TINY_PROMPTS[STORY]
