"""Scaling laws: the Step Law prior and `hl.scaling.fit` on the paper's runs and synthetic data."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import hyperlaw as hl
from hyperlaw.scaling import ScalingFitError, ScalingWarning, StepLawRangeWarning, fit, step_law

PAPER_RUNS = Path(__file__).resolve().parents[1] / "examples" / "data" / "steplaw" / \
    "dense_lr_bs_loss.csv"


@pytest.fixture(scope="module")
def paper() -> pd.DataFrame:
    df = pd.read_csv(PAPER_RUNS)
    return pd.DataFrame({"n_params": df["N"], "n_tokens": df["D"], "lr": df["lr"],
                         "batch_size": df["bs"] * 2048, "loss": df["smooth loss"]})


def _sig3(x: float) -> str:
    return f"{x:.3g}"


def test_step_law_matches_the_published_formula() -> None:
    prior = step_law(1e9, 1e11)
    assert _sig3(prior.lr) == _sig3(1.79 * 1e9**-0.713 * 1e11**0.307)
    assert _sig3(prior.batch_tokens) == _sig3(0.58 * 1e11**0.571)
    assert prior.batch_sequences == pytest.approx(prior.batch_tokens / 2048)
    assert prior.in_range
    assert step_law(1e9, 1e11, seq_len=4096).batch_sequences == pytest.approx(
        prior.batch_tokens / 4096)
    rounded = step_law(1e9, 1e11, round_batch=True)
    assert rounded.batch_sequences == 512 and rounded.batch_tokens == 512 * 2048


def test_step_law_intervals_come_from_the_released_bootstrap_fits() -> None:
    """The published constants are the means of the paper's 1,000 bootstrap fits; the
    intervals bound the central 90% of those fits' predictions, and widen as the law is
    carried further from the sizes it was fitted on."""
    from hyperlaw.scaling.steplaw import bootstrap_fits

    fits = bootstrap_fits()
    assert fits.shape == (1000, 5)
    mean = fits.mean(axis=0)
    assert np.exp(mean[0]) == pytest.approx(1.79, abs=0.01)
    assert mean[1:3] == pytest.approx([-0.713, 0.307], abs=0.001)
    assert np.exp(mean[3]) == pytest.approx(0.58, abs=0.005)
    assert mean[4] == pytest.approx(0.571, abs=0.001)
    inside = step_law(5e8, 2e10)
    assert inside.lr_low < inside.lr < inside.lr_high
    assert inside.batch_tokens_low < inside.batch_tokens < inside.batch_tokens_high
    predictions = np.exp(fits[:, 0] + fits[:, 1] * np.log(5e8) + fits[:, 2] * np.log(2e10))
    assert np.mean((predictions >= inside.lr_low) & (predictions <= inside.lr_high)) == \
        pytest.approx(0.9, abs=0.01)
    with pytest.warns(StepLawRangeWarning):
        far = step_law(7e10, 2e12)
    assert far.lr_high / far.lr_low > inside.lr_high / inside.lr_low
    assert step_law(5e8, 2e10, confidence=0.5).lr_high < inside.lr_high
    with pytest.raises(hl.HyperlawError, match="confidence"):
        step_law(5e8, 2e10, confidence=1.0)


def test_step_law_warns_outside_its_range() -> None:
    with pytest.warns(StepLawRangeWarning, match="outside the range"):
        prior = step_law(1e6, 1e8)
    assert not prior.in_range
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        step_law(5e8, 5e10)
        step_law(1e6, 1e8, warn=False)
    with pytest.raises(hl.HyperlawError, match="n_params"):
        step_law(-1, 1e9)


def test_fit_on_the_paper_runs_matches_an_independent_least_squares(paper) -> None:
    law = fit(paper, target="lr", features=("n_params", "n_tokens"), n_bootstrap=200,
              prior=None)
    cell_best = paper.groupby(["n_params", "n_tokens"])["loss"].transform("min")
    kept = paper[paper["loss"] <= cell_best * 1.0025]
    design = np.column_stack([np.ones(len(kept)), np.log(kept["n_params"]),
                              np.log(kept["n_tokens"])])
    expected, *_ = np.linalg.lstsq(design, np.log(kept["lr"]), rcond=None)
    assert law.n_rows == len(kept)
    assert law.intercept == pytest.approx(expected[0], rel=1e-9)
    assert law.exponents == pytest.approx(tuple(expected[1:]), rel=1e-9)
    c = law.coefficients
    assert c["n_params"] < 0 < c["n_tokens"]  # the signs of the published law
    boot = law.bootstrap_coefficients
    assert boot["n_params"] == pytest.approx(c["n_params"], abs=0.05)
    batch = fit(paper, target="batch_size", features=("n_tokens",), n_bootstrap=200)
    assert 0.4 < batch.coefficients["n_tokens"] < 0.8  # published: 0.571


def test_law_from_the_four_smaller_sizes_transfers_to_1b(paper) -> None:
    small = paper[paper["n_params"] < 1e9]
    large = paper[paper["n_params"] > 1e9]
    with pytest.warns(ScalingWarning, match="2.5x"):
        law = fit(small, target="lr", n_bootstrap=200)
    for n_tokens, runs in large.groupby("n_tokens"):
        good = runs[runs["loss"] <= runs["loss"].min() * 1.01]
        predicted = law.predict(n_params=float(runs["n_params"].iloc[0]), n_tokens=n_tokens)
        assert good["lr"].min() <= predicted.value <= good["lr"].max()
        assert predicted.low < predicted.value < predicted.high


def test_prediction_intervals_hold_the_best_run_of_a_larger_model(paper) -> None:
    """Fitted on the four smaller sizes, the 90% prediction interval holds the learning rate
    of the best run in both 1.07e9-parameter cells; the interval of the law itself (resampled
    runs) is far narrower and misses one of them: it is not a statement about a new cell."""
    small = paper[paper["n_params"] < 1e9]
    large = paper[paper["n_params"] > 1e9]
    with pytest.warns(ScalingWarning):
        law = fit(small, target="lr", n_bootstrap=300, prior=None)
        narrow = fit(small, target="lr", interval="confidence", n_bootstrap=300, prior=None)
    assert law.interval == "prediction" and narrow.interval == "confidence"
    missed = 0
    for n_tokens, runs in large.groupby("n_tokens"):
        best_lr = runs.loc[runs["loss"].idxmin(), "lr"]
        cell = {"n_params": float(runs["n_params"].iloc[0]), "n_tokens": n_tokens}
        p, c = law.predict(**cell), narrow.predict(**cell)
        assert p.low <= best_lr <= p.high
        assert p.value == pytest.approx(c.value)  # the same law, a wider interval
        assert p.high / p.low > 1.5 * (c.high / c.low)
        missed += not c.low <= best_lr <= c.high
    assert missed >= 1


def test_the_parabola_vertex_is_exact_and_quiet() -> None:
    """Runs of an exact parabola in log(lr), one rate tried twice with float noise between the
    two copies (as rates enqueued by warm starts come back): they count as one rate, and the
    vertex comes back exactly, without a least-squares fit's poor-conditioning warnings."""
    rows = [{"n_params": n, "n_tokens": 1e9, "lr": lr,
             "loss": 2 + (np.log(lr) - np.log(3e-4 * (n / 1e6) ** -0.5)) ** 2}
            for n in (1e6, 4e6, 1.6e7) for lr in 3e-4 * (n / 1e6) ** -0.5 * np.array(
                [0.5, 0.9, 0.9 * (1 + 1e-15), 1.7])]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        law = fit(rows, target="lr", features=("n_params",), method="parabola", n_bootstrap=20,
                  prior=None)
    assert law.coefficients["n_params"] == pytest.approx(-0.5, abs=1e-9)
    assert law.coefficients["prefactor"] == pytest.approx(3e-4 * 1e6**0.5, rel=1e-9)


