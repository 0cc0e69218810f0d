"""Chaos: does `study.optimize` deliver every result asked for, and lose none it acknowledged,
while its processes are SIGKILLed and its database server restarts?

    python benchmarks/chaos.py                  # SQLite, PostgreSQL and Ray; 3 runs each
    python benchmarks/chaos.py --quick          # SQLite and PostgreSQL, 1 short run each
    python benchmarks/chaos.py --stores ray --runs 1

Each run creates a TPE study over two floats and runs it from a *driver*, a subprocess that
calls `study.optimize(objective, n_trials=remaining, n_workers=k)` (worker processes, or Ray
actors on a local Ray cluster with `ray`). Meanwhile this process injects random faults:

- SIGKILL of a worker process or Ray actor running trials, or of one starting up (a worker is
  killed, and its replacement is killed the moment it appears);
- SIGKILL of the driver, which is then started again: it loads the study and asks for the
  results still missing (n_trials minus the results in the store);
- on PostgreSQL (also under Ray): `pg_ctl restart -m fast` and `-m immediate` (a crash: no
  shutdown checkpoint), and an immediate restart right after a result was acknowledged.

Side logs, appended and fsynced: the driver records every result that `optimize` reported done
(its callback runs once the worker's write returned, so the write was acknowledged), and the
objective records (trial number, process id, parameters) each time it starts. When the last
driver has returned, the table counts:

    asked / delivered   results asked for / trials with an outcome of the objective's own
                        (complete, pruned, or failed by it; stale failures do not count)
    acked lost          acknowledged results missing from the store, or changed in it
    left RUNNING        trials the last driver started that are still RUNNING after it returned
    run twice           trial numbers whose objective ran in two different processes
    config twice        configurations handed to two trials that are not retries of each other
    driver errors       drivers that exited with an error (and were started again)

Goal: every loss column 0 and every asked-for result delivered, in every run. PostgreSQL
comes from scripts/test-services.sh (HYPERLAW_TEST_POSTGRES, else the script starts it); the
restarts go through the same script, so they need the server it manages.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import hyperlaw as hl
from hyperlaw import TrialState

sys.path.insert(0, str(Path(__file__).resolve().parent))
from throughput import fresh_database, postgres_server

ROOT = Path(__file__).resolve().parent.parent
SERVICES = ROOT / "scripts" / "test-services.sh"
RESULTS = ROOT / "benchmarks" / "results" / "chaos.json"
STORES = ("sqlite", "postgresql", "ray")
HEARTBEAT = 1.0  # a trial without a heartbeat for 5 s is stale
RETRIES = 100  # retry_stale: never the limit here
ACKED, RUNS = "acked.log", "runs.log"


@dataclass(frozen=True)
class Settings:
    """The size of one run."""

    n_trials: int
    workers: int
    decks: int  # each kind of fault once per deck, in random order; then the run finishes
    pause: tuple[float, float]  # seconds between two faults
    trial_seconds: tuple[float, float]  # the objective's sleep
    run_timeout: float  # a run still going after this long is stopped and counted an error


FULL = Settings(n_trials=200, workers=4, decks=3, pause=(0.5, 2.5),
                trial_seconds=(0.05, 0.3), run_timeout=600)
QUICK = Settings(n_trials=60, workers=3, decks=1, pause=(0.2, 0.8),
                 trial_seconds=(0.2, 0.5), run_timeout=300)


# --- side logs -----------------------------------------------------------------------------
def append_line(path: Path, line: str) -> None:
    """Append one line and fsync it (O_APPEND: concurrent writers do not interleave)."""
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, (line + "\n").encode())
        os.fsync(fd)
    finally:
        os.close(fd)


def read_lines(path: Path) -> list[list[str]]:
    if not path.exists():
        return []
    return [line.split() for line in path.read_text().splitlines() if line.strip()]


# --- the driver: a subprocess that this benchmark kills and restarts -------------------------
def make_objective(side: str, seconds: tuple[float, float]) -> Callable[[hl.Trial], float]:
    """The objective: records (number, pid, x, y) when it starts, sleeps, reports, returns."""
    def objective(trial: hl.Trial) -> float:
        x, y = trial.params["x"], trial.params["y"]
        append_line(Path(side) / RUNS, f"{trial.number} {os.getpid()} {x!r} {y!r}")
        time.sleep(random.uniform(*seconds))
        value = (x - 0.3) ** 2 + (y - 0.6) ** 2
        trial.report(value, 0)
        return value

    return objective


def delivered(trials: list[hl.TrialRecord]) -> int:
    """Trials with an outcome of the objective's own (stale failures are the system's)."""
    return sum(t.state in (TrialState.COMPLETE, TrialState.PRUNED)
               or (t.state is TrialState.FAILED and not t.system_attrs.get("stale"))
               for t in trials)


def drive(config: dict[str, Any]) -> None:
    """Ask for the results still missing; record each one `optimize` reports done."""
    study = hl.load_study(config["study"], config["storage"], retry_stale=RETRIES,
                          heartbeat_interval=HEARTBEAT)
    remaining = config["n_trials"] - delivered(study.trials)
    if remaining <= 0:
        return
    side = Path(config["side"])

    def acknowledged(_: hl.Study, record: hl.TrialRecord) -> None:
        append_line(side / ACKED, f"{record.number} {record.state.value} {record.value!r}")

    ray = {"executor": "ray", "ray_address": config["ray_address"]} \
        if config["ray_address"] else {}
    study.optimize(make_objective(str(side), tuple(config["trial_seconds"])),
                   n_trials=remaining, n_workers=config["workers"], show_progress=False,
                   callbacks=[acknowledged], **ray)


# --- processes ---------------------------------------------------------------------------------
def _ppid_and_cmdline(pid: int) -> tuple[int, str] | None:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return None
    if stat[stat.rindex(")") + 2] == "Z":  # a zombie: already dead
        return None
    return int(stat[stat.rindex(")") + 2:].split()[1]), cmdline


def descendants(root: int) -> dict[int, str]:
    """Every living process below `root`: pid -> command line."""
    table = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and (info := _ppid_and_cmdline(int(entry.name))):
            table[int(entry.name)] = info
    found: dict[int, str] = {}
    frontier = [root]
    while frontier:
        parent = frontier.pop()
        for pid, (ppid, cmdline) in table.items():
            if ppid == parent and pid not in found:
                found[pid] = cmdline
                frontier.append(pid)
    return found


def kill(pid: int) -> bool:
    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        return False
    return True


class RayHead:
    """A local Ray cluster (`ray start --head --block`) that outlives the drivers, with a CPU
    for each actor."""

    def __init__(self, tmp: Path, num_cpus: int) -> None:
        import socket

        self.tmp = tmp
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            port = sock.getsockname()[1]
        self.address = f"127.0.0.1:{port}"
        # a private cluster on loopback: no token (the drivers inherit the setting)
        os.environ["RAY_AUTH_MODE"] = "disabled"
        env = dict(os.environ, RAY_USAGE_STATS_ENABLED="0")
        self.log_path = tmp / "ray-head.log"
        self.log = open(self.log_path, "w")  # noqa: SIM115 - closed in close()
        self.process = subprocess.Popen(
            [str(Path(sys.executable).with_name("ray")), "start", "--head", "--block",
             f"--port={port}", f"--num-cpus={num_cpus}", "--num-gpus=0",
             "--include-dashboard=false", "--disable-usage-stats", f"--temp-dir={tmp / 'ray'}"],
            stdout=self.log, stderr=subprocess.STDOUT, env=env, start_new_session=True)
        deadline = time.monotonic() + 300
        while "Ray runtime started" not in self.log_path.read_text(errors="replace"):
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"the Ray head did not start; see {self.log_path}")
            time.sleep(0.2)

    def close(self) -> None:
        self.process.terminate()  # `ray start --block` stops its cluster on SIGTERM
        try:
            self.process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self.log.close()
        shutil.rmtree(self.tmp, ignore_errors=True)


# --- one run ---------------------------------------------------------------------------------
@dataclass
class Row:
    """One line of the table."""

    store: str
    run: int
    kills: int = 0
    restarts: int = 0
    asked: int = 0
    delivered: int = 0
    acked: int = 0
    acked_lost: int = 0
    left_running: int = 0
    run_twice: int = 0
    config_twice: int = 0
    driver_errors: int = 0
    seconds: float = 0.0
    faults: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)


class Run:
    """A study, its driver subprocess, and the faults injected into them."""

    def __init__(self, row: Row, url: str, side: Path, settings: Settings,
                 ray: RayHead | None) -> None:
        self.row, self.side, self.settings, self.ray = row, side, settings, ray
        self.config = {"study": "chaos", "storage": url, "n_trials": settings.n_trials,
                       "workers": settings.workers, "side": str(side),
                       "trial_seconds": list(settings.trial_seconds),
                       "ray_address": ray.address if ray else None}
        self.driver: subprocess.Popen[bytes] | None = None
        self.drivers = 0
        self.driver_started = 0.0
        self.seen: set[int] = set()  # worker pids already seen
        self.start = time.monotonic()

    # drivers
    def start_driver(self) -> None:
        self.drivers += 1
        log = open(self.side / f"driver-{self.drivers}.log", "wb")  # noqa: SIM115
        self.driver_started = time.time()
        self.driver = subprocess.Popen(
            [sys.executable, __file__, "--driver", json.dumps(self.config)],
            stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        log.close()

    def driver_log(self) -> str:
        return (self.side / f"driver-{self.drivers}.log").read_text(errors="replace")

    def workers(self) -> list[int]:
        """The pids now running trials for the current driver (worker processes, or actors)."""
        if self.ray is not None:
            found = descendants(self.ray.process.pid)
            return [pid for pid, cmd in found.items() if cmd.startswith("ray::TrialRunner")]
        assert self.driver is not None
        found = descendants(self.driver.pid)
        return [pid for pid, cmd in found.items() if "hyperlaw.executors.spawn" in cmd]

    # faults
    def note(self, fault: str) -> None:
        self.row.faults.append(f"{fault} at {time.monotonic() - self.start:.1f} s")

    def wait_for(self, find: Callable[[], Any], seconds: float = 30.0) -> Any:
        """find()'s first truthy answer, polled while the driver runs (None after `seconds`)."""
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline and self.driver and self.driver.poll() is None:
            if found := find():
                return found
            time.sleep(0.005)
        return None

    def kill_worker(self) -> None:
        """Kill a worker that has started a trial (its pid is in the objective's log)."""
        def busy() -> list[int]:
            ran = {int(line[1]) for line in read_lines(self.side / RUNS)}
            return [pid for pid in self.workers() if pid in ran]

        pids = self.wait_for(busy)
        if pids and kill(random.choice(pids)):
            self.row.kills += 1
            self.note("worker")

    def kill_worker_starting(self) -> None:
        """Kill a worker, then its replacement the moment it appears (a start-up kill)."""
        self.seen.update(self.workers())
        self.kill_worker()
        new = self.wait_for(lambda: [pid for pid in self.workers() if pid not in self.seen])
        if new:
            self.seen.update(new)
            if kill(new[0]):
                self.row.kills += 1
                self.note("worker starting")

    def kill_driver(self) -> None:
        assert self.driver is not None
        if kill(self.driver.pid):
            self.driver.wait()
            self.row.kills += 1
            self.note("driver")
            self.start_driver()

    def restart_server(self, mode: str, why: str = "") -> None:
        command = "restart-postgres-immediate" if mode == "immediate" else "restart-postgres"
        self.note(why or f"restart {mode}")
        subprocess.run(["bash", str(SERVICES), command], check=True, timeout=180)
        self.row.restarts += 1

    def crash_after_ack(self) -> None:
        """An immediate restart right after a result was acknowledged."""
        before = len(read_lines(self.side / ACKED))
        if self.wait_for(lambda: len(read_lines(self.side / ACKED)) > before, seconds=10.0):
            self.restart_server("immediate", "crash after ack")

    def faults(self) -> list[Callable[[], None]]:
        """One deck: each kind of fault once (SQLite has no server: a second worker kill)."""
        kinds: list[Callable[[], None]] = [self.kill_worker, self.kill_worker_starting,
                                           self.kill_driver]
        if self.row.store == "sqlite":
            return [*kinds, self.kill_worker]
        return [*kinds, lambda: self.restart_server("fast"),
                lambda: self.restart_server("immediate"), self.crash_after_ack]

    # the run
    def go(self) -> None:
        start = self.start = time.monotonic()
        deadline = start + self.settings.run_timeout
        deck: list[Callable[[], None]] = []
        faults_left = self.settings.decks * len(self.faults())
        next_fault = start + random.uniform(*self.settings.pause)
        self.start_driver()
        while True:
            assert self.driver is not None
            code = self.driver.poll()
            if code == 0:
                break
            if code is not None:  # an error ended optimize: count it, carry on
                self.row.driver_errors += 1
                self.row.errors.append(self.driver_log()[-1500:])
                self.start_driver()
            elif time.monotonic() > deadline:
                self.row.driver_errors += 1
                self.row.errors.append(f"run timed out after {self.settings.run_timeout} s; "
                                       f"the driver's log ends:\n{self.driver_log()[-1500:]}")
                break
            elif faults_left and time.monotonic() >= next_fault:
                deck = deck or random.sample(self.faults(), len(self.faults()))
                deck.pop()()
                faults_left -= 1
                next_fault = time.monotonic() + random.uniform(*self.settings.pause)
            time.sleep(0.01)
        self.row.seconds = time.monotonic() - start

    def stop_everything(self) -> None:
        if self.driver is not None and self.driver.poll() is None:
            os.killpg(self.driver.pid, signal.SIGKILL)
            self.driver.wait()


