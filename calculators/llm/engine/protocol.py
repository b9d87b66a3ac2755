"""Messages between the LLM calculator's engine client and its engine worker process.

Frames are multiprocessing.Connection frames (4-byte big-endian signed length, then the body),
so the worker can use `Connection.send_bytes/recv_bytes` while the asyncio side reads the same
socket with a StreamReader. Bodies are msgpack arrays whose first item says what they are.
Tuples, not dicts: one message per engine step carries every active request's new tokens.
"""

from __future__ import annotations

import struct
from enum import IntEnum
from typing import Any

import msgspec

encode = msgspec.msgpack.Encoder().encode
decode = msgspec.msgpack.Decoder().decode

HEADER = struct.Struct("!i")


def frame(body: bytes) -> bytes:
    """A multiprocessing.Connection frame (bodies here stay far below 2 GiB)."""
    return HEADER.pack(len(body)) + body


class ToWorker(IntEnum):
    ADD = 0  # [ADD, request_id, prompt_token_ids, generation_config_kwargs]
    CANCEL = 1  # [CANCEL, request_id]: stop generating and forget the request
    SHUTDOWN = 2  # [SHUTDOWN]
    EXPECT = 3  # [EXPECT, +1 | -1]: a request is on its way (+1), or will not come after all (-1)
    TELEMETRY = 4  # [TELEMETRY, on]: add the metrics' figures to each STEP's stats (see cb_loop.py stats())


class FromWorker(IntEnum):
    READY = 0  # [READY, info]
    STEP = 1  # [STEP, [update, ...], stats]
    REJECTED = 2  # [REJECTED, request_id, message]: add_request refused the request
    FATAL = 3  # [FATAL, message]: the worker cannot go on (e.g. the model failed to load)


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


# One update: [request_id, status, [[sequence_index, new_token_ids, finish, logprobs|None], ...]]
Update = list[Any]
