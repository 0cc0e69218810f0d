"""Multi-fidelity search on replayed real learning curves, hyperlaw against Optuna's pruners.

Each curve family of benchmarks/data/curves.npz (real training runs, see data/make_curves.py)
becomes a tabular benchmark: a configuration proposed by a sampler is mapped to the nearest
recorded configuration (unit-cube distance in the family's space) that the run has not used
yet, and its recorded validation curve is replayed by the simulated executor — several
asynchronous workers, a simulated clock with the recorded cost per unit — through the real
ask/report/tell of each library. (A real objective never returns the same curve for a new
configuration; replaying the nearest row even when used, `--replay nearest`, makes a sampler
whose proposals concentrate re-run curves it has already seen.)

Every method gets the same total budget (step units trained by all workers together: the
budget of `--full-trials` trials run to the end). The score is the regret of the incumbent
(the best complete trial so far) against the best final value in the table, printed at
fractions of the budget as the median over seeds. A final section times one scheduler
decision at 1,000 trials.

    python benchmarks/multifidelity.py                 # 10 seeds, all families
    python benchmarks/multifidelity.py --seeds 3 --families mlp_digits
"""

from __future__ import annotations

import argparse
import json
import logging
import tempfile
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache, partial
from pathlib import Path
from typing import Any

import numpy as np

import hyperlaw as hl
from hyperlaw.executors.simulated import ReplayCurve, Simulation, StudyTuner, simulate
from hyperlaw.samplers import SAMPLERS
from hyperlaw.schedulers import (
    ASHA,
    CurveStopping,
    FreezeThaw,
    Hyperband,
    MedianStopping,
    PercentileStopping,
    Scheduler,
)

DATA = Path(__file__).resolve().parent / "data" / "curves.npz"
CHECKPOINTS = (1 / 9, 1 / 6, 1 / 4, 1 / 3, 1 / 2, 2 / 3, 1.0)

_OPT = hl.Choice(["adam", "sgd"])
SPACES = {
    "mlp_digits": hl.Space({
        "lr": hl.Float(1e-4, 0.5, log=True), "width": hl.Int(8, 256, log=True),
        "layers": hl.Int(1, 3), "optimizer": _OPT,
        "weight_decay": hl.Float(1e-6, 1e-1, log=True),
        "batch_size": hl.Choice([16, 32, 64, 128, 256]),
        "momentum": hl.Float(0.0, 0.99, when={"optimizer": "sgd"})}),
    "cnn_digits": hl.Space({
        "lr": hl.Float(1e-4, 0.5, log=True), "channels": hl.Int(4, 48, log=True),
        "conv_layers": hl.Int(1, 2), "hidden": hl.Int(16, 128, log=True),
        "dropout": hl.Float(0.0, 0.6), "optimizer": _OPT,
        "weight_decay": hl.Float(1e-6, 1e-2, log=True),
        "batch_size": hl.Choice([16, 32, 64, 128]),
        "momentum": hl.Float(0.0, 0.99, when={"optimizer": "sgd"})}),
    "charlm_pydoc": hl.Space({
        "lr": hl.Float(1e-4, 0.1, log=True), "hidden": hl.Int(16, 128, log=True),
        "embedding": hl.Int(8, 64, log=True), "seq_len": hl.Choice([16, 32, 64]),
        "batch_size": hl.Choice([8, 16, 32]), "clip": hl.Float(0.1, 10.0, log=True),
        "optimizer": hl.Choice(["adam", "rmsprop", "sgd"])}),
}


