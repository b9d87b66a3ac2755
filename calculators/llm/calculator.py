"""ContinuousBatchingLLMCalculator: prompt tokens in, one packet of new tokens per engine step out."""

from __future__ import annotations

import asyncio
import dataclasses
import functools

from calculators.llm.engine.base import NO_STRUCTURED_OUTPUT
from calculators.llm.engine.client import EngineClient, RequestStream, StepOutput
from calculators.llm.engine.protocol import Finish
from calculators.llm.guided import GRAMMAR_KEY, forced_tools
from calculators.llm.options import LLMOptions
from calculators.llm.resource import LLMResource, create_llm_resource
from calculators.llm.scorer import needs_scorer
from calculators.llm.telemetry import TELEMETRY, RequestRecord, RequestTelemetry, TelemetrySink
from calculators.packets import Generation, Prompt, TokenDelta
from graphs import Calculator, Contract, InputSet, default_registry

_FINISH = {Finish.NONE: None, Finish.STOP: "stop", Finish.LENGTH: "length"}


@default_registry.calculator()
class ContinuousBatchingLLMCalculator(Calculator):
    """Client of the engine worker process that owns the ContinuousBatchingPipeline.

    The `LLM` side packet (engine worker + tokenizer) is built once per servable from this
    node's options (OVMS's LLMCalculatorOptions fields). A packet on the `STOP` back edge
    (sent by the detokenizer when a stop string matched) ends the engine request; so does
    closing the run (client gone).

    Example node:
        node { calculator: "ContinuousBatchingLLMCalculator"
               input_stream: "TOKENS:prompt" input_stream: "STOP:stop"
               input_stream_info { tag_index: "STOP:0" back_edge: true }
               output_stream: "GENERATION:generation" input_side_packet: "LLM:llm"
               node_options { [type.googleapis.com/mediapipe.LLMCalculatorOptions] { models_path: "./" } } }
    """

    contract = Contract.of(
        inputs=("TOKENS", "STOP"),
        outputs=("GENERATION",),
        side_packets=("LLM",),
        optional=("STOP",),
        options=LLMOptions,
        providers={"LLM": create_llm_resource},
    )

    _stream: RequestStream | None = None
    _announced = False
    _prompt_tokens = 0
    _n = 1
    _record: RequestRecord | None = None  # metrics on: this request's timings and token counts
    _sink: TelemetrySink | None = None
    _engine: EngineClient

    async def open(self) -> None:
        # The request is being parsed and tokenized upstream: tell the worker it is coming.
        llm: LLMResource = self.ctx.side_packets["LLM"]
        llm.engine.expect()
        self._announced = True
        telemetry: RequestTelemetry | None = self.ctx.request.get(TELEMETRY)
        if telemetry is not None:
            self._record, self._sink, self._engine = RequestRecord(telemetry.arrived), telemetry.sink, llm.engine
            if llm.engine.observer is None:
                llm.engine.observe(functools.partial(telemetry.sink.engine_steps, llm.servable_name))

    async def process(self, inputs: InputSet) -> None:
        if "STOP" in inputs:
            if self._stream is not None:
                self._stream.cancel()
            return
        prompt: Prompt = inputs["TOKENS"].value
        llm: LLMResource = self.ctx.side_packets["LLM"]
        held_to = prompt.engine_config.get(GRAMMAR_KEY)
        if held_to is not None and not llm.engine.info.get(NO_STRUCTURED_OUTPUT):  # (else submit's 400)
            # Compiled on trial first (under a time limit, cached): the engine compiles it
            # inside a step, which every request of the servable waits for.
            param = "tools" if forced_tools(prompt.request.params) is not None else "response_format"
            await llm.grammar_vetter.vet(held_to, param)
        engine = llm.engine
        if prompt.engine_config.get("echo") and needs_scorer(engine.spec) and not engine.vision:  # (a vision engine refuses echo)
            # The main engine caches prefixes, so it has no log-probabilities for a cached
            # prompt: echo with logprobs runs on the servable's non-caching engine (scorer.py).
            engine.expect(False)
            self._announced = False
            engine = await llm.scorer.engine()
            if self._record is not None and self._sink is not None:  # metrics on: its steps count too
                self._engine = engine
                if engine.observer is None:
                    engine.observe(functools.partial(self._sink.engine_steps, llm.servable_name))
        self._announced = False  # the ADD itself settles the announcement
        self._stream = engine.submit(prompt.token_ids, prompt.engine_config, prompt.text, prompt.images)
        self._stream.prompt_tokens += prompt.image_tokens  # (a request stopped here keeps this count)
        self._prompt_tokens = self._stream.prompt_tokens
        if self._record is not None:
            self._record.prompt_tokens = self._prompt_tokens
        self._n = prompt.request.params.n
        # With echo, each sequence's first tokens from the engine are the prompt's own.
        self._echo_left = {i: len(prompt.token_ids) for i in range(self._n)} if prompt.engine_config.get("echo") else {}
        # Each step's tokens are emitted from the engine reader's turn (no task switch per step;
        # the inline detokenizer and response run right there); this node stays open until the
        # request ends.
        ended = self._stream.listen(self._on_step)
        self.ctx.spawn(self._until(ended))

    @staticmethod
    async def _until(ended: asyncio.Future[None]) -> None:
        await ended

    def _on_step(self, out: StepOutput) -> None:
        if out.finished and self._stream is not None:
            # A vision request's prompt length is the engine's (image tokens too), known at its end.
            self._prompt_tokens = self._stream.prompt_tokens
            if self._record is not None:
                self._record.prompt_tokens = self._prompt_tokens
        deltas = [self._delta(d.index, d.token_ids, _FINISH[d.finish], d.logprobs) for d in out.deltas]
        if out.finished:  # every choice gets a finish reason, even if its last read was empty
            seen = {d.index for d in deltas}
            deltas = [d if d.finish_reason else dataclasses.replace(d, finish_reason="stop") for d in deltas]
            deltas += [TokenDelta(i, [], "stop") for i in range(self._n) if i not in seen]
        if self._record is not None:  # metrics on
            if out.finished and deltas:
                self._record.finish_reason = deltas[0].finish_reason or "stop"
            count = 0
            for d in deltas:
                count += len(d.token_ids)
            if count:
                self._record.tokens(count, self._engine.received_at)
        if deltas:
            self.ctx.emit("GENERATION", Generation(tuple(deltas), self._prompt_tokens))

    def _delta(self, index: int, token_ids: list[int], finish: str | None, logprobs: list[float] | None) -> TokenDelta:
        left = self._echo_left.get(index, 0)
        if not left:
            return TokenDelta(index, token_ids, finish, logprobs)
        cut = min(left, len(token_ids))
        self._echo_left[index] = left - cut
        prompt_logprobs = logprobs[:cut] if logprobs is not None else None
        rest_logprobs = logprobs[cut:] if logprobs is not None else None
        return TokenDelta(index, token_ids[cut:], finish, rest_logprobs, token_ids[:cut], prompt_logprobs)

    async def close(self) -> None:
        if self._announced:  # the request never reached the engine (bad input, client gone)
            self.ctx.side_packets["LLM"].engine.expect(False)
        if self._stream is not None:
            self._stream.cancel()
        record, self._record = self._record, None
        if record is not None and record.first_token and self._sink is not None:  # its prompt was processed
            self._sink.request_done(self.ctx.side_packets["LLM"].servable_name, record)
