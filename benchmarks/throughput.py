"""Storage throughput of hyperlaw next to Optuna, on the same database servers in one run.

    python benchmarks/throughput.py                       # PostgreSQL from scripts/test-services.sh
    python benchmarks/throughput.py --postgres URL        # another PostgreSQL server
    python benchmarks/throughput.py --workers --sizes --ray-trials 2000 \
        --results benchmarks/results/throughput-ray2000.json    # only the goal's Ray run

1. Trials per second with 1, 4 and 16 worker processes and a trivial objective, on PostgreSQL
   and on SQLite, for hyperlaw (`study.optimize(n_workers=k)`) and Optuna (k processes, each
   `optuna.load_study(...).optimize`, RDBStorage). Both use a random sampler over one float.
   Throughput is counted from the first trial's start to the last trial's end, as recorded in
   each library's own storage (process start-up is excluded for both); the wall time including
   start-up is printed too.
2. Time per ask+tell of one process joining a hyperlaw PostgreSQL study that already holds
   1,000, 10,000 and 100,000 trials (the study is filled by bulk-inserting rows into hyperlaw's
   schema tables; the process first catches up, then 200 ask+tell are timed; median).
3. A Ray run: N trials that sleep 0.5 s on 2 Ray workers, against the ideal N * 0.5 / 2 s.

Every raw number goes to benchmarks/results/throughput.json.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import statistics
import subprocess
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import sqlalchemy as sa

import hyperlaw as hl
from hyperlaw.store import schema

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "benchmarks" / "results" / "throughput.json"
WORKERS = (1, 4, 16)


# --- servers -------------------------------------------------------------------------------
def postgres_server(given: str | None) -> str:
    if given:
        return given
    if os.environ.get("HYPERLAW_TEST_POSTGRES"):
        return os.environ["HYPERLAW_TEST_POSTGRES"]
    done = subprocess.run(["bash", str(ROOT / "scripts" / "test-services.sh")], check=True,
                          capture_output=True, text=True)
    return done.stdout.strip().splitlines()[-1]


@contextmanager
def fresh_database(server: str) -> Iterator[str]:
    """An empty PostgreSQL database (psycopg URL), dropped afterwards."""
    admin_url = sa.make_url(server).set(drivername="postgresql+psycopg")
    name = f"hyperlaw_bench_{uuid.uuid4().hex[:10]}"
    admin = sa.create_engine(admin_url, isolation_level="AUTOCOMMIT", poolclass=sa.NullPool)
    with admin.connect() as conn:
        conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
    try:
        yield admin_url.set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.dispose()


@contextmanager
def fresh_target(kind: str, server: str, tmp: Path) -> Iterator[str]:
    if kind == "postgresql":
        with fresh_database(server) as url:
            yield url
    else:
        path = tmp / f"{uuid.uuid4().hex[:8]}.db"
        yield f"sqlite:///{path}"


# --- throughput ----------------------------------------------------------------------------
def objective_hl(trial: hl.Trial) -> float:
    return (trial.params["x"] - 0.5) ** 2


def hyperlaw_throughput(url: str, n_trials: int, workers: int) -> dict[str, Any]:
    study = hl.create_study("tp", storage=url, space={"x": hl.Float(0, 1)}, sampler="random",
                            seed=0)
    start = time.time()
    study.optimize(objective_hl, n_trials=n_trials, n_workers=workers, show_progress=False)
    wall = time.time() - start
    trials = study.trials
    done = [t for t in trials if t.state is hl.TrialState.COMPLETE]
    first = min(t.started_at or t.created_at for t in trials)
    last = max(t.finished_at or 0.0 for t in trials)
    study.store.close()
    return {"complete": len(done), "trials": len(trials), "active_s": last - first,
            "wall_s": wall, "trials_per_s": len(done) / (last - first)}


def _optuna_worker(url: str, n_trials: int, errors: Any) -> None:
    import optuna

    optuna.logging.set_verbosity(optuna.logging.ERROR)
    try:
        study = optuna.load_study(study_name="tp", storage=url,
                                  sampler=optuna.samplers.RandomSampler())
        study.optimize(lambda t: (t.suggest_float("x", 0, 1) - 0.5) ** 2, n_trials=n_trials)
    except Exception as exc:  # counted and reported: e.g. SQLite "database is locked"
        errors.put(f"{type(exc).__name__}: {str(exc).splitlines()[0][:160]}")


def optuna_throughput(url: str, n_trials: int, workers: int) -> dict[str, Any]:
    import optuna

    optuna.logging.set_verbosity(optuna.logging.ERROR)
    storage = optuna.storages.RDBStorage(url, engine_kwargs={"pool_pre_ping": True})
    optuna.create_study(study_name="tp", storage=storage)
    del storage
    context = mp.get_context("spawn")
    errors = context.Queue()
    shares = [n_trials // workers + (i < n_trials % workers) for i in range(workers)]
    start = time.time()
    processes = [context.Process(target=_optuna_worker, args=(url, share, errors))
                 for share in shares]
    for p in processes:
        p.start()
    for p in processes:
        p.join()
    wall = time.time() - start
    messages = []
    while not errors.empty():
        messages.append(errors.get())
    study = optuna.load_study(study_name="tp", storage=url)
    trials = study.get_trials(deepcopy=False)
    done = [t for t in trials if t.state == optuna.trial.TrialState.COMPLETE]
    first = min(t.datetime_start.timestamp() for t in trials if t.datetime_start)
    last = max(t.datetime_complete.timestamp() for t in trials if t.datetime_complete)
    return {"complete": len(done), "trials": len(trials), "active_s": last - first,
            "wall_s": wall, "trials_per_s": len(done) / (last - first),
            "worker_errors": messages}


# --- ask+tell at size ----------------------------------------------------------------------
def fill(url: str, n: int) -> None:
    """A hyperlaw study of `n` complete trials, written straight into the schema tables."""
    store = hl.create_study("big", storage=url, space={"x": hl.Float(0, 1)},
                            sampler="random", seed=0).store
    study_id = store.get_study("big").id
    store.close()
    engine = sa.create_engine(sa.make_url(url).set(drivername="postgresql+psycopg"))
    now = time.time()
    with engine.begin() as conn:
        for lo in range(0, n, 20_000):
            conn.execute(sa.insert(schema.trials), [{
                "study_id": study_id, "number": i, "state": "complete",
                "params": json.dumps({"x": (i * 0.618034) % 1.0}), "value": float(i % 997),
                "user_attrs": "{}", "system_attrs": "{}", "error": None, "created_at": now,
                "started_at": now, "finished_at": now, "heartbeat_at": None, "seq": i + 1,
            } for i in range(lo, min(n, lo + 20_000))])
        conn.execute(sa.update(schema.studies).where(schema.studies.c.id == study_id)
                     .values(next_number=n, next_seq=n))
    engine.dispose()


def ask_tell_at_size(url: str, n: int, repeats: int = 200) -> dict[str, Any]:
    fill(url, n)
    start = time.perf_counter()
    study = hl.load_study("big", url)
    trial = study.ask()
    study.tell(trial, 1.0)
    catch_up = time.perf_counter() - start
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        trial = study.ask()
        study.tell(trial, objective_hl(trial))
        times.append(time.perf_counter() - t0)
    study.store.close()
    return {"n": n, "catch_up_s": catch_up, "median_ms": statistics.median(times) * 1e3,
            "p90_ms": sorted(times)[int(0.9 * len(times))] * 1e3}


# --- Ray -----------------------------------------------------------------------------------
def sleepy(trial: hl.Trial) -> float:
    time.sleep(0.5)
    return trial.params["x"]


def ray_run(url: str, n_trials: int) -> dict[str, Any]:
    study = hl.create_study("ray", storage=url, space={"x": hl.Float(0, 1)}, sampler="random",
                            seed=0)
    start = time.time()
    study.optimize(sleepy, n_trials=n_trials, executor="ray", n_workers=2,
                   resources_per_trial={"cpu": 1}, show_progress=False)
    wall = time.time() - start
    trials = study.trials
    first = min(t.started_at or t.created_at for t in trials)
    last = max(t.finished_at or 0.0 for t in trials)
    ideal = n_trials * 0.5 / 2
    return {"n": n_trials, "wall_s": wall, "active_s": last - first, "ideal_s": ideal,
            "overhead_active_pct": 100 * ((last - first) / ideal - 1),
            "overhead_wall_pct": 100 * (wall / ideal - 1)}


# --- main ----------------------------------------------------------------------------------
def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--postgres", help="PostgreSQL server URL (default: the test service)")
    parser.add_argument("--trials", type=int, default=400, help="trials per throughput run")
    parser.add_argument("--sizes", type=int, nargs="*", default=[1_000, 10_000, 100_000])
    parser.add_argument("--ray-trials", type=int, default=200,
                        help="trials of the Ray run (the goal is stated for 2000; 0 skips)")
    parser.add_argument("--workers", type=int, nargs="*", default=list(WORKERS))
    parser.add_argument("--skip-sqlite", action="store_true")
    parser.add_argument("--results", type=Path, default=RESULTS, help="where to write JSON")
    args = parser.parse_args()
    server = postgres_server(args.postgres)
    results: dict[str, Any] = {"throughput": [], "sizes": [], "ray": None,
                               "cpus": os.cpu_count(), "load_before": os.getloadavg()}
    kinds = ["postgresql"] + ([] if args.skip_sqlite else ["sqlite"])
    runners: dict[str, Callable[[str, int, int], dict[str, Any]]] = {
        "hyperlaw": hyperlaw_throughput, "optuna": optuna_throughput}
    with tempfile.TemporaryDirectory(prefix="hyperlaw-bench-") as tmp:
        for kind in kinds:
            for workers in args.workers:
                for lib, run in runners.items():
                    with fresh_target(kind, server, Path(tmp)) as url:
                        row = {"backend": kind, "workers": workers, "library": lib,
                               **run(url, args.trials, workers)}
                    results["throughput"].append(row)
                    print(f"{kind:10s} {workers:2d} workers {lib:8s} "
                          f"{row['trials_per_s']:8.1f} trials/s  ({row['complete']} complete, "
                          f"wall {row['wall_s']:.1f} s)", flush=True)
        for n in args.sizes:
            with fresh_database(server) as url:
                row = ask_tell_at_size(url, n)
            results["sizes"].append(row)
            print(f"ask+tell at {n:7d} trials: median {row['median_ms']:.2f} ms "
                  f"(p90 {row['p90_ms']:.2f} ms; catch-up {row['catch_up_s']:.2f} s)",
                  flush=True)
        if args.ray_trials:
            with fresh_database(server) as url:
                results["ray"] = ray_run(url, args.ray_trials)
            print(f"ray: {results['ray']}", flush=True)
    results["load_after"] = os.getloadavg()
    args.results.parent.mkdir(parents=True, exist_ok=True)
    args.results.write_text(json.dumps(results, indent=2))
    report(results)


def report(results: dict[str, Any]) -> None:
    print("\nTrials per second, trivial objective (first start to last end; wall incl. "
          "start-up in brackets)")
    print(f"{'backend':10s} {'workers':>7s} {'hyperlaw':>18s} {'optuna':>18s} {'ratio':>7s}")
    rows = results["throughput"]
    for kind in dict.fromkeys(r["backend"] for r in rows):
        for workers in sorted({r["workers"] for r in rows}):
            pair = {r["library"]: r for r in rows
                    if r["backend"] == kind and r["workers"] == workers}
            if len(pair) < 2:
                continue
            h, o = pair["hyperlaw"], pair["optuna"]
            errors = f"  optuna worker errors: {len(o['worker_errors'])}" \
                if o["worker_errors"] else ""
            print(f"{kind:10s} {workers:7d} {h['trials_per_s']:8.1f} [{h['wall_s']:5.1f} s]"
                  f" {o['trials_per_s']:8.1f} [{o['wall_s']:5.1f} s]"
                  f" {h['trials_per_s'] / o['trials_per_s']:6.1f}x{errors}")
    if results["sizes"]:
        print("\nhyperlaw ask+tell on PostgreSQL by study size (one process, after catch-up)")
        base = results["sizes"][0]["median_ms"]
        for row in results["sizes"]:
            print(f"{row['n']:>8d} trials: {row['median_ms']:6.2f} ms median "
                  f"({row['median_ms'] / base:4.2f}x of the smallest)")
    ray = results["ray"]
    if ray:
        print(f"\nRay: {ray['n']} trials x 0.5 s on 2 workers: wall {ray['wall_s']:.1f} s, "
              f"trials active {ray['active_s']:.1f} s, ideal {ray['ideal_s']:.1f} s "
              f"(+{ray['overhead_active_pct']:.1f} % active, +{ray['overhead_wall_pct']:.1f} % "
              "wall)")
    print(f"\nload average before/after: {results['load_before']} / {results['load_after']}")


if __name__ == "__main__":
    main()
