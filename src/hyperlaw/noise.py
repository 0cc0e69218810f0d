"""Noise-aware reporting: the best trial by a model's mean, and re-evaluation on fresh seeds.

Protocol for noisy objectives: the objective reads its random seed as `trial.seed` (None
outside multi-seed tuning and re-evaluation: it picks its own). Tuning runs use the tuning
seed(s) (`optimize(seeds_per_config=k)`);
`Study.reevaluate` runs the top-k configurations again, once per *test* seed, in a sibling
study `<name>.reevaluation` of the same storage, so the tuning history stays untouched and
the reported means are not biased by the selection.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

from hyperlaw.errors import HyperlawError
from hyperlaw.trial import TrialRecord, TrialState

if TYPE_CHECKING:
    from hyperlaw.study import Study
    from hyperlaw.trial import Trial

BestBy = Literal["value", "model_mean"]


@dataclass(frozen=True)
class Reevaluation:
    """One configuration re-run on fresh seeds."""

    params: dict[str, Any]
    source_trial: int
    tuning_value: float
    values: tuple[float, ...]
    seeds: tuple[int, ...]

    @property
    def mean(self) -> float:
        return float(np.mean(self.values)) if self.values else float("nan")

    @property
    def std(self) -> float:
        return float(np.std(self.values, ddof=1)) if len(self.values) > 1 else 0.0

    def interval(self, level: float = 0.95) -> tuple[float, float]:
        """A `level` confidence interval of the mean over the test seeds (Student's t);
        infinite with fewer than two seeds."""
        if not 0 < level < 1:
            raise HyperlawError(f"level must be in (0, 1), got {level!r}")
        n = len(self.values)
        if n < 2:
            return (-math.inf, math.inf)
        from scipy.stats import t

        half = float(t.ppf(0.5 + level / 2, n - 1)) * self.std / math.sqrt(n)
        return (self.mean - half, self.mean + half)


def model_means(study: Study, trials: Sequence[TrialRecord]) -> np.ndarray:
    """Posterior mean of a GP fitted on the complete trials, at each of them (signed so that
    lower is better)."""
    from hyperlaw.history.observations import categorical_mask, encode_row
    from hyperlaw.models.gp import GaussianProcess, fit_hyper, sq_dists
    from hyperlaw.models.linalg import single_threaded_blas

    space = study.space
    sign = -1.0 if study.direction == "maximize" else 1.0
    loss = sign * np.array([t.value for t in trials], dtype=float)
    if space.dim == 0 or len(trials) < 3:
        return loss
    x = np.nan_to_num(np.array([encode_row(space, t.params) for t in trials]), nan=0.5)
    center, spread = float(np.mean(loss)), float(np.std(loss)) or 1.0
    y = (loss - center) / spread
    cat = categorical_mask(space)
    with single_threaded_blas():
        d2 = sq_dists(x, x, cat)
        gp = GaussianProcess(x, y, cat, fit_hyper(x, y, cat, None, max_iter=100, d2=d2), d2=d2)
        mean, _ = gp.predict(x)
    return mean * spread + center


def best_trial(study: Study, by: BestBy = "value") -> TrialRecord:
    """The best complete trial by its own value, or by the model's mean at its point."""
    if by == "value":
        return study.best_trial
    if by != "model_mean":
        raise HyperlawError(f"by must be 'value' or 'model_mean', got {by!r}")
    done = study.get_trials([TrialState.COMPLETE])
    if not done:
        return study.best_trial  # raises the no-complete-trial error
    return done[int(np.argmin(model_means(study, done)))]


def top_configurations(study: Study, top_k: int, by: BestBy) -> list[TrialRecord]:
    """The `top_k` best complete trials with distinct parameters."""
    done = study.get_trials([TrialState.COMPLETE])
    if by == "model_mean":
        score = model_means(study, done)
    else:
        sign = -1.0 if study.direction == "maximize" else 1.0
        score = sign * np.array([t.value for t in done], dtype=float)
    chosen: list[TrialRecord] = []
    seen: set[str] = set()
    for i in np.argsort(score, kind="stable"):
        key = repr(sorted(done[i].params.items()))
        if key not in seen:
            seen.add(key)
            chosen.append(done[i])
        if len(chosen) == top_k:
            break
    return chosen


def reevaluate(study: Study, objective: Callable[[Trial], float], top_k: int,
               seeds: Iterable[int], by: BestBy = "value") -> list[Reevaluation]:
    """Run the `top_k` configurations once per seed; results best mean first."""
    from hyperlaw.study import create_study

    seeds = tuple(int(s) for s in seeds)
    if top_k < 1 or not seeds:
        raise HyperlawError("reevaluate needs top_k >= 1 and at least one seed, e.g. "
                            "study.reevaluate(objective, top_k=5, seeds=range(1000, 1005))")
    tuning_seeds = ({t.user_attrs.get("seed") for t in study.trials} - {None}) | {
        seed for t in study.trials for seed in t.user_attrs.get("seeds", ())}
    reused = sorted(set(seeds) & tuning_seeds)
    if reused:
        raise HyperlawError(
            f"seeds {reused} were already used for tuning study {study.name!r}; pass test "
            "seeds that tuning never saw (re-using them biases the estimate)")
    top = top_configurations(study, top_k, by)
    if not top:
        raise HyperlawError(f"study {study.name!r} has no complete trial to re-evaluate; run "
                            "study.optimize first")
    declared = study.store.get_study(study.name).system_attrs.get("declared_space")
    sibling = create_study(f"{study.name}.reevaluation", storage=study.store,
                           space=study.space if declared else None,
                           direction=study.direction, sampler="random", load_if_exists=True)
    for record in top:
        for seed in seeds:
            sibling.enqueue(record.params,
                            user_attrs={"seed": seed, "source_trial": record.number})
    n_new = len(top) * len(seeds)
    sibling.optimize(objective, n_trials=n_new, show_progress=False)
    runs = sibling.get_trials([TrialState.COMPLETE])
    results = []
    for record in top:
        mine = [t for t in runs if t.user_attrs.get("source_trial") == record.number
                and t.user_attrs.get("seed") in seeds]
        assert record.value is not None
        results.append(Reevaluation(dict(record.params), record.number, record.value,
                                    tuple(float(t.value) for t in mine if t.value is not None),
                                    tuple(int(t.user_attrs["seed"]) for t in mine)))
    sign = -1.0 if study.direction == "maximize" else 1.0
    results.sort(key=lambda r: sign * r.mean if r.values else float("inf"))
    return results
