"""`optimize(n_trials=N)` delivers N outcomes of the objective's own, or raises why not, and
leaves no trial of its run RUNNING: worker processes SIGKILLed at start-up, inside a trial,
and between the write that starts a trial and the message that announces it."""

from __future__ import annotations

import logging
import os
import signal
import time
from collections import Counter
from pathlib import Path

import pytest
from crossprocess import first_to_create

import hyperlaw as hl
from hyperlaw import TrialState
from hyperlaw.executors.worker import KILL_BEFORE_ANNOUNCING

SPACE = {"x": hl.Float(0, 1)}



class KillOnLoad:
    """Captured by an objective: SIGKILLs the first `times` worker processes that unpickle
    it, i.e. while they start, before they opened the study or said a word to the parent."""

    def __init__(self, directory: Path, times: int) -> None:
        self.directory = str(directory)
        self.times = times

    def __setstate__(self, state: dict[str, object]) -> None:
        self.__dict__.update(state)
        for i in range(self.times):
            if first_to_create(os.path.join(self.directory, f"killed-{i}")):
                os.kill(os.getpid(), signal.SIGKILL)


class FailOnLoad:
    """Captured by an objective: cannot be unpickled in a worker process."""

    def __reduce__(self) -> tuple[object, tuple[()]]:
        return (_refuse, ())


def _refuse() -> None:
    raise RuntimeError("this object cannot be rebuilt in another process")


def _states(study: hl.Study) -> Counter[TrialState]:
    return Counter(t.state for t in study.trials)


@pytest.fixture(params=["sqlite", "postgres"])
def any_url(request: pytest.FixtureRequest, sqlite_url: str) -> str:
    if request.param == "sqlite":
        return sqlite_url
    return str(request.getfixturevalue("postgres_url"))


def test_workers_killed_at_start_up_are_replaced(sqlite_url: str, tmp_path: Path) -> None:
    killer = KillOnLoad(tmp_path, times=3)  # both first workers and one replacement
    study = hl.create_study("startup", storage=sqlite_url, space=SPACE, sampler="random",
                            seed=0)

    def objective(trial: hl.Trial) -> float:
        assert killer.times == 3
        return trial.params["x"]

    study.optimize(objective, n_trials=10, n_workers=2, show_progress=False)
    assert len(list(tmp_path.glob("killed-*"))) == 3
    assert _states(study) == {TrialState.COMPLETE: 10}


def test_an_objective_that_kills_its_worker_still_gets_n_results(sqlite_url: str,
                                                                tmp_path: Path) -> None:
    flag = str(tmp_path / "killed")
    study = hl.create_study("midtrial", storage=sqlite_url, space=SPACE, sampler="random",
                            seed=0)  # no retry_stale: the dead trial is not run again

    def objective(trial: hl.Trial) -> float:
        trial.report(trial.params["x"], 0)
        if first_to_create(flag):
            os.kill(os.getpid(), signal.SIGKILL)
        return trial.params["x"]

    study.optimize(objective, n_trials=10, n_workers=2, show_progress=False)
    trials = study.trials
    assert _states(study) == {TrialState.COMPLETE: 10, TrialState.FAILED: 1}
    dead = next(t for t in trials if t.state is TrialState.FAILED)
    assert dead.system_attrs["stale"] is True and "died (signal 9)" in dead.error
    assert dead.intermediate == {0: dead.params["x"]}


