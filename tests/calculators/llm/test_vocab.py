"""load_token_bytes: the token id -> bytes table, on the tiny model and on hand-written tokenizer.json files."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from calculators.llm.model_files import ModelTokenizer
from calculators.llm.vocab import TokenBytes, load_token_bytes
from tests.models import SPECIAL_TOKENS, TINY_COMPLETIONS, TINY_PROMPTS


@pytest.fixture(scope="module")
def tokenizer(tiny_model_dir: Path) -> ModelTokenizer:
    return ModelTokenizer.load(tiny_model_dir)


@pytest.fixture(scope="module")
def table(tiny_model_dir: Path) -> TokenBytes:
    result = load_token_bytes(tiny_model_dir)
    assert result is not None, "the tiny model's byte-level BPE vocabulary must give a table"
    return result


TEXTS = sorted({*TINY_PROMPTS, *TINY_PROMPTS.values(), *TINY_COMPLETIONS, *TINY_COMPLETIONS.values()})


def join(table: TokenBytes, ids: list[int]) -> bytes:
    return b"".join(table.table[i] for i in ids)


@pytest.mark.parametrize("text", TEXTS, ids=lambda t: t[:24])
def test_table_bytes_of_encoded_text_give_the_text_back(table: TokenBytes, tokenizer: ModelTokenizer, text: str) -> None:
    ids = tokenizer.encode(text, add_special_tokens=False)
    assert ids
    assert join(table, ids) == text.encode("utf-8")


def test_non_ascii_answer_has_a_character_split_over_tokens(table: TokenBytes, tokenizer: ModelTokenizer) -> None:
    """The French answer is the one that exercises multi-byte characters; make sure it really does."""
    text = TINY_PROMPTS["Say hello in French."]
    assert any(ord(ch) > 127 for ch in text)
    ids = tokenizer.encode(text, add_special_tokens=False)
    pieces = [table.table[i] for i in ids]
    assert join(table, ids).decode("utf-8") == text
    assert any(_not_utf8(p) for p in pieces), "expected at least one token holding part of a character"


def _not_utf8(data: bytes) -> bool:
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        return True
    return False


def test_chat_template_with_special_tokens_round_trips(table: TokenBytes, tokenizer: ModelTokenizer) -> None:
    text = tokenizer.render_chat([{"role": "user", "content": "What is the capital of France?"}])
    assert "<|im_start|>" in text
    ids = tokenizer.encode(text, add_special_tokens=False)
    assert join(table, ids) == text.encode("utf-8")
    special = {i for i in ids if i in table.special_ids}
    assert {table.table[i] for i in special} == {b"<|im_start|>", b"<|im_end|>"}


def test_special_ids_are_the_added_special_tokens(table: TokenBytes, tiny_model_dir: Path) -> None:
    spec = json.loads((tiny_model_dir / "tokenizer.json").read_text(encoding="utf-8"))
    added = {t["content"]: t["id"] for t in spec["added_tokens"]}
    special = {t["content"]: t["id"] for t in spec["added_tokens"] if t["special"]}
    assert set(special) == set(SPECIAL_TOKENS)
    assert table.special_ids == frozenset(special.values())  # <tool_call>, <think>… are added but not special
    for content, token_id in added.items():
        assert table.table[token_id] == content.encode()


def test_every_token_matches_the_tokenizers_own_decode(table: TokenBytes, tokenizer: ModelTokenizer) -> None:
    """For every id the table agrees with decode([id]) (which shows a partial character as U+FFFD)."""
    assert len(table.table) > 300
    for token_id, data in enumerate(table.table):
        assert tokenizer.decode([token_id], skip_special_tokens=False) == data.decode("utf-8", "replace"), token_id


# --- hand-written tokenizer.json files ---------------------------------------------------------

SENTENCEPIECE_VOCAB = {
    "<unk>": 0,
    "<s>": 1,
    "</s>": 2,
    "<0x0A>": 3,
    "<0xC3>": 4,
    "<0xA9>": 5,
    "▁Hello": 6,
    "▁world": 7,
    "!": 8,
    "▁caf": 9,
    "▁": 10,
}
LLAMA_DECODER = {
    "type": "Sequence",
    "decoders": [
        {"type": "Replace", "pattern": {"String": "▁"}, "content": " "},
        {"type": "ByteFallback"},
        {"type": "Fuse"},
        {"type": "Strip", "content": " ", "start": 1, "stop": 0},
    ],
}


def sentencepiece_json(decoder: dict[str, Any] | None) -> dict[str, Any]:
    return {
        "version": "1.0",
        "truncation": None,
        "padding": None,
        "added_tokens": [
            {"id": i, "content": c, "single_word": False, "lstrip": False, "rstrip": False, "normalized": False, "special": True}
            for c, i in (("<unk>", 0), ("<s>", 1), ("</s>", 2))
        ],
        "normalizer": None,
        "pre_tokenizer": {"type": "Metaspace", "replacement": "▁", "prepend_scheme": "first", "split": False},
        "post_processor": None,
        "decoder": decoder,
        "model": {
            "type": "BPE",
            "dropout": None,
            "unk_token": "<unk>",
            "continuing_subword_prefix": None,
            "end_of_word_suffix": None,
            "fuse_unk": True,
            "byte_fallback": True,
            "ignore_merges": False,
            "vocab": SENTENCEPIECE_VOCAB,
            "merges": [],
        },
    }


def write(folder: Path, spec: dict[str, Any]) -> Path:
    (folder / "tokenizer.json").write_text(json.dumps(spec, ensure_ascii=False), encoding="utf-8")
    return folder


def test_sentencepiece_byte_fallback_vocabulary(tmp_path: Path) -> None:
    table = load_token_bytes(write(tmp_path, sentencepiece_json(LLAMA_DECODER)))
    assert table is not None
    t = table.table
    assert t[SENTENCEPIECE_VOCAB["▁Hello"]] == b" Hello"  # a continuation keeps its space
    assert t[SENTENCEPIECE_VOCAB["!"]] == b"!"
    assert t[SENTENCEPIECE_VOCAB["<0x0A>"]] == b"\n"
    assert t[SENTENCEPIECE_VOCAB["<0xC3>"]] + t[SENTENCEPIECE_VOCAB["<0xA9>"]] == "é".encode()
    assert t[SENTENCEPIECE_VOCAB["<s>"]] == b"<s>"
    assert table.special_ids == frozenset({0, 1, 2})
    assert len(t) == len(SENTENCEPIECE_VOCAB)


def test_sentencepiece_table_agrees_with_the_tokenizers_library(tmp_path: Path) -> None:
    tokenizers = pytest.importorskip("tokenizers")
    spec = sentencepiece_json(LLAMA_DECODER)
    table = load_token_bytes(write(tmp_path, spec))
    assert table is not None
    reference = tokenizers.Tokenizer.from_str(json.dumps(spec))
    v = SENTENCEPIECE_VOCAB
    for ids in (
        [v["▁Hello"], v["▁world"], v["!"]],
        [v["▁caf"], v["<0xC3>"], v["<0xA9>"], v["<0x0A>"], v["▁world"]],
        [v["!"], v["▁"], v["▁Hello"]],
    ):
        expected = reference.decode(ids, skip_special_tokens=False)
        # The Strip decoder drops one space at the start of a whole text only.
        assert join(table, ids).decode("utf-8").removeprefix(" ") == expected


@pytest.mark.parametrize(
    "decoder",
    [
        {"type": "WordPiece", "prefix": "##", "cleanup": True},
        {"type": "CTC", "pad_token": "<pad>", "word_delimiter_token": "|", "cleanup": True},
        # llama.cpp's Llama 3 conversion: byte fallback AND byte-level, which one table cannot express
        {"type": "Sequence", "decoders": [{"type": "ByteFallback"}, {"type": "Fuse"}, {"type": "ByteLevel"}]},
        None,
    ],
    ids=["wordpiece", "ctc", "bytefallback+bytelevel", "no-decoder"],
)
def test_unsupported_decoder_gives_none(tmp_path: Path, decoder: dict[str, Any] | None) -> None:
    assert load_token_bytes(write(tmp_path, sentencepiece_json(decoder))) is None


def test_byte_level_vocabulary_with_a_token_outside_the_byte_alphabet_gives_none(tmp_path: Path) -> None:
    spec = sentencepiece_json({"type": "ByteLevel"})
    spec["model"]["vocab"] = {"Ġhello": 0, "☃": 1}  # U+2603 is none of GPT-2's 256 byte stand-ins
    spec["added_tokens"] = []
    assert load_token_bytes(write(tmp_path, spec)) is None


def test_byte_level_vocabulary_written_by_hand(tmp_path: Path) -> None:
    spec = sentencepiece_json({"type": "ByteLevel", "add_prefix_space": True, "trim_offsets": True})
    spec["model"]["vocab"] = {"Ġhello": 0, "Ã": 1, "©": 2, "Ċ": 3, "!": 4}
    spec["added_tokens"] = [{"id": 5, "content": "<|im_end|>", "special": True}, {"id": 6, "content": "<tool>", "special": False}]
    table = load_token_bytes(write(tmp_path, spec))
    assert table is not None
    assert table.table == (b" hello", b"\xc3", b"\xa9", b"\n", b"!", b"<|im_end|>", b"<tool>")
    assert table.special_ids == frozenset({5})


def test_missing_or_vocabulary_less_tokenizer_json_gives_none(tmp_path: Path) -> None:
    assert load_token_bytes(tmp_path) is None
    spec = sentencepiece_json(LLAMA_DECODER)
    spec["model"] = {"type": "Unigram", "vocab": [["<unk>", 0.0], ["▁a", -1.0]]}
    assert load_token_bytes(write(tmp_path, spec)) is None