@dataclass
class Table:
    """One family's recorded curves, looked up by nearest configuration."""

    name: str
    space: hl.Space
    steps: np.ndarray
    curves: np.ndarray
    seconds: np.ndarray
    encoded: np.ndarray

    @classmethod
    def load(cls, data: Any, name: str) -> Table:
        space = SPACES[name]
        configs = json.loads(str(data[f"{name}/configs"]))
        return cls(name, space, data[f"{name}/steps"], data[f"{name}/curves"].astype(float),
                   data[f"{name}/seconds_per_unit"].astype(float), space.encode_many(configs))

    @property
    def best_final(self) -> float:
        return float(self.curves[:, -1].min())

    def distance(self, params: dict[str, Any]) -> np.ndarray:
        """Squared unit-cube distance to every recorded configuration."""
        x = self.space.encode(params)
        both = ~np.isnan(self.encoded) & ~np.isnan(x)
        diff = np.where(both, self.encoded - x, 0.0)
        mismatch = np.isnan(self.encoded) != np.isnan(x)
        return (diff**2).sum(axis=1) + 0.25 * mismatch.sum(axis=1)

    def nearest(self, params: dict[str, Any]) -> int:
        return int(np.argmin(self.distance(params)))

    def curve_for(self, params: dict[str, Any]) -> ReplayCurve:
        return self.replay(self.nearest(params))

    def replay(self, k: int) -> ReplayCurve:
        unit = float(self.steps[0])
        return ReplayCurve(self.steps.tolist(), self.curves[k].tolist(),
                           float(self.seconds[k]) / unit)

    def distinct_lookup(self) -> Callable[[dict[str, Any]], ReplayCurve]:
        """A lookup for one run: a configuration seen before gets its row again, a new one
        the nearest row this run has not used (a real objective never repeats a curve)."""
        assigned: dict[str, int] = {}
        used = np.zeros(len(self.curves), dtype=bool)

        def curve_for(params: dict[str, Any]) -> ReplayCurve:
            key = json.dumps(params, sort_keys=True, default=str)
            if key not in assigned:
                distance = self.distance(params)
                if not used.all():
                    distance[used] = np.inf
                assigned[key] = k = int(np.argmin(distance))
                used[k] = True
            return self.replay(assigned[key])
        return curve_for


# --- methods ---------------------------------------------------------------------------------
@cache
def checkpoint_root() -> tempfile.TemporaryDirectory:
    """Where the promotion variants' trials keep their checkpoints (removed at exit): in
    memory (/dev/shm) where there is one, since their fsyncs cost more than the replay."""
    shm = Path("/dev/shm")
    return tempfile.TemporaryDirectory(prefix="hyperlaw-multifidelity-",
                                       dir=shm if shm.is_dir() else None)


def hyperlaw_method(sampler: str, make_scheduler: Callable[[Table], Scheduler | None],
                    checkpoints: bool = False, **options: Any) -> Callable[[Table, int], Any]:
    """A hyperlaw study; with `checkpoints`, every report saves one (promotion variants)."""
    def make(table: Table, seed: int) -> StudyTuner:
        chosen = SAMPLERS[sampler](seed=seed, **options) if options else sampler
        study = hl.create_study(space=table.space, sampler=chosen, seed=seed,
                                scheduler=make_scheduler(table), keep_last_checkpoints=1,
                                checkpoint_dir=checkpoint_root().name if checkpoints else None)
        return StudyTuner(study, checkpoints=checkpoints)
    return make


class OptunaTuner:
    """An Optuna study driven through ask/tell with a pruner."""

    def __init__(self, space: hl.Space, pruner: Any, seed: int) -> None:
        import optuna

        optuna.logging.set_verbosity(optuna.logging.WARNING)
        self.optuna = optuna
        self.space = space
        # a fixed name: HyperbandPruner deals trials to brackets by a hash of the study name
        self.study = optuna.create_study(study_name=f"replay-seed-{seed}", pruner=pruner,
                                         sampler=optuna.samplers.TPESampler(seed=seed))

    def start(self) -> tuple[Any, dict[str, Any]]:
        trial = self.study.ask()
        params: dict[str, Any] = {}
        for name in self.space.order:
            if not self.space.is_active(name, params):
                continue
            param = self.space[name]
            if isinstance(param, hl.Float):
                params[name] = trial.suggest_float(name, param.low, param.high, log=param.log)
            elif isinstance(param, hl.Int):
                params[name] = trial.suggest_int(name, param.low, param.high, log=param.log)
            else:
                params[name] = trial.suggest_categorical(name, list(param.values))
        return trial, params

    def report(self, handle: Any, step: int, value: float) -> bool:
        handle.report(value, step)
        return handle.should_prune()

    def finish(self, handle: Any, value: float, complete: bool) -> None:
        state = self.optuna.trial.TrialState
        self.study.tell(handle, value if complete else None,
                        state=state.COMPLETE if complete else state.PRUNED)


