"""The Ray executor on a real local Ray cluster and a real PostgreSQL study: two Ray workers,
the driver SIGKILLed mid-study and a new driver resuming it with `load_study`, next to a plain
`hyperlaw worker` process on the same study."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest
from services import RayCluster

import hyperlaw as hl
from hyperlaw import TrialState

HYPERLAW = str(Path(sys.executable).with_name("hyperlaw"))
TARGET = 40
CLI_TRIALS = 4

OBJECTIVE = """
    import os
    import time

    def objective(trial):
        trial.set_user_attr("pid", os.getpid())
        time.sleep(0.15)
        trial.report(trial.params["x"], 0)
        return (trial.params["x"] - 0.5) ** 2
"""

DRIVER = """
    import sys

    import hyperlaw as hl
    from ray_objective import objective

    url, n_trials, address = sys.argv[1], int(sys.argv[2]), sys.argv[3]
    study = hl.load_study("resume", url, retry_stale=3, heartbeat_interval=0.5)
    study.optimize(objective, n_trials=n_trials, executor="ray", n_workers=2,
                   resources_per_trial={"cpu": 1}, ray_address=address, show_progress=False)
    print("driver done", flush=True)
"""


@pytest.fixture(scope="module")
def ray_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RayCluster]:
    cluster = RayCluster(tmp_path_factory.mktemp("ray"), num_cpus=2)
    try:
        cluster.wait_ready()
        yield cluster
    finally:
        cluster.close()


def _driver(tmp_path: Path, url: str, n_trials: int, address: str) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, str(tmp_path / "driver.py"), url, str(n_trials),
                             address], cwd=tmp_path, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


def _wait_for_complete(study: hl.Study, n: int, timeout: float = 180.0) -> None:
    deadline = time.monotonic() + timeout
    while sum(t.state is TrialState.COMPLETE for t in study.trials) < n:
        assert time.monotonic() < deadline, f"fewer than {n} trials completed"
        time.sleep(0.2)


def test_ray_study_resumes_after_the_driver_is_killed(postgres_url: str, tmp_path: Path,
                                                      ray_cluster: RayCluster) -> None:
    (tmp_path / "ray_objective.py").write_text(textwrap.dedent(OBJECTIVE))
    (tmp_path / "driver.py").write_text(textwrap.dedent(DRIVER))
    study = hl.create_study("resume", storage=postgres_url, space={"x": hl.Float(0, 1)},
                            sampler="random", seed=5, retry_stale=3, heartbeat_interval=0.5)

    first = _driver(tmp_path, postgres_url, TARGET, ray_cluster.address)
    _wait_for_complete(study, 6)
    first.send_signal(signal.SIGKILL)
    first.wait()
    running_at_kill = {t.number for t in study.trials if t.state is TrialState.RUNNING}
    time.sleep(study.stale_after + 1.0)  # the killed driver's trials stop beating
    done_before = sum(t.state is TrialState.COMPLETE for t in study.trials)
    phase_two = len(study.trials)

    second = _driver(tmp_path, postgres_url, TARGET - done_before - CLI_TRIALS,
                     ray_cluster.address)
    plain = subprocess.Popen(
        [HYPERLAW, "worker", "--study", "resume", "--objective", "ray_objective:objective",
         "--n-trials", str(CLI_TRIALS), "--heartbeat-interval", "0.5", "--retry-stale", "3",
         "--quiet"], cwd=tmp_path, env=dict(os.environ, HYPERLAW_STORAGE=postgres_url),
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    out, err = second.communicate(timeout=300)
    assert second.returncode == 0 and "driver done" in out, err
    _, plain_err = plain.communicate(timeout=300)
    assert plain.returncode == 0, plain_err

    trials = study.trials
    assert [t.number for t in trials] == list(range(len(trials)))  # no gap, no duplicate
    states = Counter(t.state for t in trials)
    assert states[TrialState.RUNNING] == 0 and states[TrialState.WAITING] == 0
    assert states[TrialState.COMPLETE] == TARGET  # nothing lost, nothing run twice
    origin = {t.number: t.system_attrs.get("retry_of", t.number) for t in trials}
    complete = [t for t in trials if t.state is TrialState.COMPLETE]
    assert max(Counter(origin[t.number] for t in complete).values()) == 1
    stale = [t for t in trials if t.state is TrialState.FAILED]
    assert stale and all(t.system_attrs.get("stale") for t in stale), \
        [(t.number, t.system_attrs, t.error) for t in stale]
    assert {t.number for t in stale} <= running_at_kill
    assert {origin[t.number] for t in complete} >= {t.number for t in stale}  # retried
    assert all(t.value == (t.params["x"] - 0.5) ** 2 for t in complete)
    pids = Counter(t.user_attrs["pid"] for t in trials[phase_two:] if "pid" in t.user_attrs)
    assert plain.pid in pids and pids[plain.pid] == CLI_TRIALS  # a plain worker joined in
    assert len(set(pids) - {plain.pid}) == 2  # the two Ray actors of the new driver
    assert study.best_value == min(t.value for t in complete)  # type: ignore[type-var]


def test_ray_executor_rejects_bad_resources_and_memory_studies() -> None:
    study = hl.create_study(space={"x": hl.Float(0, 1)})
    with pytest.raises(hl.HyperlawError, match="lives in memory"):
        study.optimize(lambda t: 0.0, n_trials=1, executor="ray")
    with pytest.raises(hl.HyperlawError, match="non-negative number"):
        study.optimize(lambda t: 0.0, n_trials=1, executor="ray",
                       resources_per_trial={"gpu": -1})
    with pytest.raises(hl.HyperlawError, match="executor='ray' only"):
        study.optimize(lambda t: 0.0, n_trials=1, resources_per_trial={"cpu": 1})


def test_importing_hyperlaw_does_not_import_ray() -> None:
    done = subprocess.run([sys.executable, "-c", "import sys, hyperlaw, hyperlaw.cli; "
                           "print('ray' in sys.modules)"], capture_output=True, text=True)
    assert done.stdout.strip() == "False", done.stderr


PBT_OBJECTIVE = """
    def objective(trial):
        state = trial.load_checkpoint() or {"w": 5.0, "step": -1}
        w, loss = state["w"], state["w"] ** 2
        for step in range(state["step"] + 1, 12):
            w -= trial.params["lr"] * 2.0 * w
            loss = w * w
            trial.report(loss, step, checkpoint={"w": w, "step": step})
        return loss
