"""Early stopping with two objectives (MO-ASHA) on replayed learning curves, against random
search at the full budget.

Each curve family of benchmarks/data/curves.npz becomes a two-objective task: minimize the
validation loss (the recorded curve, replayed by the simulated executor through a real study
with 4 asynchronous workers) and the model's size (log10 of its parameter count, from the
configuration; reported with every value). As in multifidelity.py, a proposed configuration
takes the curve of the nearest recorded configuration the run has not used yet, and every
method gets the same budget: `--full-trials` trials run to the end, in step units.

The score is the hypervolume of the complete trials' (final loss, log10 size) front, with the
reference point (the table's median final loss, log10 of its largest model + 0.1). For each
run it reports the fraction of the budget at which its hypervolume first reaches the median
final hypervolume of random search at the full budget (the issue's goal: at most 1/3), the
median over seeds, and how often a run at a third of the budget is at least a full-budget
random run (all pairs of seeds). "ASHA on the loss only" is the single-objective ASHA in a
study of the loss alone (the size is still scored): it shows what ranking by both buys.
The "tpe" rows choose new configurations with multi-objective TPE, which fits the highest
rung with enough configurations by their (loss, size) vectors there; "tpe (no rung fit)"
turns that off; "auto" rows use the default sampler.

    python benchmarks/mo_asha.py                        # 10 seeds, mlp_digits and cnn_digits
    python benchmarks/mo_asha.py --seeds 3 --families mlp_digits
"""

from __future__ import annotations

import argparse
import json
import math
import time
import warnings
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
from multifidelity import DATA, Table, checkpoint_root

import hyperlaw as hl
from hyperlaw.executors.simulated import Simulation, StudyTuner, simulate
from hyperlaw.pareto import hypervolume
from hyperlaw.samplers import TPESampler
from hyperlaw.schedulers import ASHA, Hyperband, Scheduler
from hyperlaw.trial import Trial, TrialRecord, TrialState

RESULTS = Path(__file__).resolve().parent / "results"
FRACTIONS = (1 / 9, 1 / 6, 1 / 4, 1 / 3, 1 / 2, 2 / 3, 1.0)
CHARLM_VOCAB = 100  # the pydoc alphabet is about this size; only the order of sizes matters


def n_params(family: str, config: dict[str, Any]) -> float:
    """The parameter count of a configuration's network (see data/make_curves.py)."""
    if family == "mlp_digits":
        w, layers = config["width"], config["layers"]
        return 64 * w + w + (layers - 1) * (w * w + w) + 10 * w + 10
    if family == "cnn_digits":
        c, hidden, size, total, channels_in = config["channels"], config["hidden"], 8, 0, 1
        for _ in range(config["conv_layers"]):
            total += channels_in * c * 9 + c
            channels_in, size = c, size // 2
        return total + channels_in * size * size * hidden + hidden + hidden * 10 + 10
    e, h, v = config["embedding"], config["hidden"], CHARLM_VOCAB
    return v * e + 3 * (e * h + h * h + 2 * h) + h * v + v


class TwoObjectiveTuner(StudyTuner):
    """A study of (loss, log10 size): every report and the final value carry both."""

    def __init__(self, study: hl.Study, size: Callable[[dict[str, Any]], float],
                 checkpoints: bool) -> None:
        super().__init__(study, checkpoints)
        self.size = size

    def report(self, handle: Trial, step: int, value: float) -> bool:
        try:
            handle.report((value, self.size(handle.params)), step,
                          checkpoint={"step": step} if self.checkpoints else None)
        except hl.TrialPruned:
            return True
        return False

    def finish(self, handle: Trial, value: float, complete: bool) -> TrialRecord:
        if complete:
            return self.study.tell(handle, (value, self.size(handle.params)))
        return self.study.tell(handle, state=TrialState.PRUNED)


def make_method(scheduler: Callable[[Table], Scheduler | None], both: bool = True,
                checkpoints: bool = False, sampler: str = "random",
                rungs: bool = True) -> Callable[[Table, int], StudyTuner]:
    """A study of both objectives (or of the loss alone) with a sampler and a scheduler.
    `rungs=False`: a TPE sampler that fits the complete and pruned trials only, not the
    values at the highest rung with enough configurations (`multi_fidelity=False`)."""
    def make(table: Table, seed: int) -> StudyTuner:
        chosen: Any = sampler if rungs else TPESampler(seed, multi_fidelity=False)
        common: dict[str, Any] = {
            "space": table.space, "sampler": chosen, "seed": seed,
            "scheduler": scheduler(table), "keep_last_checkpoints": 1,
            "checkpoint_dir": checkpoint_root().name if checkpoints else None}
        if not both:
            return StudyTuner(hl.create_study(**common), checkpoints=checkpoints)
        study = hl.create_study(objectives={"val_loss": "minimize",
                                            "log10_params": "minimize"}, **common)
        return TwoObjectiveTuner(study, partial(log_size, table.name), checkpoints)
    return make


