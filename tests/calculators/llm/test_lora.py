"""LoRA adapters: the node options (graph text and `--lora_adapter`), the "<servable>:<adapter>"
naming rule, the load-time checks, and how a model name resolves to a servable (on a real
server: tests/e2e/test_lora.py)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from calculators.llm.lora import ADAPTER_FILE, adapter_specs, parse_flag, request_adapter, split_model_name
from calculators.llm.options import LLMOptions
from graphs.errors import NotFoundError, UnavailableError
from graphs.pbtxt import parse_graph
from serving.loading import single_model_graph
from serving.servable import ServableManager, make_servable
from serving.settings import LLMFlags, Settings
from tests.helpers.servables import llm_graph


@pytest.mark.parametrize(
    ("name", "split"),
    [
        ("tiny", ("tiny", None)),
        ("tiny:swap", ("tiny", "swap")),
        ("org/model:v1:swap", ("org/model:v1", "swap")),
        ("tiny:", ("tiny:", None)),
        (":swap", (":swap", None)),
    ],
)
def test_split_model_name(name: str, split: tuple[str, str | None]) -> None:
    assert split_model_name(name) == split


def test_flag() -> None:
    assert parse_flag("swap=/a/swap") == {"name": "swap", "path": "/a/swap"}
    assert parse_flag("swap=/a/swap@0.5") == {"name": "swap", "path": "/a/swap", "alpha": 0.5}
    assert parse_flag("at=/a/b@c") == {"name": "at", "path": "/a/b@c"}
    assert parse_flag("rel=x.safetensors")["path"] == str(Path("x.safetensors").resolve())
    for bad in ("swap", "swap=", "=/a", "a:b=/a", "-x=/a"):
        with pytest.raises(ValueError):
            parse_flag(bad)


def test_cli_flag_reaches_the_node_options(tmp_path: Path) -> None:
    from serving.cli import build_parser, settings_from_args

    parser = build_parser()
    args = ["--model_path", str(tmp_path), "--lora_adapter", "a=/x/a", "--lora_adapter", "b=/x/b.safetensors@2"]
    settings = settings_from_args(parser.parse_args(args))
    graph = single_model_graph(tmp_path, settings)
    (node,) = [n for n in graph.nodes if n.calculator == "ContinuousBatchingLLMCalculator"]
    assert node.options["lora_adapters"] == [{"name": "a", "path": "/x/a"}, {"name": "b", "path": "/x/b.safetensors", "alpha": 2.0}]
    with pytest.raises(SystemExit):
        parser.parse_args(["--model_path", "m", "--lora_adapter", "no-path"])


def adapters_graph(model_dir: Path) -> str:
    return llm_graph(
        model_dir,
        'lora_adapters { name: "swap" path: "adapters/swap" }\n      lora_adapters { name: "count" path: "c.safetensors" alpha: 0.5 }',
    )


def test_graph_text_options() -> None:
    graph = parse_graph(adapters_graph(Path("/m")))
    (node,) = [n for n in graph.nodes if n.calculator == "ContinuousBatchingLLMCalculator"]
    options = LLMOptions.model_validate(node.options)
    assert [(a.name, a.path, a.alpha) for a in options.lora_adapters] == [("swap", "adapters/swap", 1.0), ("count", "c.safetensors", 0.5)]


@pytest.fixture
def servable_dir(tmp_path: Path) -> Path:
    (tmp_path / "adapters" / "swap").mkdir(parents=True)
    (tmp_path / "adapters" / "swap" / ADAPTER_FILE).write_bytes(b"")
    (tmp_path / "c.safetensors").write_bytes(b"")
    return tmp_path


def options(**fields: Any) -> LLMOptions:
    adapters = [{"name": "swap", "path": "adapters/swap"}, {"name": "count", "path": "c.safetensors", "alpha": 0.5}]
    return LLMOptions.model_validate({"models_path": "./", "lora_adapters": adapters, **fields})


def test_adapter_specs(servable_dir: Path) -> None:
    assert adapter_specs(options(), servable_dir) == [
        {"name": "swap", "path": str(servable_dir / "adapters" / "swap" / ADAPTER_FILE), "alpha": 1.0},
        {"name": "count", "path": str(servable_dir / "c.safetensors"), "alpha": 0.5},
    ]
    assert adapter_specs(LLMOptions(models_path="./"), servable_dir) == []


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"lora_adapters": [{"name": "x", "path": "missing"}]}, "no adapter at"),
        ({"lora_adapters": [{"name": "x", "path": "adapters"}]}, "no adapter at"),
        ({"lora_adapters": [{"name": "a:b", "path": "c.safetensors"}]}, "letters, digits"),
        ({"lora_adapters": [{"name": "x", "path": "c.safetensors"}, {"name": "x", "path": "c.safetensors"}]}, "given twice"),
        ({"pipeline_type": "LM"}, "LM_CB only"),
        ({"plugin_config": '{"prompt_lookup": true}'}, "speculative decoding"),
    ],
)
def test_bad_adapters_fail_the_load(servable_dir: Path, fields: dict[str, Any], message: str) -> None:
    with pytest.raises(UnavailableError, match=message):
        adapter_specs(options(**fields), servable_dir)


def test_request_adapter() -> None:
    opts = options()
    assert request_adapter("tiny:swap", opts) == "swap"
    assert request_adapter("tiny:count", opts) == "count"
    assert request_adapter("tiny", opts) is None
    assert request_adapter("a:b", opts) is None  # a servable whose own name has the separator


def test_model_names_resolve_to_the_servable(tmp_path: Path) -> None:
    tiny = make_servable("tiny", tmp_path, parse_graph(adapters_graph(tmp_path)))
    other = make_servable("other", tmp_path, parse_graph(llm_graph(tmp_path)))
    manager = ServableManager([tiny, other])
    assert tiny.served_names() == ["tiny", "tiny:swap", "tiny:count"]
    assert other.served_names() == ["other"]
    assert manager.get("tiny") is manager.get("tiny:swap") is manager.get("tiny:count") is tiny
    for unknown in ("tiny:nope", "other:swap", "nope:swap", "tiny:"):
        assert manager.find(unknown) is None
        with pytest.raises(NotFoundError):
            manager.get(unknown)


def test_settings_without_adapters() -> None:
    assert "lora_adapters" not in LLMFlags().node_options()
    assert "lora_adapters" not in Settings().llm.options
