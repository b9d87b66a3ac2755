"""OpenAIResponseCalculator: text per step -> one OpenAI answer object, or its chunks per step.

It emits structured values (calculators.packets.ResponseBody / StreamChunks); each front end
encodes them (serving.openai_routes: JSON and SSE; serving.kserve: tensors and text pieces)."""

from __future__ import annotations

from typing import Any

from calculators.llm.output_shaper import output_shaper
from calculators.llm.resource import LLMResource
from calculators.openai import shapes
from calculators.openai.choice import ChoiceOutput, ForcedToolCalls, PlainText, TextShaper
from calculators.openai.protocol import ChatCompletionRequest, CompletionRequest
from calculators.packets import GenerationRequest, ResponseBody, StreamChunks, TextChunk, TextDelta
from graphs import Calculator, Contract, InputSet, default_registry


def text_shaper(params: ChatCompletionRequest | CompletionRequest, llm: LLMResource | None) -> TextShaper:
    """How generated text becomes a message: plain, forced tool calls (JSON), or parsed."""
    if not isinstance(params, ChatCompletionRequest):
        return PlainText()
    choice = params.tool_choice
    forced = bool(params.tools) and choice is not None and choice not in ("none", "auto")
    if forced and (llm is None or llm.options.tool_parser is None):  # held to bare JSON: see calculators.llm.guided
        return ForcedToolCalls(None if isinstance(choice, str) else choice.function.name)  # type: ignore[union-attr]
    if llm is not None:
        parse_tools = bool(params.tools) and choice != "none"
        shaper = output_shaper(
            llm.options, llm.tokenizer, parse_tools, params.chat_template_kwargs or {}, params.parallel_tool_calls is False
        )
        if shaper is not None:
            return shaper
    return PlainText()


