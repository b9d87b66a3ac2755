"""What the engine worker has to say between two messages to the server.

Updates from several engine steps merge per request. Urgent news (a request's first tokens,
its end) goes out at once; plain progress waits until `interval_s` has passed since the last
message. With a fast model (steps well under a millisecond) that caps the server's per-token
work without touching time to first token; with interval 0 every step is sent.
"""

from __future__ import annotations

from calculators.llm.engine.protocol import SequenceDelta, Status, Update


class _Sequence:
    """One choice's merged tokens (mutable, unlike the SequenceDelta it is built from)."""

    __slots__ = ("token_ids", "finish", "logprobs")

    def __init__(self, delta: SequenceDelta) -> None:
        self.token_ids = list(delta.token_ids)
        self.finish = delta.finish
        self.logprobs = None if delta.logprobs is None else list(delta.logprobs)

    def extend(self, delta: SequenceDelta) -> None:
        self.token_ids.extend(delta.token_ids)
        self.finish = delta.finish
        if delta.logprobs is not None:
            self.logprobs = (self.logprobs or []) + delta.logprobs


class _Pending:
    """One request's merged news: its last status, and its choices' tokens by index."""

    __slots__ = ("status", "sequences")

    def __init__(self, status: Status) -> None:
        self.status = status
        self.sequences: dict[int, _Sequence] = {}


class Outbox:
    def __init__(self, interval_s: float = 0.0) -> None:
        self.interval_s = interval_s
        self._pending: dict[int, _Pending] = {}
        self._started: set[int] = set()  # requests whose first tokens have gone out
        self._urgent = False
        self._last_send = float("-inf")

    def add(self, updates: list[Update]) -> None:
        """Merge one step's updates into what waits to be sent."""
        for update in updates:
            request_id, status, outputs = update.request_id, update.status, update.outputs
            entry = self._pending.get(request_id)
            if entry is None:
                entry = self._pending[request_id] = _Pending(status)
            entry.status = status
            sequences = entry.sequences
            for delta in outputs:
                sequence = sequences.get(delta.index)
                if sequence is None:
                    sequences[delta.index] = _Sequence(delta)
                else:
                    sequence.extend(delta)
            if status != Status.RUNNING:
                self._urgent = True
                self._started.discard(request_id)
            elif outputs and request_id not in self._started:
                self._urgent = True
                self._started.add(request_id)

    def drop(self, request_id: int) -> None:
        self._pending.pop(request_id, None)
        self._started.discard(request_id)

    def due(self, now: float) -> bool:
        return bool(self._pending) and (self._urgent or now - self._last_send >= self.interval_s)

    def take(self, now: float) -> list[Update]:
        updates = [
            Update(request_id, entry.status, [SequenceDelta(i, s.token_ids, s.finish, s.logprobs) for i, s in entry.sequences.items()])
            for request_id, entry in self._pending.items()
        ]
        self._pending.clear()
        self._urgent = False
        self._last_send = now
        return updates
