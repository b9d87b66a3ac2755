"""Incremental detokenization and stop strings, per generated sequence.

`IncrementalDecoder` turns token ids into text as they arrive, never emitting half of a
multi-byte UTF-8 character. `StopMatcher` holds back only the tail that could still become
a stop string, so nothing of a stop string leaks across chunk boundaries.
"""

from __future__ import annotations

import codecs
from collections.abc import Callable, Sequence

from calculators.llm.vocab import TokenBytes

# decode(token_ids, skip_special_tokens) -> text: the tokenizer's own, for the fallback path
DecodeFn = Callable[[Sequence[int], bool], str]


class IncrementalDecoder:
    """Token ids in, new text out. Table look-up when the vocabulary allows it."""

    def __init__(self, vocab: TokenBytes | None, decode: DecodeFn, skip_special_tokens: bool = True) -> None:
        self._vocab = vocab
        self._decode = decode
        self._skip = skip_special_tokens
        self._utf8 = codecs.getincrementaldecoder("utf-8")("replace")
        # fallback state (vLLM-style offsets): text of tokens[prefix:read] has been emitted
        self._tokens: list[int] = []
        self._prefix = 0
        self._read = 0

    def feed(self, token_ids: Sequence[int]) -> str:
        if self._vocab is not None:
            table, special = self._vocab.table, self._vocab.special_ids
            size = len(table)
            data = b"".join(table[t] if 0 <= t < size and not (self._skip and t in special) else b"" for t in token_ids)
            return self._utf8.decode(data)
        return self._feed_fallback(token_ids)

    def flush(self) -> str:
        """The end of the stream. A character the last tokens left unfinished (max_tokens cut
        it) is dropped, as vLLM's detokenizers do, rather than sent as U+FFFD: no chunk, and no
        unary answer, ever shows half a character. Invalid bytes within the text stay U+FFFD."""
        if self._vocab is not None:
            self._utf8.reset()  # holds only the start of a character the tokens never finished
            return ""
        # Release what the fallback held back (as decode() shows it), but no unfinished character.
        prefix_text = self._decode(self._tokens[self._prefix : self._read], self._skip)
        full_text = self._decode(self._tokens[self._prefix :], self._skip).rstrip("\ufffd")
        self._prefix = self._read = len(self._tokens)
        return full_text[len(prefix_text) :] if len(full_text) > len(prefix_text) else ""

    def _feed_fallback(self, token_ids: Sequence[int]) -> str:
        self._tokens.extend(token_ids)
        prefix_text = self._decode(self._tokens[self._prefix : self._read], self._skip)
        full_text = self._decode(self._tokens[self._prefix :], self._skip)
        if full_text.endswith("\ufffd") or len(full_text) <= len(prefix_text):
            return ""  # incomplete character: wait for more tokens
        new_text = full_text[len(prefix_text) :]
        self._prefix = self._read
        self._read = len(self._tokens)
        return new_text


class StopMatcher:
    """Finds the first stop string in a growing text, holding back possible partial matches."""

    def __init__(self, stops: Sequence[str], include_stop: bool = False) -> None:
        self._stops = tuple(s for s in stops if s)
        self._include = include_stop
        self._hold = max((len(s) for s in self._stops), default=1) - 1
        self._pending = ""
        self.stopped = False

    @property
    def active(self) -> bool:
        """Whether there is any stop string to look for."""
        return bool(self._stops)

    def push(self, text: str) -> str:
        """Add text; return what is safe to emit now. After a stop, returns the cut text once."""
        if self.stopped:
            return ""
        if not self._stops:
            return text
        buffer = self._pending + text
        first: tuple[int, str] | None = None
        for stop in self._stops:
            at = buffer.find(stop)
            if at != -1 and (first is None or at < first[0]):
                first = (at, stop)
        if first is not None:
            self.stopped = True
            self._pending = ""
            at, stop = first
            return buffer[: at + len(stop)] if self._include else buffer[:at]
        keep = self._partial_suffix(buffer)
        self._pending = buffer[len(buffer) - keep :] if keep else ""
        return buffer[: len(buffer) - keep]

    def _partial_suffix(self, buffer: str) -> int:
        """Length of the longest tail of `buffer` that is a proper prefix of some stop string."""
        for size in range(min(self._hold, len(buffer)), 0, -1):
            tail = buffer[-size:]
            if any(stop.startswith(tail) for stop in self._stops):
                return size
        return 0

    def flush(self) -> str:
        out, self._pending = self._pending, ""
        return "" if self.stopped else out
