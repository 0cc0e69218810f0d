"""Shared fixtures: every storage-agnostic test runs on memory and on a real SQLite file."""

from __future__ import annotations

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
