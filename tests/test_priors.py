"""Priors and warm starts: `prior=` guides the samplers, a wrong prior is overcome, and
`warm_start=` moves a new study's first proposals into the good region of an earlier one."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

import hyperlaw as hl
from hyperlaw.errors import HyperlawError, SpaceError, SpaceMismatchError
from hyperlaw.history.observations import observations
from hyperlaw.samplers import PriorBandSampler
from hyperlaw.samplers.gp import pibo_weight_of
from hyperlaw.samplers.priors import PIBO_BETA, pibo_weight, space_prior
from hyperlaw.schedulers import Hyperband


def bowl(trial: hl.Trial) -> float:
    """Minimum 0 at (0.8, 0.8)."""
    return (trial.params["x"] - 0.8) ** 2 + (trial.params["y"] - 0.8) ** 2


def bowl_space(prior: float | None = None, width: float | None = None) -> dict:
    return {"x": hl.Float(0.0, 1.0, prior=prior, prior_width=width),
            "y": hl.Float(0.0, 1.0, prior=prior, prior_width=width)}


def share_near(values: list[float], centre: float, radius: float = 0.15) -> float:
    return float(np.mean([abs(v - centre) <= radius for v in values]))


# --- the parameters --------------------------------------------------------------------------
def test_prior_is_validated_and_named() -> None:
    with pytest.raises(SpaceError, match=r"parameter 'lr'.*prior=0.5 is outside the bounds"):
        hl.Space({"lr": hl.Float(1e-5, 1e-1, log=True, prior=0.5)})
    with pytest.raises(SpaceError, match=r"parameter 'opt'.*not one of the values.*'adam'"):
        hl.Space({"opt": hl.Choice(["adam", "sgd"], prior="rmsprop")})
    with pytest.raises(SpaceError, match=r"parameter 'n'.*prior_width=0.2 without a prior"):
        hl.Space({"n": hl.Int(1, 8, prior_width=0.2)})
    with pytest.raises(SpaceError, match=r"parameter 'x'.*prior_width=0 must be a number in"):
        hl.Space({"x": hl.Float(0.0, 1.0, prior=0.5, prior_width=0)})
    with pytest.raises(SpaceError, match=r"parameter 'n'.*prior must be an integer"):
        hl.Space({"n": hl.Int(1, 8, prior=2.5)})


def test_prior_round_trips_and_keeps_define_by_run_working() -> None:
    space = hl.Space({"lr": hl.Float(1e-5, 1e-1, log=True, prior=3e-4),
                      "opt": hl.Choice(["adam", "sgd"], prior="sgd", prior_width=0.1)})
    assert hl.Space.from_json(space.to_json()) == space
    assert space != hl.Space({"lr": hl.Float(1e-5, 1e-1, log=True),
                              "opt": hl.Choice(["adam", "sgd"])})
    # an objective that suggests the parameter without the prior matches the declaration
    study = hl.create_study(space=space, sampler="tpe", seed=0)
    study.optimize(lambda t: t.suggest_float("lr", 1e-5, 1e-1, log=True), n_trials=3,
                   show_progress=False)
    assert len(study.trials) == 3


def test_prior_draws_concentrate_near_the_prior() -> None:
    space = hl.Space({"x": hl.Float(0.0, 1.0, prior=0.3, prior_width=0.05),
                      "lr": hl.Float(1e-5, 1e-1, log=True, prior=3e-4, prior_width=0.05),
                      "opt": hl.Choice(["a", "b", "c", "d"], prior="c", prior_width=0.2)})
    prior = space_prior(space)
    assert prior is not None
    draws = space.decode_many(prior.sample(np.random.default_rng(0), 4000))
    # 3 standard deviations hold 99.7% of a normal; uniform draws would put 30% there
    assert share_near([d["x"] for d in draws], 0.3) > 0.95
    assert share_near([math.log10(d["lr"]) for d in draws], math.log10(3e-4), 0.6) > 0.95
    assert abs(np.mean([d["opt"] == "c" for d in draws]) - (0.8 + 0.2 / 4)) < 0.05
    # the density is higher at the prior than away from it
    near, far = prior.log_pdf(space.encode_many([{"x": 0.3, "lr": 3e-4, "opt": "c"},
                                                  {"x": 0.9, "lr": 1e-2, "opt": "a"}]))
    assert near > far


@pytest.mark.parametrize("sampler", ["tpe", "gp", "auto"])
def test_startup_points_follow_the_prior(sampler: str) -> None:
    xs: list[float] = []
    for seed in range(12):
        study = hl.create_study(space=bowl_space(0.2, 0.05), sampler=sampler, seed=seed)
        study.optimize(bowl, n_trials=8, show_progress=False)
        xs += [t.params["x"] for t in study.trials]
    # two thirds of the start is drawn from the prior: about 0.77 near it, 0.3 for uniform
    assert share_near(xs, 0.2) > 0.55


def test_pibo_weight_fades() -> None:
    assert pibo_weight(1) == PIBO_BETA
    assert pibo_weight(100) == pytest.approx(PIBO_BETA / 100)


@pytest.mark.parametrize("sampler,n,tolerance", [("gp", 30, 0.01), ("tpe", 60, 0.05)])
def test_a_misleading_prior_is_overcome(sampler: str, n: int, tolerance: float) -> None:
    for seed in range(3):
        study = hl.create_study(space=bowl_space(0.05, 0.1), sampler=sampler, seed=seed)
        study.optimize(bowl, n_trials=n, show_progress=False)
        assert study.best_value < tolerance, (seed, study.best_params)


def test_the_gp_stops_following_a_prior_its_best_trials_contradict() -> None:
    """πBO's weight is β / n while the best third of the trials lie where the prior says,
    and falls to nothing once they lie elsewhere (a misleading prior, or a warm start from an
    unrelated study)."""
    for prior, low, high in ((0.05, 0.0, 1e-3), (0.78, 1.0, 1.0)):
        for seed in range(3):
            study = hl.create_study(space=bowl_space(prior, 0.1), sampler="gp", seed=seed)
            study.optimize(bowl, n_trials=12, show_progress=False)
            obs = observations(study.space, study._history)
            share = pibo_weight_of(space_prior(study.space), obs) / pibo_weight(12)
            assert low <= share <= high, (prior, seed, share)


def test_a_good_prior_helps_the_gp_early() -> None:
    def best(prior: float | None) -> float:
        values = []
        for seed in range(4):
            study = hl.create_study(space=bowl_space(prior, 0.1 if prior else None),
                                    sampler="gp", seed=seed)
            study.optimize(bowl, n_trials=12, show_progress=False)
            values.append(study.best_value)
        return float(np.median(values))

    assert best(0.78) < best(None)


# --- PriorBand --------------------------------------------------------------------------------
def staged_bowl(trial: hl.Trial) -> float:
    value = bowl(trial)
    for step in range(1, 10):
        trial.report(value + 0.5 / step, step)
        if trial.should_prune():
            raise hl.TrialPruned()
    return value


def test_priorband_mix_moves_away_from_a_misleading_prior() -> None:
    shares = {}
    for name, prior in (("good", 0.8), ("misleading", 0.05)):
        sampler = PriorBandSampler(seed=0)
        study = hl.create_study(space=bowl_space(prior, 0.1), sampler=sampler,
                                scheduler=Hyperband(1, 9, 3), seed=0)
        first, _ = sampler.mix(study.space, study._history)
        assert first == {"uniform": 0.5, "prior": 0.5, "incumbent": 0.0}
        study.optimize(staged_bowl, n_trials=40, show_progress=False)
        mix, incumbent = sampler.mix(study.space, study._history)
        assert incumbent is not None and sum(mix.values()) == pytest.approx(1.0)
        shares[name] = mix["prior"]
    assert shares["misleading"] < 0.05 < shares["good"]


def test_priorband_without_priors_explores_then_exploits() -> None:
    study = hl.create_study(space=bowl_space(), sampler="priorband",
                            scheduler=Hyperband(1, 9, 3), seed=1)
    study.optimize(staged_bowl, n_trials=40, show_progress=False)
    assert study.best_value < 0.05
    with pytest.raises(HyperlawError, match="reduction_factor"):
        PriorBandSampler(reduction_factor=1)


# --- warm starts -------------------------------------------------------------------------------
def test_warm_start_moves_the_first_proposals_into_the_earlier_good_region(
        tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'studies.db'}"
    earlier = hl.create_study("task-1", storage=url, space=bowl_space(), sampler="tpe", seed=0)
    earlier.optimize(bowl, n_trials=40, show_progress=False)
    warm_x: list[float] = []
    cold_x: list[float] = []
    for seed in range(6):
        warm = hl.create_study(f"warm-{seed}", storage=url, space=bowl_space(), sampler="tpe",
                               seed=seed, warm_start=["task-1"])
        prior = warm.space["x"]
        assert prior.has_prior and abs(prior.prior - 0.8) < 0.15
        cold = hl.create_study(f"cold-{seed}", storage=url, space=bowl_space(), sampler="tpe",
                               seed=seed)
        for study, xs in ((warm, warm_x), (cold, cold_x)):
            study.optimize(bowl, n_trials=6, show_progress=False)
            xs += [t.params["x"] for t in study.trials]
        # the earlier best configuration is tried first
        assert warm.trials[0].params == earlier.best_params
    assert share_near(warm_x, 0.8) > share_near(cold_x, 0.8) + 0.2
    # the transferred priors are stored with the study, and it can be continued
    again = hl.create_study("warm-0", storage=url, space=bowl_space(), sampler="tpe",
                            warm_start=["task-1"], load_if_exists=True)
    assert again.space == hl.load_study("warm-0", url).space
    # from another storage, as a (storage, name) pair; the user's own prior wins
    other = hl.create_study(space={"x": hl.Float(0.0, 1.0, prior=0.1), "y": hl.Float(0.0, 1.0)},
                            warm_start=(url, "task-1"))
    assert other.space["x"].prior == 0.1 and abs(other.space["y"].prior - 0.8) < 0.15


def test_warm_start_errors_name_the_problem(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'studies.db'}"
    earlier = hl.create_study("task-1", storage=url, space=bowl_space(), seed=0)
    with pytest.raises(HyperlawError, match="'task-1' has no complete trial"):
        hl.create_study(storage=url, space=bowl_space(), warm_start="task-1")
    earlier.optimize(bowl, n_trials=5, show_progress=False)
    with pytest.raises(SpaceMismatchError, match=r"parameter 'x' is Float\(0.0, 2.0\) here"):
        hl.create_study(storage=url, warm_start=[earlier],
                        space={"x": hl.Float(0.0, 2.0), "y": hl.Float(0.0, 1.0)})
    with pytest.raises(SpaceMismatchError, match="parameter 'z' is not in the space"):
        hl.create_study(storage=url, warm_start=[earlier], space={"z": hl.Float(0.0, 1.0)})
    with pytest.raises(HyperlawError, match="warm_start needs the study's space"):
        hl.create_study(storage=url, warm_start=[earlier])
    with pytest.raises(HyperlawError, match="warm_start got 42"):
        hl.create_study(storage=url, space=bowl_space(), warm_start=[42])