def score(row: Row, url: str, side: Path, final_driver_start: float) -> None:
    """Fill the loss columns from the store and the side logs."""
    study = hl.load_study("chaos", url)
    trials = study.trials
    row.delivered = delivered(trials)
    by_number = {t.number: t for t in trials}
    acked = read_lines(side / ACKED)
    row.acked = len(acked)
    row.acked_lost = sum(
        (t := by_number.get(int(number))) is None or t.state.value != state
        or repr(t.value) != value for number, state, value in acked)
    row.left_running = sum(t.state is TrialState.RUNNING
                           and (t.started_at or t.created_at or 0) >= final_driver_start
                           for t in trials)
    runs = read_lines(side / RUNS)
    pids = defaultdict(set)
    for number, pid, *_ in runs:
        pids[int(number)].add(pid)
    row.run_twice = sum(len(p) > 1 for p in pids.values())
    row.config_twice = configurations_twice(trials, runs)
    study.store.close()


def configurations_twice(trials: list[hl.TrialRecord], runs: list[list[str]]) -> int:
    """Configurations given to more than one trial that is not a retry of the same one,
    counting the runs of trial numbers the store does not have (their creation was lost)."""
    origin = {t.number: t.system_attrs.get("retry_of", t.number) for t in trials}
    holders: dict[tuple[str, str], set[Any]] = defaultdict(set)
    for t in trials:
        holders[(repr(t.params["x"]), repr(t.params["y"]))].add(origin[t.number])
    for number, _, x, y in runs:
        if int(number) not in origin:
            holders[(x, y)].add(("lost", int(number)))
    return sum(len(h) - 1 for h in holders.values())