def _synthetic(rng: np.random.Generator, noise: float = 0.002) -> list[dict[str, float]]:
    """Loss surfaces with known optima lr* = 0.5 N^-0.3 D^0.2 and B* = 2 D^0.5."""
    rows = []
    for n in (1e5, 4e5, 1.6e6):
        for d in (1e7, 4e7, 1.6e8):
            lr_opt, b_opt = 0.5 * n**-0.3 * d**0.2, 2 * d**0.5
            for lr in lr_opt * 2.0 ** np.arange(-3, 3.5, 0.5):
                for b in b_opt * 2.0 ** np.arange(-2, 2.5, 1.0):
                    loss = 3 + 0.05 * np.log(lr / lr_opt) ** 2 + 0.02 * np.log(b / b_opt) ** 2
                    rows.append({"n_params": n, "n_tokens": d, "lr": lr, "batch_size": b,
                                 "loss": loss * (1 + noise * rng.normal())})
    return rows


def test_fit_recovers_known_exponents_on_a_synthetic_surface() -> None:
    rows = _synthetic(np.random.default_rng(0), noise=0.0)
    for method in ("tolerance", "parabola"):
        law = fit(rows, target="lr", method=method, tolerance=0.001, n_bootstrap=50)
        assert law.coefficients["n_params"] == pytest.approx(-0.3, abs=0.02)
        assert law.coefficients["n_tokens"] == pytest.approx(0.2, abs=0.02)
    batch = fit(rows, target="batch_size", features=("n_tokens",), tolerance=0.001,
                n_bootstrap=50)
    assert batch.coefficients["n_tokens"] == pytest.approx(0.5, abs=0.03)
    assert batch.coefficients["prefactor"] == pytest.approx(2.0, rel=0.3)


def test_intervals_cover_the_truth_under_noise() -> None:
    rows = _synthetic(np.random.default_rng(1), noise=0.003)
    law = fit(rows, target="lr", method="parabola", n_bootstrap=300, confidence=0.95)
    truth = 0.5 * 3e6**-0.3 * 3e8**0.2
    p = law.predict(n_params=3e6, n_tokens=3e8)
    assert p.low <= truth <= p.high
    assert p.value == pytest.approx(truth, rel=0.3)
    grid = law.predict(n_params=np.array([1e5, 1e6]), n_tokens=1e8)
    assert grid.value.shape == (2,) and np.all(grid.low < grid.high)


