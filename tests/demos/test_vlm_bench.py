"""The VLM bench (demos/benchmark/vlm.py): its workload (one-image conversations, the images as
PNG data URLs that decode to the same pixels), and one short run of both sides on the tiny VLM
with every answer the trained one."""

from __future__ import annotations

import base64
import io
import json
from pathlib import Path

import numpy as np

from tests.helpers.bench_peers import load

vlm = load("vlm")


def test_the_workload_is_the_one_image_chats() -> None:
    cases = vlm.one_image_cases()
    assert len(cases) == 18  # 3 colours + 2 shapes x 3 colours, each with the text before and after the image
    assert all(len(case.images) == 1 and len(case.messages) == 1 for case in cases)


def test_request_bodies_send_the_same_pixels() -> None:
    from PIL import Image

    (case,) = vlm.one_image_cases()[:1]
    ((body, answer),) = vlm.request_bodies([case])
    request = json.loads(body)
    assert (request["model"], request["max_tokens"], request["temperature"], answer) == ("vlm", vlm.MAX_TOKENS, 0, case.answer)
    parts = request["messages"][0]["content"]
    (url,) = [part["image_url"]["url"] for part in parts if part["type"] == "image_url"]
    assert url.startswith("data:image/png;base64,")
    decoded = np.asarray(Image.open(io.BytesIO(base64.b64decode(url.split(",", 1)[1]))).convert("RGB"))
    assert np.array_equal(decoded, case.images[0])


def test_a_short_run_gives_the_trained_answers(tiny_vlm_dir: Path) -> None:
    lines: list[str] = []
    result = vlm.run(None, rounds=1, requests=12, log=lines.append)
    assert result["vlm_wrong_or_failed"] == 0, lines
    assert result["vlm_workload"]["model"] == tiny_vlm_dir.name
    assert result["vlm_rps_ratio_c4"] == result["vlm_rps_server_c4"] / result["vlm_rps_engine_c4"]
    (pair,) = result["vlm_rounds"]
    assert pair["server"]["cpu_ms_per_request_server"] > 0 and pair["engine"]["cpu_ms_per_request_engine"] > 0
