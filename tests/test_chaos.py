"""Chaos on a real PostgreSQL study: `hyperlaw worker` processes are SIGKILLed at random
moments (start-up included, and inside trials) and restarted, and the server is restarted once
mid-study. Nothing may be lost or duplicated: every trial is recorded once, every killed trial
becomes stale and is retried, and the study's best is the best of the recorded values.

The test waits for conditions, never for an amount of time, so that it passes on a loaded
machine: a kill meant for a trial waits until the victim is inside one, and the server stays
down until a worker has seen it gone."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import textwrap
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path

from services import start_postgres, stop_postgres

import hyperlaw as hl
from hyperlaw import TrialState

HYPERLAW = str(Path(sys.executable).with_name("hyperlaw"))
CHAOS_BENCHMARK = Path(__file__).resolve().parent.parent / "benchmarks" / "chaos.py"
N_WORKERS = 3
KILLS = 10  # SIGKILLs in all, half of them at any moment (start-up included)
KILLS_IN_TRIALS = 3  # at least this many land while the victim runs its objective
HEARTBEAT = 1.0  # stale after 5 s
PATIENCE = 300.0  # seconds any one condition may take on a loaded machine before the test fails

OBJECTIVE = """
    import os
    import random
    import time
    from pathlib import Path

    def objective(trial):
        trial.set_user_attr("pid", os.getpid())
        Path(f"ran-{os.getpid()}").touch()  # this worker reached the store
        running = Path(f"running-{os.getpid()}")
        running.touch()
        x = trial.params["x"]
        time.sleep(random.uniform(0.05, 0.4))  # kills land inside trials
        trial.report(x, 0)
        running.unlink()
        return (x - 0.25) ** 2