def test_the_size_exponents_interval_counts_sizes_not_cells() -> None:
    # Each size strays from the law by its own offset, shared by all of its token budgets (as
    # a model's optimum does); 36 cells, but only 6 sizes' worth of evidence about the size
    # exponent. Its bootstrap spread must match how much the fitted exponent really varies
    # from grid to grid; resampling cells as if independent made it about 3x too small.
    rng = np.random.default_rng(7)
    sizes, budgets = np.geomspace(1e6, 1e8, 6), np.geomspace(1e9, 1e11, 6)
    spreads, exponents = [], []
    for replicate in range(30):
        offsets = rng.normal(0.0, 0.25, len(sizes))
        rows = [{"n_params": n, "n_tokens": d, "loss": 1.0,
                 "lr": 2.0 * n**-0.5 * d**0.1 * np.exp(offset + rng.normal(0.0, 0.03))}
                for n, offset in zip(sizes, offsets, strict=True) for d in budgets]
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ScalingWarning)
            law = fit(rows, target="lr", n_bootstrap=200, seed=replicate, prior=None)
        spreads.append(law.bootstrap[:, 1].std())
        exponents.append(law.exponents[0])
    assert 0.6 < np.median(spreads) / np.std(exponents) < 1.6


def test_law_round_trips_through_a_dict() -> None:
    law = fit(_synthetic(np.random.default_rng(2)), target="lr", n_bootstrap=20)
    again = hl.scaling.PowerLaw.from_dict(law.to_dict())
    assert again.predict(n_params=1e6, n_tokens=1e8) == law.predict(n_params=1e6, n_tokens=1e8)
    assert "n_params^" in law.formula()


@pytest.mark.parametrize(("records", "kwargs", "match"), [
    ([], {}, "no records"),
    ({"lr": 1}, {}, "list of dicts"),
    ([{"n_params": 1e6, "n_tokens": 1e8, "loss": 3.0}], {}, "'lr'"),
    ([{"n_params": 1e6, "n_tokens": 1e8, "lr": 1e-3, "loss": 3.0}], {"prior": None}, "cell"),
    ([{"n_params": n, "n_tokens": 1e8, "lr": 1e-3, "loss": 3.0} for n in (1e6, 1e7, 1e8)],
     {"prior": None}, "same 'n_tokens'"),
    ([{"n_params": 1e6, "n_tokens": 1e8, "lr": 1e-3, "loss": 3.0}], {"prior": "chinchilla"},
     "unknown prior"),
    ([{"n_params": 1e6, "n_tokens": 1e8, "lr": 1e-3, "loss": 3.0}], {"prior": {"width": -1}},
     "not features"),
    ([{"n_params": 1e6, "n_tokens": 1e8, "lr": 1e-3, "loss": 3.0}], {"prior_sd": 0.0},
     "prior_sd"),
    ([{"n_params": n, "n_tokens": -1.0, "lr": 1e-3, "loss": 3.0} for n in (1e6, 1e7, 1e8)],
     {}, "must be positive"),
    ([{"n_params": 1e6, "n_tokens": 1e8, "lr": 1e-3, "loss": 3.0}], {"method": "best"},
     "unknown method"),
])
def test_bad_records_raise_a_clear_error(records, kwargs, match) -> None:
    with pytest.raises(ScalingFitError, match=match):
        fit(records, **kwargs)


def test_predict_needs_exactly_the_law_features() -> None:
    law = fit(_synthetic(np.random.default_rng(3)), target="lr", n_bootstrap=10)
    with pytest.raises(ScalingFitError, match="missing"):
        law.predict(n_params=1e6)


def _law_curves(truth, schedules, total, rng, noise=0.002):
    steps = np.arange(0, total, 5)
    return [hl.scaling.LossCurve(lrs=s, steps=steps,
                                 losses=truth.predict(s, steps)
                                 * (1 + noise * rng.normal(size=len(steps))))
            for s in schedules]


def test_annealing_law_predicts_a_wsd_run_from_cosine_and_constant() -> None:
    from hyperlaw.lr_schedules import WSD, Constant, Cosine

    truth = hl.scaling.AnnealingLaw(l0=2.0, a=0.8, alpha=0.5, c=0.3)
    total = 1000
    curves = _law_curves(truth, [Cosine(peak_lr=1e-2, warmup_steps=50, total_steps=total,
                                        min_lr=1e-3),
                                 Constant(peak_lr=1e-2, warmup_steps=50)],
                         total, np.random.default_rng(0))
    law = hl.scaling.AnnealingLaw.fit(curves)
    assert law.alpha == pytest.approx(0.5, abs=0.05) and law.c == pytest.approx(0.3, rel=0.05)
    for fraction in (0.1, 0.2, 0.4):
        wsd = WSD(peak_lr=1e-2, warmup_steps=50, total_steps=total, decay_fraction=fraction)
        assert law.final_loss(wsd, total) == pytest.approx(truth.final_loss(wsd, total),
                                                           rel=0.002)
    # per-step rates work as well as schedule objects
    rates = wsd.values(total)
    assert law.predict(rates, [999])[0] == pytest.approx(law.final_loss(wsd, total))


