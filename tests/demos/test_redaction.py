"""demos/redaction: the e-mail scanner (against the regular expression, every split of a text,
minimal hold-back) and the calculator through the real graph runner."""

from __future__ import annotations

import asyncio
import itertools
import json
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import graphs.stock
from calculators.packets import TextChunk, TextDelta, TokenLogprob
from graphs.errors import GraphConfigError
from graphs.pbtxt import load_graph
from graphs.testing import run_calculator
from graphs.validate import validate
from tests.demos.demo_modules import DEMOS, load_demo

demo = load_demo("redaction", "redaction.py", "EmailRedactionCalculator")
EmailRedactor = demo.EmailRedactor
redact = demo.redact
ANSWER = "Write to help@example.com or to sales@ovserve.dev today."
REDACTED = "Write to [email] or to [email] today."

# Continuations that decide a held text either way: end now, end the run, complete an address
# after a local part or a partial domain, or make the domain run too long to be one.
WITNESSES = ("", " ", "@ab.cd ", ".cd ", "cd ", "d ", "ab.cd ", "x" * 300 + " ")

# Texts made of the pieces addresses are made of (and what breaks them).
PIECES = ("help", "@", "example", ".", "com", " ", "a", "b1", "-", "_", "+", "x", "co", "..", "@@", "é", ",", "dev", "1")
texts = st.lists(st.sampled_from(PIECES), max_size=14).map("".join) | st.text(alphabet="ab1.-_@ xé", max_size=24)

TRICKY = (
    ANSWER,
    "a@b.co",
    "a@b.com.",
    "a@b.com.x1",
    "x@y@c.com",
    "a@b.com_foo@c.org",
    "a@b..c.de",
    "a@.b.cd",
    "@a@bc.de",
    "mail a.b@c-d.ef, ok",
    "josé@x.com",
    "a@1.1",
    "a" * 70 + "@b.cd",
    "a" * 64 + "@b.cd",
    "b@" + "c." * 130 + "de",
    "b@" + "c." * 120 + "de",
    "b@" + "c" * 251 + ".de",
    "b@" + "c" * 250 + "-1.de x",
    "b@" + "c" * 252 + ".d",
)


def stream(text: str, cuts: list[int]) -> tuple[str, list[tuple[str, str, str]]]:
    """Push `text` cut at `cuts`; the output, and after each piece (text so far, output so far, held)."""
    redactor = EmailRedactor()
    out, steps, previous = "", [], 0
    for cut in [*sorted(set(cuts)), len(text)]:
        out += redactor.push(text[previous:cut])
        previous = cut
        steps.append((text[:cut], out, redactor.held))
    out += redactor.push("", final=True)
    assert redactor.held == ""
    return out, steps


def check_minimal(seen: str, out: str, held: str) -> None:
    """Nothing emitted could change; the held text's first character could."""
    for more in WITNESSES:
        assert redact(seen + more).startswith(out), (seen, more, out)
    if held:
        assert seen.endswith(held)
        assert any(not redact(seen + more).startswith(out + held[0]) for more in WITNESSES), (
            f"held {held!r} after {seen!r} though no continuation changes it"
        )


@pytest.mark.parametrize("text", TRICKY)
def test_scanner_agrees_with_the_regular_expression(text: str) -> None:
    assert redact(text) == demo.ADDRESS.sub("[email]", text)


def test_the_trained_answer() -> None:
    assert redact(ANSWER) == REDACTED
    assert redact(ANSWER, mask="<redacted>") == "Write to <redacted> or to <redacted> today."


@given(texts)
@settings(max_examples=400, deadline=None)
def test_scanner_agrees_with_the_regular_expression_everywhere(text: str) -> None:
    assert redact(text) == demo.ADDRESS.sub("[email]", text)


