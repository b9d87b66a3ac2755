"""IncrementalDecoder (table and fallback paths) and StopMatcher, alone."""

from __future__ import annotations

import random
from collections.abc import Sequence

import pytest

from calculators.llm.vocab import TokenBytes
from calculators.text_stream import IncrementalDecoder, StopMatcher

# A byte-level vocabulary made by hand: some tokens are whole words, some single bytes of a
# multi-byte character ("é" is C3 A9, "🥐" is F0 9F A5 90).
TOKENS: dict[str, bytes] = {
    "H": b"H",
    "ello": b"ello",
    " caf": b" caf",
    "C3": b"\xc3",
    "A9": b"\xa9",
    "F0": b"\xf0",
    "9F": b"\x9f",
    "A5": b"\xa5",
    "90": b"\x90",
    "e-acute": "é".encode(),  # one token holding a whole 2-byte character
    "<|im_end|>": b"<|im_end|>",
    "<tool>": b"<tool>",  # an added token that is not special: always kept
}
IDS = {name: index for index, name in enumerate(TOKENS)}
VOCAB = TokenBytes(table=tuple(TOKENS.values()), special_ids=frozenset({IDS["<|im_end|>"]}))
EMOJI = [IDS["F0"], IDS["9F"], IDS["A5"], IDS["90"]]


def ids(*names: str) -> list[int]:
    return [IDS[n] for n in names]


def fake_decode(token_ids: Sequence[int], skip_special_tokens: bool) -> str:
    """Like a real tokenizer's decode(): join the bytes, U+FFFD for bytes that are not (yet) UTF-8."""
    data = b"".join(VOCAB.table[t] for t in token_ids if not (skip_special_tokens and t in VOCAB.special_ids))
    return data.decode("utf-8", errors="replace")


def must_not_decode(token_ids: Sequence[int], skip_special_tokens: bool) -> str:
    raise AssertionError("the table path must not call decode()")


def table_decoder(skip_special_tokens: bool = True) -> IncrementalDecoder:
    return IncrementalDecoder(VOCAB, must_not_decode, skip_special_tokens)


def fallback_decoder(skip_special_tokens: bool = True) -> IncrementalDecoder:
    return IncrementalDecoder(None, fake_decode, skip_special_tokens)


DECODERS = pytest.mark.parametrize("make", [table_decoder, fallback_decoder], ids=["table", "fallback"])


# --- IncrementalDecoder ------------------------------------------------------------------------


@DECODERS
def test_two_byte_character_over_two_tokens_comes_out_whole(make) -> None:
    decoder = make()
    assert decoder.feed(ids("H", "ello", " caf")) == "Hello caf"
    assert decoder.feed(ids("C3")) == ""  # never half a character
    assert decoder.feed(ids("A9")) == "é"
    assert decoder.flush() == ""


@DECODERS
def test_emoji_over_four_tokens_comes_out_once_complete(make) -> None:
    decoder = make()
    assert decoder.feed(ids("H")) == "H"
    outputs = [decoder.feed([token]) for token in EMOJI]
    assert outputs == ["", "", "", "🥐"]
    assert decoder.feed(ids("ello")) == "ello"


@DECODERS
def test_every_split_of_a_token_sequence_gives_the_same_text(make) -> None:
    sequence = ids("H", "C3", "A9", "ello") + EMOJI + ids(" caf", "e-acute") + EMOJI
    expected = "Hé" + "ello🥐 café🥐"
    rng = random.Random(7)
    for _ in range(50):
        decoder = make()
        pieces, at = [], 0
        while at < len(sequence):
            size = rng.randint(1, 3)
            piece = decoder.feed(sequence[at : at + size])
            assert "\ufffd" not in piece
            pieces.append(piece)
            at += size
        assert "".join(pieces) + decoder.flush() == expected


@DECODERS
def test_special_tokens_skipped(make) -> None:
    decoder = make(skip_special_tokens=True)
    assert decoder.feed(ids("H", "<|im_end|>")) == "H"
    assert decoder.feed(ids("<tool>", "ello")) == "<tool>ello"


@DECODERS
def test_special_tokens_kept(make) -> None:
    decoder = make(skip_special_tokens=False)
    assert decoder.feed(ids("H", "<|im_end|>")) == "H<|im_end|>"
    assert decoder.feed(ids("ello")) == "ello"


def test_table_path_ignores_ids_outside_the_table() -> None:
    decoder = table_decoder()
    assert decoder.feed([IDS["H"], len(TOKENS) + 5, -1, IDS["ello"]]) == "Hello"