@contextmanager
def target(store: str, server: str | None, tmp: Path) -> Iterator[str]:
    if store == "sqlite":
        yield f"sqlite:///{tmp / 'chaos.db'}"
        return
    assert server is not None
    with fresh_database(server) as url:
        yield url


def one_run(store: str, index: int, settings: Settings, server: str | None,
            ray: RayHead | None) -> Row:
    random.seed(f"{store}-{index}")
    row = Row(store=store, run=index, asked=settings.n_trials)
    with tempfile.TemporaryDirectory(prefix="hyperlaw-chaos-") as tmp_name:
        tmp = Path(tmp_name)
        with target(store, server, tmp) as url:
            study = hl.create_study("chaos", storage=url, sampler="tpe", seed=index,
                                    space={"x": hl.Float(0, 1), "y": hl.Float(0, 1)},
                                    retry_stale=RETRIES, heartbeat_interval=HEARTBEAT)
            study.store.close()
            run = Run(row, url, tmp, settings, ray)
            try:
                run.go()
            finally:
                run.stop_everything()
            score(row, url, tmp, run.driver_started)
    return row


# --- the table ---------------------------------------------------------------------------------
COLUMNS = (("store", "store"), ("run", "run"), ("kills", "kills"), ("restarts", "restarts"),
           ("asked", "asked"), ("delivered", "delivered"), ("acked", "acked"),
           ("acked lost", "acked_lost"), ("left RUNNING", "left_running"),
           ("run twice", "run_twice"), ("config twice", "config_twice"),
           ("driver errors", "driver_errors"), ("s", "seconds"))


