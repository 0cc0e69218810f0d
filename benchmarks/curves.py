"""Learning-curve extrapolation quality on real, held-out curves.

For each curve family of benchmarks/data/curves.npz, half of the curves (even rows) may be used
to calibrate `hyperlaw.curves.extrapolate` (`--calibrate`); the other half (odd rows) is
held out. From the first 10%, 25% and 50% of each held-out curve the script predicts the final
value and prints, per family and overall: the median absolute error of the predictive mean, of
its median and of "last value observed", and the coverage of the 80% and 95% intervals.

    python benchmarks/curves.py                # evaluate the shipped constants
    python benchmarks/curves.py --calibrate    # grid-search the two constants on the even rows
"""

from __future__ import annotations

import argparse
import itertools
import time
from pathlib import Path

import numpy as np

from hyperlaw.curves import ensemble, extrapolate

DATA = Path(__file__).resolve().parent / "data" / "curves.npz"
FRACTIONS = (0.10, 0.25, 0.50)


def load(path: Path) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    data = np.load(path)
    families = sorted({key.split("/")[0] for key in data.files})
    return {f: (data[f"{f}/steps"].astype(float), data[f"{f}/curves"].astype(float))
            for f in families}


def seen_points(n: int, fraction: float) -> int:
    return max(3, round(fraction * n))


def evaluate(curves: dict[str, tuple[np.ndarray, np.ndarray]], rows: slice,
             fractions: tuple[float, ...] = FRACTIONS, **options: float) -> dict:
    """Per (family, fraction): errors of the mean and of the last value, interval hits."""
    out: dict = {}
    for family, (steps, table) in curves.items():
        for fraction in fractions:
            seen = seen_points(len(steps), fraction)
            rows_out = []
            for curve in table[rows]:
                prediction = extrapolate(steps[:seen], curve[:seen], float(steps[-1]),
                                         **options)
                q = prediction.quantiles([0.025, 0.1, 0.5, 0.9, 0.975])
                truth = curve[-1]
                rows_out.append((abs(prediction.mean - truth), abs(curve[seen - 1] - truth),
                                 q[1] <= truth <= q[3], q[0] <= truth <= q[4],
                                 abs(q[2] - truth)))
            out[family, fraction] = np.array(rows_out, dtype=float)
    return out


def calibrate(curves: dict[str, tuple[np.ndarray, np.ndarray]]) -> tuple[float, float]:
    """The (evidence_weight, discrepancy) whose 80%/95% coverage on the even rows is closest
    to nominal, averaged over fractions and families."""
    best, best_score = None, np.inf
    for weight, discrepancy in itertools.product((0.5, 0.25), (0.5, 0.75, 1.0, 1.5)):
        results = evaluate(curves, slice(0, None, 2), evidence_weight=weight,
                           discrepancy=discrepancy)
        table = np.concatenate(list(results.values()))
        cover80, cover95 = table[:, 2].mean(), table[:, 3].mean()
        by_25 = np.concatenate([v for (f, fr), v in results.items() if fr == 0.25])
        score = (abs(cover80 - 0.80) + abs(cover95 - 0.95)
                 + abs(by_25[:, 2].mean() - 0.80))
        print(f"evidence_weight={weight:<5} discrepancy={discrepancy:<4} "
              f"cover80={cover80:.3f} cover95={cover95:.3f} cover80@25%={by_25[:, 2].mean():.3f}"
              f" error={np.median(table[:, 0]):.4f}")
        if score < best_score:
            best, best_score = (weight, discrepancy), score
    assert best is not None
    return best


def report(results: dict) -> None:
    print(f"{'family':<14} {'seen':>5} {'n':>4} {'err(mean)':>10} {'err(median)':>12} "
          f"{'err(last)':>10} {'ratio':>6} {'cover80':>8} {'cover95':>8}")
    for (family, fraction), table in results.items():
        err, naive = np.median(table[:, 0]), np.median(table[:, 1])
        print(f"{family:<14} {fraction:>5.0%} {len(table):>4} {err:>10.4f} "
              f"{np.median(table[:, 4]):>12.4f} {naive:>10.4f} "
              f"{err / naive if naive else float('nan'):>6.2f} {table[:, 2].mean():>8.3f} "
              f"{table[:, 3].mean():>8.3f}")
    for fraction in FRACTIONS:
        table = np.concatenate([v for (f, fr), v in results.items() if fr == fraction])
        err, naive = np.median(table[:, 0]), np.median(table[:, 1])
        print(f"{'all':<14} {fraction:>5.0%} {len(table):>4} {err:>10.4f} "
              f"{np.median(table[:, 4]):>12.4f} {naive:>10.4f} "
              f"{err / naive:>6.2f} {table[:, 2].mean():>8.3f} {table[:, 3].mean():>8.3f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DATA)
    parser.add_argument("--calibrate", action="store_true")
    args = parser.parse_args()
    curves = load(args.data)
    options = {}
    if args.calibrate:
        weight, discrepancy = calibrate(curves)
        print(f"\nbest on the calibration half: evidence_weight={weight}, "
              f"discrepancy={discrepancy}\n")
        options = {"evidence_weight": weight, "discrepancy": discrepancy}
    else:
        print(f"shipped constants: evidence_weight={ensemble.EVIDENCE_WEIGHT}, "
              f"discrepancy={ensemble.DISCREPANCY}\n")
    started = time.perf_counter()
    results = evaluate(curves, slice(1, None, 2), **options)
    count = sum(len(v) for v in results.values())
    print("held-out curves (odd rows): predicting the final value")
    report(results)
    print(f"\n{(time.perf_counter() - started) / count * 1e3:.2f} ms per extrapolation")


if __name__ == "__main__":
    main()
