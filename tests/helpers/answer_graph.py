"""A one-node graph (the Answer calculator: streamed parts, one JSON body, failures, gates) served in process by the serving tests."""

from __future__ import annotations

import asyncio
import json

from calculators.packets import HttpRequestPayload, HttpResponsePayload
from graphs.calculator import Calculator, Contract, InputSet
from graphs.pbtxt import parse_graph
from graphs.registry import Registry
from graphs.validate import validate

registry = Registry()


GATES: dict[str, asyncio.Event] = {}  # "wait" / "linger": the name of a gate the Answer node waits for


@registry.calculator()
class Answer(Calculator):
    """Answers with the body's "parts" as streamed chunks, or as one JSON body; "fail" raises."""

    contract = Contract.of(inputs=("HTTP_REQUEST_PAYLOAD",), outputs=("HTTP_RESPONSE_PAYLOAD",))

    async def process(self, inputs: InputSet) -> None:
        request: HttpRequestPayload = inputs["HTTP_REQUEST_PAYLOAD"].value
        body = request.body
        if body.get("fail"):
            raise ValueError(f"refusing {body.get('prompt')}")
        if "wait" in body:
            await GATES[body["wait"]].wait()
        if body.get("stream"):
            for part in body["parts"]:
                self.ctx.emit("HTTP_RESPONSE_PAYLOAD", HttpResponsePayload(b"data: " + json.dumps(part).encode() + b"\n\n", True))
            self.ctx.emit("HTTP_RESPONSE_PAYLOAD", HttpResponsePayload(b"data: [DONE]\n\n", True))
            if "linger" in body:  # answered, but the node closes only when this gate opens
                await GATES[body["linger"]].wait()
        else:
            self.ctx.emit("HTTP_RESPONSE_PAYLOAD", HttpResponsePayload(json.dumps({"echo": body.get("prompt")}).encode(), False))


GRAPH = validate(
    parse_graph(
        """
        input_stream: "HTTP_REQUEST_PAYLOAD:input"
        output_stream: "HTTP_RESPONSE_PAYLOAD:output"
        node { name: "answer" calculator: "Answer"
               input_stream: "HTTP_REQUEST_PAYLOAD:input" output_stream: "HTTP_RESPONSE_PAYLOAD:output" }
        """
    ),
    registry,
)
