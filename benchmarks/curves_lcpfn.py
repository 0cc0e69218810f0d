"""The LC-PFN beside the parametric ensemble on real, held-out learning curves.

From the first 10%, 20%, 30% and 50% of each held-out curve (odd rows) of
benchmarks/data/curves.npz, each predictor gives the final value. Printed per fraction, over
all families: the median absolute error of the predictive mean, the same for "last value seen"
and for a least-squares pow3 fit (c + a·t^−α), the coverage of the 80% interval, its median
width, and milliseconds per prediction.

    python benchmarks/curves_lcpfn.py                      # bounds (0, None): these are losses
    python benchmarks/curves_lcpfn.py --bounds none        # no declared bounds
    python benchmarks/curves_lcpfn.py --rows even          # the rows that may be used to tune
    python benchmarks/curves_lcpfn.py --calibrate          # fit pfn.CALIBRATION on the even rows
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from hyperlaw.curves import extrapolate, pfn

DATA = Path(__file__).resolve().parent / "data" / "curves.npz"
FRACTIONS = (0.10, 0.20, 0.30, 0.50)
_ALPHAS = np.geomspace(0.01, 5.0, 60)


def pow3_final(steps: np.ndarray, values: np.ndarray, at_step: float) -> float:
    """Least-squares c + a·t^−α (α on a grid, c and a exact) at `at_step`; the last value when
    fewer than three points are seen."""
    if values.size < 3:
        return float(values[-1])
    best, best_sse = float(values[-1]), np.inf
    for alpha in _ALPHAS:
        design = np.stack([np.ones_like(steps), steps**-alpha], axis=1)
        coef, *_ = np.linalg.lstsq(design, values, rcond=None)
        sse = float(np.sum((design @ coef - values) ** 2))
        if sse < best_sse:
            best, best_sse = float(coef[0] + coef[1] * at_step**-alpha), sse
    return best


KNOTS = (0.0, 0.005, 0.02, 0.05, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 0.95, 0.98, 0.995,
         1.0)


def calibrate(rows: slice, bounds: Any) -> tuple[float, ...]:
    """The knots of `pfn.CALIBRATION`: the empirical CDF, at KNOTS, of the raw network's
    probability (rising orientation) of each true final value, over `rows` and FRACTIONS."""
    data = np.load(DATA)
    pfn.CALIBRATION = ((0.0, 1.0), (0.0, 1.0))
    pits = []
    for family in sorted({key.split("/")[0] for key in data.files}):
        steps = data[f"{family}/steps"].astype(float)
        for fraction in FRACTIONS:
            seen = max(3, round(fraction * steps.size))
            for curve in data[f"{family}/curves"].astype(float)[rows]:
                prediction = pfn.predict(steps[:seen], curve[:seen], float(steps[-1]),
                                         bounds=bounds)
                below = float(prediction.cdf(curve[-1]))
                pits.append(below if pfn._is_rising(curve[:seen]) else 1.0 - below)
    mapped = [float(np.mean(np.asarray(pits) <= k)) for k in KNOTS]
    mapped[0], mapped[-1] = 0.0, 1.0
    return tuple(round(m, 4) for m in mapped)


def evaluate(predictors: dict[str, Callable[..., Any]], rows: slice, bounds: Any) -> None:
    data = np.load(DATA)
    families = sorted({key.split("/")[0] for key in data.files})
    print(f"{'predictor':<10} {'seen':>5} {'n':>4} {'err':>7} {'err(last)':>9} "
          f"{'err(pow3)':>9} {'cover80':>8} {'width80':>8} {'ms':>6}")
    for name, predict in predictors.items():
        for fraction in FRACTIONS:
            rows_out, elapsed = [], 0.0
            for family in families:
                steps = data[f"{family}/steps"].astype(float)
                seen = max(3, round(fraction * steps.size))
                for curve in data[f"{family}/curves"].astype(float)[rows]:
                    t, y, truth = steps[:seen], curve[:seen], curve[-1]
                    started = time.perf_counter()
                    prediction = predict(t, y, float(steps[-1]), bounds=bounds)
                    low, high = prediction.interval(0.8)
                    elapsed += time.perf_counter() - started
                    rows_out.append((abs(prediction.mean - truth), abs(y[-1] - truth),
                                     abs(pow3_final(t, y, float(steps[-1])) - truth),
                                     low <= truth <= high, high - low))
            table = np.array(rows_out, dtype=float)
            print(f"{name:<10} {fraction:>5.0%} {len(table):>4} {np.median(table[:, 0]):>7.4f} "
                  f"{np.median(table[:, 1]):>9.4f} {np.median(table[:, 2]):>9.4f} "
                  f"{table[:, 3].mean():>8.3f} {np.median(table[:, 4]):>8.4f} "
                  f"{elapsed / len(table) * 1e3:>6.2f}")


def _ensemble(steps: np.ndarray, values: np.ndarray, at_step: float, *, bounds: Any) -> Any:
    try:
        return extrapolate(steps, values, at_step, bounds=bounds)
    except TypeError:  # an ensemble without the `bounds` option
        return extrapolate(steps, values, at_step)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bounds", choices=["loss", "none"], default="loss")
    parser.add_argument("--rows", choices=["odd", "even"], default="odd")
    parser.add_argument("--only", choices=["lcpfn", "ensemble"], default=None)
    parser.add_argument("--calibrate", action="store_true")
    args = parser.parse_args()
    bounds = (0.0, None) if args.bounds == "loss" else None
    if args.calibrate:
        mapped = calibrate(slice(0, None, 2), bounds)
        print(f"CALIBRATION = ({KNOTS},\n               {mapped})")
        return
    predictors = {"lcpfn": pfn.predict, "ensemble": _ensemble}
    if args.only:
        predictors = {args.only: predictors[args.only]}
    evaluate(predictors, slice(1 if args.rows == "odd" else 0, None, 2), bounds)


if __name__ == "__main__":
    main()
