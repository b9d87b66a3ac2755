"""The README's promise: its requests give the answers it shows. The docs' runnable examples
(README.md and docs/*.md) run against one real server on config/config.json, started as `make
serve ARGS="--port 0 --trace header"` does (models linked by `python -m serving.demo link-config
config`; `--port 0` adds gRPC for docs/ovms.md's tritonclient example, `--trace header` serves
docs/operations.md's trace example; neither changes an answer), on a free port that replaces
`localhost:8000` (`localhost:9000` for gRPC) in the examples.

- curl commands run with the real `curl` binary (installed here and in CI's image); without one,
  tests/helpers/doc_examples.py sends the command's URL, headers and body with http.client.
  The JSON answer must equal the one shown but for `id` and `created`; a stream's deltas must
  join to the text shown.
- ```python blocks run statement by statement, each page's in one namespace; what a printing
  statement printed must equal the output its comment states (the rules:
  tests/helpers/doc_examples.py).
- An example after `<!-- example: not run (why) -->` is left out; test_every_example_is_run_or_says_why
  lists those, so none is skipped silently.
"""

from __future__ import annotations

import json
import re
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from serving.demo import CONFIG_MODELS, link_config
from tests.helpers.doc_examples import (
    FENCE,
    CurlExample,
    curl_examples,
    differences,
    normal,
    python_blocks,
    run_curl,
    run_python,
    streamed_text,
)
from tests.helpers.server import ROOT, Server, start_server

PAGES = {p.relative_to(ROOT).as_posix(): p.read_text(encoding="utf-8") for p in [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]}
CURLS = [(page, example) for page, text in PAGES.items() for example in curl_examples(text)]
PYTHON_PAGES = [page for page, text in PAGES.items() if python_blocks(text)]
TRACE_EXAMPLE = re.search(r"<!-- example: shell -->\n\n((?:    .*\n)+)", PAGES["docs/operations.md"])


def test_every_example_is_run_or_says_why() -> None:
    """The examples found are the ones this module runs: the README's two curl commands and its
    python blocks (every printing statement states its output), docs/ovms.md's tritonclient block,
    docs/operations.md's trace commands; a fenced python block elsewhere is the calculator guide's."""
    media = [*["docs/audio.md"] * 4, *["docs/images.md"] * 4, *["docs/speech.md"] * 2]
    assert [page for page, _ in CURLS] == ["README.md", "README.md", *media]
    assert PYTHON_PAGES == [
        "README.md", "docs/anthropic.md", "docs/audio.md", "docs/cohere.md", "docs/images.md", "docs/llamacpp.md", "docs/ollama.md",
        "docs/ovms.md", "docs/responses.md", "docs/speech.md",
    ]  # fmt: skip
    assert TRACE_EXAMPLE is not None
    not_run = [(page, m.group(0)) for page, text in PAGES.items() for m in re.finditer(r"<!-- example: not run.*?-->", text)]
    assert not_run == []
    unmarked_curls = [page for page, text in PAGES.items() for _ in re.finditer(r"^    curl ", FENCE.sub("", text), re.MULTILINE)]
    assert sorted(set(unmarked_curls)) == ["README.md", "docs/audio.md", "docs/images.md", "docs/operations.md", "docs/speech.md"]


@pytest.fixture(scope="module")
def server(smollm2_cache_dir: Path) -> Iterator[Server]:
    assert sorted(link_config(ROOT / "config")) == sorted(CONFIG_MODELS)
    # --cache_dir: SmolLM2's GGUF conversion shared with the other real-model tests
    srv = start_server(
        "--config_path", str(ROOT / "config/config.json"), "--metrics_enable", "--port", "0", "--trace", "header",
        "--cache_dir", str(smollm2_cache_dir),
    )  # fmt: skip
    yield srv
    assert srv.stop() == 0, "\n".join(srv.output)


@pytest.mark.parametrize(("page", "example"), CURLS, ids=[f"{page}:{example.line}" for page, example in CURLS])
def test_curl_answers_as_shown(server: Server, page: str, example: CurlExample) -> None:
    body = run_curl(example.command, server.base_url)
    if example.answer is not None:
        assert differences(example.answer, json.loads(body)) == [], body
    else:
        assert example.joined is not None, f"{page}:{example.line} shows no answer"
        assert streamed_text(body) == example.joined


@pytest.mark.parametrize("page", PYTHON_PAGES)
@pytest.mark.filterwarnings("ignore:deprecated:DeprecationWarning")  # docs/audio.md: openai 3.x deprecates audio.translations
def test_python_prints_what_its_comments_say(server: Server, page: str) -> None:
    assert server.grpc_address is not None
    printed = run_python(python_blocks(PAGES[page]), {"http://localhost:8000": server.base_url, "localhost:9000": server.grpc_address})
    wrong = [
        f"line {o.line}: {o.statement!r}\n  states {o.expected!r}\n  printed {p!r}"
        for o, p in printed
        if o.expected is None or normal(p) != o.expected
    ]
    assert printed and wrong == [], "\n".join(wrong)


def test_the_trace_example_fetches_a_trace(server: Server, tmp_path: Path) -> None:
    """docs/operations.md's commands, as a bash script: a traced stream, its trace, its summary, the list."""
    assert TRACE_EXAMPLE is not None
    script = re.sub(r"^    ", "", TRACE_EXAMPLE.group(1), flags=re.MULTILINE).replace(
        "localhost:8000", server.base_url.removeprefix("http://")
    )
    done = subprocess.run(["bash", "-euo", "pipefail", "-c", script], cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    trace_id = re.search(r"(?im)^x-ovserve-trace-id: (\S+)", (tmp_path / "headers.txt").read_text())
    assert trace_id is not None
    assert json.loads((tmp_path / "trace.json").read_text())["traceEvents"]
    assert trace_id.group(1) in done.stdout.splitlines()[-1]  # the list of kept traces names it
