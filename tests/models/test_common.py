"""The recipe-hash build cache every locally made model uses (tests/models/common.py)."""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path

import pytest

from tests.models import (
    BUILD_INFO,
    build_tiny_model,
    cached_build,
    common,
    recipe_hash,
    synthetic_recipe,
    tiny,
    tiny_recipe,
)

# --------------------------------------------------------------------------- cache


def test_second_build_is_a_cache_hit(tiny_model_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    info_before = (tiny_model_dir / BUILD_INFO).read_text()
    inode_before = tiny_model_dir.stat().st_ino

    def must_not_build(*args: object) -> None:
        raise AssertionError("build_tiny_model rebuilt a cached model")

    monkeypatch.setattr(tiny, "_build_tiny", must_not_build)
    assert build_tiny_model() == tiny_model_dir
    assert (tiny_model_dir / BUILD_INFO).read_text() == info_before
    assert tiny_model_dir.stat().st_ino == inode_before


def test_folder_name_is_name_and_recipe_hash(tiny_model_dir: Path) -> None:
    assert tiny_model_dir.name == f"tiny-{recipe_hash(tiny_recipe())}"
    info = json.loads((tiny_model_dir / BUILD_INFO).read_text())
    assert info["recipe"] == json.loads(json.dumps(tiny_recipe()))


def test_cache_root_from_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OVSERVE_MODEL_CACHE", str(tmp_path))
    assert common.default_cache_root() == tmp_path
    monkeypatch.delenv("OVSERVE_MODEL_CACHE")
    assert common.default_cache_root() == common.PROJECT_ROOT / ".cache" / "models"


def test_recipe_hash_changes_with_any_hyperparameter() -> None:
    base = tiny_recipe()
    assert recipe_hash(base) == recipe_hash(tiny_recipe())
    assert len(recipe_hash(base)) == 12
    changed = [
        ("model", "hidden_size", 96),
        ("model", "max_position_embeddings", 1024),
        ("tokenizer", "vocab_size", 600),
        ("training", "steps", 301),
        ("training", "seed", 1),
        ("versions", "openvino", "0.0"),
    ]
    hashes = {recipe_hash(base)}
    for section, key, value in changed:
        recipe = tiny_recipe()
        recipe[section][key] = value
        hashes.add(recipe_hash(recipe))
    recipe = tiny_recipe()
    recipe["recipe_version"] += 1
    hashes.add(recipe_hash(recipe))
    recipe = tiny_recipe()
    recipe["prompts"] = {**recipe["prompts"], "Hi": "Hello."}
    hashes.add(recipe_hash(recipe))
    assert len(hashes) == len(changed) + 3
    assert recipe_hash(synthetic_recipe(512, 8)) != recipe_hash(synthetic_recipe(512, 4))
    assert recipe_hash(synthetic_recipe(512, 8)) != recipe_hash(synthetic_recipe(256, 8))


def test_cached_build_builds_once_under_concurrency(tmp_path: Path) -> None:
    builds: list[float] = []

    def build(out: Path) -> None:
        builds.append(time.monotonic())
        time.sleep(0.3)
        (out / "payload.txt").write_text("ok")

    recipe = {"x": 1}
    results: list[Path] = []
    threads = [threading.Thread(target=lambda: results.append(cached_build(tmp_path, "t", recipe, build))) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(builds) == 1
    assert len(set(results)) == 1 and len(results) == 3
    final = results[0]
    assert (final / "payload.txt").read_text() == "ok"
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []  # no temp left


def test_failed_build_leaves_nothing_valid(tmp_path: Path) -> None:
    def broken(out: Path) -> None:
        (out / "half.bin").write_text("half")
        raise RuntimeError("boom")

    with pytest.raises(RuntimeError, match="boom"):
        cached_build(tmp_path, "t", {"x": 2}, broken)
    assert sorted(p.name for p in tmp_path.iterdir()) == [f"t-{recipe_hash({'x': 2})}.lock"]
    path = cached_build(tmp_path, "t", {"x": 2}, lambda out: None)
    assert (path / BUILD_INFO).is_file()
