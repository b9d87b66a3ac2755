"""calculators/llm/gguf.py: finding a GGUF, the cache key, the metadata files, failed conversions
(small GGUF files written here with the gguf package), and SmolLM2's real conversion."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import pytest

from calculators.llm import gguf
from calculators.llm.model_files import read_chat_template, read_context_length
from calculators.llm.vocab import gguf_token_bytes, load_token_bytes
from graphs.errors import UnavailableError
from tests.helpers.gguf import TEMPLATE, write_gguf


def test_find_gguf(tmp_path: Path) -> None:
    (tmp_path / "one").mkdir()
    model = write_gguf(tmp_path / "one" / "m.gguf")
    assert gguf.find_gguf(model) == model
    assert gguf.find_gguf(model.parent) == model  # a folder holding exactly one
    (tmp_path / "one" / "notes.txt").write_text("x")
    assert gguf.find_gguf(tmp_path / "one" / "notes.txt") is None
    (tmp_path / "one" / "openvino_model.xml").write_text("<net/>")
    assert gguf.find_gguf(model.parent) is None  # an IR folder is served as it is
    two = tmp_path / "two"
    two.mkdir()
    write_gguf(two / "a.gguf")
    write_gguf(two / "b.gguf")
    with pytest.raises(UnavailableError, match=r"several GGUF files \(a.gguf, b.gguf\)"):
        gguf.find_gguf(two)
    assert gguf.find_gguf(tmp_path / "missing") is None


def test_cache_root(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    assert gguf.cache_root(str(tmp_path)) == tmp_path / "gguf"  # --cache_dir / plugin_config CACHE_DIR
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert gguf.cache_root(None) == tmp_path / "xdg" / "ovserve" / "gguf"
    monkeypatch.delenv("XDG_CACHE_HOME")
    assert gguf.cache_root(None) == Path.home() / ".cache" / "ovserve" / "gguf"


def test_cache_key_follows_the_file(tmp_path: Path) -> None:
    model = write_gguf(tmp_path / "m.gguf")
    root = tmp_path / "cache"
    first = gguf.converted_dir(model, root)
    assert first.parent == root and first.name.startswith("m-")
    assert gguf.converted_dir(model, root) == first
    link = tmp_path / "link.gguf"
    link.symlink_to(model)
    assert gguf.converted_dir(link, root) == first  # the file it points at
    stat = model.stat()
    os.utime(model, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000_000))
    assert gguf.converted_dir(model, root) != first  # replaced (re-downloaded): converted again


def test_metadata_files_feed_the_model_readers(tmp_path: Path) -> None:
    files = gguf.metadata_files(gguf.read_metadata(write_gguf(tmp_path / "m.gguf")))
    assert set(files) == {"config.json", "generation_config.json", "chat_template.jinja", gguf.VOCAB_FILE}
    folder = tmp_path / "ir"
    folder.mkdir()
    for name, text in files.items():
        (folder / name).write_text(text, encoding="utf-8")
    assert read_context_length(folder) == 4096
    assert json.loads(files["generation_config.json"]) == {"bos_token_id": 1, "eos_token_id": 2}
    assert read_chat_template(folder, None) == TEMPLATE
    table = load_token_bytes(folder)
    assert table is not None
    assert table.table == (b"<|endoftext|>", b"<|im_start|>", b"<|im_end|>", b"H", b"i", b" there", "é".encode())
    assert table.special_ids == {0, 1, 2}


def test_sentencepiece_gguf_vocabulary() -> None:
    tokens = ["<unk>", "<s>", "</s>", "<0x0A>", "<0xE6>", "▁Hello", "▁wor", "ld"]
    table = gguf_token_bytes("llama", tokens, [2, 3, 3, 6, 6, 1, 1, 1])
    assert table is not None
    assert table.table[3:] == (b"\n", b"\xe6", b" Hello", b" wor", b"ld")
    assert table.special_ids == {1, 2}
    assert gguf_token_bytes("bert", tokens, []) is None  # other tokenizers: windowed decode() instead


async def test_unsupported_architecture_is_a_clear_load_error(tmp_path: Path) -> None:
    model = write_gguf(tmp_path / "mamba-7b.gguf", arch="mamba")
    root = tmp_path / "cache"
    killed = root / f".{gguf.converted_dir(model, root).name}.partial-x"  # what a killed conversion leaves
    killed.mkdir(parents=True)
    (killed / "openvino_model.xml").write_text("<half/>")
    os.utime(killed, (time.time() - 2 * gguf.STALE_PARTIAL_S,) * 2)
    with pytest.raises(UnavailableError) as caught:
        await gguf.prepare(model, root)
    message = caught.value.message
    assert str(model) in message and "'mamba'" in message and "optimum-cli export openvino" in message
    assert "\n" not in message and "/src/" not in message
    assert list(root.iterdir()) == []  # no half-converted folder left behind, the stale one removed


async def test_not_a_gguf_file(tmp_path: Path) -> None:
    model = tmp_path / "fake.gguf"
    model.write_bytes(b"not a gguf at all" * 10)
    with pytest.raises(UnavailableError, match="not a readable GGUF file"):
        await gguf.prepare(model, tmp_path / "cache")


def test_smollm2_conversion(smollm2_cache_dir: Path) -> None:
    """The real model's cached conversion: IR, tokenizer IR and metadata from the GGUF."""
    import openvino_genai as ov_genai

    from serving.demo import smollm2_gguf

    folder = gguf.converted_dir(smollm2_gguf(), gguf.cache_root(str(smollm2_cache_dir)))
    for name in ("openvino_model.xml", "openvino_model.bin", "openvino_tokenizer.xml", "openvino_detokenizer.xml", gguf.MARKER):
        assert (folder / name).is_file(), name
    assert read_context_length(folder) == 8192
    assert json.loads((folder / "generation_config.json").read_text())["eos_token_id"] == 2
    assert "<|im_start|>" in (read_chat_template(folder, None) or "")
    table = load_token_bytes(folder)
    assert table is not None and len(table.table) == 49152
    text = "Héllo, wörld! 日本語 🙂 <|im_end|>"
    ids = ov_genai.Tokenizer(str(folder)).encode(text, add_special_tokens=False).input_ids.data[0].tolist()
    assert b"".join(table.table[i] for i in ids).decode() == text
    assert 2 in ids and 2 in table.special_ids