def test_annealing_law_fitted_past_an_early_transient_with_min_step() -> None:
    """Curves that follow the law only after an early plateau (a bump over the first 30% of
    the steps): fitted from `min_step` on, the law predicts WSD; fitted from the end of
    warmup, the bump pulls it off."""
    from hyperlaw.lr_schedules import WSD, Constant, Cosine

    truth = hl.scaling.AnnealingLaw(l0=2.0, a=0.8, alpha=0.5, c=0.3)
    total = 1000
    curves = _law_curves(truth, [Cosine(peak_lr=1e-2, warmup_steps=50, total_steps=total,
                                        min_lr=1e-3),
                                 Constant(peak_lr=1e-2, warmup_steps=50)],
                         total, np.random.default_rng(3), noise=0.0)
    steps = np.asarray(curves[0].steps)
    bump = 0.4 * np.exp(-0.5 * ((steps - 150) / 60.0) ** 2)  # gone by step 400
    curves = [hl.scaling.LossCurve(c.lrs, c.steps, np.asarray(c.losses) + bump) for c in curves]
    wsd = WSD(peak_lr=1e-2, warmup_steps=50, total_steps=total, decay_fraction=0.2)
    expected = truth.final_loss(wsd, total)
    late = hl.scaling.AnnealingLaw.fit(curves, min_step=500)
    early = hl.scaling.AnnealingLaw.fit(curves)
    assert late.final_loss(wsd, total) == pytest.approx(expected, rel=0.002)
    assert abs(early.final_loss(wsd, total) / expected - 1) > 0.004
    with pytest.raises(hl.scaling.AnnealingFitError, match="points after"):
        hl.scaling.AnnealingLaw.fit(curves, min_step=total)


def test_annealing_areas() -> None:
    from hyperlaw.scaling import lr_areas

    s1, s2 = lr_areas([0.5, 1.0, 1.0, 0.5, 0.5], decay=0.5)
    assert s1.tolist() == [0.5, 1.5, 2.5, 3.0, 3.5]
    assert s2.tolist() == pytest.approx([0.0, 0.0, 0.0, 0.5, 0.75])  # warmup does not anneal


def test_annealing_area_is_the_decayed_sum_of_drops() -> None:
    from hyperlaw.scaling import lr_areas

    rates = [0.2, 0.6, 1.0, 1.0, 0.7, 0.4, 0.4, 0.5, 0.1]  # warmup, cooldown, re-warm, drop
    decay = 0.9
    s1, s2 = lr_areas(rates, decay=decay)
    # by hand: m_i = sum over k <= i of decay^(i-k) * (lr_(k-1) - lr_k), drops after the peak
    drops = [0.0] * 3 + [rates[k - 1] - rates[k] for k in range(3, len(rates))]
    momentum = [sum(decay ** (i - k) * drops[k] for k in range(i + 1)) for i in range(len(rates))]
    assert s1.tolist() == pytest.approx(np.cumsum(rates).tolist())
    assert s2.tolist() == pytest.approx(np.cumsum(momentum).tolist())
    assert s2[4] == pytest.approx(0.3) and s2[5] == pytest.approx(0.3 + 0.9 * 0.3 + 0.3)


@pytest.mark.parametrize("decay", [0.95, 0.999])
def test_annealing_law_recovers_its_parameters_and_decay(decay: float) -> None:
    from hyperlaw.lr_schedules import WSD, Constant, Cosine

    truth = hl.scaling.AnnealingLaw(l0=1.8, a=1.2, alpha=0.4, c=0.5, decay=decay)
    total = 800
    curves = _law_curves(truth, [Cosine(peak_lr=8e-3, warmup_steps=40, total_steps=total,
                                        min_lr=8e-4),
                                 Constant(peak_lr=8e-3, warmup_steps=40)],
                         total, np.random.default_rng(1), noise=0.0)
    law = hl.scaling.AnnealingLaw.fit(curves)  # decay fitted
    assert law.decay == pytest.approx(decay, abs=2e-3)
    assert law.alpha == pytest.approx(0.4, rel=0.02) and law.c == pytest.approx(0.5, rel=0.02)
    for fraction in (0.1, 0.3):
        wsd = WSD(peak_lr=8e-3, warmup_steps=40, total_steps=total, decay_fraction=fraction)
        steps = np.arange(40, total, 10)
        assert law.predict(wsd, steps) == pytest.approx(truth.predict(wsd, steps), rel=1e-3)


