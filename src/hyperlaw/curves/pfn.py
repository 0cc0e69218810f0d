"""Learning-curve extrapolation with a prior-data fitted network (LC-PFN, Adriaensen et al. 2023).

A small transformer, trained once by `scripts/train_lcpfn.py` (`make lcpfn`) on curves sampled
from a prior over parametric curve families, reads a partial curve and returns the distribution
of its value at a later step in one forward pass. Its weights ship in `data/lcpfn.npz`; this
module runs the network in numpy (torch is not needed), loading the weights once on first use.

The network knows curves on the prior's grid t = 1..100 that rise inside [0, 1]. A real curve is
mapped onto it so:

- steps: progress u = (step − first step)/unit + 1 (unit: the smallest gap between steps, as in
  `extrapolate`), then t = 100·u/u*, where u* is the progress at `at_step`: the horizon lands on
  t = 100. t is rounded to the grid's integers 1..99 and points falling on one grid step are
  averaged (this also thins long curves).
- values: a falling curve (a loss, an error rate) is flipped so that it rises; then the affine
  map sending the "bad" end to 0 and the "good" end to 1. A bound (declared, or 0 below a curve
  without negative values under the default bounds="auto") is used as that end;
  an open end sits beyond the observed range: with [lo, hi] the 5th and 95th percentiles of
  the averaged points (rising orientation) and span = hi − lo, the bad end is
  lo − `BELOW_SPANS`·span and the good end hi + `ABOVE_SPANS`·span.

The network's distribution is recalibrated for real curves (`CALIBRATION`) and read back
through the inverse map: a bar (piecewise-uniform)
distribution whose support lies inside the declared bounds.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from importlib import resources
from typing import Literal

import numpy as np

from hyperlaw.curves.ensemble import Calibration, check_curve, resolve_bounds, stage_of
from hyperlaw.errors import HyperlawError

HORIZON = 100
#: An open end of the range sits this many observed spans below the observed values (room to
#: the worse side) ...
BELOW_SPANS = 2.0
#: ... and this many above them (room for the improvement still to come; used only where the
#: improving side has no bound, an unbounded curve's). Chosen among 4, 8, 16, 24 and 32 on the
#: build tasks of benchmarks/curves.py taken as unbounded (`--choose-above-spans`): at 4 the
#: truth lay beyond the support in about 40% of the cases seen at 10% and no recalibration
#: could cover it.
ABOVE_SPANS = 16.0
#: Recalibration of real curves (they stray from the prior's families), of the same kind as the
#: ensemble's (`ensemble.Calibration`: one map of the predictive CDF per stage of the curve
#: seen), fitted on the build tasks by `python benchmarks/curves.py --calibrate lcpfn`.
CALIBRATION = Calibration(
    stages=(0.4, 0.7, 1.0),
    levels=(0.0, 0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.85, 0.9,
            0.925, 0.95, 0.975, 0.99, 1.0),
    pits=(
        (0.0, 1e-12, 9.666e-05, 0.001341, 0.003187, 0.004022, 0.007479, 0.01399, 0.05468, 0.1209,
         0.2042, 0.3079, 0.4745, 0.6219, 0.7128, 0.8114, 0.8485, 0.8755, 0.9409, 0.9832, 1.0),
        (0.0, 3.975e-06, 5.513e-05, 0.0002664, 0.0008623, 0.001879, 0.006239, 0.01618, 0.06651,
         0.1666, 0.2646, 0.3665, 0.4925, 0.6038, 0.6774, 0.7525, 0.8171, 0.8963, 0.9821, 0.9979,
         1.0),
        (0.0, 0.000595, 0.002416, 0.008557, 0.02238, 0.0332, 0.07208, 0.1173, 0.2261, 0.2747,
         0.3701, 0.4679, 0.535, 0.6185, 0.6761, 0.7767, 0.8083, 0.8961, 0.9877, 0.9978, 1.0),
    ),
)
#: The recalibration of unbounded predictions (bounds None, or "auto" on a curve with a
#: negative value), fitted by `python benchmarks/curves.py --calibrate lcpfn --unbounded` on the
#: build tasks taken as unbounded, with `keep_median` as the ensemble's
#: (`ensemble.UNBOUNDED_CALIBRATION`): CALIBRATION, fitted on bounded predictions, left the
#: unbounded network's 80% interval covering about 45% of held-out truths.
UNBOUNDED_CALIBRATION = Calibration(
    stages=(0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0),
    levels=(0.0, 0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.85, 0.9,
            0.925, 0.95, 0.975, 0.99, 1.0),
    pits=(
        (0.0, 1e-12, 2e-12, 0.001021, 0.002909, 0.006113, 0.03631, 0.1165, 0.2946, 0.4349, 0.5,
         0.6, 0.7, 0.8, 0.85, 0.9, 0.925, 0.95, 0.975, 0.999999999999, 1.0),
        (0.0, 1e-12, 2e-12, 3e-12, 4e-12, 5e-12, 5.9999999999999995e-12, 0.01385, 0.03083, 0.1456,
         0.5, 0.6, 0.7, 0.8774, 0.8954, 0.9242, 0.9614, 0.9999999999970001, 0.999999999998,
         0.999999999999, 1.0),
        (0.0, 1e-12, 2e-12, 3e-12, 4e-12, 5e-12, 5.9999999999999995e-12, 0.01141, 0.04518, 0.1341,
         0.5, 0.6, 0.7, 0.8, 0.85, 0.9, 0.9303, 0.9612, 0.999999999998, 0.999999999999, 1.0),
        (0.0, 1e-12, 2e-12, 0.00244, 0.002909, 0.003686, 0.007946, 0.02904, 0.1578, 0.2904, 0.5,
         0.6, 0.7, 0.8, 0.85, 0.9, 0.925, 0.95, 0.975, 0.9968, 1.0),
        (0.0, 0.0005624, 0.0006003, 0.0007288, 0.001337, 0.002594, 0.02384, 0.1064, 0.2998, 0.4626,
         0.5, 0.6, 0.7, 0.8, 0.85, 0.9, 0.925, 0.95, 0.975, 0.99, 1.0),
        (0.0, 1e-12, 2e-12, 3e-12, 0.02551, 0.1078, 0.2565, 0.3631, 0.5, 0.500000000001,
         0.500000000002, 0.7479, 0.7927, 0.8258, 0.85, 0.9, 0.925, 0.95, 0.9906, 0.999999999999,
         1.0),
        (0.0, 0.0004934, 0.0006316, 0.00158, 0.007222, 0.03182, 0.1316, 0.2428, 0.397, 0.4692, 0.5,
         0.6, 0.7, 0.8, 0.85, 0.9, 0.925, 0.95, 0.975, 0.99, 1.0),
        (0.0, 1e-12, 2e-12, 0.001021, 0.002909, 0.006113, 0.03631, 0.1165, 0.2946, 0.4349, 0.5,
         0.6, 0.7, 0.8, 0.85, 0.9, 0.925, 0.95, 0.975, 0.999999999999, 1.0),
        (0.0, 0.002431, 0.0119, 0.06417, 0.1374, 0.1999, 0.2712, 0.3355, 0.4286, 0.4905, 0.5, 0.6,
         0.7, 0.8, 0.85, 0.9, 0.925, 0.95, 0.975, 0.99, 1.0),
        (0.0, 1e-12, 2e-12, 0.001021, 0.002909, 0.006113, 0.03631, 0.1165, 0.2946, 0.4349, 0.5,
         0.6, 0.7, 0.8, 0.85, 0.9, 0.925, 0.95, 0.975, 0.999999999999, 1.0),
    ),
)

Bounds = tuple[float | None, float | None]
_BOUNDS_AS_ENDS = True


@dataclass(frozen=True)
class BarPrediction:
    """A predictive distribution that is uniform inside each of its buckets.

    `borders` (K + 1 increasing values) delimit K buckets holding `probs`. `median` (the point
    forecast), `mean`, `std`, `cdf(x)`, `quantiles(q)` and `interval(level)` read it, as for
    `Prediction`.
    """

    borders: np.ndarray = field(repr=False)
    probs: np.ndarray = field(repr=False)

    @property
    def mean(self) -> float:
        """The mean of the distribution."""
        return float(np.sum(self.probs * 0.5 * (self.borders[1:] + self.borders[:-1])))

    @property
    def median(self) -> float:
        """The median of the distribution, `quantiles(0.5)`: the point forecast."""
        return float(self.quantiles(0.5))

    @property
    def std(self) -> float:
        """The standard deviation of the distribution."""
        low, high = self.borders[:-1], self.borders[1:]
        second = float(np.sum(self.probs * (low * low + low * high + high * high) / 3.0))
        return math.sqrt(max(second - self.mean**2, 0.0))

    def _cumulative(self) -> np.ndarray:
        return np.concatenate([[0.0], np.cumsum(self.probs)])

    def cdf(self, x: float | Sequence[float] | np.ndarray) -> float | np.ndarray:
        """P(value <= x)."""
        result = np.interp(np.asarray(x, dtype=float), self.borders, self._cumulative())
        return float(result) if result.ndim == 0 else result

    def quantiles(self, q: float | Sequence[float] | np.ndarray) -> float | np.ndarray:
        """The value below which the curve lands with probability q (each q in (0, 1))."""
        probs = np.asarray(q, dtype=float)
        if np.any(np.isnan(probs)) or np.any((probs <= 0) | (probs >= 1)):
            raise HyperlawError(f"quantiles must lie strictly between 0 and 1, got {q!r}")
        cumulative = self._cumulative()
        index = np.clip(np.searchsorted(cumulative, probs, side="left"), 1, self.probs.size)
        below, mass = cumulative[index - 1], self.probs[index - 1]
        share = np.where(mass > 0, (probs - below) / np.where(mass > 0, mass, 1.0), 0.5)
        low, high = self.borders[index - 1], self.borders[index]
        result = low + np.clip(share, 0.0, 1.0) * (high - low)
        return float(result) if result.ndim == 0 else result

    def interval(self, level: float = 0.8) -> tuple[float, float]:
        """The central interval holding `level` of the probability."""
        low, high = np.asarray(self.quantiles([(1 - level) / 2, (1 + level) / 2]))
        return float(low), float(high)


# --- the network, in numpy ---------------------------------------------------------------------
@functools.cache
def _weights() -> dict[str, np.ndarray]:
    """The shipped weights (float64 for the forward pass), read once."""
    path = resources.files("hyperlaw.curves").joinpath("data/lcpfn.npz")
    try:
        with path.open("rb") as f, np.load(f) as data:
            return {name: np.asarray(data[name], dtype=np.float64) for name in data.files}
    except FileNotFoundError:
        raise HyperlawError("hyperlaw.curves.pfn: the LC-PFN weights (hyperlaw/curves/data/"
                            "lcpfn.npz) are missing from this installation; reinstall hyperlaw "
                            "or recreate them with `make lcpfn`") from None


def _linear(w: dict[str, np.ndarray], name: str, x: np.ndarray) -> np.ndarray:
    return x @ w[f"{name}.weight"].T + w[f"{name}.bias"]


def _norm(w: dict[str, np.ndarray], name: str, x: np.ndarray) -> np.ndarray:
    centered = x - x.mean(-1, keepdims=True)
    scale = np.sqrt((centered**2).mean(-1, keepdims=True) + 1e-5)
    return centered / scale * w[f"{name}.weight"] + w[f"{name}.bias"]


def _gelu(x: np.ndarray) -> np.ndarray:
    return 0.5 * x * (1.0 + np.tanh(math.sqrt(2.0 / math.pi) * (x + 0.044715 * x**3)))


def forward(t_context: np.ndarray, y_context: np.ndarray, t_query: np.ndarray,
            weights: dict[str, np.ndarray] | None = None) -> np.ndarray:
    """Bucket probabilities (queries × buckets) of the network on the prior's scale: context
    points (t, y) with t in 1..100 and y in [0, 1], query steps t. The same computation as
    `PFN.forward` in scripts/train_lcpfn.py, for one curve."""
    w = _weights() if weights is None else weights
    t = np.concatenate([t_context, t_query]).astype(float)
    features = np.stack([t / HORIZON, np.log(t) / math.log(HORIZON)], axis=-1)
    h = _linear(w, "embed_t", features)
    n_context = t_context.size
    h[:n_context] += _linear(w, "embed_y", np.asarray(y_context, dtype=float)[:, None])
    heads = int(w["meta.heads"])
    layers = int(w["meta.layers"])
    size = h.shape[1] // heads
    for i in range(layers):
        name = f"blocks.{i}"
        qkv = _linear(w, f"{name}.qkv", _norm(w, f"{name}.norm1", h))
        q, k, v = qkv.reshape(t.size, 3, heads, size).transpose(1, 2, 0, 3)  # (H, N, d)
        scores = q @ k[:, :n_context].transpose(0, 2, 1) / math.sqrt(size)
        scores = np.exp(scores - scores.max(-1, keepdims=True))
        mixed = (scores / scores.sum(-1, keepdims=True)) @ v[:, :n_context]
        h = h + _linear(w, f"{name}.proj", mixed.transpose(1, 0, 2).reshape(t.size, -1))
        hidden = _gelu(_linear(w, f"{name}.ff1", _norm(w, f"{name}.norm2", h)))
        h = h + _linear(w, f"{name}.ff2", hidden)
    queries = _norm(w, "norm", h[n_context:])
    logits = _linear(w, "head2", _gelu(_linear(w, "head1", queries)))
    logits = logits - logits.max(-1, keepdims=True)
    probs = np.exp(logits)
    return probs / probs.sum(-1, keepdims=True)


# --- real curves onto the prior's scale --------------------------------------------------------
def _grid(t: np.ndarray, y: np.ndarray, at_step: float) -> tuple[np.ndarray, np.ndarray]:
    """The curve on the prior's integer steps 1..99, points sharing a step averaged."""
    gaps = np.diff(t)
    unit = float(gaps.min()) if gaps.size else max(float(t[0]), 1.0)
    u = (t - t[0]) / unit + 1.0
    u_star = (at_step - t[0]) / unit + 1.0
    cells = np.clip(np.rint(HORIZON * u / u_star), 1, HORIZON - 1)
    steps, index = np.unique(cells, return_inverse=True)
    sums = np.bincount(index, weights=y)
    return steps, sums / np.bincount(index)