class DehbTuner:
    """DEHB (differential-evolution Hyperband) driven through its ask/tell: each job trains a
    configuration from scratch to the job's fidelity, then DEHB is told the value there."""

    def __init__(self, table: Table, seed: int, workdir: str) -> None:
        import ConfigSpace as cs
        from dehb import DEHB
        from loguru import logger

        logger.remove()
        self.space = table.space
        self.top = float(table.steps[-1])
        config_space = cs.ConfigurationSpace(seed=seed)
        for name in table.space.order:
            param = table.space[name]
            if isinstance(param, hl.Float):
                hp: Any = cs.UniformFloatHyperparameter(name, param.low, param.high,
                                                        log=param.log)
            elif isinstance(param, hl.Int):
                hp = cs.UniformIntegerHyperparameter(name, param.low, param.high, log=param.log)
            else:
                hp = cs.CategoricalHyperparameter(name, list(param.values))
            config_space.add(hp)
            if param.when:
                (parent, values), = param.when.items()
                config_space.add(cs.EqualsCondition(hp, config_space[parent], values[0]))
        self.dehb = DEHB(cs=config_space, dimensions=len(config_space),
                         min_fidelity=float(table.steps[0]), max_fidelity=self.top, eta=3,
                         seed=seed, n_workers=1, output_path=workdir, save_freq=None)

    def start(self) -> tuple[Any, dict[str, Any]]:
        job = self.dehb.ask()
        params = dict(job["config"])
        return {"job": job, "told": False}, params

    def _tell(self, handle: dict, step: int, value: float) -> None:
        if not handle["told"]:
            handle["told"] = True
            self.dehb.tell(handle["job"], {"fitness": value, "cost": float(step)})

    def report(self, handle: dict, step: int, value: float) -> bool:
        fidelity = float(handle["job"]["fidelity"])
        if fidelity < self.top and step >= fidelity - 1e-6:
            self._tell(handle, step, value)
            return True
        return False

    def finish(self, handle: dict, value: float, complete: bool) -> None:
        if complete:
            self._tell(handle, int(self.top), value)


def dehb_method(table: Table, seed: int) -> DehbTuner:
    import tempfile

    return DehbTuner(table, seed, tempfile.mkdtemp(prefix="dehb-"))


def optuna_method(make_pruner: Callable[[Table], Any]) -> Callable[[Table, int], Any]:
    def make(table: Table, seed: int) -> OptunaTuner:
        return OptunaTuner(table.space, make_pruner(table), seed)
    return make


def asha(table: Table, reduction_factor: float = 3, min_budget_factor: int = 1,
         promotion: bool = False) -> ASHA:
    return ASHA(min_budget=min_budget_factor * int(table.steps[0]),
                max_budget=int(table.steps[-1]), reduction_factor=reduction_factor,
                promotion=promotion)


def hyperband(table: Table, promotion: bool = False) -> Hyperband:
    return Hyperband(min_budget=int(table.steps[0]), max_budget=int(table.steps[-1]),
                     promotion=promotion)


def curve(table: Table) -> CurveStopping:
    return CurveStopping(min_budget=int(table.steps[2]), max_budget=int(table.steps[-1]))


