"""EmailRedactionCalculator: masks e-mail addresses in the streamed text, holding back only what
could still turn out to be (part of) an address.

A user calculator (demo): loaded by `"calculator_modules": ["redaction"]` in config.json, and
placed in the graph between the detokenizer and the response:

    node { name: "redaction" calculator: "EmailRedactionCalculator"
           input_stream: "TEXT:text" output_stream: "TEXT:redacted" }

What counts as an address (ASCII only), exactly what `ADDRESS` below matches:
- the local part is a whole run of 1 to 64 of `A-Z a-z 0-9 . _ % + -`, not preceded by such a
  character, followed by `@`;
- the domain is the run of `A-Z a-z 0-9 . -` after the `@` (at most 255 characters); the address
  takes its longest prefix of whole labels (`A-Z a-z 0-9 -`) joined by single dots, at least two
  labels, the last one letters only (2 or more): `help@example.com.` masks `help@example.com`.

How the stream is cut (per choice): text outside any run of address characters (`A-Z a-z 0-9
. _ % + - @`) is final, so the hold-back is at most the last such run, and inside it only the
part still undecided: a trailing run that could be a local part (`Write to help` holds `help`),
or a local part whose domain is still growing (`help@example.co` holds it all: `m`, `1` or
`.org` may follow). Everything else goes out at once: a run longer than 64 without `@`, the rest
of a run after an address, a local part whose domain can no longer become one (`a@.x`, `a@b..`).
At the end of the choice (`finish_reason`) the held text is decided and flushed.

Each delta's `token_count` and `logprobs` go out with the chunk that releases the last character
of its text (so usage totals are unchanged and every token is reported once, in order). A token
whose text overlaps a masked address is reported with an empty `token` and `bytes` (its
log-probability is kept): the address never leaks through `logprobs`. An echoed prompt
(completions `echo`) is not redacted: the response calculator takes it from the request.
"""

from __future__ import annotations

import re
from collections import deque
from dataclasses import dataclass, field

from pydantic import field_validator

from calculators.packets import TextChunk, TextDelta, TokenLogprob
from graphs import Calculator, Contract, InputSet, Options, default_registry

LOCAL_CHARS = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._%+-")
DOMAIN_CHARS = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789.-")
ADDRESS_CHARS = LOCAL_CHARS | {"@"}
MAX_LOCAL = 64
MAX_DOMAIN = 255

# The same definition as one regular expression: `redact()` below is the scanner's batch form,
# and the tests check both agree.
ADDRESS = re.compile(
    r"(?<![A-Za-z0-9._%+-])[A-Za-z0-9._%+-]{1,64}@"
    r"(?=[A-Za-z0-9.-]{1,255}(?![A-Za-z0-9.-]))"
    r"(?:[A-Za-z0-9-]+\.)+[A-Za-z]{2,}(?![A-Za-z0-9-])"
)

DEFAULT_MASK = "[email]"


def _run_end(text: str, start: int, chars: frozenset[str]) -> int:
    end = start
    while end < len(text) and text[end] in chars:
        end += 1
    return end


def _domain(text: str, start: int, final: bool) -> int | None:
    """The length of the address's domain starting at `text[start]` (0: there is none), or None
    while more text could still change that."""
    end = _run_end(text, start, DOMAIN_CHARS)
    if end - start > MAX_DOMAIN:
        return 0
    labels = text[start:end].split(".")
    best, offset, broken = 0, 0, False
    for number, label in enumerate(labels):
        if not label:  # an empty label ends the chain (the last one may still be written)
            broken = number < len(labels) - 1
            break
        offset += len(label)
        if number >= 1 and len(label) >= 2 and label.isalpha():
            best = offset  # two labels or more, the last of letters: an address up to here
        offset += 1  # the dot
    if end < len(text) or final:
        return best
    if best:
        return None  # an address if the run ends now, none if it grows past the limit
    if broken:
        return 0
    # No address yet: the fewest characters that would make one, within the limit?
    last = labels[-1]
    if len(labels) == 1:
        need = 3 if last else 4  # `.ab`, `a.bc`
    elif not last or last.isalpha():
        need = 2 - len(last)  # `ab` after the dot, `b` after one letter
    else:
        need = 3  # a label with a digit or `-` cannot end it: `.ab`
    return 0 if end - start + need > MAX_DOMAIN else None


