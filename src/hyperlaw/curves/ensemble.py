"""Bayesian extrapolation of a partial learning curve: a predictive distribution of its value at
a later step.

The model is an ensemble of parametric families, each written as y = w₀ + w₁·g(u; θ) with a
shape g from the family and its nonlinear parameters θ on a fixed grid (a deterministic
particle approximation of their posterior). Given θ the model is linear-Gaussian with a
conjugate Normal-Inverse-Gamma prior on (w, σ²), so each particle's evidence and Student-t
predictive are exact and cheap; the ensemble weights particles by evidence. Real curves are
neither exactly parametric nor independently noisy, so two constants calibrated on real
training curves (see benchmarks/curves.py) temper the evidence and add a model-discrepancy term
that grows with the extrapolation distance.

Bounded metrics are modelled in a warped space where they are unbounded: log(y − low) for a
metric with only a lower bound (a loss), logit for one with a range (an error rate, an
accuracy); every quantile maps back inside the bounds. A curve heading away from its only
bound (a loss that rises) is modelled as it is and its quantiles clipped to the bound. A last
recalibration step maps the model's probabilities through the empirical distribution of its
PIT values on real build curves, one map per stage of the curve seen and kind of metric (a
declared range, a loss), which removes the over-confidence and the skew of the raw model. An
unbounded prediction has maps of its own (UNBOUNDED_CALIBRATION) that keep its median and set
its central intervals.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal, TypeAlias, overload

import numpy as np

from hyperlaw.errors import HyperlawError

if TYPE_CHECKING:
    from hyperlaw.curves.pfn import BarPrediction

#: The metric's range: (low, high), either end None when unbounded.
Bounds: TypeAlias = tuple[float | None, float | None]

# EVIDENCE_WEIGHT and DISCREPANCY are an earlier grid search's choice; CALIBRATION (a metric
# with one bound, a loss) and RANGE_CALIBRATION (a declared range) were fitted with them by
# `python benchmarks/curves.py --calibrate` (it writes benchmarks/results/curves_constants.json)
# on the even LCDB datasets of benchmarks/data/lcdb.npz and the three curve families of
# benchmarks/data/curves.npz, one map per kind of metric, each group of tasks of a kind weighing
# the same, the other kind's groups weighing as much and the stage bins as many as transferred
# best to a group left out; the odd LCDB datasets are held out, and each family is measured
# with the constants of a fold that left it out.
#: Fraction of the log-likelihood kept (real residuals are autocorrelated).
EVIDENCE_WEIGHT = 0.5
#: Model-discrepancy std per unit of log extrapolation distance, as a fraction of the observed
#: change of the (warped) curve.
DISCREPANCY = 0.3
#: Prior variance of a particle's coefficients w per unit of noise variance, in the curve's
#: normalised units: w | σ² ~ N(0, σ²·v₀·I). Chosen on the build tasks among 100 (the first
#: release's) to 1e6 by `python benchmarks/curves.py --choose-variance` (the smallest within
#: noise of the best): at 100 the prior pulled the slope of every slow shape (a column g that
#: moves a few percent over the seen steps) toward 0, and with it every forecast toward the
#: last value seen; a wider one lets such a shape swing its forecast far.
COEFFICIENT_VARIANCE = 3e3


#: Prior mass of each family of FITTED_FAMILIES (normalised; spread evenly over its grid).
FAMILY_PRIOR = (1.0, 1.0, 1.0, 1.0, 1.0)


#: Upper edges of the stage bins of a fitted Calibration.
STAGE_BINS = (0.25, 0.4, 0.55, 0.7, 1.0)
#: The probabilities a fitted Calibration maps (finer in the tails).
LEVELS = (0.0, 0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.85, 0.9,
          0.925, 0.95, 0.975, 0.99, 1.0)
#: Fewest cases a stage bin is fitted from.
MIN_CASES = 20


@dataclass(frozen=True)
class Calibration:
    """Recalibration maps of the model's probabilities, one per stage of the curve.

    The stage of a prediction is log(u_seen) / log(u_target), the share of the curve seen on
    a log scale of training progress (u counts units from 1 at the first step); row i serves
    stages up to `stages[i]`. In row i, a share `levels[j]` of the build cases had a PIT (the
    model's probability of the true value) below `pits[i][j]`: the model probability
    `pits[i][j]` becomes `levels[j]` (linear in between). PITs are oriented along the curve:
    for a rising curve, P(value >= x) plays the part of the CDF (the maps hold how much
    further than predicted curves went, whichever their direction).
    """

    stages: tuple[float, ...]
    levels: tuple[float, ...]
    pits: tuple[tuple[float, ...], ...]

    def knots(self, stage: float, rising: bool = False) -> tuple[np.ndarray, np.ndarray]:
        """(model probabilities, calibrated probabilities) for a prediction at `stage`."""
        row = min(int(np.searchsorted(self.stages, stage)), len(self.pits) - 1)
        probs, levels = np.asarray(self.pits[row], dtype=float), np.asarray(self.levels)
        return (1.0 - probs[::-1], 1.0 - levels[::-1]) if rising else (probs, levels)

    @classmethod
    def fit(cls, stages: Sequence[float] | np.ndarray, pits: Sequence[float] | np.ndarray,
            weights: Sequence[float] | np.ndarray | None = None,
            bins: Sequence[float] = STAGE_BINS, levels: Sequence[float] = LEVELS,
            keep_median: bool = False) -> Calibration:
        """The recalibration of build cases: per bin of stage (`bins`, upper edges), the
        weighted quantiles at `levels` of the oriented PITs of the cases in it (see the class
        docstring), kept strictly increasing from 0 to 1. `weights` (default equal) let each
        task group count the same however many curves it has. A bin with fewer than
        `MIN_CASES` cases borrows the quantiles of all cases.

        `keep_median` fits maps that keep the model's median and widen its central intervals
        instead (see `_median_kept`): what the unbounded geometry ships, where moving the
        median by the map raised its error on the build tasks."""
        stage = np.asarray(stages, dtype=float)
        pit = np.asarray(pits, dtype=float)
        weight = np.ones_like(pit) if weights is None else np.asarray(weights, dtype=float)
        if not (stage.shape == pit.shape == weight.shape and pit.size >= MIN_CASES):
            raise HyperlawError(f"Calibration.fit needs as many stages, PITs and weights, at "
                                f"least {MIN_CASES}; got {stage.size}, {pit.size} and "
                                f"{weight.size}")
        if not (np.all(np.abs(pit - 0.5) <= 0.5 + 1e-6) and np.all(weight >= 0)
                and np.any(weight > 0)):
            raise HyperlawError("Calibration.fit: PITs must lie in [0, 1] and weights be "
                                "non-negative, not all zero")
        if keep_median and not np.allclose(np.sort(levels), 1.0 - np.sort(levels)[::-1]):
            raise HyperlawError(f"Calibration.fit: keep_median needs levels symmetric about "
                                f"1/2, got {tuple(levels)}")
        pit = np.clip(pit, 0.0, 1.0)  # rounding of a CDF may overshoot by an ulp
        row_of = np.minimum(np.searchsorted(bins, stage), len(bins) - 1)
        quantiles = _median_kept if keep_median else _weighted_quantiles
        rows = []
        for row in range(len(bins)):
            chosen = row_of == row if np.sum(row_of == row) >= MIN_CASES else np.ones_like(pit,
                                                                                        bool)
            rows.append(quantiles(pit[chosen], weight[chosen], levels))
        return cls(tuple(float(b) for b in bins), tuple(float(q) for q in levels), tuple(rows))


def _weighted_quantiles(values: np.ndarray, weights: np.ndarray, levels: Sequence[float]
                        ) -> tuple[float, ...]:
    """Quantiles at `levels` of weighted values (midpoint rule), rounded to 4 significant
    digits, the ends set to 0 and 1, strictly increasing."""
    cumulative, values = _weighted_cdf(values, weights)
    return _tidy(np.interp(np.asarray(levels, dtype=float), cumulative, values))


def _weighted_cdf(values: np.ndarray, weights: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(cumulative share, sorted values) of weighted values, by the midpoint rule."""
    order = np.argsort(values)
    values, weights = values[order], weights[order]
    return (np.cumsum(weights) - 0.5 * weights) / np.sum(weights), values


def _median_kept(values: np.ndarray, weights: np.ndarray, levels: Sequence[float]
                 ) -> tuple[float, ...]:
    """A map row (as `_weighted_quantiles`) that keeps the model's median (0.5 maps to 0.5)
    and gives every central interval of the `levels` its share of the weighted PITs `values`.
    Its upper end at level l is the PIT quantile at l, but never below l (the raw model's,
    when few cases went that side of the median); its lower end at 1 − l is then the PIT
    quantile that leaves the interval's share between the two. `levels` must be symmetric
    about 1/2."""
    cumulative, values = _weighted_cdf(values, weights)
    grid = np.asarray(levels, dtype=float)
    upper = np.maximum(np.interp(grid, cumulative, values), grid)
    mass_below_upper = np.interp(upper, values, cumulative, left=0.0, right=1.0)
    lower = np.interp(np.maximum(mass_below_upper - (2.0 * grid - 1.0), 0.0), cumulative, values)
    # level l < 1/2 takes the lower end of the interval whose upper end is at 1 − l, below
    # the median even where most cases lie above it (the median is kept first)
    row = np.where(grid >= 0.5, upper, np.minimum(lower[::-1], 0.5))
    row[np.isclose(grid, 0.5)] = 0.5
    return _tidy(row)


def _tidy(row: np.ndarray) -> tuple[float, ...]:
    """A map row rounded to 4 significant digits, the ends set to 0 and 1, strictly
    increasing."""
    row = np.array(row, dtype=float)
    row[0], row[-1] = 0.0, 1.0
    out = [float(f"{v:.4g}") for v in row]
    for j in range(1, len(out) - 1):
        out[j] = max(out[j], out[j - 1] + 1e-12)
    for j in range(len(out) - 2, 0, -1):
        out[j] = min(out[j], out[j + 1] - 1e-12)
    return tuple(out)


def stage_of(steps: np.ndarray, at_step: float) -> float:
    """The stage of a prediction of `at_step` from a curve seen at `steps` (see Calibration):
    log(u_seen) / log(u_target) in progress units, 1 when the target is not after the last
    step seen."""
    origin, unit = _progress(steps)
    u_seen = (float(steps[-1]) - origin) / unit + 1.0
    u_target = (float(at_step) - origin) / unit + 1.0
    return math.log(u_seen) / math.log(u_target) if u_target > u_seen else 1.0


#: The shipped recalibration of a metric with one bound, a loss (see the note on the constants
#: above): fitted on the three loss families and LCDB's error rates, all four weighing the same
#: (LCDB's weight, among 0 to 1, that transferred best to a family left out).
CALIBRATION = Calibration(
    stages=(0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0),
    levels=(0.0, 0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.85, 0.9,
            0.925, 0.95, 0.975, 0.99, 1.0),
    pits=(
        (0.0, 5.347e-06, 0.0001396, 0.0004537, 0.0009364, 0.00175, 0.004331, 0.01621, 0.09248,
         0.2192, 0.3341, 0.4187, 0.5071, 0.5994, 0.6709, 0.7553, 0.7994, 0.8601, 0.9403, 0.9787,
         1.0),
        (0.0, 4.364e-05, 0.001511, 0.002783, 0.008589, 0.01364, 0.02801, 0.04654, 0.08526, 0.1654,
         0.2423, 0.3463, 0.4586, 0.6287, 0.7165, 0.8007, 0.8966, 0.9411, 0.9993, 0.999999999999,
         1.0),
        (0.0, 1e-12, 0.0003221, 0.00257, 0.004465, 0.008774, 0.01451, 0.02157, 0.0677, 0.1196,
         0.192, 0.2886, 0.4794, 0.602, 0.6547, 0.7285, 0.7943, 0.8506, 0.9644, 0.9974, 1.0),
        (0.0, 9.166e-08, 3.12e-05, 0.000218, 0.0003205, 0.0006619, 0.0009359, 0.001621, 0.01704,
         0.08599, 0.1956, 0.3248, 0.4435, 0.5562, 0.6034, 0.7048, 0.774, 0.8462, 0.9196, 0.9566,
         1.0),
        (0.0, 1.024e-05, 0.000114, 0.0003284, 0.0005238, 0.00114, 0.002062, 0.002592, 0.03316,
         0.1427, 0.3109, 0.4072, 0.5066, 0.6079, 0.6691, 0.7634, 0.8034, 0.8524, 0.8981, 0.945,
         1.0),
        (0.0, 0.0004565, 0.05298, 0.122, 0.1892, 0.2232, 0.3169, 0.3576, 0.4113, 0.4725, 0.501,
         0.5152, 0.5539, 0.6014, 0.6492, 0.7332, 0.7862, 0.8421, 0.9693, 0.9918, 1.0),
        (0.0, 4.239e-05, 0.0001587, 0.0005907, 0.002086, 0.00351, 0.004736, 0.01034, 0.1345, 0.2844,
         0.3944, 0.478, 0.536, 0.6491, 0.7105, 0.7672, 0.8357, 0.8806, 0.9411, 0.976, 1.0),
        (0.0, 5.347e-06, 0.0001396, 0.0004537, 0.0009364, 0.00175, 0.004331, 0.01621, 0.09248,
         0.2192, 0.3341, 0.4187, 0.5071, 0.5994, 0.6709, 0.7553, 0.7994, 0.8601, 0.9403, 0.9787,
         1.0),
        (0.0, 0.0001658, 0.001482, 0.007651, 0.02402, 0.04542, 0.06326, 0.08663, 0.2259, 0.308,
         0.3776, 0.4266, 0.4996, 0.6286, 0.71, 0.7675, 0.7979, 0.828, 0.9689, 0.9895, 1.0),
        (0.0, 5.347e-06, 0.0001396, 0.0004537, 0.0009364, 0.00175, 0.004331, 0.01621, 0.09248,
         0.2192, 0.3341, 0.4187, 0.5071, 0.5994, 0.6709, 0.7553, 0.7994, 0.8601, 0.9403, 0.9787,
         1.0),
    ),
)
#: The shipped recalibration of a metric with a declared range, (low, high): fitted on LCDB's
#: error rates alone, which transferred best to an LCDB dataset left out (among 1 to 10 stage
#: bins and weights 0 to 1 for the loss families).
RANGE_CALIBRATION = Calibration(
    stages=(0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0),
    levels=(0.0, 0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.85, 0.9,
            0.925, 0.95, 0.975, 0.99, 1.0),
    pits=(
        (0.0, 7.504e-07, 0.001401, 0.006013, 0.01341, 0.0196, 0.05319, 0.08526, 0.1899, 0.2989,
         0.3991, 0.487, 0.5363, 0.6076, 0.6683, 0.7488, 0.8106, 0.8952, 0.9702, 0.9996, 1.0),
        (0.0, 4.364e-05, 0.001511, 0.002783, 0.008589, 0.01364, 0.02801, 0.04654, 0.08526, 0.1654,
         0.2423, 0.3463, 0.4586, 0.6287, 0.7165, 0.8007, 0.8966, 0.9411, 0.9993, 0.999999999999,
         1.0),
        (0.0, 1e-12, 0.0003221, 0.00257, 0.004465, 0.008774, 0.01451, 0.02157, 0.0677, 0.1196,
         0.192, 0.2886, 0.4794, 0.602, 0.6547, 0.7285, 0.7943, 0.8506, 0.9644, 0.9974, 1.0),
        (0.0, 1.24e-06, 0.004542, 0.01889, 0.03611, 0.07959, 0.1755, 0.2189, 0.3228, 0.4071, 0.4604,
         0.5208, 0.5563, 0.623, 0.6735, 0.7411, 0.8131, 0.8648, 0.9178, 0.9915, 1.0),
        (0.0, 7.504e-07, 0.001401, 0.006013, 0.01341, 0.0196, 0.05319, 0.08526, 0.1899, 0.2989,
         0.3991, 0.487, 0.5363, 0.6076, 0.6683, 0.7488, 0.8106, 0.8952, 0.9702, 0.9996, 1.0),
        (0.0, 0.0004565, 0.05298, 0.122, 0.1892, 0.2232, 0.3169, 0.3576, 0.4113, 0.4725, 0.501,
         0.5152, 0.5539, 0.6014, 0.6492, 0.7332, 0.7862, 0.8421, 0.9693, 0.9918, 1.0),
        (0.0, 7.504e-07, 0.001401, 0.006013, 0.01341, 0.0196, 0.05319, 0.08526, 0.1899, 0.2989,
         0.3991, 0.487, 0.5363, 0.6076, 0.6683, 0.7488, 0.8106, 0.8952, 0.9702, 0.9996, 1.0),
        (0.0, 7.504e-07, 0.001401, 0.006013, 0.01341, 0.0196, 0.05319, 0.08526, 0.1899, 0.2989,
         0.3991, 0.487, 0.5363, 0.6076, 0.6683, 0.7488, 0.8106, 0.8952, 0.9702, 0.9996, 1.0),
        (0.0, 7.504e-07, 0.001401, 0.006013, 0.01341, 0.0196, 0.05319, 0.08526, 0.1899, 0.2989,
         0.3991, 0.487, 0.5363, 0.6076, 0.6683, 0.7488, 0.8106, 0.8952, 0.9702, 0.9996, 1.0),
        (0.0, 7.504e-07, 0.001401, 0.006013, 0.01341, 0.0196, 0.05319, 0.08526, 0.1899, 0.2989,
         0.3991, 0.487, 0.5363, 0.6076, 0.6683, 0.7488, 0.8106, 0.8952, 0.9702, 0.9996, 1.0),
    ),
)
#: The recalibration of unbounded predictions (bounds None, or "auto" on a curve with a
#: negative value), fitted by `python benchmarks/curves.py --calibrate --unbounded` on the same
#: build tasks taken as unbounded, with `keep_median`: the maps of CALIBRATION, fitted in the
#: warped geometries, shift the median of the unbounded model's long-tailed distribution far
#: from clean curves; these keep its median and widen its central intervals.
UNBOUNDED_CALIBRATION = Calibration(
    stages=(0.15, 0.25, 0.35, 0.45, 0.55, 0.65, 0.75, 0.85, 1.0),
    levels=(0.0, 0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.85, 0.9,
            0.925, 0.95, 0.975, 0.99, 1.0),
    pits=(
        (0.0, 0.0006033, 0.002012, 0.004424, 0.0151, 0.02478, 0.05553, 0.1231, 0.3025, 0.4544, 0.5,
         0.6, 0.7, 0.8, 0.85, 0.9, 0.925, 0.95, 0.9999, 0.999999999999, 1.0),
        (0.0, 1e-12, 0.001611, 0.01157, 0.02676, 0.05148, 0.08793, 0.1548, 0.29, 0.4045, 0.5, 0.6,
         0.7, 0.8, 0.85, 0.9, 0.925, 0.95, 0.9756, 0.9983, 1.0),
        (0.0, 1.161e-05, 0.000372, 0.0008345, 0.001108, 0.001992, 0.01884, 0.1023, 0.3422, 0.4748,
         0.5, 0.6, 0.7, 0.8, 0.85, 0.9, 0.925, 0.95, 0.975, 0.99, 1.0),
        (0.0, 0.009493, 0.02069, 0.0678, 0.1663, 0.2476, 0.3214, 0.4216, 0.4495, 0.4999, 0.5, 0.6,
         0.7, 0.8, 0.85, 0.9, 0.925, 0.95, 0.975, 0.9986, 1.0),
        (0.0, 0.0004689, 0.001029, 0.002349, 0.003085, 0.01601, 0.1906, 0.2935, 0.4559, 0.5,
         0.500000000001, 0.6, 0.7, 0.8, 0.85, 0.9, 0.925, 0.95, 0.975, 0.99, 1.0),
        (0.0, 0.0005377, 0.001717, 0.004447, 0.005624, 0.01457, 0.1538, 0.32, 0.4686, 0.5,
         0.500000000001, 0.6, 0.7, 0.8, 0.85, 0.9, 0.925, 0.95, 0.975, 0.99, 1.0),
        (0.0, 0.0002113, 0.0008273, 0.002377, 0.005572, 0.02358, 0.1048, 0.2339, 0.4067, 0.491, 0.5,
         0.6, 0.7, 0.8, 0.85, 0.9, 0.925, 0.95, 0.975, 0.99, 1.0),
        (0.0, 0.0005354, 0.01043, 0.04747, 0.05903, 0.07483, 0.2594, 0.3286, 0.4067, 0.4858, 0.5,
         0.6, 0.7, 0.8, 0.85, 0.9, 0.925, 0.95, 0.975, 0.99, 1.0),
        (0.0, 0.0002113, 0.0008273, 0.002377, 0.005572, 0.02358, 0.1048, 0.2339, 0.4067, 0.491, 0.5,
         0.6, 0.7, 0.8, 0.85, 0.9, 0.925, 0.95, 0.975, 0.99, 1.0),
    ),
)
#: The model before bounds and recalibration (the constants of the first release): the
#: baseline of benchmarks/curves.py.
UNBOUNDED_UNCALIBRATED = {"evidence_weight": 0.25, "discrepancy": 1.0, "bounds": None,
                          "calibration": None, "coefficient_variance": 100.0}
#: Long curves are averaged into this many points before fitting.
MAX_POINTS = 64

_PRIOR_A, _PRIOR_B = 1.0, 1e-4  # σ² ~ InvGamma(a₀, b₀): a noise floor of ~1% of the range


@dataclass(frozen=True)
class Warp:
    """The monotone map between a bounded metric and the unbounded space it is modelled in.

    `low` and `high` are the bounds (None: unbounded on that side); `margin` keeps values on
    a bound finite in the warped space (log 0 and logit 0 are not). With `stretch` False the
    values are only clipped into the bounds (a curve heading away from its one bound).
    """

    low: float | None = None
    high: float | None = None
    margin: float = 0.0
    stretch: bool = True

    def forward(self, y: np.ndarray) -> np.ndarray:
        """The warped values of metric values `y` (clipped into the bounds first)."""
        low, high, margin = self.low, self.high, self.margin
        if not self.stretch:
            return y
        if low is not None and high is not None:
            share = np.clip((y - low) / (high - low), 0.0, 1.0)
            return np.log(share + margin) - np.log1p(margin - share)
        if low is not None:
            return np.log(np.maximum(y - low, 0.0) + margin)
        if high is not None:
            return -np.log(np.maximum(high - y, 0.0) + margin)
        return y

    def inverse(self, z: np.ndarray) -> np.ndarray:
        """The metric values of warped values `z`, inside the bounds."""
        low, high, margin = self.low, self.high, self.margin
        if not self.stretch:
            return np.clip(z, -np.inf if low is None else low, np.inf if high is None else high)
        if low is not None and high is not None:
            share = (1.0 + 2.0 * margin) / (1.0 + np.exp(-np.clip(z, -700.0, 700.0))) - margin
            return low + (high - low) * np.clip(share, 0.0, 1.0)
        if low is not None:
            return low + np.maximum(np.exp(np.minimum(z, 700.0)) - margin, 0.0)
        if high is not None:
            return high - np.maximum(np.exp(np.minimum(-z, 700.0)) - margin, 0.0)
        return z


_IDENTITY = Warp()
#: Probabilities at which `mean` and `std` read a warped or recalibrated prediction.
_GRID = (np.arange(32) + 0.5) / 32


@dataclass(frozen=True)
class Prediction:
    """A predictive distribution: a mixture of Student-t components in the warped space of
    `warp`, its probabilities mapped through the recalibration knots `calibration`.

    `median` is the point forecast to read: the value the curve ends below with probability
    1/2, which minimises the expected absolute error and, recalibrated, has a lower error than
    the mean on held-out tasks (benchmarks/curves.py). `mean` is its mean (pulled by the long
    tail of a warped or recalibrated prediction); `std`, `quantiles(q)`, `cdf(x)` and
    `interval(level)` read it. Every quantile lies inside the bounds the prediction was made
    with.
    """

    mean: float
    weights: np.ndarray = field(repr=False)
    locs: np.ndarray = field(repr=False)
    scales: np.ndarray = field(repr=False)
    dof: float = field(repr=False)
    warp: Warp = field(default=_IDENTITY, repr=False)
    calibration: tuple[np.ndarray, np.ndarray] | None = field(default=None, repr=False)

    @property
    def median(self) -> float:
        """The median of the predictive distribution, `quantiles(0.5)`: the point forecast."""
        return float(self.quantiles(0.5))

    @property
    def std(self) -> float:
        """The standard deviation of the predictive distribution."""
        if self.warp == _IDENTITY and self.calibration is None:
            variance = self.scales**2 * (self.dof / (self.dof - 2.0) if self.dof > 2 else 1e6)
            second = float(np.sum(self.weights * (variance + self.locs**2)))
            return math.sqrt(max(second - self.mean**2, 0.0))
        values = np.asarray(self.quantiles(_GRID))
        return float(np.std(values))

    def cdf(self, x: float | Sequence[float] | np.ndarray) -> float | np.ndarray:
        """P(value <= x)."""
        from scipy import special

        points = np.asarray(x, dtype=float)
        z = (self.warp.forward(points)[..., None] - self.locs) / self.scales
        result = np.sum(self.weights * special.stdtr(self.dof, z), axis=-1)
        if self.calibration is not None:
            result = np.interp(result, *self.calibration)
        low, high = self.warp.low, self.warp.high
        if low is not None:
            result = np.where(points < low, 0.0, result)
        if high is not None:
            result = np.where(points >= high, 1.0, result)
        return float(result) if result.ndim == 0 else result

    def quantiles(self, q: float | Sequence[float] | np.ndarray) -> float | np.ndarray:
        """The value below which the curve lands with probability q (each q in (0, 1))."""
        probs = np.asarray(q, dtype=float)
        if np.any((probs <= 0) | (probs >= 1)) or np.any(np.isnan(probs)):
            raise HyperlawError(f"quantiles must lie strictly between 0 and 1, got {q!r}")
        if self.calibration is not None:
            probs = np.clip(np.interp(probs, self.calibration[1], self.calibration[0]),
                            1e-9, 1 - 1e-9)
        result = self.warp.inverse(_mixture_quantiles(self, probs))
        return float(result) if result.ndim == 0 else result

    def interval(self, level: float = 0.8) -> tuple[float, float]:
        """The central interval holding `level` of the probability."""
        low, high = np.asarray(self.quantiles([(1 - level) / 2, (1 + level) / 2]))
        return float(low), float(high)


def _tabulated_cdf(weights: np.ndarray, locs: np.ndarray, scales: np.ndarray, dof: float
                   ) -> Callable[[np.ndarray], np.ndarray]:
    """The CDF of the Student-t mixture by interpolation: the components share one Student-t,
    tabulated once in asinh(z), which keeps the table fine near 0 and reaching far into the
    tails."""
    from scipy import special

    grid = np.linspace(-13.0, 13.0, 1301)
    table = special.stdtr(dof, np.sinh(grid))

    def mixture_cdf(x: np.ndarray) -> np.ndarray:
        z = np.arcsinh((x[..., None] - locs) / scales)
        return np.sum(weights * np.interp(z, grid, table), axis=-1)

    return mixture_cdf


def _mixture_quantiles(prediction: Prediction, probs: np.ndarray) -> np.ndarray:
    """Quantiles of the Student-t mixture itself (in the warped space), by bisection."""
    from scipy import special

    locs, scales = prediction.locs, prediction.scales
    mixture_cdf = _tabulated_cdf(prediction.weights, locs, scales, prediction.dof)
    tail = special.stdtrit(prediction.dof, np.clip(probs, 1e-9, 1 - 1e-9))
    start = float(np.min(locs) + min(np.min(tail), 0.0) * np.max(scales)) - 1e-12
    stop = float(np.max(locs) + max(np.max(tail), 0.0) * np.max(scales)) + 1e-12
    # bracket every probability on a coarse grid (one pass), then bisect within the bracket
    xs = np.linspace(start, stop, 257)
    at = np.clip(np.searchsorted(mixture_cdf(xs), probs), 1, xs.size - 1)
    low, high = xs[at - 1], xs[at]
    for _ in range(32):
        middle = 0.5 * (low + high)
        below = mixture_cdf(middle) < probs
        low = np.where(below, middle, low)
        high = np.where(below, high, middle)
    return 0.5 * (low + high)


# --- shapes: each fitted family as g(u; θ) on a grid of θ --------------------------------------
_POW3_ALPHAS = np.geomspace(0.02, 8.0, 20)[:, None]
_POW4_ALPHAS = np.geomspace(0.05, 8.0, 10)[:, None, None]
_POW4_SHIFTS = np.geomspace(0.3, 30.0, 5)[None, :, None]
_DELTAS = np.geomspace(0.3, 3.0, 6)[None, :, None]
_HALF_LIFE_FRACTIONS = np.linspace(0.0, 1.0, 14)[:, None, None]


def _shapes(u: np.ndarray, u_end: float) -> tuple[list[str], list[np.ndarray]]:
    """Per family, its shapes evaluated at `u` (rows: grid points). u >= 1 is the progress in
    units of the first observed step; `u_end` the last observed progress. Half-lives range
    from half a unit to 30 times the observed length."""
    low, high = math.log(0.5), math.log(30.0 * max(u_end, 1.0))
    half_lives = np.exp(low + (high - low) * _HALF_LIFE_FRACTIONS)
    ratio = np.power(u / half_lives, _DELTAS).reshape(-1, u.size)
    names = ["pow3", "pow4", "ilog2", "janoschek", "mmf"]
    shapes = [
        np.power(u, -_POW3_ALPHAS),
        np.power((u + _POW4_SHIFTS) / (1.0 + _POW4_SHIFTS), -_POW4_ALPHAS).reshape(-1, u.size),
        (math.log(2.0) / np.log(u + 1.0))[None, :],
        np.exp(-ratio * math.log(2.0)),  # Janoschek; exp3, exp4 and Weibull have these shapes
        1.0 / (1.0 + ratio),  # MMF; Hill and log-power have these shapes
    ]
    return names, shapes


FITTED_FAMILIES = ("pow3", "pow4", "ilog2", "janoschek", "mmf")


def _progress(steps: np.ndarray) -> tuple[float, float]:
    """(origin, unit) mapping a step to progress u = (step − origin)/unit + 1."""
    gaps = np.diff(steps)
    positive = gaps[gaps > 0]
    unit = float(np.min(positive)) if positive.size else max(float(steps[0]), 1.0)
    return float(steps[0]), unit


def _compress(u: np.ndarray, y: np.ndarray, limit: int) -> tuple[np.ndarray, np.ndarray]:
    if u.size <= limit:
        return u, y
    bins = np.array_split(np.arange(u.size), limit)
    return (np.array([u[b].mean() for b in bins]), np.array([y[b].mean() for b in bins]))


def check_curve(steps: Sequence[float] | np.ndarray, values: Sequence[float] | np.ndarray,
                where: str = "extrapolate") -> tuple[np.ndarray, np.ndarray]:
    """The curve as float arrays; raises unless it has as many finite values as strictly
    increasing finite steps, at least one."""
    t = np.asarray(steps, dtype=float).ravel()
    y = np.asarray(values, dtype=float).ravel()
    if t.size == 0 or t.size != y.size:
        raise HyperlawError(f"{where} needs as many steps as values and at least one of each, "
                            f"got {t.size} steps and {y.size} values")
    if not (np.all(np.isfinite(t)) and np.all(np.isfinite(y))):
        raise HyperlawError(f"{where}: steps and values must be finite numbers; drop the "
                            f"diverged (NaN or infinite) points first")
    if np.any(np.diff(t) <= 0):
        raise HyperlawError(f"{where}: steps must be strictly increasing; sort the curve and "
                            f"drop repeated steps")
    return t, y


def check_bounds(bounds: Bounds | Literal["auto"] | None, where: str = "extrapolate"
                 ) -> Bounds | Literal["auto"]:
    """`bounds` as (low, high) floats or None, or "auto"; raises on anything else."""
    if bounds is None:
        return (None, None)
    if isinstance(bounds, str):
        if bounds != "auto":
            raise HyperlawError(f"{where}: bounds={bounds!r} is not understood; pass "
                                f"'auto', None, or the metric's range as (low, high), e.g. "
                                f"(0.0, 1.0) for an error rate or (0.0, None) for a loss")
        return "auto"
    try:
        low, high = bounds
        low = None if low is None else float(low)
        high = None if high is None else float(high)
    except (TypeError, ValueError):
        raise HyperlawError(f"{where}: bounds must be a pair (low, high) of numbers or None, "
                            f"got {bounds!r}; e.g. (0.0, 1.0) for an error rate, (0.0, None) "
                            f"for a loss") from None
    if any(b is not None and not math.isfinite(b) for b in (low, high)):
        raise HyperlawError(f"{where}: bounds {bounds!r} must be finite; write None for an "
                            f"unbounded side")
    if low is not None and high is not None and not low < high:
        raise HyperlawError(f"{where}: bounds {bounds!r} have low >= high; pass (low, high) "
                            f"with low < high")
    return (low, high)


def resolve_bounds(bounds: Bounds | Literal["auto"] | None, values: np.ndarray,
                   where: str = "extrapolate") -> Bounds:
    """Check `bounds` against the observed values; "auto" means (0, None) when no value is
    negative (a loss) and unbounded otherwise."""
    checked = check_bounds(bounds, where)
    if checked == "auto":
        return (0.0, None) if float(np.min(values)) >= 0.0 else (None, None)
    low, high = checked
    for bad, side in ((low is not None and float(np.min(values)) < low, f"below {low}"),
                      (high is not None and float(np.max(values)) > high, f"above {high}")):
        if bad:
            raise HyperlawError(f"{where}: a value lies {side}, outside bounds {bounds!r}; "
                                f"pass the metric's true range, or bounds=None for an "
                                f"unbounded metric")
    return (low, high)


def _warp_for(bounds: Bounds, values: np.ndarray, rising: bool) -> Warp:
    """The warp of these bounds, its margin a small share of the values' distance to them. A
    curve heading away from its only bound (`rising`, a loss that improves upwards, say) is
    clipped, not stretched."""
    low, high = bounds
    if low is None and high is None:
        return _IDENTITY
    if low is not None and high is not None:
        return Warp(low, high, 1e-3)
    if rising == (low is not None):
        return Warp(low, high, 0.0, stretch=False)
    gap = float(np.max(values - low)) if low is not None else float(np.max(high - values))
    return Warp(low, high, 1e-3 * max(gap, 1e-12))


Model: TypeAlias = Literal["auto", "pfn", "ensemble"]
#: The way a metric improves: "minimize" (a loss, an error rate) or "maximize" (an accuracy).
Direction: TypeAlias = Literal["minimize", "maximize"]
#: The model behind model="auto": the parametric ensemble, ahead of the LC-PFN on the error of
#: the final value at every fraction seen on the held-out tasks of benchmarks/curves.py.
DEFAULT_MODEL: Literal["pfn", "ensemble"] = "ensemble"


def worsened(values: Sequence[float] | np.ndarray, direction: Direction | None) -> bool:
    """Whether a curve went the wrong way for `direction` over the steps seen: its last value
    strictly behind its first (never, with the direction unknown)."""
    if direction is None:
        return False
    change = float(values[-1]) - float(values[0])
    return change > 0 if direction == "minimize" else change < 0


@overload
def extrapolate(steps: Sequence[float] | np.ndarray, values: Sequence[float] | np.ndarray,
                at_step: float, *, bounds: Bounds | Literal["auto"] | None = ...,
                model: Literal["auto", "ensemble"] = ..., evidence_weight: float = ...,
                discrepancy: float = ..., coefficient_variance: float = ...,
                calibration: Calibration | Literal["auto"] | None = ...,
                family_prior: Sequence[float] = ...,
                direction: Direction | None = ...) -> Prediction:
    ...


@overload
def extrapolate(steps: Sequence[float] | np.ndarray, values: Sequence[float] | np.ndarray,
                at_step: float, *, bounds: Bounds | Literal["auto"] | None = ...,
                model: Literal["pfn"], evidence_weight: float = ...,
                discrepancy: float = ..., coefficient_variance: float = ...,
                calibration: Calibration | Literal["auto"] | None = ...,
                family_prior: Sequence[float] = ...,
                direction: Direction | None = ...) -> BarPrediction:
    ...


def extrapolate(steps: Sequence[float] | np.ndarray, values: Sequence[float] | np.ndarray,
                at_step: float, *, bounds: Bounds | Literal["auto"] | None = "auto",
                model: Model = "auto", evidence_weight: float = EVIDENCE_WEIGHT,
                discrepancy: float = DISCREPANCY,
                coefficient_variance: float = COEFFICIENT_VARIANCE,
                calibration: Calibration | Literal["auto"] | None = "auto",
                family_prior: Sequence[float] = FAMILY_PRIOR,
                direction: Direction | None = None) -> Prediction | BarPrediction:
    """The predictive distribution of the curve's value at `at_step`, given its values so far.

    `steps` are increasing numbers in any unit (epochs, iterations, tokens); the first one
    counts as one unit of training. Works for rising and falling curves alike.

    `bounds` is the metric's range, (low, high) with None for an open side: (0.0, 1.0) for an
    error rate or an accuracy, (0.0, None) for a loss. The default "auto" treats a curve with
    no negative value as a loss, (0.0, None), and any other as unbounded; None turns bounds
    off. Every quantile of the prediction lies inside the bounds.

    `model` picks the curve model: "ensemble", the parametric ensemble of this module;
    "pfn", the LC-PFN network of `hyperlaw.curves.pfn` (its `BarPrediction` reads the same:
    `mean`, `std`, `cdf`, `quantiles`, `interval`; `at_step` must lie after the last step);
    "auto" (default), `DEFAULT_MODEL`, the ensemble, the better of the two on held-out tasks
    (benchmarks/curves.py). The ensemble's `evidence_weight`, `discrepancy`,
    `coefficient_variance` and `calibration` (None: the raw model) default to the constants
    calibrated on real curves; `calibration="auto"` picks CALIBRATION for a metric with one
    bound, RANGE_CALIBRATION for a declared range and UNBOUNDED_CALIBRATION, which keeps the
    model's median, for an unbounded one.

    `direction` is the way the metric improves, "minimize" (a loss, an error rate) or
    "maximize" (an accuracy); None (the default) leaves it unknown. Given it, a curve that has
    worsened over the steps seen (its last value behind its first: a loss that rose, an
    accuracy that fell) is forecast around its last value: the ensemble's mixture is moved, in
    the warped space, until its median is that value. The families are shapes of improving
    curves, and fitted to a worsening one they carry its trend far past where such curves end
    (benchmarks/curves.py). The LC-PFN does not read it.
    """
    if model not in ("auto", "pfn", "ensemble"):
        raise HyperlawError(f"extrapolate: model={model!r} is not understood; pass 'auto', "
                            f"'pfn' (the LC-PFN) or 'ensemble' (the parametric ensemble)")
    if (DEFAULT_MODEL if model == "auto" else model) == "pfn":
        from hyperlaw.curves import pfn  # pfn imports this module

        return pfn.predict(steps, values, at_step, bounds=bounds)
    if direction not in (None, "minimize", "maximize"):
        raise HyperlawError(f"extrapolate: direction={direction!r} is not understood; pass "
                            f"'minimize' (a loss, an error rate), 'maximize' (an accuracy) or "
                            f"None when unknown")
    t, y = check_curve(steps, values)
    if not math.isfinite(at_step):
        raise HyperlawError(f"extrapolate: at_step must be a finite number, got {at_step!r}")
    if not (math.isfinite(coefficient_variance) and coefficient_variance > 0):
        raise HyperlawError(f"extrapolate: coefficient_variance must be a positive finite "
                            f"number, got {coefficient_variance!r}; the default is "
                            f"{COEFFICIENT_VARIANCE:g}")
    resolved = resolve_bounds(bounds, y)
    # the way the curve heads: the way it improves when known, else the way it went
    rising = bool(y[-1] > y[0]) if direction is None else direction == "maximize"
    # a worsening curve: forecast around its last value, not recalibrated (the maps hold how
    # much further than predicted improving curves went)
    worse = worsened(y, direction)
    warp = _warp_for(resolved, y, rising)
    if isinstance(calibration, str):
        if calibration != "auto":
            raise HyperlawError(f"extrapolate: calibration={calibration!r} is not understood; "
                                f"pass 'auto', a Calibration, or None for the raw model")
        calibration = (UNBOUNDED_CALIBRATION if resolved == (None, None) else RANGE_CALIBRATION
                       if None not in resolved else CALIBRATION)
    y = warp.forward(y)
    origin, unit = _progress(t)
    u = (t - origin) / unit + 1.0
    u_star = max((float(at_step) - origin) / unit + 1.0, 1.0)
    spread = float(np.ptp(y))
    scale = max(spread, 1e-9 * max(1.0, float(np.max(np.abs(y)))))
    horizon = max(math.log(u_star / u[-1]), 0.0)
    stage = stage_of(t, float(at_step))
    knots = None if calibration is None or worse else calibration.knots(stage, rising)
    if y.size < 3:
        loc = float(y[-1])
        width = max(scale, 0.05 * abs(loc), 1e-12) * (1.0 + horizon)
        # a Cauchy guess: its median, the last value, stands for the mean it does not have
        return Prediction(float(values[-1]), np.ones(1), np.array([loc]), np.array([width]), 1.0,
                          warp)

    center = float(y[-1])
    u_fit, y_fit = _compress(u, (y - center) / scale, MAX_POINTS)
    n = u_fit.size
    _, shapes = _shapes(np.append(u_fit, u_star), float(u[-1]))
    g_all = np.vstack(shapes)
    log_prior = _log_prior(shapes, family_prior)
    g, g_star = g_all[:, :n], g_all[:, n]

    lam = evidence_weight
    inv_v0 = 1.0 / coefficient_variance
    s11 = lam * n + inv_v0
    s12 = lam * g.sum(axis=1)
    s22 = lam * np.einsum("kn,kn->k", g, g) + inv_v0
    r1 = lam * y_fit.sum()
    r2 = lam * (g @ y_fit)
    yy = lam * float(y_fit @ y_fit)
    det = s11 * s22 - s12 * s12
    m1 = (s22 * r1 - s12 * r2) / det
    m2 = (s11 * r2 - s12 * r1) / det
    a_n = _PRIOR_A + lam * n / 2.0
    b_n = np.maximum(_PRIOR_B + 0.5 * (yy - (r1 * m1 + r2 * m2)), 1e-12)
    log_evidence = -0.5 * np.log(det) - a_n * np.log(b_n) + log_prior
    weights = np.exp(log_evidence - np.max(log_evidence))
    keep = weights > 1e-8 * weights.max()
    weights = weights[keep] / weights[keep].sum()
    g_star, m1, m2, b_n, det = g_star[keep], m1[keep], m2[keep], b_n[keep], det[keep]
    s11, s12, s22 = s11, s12[keep], s22[keep]

    locs = m1 + m2 * g_star
    # x*ᵀ P⁻¹ x* with x* = [1, g*] and P⁻¹ = [[s22, −s12], [−s12, s11]] / det
    leverage = (s22 - 2.0 * s12 * g_star + s11 * g_star**2) / det
    dof = 2.0 * a_n
    variances = b_n / a_n * (1.0 + leverage)
    drift = discrepancy * horizon * (abs(float(y[0] - y[-1])) / scale)
    scales = np.sqrt(variances + drift**2)
    locs = center + scale * locs
    scales = scale * scales
    return _prediction(weights, locs, scales, float(dof), warp, knots,
                       center if worse else None)


def _log_prior(shapes: list[np.ndarray], family_prior: Sequence[float]) -> np.ndarray:
    """The log prior of every particle: family f gets `family_prior[f]` (normalised) of the
    mass, spread evenly over its grid; a family with weight 0 is left out."""
    prior = np.asarray(family_prior, dtype=float)
    if prior.shape != (len(shapes),) or np.any(prior < 0) or not np.any(prior > 0):
        raise HyperlawError(f"extrapolate: family_prior needs {len(shapes)} non-negative "
                            f"weights, one per family of FITTED_FAMILIES {FITTED_FAMILIES}, not "
                            f"all zero; got {family_prior!r}")
    prior = prior / prior.sum()
    with np.errstate(divide="ignore"):
        return np.concatenate([np.full(shape.shape[0], math.log(share) - math.log(shape.shape[0])
                                       if share > 0 else -np.inf)
                               for share, shape in zip(prior, shapes, strict=True)])


def _prediction(weights: np.ndarray, locs: np.ndarray, scales: np.ndarray, dof: float,
                warp: Warp, calibration: tuple[np.ndarray, np.ndarray] | None,
                median_at: float | None = None) -> Prediction:
    """The prediction of this mixture, moved to a median at `median_at` (in the warped space)
    when given. When warped or recalibrated its mean is an average over fixed quantiles of
    each component (the back-transformed Student-t tails may have no mean), each point
    weighted by the density ratio of the recalibration there."""
    from scipy import special

    if warp != _IDENTITY or calibration is not None:
        keep = weights > 1e-3 * weights.max()  # negligible components only cost time
        weights, locs, scales = weights[keep] / weights[keep].sum(), locs[keep], scales[keep]
    if median_at is not None:
        raw = Prediction(0.0, weights, locs, scales, dof)
        locs = locs + (median_at - float(_mixture_quantiles(raw, np.array([0.5]))[0]))
    if warp == _IDENTITY and calibration is None:
        return Prediction(float(np.sum(weights * locs)), weights, locs, scales, dof)
    points = locs[:, None] + scales[:, None] * special.stdtrit(dof, _GRID)
    mass = np.repeat(weights[:, None], _GRID.size, axis=1)
    if calibration is not None:
        probs, calibrated = calibration
        xs = np.linspace(float(points.min()), float(points.max()), 257)
        raw = np.interp(points, xs, _tabulated_cdf(weights, locs, scales, dof)(xs))
        slopes = np.diff(calibrated) / np.maximum(np.diff(probs), 1e-12)
        mass = mass * slopes[np.clip(np.searchsorted(probs, raw) - 1, 0, slopes.size - 1)]
    mean = float(np.sum(mass * warp.inverse(points)) / np.sum(mass))
    return Prediction(mean, weights, locs, scales, dof, warp, calibration)
