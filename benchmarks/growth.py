"""Cost per trial as a study grows, next to Optuna, and the first ask of every sampler.

    python benchmarks/growth.py                      # to 1,000,000 trials (an hour or more)
    python benchmarks/growth.py --quick              # 100k in memory, 10k on SQLite, <= 2 min a run
    python benchmarks/growth.py --max 100000 --sqlite-max 10000 --budget 600
    python benchmarks/growth.py --optuna-path /tmp/optuna-lib   # Optuna installed there

Each run builds one study through the public API (an ask/tell loop with a cheap objective
over a 5-parameter space, seed 0) in a fresh process, in memory or in a fresh SQLite file,
and reports the mean cost of an ask+tell around each checkpoint (1k, 10k, 100k, 1M): the
500 trials before 1,000, and the 1,000 trials before each larger checkpoint. hyperlaw runs
with the random and the Sobol' samplers (neither reads the history; Sobol' on SQLite only
with `--sqlite-sobol`), Optuna with its RandomSampler. A run past `--budget` seconds stops
(its unfinished checkpoint is not reported) and says so; its growth is then measured to the
last checkpoint it reached. Then each sampler's first ask (random, sobol, grid, tpe, gp,
auto) is timed in fresh processes (the median of `--repeats`; the import of hyperlaw and the
study's creation excluded, and shown apart).

Goals: the cost at the largest checkpoint within 1.5x of the cost at 1k for the samplers
that read no history, and every first ask under 200 ms. Writes benchmarks/results/growth.json
(or `--out`).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

RESULTS = Path(__file__).resolve().parent / "results" / "growth.json"
CHECKPOINTS = (1_000, 10_000, 100_000, 1_000_000)
FIRST_ASK_SAMPLERS = ("random", "sobol", "grid", "tpe", "gp", "auto")
GOAL_GROWTH = 1.5
GOAL_FIRST_ASK_MS = 200.0


def window(checkpoint: int) -> int:
    """How many trials before `checkpoint` its cost is averaged over."""
    return min(1_000, checkpoint // 2)


def objective(params: dict[str, Any]) -> float:
    """A cheap closed-form function of the parameters."""
    return (params["lr"] * 1e3 + params["x"] ** 2 + params["width"] / 512
            + params["layers"] + (0.0 if params["opt"] == "adam" else 0.5))


# --- one run, in its own process ------------------------------------------------------------
def run_hyperlaw(storage: str | None, sampler: str, n: int, budget: float) -> dict[str, Any]:
    """Build a hyperlaw study of up to `n` trials; per-checkpoint mean ask+tell cost (s)."""
    import hyperlaw as hl

    space = {"lr": hl.Float(1e-5, 1e-1, log=True), "x": hl.Float(-1.0, 1.0),
             "width": hl.Int(16, 512, log=True), "layers": hl.Int(1, 4),
             "opt": hl.Choice(["adam", "sgd", "rmsprop"])}
    study = hl.create_study("growth", storage=storage, space=space, sampler=sampler, seed=0)

    def one() -> None:
        trial = study.ask()
        study.tell(trial, objective(trial.params))

    return _loop(one, n, budget)


def run_optuna(storage: str | None, n: int, budget: float) -> dict[str, Any]:
    """The same loop with Optuna's RandomSampler (parameters sampled at ask, like hyperlaw)."""
    import optuna
    from optuna.distributions import (
        CategoricalDistribution,
        FloatDistribution,
        IntDistribution,
    )

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    space = {"lr": FloatDistribution(1e-5, 1e-1, log=True), "x": FloatDistribution(-1.0, 1.0),
             "width": IntDistribution(16, 512, log=True), "layers": IntDistribution(1, 4),
             "opt": CategoricalDistribution(["adam", "sgd", "rmsprop"])}
    study = optuna.create_study(storage=storage, sampler=optuna.samplers.RandomSampler(seed=0))

    def one() -> None:
        trial = study.ask(fixed_distributions=space)
        study.tell(trial, objective(trial.params))

    return _loop(one, n, budget)


