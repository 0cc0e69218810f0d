"""Model soups (Wortsman et al. 2022): average the weights of the best fine-tuned trials.

Fine-tunes of one pre-trained model often lie in one basin of the loss, so the average of
their weights can beat the best of them, at the inference cost of one model. The ingredients
are the newest checkpoints of the study's best complete trials:

- ``"uniform"``: the average of all `top_k`;
- ``"greedy"``: the trials sorted best first; starting from the best, each next one is added
  when the soup with it scores no worse on held-out data than the soup without it (the
  paper's Algorithm 1; the authors' code asks for a strict improvement).

`evaluate(weights)` is the user's held-out score of a set of weights (validation data, never
the test split), minimized or maximized as the study's objective. The soup is recorded as a
trial of the sibling study ``<name>.soups`` (its ingredients and method in `user_attrs`, its
weights as its checkpoint), so the tuning history stays as it was.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

from hyperlaw.errors import HyperlawError
from hyperlaw.lineage import recorded
from hyperlaw.trial import TrialRecord, TrialState

if TYPE_CHECKING:
    from hyperlaw.study import Study

SoupMethod = Literal["uniform", "greedy"]
Weights = Mapping[str, Any]


@dataclass(frozen=True)
class Soup:
    """A model soup: its ingredients (trial numbers), its held-out score, the best single
    ingredient's score under the same `evaluate`, and the averaged weights."""

    method: str
    ingredients: tuple[int, ...]
    value: float
    best_single: float
    candidates: tuple[int, ...]
    trial: int
    weights: Weights = field(repr=False)


def default_weights(state: Any) -> Weights:
    """The weights in a checkpoint's state: a state dict, a `TrainingLoop` checkpoint's
    ``"model"`` entry, or a Lightning checkpoint file's ``"state_dict"``."""
    if isinstance(state, str | os.PathLike) and os.path.isfile(state):
        import torch

        state = torch.load(state, map_location="cpu", weights_only=False)
    if isinstance(state, Mapping):
        for key in ("model", "state_dict"):
            if isinstance(state.get(key), Mapping):
                return state[key]
        return state
    raise HyperlawError(
        f"a checkpoint holds a {type(state).__name__}, not weights; pass "
        "weights=lambda state: ... to study.soup to say where its state dict is")


def average(ingredients: Sequence[Weights]) -> dict[str, Any]:
    """The element-wise mean of state dicts with the same keys and shapes; entries that are
    not floating point (e.g. batch-norm step counters) are taken from the first."""
    first = ingredients[0]
    soup: dict[str, Any] = {}
    for key, value in first.items():
        if _floating(value):
            total = value * 1.0
            for other in ingredients[1:]:
                total = total + other[key]
            soup[key] = total / len(ingredients)
        else:
            soup[key] = value
    return soup


def _floating(value: Any) -> bool:
    if hasattr(value, "is_floating_point"):  # a torch tensor
        return bool(value.is_floating_point())
    return isinstance(value, np.ndarray | float) and np.issubdtype(np.asarray(value).dtype,
                                                                   np.floating)


def _check_compatible(ingredients: Sequence[Weights], numbers: Sequence[int]) -> None:
    keys = set(ingredients[0])
    shapes = {k: tuple(getattr(v, "shape", ())) for k, v in ingredients[0].items()}
    for weights, number in zip(ingredients[1:], numbers[1:], strict=True):
        if set(weights) != keys:
            raise HyperlawError(
                f"trial #{number}'s weights have other entries than trial #{numbers[0]}'s "
                f"(differing: {sorted(set(weights) ^ keys)[:5]}); a soup averages fine-tunes "
                "of one model: soup trials of one architecture")
        for key, value in weights.items():
            if tuple(getattr(value, "shape", ())) != shapes[key]:
                raise HyperlawError(
                    f"trial #{number}'s {key!r} has shape {tuple(value.shape)}, trial "
                    f"#{numbers[0]}'s {shapes[key]}; a soup averages fine-tunes of one model")


def make_soup(study: Study, evaluate: Callable[[Weights], float], top_k: int = 5,
              method: SoupMethod = "greedy",
              weights: Callable[[Any], Weights] = default_weights) -> Soup:
    """`Study.soup`: cook, score and record a soup of the study's best trials."""
    if method not in ("uniform", "greedy"):
        raise HyperlawError(f"soup method must be 'uniform' or 'greedy', got {method!r}")
    if isinstance(top_k, bool) or not isinstance(top_k, int) or top_k < 1:
        raise HyperlawError(f"top_k must be an int >= 1, got {top_k!r}")
    if len(study.directions) > 1:
        raise HyperlawError("soup needs a study with one objective; this one has "
                            f"{len(study.directions)}")
    maximize = study.direction == "maximize"
    sign = -1.0 if maximize else 1.0
    finished = [t for t in study.get_trials([TrialState.COMPLETE])
                if t.value is not None and recorded(t)]
    if not finished:
        raise HyperlawError(
            f"study {study.name!r} has no complete trial with a checkpoint; save the weights "
            "with trial.report(..., checkpoint=...) or TrainingLoop, then soup them")
    finished.sort(key=lambda t: sign * float(t.value))  # type: ignore[arg-type]
    chosen = finished[:top_k]
    numbers = [t.number for t in chosen]
    ingredients = [weights(_newest_state(study, t)) for t in chosen]
    _check_compatible(ingredients, numbers)

    def score(mix: Sequence[int]) -> float:
        value = float(evaluate(average([ingredients[i] for i in mix])))
        if not np.isfinite(value):
            raise HyperlawError(f"evaluate returned {value} for the soup of trials "
                                f"{[numbers[i] for i in mix]}; it must return a finite score")
        return value

    best_single = score([0])
    if method == "uniform":
        kept, value = list(range(len(chosen))), score(range(len(chosen)))
    else:
        kept, value = [0], best_single
        for i in range(1, len(chosen)):
            trial_value = score([*kept, i])
            if sign * trial_value <= sign * value:  # no worse: keep it
                kept, value = [*kept, i], trial_value
    soup_weights = average([ingredients[i] for i in kept])
    number = _record(study, method, [numbers[i] for i in kept], numbers, value, best_single,
                     soup_weights)
    return Soup(method, tuple(numbers[i] for i in kept), value, best_single, tuple(numbers),
                number, soup_weights)


def _newest_state(study: Study, record: TrialRecord) -> Any:
    return study.checkpoints.load(recorded(record)[-1])


def _record(study: Study, method: str, ingredients: list[int], candidates: list[int],
            value: float, best_single: float, soup_weights: Weights) -> int:
    from hyperlaw.study import create_study

    root = study.checkpoints.url.rstrip("/").rsplit("/", 1)[0]
    sibling = create_study(f"{study.name}.soups", storage=study.store,
                           direction=study.direction, sampler="random", load_if_exists=True,
                           checkpoint_dir=root)
    trial = sibling.ask()
    for key, item in {"method": method, "ingredients": ingredients, "candidates": candidates,
                      "best_single": best_single, "source_study": study.name}.items():
        trial.set_user_attr(key, item)
    trial.save_checkpoint(dict(soup_weights), step=0)
    sibling.tell(trial, value)
    return trial.number
