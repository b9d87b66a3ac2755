"""Wire cost of the engine worker's STEP message: bytes, and build+encode / decode time per message.

STEP goes once per engine step with every active request's new tokens, so its cost is paid per
step on both sides: the worker builds and encodes it, the server's engine reader decodes it and
turns each update into the request's step output. Two realistic batches: 8 requests x 1 token,
and 8 requests x 4 tokens with logprobs.

`typed` is the protocol as it is (msgspec structs, typed decoder: calculators/llm/engine/protocol.py);
`legacy` is the untyped protocol it replaced (arrays built from lists, decoded untyped, indexed by
position, each output copied into a SequenceDelta), kept here as the reference for bytes and time.

    .venv/bin/python demos/benchmark/ipc_wire.py [--runs 7] [--loops 20000]
"""

from __future__ import annotations

import argparse
import random
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import msgspec

from calculators.llm.engine.protocol import Finish, FromWorker, SequenceDelta, Status, Step, Update, decode_from_worker, encode

RUNNING, NONE = Status.RUNNING, Finish.NONE  # the worker takes both from its maps: enum members
VOCAB = 49152  # SmolLM2's vocabulary: token ids take 3 bytes in msgpack
STATS = {"step_s": 0.0123, "running": 8, "expected": 0, "added": 120, "cancelled": 3, "finished": 112, "failed": 0, "preempted": 0}


@dataclass(frozen=True)
class Batch:
    name: str
    # per request: (request_id, new token ids, logprobs or None)
    rows: list[tuple[int, list[int], list[float] | None]]


def batch(name: str, requests: int, tokens: int, logprobs: bool, seed: int = 0) -> Batch:
    rng = random.Random(seed)
    rows = []
    for request_id in range(101, 101 + requests):
        ids = [rng.randrange(VOCAB) for _ in range(tokens)]
        rows.append((request_id, ids, [-rng.random() * 5 for _ in ids] if logprobs else None))
    return Batch(name, rows)


# -- legacy: lists, untyped decoder, positional indexes --------------------------------------
_legacy_encode = msgspec.msgpack.Encoder().encode
_legacy_decode = msgspec.msgpack.Decoder().decode


@dataclass(frozen=True, slots=True)
class _LegacyDelta:  # what engine/client.py built from each output
    index: int
    token_ids: list[int]
    finish: Finish
    logprobs: list[float] | None = None


def legacy_build_encode(b: Batch) -> bytes:
    updates = [[rid, RUNNING, [[0, ids, NONE, lps]]] for rid, ids, lps in b.rows]
    return _legacy_encode([1, updates, dict(STATS)])


def legacy_decode(body: bytes) -> int:
    message = _legacy_decode(body)
    n = 0
    if message[0] == 1:
        for update in message[1]:
            _rid, _status, outputs = update[0], update[1], update[2]
            deltas = tuple(_LegacyDelta(o[0], o[1], Finish(o[2]), o[3]) for o in outputs)
            n += len(deltas)
    return n


# -- typed: msgspec structs (calculators/llm/engine/protocol.py) -------------------------------
def typed_build_encode(b: Batch) -> bytes:
    updates = [Update(rid, RUNNING, [SequenceDelta(0, ids, NONE, lps)]) for rid, ids, lps in b.rows]
    return encode(Step(updates, dict(STATS)))


def typed_decode(body: bytes) -> int:
    message: FromWorker = decode_from_worker(body)
    n = 0
    if isinstance(message, Step):
        for update in message.updates:
            _rid, _status = update.request_id, update.status
            deltas = tuple(update.outputs)  # what engine/client.py hands on: the decoded structs
            n += len(deltas)
    return n


# -- measuring -------------------------------------------------------------------------------
def per_message_us(fn: Callable[[Any], Any], arg: Any, loops: int) -> float:
    start = time.perf_counter()
    for _ in range(loops):
        fn(arg)
    return (time.perf_counter() - start) / loops * 1e6


Codec = tuple[Callable[[Batch], bytes], Callable[[bytes], int]]


def measure(b: Batch, codecs: dict[str, Codec], runs: int, loops: int) -> dict[str, bytes]:
    """Each codec's body, and the medians of its timed runs; the codecs' runs alternate, so a
    busy moment on a shared machine weighs on all of them alike."""
    bodies = {name: enc(b) for name, (enc, _dec) in codecs.items()}
    for name, (enc, dec) in codecs.items():  # warm-up
        per_message_us(enc, b, loops)
        per_message_us(dec, bodies[name], loops)
    times: dict[str, tuple[list[float], list[float]]] = {name: ([], []) for name in codecs}
    for _ in range(runs):
        for name, (enc, dec) in codecs.items():
            times[name][0].append(per_message_us(enc, b, loops))
            times[name][1].append(per_message_us(dec, bodies[name], loops))
    for name, (encs, decs) in times.items():
        e, d = statistics.median(encs), statistics.median(decs)
        print(f"{b.name:<22} {name:<7} {len(bodies[name]):>6} B   build+encode {e:6.2f} us   decode {d:6.2f} us   total {e + d:6.2f} us")
    return bodies


CODECS: dict[str, Codec] = {"legacy": (legacy_build_encode, legacy_decode), "typed": (typed_build_encode, typed_decode)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=7, help="timed runs per figure (the median is printed)")
    parser.add_argument("--loops", type=int, default=20000, help="messages per run")
    args = parser.parse_args()
    batches = [batch("8 req x 1 token", 8, 1, False), batch("8 req x 4 tok+logprobs", 8, 4, True)]
    for b in batches:
        bodies = measure(b, CODECS, args.runs, args.loops)
        print(f"{b.name}: the bodies are {'byte-identical' if len(set(bodies.values())) == 1 else 'DIFFERENT'}")


if __name__ == "__main__":
    main()