class EmailRedactor:
    """One text stream: `push(text)` returns what is final now; `push("", final=True)` the rest.

    `spans` lists the masked addresses as [start, end) offsets in the raw text pushed so far.
    """

    def __init__(self, mask: str = DEFAULT_MASK) -> None:
        self.mask = mask
        self.spans: list[tuple[int, int]] = []
        self._pending = ""  # undecided raw text; always starts where an address may start
        self._base = 0  # raw offset of _pending
        self._available = True  # whether a local part may start at the next character

    @property
    def held(self) -> str:
        return self._pending

    @property
    def released(self) -> int:
        """Raw characters decided so far."""
        return self._base

    def push(self, text: str, final: bool = False) -> str:
        buf = self._pending + text
        out: list[str] = []
        pos, available = 0, self._available
        while pos < len(buf):
            char = buf[pos]
            if char not in LOCAL_CHARS:  # `@` or any other character: an address may start after it
                out.append(char)
                pos += 1
                available = True
                continue
            end = _run_end(buf, pos, LOCAL_CHARS)
            if not available or end - pos > MAX_LOCAL:
                out.append(buf[pos:end])  # not a local part, nor any of its continuation
                pos, available = end, False
                continue
            if end == len(buf) and not final:
                break  # may still be followed by `@`: hold it
            if end == len(buf) or buf[end] != "@":
                out.append(buf[pos:end])
                pos = end
                continue
            domain = _domain(buf, end + 1, final)
            if domain is None:
                break  # the domain is still being written: hold the local part and the rest
            if domain == 0:
                out.append(buf[pos:end])
                pos = end
                continue
            address_end = end + 1 + domain
            self.spans.append((self._base + pos, self._base + address_end))
            out.append(self.mask)
            pos, available = address_end, False
        self._pending = buf[pos:]
        self._base += pos
        self._available = available
        return "".join(out)


def redact(text: str, mask: str = DEFAULT_MASK) -> str:
    """The whole text at once: the same as pushing it in any pieces, then flushing."""
    return EmailRedactor(mask).push(text, final=True)


class EmailRedactionOptions(Options):
    # What replaces each address. It may not start with a character an address can start with
    # (or `@`), so a masked address is never mistaken for the start of the text it replaces.
    mask: str = DEFAULT_MASK

    @field_validator("mask")
    @classmethod
    def _mask_is_distinct(cls, mask: str) -> str:
        if not mask or mask[0] in ADDRESS_CHARS:
            raise ValueError("mask must be non-empty and not start with a letter, digit or one of . _ % + - @")
        return mask


@dataclass(slots=True)
class _Held:
    """A delta whose text is not all released yet: its tokens wait for the rest of it."""

    start: int  # raw offsets of its text
    end: int
    text: str
    token_count: int
    logprobs: tuple[TokenLogprob, ...] | None


@dataclass(slots=True)
class _Choice:
    redactor: EmailRedactor
    raw: int = 0  # raw characters received
    held: deque[_Held] = field(default_factory=deque)


@default_registry.calculator()
class EmailRedactionCalculator(Calculator):
    """Masks e-mail addresses in `TEXT` (TextChunk per step) and sends the result on `TEXT`,
    one output chunk per input chunk (same timestamp), per choice independently.

    Example node:
        node { calculator: "EmailRedactionCalculator" input_stream: "TEXT:text"
               output_stream: "TEXT:redacted"
               node_options { [type.googleapis.com/ovserve.EmailRedactionCalculatorOptions] { mask: "[email]" } } }
    """

    inline = True  # pure computation per packet: runs in the sender's turn
    contract = Contract.of(inputs=("TEXT",), outputs=("TEXT",), options=EmailRedactionOptions)

    async def open(self) -> None:
        self._choices: dict[int, _Choice] = {}

    async def process(self, inputs: InputSet) -> None:
        chunk: TextChunk = inputs["TEXT"].value
        deltas = tuple(self._redact(delta) for delta in chunk.deltas)
        self.ctx.emit("TEXT", TextChunk(deltas, chunk.prompt_tokens), inputs.timestamp)

    def _redact(self, delta: TextDelta) -> TextDelta:
        choice = self._choices.get(delta.index)
        if choice is None:
            choice = self._choices[delta.index] = _Choice(EmailRedactor(self.ctx.options.mask))
        start = choice.raw
        choice.raw += len(delta.text)
        choice.held.append(_Held(start, choice.raw, delta.text, delta.token_count, delta.logprobs))
        text = choice.redactor.push(delta.text, final=delta.finish_reason is not None)
        token_count = 0
        logprobs: list[TokenLogprob] | None = None
        released = choice.redactor.released
        while choice.held and choice.held[0].end <= released:
            held = choice.held.popleft()
            token_count += held.token_count
            if held.logprobs is not None:
                if logprobs is None:
                    logprobs = []
                logprobs.extend(self._scrub(held, choice.redactor.spans))
        spans = choice.redactor.spans
        if spans and choice.held:  # spans wholly before every held text can no longer matter
            keep_from = choice.held[0].start
            choice.redactor.spans = [span for span in spans if span[1] > keep_from]
        elif not choice.held:
            choice.redactor.spans = []
        return TextDelta(
            delta.index,
            text,
            token_count,
            delta.finish_reason,
            tuple(logprobs) if logprobs is not None else None,
            delta.prompt_logprobs,
        )

    @staticmethod
    def _scrub(held: _Held, spans: list[tuple[int, int]]) -> list[TokenLogprob]:
        """The delta's token entries, those overlapping a masked address with no text."""
        assert held.logprobs is not None
        entries = held.logprobs
        # Per token when the tokens' texts make up the delta's text; else the whole delta's span.
        per_token = "".join(entry.token for entry in entries) == held.text
        out, at = [], held.start
        for entry in entries:
            lo, hi = (at, at + len(entry.token)) if per_token else (held.start, held.end)
            at += len(entry.token)
            hidden = any(start < hi and lo < end if lo < hi else start < lo < end for start, end in spans)
            out.append(TokenLogprob("", entry.logprob, b"") if hidden else entry)
        return out
