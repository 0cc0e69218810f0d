"""Model soups on real fine-tunes: a linear classifier pre-trained on part of the digits and
fine-tuned on the rest by a real study whose trials checkpoint with TrainingLoop."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest
import torch
from sklearn.datasets import load_digits

import hyperlaw as hl
from hyperlaw.errors import HyperlawError
from hyperlaw.integrations.torch import TrainingLoop
from hyperlaw.lineage import recorded

torch.set_num_threads(1)
X, Y = load_digits(return_X_y=True)
X_T = torch.tensor(X / 16.0, dtype=torch.float32)
Y_T = torch.tensor(Y)
PRE, TRAIN, VALID = slice(0, 900), slice(900, 1300), slice(1300, 1797)


def loss_of(weights: Mapping[str, Any], part: slice = VALID) -> float:
    model = torch.nn.Linear(64, 10)
    model.load_state_dict(dict(weights))
    with torch.no_grad():
        return float(torch.nn.functional.cross_entropy(model(X_T[part]), Y_T[part]))


def train(model: torch.nn.Module, optimizer: torch.optim.Optimizer, part: slice) -> None:
    for batch in torch.randperm(part.stop - part.start).split(100):
        index = batch + part.start
        optimizer.zero_grad()
        torch.nn.functional.cross_entropy(model(X_T[index]), Y_T[index]).backward()
        optimizer.step()


@pytest.fixture(scope="module")
def pretrained() -> dict[str, torch.Tensor]:
    torch.manual_seed(0)
    model = torch.nn.Linear(64, 10)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.5)
    for _ in range(3):
        train(model, optimizer, PRE)
    return {k: v.clone() for k, v in model.state_dict().items()}


def fine_tunes(tmp_path: Path, start: Mapping[str, torch.Tensor], n: int = 6) -> hl.Study:
    def objective(trial: hl.Trial) -> float:
        torch.manual_seed(trial.params["seed"])
        model = torch.nn.Linear(64, 10)
        model.load_state_dict(dict(start))
        optimizer = torch.optim.SGD(model.parameters(), lr=trial.params["lr"])
        loop = TrainingLoop(trial, model, optimizer)
        for epoch in loop.steps(3):
            train(model, optimizer, TRAIN)
            loop.report(loss_of(model.state_dict()), epoch)
        return loss_of(model.state_dict())

    study = hl.create_study(storage=f"sqlite:///{tmp_path / 'soup.db'}", seed=0,
                            space={"lr": hl.Float(0.05, 1.0, log=True),
                                   "seed": hl.Int(0, 1000)}, sampler="random")
    study.optimize(objective, n_trials=n, show_progress=False)
    return study


def weights_of(study: hl.Study, number: int) -> Mapping[str, torch.Tensor]:
    state = study.checkpoints.load(recorded(study.trials[number])[-1])
    return state["model"]  # type: ignore[no-any-return]


def test_a_greedy_soup_starts_from_the_best_and_never_scores_worse(
        tmp_path: Path, pretrained: dict[str, torch.Tensor]) -> None:
    study = fine_tunes(tmp_path, pretrained)
    soup = study.soup(loss_of, top_k=4, method="greedy")
    ranked = sorted((t for t in study.trials), key=lambda t: t.value)
    assert soup.candidates == tuple(t.number for t in ranked[:4])
    assert soup.ingredients[0] == study.best_trial.number
    assert set(soup.ingredients) <= set(soup.candidates)
    assert soup.best_single == pytest.approx(loss_of(weights_of(study, ranked[0].number)))
    assert soup.value <= soup.best_single
    assert soup.value == pytest.approx(loss_of(soup.weights))
    # the soup is the mean of its ingredients' weights
    for key, value in soup.weights.items():
        mean = sum(weights_of(study, n)[key] for n in soup.ingredients) / len(soup.ingredients)
        assert torch.allclose(value, mean)
    # recorded in the sibling study with its weights, the tuning study left as it was
    recorded_soup = hl.load_study(f"{study.name}.soups", storage=study.store.url)
    trial = recorded_soup.trials[soup.trial]
    assert trial.value == pytest.approx(soup.value)
    assert trial.user_attrs["ingredients"] == list(soup.ingredients)
    assert trial.user_attrs["method"] == "greedy"
    saved = recorded_soup.checkpoints.load(recorded(trial)[-1])
    assert all(torch.equal(saved[k], v) for k, v in soup.weights.items())
    assert len(study.trials) == 6


def test_a_uniform_soup_averages_all_top_k(tmp_path: Path,
                                           pretrained: dict[str, torch.Tensor]) -> None:
    study = fine_tunes(tmp_path, pretrained, n=3)
    soup = study.soup(loss_of, top_k=3, method="uniform")
    assert sorted(soup.ingredients) == [0, 1, 2]
    mean = sum(weights_of(study, n)["weight"] for n in range(3)) / 3
    assert torch.allclose(soup.weights["weight"], mean)


def test_soups_of_different_models_or_without_weights_are_refused(tmp_path: Path) -> None:
    study = hl.create_study(space={"width": hl.Choice([4, 8])})
    with pytest.raises(HyperlawError, match="no complete trial with a checkpoint"):
        study.soup(lambda w: 0.0)
    for width in (4, 8):
        trial = study.ask({"width": width})
        trial.report(1.0, 0, checkpoint={"w": torch.zeros(width)})
        study.tell(trial, 1.0 / width)
    with pytest.raises(HyperlawError, match=r"trial #0's 'w' has shape \(4,\), trial #1's"):
        study.soup(lambda w: 0.0, top_k=2)
    with pytest.raises(HyperlawError, match="'uniform' or 'greedy'"):
        study.soup(lambda w: 0.0, method="best")  # type: ignore[arg-type]
