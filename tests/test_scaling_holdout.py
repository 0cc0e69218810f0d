"""The held-out scoring of benchmarks/scaling_holdout.py on synthetic grids at one batch size."""

from __future__ import annotations

import importlib.util
import json
import math
from pathlib import Path
from types import ModuleType

import pandas as pd
import pytest

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "scaling_holdout.py"
SIZES = (1e4, 2e4, 4e4, 8e4)
BUDGETS = (1e5, 2e5)


def holdout() -> ModuleType:
    spec = importlib.util.spec_from_file_location("scaling_holdout", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def grid(optimum: dict[float, float]) -> pd.DataFrame:
    """Loss quadratic in log(lr) around `optimum[n_params]`, on rates x1.41 apart that hold
    every optimum; one batch size."""
    lrs = [0.02 * 2 ** (-k / 2) for k in range(9)]
    return pd.DataFrame([
        {"n_params": n, "n_tokens": d, "lr": lr, "batch_size": 16.0,
         "loss": 2.0 + 0.1 * math.log(lr / optimum[n]) ** 2}
        for n in SIZES for d in BUDGETS for lr in lrs])


def test_a_clear_trend_is_followed_without_warning() -> None:
    """The optimum falls one grid step per doubling of size: each held-out cell is
    recommended its best rate, and no batch-size law is fitted. Fitted on three sizes, the
    prediction carries no ExtrapolationWarning; on two, it does (a power law passes through
    any two optima, so two sizes cannot show that the optimum follows one). With the Step
    Law's exponents as a prior, two sizes (and the two budgets) take the prior's exponents,
    which this grid does not follow: off by one grid step at one budget."""
    module = holdout()
    runs = grid({n: 0.02 * 2 ** (-(i + 1) / 2) for i, n in enumerate(SIZES)})
    rows = module.evaluate(runs, "tolerance", "prediction", prior=None)
    assert [r["n_params"] for r in rows] == [4e4, 4e4, 8e4, 8e4]  # sizes with 2+ smaller
    assert [r["train_sizes"] for r in rows] == [2, 2, 3, 3]
    assert [r["warned"] for r in rows] == [True, True, False, False]
    assert not any(r["bs_tuned"] for r in rows)
    assert all(abs(r["loss_gap"]) < 1e-9 for r in rows)
    summary = module.summarize(rows)
    assert summary["warned"] == 2 and math.isnan(summary["bs_coverage"])
    rows = module.evaluate(runs, "tolerance", "prediction")
    assert [r["warned"] for r in rows] == [True, True, False, False]
    assert [abs(r["loss_gap"]) < 1e-9 for r in rows] == [False, True, True, True]


def test_flat_then_dropping_warns() -> None:
    """The optimum is flat across the small sizes and halves at the largest: the small sizes
    cannot predict it, and the prediction says so with an ExtrapolationWarning."""
    module = holdout()
    runs = grid({1e4: 0.01, 2e4: 0.01, 4e4: 0.01, 8e4: 0.005})
    rows = module.evaluate(runs, "tolerance", "prediction")
    largest = [r for r in rows if r["n_params"] == 8e4]
    assert largest and all(r["warned"] for r in largest)
    assert all(r["loss_gap"] > 0 for r in largest)


def test_cached_runs_are_scored_without_training(tmp_path: Path,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    """`--cached-only`: the cached runs of the grid's cells, each rate's loss the mean of its
    seeds (a rate added by an edge extension included when all its seeds are cached, as an
    extension at these seeds would have trained it; a cell outside the grid left out)."""
    monkeypatch.syspath_prepend(str(SCRIPT.parent))  # scaling_holdout imports scaling.py
    module = holdout()
    cache = tmp_path / "runs.json"
    cache.write_text(json.dumps({
        "wsd|16|250000|0.004": {"val_loss": 3.0},
        "wsd|16|250000|0.004|seed1": {"val_loss": 3.2},
        "wsd|16|250000|0.032": {"val_loss": 2.9},  # beyond the grid's rates, both seeds
        "wsd|16|250000|0.032|seed1": {"val_loss": 2.7},
        "wsd|16|250000|0.045": {"val_loss": 2.0},  # beyond the grid's rates, one seed
        "wsd|999|250000|0.004": {"val_loss": 1.0},  # not a width of the grid
    }))
    frame = module.transformer_runs(cache, train=False)
    assert frame["lr"].round(6).tolist() == [0.004, 0.032]
    assert frame["loss"].tolist() == pytest.approx([3.1, 2.8])
    assert frame.attrs["seed_spread"] == pytest.approx((0.2 / 3.1 + 0.2 / 2.8) / 2)  # median


def test_the_gap_noise_floor_crosses_the_seeds_of_held_out_cells(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The rate best on one seed, scored on the other against that seed's best, both ways
    round, over the held-out widths only (width 16 is fitted, never held out)."""
    monkeypatch.syspath_prepend(str(SCRIPT.parent))
    module = holdout()
    cache = tmp_path / "runs.json"
    cache.write_text(json.dumps({
        "wsd|32|250000|0.004": {"val_loss": 2.0}, "wsd|32|250000|0.004|seed1": {"val_loss": 2.2},
        "wsd|32|250000|0.008": {"val_loss": 2.1}, "wsd|32|250000|0.008|seed1": {"val_loss": 2.1},
        "wsd|16|250000|0.004": {"val_loss": 3.0}, "wsd|16|250000|0.004|seed1": {"val_loss": 9.0},
        "wsd|16|250000|0.008": {"val_loss": 9.0}, "wsd|16|250000|0.008|seed1": {"val_loss": 3.0},
    }))
    frame = module.transformer_runs(cache, train=False)
    assert frame.attrs["oracle_gap"] == pytest.approx((2.2 / 2.1 - 1 + 2.1 / 2.0 - 1) / 2)
