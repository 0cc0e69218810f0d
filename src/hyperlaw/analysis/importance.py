"""Parameter importance by PED-ANOVA (Watanabe et al., 2023).

The importance of a parameter is the Pearson divergence between its distribution among the
best trials (the top `quantile` of complete trials) and among all of them (the baseline):

    importance(d) = sum_x p_all(x) * (p_top(x) / p_all(x) - 1) ** 2

A parameter whose good values are spread like all tried values scores 0; one where the best
trials concentrate scores high. Numbers enter by their rank among the tried values (so a log
or a linear scale gives the same answer, and skewed values do not fool the density), with
Parzen (Gaussian kernel) densities on a grid, one bandwidth for both sets (Scott's rule on the
smaller); categories enter as smoothed frequencies. Scores are normalized to sum to 1. It needs
no model fit, so it takes milliseconds on 100,000 trials.
"""

from __future__ import annotations

import math

import numpy as np

from hyperlaw.analysis.columns import StudyColumns
from hyperlaw.errors import HyperlawError

#: fewer complete trials than this give no importance (there is nothing to compare)
MIN_TRIALS = 4


def ped_anova(columns: StudyColumns, *, quantile: float = 0.1,
              grid_size: int = 100) -> dict[str, float]:
    """Importance of each parameter, normalized to sum to 1, highest first.

    Returns an empty dict when the study has fewer than `MIN_TRIALS` complete trials.
    """
    if not 0.0 < quantile < 1.0:
        raise HyperlawError(f"quantile must be in (0, 1), got {quantile!r}; use e.g. 0.1")
    done = columns.complete()
    if len(done) < MIN_TRIALS:
        return {}
    order = done[np.argsort(columns.sign() * columns.value[done], kind="stable")]
    n_top = max(2, math.ceil(quantile * len(order)))
    top = np.zeros(columns.n, dtype=bool)
    top[order[:n_top]] = True
    scores: dict[str, float] = {}
    for name in columns.param_names():
        column = columns.params[name]
        x = columns.param(name)[order]
        active = ~np.isnan(x)
        if active.sum() < MIN_TRIALS:
            continue
        is_top = top[order][active]
        x = x[active]
        if not is_top.any():
            scores[name] = 0.0
            continue
        if column.categorical:
            p_all, p_top = _category_densities(x.astype(np.int64), is_top, len(column.labels))
        else:
            p_all, p_top = _numeric_densities(x, is_top, grid_size)
        scores[name] = _pearson_divergence(p_top, p_all)
    total = sum(scores.values())
    if total > 0:
        scores = {k: v / total for k, v in scores.items()}
    return dict(sorted(scores.items(), key=lambda kv: -kv[1]))


def _pearson_divergence(p: np.ndarray, q: np.ndarray) -> float:
    """sum q * (p / q - 1)^2 over the support of q."""
    support = q > 0
    return float(np.sum((p[support] - q[support]) ** 2 / q[support]))


def _category_densities(codes: np.ndarray, is_top: np.ndarray,
                        n_categories: int) -> tuple[np.ndarray, np.ndarray]:
    def density(selected: np.ndarray) -> np.ndarray:
        counts = np.bincount(selected, minlength=n_categories).astype(np.float64) + 1.0
        return counts / counts.sum()

    return density(codes), density(codes[is_top])


def _numeric_densities(x: np.ndarray, is_top: np.ndarray,
                       grid_size: int) -> tuple[np.ndarray, np.ndarray]:
    from scipy.stats import rankdata

    if x.max() <= x.min():
        flat = np.full(grid_size, 1.0 / grid_size)
        return flat, flat
    unit = (rankdata(x) - 1.0) / (len(x) - 1)
    top = unit[is_top]
    bandwidth = max(float(np.std(top)) * len(top) ** -0.2 if len(top) > 1 else 0.0,
                    1.0 / grid_size)
    return _parzen(unit, grid_size, bandwidth), _parzen(top, grid_size, bandwidth)


def _parzen(unit: np.ndarray, grid_size: int, bandwidth: float) -> np.ndarray:
    """A Gaussian-kernel density of points in [0, 1] on `grid_size` cells, summing to 1."""
    counts = np.bincount(np.minimum((unit * grid_size).astype(np.int64), grid_size - 1),
                         minlength=grid_size).astype(np.float64)
    centers = np.arange(grid_size) / grid_size
    kernel = np.exp(-0.5 * ((centers[:, None] - centers[None, :]) / bandwidth) ** 2)
    smooth = kernel @ counts
    return smooth / smooth.sum()
