"""Chaos on a real PostgreSQL study, bounded in time: `hyperlaw worker` processes are SIGKILLed
at random moments and restarted, and the server is restarted once mid-study. Nothing may be
lost or duplicated: every trial is recorded once, every killed trial becomes stale and is
retried, and the study's best is the best of the recorded values."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import textwrap
import time
from collections import Counter
from pathlib import Path

from services import restart_postgres

import hyperlaw as hl
from hyperlaw import TrialState

HYPERLAW = str(Path(sys.executable).with_name("hyperlaw"))
N_WORKERS = 3
CHAOS_SECONDS = 24.0
HEARTBEAT = 1.0  # stale after 5 s

OBJECTIVE = """
    import os
    import random
    import time

    def objective(trial):
        trial.set_user_attr("pid", os.getpid())
        x = trial.params["x"]
        time.sleep(random.uniform(0.05, 0.4))  # kills land inside trials
        trial.report(x, 0)
        return (x - 0.25) ** 2
"""


def _start_worker(cwd: Path, env: dict[str, str]) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [HYPERLAW, "worker", "--study", "chaos", "--objective", "chaos_objective:objective",
         "--heartbeat-interval", str(HEARTBEAT), "--retry-stale", "10", "--quiet"],
        cwd=cwd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def test_kills_and_a_server_restart_lose_nothing(postgres_url: str, tmp_path: Path) -> None:
    (tmp_path / "chaos_objective.py").write_text(textwrap.dedent(OBJECTIVE))
    study = hl.create_study("chaos", storage=postgres_url, space={"x": hl.Float(0, 1)},
                            sampler="random", seed=7, retry_stale=10,
                            heartbeat_interval=HEARTBEAT)
    env = dict(os.environ, HYPERLAW_STORAGE=postgres_url, HYPERLAW_RECONNECT_TIMEOUT="60")
    rng = random.Random(0)
    workers = [_start_worker(tmp_path, env) for _ in range(N_WORKERS)]
    everyone = list(workers)
    killed: list[subprocess.Popen[bytes]] = []
    restarted_server = False
    start = time.monotonic()
    while (elapsed := time.monotonic() - start) < CHAOS_SECONDS:
        time.sleep(rng.uniform(1.0, 3.0))
        if not restarted_server and elapsed > CHAOS_SECONDS / 2:
            restart_postgres()
            restarted_server = True
            continue
        victim = rng.randrange(N_WORKERS)
        workers[victim].send_signal(signal.SIGKILL)
        workers[victim].wait()
        killed.append(workers[victim])
        workers[victim] = _start_worker(tmp_path, env)
        everyone.append(workers[victim])
    for worker in workers:  # survivors of the restart are still running, then stop cleanly
        assert worker.poll() is None, worker.stderr.read().decode() if worker.stderr else ""
        worker.send_signal(signal.SIGTERM)
    logs = []
    for worker in everyone:
        _, err = worker.communicate(timeout=60)
        logs.append(err.decode())
        # -SIGTERM: a worker restarted a moment ago was still starting up
        assert worker in killed or worker.returncode in (0, -signal.SIGTERM), logs[-1]
    assert any("reachable again" in log for log in logs)  # the restart was waited out
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
    print(f"\nchaos: {len(killed_pids)} workers killed, 1 server restart, {len(trials)} trials "
          f"recorded ({states[TrialState.COMPLETE]} complete, {len(failed)} stale and "
          f"retried, {states[TrialState.WAITING]} retries still queued), 0 lost")