def _loop(one: Any, n: int, budget: float) -> dict[str, Any]:
    """Run `one` up to `n` times, or until `budget` seconds have passed."""
    marks = {c: c - window(c) for c in CHECKPOINTS if c <= n}
    started = time.perf_counter()
    costs: dict[str, float] = {}
    window_start = 0.0
    done = 0
    for c in sorted(marks):
        while done < c:
            if done == marks[c]:
                window_start = time.perf_counter()
            if done % 100 == 0 and time.perf_counter() - started > budget:
                return _ran(costs, done, started, stopped=True)
            one()
            done += 1
        costs[str(c)] = (time.perf_counter() - window_start) / window(c)
    return _ran(costs, done, started, stopped=False)


def _ran(costs: dict[str, float], done: int, started: float, stopped: bool) -> dict[str, Any]:
    return {"costs": costs, "trials": done, "seconds": time.perf_counter() - started,
            "stopped_by_budget": stopped}


_FIRST_ASK = """
import json, sys, time
t0 = time.perf_counter()
import hyperlaw as hl
t1 = time.perf_counter()
name = sys.argv[1]
if name == "grid":
    space = {"x": hl.Float(-1.0, 1.0, step=0.25), "layers": hl.Int(1, 4),
             "opt": hl.Choice(["adam", "sgd", "rmsprop"])}
else:
    space = {"lr": hl.Float(1e-5, 1e-1, log=True), "x": hl.Float(-1.0, 1.0),
             "width": hl.Int(16, 512, log=True), "layers": hl.Int(1, 4),
             "opt": hl.Choice(["adam", "sgd", "rmsprop"])}
study = hl.create_study(space=space, sampler=name, seed=0)
t2 = time.perf_counter()
study.ask()
t3 = time.perf_counter()
print(json.dumps({"import_ms": 1e3 * (t1 - t0), "create_ms": 1e3 * (t2 - t1),
                  "first_ask_ms": 1e3 * (t3 - t2)}))
"""


def first_ask(sampler: str, repeats: int) -> dict[str, Any]:
    """The first ask of `sampler`, each in a fresh process (milliseconds): the median over
    `repeats` processes of each timing, and every first ask."""
    runs = []
    for _ in range(repeats):
        out = subprocess.run([sys.executable, "-c", _FIRST_ASK, sampler], check=True,
                             capture_output=True, text=True)
        runs.append(json.loads(out.stdout.strip().splitlines()[-1]))
    median = {key: statistics.median(run[key] for run in runs) for key in runs[0]}
    return {**median, "first_ask_ms_all": [run["first_ask_ms"] for run in runs]}


# --- the driver -----------------------------------------------------------------------------
def child(args: argparse.Namespace) -> None:
    """Entry point of one run's process: prints its result as JSON."""
    if args.optuna_path:
        sys.path.append(args.optuna_path)  # last: the venv's numpy and SQLAlchemy come first
    storage = None
    with tempfile.TemporaryDirectory() as tmp:
        if args.storage == "sqlite":
            storage = f"sqlite:///{Path(tmp) / 'growth.db'}"
        if args.library == "optuna":
            result = run_optuna(storage, args.n, args.budget)
        else:
            result = run_hyperlaw(storage, args.sampler, args.n, args.budget)
    print(json.dumps(result))


