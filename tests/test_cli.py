"""Tests for the `hyperlaw` command line."""

from __future__ import annotations

import csv
import io
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

import hyperlaw as hl
from hyperlaw.cli import cli
from hyperlaw.export import trial_to_dict

HYPERLAW = Path(sys.executable).parent / "hyperlaw"


@pytest.fixture(autouse=True)
def _no_env_storage(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("HYPERLAW_STORAGE", raising=False)


@pytest.fixture
def url(tmp_path: Path) -> str:
    """A SQLite storage with study 'demo' (every trial state) and study 'up' (maximize)."""
    url = f"sqlite:///{tmp_path / 'cli.db'}"
    space = {"lr": hl.Float(1e-4, 1e-1, log=True), "width": hl.Int(8, 64)}
    study = hl.create_study("demo", storage=url, space=space, seed=0)
    for value in (0.5, 0.25, 0.75):
        trial = study.ask()
        trial.report(value + 1.0, step=0)
        trial.report(value + 0.5, step=1)
        study.tell(trial, value)
    trial = study.ask()
    trial.report(2.0, step=0)
    study.tell(trial, state="pruned")
    study.tell(study.ask(), state="failed", error="diverged")
    study.ask()  # left running
    study.enqueue({"lr": 0.01, "width": 16})
    study.store.close()
    up = hl.create_study("up", storage=url, direction="maximize", seed=0)
    trial = up.ask()
    trial.suggest_int("n", 1, 3)
    up.tell(trial, 3.0)
    up.store.close()
    return url


def run(*args: str, input: str | None = None) -> Result:
    return CliRunner().invoke(cli, list(args), input=input)


def assert_clean_error(result: Result, *fragments: str) -> None:
    assert result.exit_code == 1, result.output
    assert result.stderr.startswith("error: ")
    assert "Traceback" not in result.output
    for fragment in fragments:
        assert fragment in result.stderr


def test_help_and_version() -> None:
    result = run("--help")
    assert result.exit_code == 0
    for command in ("studies", "trials", "best", "export", "delete", "optimize"):
        assert command in result.output
        assert run(command, "--help").exit_code == 0
    result = run("--version")
    assert result.exit_code == 0
    assert hl.__version__ in result.output


def test_missing_storage_is_a_usage_error() -> None:
    result = run("studies")
    assert result.exit_code == 2
    assert "--storage sqlite:///hyperlaw.db" in result.stderr
    assert "HYPERLAW_STORAGE" in result.stderr


def test_studies_table(url: str) -> None:
    result = run("studies", "--storage", url)
    assert result.exit_code == 0, result.output
    lines = {line.split()[0]: line.split() for line in result.output.splitlines()
             if line.strip() and line.split()[0] in ("demo", "up")}
    # name, direction, complete, pruned, failed, running, waiting, best, last activity
    assert lines["demo"][:8] == ["demo", "minimize", "3", "1", "1", "1", "1", "0.25"]
    assert lines["up"][:8] == ["up", "maximize", "1", "0", "0", "0", "0", "3"]
    assert lines["demo"][8].endswith("+00:00")


def test_studies_json_from_env(url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HYPERLAW_STORAGE", url)
    result = run("studies", "--json")
    assert result.exit_code == 0, result.output
    listing = {s["name"]: s for s in json.loads(result.stdout)}
    assert listing["demo"]["counts"] == {"complete": 3, "pruned": 1, "failed": 1,
                                         "running": 1, "waiting": 1}
    assert listing["demo"]["n_trials"] == 7
    assert listing["demo"]["best_value"] == 0.25
    assert listing["up"]["best_value"] == 3.0
    assert listing["up"]["direction"] == "maximize"


def test_trials_table_and_filters(url: str) -> None:
    result = run("trials", "--storage", url, "--study", "demo")
    assert result.exit_code == 0, result.output
    rows = [line.split() for line in result.output.splitlines() if line.strip()[:1].isdigit()]
    assert [(r[0], r[1]) for r in rows] == [
        ("0", "complete"), ("1", "complete"), ("2", "complete"), ("3", "pruned"),
        ("4", "failed"), ("5", "running"), ("6", "waiting")]
    assert rows[1][2] == "0.25"
    assert "lr=" in result.output and "width=16" in result.output

    result = run("trials", "--storage", url, "--study", "demo", "--state", "pruned",
                 "--state", "failed", "--json")
    assert result.exit_code == 0, result.output
    listed = json.loads(result.stdout)
    assert [(t["number"], t["state"]) for t in listed] == [(3, "pruned"), (4, "failed")]
    assert listed[0]["intermediate"] == {"0": 2.0}
    assert listed[0]["value"] == 2.0
    assert listed[1]["error"] == "diverged"

    result = run("trials", "--storage", url, "--study", "demo", "--limit", "2", "--json")
    assert [t["number"] for t in json.loads(result.stdout)] == [5, 6]
    result = run("trials", "--storage", url, "--study", "demo", "--limit", "50", "--json")
    assert len(json.loads(result.stdout)) == 7


def test_best(url: str) -> None:
    study = hl.load_study("demo", url)
    result = run("best", "--storage", url, "--study", "demo", "--json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout) == {"params": study.best_params,
                                         "value": study.best_value}
    result = run("best", "--storage", url, "--study", "demo")
    assert result.exit_code == 0, result.output
    assert "#1" in result.output and "0.25" in result.output
    assert f"width = {study.best_params['width']}" in result.output


def test_export_csv(url: str, tmp_path: Path) -> None:
    study = hl.load_study("demo", url)
    result = run("export", "--storage", url, "--study", "demo", "--format", "csv")
    assert result.exit_code == 0, result.output
    rows = list(csv.DictReader(io.StringIO(result.stdout)))
    assert len(rows) == len(study.trials) == 7
    assert {"number", "state", "value", "params_lr", "params_width"} <= set(rows[0])
    assert [int(r["number"]) for r in rows] == list(range(7))
    assert float(rows[1]["params_lr"]) == study.trials[1].params["lr"]

    out = tmp_path / "demo.csv"
    result = run("export", "--storage", url, "--study", "demo", "--format", "csv",
                 "--out", str(out))
    assert result.exit_code == 0, result.output
    assert str(out) in result.output and "7 trials" in result.output
    assert out.read_text() == run("export", "--storage", url, "--study", "demo",
                                  "--format", "csv").stdout


def test_export_json_round_trips(url: str, tmp_path: Path) -> None:
    study = hl.load_study("demo", url)
    out = tmp_path / "demo.json"
    result = run("export", "--storage", url, "--study", "demo", "--format", "json",
                 "--out", str(out))
    assert result.exit_code == 0, result.output
    data = json.loads(out.read_text())
    assert data == {"study": "demo", "direction": "minimize",
                    "trials": [trial_to_dict(t) for t in study.trials]}
    stdout = run("export", "--storage", url, "--study", "demo", "--format", "json").stdout
    assert json.loads(stdout) == data


def test_export_to_unwritable_path(url: str, tmp_path: Path) -> None:
    out = tmp_path / "missing-dir" / "x.csv"
    result = run("export", "--storage", url, "--study", "demo", "--format", "csv",
                 "--out", str(out))
    assert_clean_error(result, "missing-dir")


def test_delete(url: str) -> None:
    result = run("delete", "--storage", url, "--study", "demo", input="n\n")
    assert result.exit_code == 1
    assert [s.name for s in hl.list_studies(url)] == ["demo", "up"]

    result = run("delete", "--storage", url, "--study", "demo", "--yes")
    assert result.exit_code == 0, result.output
    assert [s.name for s in hl.list_studies(url)] == ["up"]
    assert_clean_error(run("best", "--storage", url, "--study", "demo"), "'demo'")


def test_missing_study(url: str) -> None:
    for command in ("trials", "best", "delete"):
        assert_clean_error(run(command, "--storage", url, "--study", "nope"), "'nope'", "'demo'")


def test_best_without_complete_trial(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'empty.db'}"
    hl.create_study("empty", storage=url).store.close()
    assert_clean_error(run("best", "--storage", url, "--study", "empty"), "'empty'")


def test_unopenable_storage() -> None:
    result = run("studies", "--storage", "sqlite:////nonexistent-dir/x.db")
    assert_clean_error(result, "nonexistent-dir")
    assert_clean_error(run("studies", "--storage", "nosuchdb://x"), "nosuchdb")


def test_password_is_never_printed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HYPERLAW_RECONNECT_TIMEOUT", "1")  # the server never answers
    for command in (["studies"], ["best", "--study", "s"], ["trials", "--study", "s"]):
        result = run(*command, "--storage", "postgresql://user:secret@localhost:1/db")
        assert result.exit_code == 1, result.output
        assert "secret" not in result.output
        assert "Traceback" not in result.output


OBJECTIVE = '''
import hyperlaw as hl

SPACE = hl.Space({"x": hl.Float(-5.0, 5.0)})


def objective(trial):
    x = trial.suggest_float("x", -5.0, 5.0)
    for step in range(2):
        trial.report((x - 1.0) ** 2 + 1.0 / (step + 1), step)
    return (x - 1.0) ** 2


def declared(trial):
    return -abs(trial.params["x"])


def broken(trial):
    raise ValueError("boom in the objective")


NOT_A_SPACE = 3
'''


@pytest.fixture
def objective_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    (tmp_path / "cli_objective_mod.py").write_text(OBJECTIVE)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "path", list(sys.path))
    monkeypatch.delitem(sys.modules, "cli_objective_mod", raising=False)
    return tmp_path


def test_optimize_creates_and_continues(objective_dir: Path) -> None:
    url = f"sqlite:///{objective_dir / 'opt.db'}"
    args = ["optimize", "--storage", url, "--study", "opt", "--objective",
            "cli_objective_mod:objective", "--seed", "3", "--no-progress"]
    result = run(*args, "--n-trials", "5")
    assert result.exit_code == 0, result.output
    study = hl.load_study("opt", url)
    assert len(study.trials) == 5
    assert all(t.state is hl.TrialState.COMPLETE for t in study.trials)
    assert repr(study.best_value) in result.output
    assert "x = " in result.output

    result = run(*args, "--n-trials", "2", "--sampler", "random")
    assert result.exit_code == 0, result.output
    assert len(hl.load_study("opt", url).trials) == 7


def test_optimize_declared_space_and_direction(objective_dir: Path) -> None:
    url = f"sqlite:///{objective_dir / 'opt.db'}"
    args = ["optimize", "--storage", url, "--study", "max", "--objective",
            "cli_objective_mod:declared", "--space", "cli_objective_mod:SPACE",
            "--n-trials", "3", "--no-progress"]
    result = run(*args, "--direction", "maximize")
    assert result.exit_code == 0, result.output
    # continuing without --direction keeps the stored one
    result = run(*args)
    assert result.exit_code == 0, result.output
    study = hl.load_study("max", url)
    assert study.direction == "maximize"
    assert len(study.trials) == 6
    assert study.best_value == max(t.value for t in study.trials)


def test_optimize_failing_objective(objective_dir: Path) -> None:
    url = f"sqlite:///{objective_dir / 'opt.db'}"
    result = run("optimize", "--storage", url, "--study", "bad", "--objective",
                 "cli_objective_mod:broken", "--n-trials", "30", "--no-progress")
    assert result.exit_code == 1, result.output
    # the message carries the objective's own last traceback, not the CLI's
    assert result.stderr.startswith("error: ")
    assert "failed in a row" in result.stderr and "boom in the objective" in result.stderr
    assert "hyperlaw/cli.py" not in result.stderr
    study = hl.load_study("bad", url)
    assert 0 < len(study.trials) < 30
    assert all(t.state is hl.TrialState.FAILED for t in study.trials)


def test_optimize_import_errors(objective_dir: Path) -> None:
    url = f"sqlite:///{objective_dir / 'opt.db'}"
    base = ["optimize", "--storage", url, "--study", "s", "--n-trials", "1"]
    assert_clean_error(run(*base, "--objective", "no_such_module_xyz:f"),
                       "'no_such_module_xyz'")
    assert_clean_error(run(*base, "--objective", "cli_objective_mod:missing"), "'missing'")
    assert_clean_error(run(*base, "--objective", "cli_objective_mod"), "MODULE:FUNCTION")
    assert_clean_error(run(*base, "--objective", "cli_objective_mod:objective",
                           "--space", "cli_objective_mod:NOT_A_SPACE"), "NOT_A_SPACE")
    assert hl.list_studies(url) == []


def test_console_script(url: str, tmp_path: Path) -> None:
    """The installed `hyperlaw` script: output for scripts, and clean errors."""
    result = subprocess.run([str(HYPERLAW), "best", "--study", "demo", "--json"],
                            capture_output=True, text=True, timeout=60,
                            env={**os.environ, "HYPERLAW_STORAGE": url})
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == {"params": hl.load_study("demo", url).best_params,
                                         "value": 0.25}

    secret = "postgresql://user:secret@localhost:1/db"
    result = subprocess.run([str(HYPERLAW), "studies", "--storage", secret],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 1
    assert result.stderr.startswith("error: ")
    assert "secret" not in result.stdout + result.stderr
    assert "Traceback" not in result.stderr


def test_command_modules_share_only_common() -> None:
    """Each command module of hyperlaw.cli imports, of its siblings, only the shared helpers
    (`common`, `sweep_config`): no import cycle, and any of them can be read alone."""
    import ast

    import hyperlaw.cli

    package = Path(hyperlaw.cli.__file__).parent
    for path in package.glob("*.py"):
        if path.name in ("__init__.py", "__main__.py"):
            continue
        tree = ast.parse(path.read_text())
        imported = {node.module for node in ast.walk(tree)
                    if isinstance(node, ast.ImportFrom) and node.module}
        siblings = {m for m in imported if m.startswith("hyperlaw.cli")}
        assert siblings <= {"hyperlaw.cli.common", "hyperlaw.cli.sweep_config"}, \
            (path.name, siblings)
