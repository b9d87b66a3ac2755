"""`ovserve bench` with `vllm bench serve`'s spellings and its result file (--save-result): the
keys and types of vLLM's result JSON, values from known timings, and a real run on the tiny
model whose file agrees with our own report."""

from __future__ import annotations

import json
import math
import statistics
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from serving.bench.cli import build_parser
from serving.bench.stats import RequestResult
from serving.bench.vllm_flags import resolve
from serving.bench.vllm_result import (
    DETAILED_KEYS,
    PEAK_KEYS,
    SETUP_KEYS,
    TOTAL_KEYS,
    ResultSetup,
    build_result,
    default_filename,
    metric_keys,
)
from tests.helpers.server import ROOT, Server, start_server


def _setup(**changes: Any) -> ResultSetup:
    base: dict[str, Any] = {
        "backend": "openai-chat",
        "label": None,
        "model_id": "org/tiny",
        "tokenizer_id": "tiny",
        "num_prompts": 3,
        "request_rate": math.inf,
        "burstiness": 1.0,
        "max_concurrency": 2,
        "date": "20260101-120000",
    }
    return ResultSetup(**{**base, **changes})


def check_schema(result: dict[str, Any], metrics: list[str], detailed: bool, metadata: tuple[str, ...] = ()) -> None:
    """Every key of vLLM's result file, in its order, with its JSON type."""
    setup = list(SETUP_KEYS)
    expected = setup[:7] + list(metadata) + setup[7:] + list(TOTAL_KEYS) + (list(DETAILED_KEYS) if detailed else [])
    expected += list(PEAK_KEYS) + metrics
    assert list(result) == expected
    for key, types in {**SETUP_KEYS, **TOTAL_KEYS, **DETAILED_KEYS, **PEAK_KEYS}.items():
        if key in result:
            assert isinstance(result[key], types) and not isinstance(result[key], bool), key
    for key in metrics:
        assert isinstance(result[key], float), key


def _known_results() -> list[RequestResult]:
    return [
        RequestResult(start=0.0, chunk_times=[0.1, 0.2, 0.4], end=0.5, prompt_tokens=10, output_tokens=3, text="abc"),
        RequestResult(start=0.0, chunk_times=[0.3, 1.3], end=1.5, prompt_tokens=10, output_tokens=2, text="de"),
        RequestResult(start=0.2, end=0.3, error="HTTP 500: boom"),
    ]


def test_result_from_known_timings() -> None:
    setup = _setup(percentile_metrics=("ttft", "tpot", "itl", "e2el"), metric_percentiles=(50.0, 99.9), detailed=True)
    result = build_result(setup, _known_results(), [10, 10, 10], duration_s=2.0)
    check_schema(result, metric_keys(setup.percentile_metrics, setup.metric_percentiles), detailed=True)
    assert "p99.9_ttft_ms" in result and "p50_e2el_ms" in result
    assert (result["completed"], result["failed"], result["total_input_tokens"], result["total_output_tokens"]) == (2, 1, 20, 5)
    assert result["request_rate"] == "inf" and result["request_goodput"] is None
    assert result["output_throughput"] == pytest.approx(2.5) and result["total_token_throughput"] == pytest.approx(12.5)
    ttfts = [100.0, 300.0]
    assert result["mean_ttft_ms"] == pytest.approx(statistics.mean(ttfts))
    assert result["median_ttft_ms"] == pytest.approx(statistics.median(ttfts))
    assert result["std_ttft_ms"] == pytest.approx(statistics.pstdev(ttfts))  # numpy's std: population
    assert result["p99.9_ttft_ms"] == pytest.approx(100 + 200 * 0.999)
    assert result["mean_tpot_ms"] == pytest.approx(statistics.mean([200.0, 1200.0]))  # (e2e - ttft) / (n - 1)
    assert result["median_itl_ms"] == pytest.approx(statistics.median([100.0, 200.0, 1000.0]))
    assert result["mean_e2el_ms"] == pytest.approx(1000.0)
    assert result["ttfts"] == pytest.approx([0.1, 0.3, 0.0]) and result["itls"][2] == []
    assert result["itls"][0] == pytest.approx([0.1, 0.2])
    assert result["output_lens"] == [3, 2, 0] and result["generated_texts"] == ["abc", "de", ""]
    assert result["errors"] == ["", "", "HTTP 500: boom"]
    # chunks at 0.1 0.2 0.3 0.4 in second 0, 1.3 in second 1; both requests active in second 0
    assert (result["max_output_tokens_per_s"], result["max_concurrent_requests"]) == (4.0, 2)
    assert json.loads(json.dumps(result)) == result


def test_goodput_metadata_and_file_name() -> None:
    setup = _setup(goodput_ms={"ttft": 200.0}, metadata={"version": "1.0"}, request_rate=4.0, label="ov")
    result = build_result(setup, _known_results(), [10, 10, 10], duration_s=2.0)
    check_schema(result, metric_keys(setup.percentile_metrics, setup.metric_percentiles), detailed=False, metadata=("version",))
    assert result["request_goodput"] == pytest.approx(0.5)  # one of the two within 200 ms
    assert default_filename(setup) == "ov-4.0qps-concurrency2-tiny-20260101-120000.json"
    assert default_filename(_setup(max_concurrency=None)) == "openai-chat-infqps-tiny-20260101-120000.json"