def test_annealing_law_keeps_a_given_decay() -> None:
    from hyperlaw.lr_schedules import Constant, Cosine

    truth = hl.scaling.AnnealingLaw(l0=2.0, a=0.8, alpha=0.5, c=0.3, decay=0.99)
    curves = _law_curves(truth, [Cosine(peak_lr=1e-2, warmup_steps=50, total_steps=600),
                                 Constant(peak_lr=1e-2, warmup_steps=50)],
                         600, np.random.default_rng(2), noise=0.0)
    assert hl.scaling.AnnealingLaw.fit(curves, decay=0.99).decay == 0.99
    # a constant run alone has no annealing to tell decay factors apart: the default is kept
    assert hl.scaling.AnnealingLaw.fit(curves[1:]).decay == hl.scaling.annealing.DEFAULT_DECAY
    with pytest.raises(hl.scaling.AnnealingFitError, match="decay"):
        hl.scaling.AnnealingLaw.fit(curves, decay=1.0)


def test_annealing_law_rejects_bad_curves() -> None:
    with pytest.raises(hl.scaling.AnnealingFitError, match="at least one"):
        hl.scaling.AnnealingLaw.fit([])
    with pytest.raises(hl.scaling.AnnealingFitError, match=r"an array of \d+ rates, one per step"):
        hl.scaling.AnnealingLaw.fit([([0.1, 0.1], [0, 5], [3.0, 2.9])])


def test_plot_law_draws_the_law_and_the_cell_optima(paper) -> None:
    law = fit(paper, target="lr", n_bootstrap=50)
    fig = hl.scaling.plot_law(law, paper)
    names = [t.name for t in fig.data]
    assert sum(n.startswith("cell optima") for n in names) == paper["n_tokens"].nunique()
    optima = [y for t in fig.data if t.name.startswith("cell optima") for y in t.y]
    assert sorted(optima) == pytest.approx(sorted(c.value for c in law.cells))
    assert fig.layout.xaxis.type == "log" and "n_params^" in fig.layout.title.text


def _cli(*args: str):
    from click.testing import CliRunner

    from hyperlaw.cli import cli

    return CliRunner().invoke(cli, list(args), catch_exceptions=False)


def test_cli_steplaw_prints_the_published_values() -> None:
    import json

    result = _cli("steplaw", "--params", "1e9", "--tokens", "1e11", "--json")
    assert result.exit_code == 0
    data = json.loads(result.stdout)
    assert _sig3(data["lr"]) == _sig3(1.79 * 1e9**-0.713 * 1e11**0.307)
    assert data["batch_sequences"] == pytest.approx(data["batch_tokens"] / 2048)
    assert data["lr_low"] < data["lr"] < data["lr_high"]
    text = _cli("steplaw", "--params", "1e6", "--tokens", "1e8", "--seq-len", "128")
    assert "bootstrap fits" in text.stdout
    assert "learning rate" in text.stdout and "outside the range" in text.stderr


def test_cli_scaling_fit_and_recommend(paper, tmp_path: Path) -> None:
    import json

    csv = tmp_path / "runs.csv"
    paper.to_csv(csv, index=False)
    out = tmp_path / "laws.json"
    result = _cli("scaling", "fit", "--csv", str(csv), "--target", "lr", "--target",
                  "batch_size", "--bootstrap", "50", "--out", str(out))
    assert result.exit_code == 0, result.output
    assert "lr = " in result.stdout and "batch_size = " in result.stdout
    # where each exponent comes from: the runs measure both, and the prior weighs in
    assert "n_params from the runs (" in result.stdout and "prior -0.713 ± 0.3" in result.stdout
    one_budget = tmp_path / "one_budget.csv"
    paper[paper["n_tokens"] == paper["n_tokens"].max()].to_csv(one_budget, index=False)
    result = _cli("scaling", "fit", "--csv", str(one_budget), "--target", "lr", "--features",
                  "n_params,n_tokens", "--bootstrap", "20")
    assert result.exit_code == 0, result.output
    assert "n_tokens the prior's (prior 0.307" in result.stdout
    result = _cli("scaling", "fit", "--csv", str(csv), "--target", "lr", "--bootstrap", "20",
                  "--prior", "none")
    assert "exponents:" not in result.stdout
    rec = _cli("scaling", "recommend", "--law", str(out), "--params", "1.07e9", "--tokens",
               "2e10", "--json")
    data = json.loads(rec.stdout)
    law = fit(paper, target="lr", n_bootstrap=50)
    assert data["lr"]["value"] == pytest.approx(law.predict(n_params=1.07e9,
                                                            n_tokens=2e10).value)
    assert data["batch_size"]["low"] < data["batch_size"]["value"] < data["batch_size"]["high"]
    empty = f"sqlite:///{tmp_path / 'empty.db'}"
    hl.create_study("unrelated", storage=empty).store.close()  # a database without the study
    missing = _cli("scaling", "recommend", "--storage", empty,
                   "--params", "1e9", "--tokens", "1e10")
    assert missing.exit_code == 1 and "no complete trials" in missing.stderr


def test_steplaw_paper_example_reproduces_the_held_out_check() -> None:
    import sys

    sys.path.insert(0, str(PAPER_RUNS.parents[2]))
    import steplaw_paper

    result = steplaw_paper.main()
    assert result["held_out_inside"]
    assert result["lr"].n_rows > 17


