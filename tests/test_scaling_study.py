"""ScalingStudy on tiny real training runs: cells in a store, warm starts, a good recommendation."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from sklearn.datasets import load_digits

import hyperlaw as hl
from hyperlaw.cli import cli
from hyperlaw.lr_schedules import WSD
from hyperlaw.samplers import GridSampler

BATCH = 32
LABEL_NOISE = 0.3  # a loss floor, so the learning rate has a valley rather than a cliff


class DigitsMLP:
    """A one-hidden-layer tanh MLP on scikit-learn's digits, trained by SGD with a WSD schedule.

    n_params is the hidden width times 74 (weights and biases of both layers); n_tokens is the
    number of training examples seen. Returns the validation cross-entropy.
    """

    def __init__(self) -> None:
        x, y = load_digits(return_X_y=True)
        order = np.random.default_rng(0).permutation(len(x))
        x = x[order] / 16.0
        y = y[order]
        noisy = np.random.default_rng(1).random(1400) < LABEL_NOISE
        self.x_train = x[:1400]
        self.y_train = np.where(noisy, np.random.default_rng(2).integers(0, 10, 1400), y[:1400])
        self.x_val, self.y_val = x[1400:], y[1400:]

    @staticmethod
    def width(n_params: float) -> int:
        return round(n_params / 74)

    def __call__(self, config: dict, n_params: float, n_tokens: float) -> float:
        rng = np.random.default_rng(0)
        width = self.width(n_params)
        w1 = rng.normal(0, 1 / 8, (64, width))
        b1 = np.zeros(width)
        w2 = rng.normal(0, 1 / np.sqrt(width), (width, 10))
        b2 = np.zeros(10)
        steps = int(n_tokens // BATCH)
        schedule = WSD(peak_lr=config["lr"], warmup_steps=max(1, steps // 10),
                       total_steps=steps, decay_fraction=0.2)
        rates = schedule.values(steps)
        for t in range(steps):
            i = rng.integers(0, len(self.x_train), BATCH)
            xb, yb = self.x_train[i], self.y_train[i]
            h = np.tanh(xb @ w1 + b1)
            g = self._softmax(h @ w2 + b2)
            g[np.arange(BATCH), yb] -= 1
            g /= BATCH
            gh = g @ w2.T * (1 - h * h)
            w2 -= rates[t] * (h.T @ g)
            b2 -= rates[t] * g.sum(0)
            w1 -= rates[t] * (xb.T @ gh)
            b1 -= rates[t] * gh.sum(0)
        p = self._softmax(np.tanh(self.x_val @ w1 + b1) @ w2 + b2)
        loss = -np.log(np.maximum(p[np.arange(len(self.y_val)), self.y_val], 1e-12)).mean()
        return float(loss) if np.isfinite(loss) else 10.0

    @staticmethod
    def _softmax(z: np.ndarray) -> np.ndarray:
        with np.errstate(over="ignore", invalid="ignore"):
            z = z - z.max(axis=1, keepdims=True)
            e = np.exp(z)
            return e / e.sum(axis=1, keepdims=True)


@pytest.fixture(scope="module")
def mlp() -> DigitsMLP:
    return DigitsMLP()


def test_recommendation_lands_in_the_empirically_good_region(mlp: DigitsMLP,
                                                             tmp_path: Path) -> None:
    space = hl.Space({"lr": hl.Float(0.125, 4.0, log=True)})
    cells = [(74 * w, d) for w in (8, 32) for d in (4000, 16000)]
    storage = f"sqlite:///{tmp_path / 'scaling.db'}"
    scaling = hl.scaling.ScalingStudy(mlp, cells=cells, space=space, storage=storage,
                                      n_trials=6, n_trials_warm=4, seed=0,
                                      sampler=GridSampler(resolution=6, shuffle=False),
                                      n_bootstrap=200)
    laws = scaling.run()
    law = laws["lr"]
    assert law.features == ("n_params", "n_tokens")
    # every cell is a study in the store; later cells cost less and start from the law
    studies = [s.name for s in hl.list_studies(storage) if s.name.startswith("scaling/")]
    assert len(studies) == 4
    counts = sorted(len(scaling.cell_study(n, d).trials) for n, d in cells)
    assert counts == [4, 4, 4, 6]
    warm = [t for n, d in cells for t in scaling.cell_study(n, d).trials
            if t.user_attrs.get("scaling.warm_start")]
    assert warm
    # an unseen cell: a sweep there defines the good region (within 5% of its best loss)
    target = (74 * 16, 8000)
    lr = scaling.recommend(*target)["lr"]
    assert lr.low <= lr.value <= lr.high
    sweep = {g: mlp({"lr": g}, *target) for g in 0.125 * 2.0 ** np.arange(0, 5.5, 0.5)}
    best = min(sweep.values())
    good = [g for g, loss in sweep.items() if loss <= best * 1.05]
    assert min(good) <= lr.value <= max(good)
    assert mlp({"lr": lr.value}, *target) <= best * 1.05
    # the same records fit from the store without the training function (the CLI's path)
    again = hl.scaling.fit_laws(hl.scaling.scaling_records(storage, "scaling"), ["lr"],
                                n_bootstrap=200)["lr"]
    assert again.coefficients == pytest.approx(law.coefficients)
    # and the command line gives the same recommendation with its own defaults
    result = CliRunner().invoke(cli, ["scaling", "recommend", "--storage", storage,
                                      "--bootstrap", "200", "--params", str(target[0]),
                                      "--tokens", str(target[1]), "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["lr"]["value"] == pytest.approx(lr.value)
    assert json.loads(result.output)["lr"]["low"] == pytest.approx(lr.low)
    # without the Step Law's exponents as a prior: the runs' own law, in both
    alone = hl.scaling.fit_laws(hl.scaling.scaling_records(storage, "scaling"), ["lr"],
                                n_bootstrap=200, prior=None)["lr"]
    assert alone.prior == {} and law.prior
    result = CliRunner().invoke(cli, ["scaling", "recommend", "--storage", storage,
                                      "--bootstrap", "200", "--params", str(target[0]),
                                      "--tokens", str(target[1]), "--prior", "none", "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["lr"]["value"] == pytest.approx(
        alone.predict(n_params=target[0], n_tokens=target[1]).value)


def test_scaling_study_rejects_bad_setups(mlp: DigitsMLP) -> None:
    space = hl.Space({"lr": hl.Float(0.1, 1.0, log=True)})
    with pytest.raises(hl.HyperlawError, match="targets"):
        hl.scaling.ScalingStudy(mlp, cells=[(100, 100)], space=space, targets=("batch_size",))
    with pytest.raises(hl.HyperlawError, match="no cells"):
        hl.scaling.ScalingStudy(mlp, cells=[], space=space)
    with pytest.raises(hl.HyperlawError, match="positive"):
        hl.scaling.ScalingStudy(mlp, cells=[(0, 100)], space=space)
    with pytest.raises(hl.HyperlawError, match="unknown prior 'chinchilla'"):
        hl.scaling.ScalingStudy(mlp, cells=[(100, 100)], space=space, prior="chinchilla")
    with pytest.raises(hl.HyperlawError, match="prior_sd"):
        hl.scaling.ScalingStudy(mlp, cells=[(100, 100)], space=space, prior_sd=-1.0)