def spawn(library: str, storage: str, sampler: str, n: int,
          args: argparse.Namespace) -> dict[str, Any]:
    """One run in a fresh process (nothing shared: memory, caches, imports)."""
    command = [sys.executable, __file__, "--child", library, storage, sampler, str(n),
               "--budget", str(args.budget)]
    if args.optuna_path:
        command += ["--optuna-path", args.optuna_path]
    out = subprocess.run(command, check=True, capture_output=True, text=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def optuna_available(path: str | None) -> str | None:
    """Optuna's version, or None when it cannot be imported."""
    code = "import optuna; print(optuna.__version__)"
    if path:
        code = f"import sys; sys.path.append({path!r}); {code}"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    return out.stdout.strip() if out.returncode == 0 else None


def fmt_cost(seconds: float | None) -> str:
    return "-" if seconds is None else f"{seconds * 1e6:,.0f} µs"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true",
                        help="up to 100,000 trials in memory and 10,000 on SQLite")
    parser.add_argument("--max", type=int, default=None,
                        help="largest in-memory study (default 1,000,000; 100,000 with --quick)")
    parser.add_argument("--sqlite-max", type=int, default=None,
                        help="largest SQLite study (default --max; 10,000 with --quick)")
    parser.add_argument("--budget", type=float, default=None,
                        help="seconds after which a run stops (default 3600; 120 with --quick)")
    parser.add_argument("--repeats", type=int, default=3,
                        help="fresh processes each sampler's first ask is timed in")
    parser.add_argument("--out", type=Path, default=RESULTS, help="where to write the JSON")
    parser.add_argument("--storage", choices=("memory", "sqlite", "both"), default="both",
                        help="which studies to build (the first asks are timed either way)")
    parser.add_argument("--sqlite-sobol", action="store_true",
                        help="also build a SQLite study with the Sobol' sampler")
    parser.add_argument("--optuna-path", default=os.environ.get("OPTUNA_PATH"),
                        help="a directory Optuna is installed in (pip install --target)")
    parser.add_argument("--child", nargs=4, metavar=("LIB", "STORAGE", "SAMPLER", "N"),
                        help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        args.library, args.storage, args.sampler, n = args.child
        args.n = int(n)
        child(args)
        return
    if args.budget is None:
        args.budget = 120.0 if args.quick else 3600.0
    top = args.max or (100_000 if args.quick else 1_000_000)
    sqlite_top = args.sqlite_max or (min(top, 10_000) if args.quick else top)
    optuna_version = optuna_available(args.optuna_path)
    print(f"machine: {os.cpu_count()} CPUs, load {os.getloadavg()[0]:.1f}, "
          f"Python {platform.python_version()}; Optuna: "
          f"{optuna_version or 'not installed (pass --optuna-path), not compared'}", flush=True)
    runs = [("hyperlaw", "memory", "random", top), ("hyperlaw", "memory", "sobol", top),
            ("optuna", "memory", "random", top), ("hyperlaw", "sqlite", "random", sqlite_top),
            ("optuna", "sqlite", "random", sqlite_top)]
    if args.sqlite_sobol:
        runs.insert(4, ("hyperlaw", "sqlite", "sobol", sqlite_top))
    runs = [run for run in runs if (run[0] != "optuna" or optuna_version)
            and args.storage in (run[1], "both")]
    results: dict[str, Any] = {"optuna": optuna_version, "runs": [], "first_ask": {},
                               "load": os.getloadavg()[0], "budget": args.budget}
    print(f"\n{'library':9} {'storage':7} {'sampler':7} "
          + " ".join(f"{c:>10,}" for c in CHECKPOINTS) + "   growth  goal", flush=True)
    for library, storage, sampler, n in runs:
        result = spawn(library, storage, sampler, n, args)
        results["runs"].append({"library": library, "storage": storage, "sampler": sampler,
                                **result})
        costs = result["costs"]
        growth = costs[max(costs, key=int)] / costs["1000"] if costs else float("nan")
        goal = "" if library == "optuna" else (
            "met" if growth <= GOAL_GROWTH else "MISSED")
        cells = " ".join(f"{fmt_cost(costs.get(str(c))):>10}" for c in CHECKPOINTS)
        stopped = f"  (stopped by the budget after {result['trials']:,} trials)" if result[
            "stopped_by_budget"] else ""
        print(f"{library:9} {storage:7} {sampler:7} {cells}   {growth:5.2f}x {goal}{stopped}",
              flush=True)
    print(f"\nfirst ask in a fresh process, median of {args.repeats} "
          f"(goal < {GOAL_FIRST_ASK_MS:.0f} ms):")
    for sampler in FIRST_ASK_SAMPLERS:
        timing = first_ask(sampler, args.repeats)
        results["first_ask"][sampler] = timing
        met = "met" if timing["first_ask_ms"] < GOAL_FIRST_ASK_MS else "MISSED"
        every = ", ".join(f"{ms:.0f}" for ms in timing["first_ask_ms_all"])
        print(f"  {sampler:7} {timing['first_ask_ms']:7.1f} ms  {met}   (each: {every} ms; "
              f"import hyperlaw {timing['import_ms']:.0f} ms, create_study "
              f"{timing['create_ms']:.0f} ms)", flush=True)
    args.out.parent.mkdir(exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2))
    print(f"\nwritten to {args.out}")


if __name__ == "__main__":
    main()
