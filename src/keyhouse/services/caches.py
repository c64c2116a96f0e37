"""Per-process caches that empty themselves whenever the store says anything may have changed."""

from __future__ import annotations

from typing import Generic, TypeVar

from keyhouse.store import Store

K = TypeVar("K")
V = TypeVar("V")


class ChangeCache(Generic[K, V]):
    """A dict valid until ``store.change_marker()`` moves (any process's relevant commit).

    ``current()`` is called once per request: it empties the dict when the marker moved or the dict
    outgrew ``max_entries``, and returns ``None`` when the store cannot tell (nothing may be cached).
    Misses may be cached too (as ``None`` values), since creating anything also moves the marker.
    """

    def __init__(self, store: Store, max_entries: int) -> None:
        self.store = store
        self.max_entries = max_entries
        self._marker: int | None = None
        self._entries: dict[K, V] = {}

    def current(self) -> dict[K, V] | None:
        marker = self.store.change_marker()
        if marker is None or marker != self._marker or len(self._entries) > self.max_entries:
            self._entries.clear()
            self._marker = marker
        return None if marker is None else self._entries
