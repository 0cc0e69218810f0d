"""The loss law L(N, D) = E + A/N^alpha + B/D^beta: the fit recovers known constants, and the
one shipped with step_law reproduces the Step Law paper's released runs."""

from __future__ import annotations

import itertools
from pathlib import Path

import numpy as np
import pytest

import hyperlaw as hl

RUNS = (Path(__file__).resolve().parents[1] / "examples" / "data" / "steplaw"
        / "dense_lr_bs_loss.csv")
# Chinchilla's published fit (Hoffmann et al. 2022, approach 3)
CHINCHILLA = {"E": 1.69, "A": 406.4, "alpha": 0.34, "B": 410.7, "beta": 0.28}


def law_value(c: dict[str, float], n: float, d: float) -> float:
    return c["E"] + c["A"] / n ** c["alpha"] + c["B"] / d ** c["beta"]


def test_fit_recovers_chinchillas_constants_from_their_surface() -> None:
    cells = itertools.product((4e7, 1e8, 3e8, 1e9, 3e9), (1e9, 5e9, 2e10, 1e11))
    records = [{"n_params": n, "n_tokens": d, "loss": law_value(CHINCHILLA, n, d)}
               for n, d in cells]
    records.append({**records[0], "loss": records[0]["loss"] * 1.5})  # a worse run of a cell
    law = hl.scaling.LossLaw.fit(records, n_bootstrap=20)
    assert law.n_cells == 20
    assert law.alpha == pytest.approx(0.34, abs=0.02)
    assert law.beta == pytest.approx(0.28, abs=0.02)
    p = law.predict(n_params=7e10, n_tokens=1.4e12)  # Chinchilla itself, far beyond the cells
    assert p.value == pytest.approx(law_value(CHINCHILLA, 7e10, 1.4e12), rel=0.01)
    assert p.low <= p.value <= p.high
    assert hl.scaling.LossLaw.from_dict(law.to_dict()).coefficients == law.coefficients


def test_shipped_loss_law_reproduces_the_released_runs() -> None:
    pd = pytest.importorskip("pandas")
    df = pd.read_csv(RUNS)
    best = df.groupby(["N", "D"])["smooth loss"].min()
    for (n, d), loss in best.items():
        prior = hl.scaling.step_law(float(n), float(d), warn=False)
        assert prior.loss == pytest.approx(loss, rel=0.015), (n, d)
        assert prior.loss_low <= prior.loss <= prior.loss_high
    # more data, a larger model: a lower loss
    assert hl.scaling.step_law(1e9, 1e11).loss < hl.scaling.step_law(2.2e8, 1e11).loss
    assert hl.scaling.step_law(1e9, 1e11).loss < hl.scaling.step_law(1e9, 1e10).loss


def test_loss_law_needs_cells_varying_both_sizes() -> None:
    records = [{"n_params": 1e8, "n_tokens": d, "loss": 3.0 - np.log10(d) / 10}
               for d in (1e9, 2e9, 4e9, 8e9, 1.6e10, 3.2e10)]
    with pytest.raises(hl.scaling.ScalingFitError, match="vary both"):
        hl.scaling.LossLaw.fit(records)
