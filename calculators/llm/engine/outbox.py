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


class _Merged:
    """A request's news from two or more steps: its last status, its choices' tokens by index."""

    __slots__ = ("request_id", "status", "sequences")

    def __init__(self, first: Update) -> None:
        self.request_id = first.request_id
        self.status = first.status
        self.sequences: dict[int, _Sequence] = {}
        self.merge(first)

    def merge(self, update: Update) -> None:
        self.status = update.status
        sequences = self.sequences
        for delta in update.outputs:
            sequence = sequences.get(delta.index)
            if sequence is None:
                sequences[delta.index] = _Sequence(delta)
            else:
                sequence.extend(delta)

    def update(self) -> Update:
        return Update(
            self.request_id, self.status, [SequenceDelta(i, s.token_ids, s.finish, s.logprobs) for i, s in self.sequences.items()]
        )


class Outbox:
    def __init__(self, interval_s: float = 0.0) -> None:
        self.interval_s = interval_s
        # A request's one update goes out as it came (the common case: every step is sent); a
        # second one before the message makes it a _Merged (copies: the updates stay untouched).
        self._pending: dict[int, Update | _Merged] = {}
        self._started: set[int] = set()  # requests whose first tokens have gone out
        self._urgent = False
        self._last_send = float("-inf")

    def add(self, updates: list[Update]) -> None:
        """Merge one step's updates into what waits to be sent."""
        pending = self._pending
        for update in updates:
            request_id = update.request_id
            entry = pending.get(request_id)
            if entry is None:
                pending[request_id] = update
            elif isinstance(entry, _Merged):
                entry.merge(update)
            else:
                merged = pending[request_id] = _Merged(entry)
                merged.merge(update)
            if update.status != Status.RUNNING:
                self._urgent = True
                self._started.discard(request_id)
            elif update.outputs and request_id not in self._started:
                self._urgent = True
                self._started.add(request_id)

    def drop(self, request_id: int) -> None:
        self._pending.pop(request_id, None)
        self._started.discard(request_id)

    def due(self, now: float) -> bool:
        return bool(self._pending) and (self._urgent or now - self._last_send >= self.interval_s)

    def take(self, now: float) -> list[Update]:
        updates = [entry if isinstance(entry, Update) else entry.update() for entry in self._pending.values()]
        self._pending.clear()
        self._urgent = False
        self._last_send = now
        return updates
