"""DetokenizerCalculator: new token ids per step -> new text per step, stop strings applied."""

from __future__ import annotations

from collections.abc import Sequence

from calculators.llm.resource import LLMResource
from calculators.packets import Generation, GenerationRequest, TextChunk, TextDelta, TokenLogprob
from calculators.text_stream import IncrementalDecoder, StopMatcher
from graphs import Calculator, Contract, InputSet, Options, default_registry


class DetokenizerOptions(Options):
    skip_special_tokens: bool = True


class _Choice:
    __slots__ = ("decoder", "stops", "finished", "prompt_started")

    def __init__(self, decoder: IncrementalDecoder, stops: StopMatcher) -> None:
        self.decoder = decoder
        self.stops = stops
        self.finished = False
        self.prompt_started = False  # echo with logprobs: the prompt's first token went out


@default_registry.calculator()
class DetokenizerCalculator(Calculator):
    """Incremental and UTF-8 safe (never half a character); holds back only text that could
    still become a stop string. When every choice has hit a stop string it sends a packet on
    `STOP` (a back edge into the LLM node) so the engine stops generating.

    Example node:
        node { calculator: "DetokenizerCalculator" input_stream: "REQUEST:request"
               input_stream: "GENERATION:generation" output_stream: "TEXT:text"
               output_stream: "STOP:stop" input_side_packet: "LLM:llm" }
    """

    inline = True  # pure computation per packet: runs in the sender's turn
    contract = Contract.of(
        inputs=("REQUEST", "GENERATION"),
        outputs=("TEXT", "STOP"),
        side_packets=("LLM",),
        optional=("STOP",),
        options=DetokenizerOptions,
    )

    _choices: dict[int, _Choice]
    _request: GenerationRequest | None = None
    _stopped = False

    async def open(self) -> None:
        self._choices = {}

    def _choice(self, index: int) -> _Choice:
        choice = self._choices.get(index)
        if choice is None:
            assert self._request is not None
            llm: LLMResource = self.ctx.side_packets["LLM"]
            params = self._request.params
            # The node option is the default; a request's skip_special_tokens: false wins.
            skip = self.ctx.options.skip_special_tokens and params.skip_special_tokens
            decoder = IncrementalDecoder(llm.tokenizer.token_bytes, llm.tokenizer.decode, skip)
            choice = self._choices[index] = _Choice(decoder, StopMatcher(params.stop_strings(), params.include_stop_str_in_output))
        return choice

    async def process(self, inputs: InputSet) -> None:
        if "REQUEST" in inputs:
            self._request = inputs["REQUEST"].value
        generation: Generation | None = inputs.value("GENERATION")
        if generation is None:
            return
        deltas: list[TextDelta] = []
        for delta in generation.deltas:
            choice = self._choice(delta.index)
            if choice.finished:
                continue
            text, used = self._decode(choice, delta.token_ids)
            finish = delta.finish_reason
            if choice.stops.stopped:
                finish = "stop"
            elif finish is not None:
                text += choice.stops.push(choice.decoder.flush()) + choice.stops.flush()
                if choice.stops.stopped:
                    finish = "stop"
            choice.finished = finish is not None
            logprobs = self._logprobs(delta.token_ids[:used], delta.logprobs) if delta.logprobs is not None else None
            prompt_logprobs = None
            if delta.prompt_token_ids and delta.prompt_logprobs is not None:
                values: list[float | None] = list(delta.prompt_logprobs)
                if not choice.prompt_started:  # the prompt's first token has nothing before it: null
                    values[0] = None
                    choice.prompt_started = True
                prompt_logprobs = self._logprobs(delta.prompt_token_ids, values)
            deltas.append(TextDelta(delta.index, text, used, finish, logprobs, prompt_logprobs))
        if deltas:
            self.ctx.emit("TEXT", TextChunk(tuple(deltas), generation.prompt_tokens), inputs.timestamp)
        self._maybe_stop_engine()

    @staticmethod
    def _decode(choice: _Choice, token_ids: list[int]) -> tuple[str, int]:
        """New text, and how many tokens it took (tokens after a stop string are not counted)."""
        if not choice.stops.active:
            return choice.decoder.feed(token_ids), len(token_ids)
        parts = []
        for used, token_id in enumerate(token_ids, 1):
            parts.append(choice.stops.push(choice.decoder.feed((token_id,))))
            if choice.stops.stopped:
                return "".join(parts), used
        return "".join(parts), len(token_ids)

    def _logprobs(self, token_ids: list[int], logprobs: Sequence[float | None]) -> tuple[TokenLogprob, ...]:
        """Each token's own text and bytes beside its log-probability (OpenAI's logprobs shape)."""
        llm: LLMResource = self.ctx.side_packets["LLM"]
        table = llm.tokenizer.token_bytes
        entries = []
        for token_id, logprob in zip(token_ids, logprobs, strict=False):
            if table is not None and 0 <= token_id < len(table.table):
                raw = table.table[token_id]
            else:
                raw = llm.tokenizer.decode([token_id], skip_special_tokens=False).encode()
            entries.append(TokenLogprob(raw.decode("utf-8", "replace"), logprob, raw))
        return tuple(entries)

    def _maybe_stop_engine(self) -> None:
        assert self._request is not None
        n = self._request.params.n
        all_stopped = len(self._choices) == n and all(c.finished for c in self._choices.values())
        some_by_string = any(c.stops.stopped for c in self._choices.values())
        if all_stopped and some_by_string and not self._stopped:
            self._stopped = True
            self.ctx.emit("STOP", True)
