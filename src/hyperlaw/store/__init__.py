"""Where studies live: in memory, or in a SQL database shared by processes and machines."""

from __future__ import annotations

from typing import TYPE_CHECKING

from hyperlaw.errors import StorageError, UnsupportedStorageError
from hyperlaw.store.base import Changes, Report, Store, StudyInfo, StudySummary
from hyperlaw.store.common import mask_url
from hyperlaw.store.memory import MemoryStore

if TYPE_CHECKING:
    from hyperlaw.store.sql import OpenMode

_SUPPORTED_SCHEMES = ("sqlite", "postgresql", "postgres")

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
    if scheme not in _SUPPORTED_SCHEMES:
        raise UnsupportedStorageError(_unsupported_message(storage, scheme))
    from hyperlaw.store.sql import SqlStore

    return SqlStore(storage, mode=mode)  # it checks the URL itself


def _unsupported_message(url: str, scheme: str) -> str:
    why = ("MySQL and MariaDB have no UPDATE ... RETURNING, which every write uses; "
           if scheme in ("mysql", "mariadb") else "")
    return (f"unsupported storage URL {mask_url(url)!r}: {why}hyperlaw stores studies in "
            "SQLite ('sqlite:///path.db', one machine), PostgreSQL "
            "('postgresql://user@host/db', many machines) or memory (storage=None)")
