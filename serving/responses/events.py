"""The Responses event stream, built from the chat graph's streamed deltas.

Each output item opens when its first delta arrives and closes when another kind of delta (or
the end) comes: reasoning (`reasoning_content`), then the message (`content`), then one
function call per tool-call index. Every event carries its `sequence_number`.
"""

from __future__ import annotations

from typing import Any

import msgspec

from serving.responses import output as out
from serving.responses.request import ResponsesRequest

_json = msgspec.json.Encoder()


class EventStream:
    """One response's events, as SSE bytes (`event: <type>` + `data: {...}`)."""

    def __init__(self, request: ResponsesRequest, response: dict[str, Any]) -> None:
        self.request = request
        self.response = response
        self.output: list[dict[str, Any]] = []  # the finished items
        self._seq = 0
        self._open: dict[str, Any] | None = None  # the item being streamed
        self._text: list[str] = []  # its text or arguments so far
        self._call_index: int | None = None
        self._finish: str | None = None
        self._usage: dict[str, Any] | None = None

    def _event(self, kind: str, **fields: Any) -> bytes:
        data = {"type": kind, "sequence_number": self._seq, **fields}
        self._seq += 1
        return b"event: " + kind.encode() + b"\ndata: " + _json.encode(data) + b"\n\n"

    def start(self) -> bytes:
        snapshot = dict(self.response)
        return self._event("response.created", response=snapshot) + self._event("response.in_progress", response=snapshot)

    def _where(self) -> dict[str, Any]:
        assert self._open is not None
        return {"item_id": self._open["id"], "output_index": len(self.output)}

    def _begin(self, item: dict[str, Any]) -> bytes:
        self._open, self._text = item, []
        data = self._event("response.output_item.added", output_index=len(self.output), item=item)
        if item["type"] == "message":
            data += self._event("response.content_part.added", **self._where(), content_index=0, part=out.text_part(""))
        elif item["type"] == "reasoning":
            part = {"type": "reasoning_text", "text": ""}
            data += self._event("response.content_part.added", **self._where(), content_index=0, part=part)
        return data

    def _close(self) -> bytes:
        item = self._open
        if item is None:
            return b""
        text, where = "".join(self._text), self._where()
        if item["type"] == "message":
            done = out.message_item(item["id"], text)
            data = self._event("response.output_text.done", **where, content_index=0, text=text, logprobs=[])
            data += self._event("response.content_part.done", **where, content_index=0, part=out.text_part(text))
        elif item["type"] == "reasoning":
            done = out.reasoning_item(item["id"], text, out.wants_summary(self.request))
            data = self._event("response.reasoning_text.done", **where, content_index=0, text=text)
            data += self._event("response.content_part.done", **where, content_index=0, part={"type": "reasoning_text", "text": text})
        else:
            done = out.call_item(item["id"], item["call_id"], item["name"], text)
            data = self._event("response.function_call_arguments.done", **where, arguments=text, name=item["name"])
        data += self._event("response.output_item.done", output_index=len(self.output), item=done)
        self.output.append(done)
        self._open = None
        return data

    def _kind(self) -> str | None:
        return None if self._open is None else str(self._open["type"])

    def delta(self, choice: dict[str, Any]) -> bytes:
        """The events of one chat chunk's choice."""
        delta = choice.get("delta") or {}
        data = b""
        if reasoning := delta.get("reasoning_content"):
            if self._kind() != "reasoning":
                data += self._close() + self._begin(out.reasoning_item(out.new_id("rs"), "", False, "in_progress"))
            self._text.append(reasoning)
            data += self._event("response.reasoning_text.delta", **self._where(), content_index=0, delta=reasoning)
        if content := delta.get("content"):
            if self._kind() != "message":
                data += self._close() + self._begin(out.message_item(out.new_id("msg"), "", "in_progress"))
            self._text.append(content)
            data += self._event("response.output_text.delta", **self._where(), content_index=0, delta=content, logprobs=[])
        for call in delta.get("tool_calls") or ():
            data += self._call_delta(call)
        if choice.get("finish_reason"):
            self._finish = choice["finish_reason"]
        return data

    def _call_delta(self, call: dict[str, Any]) -> bytes:
        data = b""
        function = call.get("function") or {}
        if self._kind() != "function_call" or call.get("index") != self._call_index:
            self._call_index = call.get("index")
            item = out.call_item(out.new_id("fc"), call.get("id") or out.new_id("call"), function.get("name") or "", "", "in_progress")
            data += self._close() + self._begin(item)
        if arguments := function.get("arguments"):
            self._text.append(arguments)
            data += self._event("response.function_call_arguments.delta", **self._where(), delta=arguments)
        return data

    def usage(self, chat_usage: dict[str, Any] | None) -> None:
        if chat_usage:
            self._usage = chat_usage

    def end(self) -> bytes:
        """The last events: the open item closed, then response.completed (or .incomplete)."""
        data = self._close()
        out.finish(self.response, self.output, self._finish, self._usage)
        kind = "response.incomplete" if self.response["status"] == "incomplete" else "response.completed"
        return data + self._event(kind, response=self.response)

    def error(self, body: dict[str, Any]) -> bytes:
        """An error after the stream began, as the Responses API reports it in-band."""
        error = body.get("error") or {}
        return self._event("error", code=error.get("code") or error.get("type"), message=error.get("message", ""), param=error.get("param"))
