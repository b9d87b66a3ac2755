"""serving/dev_models.py: the product's only way to the test/demo models of tests/models/."""

from __future__ import annotations

from pathlib import Path

import pytest

import tests.models
from serving import cli, dev_models


def test_a_checkout_gives_tests_models() -> None:
    assert dev_models.CHECKOUT == Path(__file__).resolve().parents[2]
    assert dev_models.models() is tests.models


def test_an_installed_wheel_gets_one_clear_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(dev_models, "CHECKOUT", tmp_path)  # site-packages: no tests/models beside serving/
    with pytest.raises(dev_models.DevModelsUnavailable, match="source checkout"):
        dev_models.models()
    for argv in (["build-model", "tiny"], ["bench", "--model-dir", "tiny"], ["bench-embeddings", "--model-dir", "minilm"]):
        assert cli.main(argv) == 2
        err = capsys.readouterr().err
        assert err.startswith(f"ovserve {argv[0]}: ") and "give a model folder instead" in err and "Traceback" not in err


def test_build_model_prints_the_folder_last(tiny_model_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["build-model", "tiny", "--quiet"]) == 0
    assert capsys.readouterr().out.splitlines()[-1] == str(tiny_model_dir)
