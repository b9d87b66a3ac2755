"""Tests for the locally built demo/test models (serving.model_builder)."""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path

import openvino_genai
import pytest

from serving import model_builder
from serving.model_builder import (
    BUILD_INFO,
    TINY_COMPLETIONS,
    TINY_PROMPTS,
    build_tiny_model,
    cached_build,
    main,
    recipe_hash,
    synthetic_recipe,
    tiny_recipe,
)


@pytest.fixture(scope="module")
def pipeline(tiny_model_dir: Path) -> openvino_genai.ContinuousBatchingPipeline:
    scheduler = openvino_genai.SchedulerConfig()
    scheduler.cache_size = 0
    return openvino_genai.ContinuousBatchingPipeline(str(tiny_model_dir), scheduler, "CPU")


def _greedy(max_new_tokens: int = 200) -> openvino_genai.GenerationConfig:
    config = openvino_genai.GenerationConfig()
    config.max_new_tokens = max_new_tokens
    config.do_sample = False
    return config


# --------------------------------------------------------------------------- cache


def test_second_build_is_a_cache_hit(tiny_model_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    info_before = (tiny_model_dir / BUILD_INFO).read_text()
    inode_before = tiny_model_dir.stat().st_ino

    def must_not_build(*args: object) -> None:
        raise AssertionError("build_tiny_model rebuilt a cached model")

    monkeypatch.setattr(model_builder, "_build_tiny", must_not_build)
    assert build_tiny_model() == tiny_model_dir
    assert (tiny_model_dir / BUILD_INFO).read_text() == info_before
    assert tiny_model_dir.stat().st_ino == inode_before


def test_folder_name_is_name_and_recipe_hash(tiny_model_dir: Path) -> None:
    assert tiny_model_dir.name == f"tiny-{recipe_hash(tiny_recipe())}"
    info = json.loads((tiny_model_dir / BUILD_INFO).read_text())
    assert info["recipe"] == json.loads(json.dumps(tiny_recipe()))


def test_cache_root_from_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OVSERVE_MODEL_CACHE", str(tmp_path))
    assert model_builder.default_cache_root() == tmp_path
    monkeypatch.delenv("OVSERVE_MODEL_CACHE")
    assert model_builder.default_cache_root() == model_builder.PROJECT_ROOT / ".cache" / "models"


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


# --------------------------------------------------------------------------- the tiny model


def test_expected_files(tiny_model_dir: Path) -> None:
    for name in (
        "openvino_model.xml",
        "openvino_model.bin",
        "openvino_tokenizer.xml",
        "openvino_detokenizer.xml",
        "config.json",
        "generation_config.json",
        "tokenizer.json",
        "tokenizer_config.json",
        "chat_template.jinja",
        "hf/config.json",
        "hf/model.safetensors",
        "hf/tokenizer.json",
        "hf/chat_template.jinja",
    ):
        assert (tiny_model_dir / name).is_file(), name


def test_config_declares_context_and_eos(tiny_model_dir: Path) -> None:
    tokenizer = json.loads((tiny_model_dir / "tokenizer.json").read_text())
    im_end = next(t["id"] for t in tokenizer["added_tokens"] if t["content"] == "<|im_end|>")
    config = json.loads((tiny_model_dir / "config.json").read_text())
    generation = json.loads((tiny_model_dir / "generation_config.json").read_text())
    assert config["architectures"] == ["Qwen2ForCausalLM"]
    assert config["max_position_embeddings"] == 512
    assert config["eos_token_id"] == generation["eos_token_id"] == im_end
    tok_config = json.loads((tiny_model_dir / "tokenizer_config.json").read_text())
    assert tok_config["chat_template"] == (tiny_model_dir / "chat_template.jinja").read_text()
    assert openvino_genai.Tokenizer(str(tiny_model_dir)).get_eos_token_id() == im_end


def test_weights_are_not_compressed(tiny_model_dir: Path) -> None:
    import openvino as ov

    model = ov.Core().read_model(tiny_model_dir / "openvino_model.xml")
    types = {op.get_element_type().get_type_name() for op in model.get_ops() if op.get_type_name() == "Constant" and len(op.shape) == 2}
    assert types == {"f32"}


def test_chat_prompts_reproduce_exactly(
    pipeline: openvino_genai.ContinuousBatchingPipeline,
) -> None:
    tok = pipeline.get_tokenizer()
    prompts = [tok.apply_chat_template([{"role": "user", "content": q}], add_generation_prompt=True) for q in TINY_PROMPTS]
    config = _greedy()
    config.apply_chat_template = False  # already rendered (the default would render it twice)
    results = pipeline.generate(prompts, [config] * len(prompts))
    assert [r.m_generation_ids[0] for r in results] == list(TINY_PROMPTS.values())


def test_string_prompts_get_the_chat_template_by_default(
    pipeline: openvino_genai.ContinuousBatchingPipeline,
) -> None:
    questions = list(TINY_PROMPTS)
    results = pipeline.generate(questions, [_greedy()] * len(questions))
    assert [r.m_generation_ids[0] for r in results] == list(TINY_PROMPTS.values())


def test_completions_reproduce_and_stop_at_eos(
    pipeline: openvino_genai.ContinuousBatchingPipeline,
) -> None:
    tok = pipeline.get_tokenizer()
    inputs = [tok.encode(p, add_special_tokens=False).input_ids for p in TINY_COMPLETIONS]
    results = pipeline.generate(inputs, [_greedy(50)] * len(inputs))
    texts = [tok.decode(list(r.m_generation_ids[0])) for r in results]
    assert texts == list(TINY_COMPLETIONS.values())
    assert all(len(r.m_generation_ids[0]) < 50 for r in results)  # stopped, not cut off


def test_long_answer_and_multibyte_answer(tiny_model_dir: Path) -> None:
    tok = openvino_genai.Tokenizer(str(tiny_model_dir))
    long_answer = max(TINY_PROMPTS.values(), key=len)
    assert len(tok.encode(long_answer, add_special_tokens=False).input_ids.data[0]) >= 60
    multibyte = TINY_PROMPTS["Say hello in French."]
    ids = list(tok.encode(multibyte, add_special_tokens=False).input_ids.data[0])
    assert tok.decode(ids) == multibyte  # "café" and a 4-byte emoji split over several tokens
    assert any("\ufffd" in tok.decode(ids[:n]) for n in range(1, len(ids)))


def test_max_new_tokens_cuts_the_long_answer(
    pipeline: openvino_genai.ContinuousBatchingPipeline,
) -> None:
    tok = pipeline.get_tokenizer()
    prompt = tok.apply_chat_template([{"role": "user", "content": "Tell me a story."}], add_generation_prompt=True)
    config = _greedy(10)
    config.apply_chat_template = False
    result = pipeline.generate([prompt], [config])[0]
    text = result.m_generation_ids[0]
    assert 0 < len(text) < 40 and TINY_PROMPTS["Tell me a story."].startswith(text)


def test_cli_prints_model_folder_last(tiny_model_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["tiny", "--quiet"]) == 0
    assert capsys.readouterr().out.splitlines()[-1] == str(tiny_model_dir)


def test_cli_rejects_synthetic_options_for_tiny() -> None:
    with pytest.raises(SystemExit):
        main(["tiny", "--layers", "2"])
