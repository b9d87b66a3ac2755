"""Image generation and edits through the OpenAI SDK against a real server: the stock image graph
and OVMS's own graph.pbtxt (unchanged) on the toy Stable Diffusion of tests/models/diffusion.py
(random weights: noise-like pictures, so these tests check sizes, counts, PNG and determinism
under a seed, not what is drawn); `--task image_generation` on the bare folder."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import openai
import pytest

from tests.helpers.http import get, post
from tests.helpers.image_gen import decoded, image_graph, openai_mask, ovms_folder, png
from tests.helpers.servables import write_config
from tests.helpers.server import Server, start_server

PROMPT = "a photo of a red cat"


@pytest.fixture(scope="module")
def server(tiny_diffusion_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    root = tmp_path_factory.mktemp("images")
    config = write_config(root, {"sd": image_graph(tiny_diffusion_dir)})
    ovms_folder(root / "sd-ovms", tiny_diffusion_dir)
    entries = json.loads(config.read_text())
    entries["model_config_list"].append({"config": {"name": "sd-ovms", "base_path": "sd-ovms"}})
    config.write_text(json.dumps(entries))
    srv = start_server("--config_path", str(config), "--metrics_enable", "--trace", "header")
    yield srv
    assert srv.stop() == 0, "\n".join(srv.output)


def test_generate_honours_size_and_n(client: openai.OpenAI) -> None:
    result = client.images.generate(model="sd", prompt=PROMPT, size="64x32", n=2, extra_body={"rng_seed": 7})
    assert result.size == "64x32" and result.output_format == "png" and result.created > 0
    assert result.data is not None and len(result.data) == 2
    pictures = [decoded(d.b64_json) for d in result.data]
    assert [size for _, size in pictures] == [(64, 32), (64, 32)]
    assert pictures[0][0] != pictures[1][0]  # two images of one prompt differ


def test_the_same_seed_gives_the_same_png_bytes(client: openai.OpenAI) -> None:
    def one(seed: int) -> bytes:
        result = client.images.generate(model="sd", prompt=PROMPT, size="32x32", extra_body={"rng_seed": seed})
        assert result.data is not None
        return decoded(result.data[0].b64_json)[0]

    assert one(3) == one(3)
    assert one(3) != one(4)
    seed_alias = client.images.generate(model="sd", prompt=PROMPT, size="32x32", extra_body={"seed": 3})
    assert seed_alias.data is not None and decoded(seed_alias.data[0].b64_json)[0] == one(3)


def test_without_a_size_the_model_s_default(client: openai.OpenAI) -> None:
    result = client.images.generate(model="sd", prompt=PROMPT, response_format="b64_json")
    assert result.size == "64x64" and result.data is not None and decoded(result.data[0].b64_json)[1] == (64, 64)


def test_edit_keeps_the_image_size_and_is_deterministic(client: openai.OpenAI) -> None:
    source = ("in.png", png(48, 32), "image/png")
    first = client.images.edit(model="sd", image=source, prompt=PROMPT, extra_body={"strength": 0.6, "rng_seed": 1})
    again = client.images.edit(model="sd", image=source, prompt=PROMPT, extra_body={"strength": 0.6, "rng_seed": 1})
    assert first.size == "48x32" and first.data is not None and again.data is not None
    assert decoded(first.data[0].b64_json) == decoded(again.data[0].b64_json)
    resized = client.images.edit(model="sd", image=source, prompt=PROMPT, size="64x64", n=2)
    assert resized.data is not None and [decoded(d.b64_json)[1] for d in resized.data] == [(64, 64)] * 2


def test_edit_with_a_mask_inpaints(client: openai.OpenAI) -> None:
    result = client.images.edit(
        model="sd",
        image=("in.png", png(), "image/png"),
        mask=("mask.png", openai_mask(), "image/png"),
        prompt=PROMPT,
        extra_body={"rng_seed": 2},
    )
    assert result.size == "64x64" and result.data is not None and decoded(result.data[0].b64_json)[1] == (64, 64)


def test_ovms_graph_serves_unchanged_and_v1_is_an_alias(server: Server) -> None:
    with openai.OpenAI(base_url=server.base_url + "/v1", api_key="unused", max_retries=0) as v1:
        result = v1.images.generate(model="sd-ovms", prompt=PROMPT, size="32x32", extra_body={"rng_seed": 9})
    assert result.data is not None and decoded(result.data[0].b64_json)[1] == (32, 32)


def test_task_image_generation_on_the_bare_folder(tiny_diffusion_dir: Path) -> None:
    srv = start_server(
        "--model_path", str(tiny_diffusion_dir), "--model_name", "sd", "--task", "image_generation", "--max_resolution", "32x32"
    )
    try:
        with openai.OpenAI(base_url=srv.base_url + "/v3", api_key="unused", max_retries=0) as sdk:
            result = sdk.images.generate(model="sd", prompt=PROMPT, size="32x32", extra_body={"num_inference_steps": 1})
            assert result.data is not None and decoded(result.data[0].b64_json)[1] == (32, 32)
            with pytest.raises(openai.BadRequestError, match="max_resolution 32x32"):
                sdk.images.generate(model="sd", prompt=PROMPT, size="64x64")
    finally:
        assert srv.stop() == 0, "\n".join(srv.output)


def test_metrics_and_trace_show_the_engine_time_and_steps(server: Server) -> None:
    status, headers, reply = post(
        server,
        "/v3/images/generations",
        {"model": "sd", "prompt": PROMPT, "size": "32x32", "num_inference_steps": 3},
        {"X-Ovserve-Trace": "1"},
    )
    assert status == 200, reply
    status, metrics = get(server, "/metrics")
    text = metrics.decode()
    assert 'ovserve_image_generation_seconds_count{model="sd"}' in text
    steps = next(line for line in text.splitlines() if line.startswith('ovserve_image_generation_step_seconds_count{model="sd"}'))
    assert float(steps.split()[-1]) >= 3
    status, raw = get(server, f"/debug/traces/{headers['X-Ovserve-Trace-Id']}")
    assert status == 200
    (span,) = [e for e in json.loads(raw)["traceEvents"] if e.get("cat") == "span" and e["name"] == "generate"]
    assert span["args"]["steps"] == 3 and span["args"]["images"] == 1 and span["args"]["steps_per_second"] > 0
