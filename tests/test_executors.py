"""The Executor interface: executors chosen by name or given to optimize, on real studies."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import hyperlaw as hl
from hyperlaw.executors import (
    Executor,
    InlineExecutor,
    ProcessExecutor,
    RayExecutor,
    RunSettings,
    SimulatedExecutor,
    make_executor,
)
from hyperlaw.executors.simulated import ReplayCurve, StudyTuner, simulate
from hyperlaw.schedulers import ASHA

SPACE = {"x": hl.Float(0, 1)}


def test_names_build_the_executors_optimize_ran_before() -> None:
    assert isinstance(make_executor("auto", 1), InlineExecutor)
    assert repr(make_executor("auto", 3)) == "ProcessExecutor(n_workers=3)"
    assert repr(make_executor("processes", 1)) == "ProcessExecutor(n_workers=1)"
    assert isinstance(make_executor("inline"), InlineExecutor)
    ray = make_executor("ray", 2, {"cpu": 2, "gpu": 0.5}, "auto")
    assert isinstance(ray, RayExecutor)
    assert (ray.n_workers, ray.resources_per_trial, ray.address) == (2, {"cpu": 2, "gpu": 0.5},
                                                                      "auto")
    assert make_executor("simulated", 4).n_workers == 4  # type: ignore[attr-defined]
    given = ProcessExecutor(n_workers=2)
    assert make_executor(given) is given


@pytest.mark.parametrize(("args", "match"), [
    (("threads", 1), "executor must be 'auto'"),
    (("inline", 2), "n_workers must be 1"),
    (("auto", 0), "n_workers must be an int >= 1"),
    (("processes", True), "n_workers must be an int >= 1"),
    (("auto", 1, {"cpu": 1}), "executor='ray' only"),
    ((ProcessExecutor(2), 4), "pass them to it"),
    ((RayExecutor(2), 1, None, "auto"), "pass them to it"),
])
def test_bad_executor_settings_are_named(args: tuple[Any, ...], match: str) -> None:
    with pytest.raises(hl.HyperlawError, match=match):
        make_executor(*args)


def test_executor_constructors_check_their_settings() -> None:
    with pytest.raises(hl.HyperlawError, match="n_workers must be an int >= 1"):
        ProcessExecutor(0)
    with pytest.raises(hl.HyperlawError, match="non-negative number"):
        RayExecutor(resources_per_trial={"gpu": -1})


def test_inline_and_process_executors_given_to_optimize() -> None:
    study = hl.create_study(space=SPACE, sampler="random", seed=0)
    seen: list[int] = []
    study.optimize(lambda t: t.params["x"], n_trials=3, executor=InlineExecutor(),
                   callbacks=[lambda s, record: seen.append(record.number)],
                   show_progress=False)
    study.optimize(lambda t: (t.set_user_attr("pid", os.getpid()), t.params["x"])[1],
                   n_trials=4, executor=ProcessExecutor(n_workers=2),
                   callbacks=[lambda s, record: seen.append(record.number)],
                   show_progress=False)
    trials = study.trials
    assert [t.number for t in trials] == list(range(7))
    assert all(t.state is hl.TrialState.COMPLETE for t in trials)
    assert sorted(seen) == list(range(7))
    assert os.getpid() not in {t.user_attrs["pid"] for t in trials[3:]}  # worker processes


class _Counting(Executor):
    """An executor of one's own: runs trials here, counting them."""

    def __init__(self) -> None:
        self.ran = 0

    def run(self, study: hl.Study, objective: Any, settings: RunSettings) -> None:
        while settings.budget.take():
            record = study.run_trial(objective, settings.catch)
            self.ran += 1
            settings.delivered(study, record.number, record.state, record.value, record)


def test_an_executor_of_ones_own_gets_the_run_settings() -> None:
    study = hl.create_study(space=SPACE, seed=0)
    executor = _Counting()
    study.optimize(lambda t: t.params["x"], n_trials=5, executor=executor,
                   callbacks=[lambda s, r: s.stop() if r.number == 2 else None],
                   show_progress=False)
    assert executor.ran == 3  # the callback's stop ended the run after trial #2
    assert len(study.trials) == 3


# --- the simulated executor --------------------------------------------------------------
_RNG = np.random.default_rng(0)
_TABLE = [0.1 + _RNG.uniform(0.1, 2.0) * np.arange(1, 10) ** -_RNG.uniform(0.2, 1.5)
          for _ in range(40)]
_CURVES = hl.Space({"curve": hl.Int(0, 39)})


def _curve_for(params: dict[str, Any]) -> ReplayCurve:
    return ReplayCurve(list(range(1, 10)), list(_TABLE[params["curve"]]),
                       seconds_per_step=1.0 + params["curve"] % 3)


def _replay_study(promotion: bool = False, checkpoint_dir: Path | None = None) -> hl.Study:
    return hl.create_study(space=_CURVES, sampler="random", seed=0,
                           checkpoint_dir=None if checkpoint_dir is None else str(checkpoint_dir),
                           scheduler=ASHA(min_budget=1, max_budget=9, promotion=promotion))


@pytest.mark.parametrize("promotion", [False, True])
def test_simulated_executor_replays_as_simulate_does(promotion: bool, tmp_path: Path) -> None:
    by_simulate = _replay_study(promotion, tmp_path / "a")
    expected = simulate(StudyTuner(by_simulate, checkpoints=promotion), _curve_for,
                        n_workers=4, max_spent=120)
    study = _replay_study(promotion, tmp_path / "b")
    executor = SimulatedExecutor(n_workers=4, max_spent=120, checkpoints=promotion)
    delivered: list[int] = []
    study.optimize(_curve_for, executor=executor, show_progress=False,
                   callbacks=[lambda s, record: delivered.append(record.number)])
    assert executor.result == expected
    assert [(t.params, t.state, t.value, t.intermediate) for t in study.trials] == \
        [(t.params, t.state, t.value, t.intermediate) for t in by_simulate.trials]
    assert sorted(delivered) == [t.number for t in study.trials]
    assert promotion == any("promoted_from" in t.system_attrs for t in study.trials)


def test_simulated_executor_by_name_runs_n_trials() -> None:
    study = _replay_study()
    study.optimize(_curve_for, n_trials=12, n_workers=3, executor="simulated",
                   show_progress=False)
    trials = study.trials
    assert len(trials) == 12
    assert all(t.state.is_finished for t in trials)


def test_simulated_run_needs_an_end() -> None:
    with pytest.raises(hl.HyperlawError, match="needs an end"):
        _replay_study().optimize(_curve_for, executor="simulated", show_progress=False)