def log_size(family: str, config: dict[str, Any]) -> float:
    return math.log10(n_params(family, config))


def asha(table: Table, promotion: bool = False, eta: float = 3, rate: int = 0) -> ASHA:
    return ASHA(min_budget=int(table.steps[0]), max_budget=int(table.steps[-1]),
                reduction_factor=eta, promotion=promotion, min_early_stopping_rate=rate)


def hyperband(table: Table, promotion: bool = False) -> Hyperband:
    return Hyperband(min_budget=int(table.steps[0]), max_budget=int(table.steps[-1]),
                     promotion=promotion)


METHODS: dict[str, Callable[[Table, int], StudyTuner]] = {
    "random, full budget": make_method(lambda t: None),
    "random + MO-ASHA": make_method(asha),
    "random + MO-ASHA (promotion)": make_method(partial(asha, promotion=True),
                                                checkpoints=True),
    "random + MO-Hyperband": make_method(hyperband),
    # variants: the first decision after 3 steps instead of 1 (rungs 3, 9, 27), or halving
    # (rungs 1, 2, 4, 8, 16)
    "random + MO-ASHA (promotion, first rung 3)": make_method(
        partial(asha, promotion=True, rate=1), checkpoints=True),
    "random + MO-ASHA (promotion, eta 2)": make_method(partial(asha, promotion=True, eta=2),
                                                       checkpoints=True),
    "random + MO-ASHA (first rung 3)": make_method(partial(asha, rate=1)),
    "random + ASHA on the loss only": make_method(asha, both=False),
    # model-based: multi-objective TPE (and "auto") choosing the new configurations, fitting the
    # highest rung with enough configurations (BOHB's rule, `samplers/budgets.py`)
    "tpe, full budget": make_method(lambda t: None, sampler="tpe"),
    "tpe + MO-ASHA": make_method(asha, sampler="tpe"),
    "tpe + MO-ASHA (promotion)": make_method(partial(asha, promotion=True), checkpoints=True,
                                             sampler="tpe"),
    "tpe (no rung fit) + MO-ASHA (promotion)": make_method(
        partial(asha, promotion=True), checkpoints=True, rungs=False),
    "auto + MO-ASHA": make_method(asha, sampler="auto"),
    "auto + MO-ASHA (promotion)": make_method(partial(asha, promotion=True), checkpoints=True,
                                              sampler="auto"),
}


# --- scoring --------------------------------------------------------------------------------
def reference(table: Table) -> np.ndarray:
    sizes = [log_size(table.name, c) for c in table.space.decode_many(table.encoded)]
    return np.array([float(np.median(table.curves[:, -1])), max(sizes) + 0.1])


def hypervolume_trace(result: Simulation, table: Table, ref: np.ndarray
                      ) -> tuple[np.ndarray, np.ndarray]:
    """The budget spent and the hypervolume of the complete trials after each completion."""
    done = sorted((f for f in result.finished if f.complete), key=lambda f: f.spent)
    points: list[tuple[float, float]] = []
    spent, volume = [0.0], [0.0]
    for f in done:
        points.append((f.value, log_size(table.name, f.params)))
        spent.append(f.spent)
        volume.append(hypervolume(np.array(points), ref))
    return np.array(spent), np.array(volume)


def volume_at(trace: tuple[np.ndarray, np.ndarray], spent: float) -> float:
    k = int(np.searchsorted(trace[0], spent + 1e-9, side="right"))
    return float(trace[1][k - 1])


def fraction_to_reach(trace: tuple[np.ndarray, np.ndarray], target: float,
                      budget: float) -> float:
    """The fraction of the budget at which the trace first reaches `target` (inf: never)."""
    reached = np.flatnonzero(trace[1] >= target - 1e-12)
    return float(trace[0][reached[0]] / budget) if len(reached) else math.inf