"""


class Worker:
    """One `hyperlaw worker` process; its stderr goes to a file that the test can read."""

    def __init__(self, cwd: Path, env: dict[str, str], number: int) -> None:
        self.cwd = cwd
        self.log = cwd / f"worker-{number}.log"
        with open(self.log, "wb") as stderr:
            self.process = subprocess.Popen(
                [HYPERLAW, "worker", "--study", "chaos", "--objective",
                 "chaos_objective:objective", "--heartbeat-interval", str(HEARTBEAT),
                 "--retry-stale", "10", "--quiet"],
                cwd=cwd, env=env, stdout=subprocess.DEVNULL, stderr=stderr)
        self.pid = self.process.pid

    def text(self) -> str:
        return self.log.read_text(errors="replace")

    def has_run_a_trial(self) -> bool:
        return (self.cwd / f"ran-{self.pid}").exists()

    def is_in_a_trial(self) -> bool:
        return (self.cwd / f"running-{self.pid}").exists()

    def kill(self) -> bool:
        """SIGKILL; whether it died inside its objective."""
        self.process.send_signal(signal.SIGKILL)
        self.process.wait()
        return self.is_in_a_trial()  # the objective removes the file before it returns


def wait_for(condition: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + PATIENCE
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"gave up after {PATIENCE:.0f} s waiting for {what}")
        time.sleep(0.05)


def restart_the_server(workers: list[Worker], everyone: list[Worker]) -> None:
    """Stop the server once every live worker has reached it, keep it down until a worker has
    noticed, start it again and wait until a worker says it is reachable again."""
    wait_for(lambda: all(w.has_run_a_trial() for w in workers), "every worker to start a trial")
    stop_postgres()
    wait_for(lambda: any("unreachable" in w.text() for w in workers),
             "a worker to notice the server is down")
    start_postgres()
    wait_for(lambda: any("reachable again" in w.text() for w in everyone),
             "a worker to reconnect after the restart")


def test_kills_and_a_server_restart_lose_nothing(postgres_url: str, tmp_path: Path) -> None:
    (tmp_path / "chaos_objective.py").write_text(textwrap.dedent(OBJECTIVE))
    study = hl.create_study("chaos", storage=postgres_url, space={"x": hl.Float(0, 1)},
                            sampler="random", seed=7, retry_stale=10,
                            heartbeat_interval=HEARTBEAT)
    env = dict(os.environ, HYPERLAW_STORAGE=postgres_url, HYPERLAW_RECONNECT_TIMEOUT="60")
    rng = random.Random(0)
    workers = [Worker(tmp_path, env, n) for n in range(N_WORKERS)]
    everyone = list(workers)
    killed: list[Worker] = []
    kills_in_trials, restarted = 0, False
    while len(killed) < KILLS or kills_in_trials < KILLS_IN_TRIALS:
        time.sleep(rng.uniform(0.2, 1.0))
        if len(killed) == KILLS // 2 and not restarted:
            restart_the_server(workers, everyone)
            restarted = True
            continue
        victim = rng.randrange(N_WORKERS)
        if len(killed) % 2:  # every other kill waits until its victim runs the objective
            wait_for(workers[victim].is_in_a_trial, f"worker {workers[victim].pid} in a trial")
        kills_in_trials += workers[victim].kill()
        killed.append(workers[victim])
        workers[victim] = Worker(tmp_path, env, len(everyone))
        everyone.append(workers[victim])
    for worker in workers:  # survivors of the restart are still running, then stop cleanly
        assert worker.process.poll() is None, worker.text()
        worker.process.send_signal(signal.SIGTERM)
    logs = []
    for worker in everyone:
        worker.process.wait(timeout=PATIENCE)
        logs.append(worker.text())
        # -SIGTERM: a worker restarted a moment ago was still starting up
        assert worker in killed or worker.process.returncode in (0, -signal.SIGTERM), logs[-1]
    assert not any("Traceback" in log for log in logs)
    killed_pids = {w.pid for w in killed}
    time.sleep(study.stale_after + 0.5)
    study.fail_stale_trials()  # what the next worker would do: sweep the dead workers' trials

    trials = study.trials
    assert [t.number for t in trials] == list(range(len(trials)))
    states = Counter(t.state for t in trials)
    assert states[TrialState.RUNNING] == 0
    origin = {t.number: t.system_attrs.get("retry_of", t.number) for t in trials}
    complete = [t for t in trials if t.state is TrialState.COMPLETE]
    assert max(Counter(origin[t.number] for t in complete).values()) == 1  # each ran once
    assert all(t.value == (t.params["x"] - 0.25) ** 2 and t.intermediate == {0: t.params["x"]}
               for t in complete)
    failed = [t for t in trials if t.state is TrialState.FAILED]
    assert all(t.system_attrs.get("stale") for t in failed)
    retried = {t.system_attrs["retry_of"] for t in trials if "retry_of" in t.system_attrs}
    assert all(origin[t.number] in retried for t in failed)  # every stale trial was retried
    in_killed = [t for t in trials if t.user_attrs.get("pid") in killed_pids]
    assert all(t.state is not TrialState.COMPLETE or t.finished_at for t in in_killed)
    assert any(t.system_attrs.get("stale") for t in in_killed)  # the kills hit trials
    assert study.best_value == min(t.value for t in complete)  # type: ignore[type-var]
    print(f"\nchaos: {len(killed_pids)} workers killed ({kills_in_trials} inside trials), "
          f"1 server restart, {len(trials)} trials recorded "
          f"({states[TrialState.COMPLETE]} complete, {len(failed)} stale and retried, "
          f"{states[TrialState.WAITING]} retries still queued), 0 lost")


def test_the_quick_chaos_benchmark_delivers_everything_and_loses_nothing(
        postgres_server: str, tmp_path: Path) -> None:
    """benchmarks/chaos.py --quick: optimize() under SIGKILLs of workers (start-up included)
    and of the driver on SQLite and PostgreSQL, plus fast and immediate server restarts and a
    crash right after an acknowledged result on PostgreSQL. Every asked-for result is
    delivered and every loss column is 0."""
    rows_file = tmp_path / "chaos.json"
    done = subprocess.run(
        [sys.executable, str(CHAOS_BENCHMARK), "--quick", "--json", str(rows_file)],
        env=dict(os.environ, HYPERLAW_TEST_POSTGRES=postgres_server), capture_output=True,
        text=True, timeout=1800)
    assert done.returncode == 0, done.stdout + done.stderr
    print(done.stdout)
    rows = json.loads(rows_file.read_text())
    assert {row["store"] for row in rows} == {"sqlite", "postgresql"}
    for row in rows:
        assert row["kills"] > 0 and row["acked"] > 0, done.stdout
        assert row["delivered"] >= row["asked"], done.stdout
        losses = {key: row[key] for key in ("acked_lost", "left_running", "run_twice",
                                            "config_twice", "driver_errors")}
        assert losses == dict.fromkeys(losses, 0), done.stdout
    assert any(row["restarts"] for row in rows if row["store"] == "postgresql"), done.stdout
