"""Studies the dashboard has open, each kept current by reading the store from its cursor."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TypeVar

from hyperlaw.analysis.columns import StudyColumns
from hyperlaw.errors import StorageError
from hyperlaw.space import Space
from hyperlaw.store.base import Store, StudyInfo

T = TypeVar("T")


@dataclass
class _Entry:
    info: StudyInfo
    columns: StudyColumns
    lock: threading.Lock = field(default_factory=threading.Lock)
    refreshed_at: float = 0.0


class StudyCache:
    """Columns of each study asked for, refreshed at most every `min_interval` seconds.

    Every read goes through the Store API: a refresh is one `changes_since(cursor)`, which
    costs one indexed query when nothing changed.
    """

    def __init__(self, store: Store, min_interval: float = 0.25) -> None:
        self.store = store
        self.min_interval = min_interval
        self._entries: dict[str, _Entry] = {}
        self._lock = threading.Lock()

    @contextmanager
    def study(self, name: str) -> Iterator[tuple[StudyInfo, StudyColumns]]:
        """The study's info and current columns, held locked for the caller's reads."""
        entry = self._entry(name)
        with entry.lock:
            now = time.monotonic()
            if now - entry.refreshed_at >= self.min_interval:
                try:
                    entry.columns.refresh(self.store)
                except StorageError:  # deleted (and maybe re-created) meanwhile
                    with self._lock:
                        self._entries.pop(name, None)
                    raise
                entry.refreshed_at = now
                self._learn_space(entry)
            yield entry.info, entry.columns

    def read(self, name: str, fn: Callable[[StudyInfo, StudyColumns], T]) -> T:
        with self.study(name) as (info, columns):
            return fn(info, columns)

    def _entry(self, name: str) -> _Entry:
        with self._lock:
            entry = self._entries.get(name)
        if entry is not None:
            return entry
        info = self.store.get_study(name)  # raises StudyNotFoundError naming the studies
        columns = StudyColumns.for_study(info)
        with self._lock:
            return self._entries.setdefault(name, _Entry(info, columns))

    def _learn_space(self, entry: _Entry) -> None:
        """Re-read the space when trials brought parameters it did not have (define-by-run)."""
        known: Mapping[str, object] = entry.columns.space or {}
        if all(name in known for name in entry.columns.params):
            return
        entry.info = self.store.get_study(entry.info.name)
        entry.columns.update_space(_space(entry.info))


def _space(info: StudyInfo) -> Space | None:
    return Space.from_json(info.space_json) if info.space_json else None
