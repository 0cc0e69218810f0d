"""Reading never writes: no new file, no hyperlaw tables in another application's database, no
change of its journal mode; a database that cannot be written is still readable."""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from click.testing import CliRunner

import hyperlaw as hl
from hyperlaw.cli import cli
from hyperlaw.errors import StorageError
from hyperlaw.store import postgres

READING_COMMANDS = (["studies"], ["trials", "--study", "s"], ["best", "--study", "s"],
                    ["export", "--study", "s", "--format", "csv"],
                    ["report", "--study", "s", "--out", "{out}"],
                    ["dashboard", "--port", "0"],
                    ["scaling", "fit", "--name", "g", "--target", "lr"])


@pytest.fixture(autouse=True)
def _no_env_storage(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("HYPERLAW_STORAGE", raising=False)


def _cli(args: list[str], url: str, out: Path) -> Any:
    args = [a.replace("{out}", str(out / "report.html")) for a in args]
    return CliRunner().invoke(cli, [*args, "--storage", url])


def _library_readers(url: str) -> list[Callable[[], Any]]:
    return [lambda: hl.load_study("s", url), lambda: hl.list_studies(url),
            lambda: hl.delete_study("s", url)]


def _app_database(path: Path) -> bytes:
    """Another application's SQLite file (rollback journal), as its bytes."""
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE users (id INTEGER PRIMARY KEY, name TEXT)")
    conn.execute("INSERT INTO users (name) VALUES ('ada')")
    conn.commit()
    conn.close()
    return path.read_bytes()


def test_a_missing_file_is_an_error_for_every_reader(tmp_path: Path) -> None:
    path = tmp_path / "typo.db"
    url = f"sqlite:///{path}"
    for args in READING_COMMANDS:
        result = _cli(args, url, tmp_path)
        assert result.exit_code == 1, (args, result.output)
        assert "no database file" in result.stderr and str(path) in result.stderr, args
        assert "Traceback" not in result.output
    for read in _library_readers(url):
        with pytest.raises(StorageError, match="no database file"):
            read()
    assert sorted(p.name for p in tmp_path.iterdir()) == []


def test_another_applications_database_is_left_byte_identical(tmp_path: Path) -> None:
    path = tmp_path / "app.db"
    before = _app_database(path)
    url = f"sqlite:///{path}"
    for args in READING_COMMANDS:
        result = _cli(args, url, tmp_path)
        assert result.exit_code == 1, (args, result.output)
        assert "not a hyperlaw database" in result.stderr and str(path) in result.stderr, args
    for read in _library_readers(url):
        with pytest.raises(StorageError, match="not a hyperlaw database"):
            read()
    assert path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["app.db"]
    conn = sqlite3.connect(path)
    assert conn.execute("PRAGMA journal_mode").fetchone() == ("delete",)
    conn.close()


def test_writers_still_create_and_migrate(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'new.db'}"
    study = hl.create_study("s", storage=url)
    study.tell(study.ask(), 1.0)
    assert [s.name for s in hl.list_studies(url)] == ["s"]
    conn = sqlite3.connect(tmp_path / "new.db")
    assert conn.execute("PRAGMA journal_mode").fetchone() == ("wal",)
    conn.close()


# --- a database nobody may write to ---------------------------------------------------------
_READER = """
import json, sys
from click.testing import CliRunner
import hyperlaw as hl
from hyperlaw.cli import cli
url, out = sys.argv[1], sys.argv[2]
study = hl.load_study("s", url)
studies = CliRunner().invoke(cli, ["studies", "--storage", url, "--json"])
report = CliRunner().invoke(cli, ["report", "--storage", url, "--study", "s", "--out", out])
try:
    study.tell(study.ask(), 9.0)
    write = "written"
except hl.errors.StorageError as exc:
    write = str(exc)
print(json.dumps({"values": [t.value for t in study.trials], "mode": study.store.mode,
                  "studies": studies.output, "report": report.exit_code, "write": write,
                  "listed": [s.name for s in hl.list_studies(url)]}))
"""


@contextmanager
def _unwritable(directory: Path) -> Iterator[dict[str, Any]]:
    """Make `directory` and its files unwritable for real, also for root; yields
    {"prefix": command} when only a reader started with that command prefix is bound."""
    files = [directory, *directory.iterdir()]
    if os.geteuid() != 0:
        for f in files:
            f.chmod(0o555 if f.is_dir() else 0o444)
        try:
            yield {}
        finally:
            for f in files:
                f.chmod(0o755 if f.is_dir() else 0o644)
        return
    chattr = shutil.which("chattr")
    if chattr and subprocess.run([chattr, "+i", *map(str, files)],
                                 capture_output=True).returncode == 0:
        try:
            yield {}  # immutable: even root cannot write, create or delete here
        finally:
            subprocess.run([chattr, "-i", *map(str, files)], check=True)
        return
    # no immutable attribute here: read as root without the capabilities that override
    # file modes, so that chmod binds it like any user
    for f in files:
        f.chmod(0o555 if f.is_dir() else 0o444)
    try:
        yield {"prefix": ["setpriv", "--bounding-set=" + ",".join(
            f"-{cap}" for cap in ("dac_override", "dac_read_search", "fowner",
                                  "linux_immutable"))]}
    finally:
        for f in files:
            f.chmod(0o755 if f.is_dir() else 0o644)


@pytest.fixture
def shared_dir() -> Iterator[Path]:
    """A directory of its own, on a filesystem that supports the immutable attribute more
    often than a tmpfs."""
    path = Path(tempfile.mkdtemp(prefix="hyperlaw-ro-"))
    path.chmod(0o755)
    (path / "db").mkdir(mode=0o755)
    (path / "out").mkdir(mode=0o777)
    (path / "out").chmod(0o777)
    yield path
    shutil.rmtree(path)


@pytest.mark.parametrize("journal", ["wal", "delete"])
def test_a_database_nobody_may_write_is_readable(shared_dir: Path, journal: str) -> None:
    path = shared_dir / "db" / "study.db"
    url = f"sqlite:///{path}"
    study = hl.create_study("s", storage=url)
    for value in (3.0, 1.0):
        trial = study.ask()
        trial.suggest_float("x", 0.0, 1.0)
        study.tell(trial, value)
    study.store.close()
    if journal == "delete":
        sa.create_engine(url).connect().exec_driver_sql("PRAGMA journal_mode=DELETE").close()
    before = path.read_bytes()
    out = shared_dir / "out" / "report.html"
    with _unwritable(path.parent) as options:
        if not options:  # this process itself cannot write there
            with pytest.raises(OSError):
                os.open(path, os.O_WRONLY)
        result = subprocess.run([*options.get("prefix", []), sys.executable, "-c", _READER,
                                 url, str(out)],
                                capture_output=True, text=True, timeout=120, cwd=shared_dir)
        assert result.returncode == 0, result.stderr
        got = json.loads(result.stdout.splitlines()[-1])
        assert sorted(p.name for p in path.parent.iterdir()) == ["study.db"]
    assert got["values"] == [3.0, 1.0]
    assert got["mode"] == "read"
    assert got["listed"] == ["s"]
    assert json.loads(got["studies"])[0]["n_trials"] == 2
    assert got["report"] == 0 and out.stat().st_size > 0
    assert "read-only" in got["write"] and str(path) in got["write"]
    assert path.read_bytes() == before


def test_postgres_reader_adds_no_tables(postgres_url: str) -> None:
    with pytest.raises(StorageError, match="not a hyperlaw database"):
        hl.list_studies(postgres_url)
    with pytest.raises(StorageError, match="not a hyperlaw database"):
        hl.load_study("s", postgres_url)
    engine = sa.create_engine(postgres.normalize_url(postgres_url), poolclass=sa.NullPool)
    with engine.connect() as conn:
        assert sa.inspect(conn).get_table_names() == []
    engine.dispose()
    hl.create_study("s", storage=postgres_url)
    assert [s.name for s in hl.list_studies(postgres_url)] == ["s"]