def freeze_thaw(table: Table, **options: Any) -> FreezeThaw:
    """Freeze-thaw with a first look at three points; unless told otherwise, under the former
    rule (no screen, a new configuration valued by the first looks, no ranking at increment
    ends), which the saved rows named without "(screen)" or "(ranked)" ran."""
    options = {"min_budget": int(table.steps[2]), "screen": None, "new_trial_value": "first",
               "rank_from": None, **options}
    return FreezeThaw(max_budget=int(table.steps[-1]), **options)


#: FreezeThaw's defaults (a screen, new configurations valued as known now, the ranking at
#: increment ends past a third of the budget) with the first look at three points
ranked_freeze_thaw = partial(freeze_thaw, screen="auto", new_trial_value="latest",
                             rank_from=1 / 3)


def methods() -> dict[str, Callable[[Table, int], Any]]:
    import optuna

    pruners = optuna.pruners
    found: dict[str, Callable[[Table, int], Any]] = {
        "hl random, full budget": hyperlaw_method("random", lambda t: None),
        "hl random + median": hyperlaw_method(
            "random", lambda t: MedianStopping(n_startup_trials=5)),
        "hl random + percentile25": hyperlaw_method(
            "random", lambda t: PercentileStopping(25.0, n_startup_trials=5)),
        "hl random + ASHA": hyperlaw_method("random", asha),
        "hl random + Hyperband": hyperlaw_method("random", hyperband),
        # the promotion variants: pause at a rung, continue from the checkpoint when promoted
        "hl random + ASHA (promotion)": hyperlaw_method(
            "random", partial(asha, promotion=True), checkpoints=True),
        "hl random + Hyperband (promotion)": hyperlaw_method(
            "random", partial(hyperband, promotion=True), checkpoints=True),
        "hl random + curve": hyperlaw_method("random", curve),
        # freeze-thaw: pause every trial at each increment, continue by predicted gain per cost
        "hl random + freeze-thaw": hyperlaw_method("random", freeze_thaw, checkpoints=True),
        "hl random + freeze-thaw (LC-PFN)": hyperlaw_method(
            "random", partial(freeze_thaw, curve_model="hyperlaw.curves.pfn:predict"),
            checkpoints=True),
        "hl random + freeze-thaw (new x3)": hyperlaw_method(
            "random", partial(freeze_thaw, new_trial_weight=3), checkpoints=True),
        "hl sobol + ASHA": hyperlaw_method("sobol", asha),
        # ASHA's settings, varied one at a time (is the default a poor fit for a family?)
        "hl random + ASHA eta=2": hyperlaw_method("random", partial(asha, reduction_factor=2)),
        "hl random + ASHA eta=4": hyperlaw_method("random", partial(asha, reduction_factor=4)),
        "hl random + ASHA min x3": hyperlaw_method("random",
                                                   partial(asha, min_budget_factor=3)),
    }
    for sampler in ("tpe", "gp", "auto"):  # model-based samplers, where this build has them
        if sampler in SAMPLERS:
            found[f"hl {sampler} + ASHA"] = hyperlaw_method(sampler, asha)
            found[f"hl {sampler} + ASHA (promotion)"] = hyperlaw_method(
                sampler, partial(asha, promotion=True), checkpoints=True)
            found[f"hl {sampler} + curve"] = hyperlaw_method(sampler, curve)
            found[f"hl {sampler} + freeze-thaw"] = hyperlaw_method(
                sampler, freeze_thaw, checkpoints=True)
            for h in (1, 2):  # the predicted improvement h increments ahead (DyHPO: 1)
                found[f"hl {sampler} + freeze-thaw (horizon {h})"] = hyperlaw_method(
                    sampler, partial(freeze_thaw, horizon=h), checkpoints=True)
            # FreezeThaw's defaults: a screen at min_budget / 3 (the first step here) and a
            # new configuration valued by what the earlier ones offer as known now
            found[f"hl {sampler} + freeze-thaw (screen)"] = hyperlaw_method(
                sampler, partial(freeze_thaw, screen="auto", new_trial_value="latest"),
                checkpoints=True)
            # and the ranking at increment ends from a third of the full budget on (the
            # defaults since)
            found[f"hl {sampler} + freeze-thaw (ranked)"] = hyperlaw_method(
                sampler, ranked_freeze_thaw, checkpoints=True)
            found[f"hl {sampler} + freeze-thaw (latest, no screen)"] = hyperlaw_method(
                sampler, partial(freeze_thaw, new_trial_value="latest"), checkpoints=True)
            found[f"hl {sampler} + freeze-thaw (LC-PFN)"] = hyperlaw_method(
                sampler, partial(freeze_thaw, curve_model="hyperlaw.curves.pfn:predict"),
                checkpoints=True)
    for sampler in ("tpe", "gp"):  # learning from rung values (BOHB's rule) or not at all
        if sampler in SAMPLERS:
            found[f"hl {sampler} + freeze-thaw (ranked, budget-aware)"] = hyperlaw_method(
                sampler, ranked_freeze_thaw, checkpoints=True, multi_fidelity="auto")
            found[f"hl {sampler} + ASHA (budget-aware)"] = hyperlaw_method(
                sampler, asha, multi_fidelity=True)
            found[f"hl {sampler} + ASHA (plain)"] = hyperlaw_method(
                sampler, asha, multi_fidelity=False)
    found["optuna TPE + SH"] = optuna_method(lambda t: pruners.SuccessiveHalvingPruner(
        min_resource=int(t.steps[0]), reduction_factor=3))
    found["optuna TPE + Hyperband"] = optuna_method(lambda t: pruners.HyperbandPruner(
        min_resource=int(t.steps[0]), max_resource=int(t.steps[-1]), reduction_factor=3))
    found["optuna TPE + median"] = optuna_method(
        lambda t: pruners.MedianPruner(n_startup_trials=5))
    try:
        import dehb  # noqa: F401
    except ImportError:
        logging.warning("DEHB is not installed (pip install dehb): left out")
    else:
        found["DEHB"] = dehb_method
    return found


