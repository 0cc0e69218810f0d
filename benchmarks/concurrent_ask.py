"""Configurations handed out twice when separate processes ask and tell on one study.

    python benchmarks/concurrent_ask.py                        # 16 processes x 50 trials, TPE
    python benchmarks/concurrent_ask.py --processes 8 --trials 20 --mode define-by-run
    python benchmarks/concurrent_ask.py --sampler auto --postgres postgresql://...

Each process opens the same study (`hl.load_study`; SQLite, or PostgreSQL with
`--postgres`) and loops `study.ask()` / a short objective / `study.tell()`, all starting at
once. The space is continuous (two floats), so a configuration that occurs twice is a
defect, not chance. Modes: `declared` (the study has a `space=`) and `define-by-run` (the
objective calls `trial.suggest_float`). Prints, per mode, the trials, the exact repeats
(trials whose configuration an earlier trial already had), and the repeats between trials
that ran at the same time.
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import hyperlaw as hl
from hyperlaw.history.observations import params_key
from hyperlaw.trial import TrialRecord

SPACE = {"x": hl.Float(0.0, 1.0), "y": hl.Float(0.0, 1.0)}


def _objective(trial: hl.Trial, declared: bool, sleep: float) -> float:
    if declared:
        x, y = trial.params["x"], trial.params["y"]
    else:
        x, y = trial.suggest_float("x", 0.0, 1.0), trial.suggest_float("y", 0.0, 1.0)
    time.sleep(sleep)
    return (x - 0.3) ** 2 + (y - 0.7) ** 2


def _worker(url: str, name: str, n_trials: int, declared: bool, sleep: float,
            start_at: float) -> None:
    study = hl.load_study(name, url)
    time.sleep(max(0.0, start_at - time.time()))
    for _ in range(n_trials):
        trial = study.ask()
        study.tell(trial, _objective(trial, declared, sleep))


def run(url: str, name: str, processes: int, n_trials: int, declared: bool, sleep: float,
        sampler: str, seed: int | None) -> list[TrialRecord]:
    """Run the scenario on a new study `name` at `url` and return its trials."""
    study = hl.create_study(name, storage=url, space=SPACE if declared else None,
                            sampler=sampler, seed=seed)
    context = mp.get_context("spawn")
    start_at = time.time() + 2.0 + 0.3 * processes  # after every process has imported
    workers = [context.Process(target=_worker,
                               args=(url, name, n_trials, declared, sleep, start_at))
               for _ in range(processes)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
        if worker.exitcode != 0:
            raise RuntimeError(f"a worker process exited with code {worker.exitcode}")
    return study.trials


def repeats(trials: list[TrialRecord]) -> dict[str, Any]:
    """Exact repeats, and repeats between trials whose running times overlapped."""
    seen: dict[str, list[TrialRecord]] = {}
    for t in trials:
        seen.setdefault(params_key(t.params), []).append(t)
    exact = sum(len(group) - 1 for group in seen.values())
    concurrent = sum(
        1 for group in seen.values() for i, a in enumerate(group) for b in group[:i]
        if _overlap(a, b))
    longest = max((len(group) for group in seen.values()), default=0)
    return {"trials": len(trials), "exact_repeats": exact, "concurrent_repeats": concurrent,
            "most_copies_of_one_point": longest}


def _overlap(a: TrialRecord, b: TrialRecord) -> bool:
    if None in (a.started_at, a.finished_at, b.started_at, b.finished_at):
        return True
    return a.started_at < b.finished_at and b.started_at < a.finished_at  # type: ignore[operator]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--processes", type=int, default=16)
    parser.add_argument("--trials", type=int, default=50, help="trials per process")
    parser.add_argument("--mode", choices=["declared", "define-by-run", "both"], default="both")
    parser.add_argument("--sleep", type=float, default=0.01, help="seconds per objective")
    parser.add_argument("--seed", type=int, default=0, help="the study's sampler seed")
    parser.add_argument("--sampler", default="tpe")
    parser.add_argument("--postgres", help="an empty PostgreSQL database URL (else SQLite)")
    args = parser.parse_args()
    modes = ["declared", "define-by-run"] if args.mode == "both" else [args.mode]
    print(f"{args.processes} processes x {args.trials} trials, {args.sampler} (seed "
          f"{args.seed}), {'PostgreSQL' if args.postgres else 'SQLite'}, continuous space")
    print(f"{'mode':<15}{'trials':>8}{'exact repeats':>15}{'concurrent':>12}{'max copies':>12}")
    with tempfile.TemporaryDirectory() as tmp:
        for mode in modes:
            url = args.postgres or f"sqlite:///{Path(tmp) / f'{mode}.db'}"
            name = f"{mode}-{uuid.uuid4().hex[:8]}"
            trials = run(url, name, args.processes, args.trials, mode == "declared",
                         args.sleep, args.sampler, args.seed)
            found = repeats(trials)
            print(f"{mode:<15}{found['trials']:>8}{found['exact_repeats']:>15}"
                  f"{found['concurrent_repeats']:>12}{found['most_copies_of_one_point']:>12}")


if __name__ == "__main__":
    main()
