"""Model-repository commands: names, task inference, preparing from an IR folder, config.json edits.

The optimum export itself runs in tests/e2e/test_pull_export.py (a subprocess, like a user).
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

import pytest

from graphs.pbtxt import load_graph
from serving.repository import commands, graph_file, layout, pull


def make_parser() -> argparse.ArgumentParser:
    """The flags serving/cli.py has, plus ours."""
    parser = argparse.ArgumentParser(prog="ovserve")
    parser.add_argument("--config_path", type=Path)
    parser.add_argument("--model_path", type=Path)
    parser.add_argument("--model_name")
    parser.add_argument("--target_device")
    parser.add_argument("--cache_size", type=int)
    commands.add_model_flags(parser)
    return parser


def run(*argv: str) -> tuple[int | None, argparse.Namespace, list[str]]:
    args = make_parser().parse_args(list(argv))
    lines: list[str] = []
    return commands.handle_model_commands(args, progress=lines.append), args, lines


def fake_servable(folder: Path) -> Path:
    folder.mkdir(parents=True)
    (folder / layout.GRAPH_FILE).write_text(graph_file.graph_text())
    return folder


@pytest.fixture
def ir_folder(tiny_model_dir: Path, tmp_path: Path) -> Path:
    """The tiny model's IR files without the hf/ folder (named like a user's folder)."""
    folder = tmp_path / "src" / "tiny-ov"
    folder.mkdir(parents=True)
    for item in tiny_model_dir.iterdir():
        if item.is_file():
            os.link(item, folder / item.name)
    return folder


def test_servable_name(tmp_path: Path) -> None:
    assert pull.servable_name("OpenVINO/Qwen3-8B-int4-ov") == "OpenVINO/Qwen3-8B-int4-ov"
    (tmp_path / "my-model").mkdir()
    assert pull.servable_name(str(tmp_path / "my-model")) == "my-model"
    assert pull.servable_name(str(tmp_path / "my-model") + "/") == "my-model"


def test_infer_task(tmp_path: Path) -> None:
    (tmp_path / "config.json").write_text(json.dumps({"architectures": ["Qwen2ForCausalLM"]}))
    assert pull.infer_task(tmp_path) == "text_generation"
    (tmp_path / "config.json").write_text(json.dumps({"architectures": ["BertForSequenceClassification"]}))
    assert pull.infer_task(tmp_path) == "rerank"
    (tmp_path / "config.json").write_text(json.dumps({"architectures": ["BertModel"]}))
    assert pull.infer_task(tmp_path) == "embeddings"
    (tmp_path / "config.json").write_text(json.dumps({"architectures": ["BertForMaskedLM"]}))
    with pytest.raises(layout.ModelRepositoryError, match="give --task"):
        pull.infer_task(tmp_path)
    (tmp_path / "modules.json").write_text("[]")  # a sentence-transformers folder
    assert pull.infer_task(tmp_path) == "embeddings"
    (tmp_path / "config.json").write_text(json.dumps({}))
    assert pull.infer_task(tmp_path) == "embeddings"
    (tmp_path / "modules.json").unlink()
    with pytest.raises(layout.ModelRepositoryError, match="none listed"):
        pull.infer_task(tmp_path)
    (tmp_path / "config.json").unlink()
    with pytest.raises(layout.ModelRepositoryError, match="no config.json"):
        pull.infer_task(tmp_path)


def test_graph_text_sets_options() -> None:
    from graphs.pbtxt import parse_graph

    graph = parse_graph(graph_file.graph_text({"device": "GPU", "cache_size": 4, "enable_prefix_caching": False}))
    (llm,) = [n for n in graph.nodes if n.calculator == "HttpLLMCalculator"]  # OVMS's one-node graph
    assert llm.options["models_path"] == "./"
    assert llm.options["device"] == "GPU"
    assert llm.options["cache_size"] == 4
    assert llm.options["enable_prefix_caching"] is False
    assert llm.options["max_num_seqs"] == 256  # stock value kept


def test_pulled_graph_is_ovms_loadable_unless_ovserve_options_are_set() -> None:
    """OVMS's options are the proto's fields below 1000; a pulled graph with only those is OVMS's own
    shape (one HttpLLMCalculator node); ovserve's own options are written and named in a comment."""
    from graphs.pbtxt import parse_graph
    from graphs.proto import ovms_calculators_pb2

    fields = ovms_calculators_pb2.LLMCalculatorOptions.DESCRIPTOR.fields_by_name
    text = graph_file.graph_text({"device": "CPU", "tool_parser": "hermes3", "pipeline_type": "LM_CB"})
    (node,) = parse_graph(text).nodes
    assert node.calculator == "HttpLLMCalculator" and all(fields[key].number < 1000 for key in node.options)
    assert "OVMS will not load it" not in text
    text = graph_file.graph_text({"stream_interval_ms": 3, "max_prompt_tokens": 100})
    assert "ovserve's own options (max_prompt_tokens, stream_interval_ms): OVMS will not load it" in text
    assert parse_graph(text).nodes[0].options["stream_interval_ms"] == 3