# --- scoring --------------------------------------------------------------------------------
def regret_curve(result: Simulation, table: Table, budget: float) -> np.ndarray:
    """Regret of the incumbent at each checkpoint (inf while nothing completed)."""
    out = np.full(len(CHECKPOINTS), np.inf)
    best = np.inf
    finished = sorted((f for f in result.finished if f.complete), key=lambda f: f.spent)
    for i, fraction in enumerate(CHECKPOINTS):
        for f in finished:
            if f.spent <= fraction * budget + 1e-9:
                best = min(best, f.value)
        out[i] = best - table.best_final
    return out


def run_family(table: Table, all_methods: dict, seeds: int, full_trials: int,
               workers: int, replay: str = "distinct", first_seed: int = 0
               ) -> dict[str, np.ndarray]:
    budget = full_trials * float(table.steps[-1])
    regrets: dict[str, np.ndarray] = {}
    for name, make in all_methods.items():
        rows = []
        started = time.perf_counter()
        for seed in range(first_seed, first_seed + seeds):
            tuner = make(table, seed)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                lookup = table.distinct_lookup() if replay == "distinct" else table.curve_for
                result = simulate(tuner, lookup, n_workers=workers, max_spent=budget)
            rows.append(regret_curve(result, table, budget))
        regrets[name] = np.array(rows)
        logging.info("%s / %s: %.1f s", table.name, name, time.perf_counter() - started)
    return regrets


