"""OVMS's config.json keys and CLI flags that have no role here: accepted with one warning,
while a mistyped key or a shortened flag stays an error."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest

from serving.cli import build_parser
from serving.config_file import ConfigFileError, load_config_file
from serving.ovms_flags import accept_ovms_flags


def write(tmp_path: Path, entry: dict[str, object], **top: object) -> Path:
    (tmp_path / "m").mkdir(exist_ok=True)
    (tmp_path / "m" / "graph.pbtxt").write_text("")
    path = tmp_path / "config.json"
    path.write_text(json.dumps({"model_config_list": [{"config": {"name": "m", "base_path": "m", **entry}}], **top}))
    return path


def test_ovms_keys_are_named_in_one_warning(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    path = write(tmp_path, {"nireq": 2, "shape": "auto"}, pipeline_config_list=[], custom_node_library_config_list=[])
    with caplog.at_level(logging.WARNING, logger="ovserve.config"):
        [spec] = load_config_file(path)
    assert spec.name == "m"
    [line] = [r.getMessage() for r in caplog.records]
    assert "pipeline_config_list, custom_node_library_config_list, m: nireq, m: shape" in line and "no effect here" in line


def test_a_mistyped_key_is_still_an_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigFileError, match="unknown key 'model_config_list.0.config.nirq'"):
        load_config_file(write(tmp_path, {"nirq": 2}))
    with pytest.raises(ConfigFileError, match="unknown key 'pipeline_list'"):
        load_config_file(write(tmp_path, {}, pipeline_list=[]))


def test_ovms_flags_are_accepted_and_trace_logs_as_debug() -> None:
    args = build_parser().parse_args(["--model_path", "x", "--grpc_workers", "4", "--nireq", "2", "--log_level", "TRACE"])
    assert accept_ovms_flags(args) == ["--grpc_workers 4", "--nireq 2", "--log_level TRACE (logs as DEBUG)"]
    assert args.log_level == "DEBUG"
    plain = build_parser().parse_args(["--model_path", "x"])
    assert accept_ovms_flags(plain) == [] and plain.log_level == "INFO"


def test_shortened_flags_are_errors(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        build_parser().parse_args(["--model_pa", "x"])
    assert "unrecognized arguments: --model_pa" in capsys.readouterr().err
