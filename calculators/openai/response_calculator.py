"""OpenAIResponseCalculator: text per step -> one OpenAI JSON body, or SSE events per step."""

from __future__ import annotations

from typing import Any

import msgspec

from calculators.packets import GenerationRequest, HttpResponsePayload, TextChunk
from graphs import Calculator, Contract, InputSet, default_registry

_json = msgspec.json.Encoder()
DONE = b"data: [DONE]\n\n"


def sse(event: dict[str, Any]) -> bytes:
    return b"data: " + _json.encode(event) + b"\n\n"


@default_registry.calculator()
class OpenAIResponseCalculator(Calculator):
    """OpenAI's exact shapes: `chat.completion` / `text_completion` bodies, or chunks where the
    first of each choice carries the role, the last its `finish_reason`, then (with
    `stream_options.include_usage`) a `choices: []` usage chunk, then `data: [DONE]`.
    Nothing is sent before the first token: errors up to then keep their HTTP status.

    Example node:
        node { calculator: "OpenAIResponseCalculator" input_stream: "REQUEST:request"
               input_stream: "TEXT:text" output_stream: "HTTP_RESPONSE_PAYLOAD:output" }
    """

    inline = True  # pure computation per packet: runs in the sender's turn
    contract = Contract.of(inputs=("REQUEST", "TEXT"), outputs=("HTTP_RESPONSE_PAYLOAD",))

    _request: GenerationRequest

    async def open(self) -> None:
        self._texts: dict[int, list[str]] = {}
        self._finish: dict[int, str] = {}
        self._completion_tokens = 0
        self._prompt_tokens = 0
        self._started: set[int] = set()
        self._frame: tuple[bytes, bytes] | None = None

    async def process(self, inputs: InputSet) -> None:
        if "REQUEST" in inputs:
            self._request = inputs["REQUEST"].value
        chunk: TextChunk | None = inputs.value("TEXT")
        if chunk is None:
            return
        self._prompt_tokens = chunk.prompt_tokens
        for delta in chunk.deltas:
            self._completion_tokens += delta.token_count
            if delta.finish_reason is not None:
                self._finish[delta.index] = delta.finish_reason
        done = len(self._finish) == self._request.params.n
        if self._request.stream:
            body = b"".join(self._stream_events(chunk))
            if done:
                body += self._stream_tail()
            if body:
                self.ctx.emit("HTTP_RESPONSE_PAYLOAD", HttpResponsePayload(body, True))
        else:
            for delta in chunk.deltas:
                self._texts.setdefault(delta.index, []).append(delta.text)
            if done:
                self.ctx.emit("HTTP_RESPONSE_PAYLOAD", HttpResponsePayload(_json.encode(self._unary_body()), False))

    # -- shapes -------------------------------------------------------------------------
    @property
    def _chat(self) -> bool:
        return self._request.endpoint == "chat/completions"

    def _envelope(self, choices: list[dict[str, Any]]) -> dict[str, Any]:
        r = self._request
        obj = ("chat.completion" if self._chat else "text_completion") + (".chunk" if r.stream and self._chat else "")
        body: dict[str, Any] = {"id": r.id, "object": obj, "created": r.created, "model": r.params.model, "choices": choices}
        if r.stream and r.params.include_usage:
            body["usage"] = None
        return body

    def _usage(self) -> dict[str, int]:
        return {
            "prompt_tokens": self._prompt_tokens,
            "completion_tokens": self._completion_tokens,
            "total_tokens": self._prompt_tokens + self._completion_tokens,
        }

    def _unary_body(self) -> dict[str, Any]:
        choices = []
        for index in range(self._request.params.n):
            text = "".join(self._texts.get(index, []))
            finish = self._finish.get(index, "stop")
            if self._chat:
                choices.append(
                    {"index": index, "message": {"role": "assistant", "content": text}, "logprobs": None, "finish_reason": finish}
                )
            else:
                choices.append({"index": index, "text": text, "logprobs": None, "finish_reason": finish})
        body = self._envelope(choices)
        body["usage"] = self._usage()
        return body

    def _stream_events(self, chunk: TextChunk) -> list[bytes]:
        """SSE events for one step. The envelope (id, object, created, model) is encoded once
        per request; per token only the choice is encoded."""
        if self._frame is None:
            self._frame = self._stream_frame()
        head, tail = self._frame
        events = []
        for delta in chunk.deltas:
            if self._chat:
                if delta.index not in self._started:
                    self._started.add(delta.index)
                    role = {"index": delta.index, "delta": {"role": "assistant", "content": ""}, "logprobs": None, "finish_reason": None}
                    events.append(head + _json.encode(role) + tail)
                if delta.text:
                    content = {"index": delta.index, "delta": {"content": delta.text}, "logprobs": None, "finish_reason": None}
                    events.append(head + _json.encode(content) + tail)
                if delta.finish_reason is not None:
                    end = {"index": delta.index, "delta": {}, "logprobs": None, "finish_reason": delta.finish_reason}
                    events.append(head + _json.encode(end) + tail)
            elif delta.text or delta.finish_reason is not None:
                choice = {"index": delta.index, "text": delta.text, "logprobs": None, "finish_reason": delta.finish_reason}
                events.append(head + _json.encode(choice) + tail)
        return events

    def _stream_frame(self) -> tuple[bytes, bytes]:
        """`data: {…,"choices":[` and `]…}\n\n`: the bytes around one choice in every chunk."""
        marker = {"__choice__": 0}
        whole = b"data: " + _json.encode(self._envelope([marker])) + b"\n\n"
        head, tail = whole.split(_json.encode(marker))
        return head, tail

    def _stream_tail(self) -> bytes:
        tail = b""
        if self._request.params.include_usage:
            body = self._envelope([])
            body["usage"] = self._usage()
            tail += sse(body)
        return tail + DONE
