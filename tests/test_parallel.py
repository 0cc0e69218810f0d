"""Worker processes on one SQLite file: no lost or duplicated trial, even when one is killed."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import pytest

import hyperlaw as hl
from hyperlaw import TrialState


def test_four_workers_closures_and_unique_numbers(sqlite_url: str) -> None:
    offset = 0.25  # captured by the closure: travels to the workers by value
    study = hl.create_study("par", storage=sqlite_url, space={"x": hl.Float(0, 1)},
                            sampler="random", seed=0)

    def objective(trial: hl.Trial) -> float:
        for step in range(3):
            trial.report(trial.params["x"] + step, step)
        time.sleep(0.02)
        return abs(trial.params["x"] - offset)

    study.optimize(objective, n_trials=40, n_workers=4, show_progress=False)
    trials = study.trials
    assert [t.number for t in trials] == list(range(40))
    assert all(t.state is TrialState.COMPLETE for t in trials)
    assert all(sorted(t.intermediate) == [0, 1, 2] for t in trials)
    assert len({t.params["x"] for t in trials}) == 40  # no two workers drew the same point
    assert study.best_value == min(abs(t.params["x"] - offset) for t in trials)


def test_in_memory_study_runs_in_processes() -> None:
    study = hl.create_study(space={"x": hl.Float(-1, 1)}, sampler="sobol", seed=0)
    study.optimize(lambda t: t.params["x"] ** 2, n_trials=6, show_progress=False)
    study.optimize(lambda t: t.params["x"] ** 2, n_trials=10, n_workers=2,
                   show_progress=False)
    trials = study.trials
    assert [t.number for t in trials] == list(range(16))
    assert all(t.state is TrialState.COMPLETE for t in trials)
    assert study.best_value == min(t.value for t in trials)


def test_define_by_run_space_learned_in_workers(sqlite_url: str) -> None:
    study = hl.create_study("dbr", storage=sqlite_url, seed=0)

    def objective(trial: hl.Trial) -> float:
        return trial.suggest_float("x", -2, 2) ** 2 + trial.suggest_int("k", 0, 3)

    study.optimize(objective, n_trials=8, n_workers=2, show_progress=False)
    assert set(study.space) == {"x", "k"}
    assert len(study.trials) == 8


def test_uncaught_exception_in_worker_keeps_its_type(sqlite_url: str) -> None:
    study = hl.create_study("err", storage=sqlite_url, space={"x": hl.Float(0, 1)})

    def objective(trial: hl.Trial) -> float:
        raise LookupError("no such dataset")

    with pytest.raises(LookupError, match="no such dataset") as info:
        study.optimize(objective, n_trials=4, n_workers=2, catch=(), show_progress=False)
    assert any("worker process" in note for note in info.value.__notes__)
    assert all(t.state is TrialState.FAILED for t in study.trials)


def test_unpicklable_objective_is_explained(sqlite_url: str) -> None:
    study = hl.create_study("np", storage=sqlite_url, space={"x": hl.Float(0, 1)})
    lock = threading.Lock()

    def objective(trial: hl.Trial) -> float:
        with lock:
            return 0.0

    with pytest.raises(hl.WorkerError, match="cannot be sent to worker processes"):
        study.optimize(objective, n_trials=2, n_workers=2, show_progress=False)
    assert study.trials == []


def _kill_when_announced(marker: Path, killed: list[int]) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if marker.exists() and marker.read_text().strip():
            pid = int(marker.read_text())
            os.kill(pid, signal.SIGKILL)
            killed.append(pid)
            return
        time.sleep(0.01)


def test_sigkilled_worker_loses_nothing_and_study_resumes(sqlite_url: str,
                                                          tmp_path: Path) -> None:
    marker = tmp_path / "victim.pid"
    study = hl.create_study("kill", storage=sqlite_url, space={"x": hl.Float(0, 1)},
                            sampler="random", seed=0, retry_stale=1)

    def objective(trial: hl.Trial) -> float:
        trial.report(trial.params["x"], 0)
        if trial.number == 6:
            marker.write_text(str(os.getpid()))  # the test kills this process now
            time.sleep(60)
        time.sleep(0.02)
        return trial.params["x"]

    killed: list[int] = []
    killer = threading.Thread(target=_kill_when_announced, args=(marker, killed))
    killer.start()
    study.optimize(objective, n_trials=20, n_workers=4, show_progress=False)
    killer.join()
    assert len(killed) == 1

    resumed = hl.load_study("kill", storage=sqlite_url, retry_stale=1)
    resumed.optimize(objective, n_trials=5, n_workers=2, show_progress=False)
    trials = resumed.trials
    assert [t.number for t in trials] == list(range(len(trials)))  # continuous numbering
    victim = trials[6]
    assert victim.state is TrialState.FAILED and victim.system_attrs["stale"] is True
    assert f"worker process {killed[0]} died (signal 9)" in victim.error
    assert victim.intermediate == {0: victim.params["x"]}  # its report survived the kill
    retries = [t for t in trials if t.system_attrs.get("retry_of") == 6]
    assert len(retries) == 1 and retries[0].state is TrialState.COMPLETE
    assert retries[0].params == victim.params
    others = [t for t in trials if t.number != 6]
    assert all(t.state is TrialState.COMPLETE for t in others)
    # one outcome per ticket (a trial failed as stale spends none; its retry ran with it):
    # none lost or doubled
    assert len(trials) == 26 and len(others) == 25
    assert len({t.number for t in trials}) == len(trials)


def test_stale_trial_of_a_killed_driver_is_detected_by_heartbeat(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'driver.db'}"
    script = tmp_path / "driver.py"
    script.write_text(textwrap.dedent(f"""
        import time
        import hyperlaw as hl

        study = hl.create_study("hb", storage={url!r}, space={{"x": hl.Float(0, 1)}},
                                heartbeat_interval=0.2)

        def objective(trial):
            if trial.number == 3:
                print("stuck", flush=True)
                time.sleep(60)
            return trial.params["x"]

        study.optimize(objective, n_trials=10, show_progress=False)
    """))
    driver = subprocess.Popen([sys.executable, str(script)], stdout=subprocess.PIPE, text=True)
    assert driver.stdout is not None
    assert driver.stdout.readline().strip() == "stuck"
    time.sleep(0.5)  # a few heartbeats happen while the trial hangs
    driver.kill()
    driver.wait()

    study = hl.load_study("hb", storage=url, retry_stale=1, heartbeat_interval=0.2)
    assert study.trials[3].state is TrialState.RUNNING  # nobody knows yet
    time.sleep(study.stale_after + 0.2)
    study.optimize(lambda t: t.params["x"], n_trials=3, show_progress=False)
    trials = study.trials
    assert trials[3].state is TrialState.FAILED and "no heartbeat" in trials[3].error
    retry = [t for t in trials if t.system_attrs.get("retry_of") == 3]
    assert len(retry) == 1 and retry[0].state is TrialState.COMPLETE
    assert [t.number for t in trials] == list(range(7))


def test_script_without_main_guard_runs_workers(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'script.db'}"
    script = tmp_path / "tune.py"
    script.write_text(textwrap.dedent(f"""
        import hyperlaw as hl

        SHIFT = 0.5

        def objective(trial):
            return (trial.suggest_float("x", 0, 1) - SHIFT) ** 2

        study = hl.create_study("script", storage={url!r}, seed=0)
        study.optimize(objective, n_trials=6, n_workers=2, show_progress=False)
        print(len(study.trials))
    """))
    out = subprocess.run([sys.executable, str(script)], capture_output=True, text=True,
                         timeout=120, cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "6"


def test_ctrl_c_stops_workers_and_leaves_no_running_trial(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'int.db'}"
    script = tmp_path / "long.py"
    script.write_text(textwrap.dedent(f"""
        import time
        import hyperlaw as hl

        def objective(trial):
            if trial.number == 4:
                print("ready", flush=True)
            time.sleep(0.2)
            return trial.suggest_float("x", 0, 1)

        study = hl.create_study("int", storage={url!r})
        study.optimize(objective, n_trials=1000, n_workers=2, show_progress=False)
    """))
    driver = subprocess.Popen([sys.executable, str(script)], stdout=subprocess.PIPE, text=True,
                              start_new_session=True)
    assert driver.stdout is not None
    assert driver.stdout.readline().strip() == "ready"
    os.killpg(driver.pid, signal.SIGINT)  # what Ctrl-C in a terminal does
    assert driver.wait(timeout=60) != 0
    trials = hl.load_study("int", storage=url).trials
    assert 4 <= len(trials) < 1000
    assert all(t.state is not TrialState.RUNNING for t in trials)
    assert all(t.state is TrialState.COMPLETE or "interrupted" in (t.error or "")
               for t in trials)
    assert [t.number for t in trials] == list(range(len(trials)))


def test_ctrl_c_that_reaches_only_the_workers_still_stops_the_run(tmp_path: Path) -> None:
    """The parent's own KeyboardInterrupt can be lost (raised inside a finalizer, say): workers
    that stopped on a Ctrl-C stop the run all the same, rather than end it as if complete."""
    url = f"sqlite:///{tmp_path / 'int.db'}"
    script = tmp_path / "long.py"
    script.write_text(textwrap.dedent(f"""
        import os
        import time
        import hyperlaw as hl

        def objective(trial):
            print(os.getpid(), flush=True)
            time.sleep(0.2)
            return trial.suggest_float("x", 0, 1)

        study = hl.create_study("int", storage={url!r})
        study.optimize(objective, n_trials=1000, n_workers=2, show_progress=False)
    """))
    driver = subprocess.Popen([sys.executable, str(script)], stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True, start_new_session=True)
    assert driver.stdout is not None
    workers: set[int] = set()
    while len(workers) < 2:
        workers.add(int(driver.stdout.readline()))
    for pid in workers:  # not the parent
        os.kill(pid, signal.SIGINT)
    _, stderr = driver.communicate(timeout=60)
    assert driver.returncode != 0 and "KeyboardInterrupt" in stderr
    trials = hl.load_study("int", storage=url).trials
    assert 2 <= len(trials) < 1000
    assert all(t.state is not TrialState.RUNNING for t in trials)
    assert all(t.state is TrialState.COMPLETE or "interrupted" in (t.error or "")
               for t in trials)


class _LowestUntried(hl.samplers.Sampler):
    """Proposes the lowest of three values no trial holds yet; on its first call another
    worker starts that very value between this worker's read and its write."""

    name = "lowest-untried"

    def __init__(self, rival: hl.Study | None = None) -> None:
        super().__init__(seed=0)
        self.rival = rival

    def suggest(self, space, history, number):  # type: ignore[no-untyped-def]
        taken = {t.params.get("x") for t in history.trials}
        value = next(v for v in (0.0, 0.5, 1.0) if v not in taken)
        if self.rival is not None:
            rival, self.rival = self.rival, None
            rival.ask(fixed={"x": value})
        return {"x": value}


@pytest.mark.parametrize("url_fixture", ["sqlite_url", "postgres_url"])
def test_a_configuration_started_by_another_worker_after_the_read_is_drawn_again(
        url_fixture: str, request: pytest.FixtureRequest) -> None:
    url = request.getfixturevalue(url_fixture)
    space = {"x": hl.Float(0, 1)}
    rival = hl.create_study("race", storage=url, space=space, sampler="random")
    study = hl.load_study("race", url, sampler=_LowestUntried(rival))
    trial = study.ask()
    assert [t.params["x"] for t in study.trials] == [0.0, 0.5]
    assert trial.params["x"] == 0.5
