"""Shared fixtures: every storage-agnostic test runs on memory and on a real SQLite file."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

import hyperlaw as hl


@pytest.fixture(params=["memory", "sqlite"])
def storage(request: pytest.FixtureRequest, tmp_path: Path) -> str | None:
    """None (in-memory) or the URL of a fresh SQLite file."""
    return None if request.param == "memory" else f"sqlite:///{tmp_path / 'study.db'}"


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'study.db'}"


@pytest.fixture
def contract_space() -> hl.Space:
    """The space of the public-API example."""
    return hl.Space({
        "lr": hl.Float(1e-5, 1e-1, log=True),
        "width": hl.Int(16, 512, log=True),
        "layers": hl.Int(1, 4),
        "optimizer": hl.Choice(["adamw", "sgd"]),
        "momentum": hl.Float(0.0, 0.99, when={"optimizer": "sgd"}),
    })


@pytest.fixture(scope="session")
def postgres_server() -> str:
    """The URL of the test PostgreSQL server (HYPERLAW_TEST_POSTGRES, else the one that
    scripts/test-services.sh starts). Fails, never skips, when there is none."""
    from services import postgres_server_url

    return postgres_server_url()


@pytest.fixture
def postgres_url(postgres_server: str) -> Iterator[str]:
    """A fresh, empty PostgreSQL database on the test server, dropped afterwards."""
    from services import fresh_postgres_database

    with fresh_postgres_database(postgres_server) as url:
        yield url
