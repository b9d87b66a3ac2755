"""The OpenAI front end's encoding of a graph's response values: a JSON body, or SSE events.

The stock calculators emit structured values (calculators.packets.ResponseBody, StreamChunks);
a user's own response calculator may emit raw bytes (HttpResponsePayload), which pass through.
"""

from __future__ import annotations

from typing import Any

import msgspec

from calculators.packets import HttpResponsePayload, ResponseBody, ResponsePayload, StreamChunks
from graphs.runner import OutputPacket

DONE = b"data: [DONE]\n\n"
_json = msgspec.json.Encoder()


def sse(event: dict[str, Any]) -> bytes:
    return b"data: " + _json.encode(event) + b"\n\n"


def streaming(value: ResponsePayload) -> bool:
    return isinstance(value, StreamChunks) or (isinstance(value, HttpResponsePayload) and value.streaming)


def ends_answer(value: ResponsePayload) -> bool:
    """Whether this value completes a streamed answer (`data: [DONE]`)."""
    if isinstance(value, StreamChunks):
        return value.done
    return isinstance(value, HttpResponsePayload) and value.body.endswith(DONE)


class OpenAIEncoder:
    """Encodes one request's response values. A chunk's envelope (id, object, created, model)
    is encoded once per request, so per token only the choice object is. Bytes weighed for the
    backpressure bound (`weigh`) are kept until sent (`take`): each value is encoded once."""

    __slots__ = ("_frame", "_weighed")

    def __init__(self) -> None:
        self._frame: tuple[bytes, bytes] | None = None
        self._weighed: dict[int, bytes] = {}  # id(OutputPacket) -> its bytes, while it is queued

    def encode(self, value: ResponsePayload) -> bytes:
        if isinstance(value, StreamChunks):
            return self._events(value)
        if isinstance(value, ResponseBody):
            return _json.encode(value.body)
        return value.body

    def weigh(self, out: OutputPacket) -> int:
        data = self._weighed[id(out)] = self.encode(out.packet.value)
        return len(data)

    def take(self, out: OutputPacket) -> bytes:
        data = self._weighed.pop(id(out), None)
        return data if data is not None else self.encode(out.packet.value)

    def _events(self, chunks: StreamChunks) -> bytes:
        if self._frame is None:
            self._frame = _choice_frame(chunks.envelope)
        head, tail = self._frame
        events = [head + _json.encode(choice) + tail for choice in chunks.choices]
        if chunks.usage is not None:
            events.append(sse({**chunks.envelope, "choices": [], "usage": chunks.usage}))
        if chunks.done:
            events.append(DONE)
        return b"".join(events)


def _choice_frame(envelope: dict[str, Any]) -> tuple[bytes, bytes]:
    """`data: {…,"choices":[` and `]…}\\n\\n`: the bytes around one choice in every chunk."""
    marker = {"__choice__": 0}
    whole = sse({**envelope, "choices": [marker]})
    head, tail = whole.split(_json.encode(marker))
    return head, tail