@pytest.mark.parametrize("text", [t for t in TRICKY if len(t) <= 12])
def test_every_split_of_short_texts(text: str) -> None:
    expected = redact(text)
    for count in range(len(text)):
        for cuts in itertools.combinations(range(1, len(text)), count):
            out, steps = stream(text, list(cuts))
            assert out == expected, cuts
            for seen, so_far, held in steps:
                check_minimal(seen, so_far, held)


@given(texts, st.lists(st.integers(min_value=0, max_value=30), max_size=10))
@settings(max_examples=400, deadline=None)
def test_any_split_gives_the_whole_text_redaction_holding_back_only_the_undecided(text: str, cuts: list[int]) -> None:
    out, steps = stream(text, [c for c in cuts if c <= len(text)])
    assert out == redact(text)
    for seen, so_far, held in steps:
        check_minimal(seen, so_far, held)


@pytest.mark.parametrize("text", [t for t in TRICKY if len(t) > 12])
def test_character_by_character_long_texts(text: str) -> None:
    out, steps = stream(text, list(range(1, len(text))))
    assert out == redact(text)
    for seen, so_far, held in steps:
        check_minimal(seen, so_far, held)


def test_what_is_held_back_while_the_answer_streams() -> None:
    redactor = EmailRedactor()
    assert redactor.push("Write to help") == "Write to "
    assert redactor.held == "help"  # could be a local part
    assert redactor.push("@example.com") == ""
    assert redactor.held == "help@example.com"  # `.org`, `m` or `1` may follow
    assert redactor.push(" or") == "[email] "
    assert redactor.push(" to sales@ovserve.dev") == "or to "
    assert redactor.push(" today.") == "[email] "
    assert redactor.held == "today."  # `today.@x.io` would be an address
    assert redactor.push("", final=True) == "today."


def test_text_that_cannot_become_an_address_is_not_held() -> None:
    redactor = EmailRedactor()
    assert redactor.push("a" * 65) == "a" * 65  # longer than any local part
    assert redactor.push("@b.cd") == "@"  # `b.cd` follows `@`: it may be a local part
    assert redactor.push(" x@.y") == "b.cd x@"  # `.y` can never start a domain: `x` is out at once
    assert redactor.held == ".y"  # but `.y@ab.cd` would be an address
    assert redactor.push("@ab.cd") == ""
    assert redactor.push(" ") == "[email] "


# -- the calculator, through the real graph runner ------------------------------------------


def token_texts(tokenizer_dir: Path, text: str) -> list[str]:
    """`text` as the tiny model's tokenizer splits it (each token's own text)."""
    from tokenizers import Tokenizer

    tokenizer = Tokenizer.from_file(str(tokenizer_dir / "tokenizer.json"))
    ids = tokenizer.encode(text, add_special_tokens=False).ids
    pieces, previous = [], ""
    for n in range(1, len(ids) + 1):
        decoded = tokenizer.decode(ids[:n])
        pieces.append(decoded[len(previous) :])
        previous = decoded
    assert "".join(pieces) == text
    return pieces


def run(chunks: list[TextChunk], **options: str) -> list[TextChunk]:
    outputs = asyncio.run(run_calculator(demo.EmailRedactionCalculator, {"TEXT": chunks}, options=options))
    return [packet.value for packet in outputs["TEXT"]]


def per_token(pieces: list[str], index: int = 0, logprobs: bool = False) -> list[TextDelta]:
    deltas = []
    for number, piece in enumerate(pieces):
        entries = (TokenLogprob(piece, -0.5 - number, piece.encode()),) if logprobs else None
        deltas.append(TextDelta(index, piece, 1, None, entries))
    end_entries = (TokenLogprob("<|im_end|>", -0.01, b"<|im_end|>"),) if logprobs else None
    deltas.append(TextDelta(index, "", 1, "stop", end_entries))  # the end token: no text
    return deltas


