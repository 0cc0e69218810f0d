"""Separate processes that ask and tell on one study never hold the same configuration."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

import hyperlaw as hl
from hyperlaw.history.observations import params_key
from hyperlaw.samplers import TPESampler, make_sampler

_WORKER = textwrap.dedent('''
    import sys, time
    from pathlib import Path
    import hyperlaw as hl

    url, name, mode, n_trials, barrier, index = sys.argv[1:]
    study = hl.load_study(name, url)
    Path(barrier, f"ready-{index}").touch()
    while not Path(barrier, "go").exists():
        time.sleep(0.005)
    for _ in range(int(n_trials)):
        trial = study.ask()
        if mode == "declared":
            x, y = trial.params["x"], trial.params["y"]
        else:
            x, y = trial.suggest_float("x", 0.0, 1.0), trial.suggest_float("y", 0.0, 1.0)
        time.sleep(0.005)
        study.tell(trial, (x - 0.3) ** 2 + (y - 0.7) ** 2)
''')

PROCESSES = 8
TRIALS = 12


def _run_processes(tmp_path: Path, url: str, name: str, mode: str) -> None:
    script = tmp_path / "worker.py"
    script.write_text(_WORKER)
    barrier = tmp_path / "barrier"
    barrier.mkdir()
    workers = [subprocess.Popen([sys.executable, str(script), url, name, mode, str(TRIALS),
                                 str(barrier), str(i)], stderr=subprocess.PIPE, text=True)
               for i in range(PROCESSES)]
    deadline = time.monotonic() + 300
    while len(list(barrier.glob("ready-*"))) < PROCESSES:
        assert all(w.poll() is None for w in workers), workers[0].communicate()[1]
        assert time.monotonic() < deadline, "the worker processes did not start"
        time.sleep(0.05)
    (barrier / "go").touch()  # every process asks from the same moment on
    for worker in workers:
        _, err = worker.communicate(timeout=600)
        assert worker.returncode == 0, err


@pytest.mark.parametrize("url_fixture", ["sqlite_url", "postgres_url"])
@pytest.mark.parametrize("mode", ["declared", "define-by-run"])
def test_processes_asking_one_tpe_study_never_get_the_same_configuration(
        tmp_path: Path, mode: str, url_fixture: str, request: pytest.FixtureRequest) -> None:
    url = request.getfixturevalue(url_fixture)
    space = {"x": hl.Float(0.0, 1.0), "y": hl.Float(0.0, 1.0)}
    study = hl.create_study("shared", storage=url, space=space if mode == "declared" else None,
                            sampler="tpe", seed=0)
    _run_processes(tmp_path, url, "shared", mode)
    trials = study.trials
    assert len(trials) == PROCESSES * TRIALS
    assert all(t.state is hl.TrialState.COMPLETE for t in trials)
    # a continuous space: any configuration that occurs twice was handed out twice
    keys = [params_key(t.params) for t in trials]
    repeated = sorted({t.number for t, k in zip(trials, keys, strict=True) if keys.count(k) > 1})
    assert not repeated, f"trials {repeated} repeat a configuration"


class _RivalAsksMeanwhile(TPESampler):
    """TPE whose first proposal is followed, before this process writes its trial, by an
    `ask` of another process's study object with the same seed and history."""

    def __init__(self, rival: hl.Study) -> None:
        super().__init__(seed=0)
        self.rival: hl.Study | None = rival
        self.held: hl.Trial | None = None

    def suggest(self, space, history, number):  # type: ignore[no-untyped-def]
        proposal = super().suggest(space, history, number)
        if self.rival is not None:
            rival, self.rival = self.rival, None
            self.held = rival.ask()
        return proposal


def _xy(trial: hl.Trial) -> tuple[float, float]:
    return trial.suggest_float("x", 0.0, 1.0), trial.suggest_float("y", 0.0, 1.0)


def test_a_running_define_by_run_trial_is_not_handed_out_again(sqlite_url: str) -> None:
    first = hl.create_study("s", storage=sqlite_url, sampler="tpe", seed=0)
    first.optimize(lambda t: sum(_xy(t)), n_trials=1, show_progress=False)
    rival = hl.load_study("s", sqlite_url)  # the stored TPE, seed 0, as in another process
    sampler = _RivalAsksMeanwhile(rival)
    study = hl.load_study("s", sqlite_url, sampler=sampler)
    trial = study.ask()
    assert sampler.held is not None
    held = _xy(sampler.held)  # the rival proposed the same point, and started it first
    assert sampler.held.system_attrs["proposal"] == dict(zip("xy", held, strict=True))
    assert _xy(trial) != held
    # and a process reading the study now sees both running configurations
    later = hl.load_study("s", sqlite_url)
    assert held not in [_xy(later.ask()) for _ in range(5)]


@pytest.mark.parametrize("declared", [True, False])
def test_a_seeded_study_asked_by_one_process_repeats_its_sequence(
        tmp_path: Path, declared: bool) -> None:
    space = {"x": hl.Float(0.0, 1.0), "y": hl.Float(0.0, 1.0)}
    runs = []
    for run in range(2):
        url = f"sqlite:///{tmp_path / f'{run}.db'}"
        hl.create_study("s", storage=url, space=space if declared else None, sampler="tpe",
                        seed=3)
        study = hl.load_study("s", url)
        for _ in range(14):
            trial = study.ask()
            x, y = (trial.params["x"], trial.params["y"]) if declared else _xy(trial)
            study.tell(trial, (x - 0.3) ** 2 + y)
        runs.append([t.params for t in study.trials])
    assert runs[0] == runs[1]


@pytest.mark.parametrize("name", ["tpe", "gp", "auto"])
def test_a_diverged_sampler_draws_its_own_points(name: str, sqlite_url: str) -> None:
    study = hl.create_study("s", storage=sqlite_url, sampler="random", seed=0,
                            space={"x": hl.Float(0, 1), "y": hl.Float(0, 1)})
    for i in range(12):  # past the startup phase of the model-based samplers
        study.tell(study.ask(), float(i))

    def propose(diverge: bool) -> dict[str, float]:
        history = hl.load_study("s", sqlite_url)._history.refresh()  # as in a process of its own
        sampler = make_sampler(name, 5)
        if diverge:
            sampler.diverge()
        return sampler.suggest(study.space, history, len(history))

    assert propose(False) == propose(False)  # the same seed and history: the same point
    assert propose(True) != propose(False)
