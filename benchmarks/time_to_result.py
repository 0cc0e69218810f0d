"""Time to result, in the spirit of AlgoPerf: wall time, tuner included, to reach a target
validation loss on real small training workloads, and the performance profile over them.

    python benchmarks/time_to_result.py                       # 3 seeds, cap 180 s per run
    python benchmarks/time_to_result.py --seeds 5 --cap 300 --workloads mlp_digits,cnn_digits

Workloads: the three families of `data/make_curves.py`, trained for real here (the same
models, spaces and training code): scikit-learn MLPs and PyTorch CNNs on the digits (one unit
= one epoch) and GRU character language models on Python's pydoc text (one unit = 8,192
training tokens); a trial trains at most 9 units, reporting the validation loss after each.

Targets (the AlgoPerf recipe's role for a tuned reference run): 16 random configurations per
workload are trained for 9 units with a fixed seed before the race; the target is the
second-best loss any of them reached (about their top 12%), kept in
`results/time_to_result-targets.json` and reused by later runs.

Tuners, each given the same wall-clock cap per run and the same seeds, in one process, one
torch thread, runs interleaved (seed by seed, workload by workload) so that they share the
machine's load alike:

- hyperlaw: its default sampler with ASHA (min 1, max 9 units, reduction factor 3);
- optuna: TPESampler with its HyperbandPruner (same budgets), the combination Optuna's docs
  recommend for TPE;
- random: hyperlaw's random sampler with no early stopping.

A run's time to result is the wall time from the start of `optimize` to the first report at or
below the target (infinite when the cap passes first). Printed: per workload the median time of
each tuner and how many runs reached the target, then the performance profile: for each tuner
the fraction of (workload, seed) runs whose time is within a factor tau of the fastest tuner's
on that run, for tau in 1, 1.5, 2, 4, 8, and the profile's normalised area (1 = always
fastest), as AlgoPerf scores submissions.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import math
import statistics
import sys
import time
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import optuna

import hyperlaw as hl
from hyperlaw.schedulers import ASHA

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results"
UNITS = 9
TAUS = (1.0, 1.5, 2.0, 4.0, 8.0)
TUNERS = ("hyperlaw", "optuna", "random")


def _load_curves_module() -> Any:
    spec = importlib.util.spec_from_file_location("make_curves", HERE / "data" / "make_curves.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


CURVES = _load_curves_module()


def suggest(trial: Any, family: str) -> dict[str, Any]:
    """A configuration of `family` from an Optuna or hyperlaw trial (the same calls)."""
    if family == "charlm_pydoc":
        return {"lr": trial.suggest_float("lr", 1e-4, 0.1, log=True),
                "hidden": trial.suggest_int("hidden", 16, 128, log=True),
                "embedding": trial.suggest_int("embedding", 8, 64, log=True),
                "seq_len": trial.suggest_categorical("seq_len", [16, 32, 64]),
                "batch_size": trial.suggest_categorical("batch_size", [8, 16, 32]),
                "clip": trial.suggest_float("clip", 0.1, 10.0, log=True),
                "optimizer": trial.suggest_categorical("optimizer", ["adam", "rmsprop", "sgd"])}
    config: dict[str, Any] = {"lr": trial.suggest_float("lr", 1e-4, 0.5, log=True),
                              "optimizer": trial.suggest_categorical("optimizer",
                                                                     ["adam", "sgd"])}
    if family == "mlp_digits":
        config.update(width=trial.suggest_int("width", 8, 256, log=True),
                      layers=trial.suggest_int("layers", 1, 3),
                      weight_decay=trial.suggest_float("weight_decay", 1e-6, 1e-1, log=True),
                      batch_size=trial.suggest_categorical("batch_size", [16, 32, 64, 128, 256]))
    else:
        config.update(channels=trial.suggest_int("channels", 4, 48, log=True),
                      conv_layers=trial.suggest_int("conv_layers", 1, 2),
                      hidden=trial.suggest_int("hidden", 16, 128, log=True),
                      dropout=trial.suggest_float("dropout", 0.0, 0.6),
                      weight_decay=trial.suggest_float("weight_decay", 1e-6, 1e-2, log=True),
                      batch_size=trial.suggest_categorical("batch_size", [16, 32, 64, 128]))
    if config["optimizer"] == "sgd":
        config["momentum"] = trial.suggest_float("momentum", 0.0, 0.99)
    return config


def units(family: str, config: dict[str, Any], seed: int, data: Any) -> Iterator[float]:
    """The validation loss after each unit of training, capped as the dataset caps it."""
    trainer, classes = CURVES.FAMILIES[family][1], CURVES.FAMILIES[family][3]
    cap = 1.5 * math.log(classes)
    for loss in trainer(config, seed, data):
        yield min(loss, cap) if math.isfinite(loss) else cap


class Race:
    """The objective of one run: trains, reports, and notes when the target is reached."""

    def __init__(self, family: str, data: Any, target: float, prune: Callable[[Any], None]
                 ) -> None:
        self.family, self.data, self.target, self.prune = family, data, target, prune
        self.started = time.perf_counter()
        self.reached: float | None = None

    def __call__(self, trial: Any) -> float:
        config = suggest(trial, self.family)
        loss = math.inf
        for step, loss in enumerate(units(self.family, config, trial.number, self.data)):
            if loss <= self.target and self.reached is None:
                self.reached = time.perf_counter() - self.started
                trial.study.stop()
            trial.report(loss, step + 1)
            if self.reached is not None or step + 1 >= UNITS:
                break
            self.prune(trial)
        return loss


def _optuna_prune(trial: Any) -> None:
    if trial.should_prune():
        raise optuna.TrialPruned


def run(tuner: str, family: str, data: Any, target: float, seed: int, cap: float) -> float:
    """Seconds to reach `target` (inf when `cap` seconds pass first)."""
    if tuner == "optuna":
        race = Race(family, data, target, _optuna_prune)
        study = optuna.create_study(
            sampler=optuna.samplers.TPESampler(seed=seed),
            pruner=optuna.pruners.HyperbandPruner(min_resource=1, max_resource=UNITS,
                                                  reduction_factor=3))
        study.optimize(race, timeout=cap)
    else:
        race = Race(family, data, target, lambda trial: None)
        study = hl.create_study(
            seed=seed, sampler="random" if tuner == "random" else "auto",
            scheduler=None if tuner == "random" else ASHA(min_budget=1, max_budget=UNITS,
                                                          reduction_factor=3))
        study.optimize(race, timeout=cap, show_progress=False)
    return math.inf if race.reached is None else race.reached


def targets(families: list[str]) -> dict[str, float]:
    """The target of each workload: the second-best loss of 16 random pilot runs."""
    path = RESULTS / "time_to_result-targets.json"
    known = json.loads(path.read_text()) if path.exists() else {}
    for family in families:
        if family in known:
            continue
        sample, loader = CURVES.FAMILIES[family][0], CURVES.FAMILIES[family][2]
        data, rng = loader(), np.random.default_rng(12345)
        bests = sorted(min(list(_take(units(family, sample(rng), 10_000 + i, data), UNITS)))
                       for i in range(16))
        known[family] = bests[1]
        print(f"target for {family}: {bests[1]:.4f} (pilot bests {bests[0]:.4f} to "
              f"{bests[-1]:.4f})", flush=True)
        RESULTS.mkdir(exist_ok=True)
        path.write_text(json.dumps(known, indent=1))
    return {family: known[family] for family in families}


def _take(iterator: Iterator[float], n: int) -> Iterator[float]:
    for _, value in zip(range(n), iterator, strict=False):
        yield value


def profile(times: dict[str, list[float]]) -> dict[str, list[float]]:
    """For each tuner, the fraction of runs within a factor tau of the fastest, per tau."""
    runs = len(next(iter(times.values())))
    ratios: dict[str, list[float]] = {tuner: [] for tuner in times}
    for i in range(runs):
        fastest = min(times[tuner][i] for tuner in times)
        for tuner in times:
            ratios[tuner].append(times[tuner][i] / fastest if math.isfinite(fastest)
                                 else math.inf)
    return {tuner: [sum(r <= tau for r in ratios[tuner]) / runs for tau in TAUS]
            for tuner in times}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--cap", type=float, default=180.0, help="seconds per run")
    parser.add_argument("--workloads", default="mlp_digits,cnn_digits,charlm_pydoc")
    args = parser.parse_args(argv)
    import torch

    torch.set_num_threads(1)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)
    families = args.workloads.split(",")
    goal = targets(families)
    data = {family: CURVES.FAMILIES[family][2]() for family in families}
    times: dict[str, dict[str, list[float]]] = {f: {t: [] for t in TUNERS} for f in families}
    for seed in range(args.seeds):
        for family in families:
            for tuner in TUNERS:
                seconds = run(tuner, family, data[family], goal[family], seed, args.cap)
                times[family][tuner].append(seconds)
                print(f"seed {seed} {family:13s} {tuner:9s} {seconds:8.1f} s", flush=True)
    print(f"\nmedian seconds to the target ({args.seeds} seeds, cap {args.cap:.0f} s; "
          "reached/runs):")
    for family in families:
        cells = [f"{tuner} {statistics.median(times[family][tuner]):.1f} "
                 f"({sum(map(math.isfinite, times[family][tuner]))}/{args.seeds})"
                 for tuner in TUNERS]
        print(f"  {family:13s} target {goal[family]:.4f}: " + ", ".join(cells))
    pooled = {tuner: [s for family in families for s in times[family][tuner]]
              for tuner in TUNERS}
    shape = profile(pooled)
    print("\nperformance profile (fraction of runs within tau x the fastest):")
    print("  tuner     " + "  ".join(f"tau={tau:<4g}" for tau in TAUS) + "  area")
    for tuner in TUNERS:
        area = float(np.trapezoid(shape[tuner], TAUS) / (TAUS[-1] - TAUS[0]))
        print(f"  {tuner:9s} " + "  ".join(f"{v:8.2f}" for v in shape[tuner])
              + f"  {area:.2f}")
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "time_to_result.json").write_text(json.dumps(
        {"seeds": args.seeds, "cap": args.cap, "targets": goal, "times": times,
         "profile": {"taus": TAUS, **shape}}, indent=1, default=str))


if __name__ == "__main__":
    sys.exit(main())
