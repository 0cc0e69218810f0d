"""Learning-rate schedules: shapes, warmup, errors, the search space and the PyTorch adapter."""

from __future__ import annotations

import math
import pickle

import numpy as np
import pytest

import hyperlaw as hl
from hyperlaw.lr_schedules import (
    COOLDOWNS,
    REX,
    WSD,
    Constant,
    Cosine,
    Infinite,
    InverseSqrt,
    Linear,
    Power,
    ScheduleError,
    Tabulated,
    refine_from_grad_norms,
    schedule_from_params,
    schedule_space,
)


def test_warmup_is_linear_and_reaches_the_peak() -> None:
    s = Cosine(peak_lr=1e-2, warmup_steps=10, total_steps=110)
    lrs = s.values(12)
    assert lrs[0] == pytest.approx(1e-3)
    assert np.allclose(np.diff(lrs[:10]), 1e-3)
    assert lrs[9] == pytest.approx(1e-2) and lrs[10] == pytest.approx(1e-2)


def test_decaying_families_match_their_formulas() -> None:
    t = np.arange(0, 101)
    p = t / 100
    assert np.allclose(Linear(peak_lr=2.0, total_steps=100)(t), 2.0 * (1 - p))
    assert np.allclose(Cosine(peak_lr=1.0, total_steps=100, min_lr=0.1)(t),
                       0.1 + 0.45 * (1 + np.cos(np.pi * p)))
    rex = REX(peak_lr=1.0, total_steps=100)(t)
    assert np.allclose(rex, (1 - p) / (0.5 + 0.5 * (1 - p)))
    assert rex[50] == pytest.approx(2 / 3)
    assert np.all(Constant(peak_lr=0.3)(t) == 0.3)
    inv = InverseSqrt(peak_lr=1.0, warmup_steps=100)
    assert inv(400) == pytest.approx(0.5) and inv(100) == pytest.approx(1.0)


@pytest.mark.parametrize("cooldown", COOLDOWNS)
def test_wsd_holds_the_peak_then_cools_down(cooldown: str) -> None:
    s = WSD(peak_lr=1.0, warmup_steps=10, total_steps=100, decay_fraction=0.2,
            cooldown=cooldown, min_lr=0.01)
    lrs = s.values(101)
    assert np.all(lrs[10:81] == 1.0)
    tail = lrs[80:]
    assert np.all(np.diff(tail) <= 1e-12) and tail[-1] == pytest.approx(0.01)
    expected = {"linear": 0.5 * 0.99 + 0.01, "cosine": 0.5 * 0.99 + 0.01,
                "1-sqrt": (1 - math.sqrt(0.5)) * 0.99 + 0.01, "exponential": 0.01**0.5}
    assert lrs[90] == pytest.approx(expected[cooldown])


def test_power_schedule_is_capped_and_decays_with_tokens() -> None:
    s = Power(peak_lr=0.02, a=4.0, b=-0.51, tokens_per_step=1e6, warmup_steps=10)
    assert s(10) == pytest.approx(min(0.02, 4.0 * (1e7) ** -0.51))
    assert s(1000) == pytest.approx(4.0 * (1e9) ** -0.51)
    assert s(5) == pytest.approx(s(10) * 6 / 10)
    capped = Power(peak_lr=1e-4, a=4.0, b=-0.51, tokens_per_step=1e6)
    assert capped(10) == 1e-4
    decayed = Power(peak_lr=0.02, tokens_per_step=1e6, total_steps=100, decay_steps=10)
    assert decayed(100) == pytest.approx(0.0) and decayed(89) == pytest.approx(
        4.0 * (8.9e7) ** -0.51)


def test_infinite_schedule_anneals_on_demand() -> None:
    s = Infinite(peak_lr=1.0, constant_lr=0.3, warmup_steps=10, cooldown_steps=20, min_lr=0.0)
    assert s(10) == pytest.approx(1.0) and s(30) == pytest.approx(0.3)
    assert s(10_000) == pytest.approx(0.3)  # constant forever without an anneal
    annealed = s.anneal_at(1000, anneal_steps=100)
    assert annealed(999) == pytest.approx(0.3)
    assert annealed(1000 + 20) == pytest.approx(0.3 * math.exp(-1))
    linear = Infinite(peak_lr=1.0, constant_lr=0.3, anneal="linear").anneal_at(50, 10)
    assert linear(55) == pytest.approx(0.15) and linear(70) == pytest.approx(0.0)


def test_refined_schedule_from_constant_norms_is_linear_decay() -> None:
    s = refine_from_grad_norms(np.ones(11), peak_lr=1.0)
    assert np.allclose(s.values(11), 1 - np.arange(11) / 10)


def test_refined_schedule_matches_the_weight_formula() -> None:
    rng = np.random.default_rng(0)
    norms = np.exp(rng.normal(size=40)) + np.linspace(2.0, 0.5, 40)
    for norm, power in (("l2", 2), ("l1", 1)):
        s = refine_from_grad_norms(norms, peak_lr=3e-3, smoothing=0.0, norm=norm)
        weights = [norms[t] ** -power * sum(norms[p] ** -power for p in range(t + 1, 40))
                   for t in range(40)]
        assert np.allclose(s.values(40), 3e-3 * np.array(weights) / max(weights))
    assert s(500) == 0.0  # past the table: its last value


def test_refined_schedule_smooths_spikes_away() -> None:
    norms = np.ones(100)
    norms[40] = 50.0  # one spike
    s = refine_from_grad_norms(norms, peak_lr=1.0)
    assert np.allclose(s.values(100), 1 - np.arange(100) / 99)