@default_registry.calculator()
class OpenAIResponseCalculator(Calculator):
    """OpenAI's exact shapes: `chat.completion` / `text_completion` bodies, or chunks where the
    first of each choice carries the role, the last its `finish_reason`, then (with
    `stream_options.include_usage`) a `choices: []` usage chunk, then `data: [DONE]`.
    Nothing is sent before the first token: errors up to then keep their HTTP status. With the
    optional `LLM` side packet, the servable's tool and reasoning parsers shape chat messages.

    Example node:
        node { calculator: "OpenAIResponseCalculator" input_stream: "REQUEST:request"
               input_stream: "TEXT:text" input_side_packet: "LLM:llm"
               output_stream: "HTTP_RESPONSE_PAYLOAD:output" }
    """

    inline = True  # pure computation per packet: runs in the sender's turn
    contract = Contract.of(inputs=("REQUEST", "TEXT"), outputs=("HTTP_RESPONSE_PAYLOAD",), side_packets=("LLM",), optional=("LLM",))

    _request: GenerationRequest

    async def open(self) -> None:
        self._choices: dict[int, ChoiceOutput] = {}
        self._completion_tokens = 0
        self._prompt_tokens = 0
        self._envelope_of_chunks: dict[str, Any] | None = None  # StreamChunks.envelope: one per request

    def _choice(self, index: int) -> ChoiceOutput:
        choice = self._choices.get(index)
        if choice is None:
            params = self._request.params
            llm: LLMResource | None = self.ctx.side_packets.get("LLM")
            echo = ""
            if isinstance(params, CompletionRequest) and params.echo:
                echo = params.prompt_text() or ""
                ids = params.prompt_token_ids()
                if ids is not None and llm is not None:
                    echo = llm.tokenizer.decode(ids, skip_special_tokens=False)
            shaper = text_shaper(params, llm)
            choice = self._choices[index] = ChoiceOutput(index, shaper, echo)
        return choice

    async def process(self, inputs: InputSet) -> None:
        if "REQUEST" in inputs:
            self._request = inputs["REQUEST"].value
        chunk: TextChunk | None = inputs.value("TEXT")
        if chunk is None:
            return
        self._prompt_tokens = chunk.prompt_tokens
        chunks: list[dict[str, Any]] = []
        for delta in chunk.deltas:
            self._completion_tokens += delta.token_count
            choice = self._choice(delta.index)
            first = not choice.started
            choice.started = True
            shaped = choice.add(delta)
            if self._request.stream:
                chunks += self._stream_chunks(choice, delta, shaped, first)
        done = len(self._choices) == self._request.params.n and all(c.finish_reason for c in self._choices.values())
        if self._request.stream:
            if chunks or done:
                if self._envelope_of_chunks is None:
                    self._envelope_of_chunks = self._envelope([])
                usage = shapes.usage(self._prompt_tokens, self._completion_tokens) if done and self._request.params.include_usage else None
                self.ctx.emit("HTTP_RESPONSE_PAYLOAD", StreamChunks(self._envelope_of_chunks, tuple(chunks), usage, done))
        elif done:
            self.ctx.emit("HTTP_RESPONSE_PAYLOAD", ResponseBody(self._unary_body()))

    # -- shapes -------------------------------------------------------------------------
    @property
    def _chat(self) -> bool:
        return self._request.endpoint == "chat/completions"

    def _envelope(self, choices: list[dict[str, Any]]) -> dict[str, Any]:
        r = self._request
        obj = ("chat.completion" if self._chat else "text_completion") + (".chunk" if r.stream and self._chat else "")
        body: dict[str, Any] = {
            "id": r.id,
            "object": obj,
            "created": r.created,
            "model": r.params.model,
            "system_fingerprint": shapes.SYSTEM_FINGERPRINT,
            "choices": choices,
        }
        if r.stream and r.params.include_usage:
            body["usage"] = None
        return body

    def _logprobs(self, entries: list[Any], first_offset: int) -> dict[str, Any] | None:
        params = self._request.params
        if not params.wants_logprobs:
            return None
        if isinstance(params, ChatCompletionRequest):
            return shapes.chat_logprobs(entries, params.top_logprobs or 0)
        return shapes.completion_logprobs(entries, first_offset, params.logprobs or 0)

    def _unary_body(self) -> dict[str, Any]:
        choices = []
        for index in range(self._request.params.n):
            choice = self._choices.get(index) or ChoiceOutput(index, PlainText())
            body: dict[str, Any] = {"index": index}
            if self._chat:
                body["message"] = choice.message()
            else:
                body["text"] = choice.text
            body["logprobs"] = self._logprobs(choice.logprobs, 0 if choice.prompt_logprobs else len(choice.prefix))
            body["finish_reason"] = choice.finish_reason or "stop"
            choices.append(body)
        envelope = self._envelope(choices)
        envelope["usage"] = shapes.usage(self._prompt_tokens, self._completion_tokens)
        return envelope

    def _stream_chunks(self, choice: ChoiceOutput, delta: TextDelta, shaped: list[dict[str, Any]], first: bool) -> list[dict[str, Any]]:
        """The choice objects of one choice's step, one chunk each."""
        index = choice.index
        logprobs = None
        if delta.logprobs or delta.prompt_logprobs:  # most requests: nothing to build per token
            entries = [*(delta.prompt_logprobs or ()), *(delta.logprobs or ())]
            if delta.prompt_logprobs and not choice.echo_offsets:  # echoed prompt tokens count from 0
                choice.offset, choice.echo_offsets = 0, True
            logprobs = self._logprobs(entries, choice.offset)
            choice.offset += sum(len(entry.token) for entry in entries)
        if not self._chat:
            text = choice.prefix + delta.text if first else delta.text  # echo: the prompt comes first
            if not (text or delta.finish_reason is not None or logprobs is not None):
                return []
            return [{"index": index, "text": text, "logprobs": logprobs, "finish_reason": delta.finish_reason}]
        bodies = []
        if first:
            bodies.append({"index": index, "delta": {"role": "assistant", "content": ""}, "logprobs": None, "finish_reason": None})
        for number, part in enumerate(shaped):
            bodies.append({"index": index, "delta": part, "logprobs": logprobs if number == 0 else None, "finish_reason": None})
        if not shaped and logprobs is not None:  # tokens whose text is held back still report
            bodies.append({"index": index, "delta": {}, "logprobs": logprobs, "finish_reason": None})
        if delta.finish_reason is not None:
            bodies.append({"index": index, "delta": {}, "logprobs": None, "finish_reason": choice.finish_reason})
        return bodies
