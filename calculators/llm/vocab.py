"""Token id -> bytes tables, so incremental detokenization is a table look-up per token.

Calling the OpenVINO detokenizer per step per request would cost more than the engine's own
bookkeeping; for byte-level BPE (Qwen, Llama 3, GPT-2 style) and SentencePiece byte-fallback
vocabularies, each token IS a fixed byte string, read here from the model's `tokenizer.json`.
GGUF models (calculators/llm/gguf.py) have no tokenizer.json: their token list is read from
`gguf_vocab.json` (the GGUF's `tokenizer.ggml.tokens` / `token_type`, `model` gpt2 = byte-level
BPE, llama = SentencePiece with byte tokens). Other tokenizers return None and the detokenizer
falls back to windowed `decode()` calls.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any


@dataclass(frozen=True, slots=True)
class TokenBytes:
    table: tuple[bytes, ...]  # id -> bytes of the token
    special_ids: frozenset[int]  # dropped when skip_special_tokens
    longest: int = 0  # bytes of the longest token (0: unknown); a text has >= len(text) / longest tokens


def _byte_level_decoder() -> dict[str, int]:
    """Inverse of GPT-2's bytes_to_unicode: printable stand-in character -> byte."""
    printable = [*range(ord("!"), ord("~") + 1), *range(ord("¡"), ord("¬") + 1), *range(ord("®"), ord("ÿ") + 1)]
    chars = list(printable)
    extra = 0
    for b in range(256):
        if b not in printable:
            printable.append(b)
            chars.append(256 + extra)
            extra += 1
    return {chr(c): b for b, c in zip(printable, chars, strict=True)}


_BYTE_FALLBACK = re.compile(r"^<0x([0-9A-Fa-f]{2})>$")


def _decoder_kinds(decoder: dict[str, Any] | None) -> set[str]:
    if not decoder:
        return set()
    if decoder.get("type") == "Sequence":
        return {d.get("type", "") for d in decoder.get("decoders", [])}
    return {decoder.get("type", "")}


# GGUF token types (llama.cpp's llama_token_type)
_GGUF_CONTROL, _GGUF_USER_DEFINED, _GGUF_BYTE = 3, 4, 6


def gguf_token_bytes(model: str, tokens: list[str], token_types: list[int]) -> TokenBytes | None:
    """The table for a GGUF vocabulary: gpt2 (byte-level BPE) or llama (SentencePiece)."""
    if model not in ("gpt2", "llama") or not tokens:
        return None
    types = list(token_types) + [1] * (len(tokens) - len(token_types))
    inverse = _byte_level_decoder()
    table: list[bytes] = []
    for token, kind in zip(tokens, types, strict=True):
        if kind in (_GGUF_CONTROL, _GGUF_USER_DEFINED):
            table.append(token.encode())
        elif model == "gpt2":
            try:
                table.append(bytes(inverse[ch] for ch in token))
            except KeyError:
                return None
        elif kind == _GGUF_BYTE and (match := _BYTE_FALLBACK.match(token)):
            table.append(bytes([int(match.group(1), 16)]))
        else:
            table.append(token.replace("▁", " ").encode())
    special = frozenset(i for i, kind in enumerate(types) if kind == _GGUF_CONTROL)
    return TokenBytes(tuple(table), special, max(map(len, table), default=0))


def _load_gguf_vocab(path: Path) -> TokenBytes | None:
    spec = json.loads(path.read_text(encoding="utf-8"))
    return gguf_token_bytes(str(spec.get("model", "")), list(spec.get("tokens", [])), list(spec.get("token_types", [])))


def load_token_bytes(model_dir: Path) -> TokenBytes | None:
    path = model_dir / "tokenizer.json"
    if not path.is_file():
        gguf_vocab = model_dir / "gguf_vocab.json"  # written by calculators/llm/gguf.py
        return _load_gguf_vocab(gguf_vocab) if gguf_vocab.is_file() else None
    spec = json.loads(path.read_text(encoding="utf-8"))
    model = spec.get("model", {})
    vocab: dict[str, int] = model.get("vocab") if isinstance(model.get("vocab"), dict) else {}
    if not vocab:
        return None
    kinds = _decoder_kinds(spec.get("decoder"))
    added = {t["content"]: (t["id"], bool(t.get("special"))) for t in spec.get("added_tokens", [])}
    size = max([*vocab.values(), *(i for i, _ in added.values())]) + 1
    table: list[bytes] = [b""] * size
    if kinds == {"ByteLevel"}:
        inverse = _byte_level_decoder()
        try:
            for token, token_id in vocab.items():
                table[token_id] = bytes(inverse[ch] for ch in token)
        except KeyError:
            return None
    elif "ByteFallback" in kinds and kinds <= {"Replace", "ByteFallback", "Fuse", "Strip"}:
        # SentencePiece style: "▁" is a space, <0xNN> is one raw byte. (The Strip decoder only
        # drops the space at the start of a whole text; a continuation keeps it.)
        for token, token_id in vocab.items():
            match = _BYTE_FALLBACK.match(token)
            table[token_id] = bytes([int(match.group(1), 16)]) if match else token.replace("▁", " ").encode()
    else:
        return None
    for content, (token_id, _special) in added.items():
        table[token_id] = content.encode()
    special = frozenset(i for i, is_special in added.values() if is_special)
    return TokenBytes(tuple(table), special, max(map(len, table), default=0))