def test_real_token_stream_is_redacted_with_usage_and_finish_kept(tiny_model_dir: Path) -> None:
    pieces = token_texts(tiny_model_dir, ANSWER)
    assert len(pieces) > 10
    chunks = [TextChunk((delta,), prompt_tokens=17) for delta in per_token(pieces)]
    out = run(chunks)
    assert len(out) == len(chunks)  # one chunk out per chunk in
    deltas = [chunk.deltas[0] for chunk in out]
    assert "".join(d.text for d in deltas) == REDACTED
    assert sum(d.token_count for d in deltas) == len(pieces) + 1
    assert [d.finish_reason for d in deltas] == [None] * len(pieces) + ["stop"]
    assert all(chunk.prompt_tokens == 17 for chunk in out)
    # each step released exactly what the scanner decides: only the undecided tail is held back
    redactor, seen, so_far = EmailRedactor(), "", ""
    for piece, delta in zip(pieces, deltas, strict=False):
        seen += piece
        assert delta.text == redactor.push(piece)
        so_far += delta.text
        check_minimal(seen, so_far, redactor.held)


def test_choices_are_redacted_independently() -> None:
    a = per_token(["mail ", "a@b", ".cd", " now"], index=0)
    b = per_token(["x", "@y", ".zz", "!"], index=1)
    chunks = [TextChunk((da, db), 5) for da, db in zip(a, b, strict=True)]
    out = run(chunks)
    by_index: dict[int, str] = {0: "", 1: ""}
    counts: dict[int, int] = {0: 0, 1: 0}
    for chunk in out:
        for delta in chunk.deltas:
            by_index[delta.index] += delta.text
            counts[delta.index] += delta.token_count
    assert by_index == {0: "mail [email] now", 1: "[email]!"}
    assert counts == {0: 5, 1: 5}


def test_tokens_go_out_with_their_text_and_addresses_never_leak_through_logprobs(tiny_model_dir: Path) -> None:
    pieces = token_texts(tiny_model_dir, ANSWER)
    out = run([TextChunk((delta,), 3) for delta in per_token(pieces, logprobs=True)])
    deltas = [chunk.deltas[0] for chunk in out]
    entries = [entry for d in deltas for entry in (d.logprobs or ())]
    assert [e.logprob for e in entries] == [-0.5 - n for n in range(len(pieces))] + [-0.01]  # each once, in order
    for d in deltas:  # a delta reports the tokens whose text it completes
        assert len(d.logprobs or ()) == d.token_count
    shown = "".join(e.token for e in entries)
    assert "help" not in shown and "example" not in shown and "sales" not in shown and "ovserve" not in shown
    assert shown.startswith("Write to") and "today." in shown
    assert all(e.raw == e.token.encode() for e in entries)


def test_mask_option_and_its_check() -> None:
    out = run([TextChunk(tuple(per_token(["to a@b.cd."])[:1]) + (TextDelta(0, "", 1, "stop"),), 1)], mask="***")
    assert "".join(d.text for c in out for d in c.deltas) == "to ***."
    with pytest.raises(GraphConfigError, match="mask"):
        run([TextChunk((TextDelta(0, "x", 1, "stop"),), 1)], mask="REDACTED")


def test_the_shipped_graph_is_the_stock_graph_with_redaction_before_the_response() -> None:
    graph = validate(load_graph(DEMOS / "redaction" / "graph.pbtxt"))
    stock = load_graph(Path(graphs.stock.__file__).parent / "llm.pbtxt")
    names = [n.name for n in stock.nodes]
    assert [n.name for n in graph.config.nodes] == [*names[:-1], "redaction", names[-1]]
    readers = {n.name: [ref.name for ref in n.input_streams if ref.tag == "TEXT"] for n in graph.config.nodes}
    assert readers["redaction"] == ["text"] and readers["response"] == ["redacted"]
    config = json.loads((DEMOS / "redaction" / "config.json").read_text())
    assert config["calculator_modules"] == ["redaction"]