def test_a_trial_started_but_not_announced_is_failed_at_once_and_retried(
        any_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The worker dies right after the write that finished one trial and started the next
    (random sampling: one transaction), before telling the parent either: the finished
    trial counts, the started one is failed as stale and retried, with no staleness wait
    (the heartbeat interval is 10 s, so a sweep would take 50 s)."""
    flag = tmp_path / "killed"
    monkeypatch.setenv(KILL_BEFORE_ANNOUNCING, f"4:{flag}")
    study = hl.create_study("unannounced", storage=any_url, space=SPACE, sampler="random",
                            seed=0, retry_stale=1)

    def objective(trial: hl.Trial) -> float:
        time.sleep(0.01)
        return trial.params["x"]

    study.optimize(objective, n_trials=12, n_workers=2, show_progress=False)
    assert flag.exists()
    trials = study.trials
    assert _states(study) == {TrialState.COMPLETE: 12, TrialState.FAILED: 1}
    dead = next(t for t in trials if t.state is TrialState.FAILED)
    assert dead.number >= 4 and dead.system_attrs["stale"] is True
    assert "worker process" in dead.error and "died (signal 9)" in dead.error
    retry = [t for t in trials if t.system_attrs.get("retry_of") == dead.number]
    assert len(retry) == 1 and retry[0].state is TrialState.COMPLETE
    assert retry[0].params == dead.params


def test_an_objective_that_cannot_be_unpickled_in_a_worker_is_a_named_error(
        sqlite_url: str) -> None:
    study = hl.create_study("unpickle", storage=sqlite_url, space=SPACE)
    captured = FailOnLoad()

    def objective(trial: hl.Trial) -> float:
        assert captured is not None
        return 0.0

    with pytest.raises(hl.WorkerError, match="could not start: unpickling the objective") \
            as info:
        study.optimize(objective, n_trials=4, n_workers=2, show_progress=False)
    assert "cannot be rebuilt in another process" in str(info.value)
    assert study.trials == []


def test_workers_that_keep_dying_stop_the_run_with_an_error(sqlite_url: str) -> None:
    study = hl.create_study("doomed", storage=sqlite_url, space=SPACE, sampler="random")

    def objective(trial: hl.Trial) -> float:
        os.kill(os.getpid(), signal.SIGKILL)
        return 0.0

    with pytest.raises(hl.WorkerError, match="died one after another"):
        study.optimize(objective, n_trials=20, n_workers=2, show_progress=False)
    states = _states(study)
    assert states[TrialState.RUNNING] == 0 and states[TrialState.COMPLETE] == 0
    assert all(t.system_attrs.get("stale") for t in study.trials)


def test_stale_trials_are_swept_during_a_run_that_reads_no_history(sqlite_url: str) -> None:
    """Random sampling finishes one trial and starts the next in one write, without the
    read where `ask` sweeps stale trials: the sweep must happen there too."""
    study = hl.create_study("sweep", storage=sqlite_url, space=SPACE, sampler="random",
                            seed=0, heartbeat_interval=0.1)
    orphan = hl.load_study("sweep", sqlite_url).ask(heartbeat=True)  # nobody keeps it beating

    def objective(trial: hl.Trial) -> float:
        time.sleep(0.02)
        return trial.params["x"]

    study.optimize(objective, n_trials=50, show_progress=False)  # over 1 s > stale after 0.5 s
    record = study.trials[orphan.number]
    assert record.state is TrialState.FAILED and "no heartbeat" in (record.error or "")
    assert _states(study)[TrialState.RUNNING] == 0


def _pbt_objective(trial: hl.Trial) -> float:
    state = trial.load_checkpoint() or {"w": 5.0, "step": -1}
    w = state["w"]
    for step in range(state["step"] + 1, 60):
        w -= trial.params["lr"] * 2.0 * w
        trial.report(w * w, step, checkpoint={"w": w, "step": step})
    return w * w


def test_pbt_refuses_a_trial_budget_it_cannot_finish_in(sqlite_url: str,
                                                        tmp_path: Path) -> None:
    study = hl.create_study("pbt", storage=sqlite_url, space={"lr": hl.Float(1e-3, 0.4)},
                            scheduler="pbt", checkpoint_dir=str(tmp_path / "ckpt"))
    with pytest.raises(hl.HyperlawError, match=r"population of 8 .* Pass n_trials=None"):
        study.optimize(_pbt_objective, n_trials=6, n_workers=2, show_progress=False)
    assert study.trials == []


def test_continuations_left_queued_by_a_stopped_run_are_announced(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    study = hl.create_study(space={"lr": hl.Float(1e-3, 0.4)}, seed=0,
                            scheduler=hl.schedulers.PBT(population_size=4, interval=5),
                            checkpoint_dir=str(tmp_path / "ckpt"))
    with caplog.at_level(logging.WARNING, logger="hyperlaw"):
        study.optimize(_pbt_objective, show_progress=False,
                       callbacks=[lambda s, record: s.stop()])
    waiting = [t.number for t in study.trials if t.state is TrialState.WAITING]
    assert waiting  # the first member paused, to let the others catch up
    assert f"trials {waiting} are queued" in caplog.text and "was stopped" in caplog.text


def test_a_worker_interpreter_that_cannot_start_is_a_named_error(
        sqlite_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    study = hl.create_study("nopython", storage=sqlite_url, space=SPACE)
    monkeypatch.setenv("PYTHONHOME", str(Path(sqlite_url[10:]).parent / "nowhere"))
    with pytest.raises(hl.WorkerError, match="could not start: it exited with code 1"):
        study.optimize(lambda t: 0.0, n_trials=3, n_workers=2, show_progress=False)
    assert study.trials == []


def test_a_callback_that_raises_leaves_no_trial_running(sqlite_url: str) -> None:
    """Random sampling starts the next trial in the write that records this one, before the
    callbacks run: when one raises, that started trial must not stay RUNNING."""
    study = hl.create_study("callback", storage=sqlite_url, space=SPACE, sampler="random")

    def fail_on_third(study: hl.Study, record: hl.TrialRecord) -> None:
        if record.number == 2:
            raise LookupError("no such dashboard")

    with pytest.raises(LookupError):
        study.optimize(lambda t: t.params["x"], n_trials=10, callbacks=[fail_on_third],
                       show_progress=False)
    states = _states(study)
    assert states[TrialState.RUNNING] == 0 and states[TrialState.COMPLETE] == 3
