"""Messages between the LLM calculator's engine client and its engine worker process.

Frames are multiprocessing.Connection frames (4-byte big-endian signed length, then the body),
so the worker can use `Connection.send_bytes/recv_bytes` while the asyncio side reads the same
socket with a StreamReader. Bodies are msgpack arrays whose first item is the message's tag:
each message is a `msgspec.Struct` with `array_like=True` and an integer tag, so a STEP is the
same array of arrays (and the same bytes) as the hand-built lists it replaced, and each side
decodes with a typed decoder: a malformed frame fails with a message naming the bad field.
One STEP per engine step carries every active request's new tokens: no dicts, no field names.
"""

from __future__ import annotations

import struct
from enum import IntEnum
from typing import Any

import msgspec

HEADER = struct.Struct("!i")


def frame(body: bytes) -> bytes:
    """A multiprocessing.Connection frame (bodies here stay far below 2 GiB)."""
    return HEADER.pack(len(body)) + body


class Status(IntEnum):
    """Request state carried by each update; anything but RUNNING is the request's last update."""

    RUNNING = 0
    FINISHED = 1
    IGNORED = 2  # the request can never fit the KV cache (its prompt plus output outgrew it)
    CANCELLED = 3
    FAILED = 4
    DROPPED = 5  # dropped by the engine when another request outgrew the KV cache: retry


class Finish(IntEnum):
    NONE = 0
    STOP = 1
    LENGTH = 2


# gc=False: these hold only ints, floats, strings and lists of them (no cycles), so the garbage
# collector need not track the thousands a busy second decodes.
class SequenceDelta(msgspec.Struct, array_like=True, frozen=True, gc=False):
    """One sequence's (choice's) new tokens in one update: `[index, token_ids, finish, logprobs|None]`."""

    index: int  # the choice's index in the response
    token_ids: list[int]
    finish: Finish
    logprobs: list[float] | None = None  # always on the wire (None too): 4 items, as before


class Update(msgspec.Struct, array_like=True, gc=False):
    """One request's news in a STEP: `[request_id, status, [delta, ...]]`. A failure carries no
    text: the worker logs why, and the client answers with a stable message (client.py)."""

    request_id: int
    status: Status
    outputs: list[SequenceDelta]


# -- to the worker -----------------------------------------------------------------------------
class Add(msgspec.Struct, array_like=True, tag=0, gc=False):
    request_id: int
    token_ids: list[int]  # the prompt
    config: dict[str, Any]  # GenerationConfig fields (+ the grammar and adapter keys)


class Cancel(msgspec.Struct, array_like=True, tag=1):
    """Stop generating and forget the request."""

    request_id: int


class Shutdown(msgspec.Struct, array_like=True, tag=2):
    pass


class Expect(msgspec.Struct, array_like=True, tag=3):
    """A request is on its way (+1), or will not come after all (-1)."""

    delta: int


class Telemetry(msgspec.Struct, array_like=True, tag=4):
    """Add the metrics' figures to each STEP's stats (see cb_loop.py stats())."""

    on: int  # 1 or 0: an int, not a bool, so the bytes stay those of the list protocol


class Image(msgspec.Struct, array_like=True, gc=False):
    """One RGB uint8 image, `[height, width, pixels]` (row-major, 3 bytes a pixel). The pixels
    are a view: the client's array goes into the frame without a copy of its own, and the
    worker's view points into the received frame."""

    height: int
    width: int
    data: memoryview


class AddVision(msgspec.Struct, array_like=True, tag=5, gc=False):
    """A request to a vision-language engine, which takes a prompt as text (genai 2026.4's VLM
    pipelines take no token ids): the rendered prompt with the model's image tags and its images
    in order, or, for a text-only caller, the prompt's token ids (the worker decodes them)."""

    request_id: int
    prompt: str | list[int]
    images: list[Image]
    config: dict[str, Any]
    prompt_tokens: int  # the caller's count (text tokens): the worker's KV-overflow estimate


ToWorker = Add | Cancel | Shutdown | Expect | Telemetry | AddVision


# -- from the worker ---------------------------------------------------------------------------
class Ready(msgspec.Struct, array_like=True, tag=0):
    info: dict[str, Any]  # engine_info(): stop token ids, do_sample, pipeline, ...


class Step(msgspec.Struct, array_like=True, tag=1, gc=False):
    """Once per engine step (or when the worker goes idle: no updates)."""

    updates: list[Update]
    # The worker's figures (running, added, cancelled, ..., step_s; with telemetry also steps,
    # queue_s, kv_usage, ...): open-ended and read as a dict by /debug/stats, so a dict here.
    stats: dict[str, Any]


class Rejected(msgspec.Struct, array_like=True, tag=2):
    """add_request refused the request."""

    request_id: int
    message: str


class Fatal(msgspec.Struct, array_like=True, tag=3):
    """The worker cannot go on (e.g. the model failed to load)."""

    message: str


class PromptLength(msgspec.Struct, array_like=True, tag=4):
    """A vision request's prompt length as the engine counted it (text plus image tokens), sent
    just before the STEP that ends the request: genai 2026.4 reports it only then."""

    request_id: int
    tokens: int


FromWorker = Ready | Step | Rejected | Fatal | PromptLength


encode = msgspec.msgpack.Encoder().encode
decode_to_worker = msgspec.msgpack.Decoder(ToWorker).decode  # the worker's side
decode_from_worker = msgspec.msgpack.Decoder(FromWorker).decode  # the client's side