def test_prepare_from_ir_folder_and_reuse(ir_folder: Path, tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    code, args, lines = run("--source_model", str(ir_folder), "--model_repository_path", str(repo), "--pull", "--target_device", "CPU")
    assert code == 0, lines
    target = repo / "tiny-ov"
    assert {p.name for p in target.iterdir()} >= {*layout.REQUIRED_LLM_FILES, layout.GRAPH_FILE, "tokenizer.json"}
    graph = load_graph(target / layout.GRAPH_FILE)
    assert [n.calculator for n in graph.nodes] == ["HttpLLMCalculator"]
    assert [p.name for p in repo.iterdir()] == ["tiny-ov"]  # no temporary folder left
    assert any("as is" in line for line in lines)
    # prepared again: reused, not rebuilt
    mtime = (target / layout.GRAPH_FILE).stat().st_mtime_ns
    code, _, lines = run("--source_model", str(ir_folder), "--model_repository_path", str(repo), "--pull")
    assert code == 0 and any("reusing" in line for line in lines)
    assert (target / layout.GRAPH_FILE).stat().st_mtime_ns == mtime
    # --overwrite_models rebuilds it
    (target / "stale").write_text("x")
    code, _, _ = run("--source_model", str(ir_folder), "--model_repository_path", str(repo), "--pull", "--overwrite_models")
    assert code == 0 and not (target / "stale").exists()
    assert sorted(p.name for p in repo.iterdir()) == ["tiny-ov"]


def test_without_pull_serves_the_prepared_folder(ir_folder: Path, tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    code, args, _ = run("--source_model", str(ir_folder), "--model_repository_path", str(repo), "--model_name", "org/tiny")
    assert code is None
    assert args.model_path == repo / "org" / "tiny" and args.model_name == "org/tiny"
    assert layout.list_models(repo) == ["org/tiny"]


def test_without_pull_with_config_adds_it(ir_folder: Path, tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    config = repo / "config.json"
    code, args, _ = run("--source_model", str(ir_folder), "--model_repository_path", str(repo), "--config_path", str(config))
    assert code is None and args.model_path is None
    assert json.loads(config.read_text()) == {"model_config_list": [{"config": {"name": "tiny-ov", "base_path": "tiny-ov"}}]}


def test_failed_prepare_leaves_nothing(tmp_path: Path) -> None:
    src = tmp_path / "broken"
    src.mkdir()
    (src / layout.IR_FILE).write_text("<net/>")  # IR without weights/tokenizer: conversion fails
    (src / "config.json").write_text(json.dumps({"architectures": ["XForCausalLM"]}))
    repo = tmp_path / "repo"
    code, _, _ = run("--source_model", str(src), "--model_repository_path", str(repo), "--pull")
    assert code == 1
    assert list(repo.iterdir()) == []


def test_unsupported_task_and_unknown_architecture(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    src = tmp_path / "bert"
    src.mkdir()
    (src / "config.json").write_text(json.dumps({"architectures": ["BertForMaskedLM"]}))
    repo = tmp_path / "repo"
    assert run("--source_model", str(src), "--model_repository_path", str(repo), "--pull")[0] == 1
    assert "give --task" in capsys.readouterr().err
    # no weights: the export fails with one clear line and leaves nothing behind
    assert run("--source_model", str(src), "--model_repository_path", str(repo), "--pull", "--task", "embeddings")[0] == 1
    assert f"export of {src} failed" in capsys.readouterr().err
    assert list(repo.iterdir()) == []


@pytest.mark.parametrize(("task", "calculator"), [("embeddings", "EmbeddingsCalculatorOV"), ("rerank", "RerankCalculatorOV")])
def test_encoder_graph_text(task: str, calculator: str) -> None:
    from graphs.pbtxt import parse_graph

    graph = parse_graph(graph_file.graph_text({"device": "GPU", "cache_size": 3}, task), source="x")
    (node,) = graph.nodes
    assert node.calculator == calculator
    assert node.options["models_path"] == "./" and node.options["target_device"] == "GPU"
    assert "cache_size" not in node.options


def test_download_offline_is_one_clear_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf-home"))
    monkeypatch.setattr("huggingface_hub.constants.HF_HUB_OFFLINE", True)
    code, _, _ = run("--source_model", "OpenVINO/no-such-model-ov", "--model_repository_path", str(tmp_path / "repo"), "--pull")
    assert code == 1
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "cannot download OpenVINO/no-such-model-ov" in err and "offline" in err
    assert not (tmp_path / "repo" / "OpenVINO" / "no-such-model-ov").exists()


@pytest.mark.parametrize(
    "argv",
    [
        ["--pull"],
        ["--task", "text_generation"],
        ["--list_models"],
        ["--add_to_config", "--model_name", "x"],
        ["--remove_from_config", "--config_path", "c.json"],
        ["--list_models", "--add_to_config", "--model_repository_path", "r"],
        ["--source_model", "x/y"],
        ["--source_model", "x/y", "--model_repository_path", "r", "--model_path", "p"],
        ["--model_repository_path", "r"],
        ["--add_to_config", "--config_path", "c.json", "--model_name", "x", "--model_path", "p", "--model_repository_path", "r"],
    ],
)
def test_bad_combinations_exit_2(argv: list[str], capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(layout.REPOSITORY_ENV, raising=False)
    assert run(*argv)[0] == 2
    err = capsys.readouterr().err
    assert err.startswith("ovserve: ") and len(err.strip().splitlines()) == 1


def test_plain_serving_returns_none() -> None:
    assert run("--model_path", "m")[0] is None
    assert run("--config_path", "c.json")[0] is None


def test_add_and_remove(tmp_path: Path) -> None:
    repo = tmp_path / "models"
    fake_servable(repo / "org" / "a")
    fake_servable(repo / "b")
    outside = fake_servable(tmp_path / "elsewhere" / "c")
    config = repo / "config.json"
    assert run("--add_to_config", "--config_path", str(repo), "--model_name", "org/a", "--model_repository_path", str(repo))[0] == 0
    assert run("--add_to_config", "--config_path", str(config), "--model_name", "b")[0] == 0  # base_path = name
    assert run("--add_to_config", "--config_path", str(config), "--model_name", "c", "--model_path", str(outside))[0] == 0
    assert run("--add_to_config", "--config_path", str(config), "--model_name", "b2", "--model_path", str(repo / "b"))[0] == 0
    entries = [e["config"] for e in json.loads(config.read_text())["model_config_list"]]
    assert entries == [
        {"name": "org/a", "base_path": "org/a"},
        {"name": "b", "base_path": "b"},
        {"name": "c", "base_path": str(outside.resolve())},
        {"name": "b2", "base_path": "b"},
    ]
    # the file loads as a server config
    from serving.config_file import load_config_file

    assert [s.name for s in load_config_file(config)] == ["org/a", "b", "c", "b2"]
    # adding again updates, never duplicates
    assert run("--add_to_config", "--config_path", str(config), "--model_name", "b2", "--model_path", "org/a")[0] == 0
    entries = [e["config"] for e in json.loads(config.read_text())["model_config_list"]]
    assert entries[-1] == {"name": "b2", "base_path": "org/a"} and len(entries) == 4
    assert run("--remove_from_config", "--config_path", str(config), "--model_name", "org/a")[0] == 0
    assert [e["config"]["name"] for e in json.loads(config.read_text())["model_config_list"]] == ["b", "c", "b2"]
    assert sorted(p.name for p in repo.iterdir()) == ["b", "config.json", "org"]  # no temp files left


def test_add_keeps_other_keys_and_refuses_a_missing_servable(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    fake_servable(tmp_path / "a")
    config = tmp_path / "config.json"
    config.write_text(json.dumps({"monitoring": {"metrics": {"enable": True}}, "mediapipe_config_list": [{"name": "g"}]}))
    assert run("--add_to_config", "--config_path", str(config), "--model_name", "a")[0] == 0
    written = json.loads(config.read_text())
    assert written["monitoring"] == {"metrics": {"enable": True}} and written["mediapipe_config_list"] == [{"name": "g"}]
    assert run("--add_to_config", "--config_path", str(config), "--model_name", "missing")[0] == 1
    assert "no graph.pbtxt" in capsys.readouterr().err
    assert run("--remove_from_config", "--config_path", str(config), "--model_name", "g")[0] == 0
    assert json.loads(config.read_text())["mediapipe_config_list"] == []
    assert run("--remove_from_config", "--config_path", str(config), "--model_name", "nope")[0] == 1
    assert run("--remove_from_config", "--config_path", str(tmp_path / "none.json"), "--model_name", "a")[0] == 1


def test_list_models(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    repo = tmp_path / "models"
    fake_servable(repo / "OpenVINO" / "Qwen3-8B-int4-ov")
    fake_servable(repo / "local")
    fake_servable(repo / ".local.partial-x")  # half built: not listed
    (repo / "empty").mkdir()
    assert run("--list_models", "--model_repository_path", str(repo))[0] == 0
    assert capsys.readouterr().out.splitlines() == ["OpenVINO/Qwen3-8B-int4-ov", "local"]
    assert run("--list_models", "--model_repository_path", str(tmp_path / "none"))[0] == 1
