"""Optuna users: hyperlaw's own trials take Optuna's pruning idiom, Optuna databases are
refused with the way in, and `hl.from_optuna` imports a study made by the real Optuna."""

from __future__ import annotations

import math
import sqlite3
from pathlib import Path

import pytest
from click.testing import CliRunner

import hyperlaw as hl
from hyperlaw.cli import cli

optuna = pytest.importorskip("optuna")
optuna.logging.set_verbosity(optuna.logging.WARNING)


def _tables(path: Path) -> set[str]:
    with sqlite3.connect(path) as db:
        return {r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type='table'")}


def _optuna_study(path: Path, name: str = "optuna-study") -> optuna.Study:
    """A study written by the real Optuna: complete, pruned and failed trials, reports,
    attributes, every distribution kind."""
    study = optuna.create_study(study_name=name, storage=f"sqlite:///{path}",
                                direction="maximize", sampler=optuna.samplers.RandomSampler(0))
    study.set_user_attr("dataset", "iris")

    def objective(trial: optuna.Trial) -> float:
        x = trial.suggest_float("x", -1.0, 1.0)
        trial.suggest_float("lr", 1e-5, 1e-1, log=True)
        trial.suggest_float("q", 0.0, 1.0, step=0.25)
        trial.suggest_int("n", 1, 9, log=True)
        trial.suggest_categorical("kind", ["a", None, 2.5])
        trial.set_user_attr("seen", [trial.number, "x"])
        for step in range(3):
            trial.report(x + step, step)
        if trial.number == 2:
            raise optuna.TrialPruned()
        if trial.number == 3:
            raise ValueError("boom")
        return x

    study.optimize(objective, n_trials=5, catch=(ValueError,))
    return study


# --- hyperlaw's own trials ------------------------------------------------------------------
def test_a_hyperlaw_objective_may_raise_optunas_trial_pruned() -> None:
    study = hl.create_study(sampler="random", seed=0)

    def objective(trial: hl.Trial) -> float:
        x = trial.suggest_float("x", 0.0, 1.0)
        trial.report(x, 1)
        if trial.number % 2:
            raise optuna.TrialPruned()
        if trial.number == 2:
            raise optuna.exceptions.TrialPruned("pruned by hand")
        return x

    study.optimize(objective, n_trials=4, catch=())
    states = [t.state for t in study.trials]
    assert states == [hl.TrialState.COMPLETE, hl.TrialState.PRUNED, hl.TrialState.PRUNED,
                      hl.TrialState.PRUNED]
    assert study.trials[1].value == study.trials[1].intermediate[1]  # the last report


def test_an_objective_calling_should_prune_runs_on_a_hyperlaw_trial() -> None:
    study = hl.create_study(sampler="random", seed=0, scheduler="median")

    def objective(trial: hl.Trial) -> float:
        x = trial.suggest_float("x", 0.0, 1.0)
        for step in range(4):
            trial.report(x * (step + 1), step)
            if trial.should_prune():
                raise hl.TrialPruned()
        return x * 4

    study.optimize(objective, n_trials=12, catch=())
    states = {t.state for t in study.trials}
    assert hl.TrialState.FAILED not in states
    assert hl.TrialState.PRUNED in states  # the median rule still stops the worse ones


# --- an Optuna database opened by hyperlaw --------------------------------------------------
def test_opening_an_optuna_database_says_what_it_is_and_adds_nothing(tmp_path: Path) -> None:
    path = tmp_path / "optuna.db"
    _optuna_study(path)
    before = _tables(path)
    url = f"sqlite:///{path}"
    for open_it in (lambda: hl.create_study("mine", storage=url),
                    lambda: hl.load_study("optuna-study", storage=url),
                    lambda: hl.list_studies(url)):
        with pytest.raises(hl.StorageError) as caught:
            open_it()
        message = str(caught.value)
        assert "is an Optuna database" in message
        assert "'optuna-study'" in message  # the study it holds
        assert "hl.from_optuna(" in message and "hyperlaw import-optuna" in message
    assert _tables(path) == before  # no hyperlaw tables beside Optuna's
    with sqlite3.connect(path) as conn:  # nor switched to WAL mode by the refused opening
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "delete"
    result = CliRunner().invoke(cli, ["studies", "--storage", url])
    assert result.exit_code == 1 and "is an Optuna database" in result.output


# --- import ----------------------------------------------------------------------------------
def test_from_optuna_imports_trials_reports_attributes_and_the_space(tmp_path: Path) -> None:
    path = tmp_path / "optuna.db"
    source = _optuna_study(path)
    target = tmp_path / "hyperlaw.db"
    study = hl.from_optuna(f"sqlite:///{path}", "optuna-study", to=f"sqlite:///{target}")

    assert study.name == "optuna-study" and study.direction == "maximize"
    assert study.user_attrs == {"dataset": "iris"}
    theirs = source.trials
    ours = hl.load_study("optuna-study", f"sqlite:///{target}").trials
    assert [t.number for t in ours] == [t.number for t in theirs]
    states = {"COMPLETE": "complete", "PRUNED": "pruned", "FAIL": "failed"}
    for mine, other in zip(ours, theirs, strict=True):
        assert mine.state.value == states[other.state.name]
        assert mine.params == other.params  # the values the objective saw, choices included
        assert mine.intermediate == other.intermediate_values
        assert mine.user_attrs == other.user_attrs
        assert mine.system_attrs["optuna"]["trial_id"] == other._trial_id
        assert mine.started_at == pytest.approx(other.datetime_start.timestamp())
        if other.state.name == "FAIL":
            assert mine.value is None and "failed in Optuna" in (mine.error or "")
        else:
            assert mine.value == other.value
    space = study.space
    assert space["lr"] == hl.Float(1e-5, 1e-1, log=True)
    assert space["q"] == hl.Float(0.0, 1.0, step=0.25)
    assert space["n"] == hl.Int(1, 9, log=True)
    assert space["kind"] == hl.Choice(["a", None, 2.5])
    assert study.best_value == max(t.value for t in theirs if t.state.name == "COMPLETE")

    study.optimize(lambda t: t.suggest_float("x", -1.0, 1.0), n_trials=2)  # it goes on
    assert len(study.trials) == len(theirs) + 2
    assert "optuna-study" in [s.name for s in hl.list_studies(f"sqlite:///{target}")]


def test_from_optuna_names_the_studies_it_has_and_never_writes(tmp_path: Path) -> None:
    path = tmp_path / "optuna.db"
    _optuna_study(path)
    before = path.read_bytes()
    with pytest.raises(hl.StudyNotFoundError, match=r"no study 'other'.*'optuna-study'"):
        hl.from_optuna(f"sqlite:///{path}", "other")
    study = hl.from_optuna(f"sqlite:///{path}", "optuna-study", name="copy")
    assert study.name == "copy" and study.storage == "memory"
    assert path.read_bytes() == before
    with pytest.raises(hl.StorageError, match="no database file"):
        hl.from_optuna(f"sqlite:///{tmp_path / 'missing.db'}", "x")


def test_import_optuna_command(tmp_path: Path) -> None:
    path = tmp_path / "optuna.db"
    _optuna_study(path)
    target = f"sqlite:///{tmp_path / 'hyperlaw.db'}"
    result = CliRunner().invoke(cli, ["import-optuna", f"sqlite:///{path}", "--study",
                                      "optuna-study", "--to", target])
    assert result.exit_code == 0, result.output
    assert "5 trials" in result.output
    assert len(hl.load_study("optuna-study", target).trials) == 5
    assert not math.isnan(hl.load_study("optuna-study", target).best_value)


def test_from_optuna_imports_several_objectives_and_constraints(tmp_path: Path) -> None:
    path = tmp_path / "optuna.db"
    sampler = optuna.samplers.NSGAIISampler(
        seed=0, population_size=4, constraints_func=lambda t: [t.params["x"] - 0.5])
    source = optuna.create_study(study_name="mo", storage=f"sqlite:///{path}", sampler=sampler,
                                 directions=["minimize", "maximize"])

    def objective(trial: optuna.Trial) -> tuple[float, float]:
        x = trial.suggest_float("x", 0, 1)
        trial.set_constraint("budget", x - 0.9)  # Optuna 5's named constraints
        return x, x**2

    source.optimize(objective, n_trials=8)
    study = hl.from_optuna(f"sqlite:///{path}", "mo")
    assert study.directions == ("minimize", "maximize")
    for mine, other in zip(study.trials, source.trials, strict=True):
        assert mine.values == tuple(other.values)
        x = other.params["x"]
        assert mine.constraints == {"c0": (x - 0.5, None, 0.0), "budget": (x - 0.9, None, 0.0)}
        assert mine.feasible == (x <= 0.5)
    assert {t.number for t in study.best_trials} == {t.number for t in source.best_trials}