"""

PBT_DRIVER = """
    import sys

    import hyperlaw as hl
    from pbt_objective import objective

    url, address = sys.argv[1], sys.argv[2]
    study = hl.load_study("pbt", url)
    study.optimize(objective, executor="ray", n_workers=2, resources_per_trial={"cpu": 1},
                   ray_address=address, show_progress=False)
    print("driver done", flush=True)
"""


def test_population_based_training_runs_on_ray_actors(postgres_url: str, tmp_path: Path,
                                                      ray_cluster: RayCluster) -> None:
    """Four PBT members on two Ray actors: they take turns through checkpoints and exploit."""
    (tmp_path / "pbt_objective.py").write_text(textwrap.dedent(PBT_OBJECTIVE))
    (tmp_path / "driver.py").write_text(textwrap.dedent(PBT_DRIVER))
    study = hl.create_study("pbt", storage=postgres_url, space={"lr": hl.Float(1e-3, 0.4,
                                                                                log=True)},
                            scheduler=hl.schedulers.PBT(population_size=4, interval=3, seed=1),
                            seed=2, checkpoint_dir=str(tmp_path / "ckpt"))
    driver = subprocess.Popen([sys.executable, str(tmp_path / "driver.py"), postgres_url,
                               ray_cluster.address], cwd=tmp_path, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True)
    out, err = driver.communicate(timeout=300)
    assert driver.returncode == 0 and "driver done" in out, err
    trials = study.trials
    assert not [t for t in trials if t.state is TrialState.FAILED], err
    kinds = Counter(t.system_attrs["pbt"]["kind"] for t in trials if "pbt" in t.system_attrs)
    assert kinds["pause"] and kinds["exploit"]
    finals = [t for t in trials if t.state is TrialState.COMPLETE]
    assert len(finals) == 4 and all(t.last_step == 11 for t in finals if t.intermediate)
    assert not [t for t in trials if t.state is TrialState.WAITING]  # every child ran


KILLING_OBJECTIVE = """
    import os
    import signal
    import time

    def objective(trial):
        try:  # the first trial to get here kills its actor's process
            os.close(os.open({flag!r}, os.O_CREAT | os.O_EXCL | os.O_WRONLY))
        except FileExistsError:
            time.sleep(0.05)
            return trial.params["x"]
        os.kill(os.getpid(), signal.SIGKILL)