def test_compute_law_gives_deepseeks_published_constants() -> None:
    """lr = 0.3118 C^-0.125 and B = 0.2920 C^0.3271 tokens (arXiv 2401.02954)."""
    from hyperlaw.scaling import compute_law

    for c in (1e17, 1e20, 1e23):
        prior = compute_law(c)
        assert prior.lr == pytest.approx(0.3118 * c**-0.125)
        assert prior.batch_tokens == pytest.approx(0.2920 * c**0.3271)
    # 1000x the compute: the rate falls by 1000^0.125 = 2.37x, the batch grows 1000^0.3271
    small, large = compute_law(1e20), compute_law(1e23)
    assert small.lr / large.lr == pytest.approx(1000**0.125)
    assert large.batch_tokens / small.batch_tokens == pytest.approx(1000**0.3271)
    assert large.batch_sequences(4096) == pytest.approx(large.batch_tokens / 4096)
    with pytest.raises(hl.HyperlawError, match="compute must be a positive number"):
        compute_law(0)


def test_adamw_timescale_round_trips_and_keeps_the_averaging_across_scale() -> None:
    from hyperlaw.scaling import adamw_timescale, weight_decay_for_timescale

    tau = adamw_timescale(lr=3e-4, weight_decay=0.1, batch_tokens=1e6, n_tokens=1e10)
    assert tau == pytest.approx(1e6 / (3e-4 * 0.1 * 1e10))
    assert weight_decay_for_timescale(tau, lr=3e-4, batch_tokens=1e6,
                                      n_tokens=1e10) == pytest.approx(0.1)
    # 10x the tokens at the same lr and batch: a tenth of the weight decay keeps tau
    assert weight_decay_for_timescale(tau, lr=3e-4, batch_tokens=1e6,
                                      n_tokens=1e11) == pytest.approx(0.01)
    with pytest.raises(hl.HyperlawError, match="weight_decay"):
        adamw_timescale(lr=3e-4, weight_decay=0.0, batch_tokens=1e6, n_tokens=1e10)


def test_critical_batch_size_gives_kaplans_published_law() -> None:
    """B_crit = 2e8 / L^(1/0.21) tokens (arXiv 2001.08361, eq. 1.4): about 1.1M tokens at a
    loss of 3 nats, and 2.1x more for every 0.5 nats lower near there."""
    from hyperlaw.scaling import critical_batch_size

    assert critical_batch_size(3.0) == pytest.approx(2e8 / 3.0 ** (1 / 0.21))
    assert critical_batch_size(3.0) == pytest.approx(1.07e6, rel=0.01)
    assert critical_batch_size(2.5) / critical_batch_size(3.0) == pytest.approx(
        1.2 ** (1 / 0.21))
    with pytest.raises(hl.HyperlawError, match="loss must be a positive number"):
        critical_batch_size(-1.0)


def test_batch_tradeoff_doubles_steps_and_data_at_the_critical_batch() -> None:
    from hyperlaw.scaling import batch_tradeoff

    at = batch_tradeoff(1e6, critical_batch=1e6)
    assert (at.steps_factor, at.tokens_factor) == (2.0, 2.0)
    for batch in (1e4, 3e5, 1e7):  # (S/S_min - 1)(E/E_min - 1) = 1 everywhere
        t = batch_tradeoff(batch, critical_batch=1e6)
        assert (t.steps_factor - 1) * (t.tokens_factor - 1) == pytest.approx(1.0)
    small, big = batch_tradeoff(1e4, 1e6), batch_tradeoff(1e8, 1e6)
    assert small.tokens_factor == pytest.approx(1.01) and small.steps_factor == 101.0
    assert big.steps_factor == pytest.approx(1.01) and big.tokens_factor == 101.0


def test_gradient_noise_scale_recovers_the_exact_one_from_batch_gradients() -> None:
    """Least squares on scikit-learn's diabetes data: the exact tr(Σ)/|G|² of the per-example
    gradients at a point, against the estimate from squared norms of batch gradients."""
    from sklearn.datasets import load_diabetes

    from hyperlaw.scaling import gradient_noise_scale

    x, y = load_diabetes(return_X_y=True)
    x = np.hstack([x / x.std(axis=0), np.ones((len(x), 1))])
    y = (y - y.mean()) / y.std()
    w = np.full(x.shape[1], 0.1)
    per_example = (x @ w - y)[:, None] * x  # gradient of each example's squared error / 2
    mean = per_example.mean(axis=0)
    exact = float(np.trace(np.cov(per_example.T, bias=True)) / (mean @ mean))
    rng = np.random.default_rng(0)

    def mean_sq_norm(batch: int) -> float:
        picks = rng.integers(0, len(x), size=(4000, batch))
        grads = per_example[picks].mean(axis=1)
        return float(np.mean(np.sum(grads**2, axis=1)))

    estimate = gradient_noise_scale(4, mean_sq_norm(4), 64, mean_sq_norm(64))
    assert estimate == pytest.approx(exact, rel=0.1)
    assert 1.0 < exact < 1000.0  # a noise scale between the two batch sizes' orders
    with pytest.raises(hl.HyperlawError, match="must fall as the batch grows"):
        gradient_noise_scale(4, 1.0, 64, 2.0)
    with pytest.raises(hl.HyperlawError, match="must exceed small_batch"):
        gradient_noise_scale(64, 1.0, 4, 2.0)