def test_tabulated_and_to_dict() -> None:
    s = Tabulated.from_rates([0.1, 0.2, 0.05])
    assert s.peak_lr == 0.2 and s(1) == 0.2 and s(10) == 0.05
    d = WSD(peak_lr=1.0, total_steps=10).to_dict()
    assert d["family"] == "wsd" and d["decay_fraction"] == 0.1


@pytest.mark.parametrize("make", [
    lambda: Cosine(peak_lr=0.0, total_steps=10),
    lambda: Cosine(peak_lr=1.0, total_steps=10, warmup_steps=20),
    lambda: Cosine(peak_lr=1.0, total_steps=10, min_lr=2.0),
    lambda: WSD(peak_lr=1.0, total_steps=10, decay_fraction=1.5),
    lambda: WSD(peak_lr=1.0, total_steps=10, cooldown="step"),
    lambda: Power(peak_lr=1.0, b=0.5),
    lambda: Infinite(peak_lr=1.0, constant_lr=2.0),
    lambda: refine_from_grad_norms([1.0, 0.0, 1.0], peak_lr=1.0),
])
def test_bad_parameters_raise_a_hyperlaw_error(make) -> None:
    with pytest.raises(ScheduleError) as err:
        make()
    assert isinstance(err.value, hl.HyperlawError)


def test_negative_step_is_rejected() -> None:
    with pytest.raises(ScheduleError, match="steps"):
        Constant(peak_lr=1.0)(-1)


def test_schedule_space_is_conditional_on_the_family() -> None:
    space = hl.Space({"lr": hl.Float(1e-4, 1e-1, log=True), **schedule_space()})
    rng = np.random.default_rng(0)
    seen = set()
    for _ in range(200):
        params = space.sample(rng)
        family = params["schedule"]
        seen.add(family)
        assert ("schedule.decay_fraction" in params) == (family in ("wsd", "power",
                                                                      "infinite"))
        assert ("schedule.min_lr_ratio" in params) == (family in ("linear", "cosine", "wsd",
                                                                    "rex", "power", "infinite"))
        assert ("schedule.power_a" in params) == (family == "power")
        assert ("schedule.constant_ratio" in params) == (family == "infinite")
        s = schedule_from_params(params, peak_lr=params["lr"], total_steps=1000)
        assert s.family == family
        lrs = s.values(1000)
        assert lrs.max() == pytest.approx(params["lr"]) and np.all(lrs >= 0)
        if family in ("power", "infinite"):  # the last phase anneals to the minimum rate
            assert s(1000) == pytest.approx(params["lr"] * params["schedule.min_lr_ratio"],
                                            abs=1e-12)
    assert len(seen) == 8


def test_schedule_space_works_in_a_study() -> None:
    space = hl.Space(schedule_space(("cosine", "wsd")))
    study = hl.create_study(space=space, sampler="random", seed=1)

    def objective(trial: hl.Trial) -> float:
        s = schedule_from_params(trial.params, peak_lr=1e-3, total_steps=100)
        return float(s.values(100).sum())

    study.optimize(objective, n_trials=8)
    assert {t.params["schedule"] for t in study.trials} == {"cosine", "wsd"}


def test_schedule_space_rejects_unknown_families() -> None:
    with pytest.raises(ScheduleError, match="choose among"):
        schedule_space(("cosine", "cyclic"))
    with pytest.raises(ScheduleError, match="schedule_space"):
        schedule_from_params({}, peak_lr=1.0, total_steps=10)


def test_torch_adapter_drives_an_optimizer() -> None:
    import torch

    from hyperlaw.lr_schedules.torch import LRMultiplier, lr_scheduler

    schedule = WSD(peak_lr=0.1, warmup_steps=3, total_steps=20, decay_fraction=0.5)
    weight = torch.nn.Parameter(torch.zeros(2))
    optimizer = torch.optim.SGD([weight], lr=123.0)
    scheduler = lr_scheduler(optimizer, schedule)
    seen = []
    for _ in range(20):
        seen.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        scheduler.step()
    assert np.allclose(seen, schedule.values(20))
    assert pickle.loads(pickle.dumps(LRMultiplier(schedule)))(5) == pytest.approx(1.0)


def test_importing_hyperlaw_schedules_does_not_import_torch() -> None:
    import subprocess
    import sys

    code = ("import sys, hyperlaw, hyperlaw.lr_schedules, hyperlaw.lr_schedules.torch, "
            "hyperlaw.scaling; print('torch' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_the_old_package_name_still_imports_with_a_deprecation_warning() -> None:
    """`hyperlaw.schedules` (one letter from `hyperlaw.schedulers`) became
    `hyperlaw.lr_schedules`; the old name and its submodules are the same modules, and warn."""
    import subprocess
    import sys

    code = """
import warnings
warnings.simplefilter("error")
import hyperlaw as hl
import hyperlaw.lr_schedules.torch
warnings.simplefilter("default")
with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter("always")
    import hyperlaw.schedules.torch
    from hyperlaw.schedules import WSD
    from hyperlaw.schedules.families import Cosine
    from hyperlaw.schedules.base import Schedule
assert [w.category for w in caught] == [DeprecationWarning], caught
assert "hyperlaw.lr_schedules" in str(caught[0].message)
assert WSD is hl.lr_schedules.WSD and Cosine is hl.lr_schedules.Cosine
assert Schedule is hl.lr_schedules.Schedule and hl.schedules.WSD is WSD
assert hyperlaw.schedules.torch is hyperlaw.lr_schedules.torch
assert hl.samplers.TPESampler and hl.schedulers.ASHA
"""
    subprocess.run([sys.executable, "-c", code], check=True)
