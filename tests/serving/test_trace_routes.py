"""Which requests are traced (--trace off / all / header), the debug routes, the API key, the
ring of kept traces and --trace_dir: in process, on a small graph of test calculators."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from serving.cli import build_parser, settings_from_args
from serving.settings import Settings
from serving.trace_routes import TRACE_ID_HEADER, TRACES
from tests.helpers.answer_graph import GATES

SECRET = "my card is 4111-1111-1111-1111"


Client = Callable[..., Any]


async def ask(client: TestClient[Any, Any], headers: dict[str, str] | None = None, **body: Any) -> tuple[int, str | None, bytes]:
    response = await client.post("/v3/completions", json={"model": "m", "prompt": SECRET, **body}, headers=headers or {})
    return response.status, response.headers.get(TRACE_ID_HEADER), await response.read()


async def get_json(client: TestClient[Any, Any], path: str, status: int = 200, headers: dict[str, str] | None = None) -> Any:
    response = await client.get(path, headers=headers or {})
    assert response.status == status, await response.text()
    return await response.json()


async def test_off_by_default_the_header_does_nothing(make_client: Callable[[Settings], Any]) -> None:
    client = await make_client(Settings())
    assert TRACES not in client.app
    status, trace_id, _ = await ask(client, {"X-Ovserve-Trace": "1"})
    assert status == 200 and trace_id is None
    error = (await get_json(client, "/debug/traces", 404))["error"]
    assert error["code"] == "tracing_off" and "--trace" in error["message"]
    await get_json(client, "/debug/traces/abc", 404)


async def test_all_traces_every_request(make_client: Callable[[Settings], Any]) -> None:
    client = await make_client(Settings(trace="all"))
    status, first, _ = await ask(client)
    assert status == 200 and first
    status, second, body = await ask(client, stream=True, parts=[{"n": 1}, {"n": 2}])
    assert status == 200 and second and body.endswith(b"data: [DONE]\n\n")  # SSE: the header went out at prepare
    listed = (await get_json(client, "/debug/traces"))["data"]
    assert [t["id"] for t in listed] == [second, first]  # newest first
    assert listed[0]["servable"] == "m" and listed[0]["endpoint"] == "completions" and listed[0]["complete"]
    summary = await get_json(client, f"/debug/traces/{second}/summary")
    (answer,) = summary["nodes"]
    assert answer["packets_out"] == {"HTTP_RESPONSE_PAYLOAD": 3} and answer["process_calls"] == 1
    chrome = await get_json(client, f"/debug/traces/{second}")
    assert chrome["otherData"]["trace_id"] == second and any(e["name"] == "process" for e in chrome["traceEvents"])
    assert SECRET not in json.dumps([listed, summary, chrome])
    # requests that run no graph are not traced
    response = await client.get("/v3/models")
    assert TRACE_ID_HEADER not in response.headers
    error = (await get_json(client, "/debug/traces/nope", 404))["error"]
    assert (error["code"], error["param"], error["type"]) == ("trace_not_found", "trace_id", "not_found_error")


@pytest.mark.parametrize(("value", "traced"), [("1", True), ("true", True), ("0", False), ("", False), (None, False)])
async def test_header_mode_traces_only_requests_that_ask(make_client: Callable[[Settings], Any], value: str | None, traced: bool) -> None:
    client = await make_client(Settings(trace="header"))
    status, trace_id, _ = await ask(client, {"X-Ovserve-Trace": value} if value is not None else None)
    assert status == 200 and (trace_id is not None) == traced
    assert len((await get_json(client, "/debug/traces"))["data"]) == int(traced)


async def test_a_run_in_flight_is_listed_as_incomplete(make_client: Callable[[Settings], Any]) -> None:
    client = await make_client(Settings(trace="all"))
    GATES["in_flight"] = gate = asyncio.Event()
    asking = asyncio.get_running_loop().create_task(ask(client, wait="in_flight"))
    async with asyncio.timeout(10):
        while not (listed := (await get_json(client, "/debug/traces"))["data"]):
            await asyncio.sleep(0)
    assert listed[0]["complete"] is False and listed[0]["duration_ms"] is None
    partial = await get_json(client, f"/debug/traces/{listed[0]['id']}")
    assert partial["otherData"]["complete"] is False
    gate.set()
    status, trace_id, _ = await asking
    assert status == 200 and trace_id == listed[0]["id"]
    assert (await get_json(client, "/debug/traces"))["data"][0]["complete"] is True


async def test_a_failing_run_is_kept_with_its_error_type_only(make_client: Callable[[Settings], Any]) -> None:
    client = await make_client(Settings(trace="all"))
    status, trace_id, _ = await ask(client, fail=True)
    assert status == 500 and trace_id
    summary = await get_json(client, f"/debug/traces/{trace_id}/summary")
    assert summary["error"] == "ValueError" and summary["failed_node"] == "answer"
    assert SECRET not in json.dumps(summary)


async def test_only_the_last_traces_are_kept(make_client: Callable[[Settings], Any]) -> None:
    client = await make_client(Settings(trace="all", trace_keep=2))
    ids = [(await ask(client))[1] for _ in range(3)]
    assert [t["id"] for t in (await get_json(client, "/debug/traces"))["data"]] == ids[:0:-1]
    error = (await get_json(client, f"/debug/traces/{ids[0]}", 404))["error"]
    assert "last 2" in error["message"]


async def test_debug_routes_need_the_api_key(make_client: Callable[[Settings], Any]) -> None:
    client = await make_client(Settings(trace="header", api_key="k"))
    key = {"Authorization": "Bearer k"}
    status, trace_id, _ = await ask(client, {**key, "X-Ovserve-Trace": "1"})
    assert status == 200 and trace_id
    for path in ("/debug/traces", f"/debug/traces/{trace_id}", f"/debug/traces/{trace_id}/summary"):
        assert (await get_json(client, path, 401))["error"]["code"] == "invalid_api_key"
        await get_json(client, path, 200, headers=key)
    # without the key the request is refused before anything is traced
    status, trace_id, _ = await ask(client, {"X-Ovserve-Trace": "1"})
    assert status == 401 and trace_id is None


async def test_trace_dir_gets_a_file_per_trace(make_client: Callable[[Settings], Any], tmp_path: Path) -> None:
    client = await make_client(Settings(trace="all", trace_dir=tmp_path))
    _, trace_id, _ = await ask(client, stream=True, parts=[{"n": 1}])
    await client.app[TRACES].flush()
    written = json.loads((tmp_path / f"{trace_id}.json").read_text(encoding="utf-8"))
    assert written == await get_json(client, f"/debug/traces/{trace_id}")
    assert [p.name for p in tmp_path.iterdir()] == [f"{trace_id}.json"]


@pytest.mark.parametrize(
    ("flags", "mode"),
    [
        ([], "off"),
        (["--trace"], "all"),
        (["--trace", "header"], "header"),
        (["--trace_dir", "/tmp/x"], "all"),
        (["--trace", "header", "--trace_dir", "/tmp/x"], "header"),
    ],
)
def test_flags(flags: list[str], mode: str) -> None:
    settings = settings_from_args(build_parser().parse_args(["--model_path", "m", *flags, "--trace_keep", "9"]))
    assert settings.trace == mode and settings.trace_keep == 9
    assert settings.trace_dir == (Path("/tmp/x") if "--trace_dir" in flags else None)


def test_bad_trace_flags_are_refused(capsys: pytest.CaptureFixture[str]) -> None:
    for flags in (["--trace", "sometimes"], ["--trace_keep", "0"]):
        with pytest.raises(SystemExit) as exit_info:
            build_parser().parse_args(["--model_path", "m", *flags])
        assert exit_info.value.code == 2
    assert "invalid choice: 'sometimes'" in capsys.readouterr().err