def _flat_then_unknown(noise: float = 0.002) -> list[dict[str, float]]:
    """Cells whose best learning rate does not move with size (lr* = 1e-2 at every N)."""
    rng = np.random.default_rng(5)
    rows = []
    for n in (1e5, 2e5, 4e5):
        for d in (1e7, 4e7):
            for lr in 1e-2 * 2.0 ** np.arange(-3, 3.5, 0.5):
                loss = 3 + 0.05 * np.log(lr / 1e-2) ** 2
                rows.append({"n_params": n, "n_tokens": d, "lr": lr,
                             "loss": loss * (1 + noise * rng.normal())})
    return rows


def test_a_law_with_no_trend_in_size_warns_when_asked_beyond_it() -> None:
    """Small sizes whose best rate is flat cannot say whether it drops at a larger size: the
    prediction there carries a named warning, not only a confident-looking number."""
    from hyperlaw.scaling import ExtrapolationWarning

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ScalingWarning)
        law = fit(_flat_then_unknown(), target="lr", n_bootstrap=200)
    with pytest.warns(ExtrapolationWarning, match=r"no clear trend in 'n_params'"):
        law.predict(n_params=3.2e6, n_tokens=4e7)
    with warnings.catch_warnings():
        warnings.simplefilter("error", ExtrapolationWarning)
        law.predict(n_params=3e5, n_tokens=2e7)  # inside the fitted cells: no warning
        clear = fit(_synthetic(np.random.default_rng(0), noise=0.0), target="lr",
                    n_bootstrap=50)
        clear.predict(n_params=3e6, n_tokens=3e8)  # 2x beyond, with a clear exponent
    with pytest.warns(ExtrapolationWarning, match="beyond the largest fitted"):
        clear.predict(n_params=1e8, n_tokens=1e8)  # 60x beyond


def test_a_law_on_two_sizes_warns_when_asked_beyond_them() -> None:
    """Two sizes fit a power law whatever the optimum does: a prediction beyond them names
    that, however clear the trend between the two; between them it does not warn."""
    from hyperlaw.scaling import ExtrapolationWarning

    rows = [r for r in _synthetic(np.random.default_rng(0), noise=0.0)
            if r["n_params"] in (1e5, 4e5)]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ScalingWarning)
        law = fit(rows, target="lr", n_bootstrap=50)
    with pytest.warns(ExtrapolationWarning, match=r"two values of 'n_params' \(1e\+05, 4e\+05\)"):
        law.predict(n_params=8e5, n_tokens=1e8)
    with warnings.catch_warnings():
        warnings.simplefilter("error", ExtrapolationWarning)
        law.predict(n_params=2e5, n_tokens=1e8)


def _flat_then_dropping(rng: np.random.Generator, sizes: tuple[float, ...],
                        budgets: tuple[float, ...]) -> list[dict[str, float]]:
    """Runs whose best rate follows lr* = 0.3 N^-0.6 D^0.25 up to a size-level offset (the
    scatter of small models' optima), on rates x1.41 apart."""
    offsets = dict(zip(sizes, rng.normal(0.0, 0.3, len(sizes)), strict=True))
    rows = []
    for n in sizes:
        for d in budgets:
            best = 0.3 * n**-0.6 * d**0.25 * np.exp(offsets[n])
            for k in range(-4, 5):
                lr = best * 2 ** (k / 2) * np.exp(rng.normal(0.0, 0.05))
                rows.append({"n_params": n, "n_tokens": d, "lr": lr,
                             "loss": 2.0 + 0.1 * np.log(lr / best) ** 2})
    return rows


def test_an_exponent_the_cells_cannot_measure_is_the_priors() -> None:
    """Two token budgets cannot show a power law in tokens, and one cannot show any trend: the
    exponent is the prior's (its draws spread by prior_sd), the runs set the rest, and the
    cells' optima are reported in the target's own units. Without a prior, two budgets give
    whatever line passes through them, and one budget is an error."""
    rows = _flat_then_dropping(np.random.default_rng(0), (1e6, 4e6, 1.6e7), (1e9, 4e9))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ScalingWarning)
        law = fit(rows, target="lr", n_bootstrap=400)
        alone = fit(rows, target="lr", n_bootstrap=400, prior=None)
    assert law.prior == {"n_params": -0.713, "n_tokens": 0.307}
    assert law.exponents[1] == pytest.approx(0.307)
    assert alone.exponents[1] != pytest.approx(0.307, abs=0.01)
    assert law.bootstrap[:, 2].std() == pytest.approx(0.3, rel=0.15)
    assert law.trend[1] is None and law.trend[0] is not None
    # the optima the fit reports are the target's, not the target divided by the prior's part
    measured = {(c.cell["n_params"], c.cell["n_tokens"]): c.value for c in alone.cells}
    for c in law.cells:
        assert c.value == pytest.approx(measured[(c.cell["n_params"], c.cell["n_tokens"])])
    # predicted beyond the one budget fitted, it says the prior carries the prediction
    one_budget = [r for r in rows if r["n_tokens"] == 1e9]
    law = fit(one_budget, target="lr", n_bootstrap=100)
    assert law.exponents[1] == pytest.approx(0.307)
    with pytest.warns(hl.scaling.ExtrapolationWarning, match="leans on the prior"):
        law.predict(n_params=1e6, n_tokens=4e9)