def table(rows: list[Row]) -> str:
    cells = [[name for name, _ in COLUMNS]]
    for row in rows:
        values = asdict(row)
        cells.append([f"{values[key]:.0f}" if key == "seconds" else str(values[key])
                      for _, key in COLUMNS])
    widths = [max(len(line[i]) for line in cells) for i in range(len(COLUMNS))]
    return "\n".join("  ".join(cell.rjust(width) for cell, width in zip(line, widths,
                                                                          strict=True))
                     for line in cells)


def goal_met(row: Row) -> bool:
    return (row.delivered >= row.asked and row.acked_lost == row.left_running == row.run_twice
            == row.config_twice == row.driver_errors == 0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="1 short run on SQLite and PG")
    parser.add_argument("--stores", help=f"comma-separated, of {', '.join(STORES)}")
    parser.add_argument("--runs", type=int, help="runs per store (3; 1 with --quick)")
    parser.add_argument("--json", type=Path, help=f"where the rows go (default {RESULTS}; "
                        "none with --quick)")
    parser.add_argument("--driver", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.driver:
        drive(json.loads(args.driver))
        return
    settings = QUICK if args.quick else FULL
    stores = (args.stores or ("sqlite,postgresql" if args.quick else ",".join(STORES)))
    runs = args.runs or (1 if args.quick else 3)
    server = postgres_server(None) if stores != "sqlite" else None
    rows = []
    for store in stores.split(","):
        if store not in STORES:
            parser.error(f"unknown store {store!r}; choose from {', '.join(STORES)}")
        ray = None
        try:
            if store == "ray":
                ray = RayHead(Path(tempfile.mkdtemp(prefix="hyperlaw-chaos-ray-")),
                              settings.workers)
            for index in range(runs):
                rows.append(one_run(store, index, settings, server, ray))
                print(f"{store} run {index}: faults {', '.join(rows[-1].faults) or 'none'}",
                      flush=True)
                for error in rows[-1].errors:  # the whole tail is in the JSON rows
                    print(f"  driver error: {error.strip().splitlines()[-1]}", flush=True)
        finally:
            if ray is not None:
                ray.close()
    print()
    print(table(rows))
    met = sum(map(goal_met, rows))
    print(f"\ngoal (every loss column 0, every asked-for result delivered): {met} of "
          f"{len(rows)} runs")
    out = args.json or (None if args.quick else RESULTS)
    if out is not None:
        out.write_text(json.dumps([asdict(r) for r in rows], indent=1) + "\n")


if __name__ == "__main__":
    main()
