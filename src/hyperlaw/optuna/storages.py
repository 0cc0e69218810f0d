"""Optuna's storage classes as far as scripts name them: a database URL is all hyperlaw
needs (`create_study(storage=RDBStorage(url))` is `create_study(storage=url)`)."""

from __future__ import annotations

from typing import Any

from hyperlaw.errors import HyperlawError

__all__ = ["InMemoryStorage", "JournalStorage", "RDBStorage"]


class RDBStorage:
    """A SQL database by URL (SQLite or PostgreSQL); engine and heartbeat options are
    hyperlaw's own and are ignored here."""

    def __init__(self, url: str, engine_kwargs: dict[str, Any] | None = None,
                 skip_compatibility_check: bool = False, *,
                 heartbeat_interval: int | None = None, grace_period: int | None = None,
                 failed_trial_callback: Any = None, skip_table_creation: bool = False) -> None:
        self.url = url

    def __repr__(self) -> str:
        return f"RDBStorage({self.url!r})"


def InMemoryStorage() -> None:
    """In memory: `storage=None`."""
    return None


def JournalStorage(*args: Any, **kwargs: Any) -> None:
    """Not offered: hyperlaw shares studies through SQLite or PostgreSQL."""
    raise HyperlawError("hyperlaw has no journal storage; pass a SQLite URL "
                        "('sqlite:///study.db', one machine) or PostgreSQL (many machines)")
