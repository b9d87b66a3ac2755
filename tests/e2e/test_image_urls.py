"""`response_format: "url"` image answers against a real server on the toy Stable Diffusion
(tests/models/diffusion.py): the openai SDK gets absolute URLs, each a GET (keyed like every API
route) of the very PNG the b64_json answer gives for the same seed; gone ids are OpenAI-shaped
404s; with the store off (--image_url_store_mb 0) url is a 400 naming response_format."""

from __future__ import annotations

import base64
import json
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import openai
import pytest

from tests.helpers.http import assert_openai_error, post
from tests.helpers.image_gen import decoded, png
from tests.helpers.server import Server, start_server

PROMPT = "a photo of a red cat"
KEY = "image-url-key"
AUTH = {"Authorization": f"Bearer {KEY}"}


@pytest.fixture(scope="module")
def server(tiny_diffusion_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    key_file = tmp_path_factory.mktemp("image-urls") / "key.txt"
    key_file.write_text(KEY + "\n")
    srv = start_server(
        "--model_path", str(tiny_diffusion_dir), "--model_name", "sd", "--task", "image_generation",
        "--api_key_file", str(key_file), "--image_url_ttl_s", "600",
    )  # fmt: skip
    yield srv
    assert srv.stop() == 0, "\n".join(srv.output)


@pytest.fixture(scope="module")
def client(server: Server) -> Iterator[openai.OpenAI]:
    with openai.OpenAI(base_url=server.base_url + "/v3", api_key=KEY, max_retries=0) as sdk:
        yield sdk


def fetch(url: str, headers: dict[str, str] | None = None) -> tuple[int, dict[str, str], bytes]:
    request = urllib.request.Request(url, headers=AUTH if headers is None else headers)
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            return response.status, dict(response.headers), response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, dict(exc.headers), exc.read()


def test_generate_answers_urls_to_the_b64_json_pngs(server: Server, client: openai.OpenAI) -> None:
    seed = {"rng_seed": 5}
    urls = client.images.generate(model="sd", prompt=PROMPT, size="64x32", n=2, response_format="url", extra_body=seed)
    b64 = client.images.generate(model="sd", prompt=PROMPT, size="64x32", n=2, response_format="b64_json", extra_body=seed)
    assert urls.data is not None and b64.data is not None and len(urls.data) == 2
    assert all(d.b64_json is None for d in urls.data)
    for item, expected in zip(urls.data, b64.data, strict=True):
        assert item.url is not None and item.url.startswith(f"{server.base_url}/v3/images/files/") and item.url.endswith(".png")
        status, headers, body = fetch(item.url)
        assert status == 200 and headers["Content-Type"] == "image/png"
        assert headers["Cache-Control"].startswith("private, max-age=")
        assert 0 < int(headers["Cache-Control"].rsplit("=", 1)[1]) <= 600
        assert (body, (64, 32)) == decoded(expected.b64_json)
    first = urls.data[0].url
    assert first is not None and first != urls.data[1].url
    assert fetch(first, headers={})[0] == 401  # behind the API key


def test_edits_answer_urls_too_and_v1_links_under_v1(server: Server) -> None:
    with openai.OpenAI(base_url=server.base_url + "/v1", api_key=KEY, max_retries=0) as v1:
        result = v1.images.edit(
            model="sd", image=("in.png", png(48, 32), "image/png"), prompt=PROMPT, response_format="url", extra_body={"strength": 0.5}
        )
    assert result.data is not None and result.data[0].url is not None
    assert result.data[0].url.startswith(f"{server.base_url}/v1/images/files/")
    status, _, body = fetch(result.data[0].url)
    assert status == 200 and decoded(base64.b64encode(body).decode())[1] == (48, 32)


def test_unknown_ids_are_openai_404s(server: Server) -> None:
    for path in ("/v3/images/files/no-such-image.png", "/v1/images/files/AAAA.png"):
        status, _, body = fetch(server.base_url + path)
        error = assert_openai_error(status, body, 404, "image_id")
        assert "--image_url_ttl_s" in error["message"]


def test_with_the_store_off_url_is_refused_naming_the_flag(tiny_diffusion_dir: Path) -> None:
    srv = start_server(
        "--model_path", str(tiny_diffusion_dir), "--model_name", "sd", "--task", "image_generation", "--image_url_store_mb", "0"
    )
    try:
        status, _, body = post(srv, "/v3/images/generations", {"model": "sd", "prompt": PROMPT, "size": "32x32", "response_format": "url"})
        error = assert_openai_error(status, body, 400, "response_format")
        assert "--image_url_store_mb" in error["message"]
        status, _, body = post(srv, "/v3/images/generations", {"model": "sd", "prompt": PROMPT, "size": "32x32"})
        assert status == 200 and "b64_json" in json.loads(body)["data"][0]
        assert fetch(srv.base_url + "/v3/images/files/x.png")[0] == 404
    finally:
        assert srv.stop() == 0, "\n".join(srv.output)
