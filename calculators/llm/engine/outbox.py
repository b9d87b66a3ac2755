"""What the engine worker has to say between two messages to the server.

Updates from several engine steps merge per request. Urgent news (a request's first tokens,
its end) goes out at once; plain progress waits until `interval_s` has passed since the last
message. With a fast model (steps well under a millisecond) that caps the server's per-token
work without touching time to first token; with interval 0 every step is sent.
"""

from __future__ import annotations

from typing import Any

from calculators.llm.engine.protocol import Status


class Outbox:
    def __init__(self, interval_s: float = 0.0) -> None:
        self.interval_s = interval_s
        # request id -> [status, {choice index: [token ids, finish, logprobs | None]}, error message | None]
        self._pending: dict[int, list[Any]] = {}
        self._started: set[int] = set()  # requests whose first tokens have gone out
        self._urgent = False
        self._last_send = float("-inf")

    def add(self, updates: list[list[Any]]) -> None:
        """Merge updates `[request_id, status, [[index, token_ids, finish, logprobs], ...], error?]`."""
        for update in updates:
            request_id, status, outputs = update[0], update[1], update[2]
            entry = self._pending.get(request_id)
            if entry is None:
                entry = self._pending[request_id] = [status, {}, None]
            entry[0] = status
            if len(update) > 3:
                entry[2] = update[3]
            sequences: dict[int, list[Any]] = entry[1]
            for index, token_ids, finish, logprobs in outputs:
                sequence = sequences.get(index)
                if sequence is None:
                    sequences[index] = [list(token_ids), finish, None if logprobs is None else list(logprobs)]
                else:
                    sequence[0].extend(token_ids)
                    sequence[1] = finish
                    if logprobs is not None:
                        sequence[2] = (sequence[2] or []) + list(logprobs)
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

    def take(self, now: float) -> list[list[Any]]:
        updates = []
        for request_id, (status, sequences, error) in self._pending.items():
            outputs = [[index, tokens, finish, logprobs] for index, (tokens, finish, logprobs) in sequences.items()]
            update = [request_id, status, outputs]
            if error is not None:
                update.append(error)
            updates.append(update)
        self._pending.clear()
        self._urgent = False
        self._last_send = now
        return updates