def print_family(table: Table, regrets: dict[str, np.ndarray], seeds: int, full_trials: int
                 ) -> None:
    spread = float(np.median(table.curves[:, -1]) - table.best_final)
    print(f"\n## {table.name}: {len(table.curves)} curves, best final {table.best_final:.4f}, "
          f"median regret of a random configuration {spread:.4f}")
    print(f"median regret over {seeds} seeds at fractions of the budget "
          f"({full_trials} full trials = {full_trials * int(table.steps[-1])} step units); "
          "P(33% <= full): how often a run's regret at a third of the budget is at most that "
          "of a random-search run at the full budget (all pairs of seeds)")
    header = "".join(f"{f'{c:.0%}':>9}" for c in CHECKPOINTS)
    baseline = regrets.get("hl random, full budget")

    def matches(name: str) -> float:  # a run at 1/3 of the budget against any full random run
        return float(np.mean(regrets[name][:, 3, None] <= baseline[None, :, -1]))

    print(f"{'method':<34}{header}" + ("   P(33% <= full)" if baseline is not None else ""))
    for name, rows in regrets.items():
        line = f"{name:<34}" + "".join(f"{m:>9.4f}" for m in np.median(rows, axis=0))
        print(line + (f"{matches(name):>18.0%}" if baseline is not None else ""))
    ours = [n for n in regrets if n.startswith("hl ") and "full" not in n]
    peers = [n for n in regrets if not n.startswith("hl ")]
    if not ours or not peers or baseline is None:
        return
    full = np.median(baseline[:, -1])

    def score(name: str) -> tuple[float, float]:  # median regret at 1/3, then P(33% <= full)
        return float(np.median(regrets[name][:, 3])), -matches(name)

    for label, names in (("best hyperlaw method", ours), ("best peer method", peers)):
        best = min(names, key=score)
        medians = np.median(regrets[best], axis=0)
        reach = next((c for c, m in zip(CHECKPOINTS, medians, strict=True) if m <= full), None)
        print(f"{label + ' at 33%:':<34}{best}: median regret {medians[3]:.4f}, "
              f"P(33% <= full) {matches(best):.0%}; its median reaches random full-budget's "
              f"final regret ({full:.4f}) at {'no' if reach is None else f'{reach:.0%} of the'} "
              "budget")


# --- decision cost --------------------------------------------------------------------------
def decision_cost(n_trials: int = 1000, steps: int = 27, calls: int = 300) -> None:
    rng = np.random.default_rng(0)
    space = hl.Space({"x": hl.Float(0.0, 1.0)})
    schedulers: dict[str, Scheduler] = {
        "median": MedianStopping(), "percentile": PercentileStopping(),
        "asha": ASHA(max_budget=steps), "hyperband": Hyperband(max_budget=steps),
        "curve": CurveStopping(max_budget=steps)}
    print(f"\n## scheduler decision cost at {n_trials} trials ({steps} reports each; "
          f"{calls} decisions on running trials)")
    print(f"{'scheduler':<26}{'mean ms':>10}{'p95 ms':>10}{'max ms':>10}")
    for name, scheduler in schedulers.items():
        study = hl.create_study(space=space, scheduler="fifo")
        running = []
        for number in range(n_trials):
            trial = study.ask()
            scale, rate = rng.uniform(0.5, 2.0), rng.uniform(0.2, 1.2)
            length = steps if number < 0.7 * n_trials else int(rng.integers(1, steps))
            for step in range(1, length + 1):
                trial.report(0.1 + scale * step**-rate + rng.normal(0, 0.01), step)
            if length == steps:
                study.tell(trial, 0.1 + scale * steps**-rate)
            else:
                running.append(trial.number)
        history = study._history.refresh()
        times = []
        for i in range(calls):
            record = history.trials[running[i % len(running)]]
            step = record.last_step
            started = time.perf_counter()
            scheduler.decide(record, step, history)
            times.append(time.perf_counter() - started)
        _print_times(name, times)
    # the promotion variant's other cost: on every ask, the paused trial to continue, if any
    for number in running:  # the unfinished trials above are now paused at their last step
        record = history.trials[number]
        study.tell(number, state=hl.TrialState.PRUNED)
        study._store.set_trial_system_attr(study._info.id, number, "suspended",
                                           {"score": record.intermediate[record.last_step]})
    history = study._history.refresh()
    promotion = ASHA(max_budget=steps, promotion=True)
    times = []
    for _ in range(calls):
        started = time.perf_counter()
        promotion.promoted(history)
        times.append(time.perf_counter() - started)
    _print_times("asha, promoted() per ask", times)