def test_no_request_succeeded_gives_zeros() -> None:
    result = build_result(_setup(), [RequestResult(error="refused")], [5], duration_s=1.0)
    assert result["mean_ttft_ms"] == 0.0 and result["p99_itl_ms"] == 0.0 and result["max_concurrent_requests"] == 0


def test_vllm_spellings_map_onto_ours() -> None:
    parser = build_parser()
    args = parser.parse_args(
        "--backend openai --host 127.0.0.2 --port 9000 --tokenizer tiny --dataset-name random --random-input-len 32 "
        "--random-output-len 16 --num-warmups 0 --disable-tqdm --temperature 0.5 --top-k 3 --ignore-eos --burstiness 0.5 "
        "--metadata a=1 b=x=y --goodput ttft:50 e2el:900 --metric-percentiles 50,90 --append-result".split()
    )
    resolve(args, parser)
    assert (args.base_url, args.endpoint, args.model_dir) == ("http://127.0.0.2:9000", "/v1/completions", "tiny")
    assert (args.input_len, args.output_len, args.warmup, args.no_progress) == (32, 16, 0, True)
    assert args.extra_body == {"temperature": 0.5, "top_k": 3, "ignore_eos": True}
    assert args.metadata == {"a": "1", "b": "x=y"} and args.goodput == {"ttft": 50.0, "e2el": 900.0}
    assert args.metric_percentiles == (50.0, 90.0) and args.save_result and args.burstiness == 0.5
    ours = parser.parse_args([])
    resolve(ours, parser)
    assert (ours.endpoint, ours.input_len, ours.warmup, ours.extra_body) == ("/v3/chat/completions", 128, None, None)


@pytest.mark.parametrize(
    "flags",
    [["--random-range-ratio", "0.5"], ["--goodput", "itl:5"], ["--percentile-metrics", "ttft,nope"], ["--compare", "--save-result"]],
)
def test_what_does_not_map_is_refused(flags: list[str]) -> None:
    parser = build_parser()
    with pytest.raises(SystemExit) as exit_info:
        resolve(parser.parse_args(flags), parser)
    assert exit_info.value.code == 2


# -- a real run -----------------------------------------------------------------------------
@pytest.fixture(scope="module")
def server(tiny_model_dir: Path) -> Iterator[Server]:
    srv = start_server("--model_path", str(tiny_model_dir), "--model_name", "tiny")
    yield srv
    assert srv.stop() == 0, "\n".join(srv.output)


def test_vllm_command_line_writes_vllm_result(server: Server, tiny_model_dir: Path, tmp_path: Path) -> None:
    command = [
        "--backend", "openai-chat", "--base-url", server.base_url, "--endpoint", "/v1/chat/completions",
        "--model", "tiny", "--tokenizer", str(tiny_model_dir), "--dataset-name", "random",
        "--random-input-len", "24", "--random-output-len", "8", "--num-prompts", "8", "--max-concurrency", "4",
        "--request-rate", "inf", "--ignore-eos", "--num-warmups", "2", "--disable-tqdm",
        "--percentile-metrics", "ttft,tpot,itl,e2el", "--metric-percentiles", "50,99",
        "--save-result", "--save-detailed", "--result-dir", str(tmp_path / "results"), "--result-filename", "run.json",
        "--metadata", "version=1", "tp=1", "--json", str(tmp_path / "ours.json"),
    ]  # fmt: skip
    done = subprocess.run([sys.executable, "-m", "serving.cli", "bench", *command], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    result = json.loads((tmp_path / "results" / "run.json").read_text())
    ours = json.loads((tmp_path / "ours.json").read_text())
    check_schema(result, metric_keys(["ttft", "tpot", "itl", "e2el"], [50.0, 99.0]), detailed=True, metadata=("version", "tp"))
    assert (result["backend"], result["model_id"], result["tokenizer_id"]) == ("openai-chat", "tiny", str(tiny_model_dir))
    assert (result["num_prompts"], result["max_concurrency"], result["request_rate"]) == (8, 4, "inf")
    assert (result["version"], result["tp"]) == ("1", "1")
    assert (result["completed"], result["failed"]) == (ours["completed"], ours["failed"]) == (8, 0)
    assert result["input_lens"] == [24] * 8 and result["output_lens"] == [8] * 8
    assert (result["total_input_tokens"], result["total_output_tokens"]) == (ours["total_input_tokens"], ours["total_output_tokens"])
    assert result["duration"] == ours["duration_s"]
    for key in ("request_throughput", "output_throughput", "total_token_throughput"):
        assert result[key] == pytest.approx(ours[key])
    for name in ("ttft", "tpot", "itl", "e2el"):
        assert result[f"mean_{name}_ms"] == pytest.approx(ours[f"{name}_ms"]["mean"])
        assert result[f"median_{name}_ms"] == pytest.approx(ours[f"{name}_ms"]["p50"])
        assert result[f"p99_{name}_ms"] == pytest.approx(ours[f"{name}_ms"]["p99"])
    assert [round(t * 1000, 3) for t in result["ttfts"]] == [r["ttft_ms"] for r in ours["requests"]]
    assert all(text for text in result["generated_texts"]) and result["errors"] == [""] * 8
    assert sum(len(gaps) + 1 for gaps in result["itls"]) == sum(r["chunks"] for r in ours["requests"])
    assert "vllm_result" not in ours
