"""The engine IPC messages (and the grammar vetter's): typed structs on the same bytes as the list
protocol they replaced, and a malformed frame refused with a message naming the bad field."""

from __future__ import annotations

import asyncio
import re
from typing import Any

import msgspec
import pytest

from calculators.llm.engine.client import EngineClient, MalformedMessage
from calculators.llm.engine.protocol import (
    Add,
    Cancel,
    Expect,
    Fatal,
    Finish,
    Ready,
    Rejected,
    SequenceDelta,
    Shutdown,
    Status,
    Step,
    Telemetry,
    Update,
    decode_from_worker,
    decode_to_worker,
    encode,
    frame,
)
from calculators.llm.grammar_vetter_worker import (
    Compiles,
    DoesNotCompile,
    Trial,
    VetterFatal,
    VetterReady,
    decode_from_vetter,
    decode_trial,
)

# Each message beside the list the worker and client used to build by hand (tag first).
STATS = {"step_s": 0.01, "running": 2, "expected": 0, "added": 2, "cancelled": 0, "finished": 0, "failed": 0}
TO_WORKER: list[tuple[Any, list[Any]]] = [
    (Add(7, [1, 2, 3], {"max_new_tokens": 5, "stop_token_ids": [2]}), [0, 7, [1, 2, 3], {"max_new_tokens": 5, "stop_token_ids": [2]}]),
    (Cancel(7), [1, 7]),
    (Shutdown(), [2]),
    (Expect(-1), [3, -1]),
    (Telemetry(1), [4, 1]),
]
FROM_WORKER: list[tuple[Any, list[Any]]] = [
    (Ready({"eos_token_ids": [2], "do_sample": False}), [0, {"eos_token_ids": [2], "do_sample": False}]),
    (
        Step(
            [
                Update(7, Status.RUNNING, [SequenceDelta(0, [40000, 5], Finish.NONE, None)]),
                Update(8, Status.FINISHED, [SequenceDelta(0, [9], Finish.STOP, [-0.5]), SequenceDelta(1, [], Finish.LENGTH)]),
                Update(9, Status.FAILED, []),
            ],
            STATS,
        ),
        [1, [[7, 0, [[0, [40000, 5], 0, None]]], [8, 1, [[0, [9], 1, [-0.5]], [1, [], 2, None]]], [9, 4, []]], STATS],
    ),
    (Step([], STATS), [1, [], STATS]),
    (Rejected(7, "min_tokens above max_tokens"), [2, 7, "min_tokens above max_tokens"]),
    (Fatal("RuntimeError: no model"), [3, "RuntimeError: no model"]),
]
_untyped = msgspec.msgpack.Encoder().encode


@pytest.mark.parametrize(("message", "as_list"), TO_WORKER + FROM_WORKER, ids=lambda v: type(v).__name__)
def test_same_bytes_as_the_list_protocol(message: Any, as_list: list[Any]) -> None:
    assert encode(message) == _untyped(as_list)


@pytest.mark.parametrize(("message", "as_list"), TO_WORKER, ids=lambda v: type(v).__name__)
def test_the_worker_decodes_each_command(message: Any, as_list: list[Any]) -> None:
    assert decode_to_worker(_untyped(as_list)) == message


@pytest.mark.parametrize(("message", "as_list"), FROM_WORKER, ids=lambda v: type(v).__name__)
def test_the_client_decodes_each_message(message: Any, as_list: list[Any]) -> None:
    decoded = decode_from_worker(_untyped(as_list))
    assert decoded == message
    if isinstance(decoded, Step) and decoded.updates:  # the enums come back as enums, for the client's checks
        assert type(decoded.updates[0].status) is Status and type(decoded.updates[0].outputs[0].finish) is Finish


@pytest.mark.parametrize(
    ("as_list", "names"),
    [
        ([1, [[7, 0, [[0, [5], 9, None]]]], {}], "Invalid enum value 9 - at `$[1][0][2][0][2]`"),  # no such finish reason
        ([1, [["7", 0, []]], {}], "Expected `int`, got `str` - at `$[1][0][0]`"),  # a request id that is not an int
        ([9, "?"], "Invalid value 9 - at `$[0]`"),  # an unknown message kind
        ([1, [[7, 0]], {}], "got 2 - at `$[1][0]`"),  # an update without its outputs
    ],
)
def test_a_malformed_frame_names_what_is_wrong(as_list: list[Any], names: str) -> None:
    with pytest.raises(msgspec.ValidationError, match=re.escape(names)):
        decode_from_worker(_untyped(as_list))


def test_the_worker_refuses_a_malformed_command() -> None:
    with pytest.raises(msgspec.ValidationError, match=r"\$\[1\]"):
        decode_to_worker(_untyped([1, "seven"]))


async def test_the_client_reader_turns_a_malformed_frame_into_unavailable() -> None:
    reader = asyncio.StreamReader()
    reader.feed_data(frame(_untyped([1, [["7", 0, []]], {}])))
    with pytest.raises(MalformedMessage, match=r"malformed message from the engine worker: .*\$\[1\]\[0\]\[0\]"):
        await EngineClient._read_message(reader)
    reader = asyncio.StreamReader()
    reader.feed_data(frame(encode(Step([Update(7, Status.RUNNING, [SequenceDelta(0, [5], Finish.NONE)])], {}))))
    message = await EngineClient._read_message(reader)
    assert isinstance(message, Step) and message.updates[0].outputs[0].token_ids == [5]


def test_the_grammar_vetter_messages_keep_their_bytes() -> None:
    # The vetter's own messages (grammar_vetter_worker.py) share the framing and the encoder.
    grammar = [["json", '{"type": "object"}']]
    assert encode(Trial(grammar)) == _untyped([grammar]) and decode_trial(_untyped([grammar])) == Trial(grammar)
    replies = [(VetterReady(), [0]), (Compiles(), [1]), (DoesNotCompile(), [2]), (VetterFatal("RuntimeError"), [3, "RuntimeError"])]
    for message, as_list in replies:
        assert encode(message) == _untyped(as_list) and decode_from_vetter(_untyped(as_list)) == message
    with pytest.raises(msgspec.ValidationError, match=re.escape("Invalid value 7 - at `$[0]`")):
        decode_from_vetter(_untyped([7]))