@DECODERS
def test_an_unfinished_character_at_the_end_is_dropped(make) -> None:
    """max_tokens can cut a character between its bytes: the text ends before it (as vLLM's
    detokenizers end it), never with U+FFFD; found on SmolLM2 (tests/e2e/test_real_model.py)."""
    decoder = make()
    assert decoder.feed(ids("ello")) == "ello"
    text = decoder.feed(ids("H", "F0", "9F"))
    assert text in ("H", "")  # the fallback may hold back the whole window
    assert text + decoder.flush() == "H"
    assert decoder.flush() == ""


@DECODERS
def test_invalid_bytes_inside_the_text_stay_visible(make) -> None:
    """Only an unfinished character at the very end is dropped: bytes that can never be UTF-8
    (a lead byte followed by a new character) still show as U+FFFD."""
    decoder = make()
    text = decoder.feed(ids("C3", "H", "ello"))
    assert text + decoder.flush() == "\ufffdHello"


def test_fallback_keeps_text_that_depends_on_the_previous_token() -> None:
    """SentencePiece drops the space of a leading "▁" only at the start of a text: the windowed
    decode must still put the space between words."""
    pieces = {0: "▁Hello", 1: "▁world", 2: "!"}

    def sentencepiece_decode(token_ids: Sequence[int], skip_special_tokens: bool) -> str:
        return "".join(pieces[t] for t in token_ids).replace("▁", " ").removeprefix(" ")

    decoder = IncrementalDecoder(None, sentencepiece_decode)
    assert [decoder.feed([t]) for t in (0, 1, 2)] == ["Hello", " world", "!"]


# --- StopMatcher ---------------------------------------------------------------------------------


def test_stop_string_split_over_many_chunks() -> None:
    matcher = StopMatcher(["STOP"])
    assert matcher.push("ab") == "ab"
    assert matcher.push("cS") == "c"  # "S" could start "STOP": held back
    assert matcher.push("T") == ""
    assert matcher.push("O") == ""
    assert not matcher.stopped
    assert matcher.push("P and more") == ""
    assert matcher.stopped


def test_stop_string_included_when_asked() -> None:
    matcher = StopMatcher(["STOP"], include_stop=True)
    assert matcher.push("abS") == "ab"
    assert matcher.push("TOP and more") == "STOP"
    assert matcher.stopped


def test_stop_inside_one_chunk_cuts_the_rest() -> None:
    assert StopMatcher(["\n\n"]).push("one\n\ntwo") == "one"
    assert StopMatcher(["\n\n"], include_stop=True).push("one\n\ntwo") == "one\n\n"


def test_earliest_stop_string_wins() -> None:
    matcher = StopMatcher(["END", "STOP"])
    assert matcher.push("aST") == "a"
    assert matcher.push("OP then END") == ""  # STOP starts before END
    assert matcher.stopped

    matcher = StopMatcher(["world", "lo w"], include_stop=True)
    assert matcher.push("hello world") == "hello w"


def test_partial_match_that_is_not_a_stop_is_released() -> None:
    matcher = StopMatcher(["STOP"])
    assert matcher.push("xST") == "x"
    assert matcher.push("AR") == "STAR"
    assert matcher.push("STO") == ""
    assert matcher.push("OL") == "STOOL"
    assert not matcher.stopped


def test_pending_partial_match_is_released_by_flush() -> None:
    matcher = StopMatcher(["STOP"])
    assert matcher.push("xSTO") == "x"
    assert matcher.flush() == "STO"
    assert matcher.flush() == ""


def test_only_a_possible_stop_prefix_is_held_back() -> None:
    matcher = StopMatcher(["\n\n", "Observation:"])
    assert matcher.push("abc\n") == "abc"
    assert matcher.push("x Obs") == "\nx "
    assert matcher.push("ervatio") == ""
    assert matcher.push("ns") == "Observations"


def test_nothing_after_a_stop() -> None:
    matcher = StopMatcher(["STOP"])
    assert matcher.push("aSTOPb") == "a"
    assert matcher.push("more STOP text") == ""
    assert matcher.flush() == ""
    assert matcher.stopped


def test_without_stop_strings_text_passes_through() -> None:
    matcher = StopMatcher([])
    assert matcher.push("abc") == "abc"
    assert matcher.push("") == ""
    assert matcher.flush() == ""
    assert StopMatcher([""]).push("a") == "a"  # empty stop strings never match


@pytest.mark.parametrize("include_stop", [False, True])
def test_random_chunkings_cut_at_the_first_stop(include_stop: bool) -> None:
    text = "Pip counted the boats; STO STOP! then END and more STOP"
    stops = ["END", "STOP!", "boats;x"]
    expected = "Pip counted the boats; STO " + ("STOP!" if include_stop else "")
    rng = random.Random(11)
    for _ in range(200):
        matcher = StopMatcher(stops, include_stop)
        out, at = [], 0
        while at < len(text):
            size = rng.randint(0, 6)
            out.append(matcher.push(text[at : at + size]))
            at += size
        assert "".join(out) + matcher.flush() == expected
        assert matcher.stopped
