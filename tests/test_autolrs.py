"""AutoLRS: the exponential forecast, the spline denoising, and real runs on a tiny model."""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator

import numpy as np
import pytest
import torch
from sklearn.datasets import load_digits

import hyperlaw as hl
from hyperlaw.curves.exponential import TRAIN_DENOISE, VAL_DENOISE, denoise, fit_exponential
from hyperlaw.errors import HyperlawError
from hyperlaw.integrations.autolrs import DIVERGED_LOSS, AutoLRS, AutoLRSError
from hyperlaw.lr_schedules import Tabulated


@pytest.fixture(autouse=True)
def one_torch_thread() -> Iterator[None]:
    """Tiny models train fastest on one thread, above all on busy cores."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


# --- the forecast model ---------------------------------------------------------------------
@pytest.mark.parametrize(("a", "b", "c"), [(2.0, -0.03, 0.5), (-1.0, -0.05, 1.0)])
def test_fit_exponential_recovers_a_noiseless_curve(a: float, b: float, c: float) -> None:
    t = np.arange(100.0)
    fit = fit_exponential(t, a * np.exp(b * t) + c)
    assert fit.a == pytest.approx(a, rel=1e-4)
    assert fit.b == pytest.approx(b, rel=1e-4)
    assert fit.c == pytest.approx(c, rel=1e-4, abs=1e-5)
    assert fit.predict(1000) == pytest.approx(a * math.exp(b * 1000) + c, abs=1e-4)
    points = np.array([0.0, 10.0])
    assert fit.predict(points) == pytest.approx(a * np.exp(b * points) + c, abs=1e-5)


def test_fit_exponential_on_a_noisy_curve_and_bad_input() -> None:
    t = np.arange(100.0)
    noisy = 2.0 * np.exp(-0.03 * t) + 0.5 + np.random.default_rng(0).normal(0, 0.02, 100)
    fit = fit_exponential(t, noisy)
    assert fit.a == pytest.approx(2.0, rel=0.05)
    assert fit.b == pytest.approx(-0.03, rel=0.1)
    assert fit.c == pytest.approx(0.5, abs=0.03)
    assert fit.b < 0
    with pytest.raises(HyperlawError, match="at least 3 points"):
        fit_exponential([0, 1], [1.0, 0.9])
    with pytest.raises(HyperlawError, match="finite"):
        fit_exponential([0, 1, 2], [1.0, float("nan"), 0.8])
    with pytest.raises(HyperlawError, match="differ in length"):
        fit_exponential([0, 1, 2], [1.0, 0.9])


def test_denoise_drops_an_injected_spike() -> None:
    t = np.arange(100.0)
    losses = 2.0 * np.exp(-0.03 * t) + 0.5 + np.random.default_rng(1).normal(0, 0.01, 100)
    losses[20] += 0.5
    kept = denoise(losses, **TRAIN_DENOISE)
    assert not kept[20]
    assert kept[50:].all()  # only the first half may lose points
    assert (~kept).sum() <= 10 * 3  # at most 3 % of the points per pass
    clean = fit_exponential(t[kept], losses[kept])
    assert clean.c == pytest.approx(0.5, abs=0.03)

    val = 1.0 + np.exp(-np.arange(16.0) / 5) + np.random.default_rng(2).normal(0, 0.005, 16)
    val[12] += 0.3
    kept = denoise(val, **VAL_DENOISE)
    assert np.flatnonzero(~kept).tolist() == [12]
    assert denoise(val[:4], **VAL_DENOISE).all()  # too short to denoise


# --- real training runs ---------------------------------------------------------------------
def digits_classifier(seed: int) -> tuple[torch.nn.Module, torch.optim.Optimizer,
                                          Callable[[], float]]:
    """Softmax regression on sklearn's digits with SGD + momentum; batches from torch's RNG."""
    torch.manual_seed(seed)
    x, y = load_digits(return_X_y=True)
    inputs = torch.tensor(x / 16.0, dtype=torch.float32)
    labels = torch.tensor(y)
    model = torch.nn.Linear(64, 10)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)

    def train_step() -> float:
        batch = torch.randint(0, len(inputs), (128,))
        optimizer.zero_grad()
        loss = torch.nn.functional.cross_entropy(model(inputs[batch]), labels[batch])
        loss.backward()
        optimizer.step()
        return loss.item()

    return model, optimizer, train_step


def test_autolrs_trains_and_records_every_candidate() -> None:
    model, optimizer, train_step = digits_classifier(0)
    study = hl.create_study()
    search = AutoLRS(model, optimizer, train_step, min_lr=1e-3, max_lr=1.0, tau=20,
                     tau_prime=4, k=4, study=study, seed=0)
    stages = search.run(300)

    # tau' and tau double after each stage: 4/20, 8/40, 16/80, 32/160
    assert [(s.start_step, s.length, s.tau_prime) for s in stages] == [
        (0, 20, 4), (20, 40, 8), (60, 80, 16), (140, 160, 32)]
    assert search.schedule == [(s.start_step, s.lr) for s in stages]
    assert search.steps_used == 300
    assert search.exploration_steps == 4 * (4 + 8 + 16 + 32)
    assert search.compute_steps == 300 + search.exploration_steps
    assert all(1e-3 <= c.lr <= 1.0 for s in stages for c in s.candidates)
    assert all(len({c.lr for c in s.candidates}) == 4 for s in stages)

    trials = study.trials
    assert len(trials) == 4 * len(stages)
    for stage in stages:
        mine = [t for t in trials if t.user_attrs["stage"] == stage.index]
        assert len(mine) == 4
        chosen = [t for t in mine if t.user_attrs["chosen"]]
        assert len(chosen) == 1
        assert chosen[0].params == {"lr": stage.lr}
        assert chosen[0].number == stage.candidates[stage.chosen].trial_number
        best = min(c.predicted_loss for c in stage.candidates)
        assert stage.candidates[stage.chosen].predicted_loss == best
        for trial, candidate in zip(mine, stage.candidates, strict=True):
            assert trial.state == hl.TrialState.COMPLETE
            assert trial.value == candidate.predicted_loss
            assert trial.user_attrs["predicted_loss"] == candidate.predicted_loss
            assert sorted(trial.intermediate) == [stage.start_step + s for s in candidate.steps]
        # restores are exact: the kept run repeats the chosen candidate's steps bit for bit
        chosen_candidate = stage.candidates[stage.chosen]
        assert stage.losses[:stage.tau_prime] == chosen_candidate.losses

    losses = search.losses
    assert len(losses) == 300
    assert losses[-20:].mean() < 0.3 * losses[:5].mean()

    schedule = search.as_schedule()
    assert isinstance(schedule, Tabulated)
    assert np.allclose(schedule.values(300), np.repeat([s.lr for s in stages],
                                                       [s.length for s in stages]))


def test_diverging_candidates_validation_switch_and_compute_budget() -> None:
    torch.manual_seed(1)
    x, y = load_digits(return_X_y=True)
    inputs = torch.tensor(x, dtype=torch.float32)  # raw pixels: large rates diverge
    targets = torch.tensor(y, dtype=torch.float32)
    model = torch.nn.Linear(64, 1)
    optimizer = torch.optim.SGD(model.parameters(), lr=1e-4)

    def mse() -> torch.Tensor:
        batch = torch.randint(0, len(inputs), (128,))
        return torch.nn.functional.mse_loss(model(inputs[batch]).squeeze(1), targets[batch])

    def train_step() -> float:
        optimizer.zero_grad()
        loss = mse()
        loss.backward()
        optimizer.step()
        return loss.item()

    def val_loss() -> float:
        with torch.no_grad():
            return torch.nn.functional.mse_loss(model(inputs[:200]).squeeze(1),
                                                targets[:200]).item()

    study = hl.create_study()
    search = AutoLRS(model, optimizer, train_step, min_lr=1e-6, max_lr=1.0, tau=20,
                     tau_prime=4, k=4, tau_max=80, val_loss=val_loss, study=study)
    stages = search.run(200, budget="compute")
    assert search.compute_steps == 200

    candidates = [c for s in stages for c in s.candidates]
    diverged = [c for c in candidates if c.predicted_loss == DIVERGED_LOSS]
    assert diverged and all(not math.isfinite(c.losses[-1]) for c in diverged)
    assert any(c.cost < s.tau_prime for s in stages for c in s.candidates if c in diverged)
    assert all(s.candidates[s.chosen].predicted_loss < DIVERGED_LOSS for s in stages)
    assert all(math.isfinite(v) for v in search.losses)
    assert search.losses[-10:].mean() < 0.5 * search.losses[:3].mean()
    for trial in study.trials:  # diverged candidates are complete trials valued 1e6
        assert trial.state == hl.TrialState.COMPLETE
        assert all(math.isfinite(v) for v in trial.intermediate.values())
    assert sum(t.value == DIVERGED_LOSS for t in study.trials) == len(diverged)

    # tau' reaches tau_max / 10 = 8 after stage 0; then validation losses every step
    assert {c.metric for c in stages[0].candidates} == {"train"}
    assert {c.metric for s in stages[1:] for c in s.candidates} == {"val"}
    finite = [c for c in stages[1].candidates if c not in diverged]
    assert finite and all(c.steps == tuple(range(1, 9)) for c in finite)


def test_bad_settings_are_explained() -> None:
    model, optimizer, train_step = digits_classifier(0)
    with pytest.raises(AutoLRSError, match="min_lr < max_lr"):
        AutoLRS(model, optimizer, train_step, min_lr=0.1, max_lr=0.1)
    with pytest.raises(AutoLRSError, match="tau_prime <= tau"):
        AutoLRS(model, optimizer, train_step, min_lr=1e-3, max_lr=1.0, tau=10, tau_prime=20)
    with pytest.raises(AutoLRSError, match="direction='minimize'"):
        AutoLRS(model, optimizer, train_step, min_lr=1e-3, max_lr=1.0,
                study=hl.create_study(direction="maximize"))
    search = AutoLRS(model, optimizer, train_step, min_lr=1e-3, max_lr=1.0, tau=20,
                     tau_prime=4, k=4)
    with pytest.raises(AutoLRSError, match="too small for one search stage"):
        search.run(10, budget="compute")
    with pytest.raises(AutoLRSError, match="call run"):
        search.as_schedule()