def _is_rising(y: np.ndarray) -> bool:
    """Whether the curve improves upwards: its later third above its first third."""
    third = max(y.size // 3, 1)
    return bool(np.mean(y[-third:]) > np.mean(y[:third]))


def _ends(z: np.ndarray, bad_bound: float | None, good_bound: float | None) -> tuple[float, float]:
    """The values (rising orientation) that map to 0 and to 1 on the network's scale."""
    lo, hi = (float(v) for v in np.quantile(z, [0.05, 0.95]))
    span = max(hi - lo, 0.05 * abs(float(np.median(z))), 1e-9)  # a flat curve: 5% of its level
    bad, good = lo - BELOW_SPANS * span, hi + ABOVE_SPANS * span
    if _BOUNDS_AS_ENDS:
        bad = bad if bad_bound is None else bad_bound
        good = good if good_bound is None else good_bound
    else:
        bad = bad if bad_bound is None else max(bad, bad_bound)
        good = good if good_bound is None else min(good, good_bound)
    if good_bound is not None and bad_bound is None:
        bad = min(bad, good - span)  # keep the map increasing when a bound is close
    if bad_bound is not None and good_bound is None:
        good = max(good, bad + span)
    return bad, good


def predict(steps: Sequence[float] | np.ndarray, values: Sequence[float] | np.ndarray,
            at_step: float, *, bounds: Bounds | Literal["auto"] | None = "auto",
            increasing: bool | None = None,
            calibration: Calibration | Literal["auto"] | None = "auto") -> BarPrediction:
    """The LC-PFN's predictive distribution of the curve's value at `at_step`.

    `steps` are increasing numbers in any unit and `at_step` lies after the last of them.
    `bounds` is the metric's range, (low, high) with None for an open side, e.g. (0.0, 1.0)
    for an error rate or an accuracy, (0.0, None) for a loss; every quantile of the prediction
    lies inside it. The default "auto" treats a curve with no negative value as a loss,
    (0.0, None), and any other as unbounded; None declares no bounds. `increasing` says
    whether the curve improves upwards (an accuracy) or downwards (a loss); None infers it
    from the values (falling when they give no sign). `calibration` (None: the raw network)
    defaults ("auto") to the recalibration fitted on real curves: `CALIBRATION`, or
    `UNBOUNDED_CALIBRATION` when the metric has no bound. See the module docstring for how the
    curve is mapped onto the network's scale.
    """
    t, y = check_curve(steps, values, "pfn.predict")
    if not math.isfinite(at_step) or at_step <= t[-1]:
        raise HyperlawError(f"pfn.predict: at_step must be a finite step after the last "
                            f"observed one ({t[-1]:g}), got {at_step!r}")
    low, high = resolve_bounds(bounds, y, "pfn.predict")
    if calibration == "auto":
        calibration = UNBOUNDED_CALIBRATION if low is None and high is None else CALIBRATION
    rising = _is_rising(y) if increasing is None else bool(increasing)
    sign = 1.0 if rising else -1.0
    # in the rising orientation z = sign·y: `bad` maps to 0 and `good` to 1
    bad_bound, good_bound = (low, high) if rising else (high, low)
    grid_t, grid_y = _grid(t, y, float(at_step))
    z = sign * grid_y
    bad, good = _ends(z, None if bad_bound is None else sign * bad_bound,
                      None if good_bound is None else sign * good_bound)
    probs = forward(grid_t, np.clip((z - bad) / (good - bad), -0.5, 1.5),
                    np.array([float(HORIZON)]))[0]
    borders = sign * (bad + (good - bad) * np.linspace(0.0, 1.0, probs.size + 1))
    if not rising:
        borders, probs = borders[::-1], probs[::-1]
    raw = BarPrediction(borders=np.ascontiguousarray(borders), probs=np.ascontiguousarray(probs))
    if calibration is None:
        return raw
    return recalibrated(raw, calibration, stage_of(t, float(at_step)), rising)


def recalibrated(raw: BarPrediction, calibration: Calibration, stage: float,
                 rising: bool) -> BarPrediction:
    """The network's raw prediction (`predict(..., calibration=None)`) through `calibration`'s
    map at this stage of the curve seen; `rising`: the direction it was predicted in (the map
    runs along the rising orientation)."""
    probs = raw.probs if rising else raw.probs[::-1]
    knots = calibration.knots(stage, rising=True)
    probs = np.diff(np.interp(np.concatenate([[0.0], np.cumsum(probs)]), *knots))
    return BarPrediction(borders=raw.borders,
                         probs=np.ascontiguousarray(probs if rising else probs[::-1]))
