"""The "Your own calculators" guide (docs/calculators.md), run as written: its files, its commands,
its answer.

The files come out of docs/calculators.md (the fenced block after each `<!-- guide-file: PATH -->`), and
the shell commands after `<!-- guide-commands -->` run verbatim in a scratch folder whose
`.venv` is this project's. Then the served calculator must change every answer exactly as the
guide says, unary and streamed, with usage untouched.
"""

from __future__ import annotations

import re
import shlex
import subprocess
from collections.abc import Iterator
from pathlib import Path

import httpx
import openai
import pytest

from tests.helpers.guide import DISCLAIMER, FILES, GUIDE
from tests.helpers.server import ROOT, Server, start_server
from tests.models import TINY_PROMPTS

COMMANDS = re.search(r"<!-- guide-commands -->\n```bash\n(.*?)```", GUIDE, re.DOTALL)
UNIT_TEST = re.search(r"<!-- guide-test -->\n```bash\n(.*?)```", GUIDE, re.DOTALL)
QUESTION = "What is the capital of France?"


def test_the_guide_has_its_three_files_and_commands() -> None:
    assert set(FILES) == {
        "my_server/my_calcs/disclaimer.py",
        "my_server/config.json",
        "my_server/tiny/graph.pbtxt",
        "my_server/test_disclaimer.py",
    }
    assert COMMANDS is not None and UNIT_TEST is not None


@pytest.fixture(scope="module")
def guide_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("guide")
    (root / ".venv").symlink_to(ROOT / ".venv")
    for path, text in FILES.items():
        (root / path).parent.mkdir(parents=True, exist_ok=True)
        (root / path).write_text(text)
    (root / "my_server/my_calcs/__init__.py").write_text("")
    return root


def test_the_guides_unit_test_passes(guide_dir: Path) -> None:
    assert UNIT_TEST is not None
    done = subprocess.run(UNIT_TEST.group(1).strip(), shell=True, cwd=guide_dir, capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "1 passed" in done.stdout


@pytest.fixture(scope="module")
def server(guide_dir: Path, tiny_model_dir: Path) -> Iterator[Server]:
    assert COMMANDS is not None
    setup, check, serve = COMMANDS.group(1).strip().splitlines()
    subprocess.run(setup, shell=True, cwd=guide_dir, check=True)
    checked = subprocess.run(check, shell=True, cwd=guide_dir, capture_output=True, text=True)
    assert checked.returncode == 0, checked.stderr
    assert "my_server/tiny/graph.pbtxt: valid (6 nodes" in checked.stdout
    args = shlex.split(serve)
    assert args[0] == ".venv/bin/ovserve" and args[-2:] == ["--rest_port", "8000"]  # our harness picks a free port
    args = [str(guide_dir / a) if a.endswith("config.json") else a for a in args[1:-2]]
    srv = start_server(*args)
    yield srv
    assert srv.stop() == 0, "\n".join(srv.output)


def test_unary_and_streamed_answers_end_with_the_disclaimer(server: Server) -> None:
    client = openai.OpenAI(base_url=f"{server.base_url}/v3", api_key="unused")
    messages = [{"role": "user", "content": QUESTION}]
    unary = client.chat.completions.create(model="tiny", messages=messages)  # type: ignore[arg-type]
    assert unary.choices[0].message.content == TINY_PROMPTS[QUESTION] + DISCLAIMER
    chunks = list(client.chat.completions.create(model="tiny", messages=messages, stream=True, stream_options={"include_usage": True}))  # type: ignore[arg-type]
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == TINY_PROMPTS[QUESTION] + DISCLAIMER
    assert sum(1 for c in chunks if c.choices) > 2  # really streamed, token by token
    assert chunks[-1].usage is not None and unary.usage is not None
    assert chunks[-1].usage.completion_tokens == unary.usage.completion_tokens  # the disclaimer is not a generated token


def test_completions_and_raw_sse_framing(server: Server) -> None:
    body = {"model": "tiny", "prompt": "The quick brown fox", "max_tokens": 20, "stream": True}
    with httpx.stream("POST", f"{server.base_url}/v3/completions", json=body, timeout=60) as response:
        assert response.status_code == 200
        raw = "".join(response.iter_text())
    events = raw.split("\n\n")
    assert events[-2:] == ["data: [DONE]", ""] and all(e.startswith("data: ") for e in events[:-1])
    assert raw.count(DISCLAIMER[:10]) == 1
