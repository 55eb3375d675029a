"""Memo keyed on the data revision: what is worked out from a county's data, kept until the
county's data changes.

Callers put the county and its data revision (geo.db.revisions) in the key, so an entry is
never wrong, only unused once the revision moves on; the oldest unused entries go first. One
memo per engine (`memo_of`): two databases never share an entry, and the memo goes with its
engine. Concurrent requests for one key wait for the first one's answer (after a large change,
four tiles at once would otherwise each count 100 000 outlines).
"""

import threading
import weakref
from collections import OrderedDict
from collections.abc import Callable, Hashable
from typing import Any

from sqlalchemy import Engine

MISSING = object()


class RevisionMemo:
    """Values under hashable keys, at most `limit` of them, least recently used out first."""

    def __init__(self, limit: int = 1024):
        self.limit = limit
        self._values: OrderedDict[Hashable, Any] = OrderedDict()
        self._guard = threading.Lock()
        self._computing: dict[Hashable, threading.Lock] = {}

    def __len__(self) -> int:
        return len(self._values)

    def get(self, key: Hashable, default: Any = None) -> Any:
        """The value kept under `key`, or `default`; never computes."""
        with self._guard:
            value = self._values.get(key, MISSING)
            if value is MISSING:
                return default
            self._values.move_to_end(key)
            return value

    def put(self, key: Hashable, value: Any) -> Any:
        with self._guard:
            self._values[key] = value
            self._values.move_to_end(key)
            while len(self._values) > self.limit:
                self._values.popitem(last=False)
        return value

    def __call__(self, key: Hashable, compute: Callable[[], Any]) -> Any:
        """The value under `key`, computed once by `compute()` if not kept."""
        value = self.get(key, MISSING)
        if value is not MISSING:
            return value
        with self._guard:
            lock = self._computing.setdefault(key, threading.Lock())
        with lock:
            try:
                value = self.get(key, MISSING)
                if value is MISSING:
                    value = self.put(key, compute())
                return value
            finally:  # also when compute() raised: nothing is kept, the next asker retries
                with self._guard:
                    self._computing.pop(key, None)

    def clear(self) -> None:
        with self._guard:
            self._values.clear()


_MEMOS: "weakref.WeakKeyDictionary[Engine, RevisionMemo]" = weakref.WeakKeyDictionary()
_MEMOS_GUARD = threading.Lock()


def memo_of(engine: Engine) -> RevisionMemo:
    """The engine's memo (made on first use; it lives and dies with the engine)."""
    with _MEMOS_GUARD:
        memo = _MEMOS.get(engine)
        if memo is None:
            memo = _MEMOS[engine] = RevisionMemo()
        return memo
