"""Stored responses, for `previous_response_id`, `GET` and `DELETE`: in memory, one bounded store
per servable, oldest dropped first, each entry kept at most `ttl_s` seconds. Nothing survives a
restart (as vLLM's store: a cache of conversations, not a database)."""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

DEFAULT_SIZE = 1000
DEFAULT_TTL_S = 3600.0


@dataclass(frozen=True, slots=True)
class Stored:
    response: dict[str, Any]  # the response object as it was returned
    history: list[dict[str, Any]]  # the conversation through this response, as chat messages
    expires: float


class ResponseStore:
    """The stored responses of one servable."""

    def __init__(self, size: int, ttl_s: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.size, self.ttl_s, self._clock = size, ttl_s, clock
        self._entries: OrderedDict[str, Stored] = OrderedDict()

    def put(self, response: dict[str, Any], history: list[dict[str, Any]]) -> None:
        if self.size <= 0:
            return
        self._expire()
        self._entries[response["id"]] = Stored(response, history, self._clock() + self.ttl_s)
        while len(self._entries) > self.size:
            self._entries.popitem(last=False)

    def get(self, response_id: str) -> Stored | None:
        self._expire()
        return self._entries.get(response_id)

    def delete(self, response_id: str) -> bool:
        return self._entries.pop(response_id, None) is not None

    def __len__(self) -> int:
        return len(self._entries)

    def _expire(self) -> None:
        now = self._clock()
        while self._entries:
            oldest = next(iter(self._entries.values()))
            if oldest.expires > now:
                break
            self._entries.popitem(last=False)


class ResponseStores:
    """A store per servable; an id is looked up in all of them (GET names no model)."""

    def __init__(self, size: int = DEFAULT_SIZE, ttl_s: float = DEFAULT_TTL_S) -> None:
        self.size, self.ttl_s = size, ttl_s
        self._stores: dict[str, ResponseStore] = {}

    def of(self, servable: str) -> ResponseStore:
        store = self._stores.get(servable)
        if store is None:
            store = self._stores[servable] = ResponseStore(self.size, self.ttl_s)
        return store

    def find(self, response_id: str) -> Stored | None:
        for store in self._stores.values():
            if (found := store.get(response_id)) is not None:
                return found
        return None

    def delete(self, response_id: str) -> bool:
        return any(store.delete(response_id) for store in self._stores.values())