def run_family(table: Table, methods: dict[str, Callable[[Table, int], StudyTuner]],
               seeds: int, full_trials: int, workers: int) -> dict[str, Any]:
    budget = full_trials * float(table.steps[-1])
    ref = reference(table)
    traces: dict[str, list[tuple[np.ndarray, np.ndarray]]] = {}
    seconds: dict[str, float] = {}
    for name, make in methods.items():
        started = time.perf_counter()
        traces[name] = []
        for seed in range(seeds):
            tuner = make(table, seed)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                result = simulate(tuner, table.distinct_lookup(), n_workers=workers,
                                  max_spent=budget)
            traces[name].append(hypervolume_trace(result, table, ref))
        seconds[name] = time.perf_counter() - started
    full = np.array([t[1][-1] for t in traces["random, full budget"]])
    target = float(np.median(full))
    out: dict[str, Any] = {"reference": ref.tolist(), "budget": budget,
                           "target_hypervolume": target, "methods": {}}
    for name, runs in traces.items():
        at = np.array([[volume_at(t, f * budget) for f in FRACTIONS] for t in runs])
        reach = [fraction_to_reach(t, target, budget) for t in runs]
        third = at[:, FRACTIONS.index(1 / 3)]
        out["methods"][name] = {
            "hypervolume_at": at.tolist(), "fraction_to_reach": reach,
            "median_fraction_to_reach": float(np.median(reach)),
            "p_third_at_least_full": float(np.mean(third[:, None] >= full[None, :])),
            "seconds": seconds[name]}
    return out


def print_family(table: Table, found: dict[str, Any], seeds: int) -> None:
    ref = found["reference"]
    print(f"\n## {table.name}: reference point (loss {ref[0]:.4f}, log10 size {ref[1]:.2f}); "
          f"target: random search's median final hypervolume {found['target_hypervolume']:.4f}")
    header = "".join(f"{f'{c:.0%}':>8}" for c in FRACTIONS)
    print(f"median hypervolume over {seeds} seeds at fractions of the budget "
          f"({found['budget']:.0f} step units); reach: median fraction of the budget at which "
          "a run first reaches the target; P(33% >= full): over all pairs of seeds")
    print(f"{'method':<42}{header}{'reach':>8}{'P(33% >= full)':>16}")
    for name, m in found["methods"].items():
        medians = np.median(np.array(m["hypervolume_at"]), axis=0)
        reach = m["median_fraction_to_reach"]
        print(f"{name:<42}" + "".join(f"{v:>8.4f}" for v in medians)
              + f"{'never' if math.isinf(reach) else f'{reach:.0%}':>8}"
              + f"{m['p_third_at_least_full']:>16.0%}")


def keeps(pattern: str, name: str) -> bool:
    """Does `--methods pattern` keep the method `name`: its exact name, else a substring."""
    return name == pattern if pattern in METHODS else pattern in name


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DATA)
    parser.add_argument("--families", nargs="*", default=["mlp_digits", "cnn_digits"])
    parser.add_argument("--seeds", type=int, default=10)
    parser.add_argument("--full-trials", type=int, default=30)
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--methods", nargs="*", default=None,
                        help="method names, or substrings of names, to keep (random search "
                        "at the full budget, the target, always)")
    parser.add_argument("--save", type=Path, default=RESULTS / "mo_asha.json")
    args = parser.parse_args()
    import logging

    logging.getLogger("hyperlaw").setLevel(logging.ERROR)
    data = np.load(args.data)
    methods = {k: v for k, v in METHODS.items() if not args.methods or k == "random, full budget"
               or any(keeps(s, k) for s in args.methods)}
    saved: dict[str, Any] = {"command": "python benchmarks/mo_asha.py " + " ".join(
        f"--{k.replace('_', '-')} {v}" for k, v in (("seeds", args.seeds),
                                                   ("full_trials", args.full_trials),
                                                   ("workers", args.workers)))
        + " --families " + " ".join(args.families)
        + ("" if not args.methods else " --methods " + " ".join(
            repr(m) for m in args.methods)), "families": {}}
    for family in args.families:
        table = Table.load(data, family)
        found = run_family(table, methods, args.seeds, args.full_trials, args.workers)
        print_family(table, found, args.seeds)
        saved["families"][family] = found
    if args.save:
        args.save.write_text(json.dumps(saved, indent=1))
        print(f"\nsaved to {args.save}")


if __name__ == "__main__":
    main()
