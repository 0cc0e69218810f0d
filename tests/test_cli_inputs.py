"""The command line with awkward input: passwords with an unencoded `@`, objectives given as a
file path, and running as `python -m hyperlaw.cli`."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

import hyperlaw as hl
from hyperlaw.cli import cli
from hyperlaw.errors import StorageError
from hyperlaw.store import open_store

AT_URL = "postgresql://user:top@secret@localhost:1/db"
COMMANDS = (["studies"], ["trials", "--study", "s"], ["best", "--study", "s"],
            ["export", "--study", "s", "--format", "json"], ["delete", "--study", "s", "-y"],
            ["report", "--study", "s", "--out", "r.html"], ["dashboard", "--port", "0"],
            ["optimize", "--study", "s", "--objective", "m:f", "--n-trials", "1"],
            ["worker", "--study", "s", "--objective", "m:f"])


@pytest.fixture(autouse=True)
def _no_env_storage(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("HYPERLAW_STORAGE", raising=False)
    monkeypatch.setenv("HYPERLAW_RECONNECT_TIMEOUT", "1")


def run(*args: str) -> Result:
    return CliRunner().invoke(cli, list(args))


def assert_clean_error(result: Result, *fragments: str) -> None:
    assert result.exit_code == 1, result.output
    assert result.stderr.startswith("error: "), result.output
    assert "Traceback" not in result.output
    for fragment in fragments:
        assert fragment in result.stderr, result.stderr


@pytest.mark.parametrize("command", COMMANDS, ids=lambda c: c[0])
def test_an_unencoded_at_in_the_password_is_explained_and_never_shown(
        command: list[str]) -> None:
    result = run(*command, "--storage", AT_URL)
    assert_clean_error(result, "%40", "postgresql://user:***@localhost:1/db")
    assert "secret" not in result.output and "top" not in result.output


def test_the_library_explains_an_unencoded_at() -> None:
    with pytest.raises(StorageError, match="%40") as info:
        open_store(AT_URL)
    assert "secret" not in str(info.value) and "top@" not in str(info.value)
    with pytest.raises(StorageError, match="%40"):
        hl.create_study("s", storage=AT_URL)


def test_python_dash_m_hyperlaw_cli(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'm.db'}"
    hl.create_study("s", storage=url).store.close()
    result = subprocess.run([sys.executable, "-m", "hyperlaw.cli", "studies", "--storage", url],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert "s" in result.stdout.split()


OBJECTIVE = """
import neighbour_mod_c


def objective(trial):
    x = trial.suggest_float("x", -1.0, 1.0)
    return neighbour_mod_c.square(x)
"""


@pytest.fixture
def layout(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """code/train_file_c.py (importing its neighbour) and run/ as the working directory."""
    code, here = tmp_path / "code", tmp_path / "run"
    code.mkdir()
    here.mkdir()
    (code / "train_file_c.py").write_text(OBJECTIVE)
    (code / "neighbour_mod_c.py").write_text("def square(x):\n    return x * x\n")
    (code / "broken_c.py").write_text("raise RuntimeError('cannot start')\n")
    (code / "syntax_c.py").write_text("def objective(trial)\n")
    monkeypatch.chdir(here)
    monkeypatch.setattr(sys, "path", list(sys.path))
    for name in ("train_file_c", "neighbour_mod_c", "broken_c", "syntax_c"):
        monkeypatch.delitem(sys.modules, name, raising=False)
    return here


@pytest.mark.parametrize("relative", [True, False])
def test_an_objective_given_as_a_file(layout: Path, relative: bool) -> None:
    path = "../code/train_file_c.py" if relative else str(layout.parent / "code" /
                                                           "train_file_c.py")
    url = f"sqlite:///{layout / 'o.db'}"
    result = run("optimize", "--storage", url, "--study", "f", "--objective",
                 f"{path}:objective", "--n-trials", "3", "--no-progress")
    assert result.exit_code == 0, result.output
    assert len(hl.load_study("f", url).trials) == 3


def test_an_objective_file_that_cannot_load_is_a_clean_error(layout: Path) -> None:
    url = f"sqlite:///{layout / 'o.db'}"
    base = ["optimize", "--storage", url, "--study", "f", "--n-trials", "1"]
    missing = layout.parent / "code" / "missing.py"
    assert_clean_error(run(*base, "--objective", "../code/missing.py:objective"),
                       str(missing), "check the path")
    assert_clean_error(run(*base, "--objective", "../code/broken_c.py:objective"),
                       "broken_c.py", "RuntimeError: cannot start", "fix the file")
    assert_clean_error(run(*base, "--objective", "../code/syntax_c.py:objective"),
                       "syntax_c.py", "SyntaxError")
    assert_clean_error(run(*base, "--objective", "../code/train_file_c.py:nope"),
                       "'nope'")


def test_a_worker_refuses_a_trial_count_for_a_pbt_study(tmp_path: Path) -> None:
    storage = f"sqlite:///{tmp_path / 'pbt.db'}"
    hl.create_study("pbt", storage=storage, space={"lr": hl.Float(1e-4, 1e-1, log=True)},
                    scheduler=hl.schedulers.PBT(population_size=2, interval=2),
                    checkpoint_dir=str(tmp_path / "ckpt"))
    objective = tmp_path / "train.py"
    objective.write_text("def f(trial):\n    return trial.params['lr']\n")
    result = run("worker", "--storage", storage, "--study", "pbt", "--objective",
                 f"{objective}:f", "--n-trials", "3")
    assert_clean_error(result, "PBT", "n_trials=3")
    assert hl.load_study("pbt", storage=storage).trials == []