"""

KILLING_DRIVER = """
    import sys

    import hyperlaw as hl
    from killing_objective import objective

    url, address = sys.argv[1], sys.argv[2]
    study = hl.load_study("killed", url)
    study.optimize(objective, n_trials=8, executor="ray", n_workers=2,
                   resources_per_trial={"cpu": 1}, ray_address=address, show_progress=False)
    print("driver done", flush=True)
"""


def test_a_dead_actor_is_replaced_and_the_run_still_delivers_n_results(
        postgres_url: str, tmp_path: Path, ray_cluster: RayCluster) -> None:
    """Without retry_stale, the trials of the killed actor (the running one and the one
    queued behind it) are not run again, and their tickets go back: 8 trials asked for, 8
    complete, plus those failed as stale."""
    flag = tmp_path / "killed"
    (tmp_path / "killing_objective.py").write_text(
        textwrap.dedent(KILLING_OBJECTIVE).replace("{flag!r}", repr(str(flag))))
    (tmp_path / "driver.py").write_text(textwrap.dedent(KILLING_DRIVER))
    study = hl.create_study("killed", storage=postgres_url, space={"x": hl.Float(0, 1)},
                            sampler="random", seed=1)
    driver = subprocess.Popen([sys.executable, str(tmp_path / "driver.py"), postgres_url,
                               ray_cluster.address], cwd=tmp_path, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True)
    out, err = driver.communicate(timeout=300)
    assert driver.returncode == 0 and "driver done" in out, err
    assert flag.exists()
    states = Counter(t.state for t in study.trials)
    assert states[TrialState.COMPLETE] == 8 and 1 <= states[TrialState.FAILED] <= 2, err
    assert set(states) == {TrialState.COMPLETE, TrialState.FAILED}
    for dead in [t for t in study.trials if t.state is TrialState.FAILED]:
        assert dead.system_attrs["stale"] is True and "Ray actor died" in (dead.error or "")


UNPICKLABLE_DRIVER = """
    import sys

    import hyperlaw as hl

    class Unloadable:  # sent by value, with the objective that captures it
        def __reduce__(self):
            return (_refuse, ())

    def _refuse():
        raise RuntimeError("this object cannot be rebuilt on a Ray worker")

    CAPTURED = Unloadable()

    def objective(trial):
        assert CAPTURED is not None
        return trial.params["x"]

    url, address = sys.argv[1], sys.argv[2]
    study = hl.load_study("unloadable", url)
    try:
        study.optimize(objective, n_trials=4, executor="ray", n_workers=2,
                       resources_per_trial={"cpu": 1}, ray_address=address,
                       show_progress=False)
    except hl.WorkerError as exc:
        print("WorkerError:", exc, flush=True)
"""


def test_an_actor_that_cannot_start_is_a_named_error(postgres_url: str, tmp_path: Path,
                                                    ray_cluster: RayCluster) -> None:
    (tmp_path / "driver.py").write_text(textwrap.dedent(UNPICKLABLE_DRIVER))
    study = hl.create_study("unloadable", storage=postgres_url, space={"x": hl.Float(0, 1)},
                            sampler="random")
    driver = subprocess.Popen([sys.executable, str(tmp_path / "driver.py"), postgres_url,
                               ray_cluster.address], cwd=tmp_path, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True)
    out, err = driver.communicate(timeout=300)
    assert driver.returncode == 0, err
    assert "WorkerError: a Ray actor of study 'unloadable' could not start" in out, out + err
    assert "cannot be rebuilt on a Ray worker" in out
    assert not [t for t in study.trials if t.state is TrialState.RUNNING]