def test_the_prior_weighs_against_how_well_the_runs_pin_an_exponent() -> None:
    """Many sizes on a clean law: the runs decide (the prior moves the exponent by under
    0.01). Three noisy sizes: the exponent lands between the runs' and the prior's, and its
    interval is narrower than the runs' alone."""
    budgets = (1e9, 3e9, 1e10)
    clean = _flat_then_dropping(np.random.default_rng(1), tuple(np.geomspace(1e6, 1e9, 8)),
                                budgets)
    for r in clean:  # no size-level offsets: every cell on the law
        r["loss"] = 2.0 + 0.1 * np.log(r["lr"] / (0.3 * r["n_params"]**-0.6
                                                  * r["n_tokens"]**0.25)) ** 2
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ScalingWarning)
        law = fit(clean, target="lr", n_bootstrap=300)
        alone = fit(clean, target="lr", n_bootstrap=300, prior=None)
    assert abs(law.exponents[0] - alone.exponents[0]) < 0.01
    assert law.exponents[0] == pytest.approx(-0.6, abs=0.02)
    noisy = _flat_then_dropping(np.random.default_rng(4), (1e6, 3e6, 1e7), budgets)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ScalingWarning)
        law = fit(noisy, target="lr", n_bootstrap=600)
        alone = fit(noisy, target="lr", n_bootstrap=600, prior=None)
    runs, prior = alone.exponents[0], -0.713
    assert min(runs, prior) < law.exponents[0] < max(runs, prior)
    assert abs(law.exponents[0] - runs) > 0.01  # the prior moved it
    assert law.bootstrap[:, 1].std() < alone.bootstrap[:, 1].std()
    again = hl.scaling.PowerLaw.from_dict(law.to_dict())
    assert again.prior == law.prior and again.trend == law.trend
    assert again.predict(n_params=3e7, n_tokens=1e10) == law.predict(n_params=3e7,
                                                                     n_tokens=1e10)


def test_a_target_without_a_published_law_gets_no_prior() -> None:
    rows = _flat_then_dropping(np.random.default_rng(2), (1e6, 4e6, 1.6e7), (1e9, 4e9, 1.6e10))
    for r in rows:
        r["warmup"] = r["lr"]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ScalingWarning)
        law = fit(rows, target="warmup", n_bootstrap=50)
        alone = fit(rows, target="warmup", n_bootstrap=50, prior=None)
    assert law.prior == {} and law.exponents == alone.exponents


def test_the_mup_prior_keeps_the_rate_flat_in_size() -> None:
    """Under μP the optimal rate does not move with width: `prior="mup"` puts the size
    exponent's prior at 0, so two widths give a flat law, and it says nothing of batch size."""
    rows = _flat_then_dropping(np.random.default_rng(5), (1e6, 4e6), (1e9, 4e9, 1.6e10))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ScalingWarning)
        law = fit(rows, target="lr", n_bootstrap=200, prior="mup")
        for r in rows:
            r["batch_size"] = 32.0
        batch = fit(rows, target="batch_size", features=("n_tokens",), n_bootstrap=50,
                    prior="mup")
    assert law.prior == {"n_params": 0.0} and law.exponents[0] == 0.0
    assert law.trend[0] is None and law.trend[1] is not None
    assert batch.prior == {}


def test_a_prior_mapping_serves_each_law_that_has_the_feature() -> None:
    """fit_laws (ScalingStudy, the CLI) fits laws of different features: a prior on the size
    exponent goes to the learning rate's law and leaves the batch size's (in tokens) alone; a
    name no law has is an error."""
    rows = _flat_then_dropping(np.random.default_rng(6), (1e6, 4e6, 1.6e7), (1e9, 4e9, 1.6e10))
    for r in rows:
        r["batch_size"] = 32.0 * (r["n_tokens"] / 1e9) ** 0.5
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ScalingWarning)
        laws = hl.scaling.fit_laws(rows, ("lr", "batch_size"), n_bootstrap=50,
                                   prior={"n_params": -0.5})
    assert laws["lr"].prior == {"n_params": -0.5} and laws["batch_size"].prior == {}
    with pytest.raises(ScalingFitError, match="no law has"):
        hl.scaling.fit_laws(rows, ("lr",), n_bootstrap=10, prior={"width": -1.0})