def _print_times(name: str, times: list[float]) -> None:
    ms = np.array(times) * 1e3
    print(f"{name:<26}{ms.mean():>10.3f}{np.percentile(ms, 95):>10.3f}{ms.max():>10.3f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DATA)
    parser.add_argument("--families", nargs="*", default=None)
    parser.add_argument("--seeds", type=int, default=10)
    parser.add_argument("--first-seed", type=int, default=0,
                        help="run seeds first-seed .. first-seed + seeds - 1 (to split a run "
                             "into pieces)")
    parser.add_argument("--full-trials", type=int, default=30)
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--methods", nargs="*", default=None,
                        help="substrings of the method names to keep (with --exact: names)")
    parser.add_argument("--exact", action="store_true", help="--methods gives whole names")
    parser.add_argument("--save", type=Path, default=None,
                        help="add the per-seed regrets to this JSON file (merged with its "
                             "other families and methods)")
    parser.add_argument("--tables", type=Path, nargs="+", default=None,
                        help="run nothing: print the tables of runs saved in these files")
    parser.add_argument("--replay", choices=("distinct", "nearest"), default="distinct",
                        help="a new configuration replays the nearest recorded one this run "
                             "has not used yet (default), or the nearest one even if used")
    parser.add_argument("--skip-cost", action="store_true")
    parser.add_argument("-v", "--verbose", action="store_true")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING,
                        format="%(message)s")
    logging.getLogger("hyperlaw").setLevel(logging.ERROR)
    data = np.load(args.data)
    families = args.families or sorted({k.split("/")[0] for k in data.files})
    all_methods = methods()
    if args.methods:
        def kept(name: str) -> bool:
            if args.exact:
                return name in args.methods or name == "hl random, full budget"
            return any(s in name for s in args.methods) or "full" in name
        all_methods = {k: v for k, v in all_methods.items() if kept(k)}
    print(f"{args.workers} simulated workers, {args.replay} replay; regret = final value of "
          "the incumbent minus the best final value in the table")
    saved = load_runs(args.tables) if args.tables else {}
    for family in families:
        table = Table.load(data, family)
        if args.tables:
            regrets = {k: saved[family][k] for k in all_methods if k in saved.get(family, {})}
            if not regrets:
                continue
            seeds = min(len(rows) for rows in regrets.values())
            regrets = {k: rows[:seeds] for k, rows in regrets.items()}
        else:
            seeds = args.seeds
            regrets = run_family(table, all_methods, seeds, args.full_trials, args.workers,
                                 args.replay, args.first_seed)
            if args.save:
                save_runs(args.save, family, regrets)
        print_family(table, regrets, seeds, args.full_trials)
    if not args.skip_cost and not args.tables:
        decision_cost()


def load_runs(paths: list[Path]) -> dict[str, dict[str, np.ndarray]]:
    """Per-seed regrets saved by --save, merged over files (a later file wins)."""
    runs: dict[str, dict[str, np.ndarray]] = {}
    for path in paths:
        for family, by_method in json.loads(path.read_text()).items():
            runs.setdefault(family, {}).update(
                {k: np.array(rows, dtype=float) for k, rows in by_method.items()})
    return runs


def save_runs(path: Path, family: str, regrets: dict[str, np.ndarray]) -> None:
    runs = json.loads(path.read_text()) if path.exists() else {}
    runs.setdefault(family, {}).update({k: rows.tolist() for k, rows in regrets.items()})
    path.write_text(json.dumps(runs))


if __name__ == "__main__":
    main()
