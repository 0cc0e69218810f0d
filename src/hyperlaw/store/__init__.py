"""Where studies live: in memory, or in a SQL database shared by processes and machines."""

from __future__ import annotations

from typing import TYPE_CHECKING

from hyperlaw.errors import StorageError
from hyperlaw.store.base import Changes, Report, Store, StudyInfo, StudySummary
from hyperlaw.store.common import check_url, mask_url
from hyperlaw.store.memory import MemoryStore

if TYPE_CHECKING:
    from hyperlaw.store.sql import OpenMode

__all__ = ["Changes", "MemoryStore", "Report", "Store", "StudyInfo", "StudySummary",
           "open_store"]


def open_store(storage: str | Store | None, *, mode: OpenMode = "create") -> Store:
    """A store from a URL (`sqlite:///file.db`, `postgresql://...`), a Store, or None (memory).

    `mode` "create" creates the database and hyperlaw's tables when missing; "open" needs an
    existing hyperlaw database; "read" also never writes to it (a read-only file is fine).
    """
    if storage is None or isinstance(storage, Store):
        return storage or MemoryStore()
    if not isinstance(storage, str):
        raise StorageError(
            f"storage must be a URL string, a hyperlaw Store or None, got "
            f"{type(storage).__name__}; use e.g. storage='sqlite:///hyperlaw.db'"
        )
    if storage == "memory":
        return MemoryStore()
    scheme = storage.split(":", 1)[0].split("+", 1)[0].lower()
    if scheme not in ("sqlite", "postgresql", "postgres", "mysql"):
        raise StorageError(
            f"unsupported storage URL {mask_url(storage)!r}; use 'sqlite:///path.db' "
            "(embedded), 'postgresql://user@host/db', or None for memory"
        )
    from hyperlaw.store.sql import SqlStore

    check_url(storage)
    return SqlStore(storage, mode=mode)
