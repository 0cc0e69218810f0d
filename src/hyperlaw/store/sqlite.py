"""SQLite specifics of opening a store: where the file is, and how to read it without
writing to it.

A reader opens the file with SQLite's `mode=ro`, so it never creates a file, a table or a
journal mode. A WAL-mode database in a directory nobody may write to cannot be opened so
(SQLite needs its `-shm` file); it is then opened `immutable=1`, which reads the file as it
is, and only when no `-wal` file holds data that is not in it yet.
"""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Callable
from pathlib import Path
from urllib.parse import quote

import sqlalchemy as sa

from hyperlaw.errors import StorageError

CONNECT_TIMEOUT = 60.0  # seconds a connection waits for another process's lock


def database_path(url: sa.URL) -> str | None:
    """The file of a SQLite URL, or None for an in-memory database."""
    if url.database in (None, "", ":memory:") or url.query.get("mode") == "memory":
        return None
    return url.database


def require_file(path: str, shown_url: str) -> None:
    """Raise a StorageError unless `path` is an existing database file."""
    if os.path.isdir(path):
        raise StorageError(f"storage {shown_url!r}: {path!r} is a directory, not a database "
                           "file; point the URL at the database file")
    if not os.path.exists(path):
        raise StorageError(
            f"storage {shown_url!r}: no database file {path!r}; check the storage URL "
            "(reading a study never creates a database; create_study or `hyperlaw optimize` "
            "creates one)")


def writable(path: str) -> bool:
    """Whether this process may write the database file and create files beside it."""
    return os.access(path, os.W_OK) and os.access(Path(path).parent, os.W_OK)


def reader(path: str, shown_url: str) -> Callable[[], sqlite3.Connection]:
    """A connection factory that opens `path` read-only (see the module docstring)."""
    absolute = quote(os.path.abspath(path))
    uri = f"file:{absolute}?mode=ro"
    if not _opens(uri) and not os.access(Path(path).parent, os.W_OK):
        wal = Path(f"{path}-wal")
        if wal.exists() and wal.stat().st_size > 0:
            raise StorageError(
                f"storage {shown_url!r}: cannot read {path!r}: its directory is read-only "
                f"and {str(wal)!r} holds changes not yet in the database; open it once "
                "where it is writable (or copy the directory) to merge them")
        uri = f"file:{absolute}?mode=ro&immutable=1"

    def connect() -> sqlite3.Connection:
        return sqlite3.connect(uri, uri=True, timeout=CONNECT_TIMEOUT,
                               check_same_thread=False)

    return connect


def _opens(uri: str) -> bool:
    try:
        conn = sqlite3.connect(uri, uri=True, timeout=CONNECT_TIMEOUT)
    except sqlite3.Error:
        return False
    try:
        conn.execute("PRAGMA schema_version").fetchone()
    except sqlite3.OperationalError:  # "unable to open", "attempt to write": no -shm
        return False
    except sqlite3.DatabaseError:  # e.g. not a database: reported when reading
        return True
    finally:
        conn.close()
    return True
