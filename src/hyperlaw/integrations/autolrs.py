"""On-the-fly learning-rate schedule search in the style of AutoLRS (Jin et al., ICLR 2021).

Training is cut into stages, each run at one constant learning rate. At the start of a stage
the model, the optimizer and the RNGs are checkpointed in memory. A Bayesian optimizer over
log-LR then proposes `k` rates one at a time; each is tried by restoring the checkpoint,
training `tau_prime` steps, fitting L(t) = a·e^{b·t} + c to the (denoised) loss series and
forecasting the loss after `tau` steps (`hyperlaw.curves.exponential`). The forecast is what
the optimizer minimises. Finally the checkpoint is restored once more and the stage trains
`tau` steps at the rate with the lowest forecast. A stage costs k·tau' + tau optimizer steps
(2·tau with the defaults); after each stage tau' and tau double while tau' < tau_max / 10, and
from then on the forecast uses `val_loss` when one is given.

    search = AutoLRS(model, optimizer, train_step, min_lr=1e-4, max_lr=1.0, study=study)
    search.run(20_000)                        # 20,000 kept steps (plus the exploration)
    search.schedule, search.as_schedule()     # [(start_step, lr), ...] and a Tabulated

This module imports torch (install `hyperlaw[torch]`).
"""

from __future__ import annotations

import copy
import math
import random
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import torch

from hyperlaw.curves.exponential import TRAIN_DENOISE, VAL_DENOISE, denoise, fit_exponential
from hyperlaw.errors import AutoLRSError, TrialPruned
from hyperlaw.lr_schedules.refined import Tabulated

if TYPE_CHECKING:
    from hyperlaw.study import Study
    from hyperlaw.trial import Trial

__all__ = ["AutoLRS", "AutoLRSError", "Candidate", "Stage"]

#: The forecast told for a candidate whose loss became NaN or infinite (the reference value).
DIVERGED_LOSS = 1e6
#: The lower-confidence-bound weight of the reference: proposals follow the GP's uncertainty.
DEFAULT_KAPPA = 1e6
#: The rates the Bayesian optimizer chooses among: a grid evenly spaced in log-LR.
GRID_SIZE = 1001
#: A forecast needs at least this many points of a series.
MIN_SERIES = 3
#: Validation losses are evaluated this many times per exploration (every tau'/16 steps).
VAL_POINTS = 16


@dataclass(frozen=True)
class Candidate:
    """One learning rate tried in a stage: its loss series and the forecast from it.

    `steps[i]` is the number of steps taken since the stage start when `losses[i]` was
    measured; the series is the training loss, or the validation loss when `metric` is "val".
    `cost` is the number of optimizer steps trained (fewer than tau' if the loss diverged).
    """

    lr: float
    steps: tuple[int, ...]
    losses: tuple[float, ...]
    predicted_loss: float
    metric: Literal["train", "val"]
    cost: int
    trial_number: int | None = None


@dataclass(frozen=True)
class Stage:
    """One stage: its start, its kept steps at the chosen rate and the candidates tried."""

    index: int
    start_step: int
    length: int
    tau_prime: int
    lr: float
    chosen: int
    candidates: tuple[Candidate, ...]
    losses: tuple[float, ...]

    @property
    def exploration_steps(self) -> int:
        """Optimizer steps spent trying candidates (a diverged one stops early)."""
        return sum(c.cost for c in self.candidates)


@dataclass
class _Checkpoint:
    model: dict[str, Any]
    optimizer: dict[str, Any]
    torch_rng: torch.Tensor
    cuda_rng: list[torch.Tensor] | None
    numpy_rng: Any
    python_rng: Any


class _LogLRSearch:
    """A 1-D GP over log-LR with an LCB acquisition minimised on a grid; one per stage.

    The first rate is drawn log-uniformly; later ones minimise mean − kappa·std of the GP
    (hyperlaw's Matérn-5/2 GP with MAP hyperparameters, fitted on standardized values).
    """

    def __init__(self, min_lr: float, max_lr: float, kappa: float,
                 rng: np.random.Generator) -> None:
        self.min_lr, self.max_lr = min_lr, max_lr
        self.log_min, self.log_max = math.log(min_lr), math.log(max_lr)
        self.kappa, self.rng = kappa, rng
        self.grid = np.linspace(0.0, 1.0, GRID_SIZE)
        self.x: list[float] = []
        self.y: list[float] = []

    def lr(self, u: float) -> float:
        """The rate at position u of [0, 1] in log-LR (clipped: exp(log(x)) may round off)."""
        lr = math.exp(self.log_min + u * (self.log_max - self.log_min))
        return min(max(lr, self.min_lr), self.max_lr)

    def ask(self) -> float:
        from hyperlaw.models.gp import GaussianProcess, fit_hyper
        from hyperlaw.models.targets import transform_targets

        if not self.x:
            return self.lr(float(self.grid[self.rng.integers(GRID_SIZE)]))
        x = np.array(self.x)[:, None]
        y = transform_targets(np.array(self.y))
        cat = np.zeros(1, dtype=bool)
        gp = GaussianProcess(x, y, cat, fit_hyper(x, y, cat, None, max_iter=60))
        mean, std = gp.predict(self.grid[:, None])
        return self.lr(float(self.grid[int(np.argmin(mean - self.kappa * std))]))

    def tell(self, lr: float, value: float) -> None:
        self.x.append((math.log(lr) - self.log_min) / (self.log_max - self.log_min))
        self.y.append(value)

    def untried(self, tried: set[float]) -> float:
        """The grid rate farthest from every tried one (when the GP keeps re-proposing)."""
        done = np.array([(math.log(lr) - self.log_min) / (self.log_max - self.log_min)
                         for lr in tried])
        gap = np.min(np.abs(self.grid[:, None] - done[None, :]), axis=1)
        return self.lr(float(self.grid[int(np.argmax(gap))]))


def _positive_int(name: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise AutoLRSError(f"{name} must be a positive int, got {value!r}")
    return value


class AutoLRS:
    """Searches a piecewise-constant learning-rate schedule while it trains a PyTorch model.

    `train_step()` must run one optimizer step on the next batch and return its training loss
    (a float or a 0-d tensor); AutoLRS sets every param group's `lr` before the steps. Each
    restore brings back the model's and the optimizer's state dicts and the torch, CUDA, numpy
    and Python RNG states, so a `train_step` that draws its batches from those RNGs replays the
    same batches for every candidate; one that reads an iterator sees fresh batches instead.
    `val_loss()`, if given, returns the validation loss; it replaces the training loss in the
    forecasts once tau' has reached tau_max / 10, evaluated every tau'/16 steps.

    If `study` is given (a minimizing hyperlaw Study), every candidate becomes a trial with
    params {"lr": lr}: its loss series is reported at the global step numbers, its value is
    the forecast, and its user attributes are `stage`, `start_step`, `horizon`, `metric`,
    `predicted_loss` and `chosen` (True for the stage's one kept rate).

    `kappa` is the LCB weight; the reference's 1e6 makes the proposals pure uncertainty
    sampling (space filling in log-LR), and the forecasts only decide the final choice.
    `tau` and `tau_prime` hold the values of the next stage; `stages` the stages run so far.
    """

    def __init__(self, model: torch.nn.Module, optimizer: torch.optim.Optimizer,
                 train_step: Callable[[], Any], *, min_lr: float, max_lr: float,
                 tau: int = 1000, tau_prime: int = 100, k: int = 10, tau_max: int = 8000,
                 val_loss: Callable[[], Any] | None = None, study: Study | None = None,
                 kappa: float = DEFAULT_KAPPA, seed: int = 0) -> None:
        try:
            min_lr, max_lr = float(min_lr), float(max_lr)
        except (TypeError, ValueError):
            min_lr = max_lr = math.nan
        if not (math.isfinite(min_lr) and math.isfinite(max_lr) and 0 < min_lr < max_lr):
            raise AutoLRSError(f"need 0 < min_lr < max_lr (finite), got min_lr={min_lr!r}, "
                               f"max_lr={max_lr!r}; give the range of rates to search")
        self.tau = _positive_int("tau", tau)
        self.tau_prime = _positive_int("tau_prime", tau_prime)
        self.k = _positive_int("k", k)
        self.tau_max = _positive_int("tau_max", tau_max)
        if tau_prime < MIN_SERIES or tau_prime > tau:
            raise AutoLRSError(f"need {MIN_SERIES} <= tau_prime <= tau, got tau_prime="
                               f"{tau_prime}, tau={tau}; the forecast fits 3 parameters to "
                               "tau_prime losses and extrapolates to tau")
        if not math.isfinite(kappa) or kappa < 0:
            raise AutoLRSError(f"kappa must be a finite number >= 0, got {kappa!r}")
        if study is not None and study.direction != "minimize":
            raise AutoLRSError(f"study {study.name!r} maximizes; AutoLRS tells forecast "
                               "losses, so create the study with direction='minimize'")
        self.model, self.optimizer, self.train_step = model, optimizer, train_step
        self.min_lr, self.max_lr, self.kappa = min_lr, max_lr, float(kappa)
        self.val_loss, self.study = val_loss, study
        self.rng = np.random.default_rng(seed)
        self.stages: list[Stage] = []
        self.exploration_steps = 0

    # --- accounting ------------------------------------------------------------------------
    @property
    def steps_used(self) -> int:
        """Kept training steps: the length of the model's actual trajectory."""
        return sum(stage.length for stage in self.stages)

    @property
    def compute_steps(self) -> int:
        """Every optimizer step taken: kept steps plus exploration steps."""
        return self.steps_used + self.exploration_steps

    @property
    def losses(self) -> np.ndarray:
        """The training losses of the kept steps, in order."""
        return np.array([x for stage in self.stages for x in stage.losses], dtype=float)

    @property
    def schedule(self) -> list[tuple[int, float]]:
        """(start_step, lr) of each stage, in kept steps."""
        return [(stage.start_step, stage.lr) for stage in self.stages]

    def as_schedule(self) -> Tabulated:
        """The rates of the kept steps as a hyperlaw schedule (the last rate holds after)."""
        if not self.stages:
            raise AutoLRSError("no stage has run yet; call run(total_steps) first")
        return Tabulated.from_rates(np.repeat([s.lr for s in self.stages],
                                              [s.length for s in self.stages]))

    # --- training --------------------------------------------------------------------------
    def run(self, total_steps: int, *, budget: Literal["kept", "compute"] = "kept"
            ) -> list[Stage]:
        """Train `total_steps` more steps and return the stages run; call again to go on.

        With budget="kept" (the default) `total_steps` counts kept steps, and the exploration
        comes on top (about k·tau'/tau more). With budget="compute" it counts every optimizer
        step, exploration included, for comparisons at equal compute. The last stage is
        shortened to fit; when no search fits any more, the last rate carries on.
        """
        _positive_int("total_steps", total_steps)
        if budget not in ("kept", "compute"):
            raise AutoLRSError(f"budget must be 'kept' or 'compute', got {budget!r}")
        counter = (lambda: self.steps_used) if budget == "kept" else (
            lambda: self.compute_steps)
        end = counter() + total_steps
        first = len(self.stages)
        while (remaining := end - counter()) > 0:
            plan = self._plan(remaining, budget)
            if plan is None:
                self._extend_last_stage(remaining)
                break
            self._run_stage(*plan)
            if self.tau_prime < self.tau_max / 10:
                self.tau_prime, self.tau = 2 * self.tau_prime, 2 * self.tau
        return self.stages[first:]

    def _plan(self, remaining: int, budget: str) -> tuple[int, int] | None:
        """(tau', horizon) of the next stage within the remaining budget, or None."""
        if budget == "kept":
            horizon = min(self.tau, remaining)
            tau_prime = min(self.tau_prime, horizon)
        elif remaining >= self.k * self.tau_prime + self.tau:
            tau_prime, horizon = self.tau_prime, self.tau
        else:
            tau_prime = remaining * self.tau_prime // (self.k * self.tau_prime + self.tau)
            horizon = remaining - self.k * tau_prime
        if tau_prime >= MIN_SERIES:
            return tau_prime, horizon
        if not self.stages:
            raise AutoLRSError(
                f"a budget of {remaining} steps is too small for one search stage (k={self.k} "
                f"candidates of at least {MIN_SERIES} steps and a kept run); give more steps "
                "or lower k and tau_prime")
        return None

    @property
    def _uses_val_loss(self) -> bool:
        return self.val_loss is not None and self.tau_prime >= self.tau_max / 10

    def _run_stage(self, tau_prime: int, horizon: int) -> Stage:
        start = self.steps_used
        checkpoint = self._checkpoint()
        search = _LogLRSearch(self.min_lr, self.max_lr, self.kappa, self.rng)
        tried: dict[float, Candidate] = {}
        trials: list[Trial] = []
        for _ in range(self.k):
            lr = search.ask()
            for _attempt in range(20):  # a re-proposal is told its cached value again
                if lr not in tried:
                    break
                search.tell(lr, tried[lr].predicted_loss)
                lr = search.ask()
            if lr in tried:
                lr = search.untried(set(tried))
            candidate, trial = self._try(checkpoint, lr, tau_prime, horizon, start)
            tried[lr] = candidate
            search.tell(lr, candidate.predicted_loss)
            if trial is not None:
                trials.append(trial)
        candidates = tuple(tried.values())
        chosen = min(range(len(candidates)),
                     key=lambda i: (candidates[i].predicted_loss, candidates[i].lr))
        lr = candidates[chosen].lr
        self._restore(checkpoint)
        losses = self._train(lr, horizon)
        if trials:
            trials[chosen].set_user_attr("chosen", True)
        stage = Stage(index=len(self.stages), start_step=start, length=horizon,
                      tau_prime=tau_prime, lr=lr, chosen=chosen, candidates=candidates,
                      losses=tuple(losses))
        self.stages.append(stage)
        return stage

    def _try(self, checkpoint: _Checkpoint, lr: float, tau_prime: int, horizon: int,
             start: int) -> tuple[Candidate, Trial | None]:
        """Train one candidate from the checkpoint and forecast its loss at the horizon."""
        self._restore(checkpoint)
        val_loss = self.val_loss if self._uses_val_loss else None
        metric: Literal["train", "val"] = "train" if val_loss is None else "val"
        steps: list[int] = []
        series: list[float] = []
        every = max(1, tau_prime // VAL_POINTS)
        self._set_lr(lr)
        cost = 0
        while cost < tau_prime:
            loss = float(self.train_step())
            cost += 1
            if val_loss is not None and math.isfinite(loss):
                if cost % every:
                    continue
                loss = float(val_loss())
            steps.append(cost if metric == "val" else cost - 1)
            series.append(loss)
            if not math.isfinite(loss):
                break  # a diverged candidate: the rest of its steps would be wasted
        self.exploration_steps += cost
        predicted = self._forecast(steps, series, metric, horizon)
        trial = self._record(lr, steps, series, predicted, metric, start, horizon)
        return Candidate(lr=lr, steps=tuple(steps), losses=tuple(series),
                         predicted_loss=predicted, metric=metric, cost=cost,
                         trial_number=None if trial is None else trial.number), trial

    @staticmethod
    def _forecast(steps: list[int], series: list[float], metric: str, horizon: int) -> float:
        values = np.array(series, dtype=float)
        if values.size < MIN_SERIES or not np.all(np.isfinite(values)):
            return DIVERGED_LOSS
        t = np.array(steps, dtype=float)
        keep = denoise(values, steps=t, **(VAL_DENOISE if metric == "val" else TRAIN_DENOISE))
        predicted = fit_exponential(t[keep], values[keep]).predict(horizon)
        return float(predicted) if math.isfinite(predicted) else DIVERGED_LOSS

    def _record(self, lr: float, steps: list[int], series: list[float], predicted: float,
                metric: str, start: int, horizon: int) -> Trial | None:
        """The candidate as a finished trial of the study (None without a study)."""
        if self.study is None:
            return None
        trial = self.study.ask({"lr": lr})
        for step, value in zip(steps, series, strict=True):
            if not math.isfinite(value):
                break
            try:
                trial.report(value, start + step)
            except TrialPruned:
                break  # the study's scheduler does not cut candidates short
        for key, attr in (("stage", len(self.stages)), ("start_step", start),
                          ("horizon", horizon), ("metric", metric),
                          ("predicted_loss", predicted), ("chosen", False)):
            trial.set_user_attr(key, attr)
        self.study.tell(trial, predicted)
        return trial

    def _extend_last_stage(self, steps: int) -> None:
        """Train `steps` more at the last stage's rate (too little budget left to search)."""
        last = self.stages[-1]
        more = self._train(last.lr, steps)
        self.stages[-1] = replace(last, length=last.length + steps,
                                  losses=last.losses + tuple(more))

    def _train(self, lr: float, steps: int) -> list[float]:
        self._set_lr(lr)
        return [float(self.train_step()) for _ in range(steps)]

    def _set_lr(self, lr: float) -> None:
        for group in self.optimizer.param_groups:
            group["lr"] = lr

    # --- checkpoints -----------------------------------------------------------------------
    def _checkpoint(self) -> _Checkpoint:
        return _Checkpoint(
            model=copy.deepcopy(self.model.state_dict()),
            optimizer=copy.deepcopy(self.optimizer.state_dict()),
            torch_rng=torch.get_rng_state(),
            cuda_rng=torch.cuda.get_rng_state_all() if torch.cuda.is_available() else None,
            numpy_rng=np.random.get_state(),
            python_rng=random.getstate(),
        )

    def _restore(self, checkpoint: _Checkpoint) -> None:
        self.model.load_state_dict(checkpoint.model)
        # the optimizer may keep the loaded tensors themselves: give it a copy to update
        self.optimizer.load_state_dict(copy.deepcopy(checkpoint.optimizer))
        self.optimizer.zero_grad(set_to_none=True)
        torch.set_rng_state(checkpoint.torch_rng)
        if checkpoint.cuda_rng is not None:
            torch.cuda.set_rng_state_all(checkpoint.cuda_rng)
        np.random.set_state(checkpoint.numpy_rng)
        random.setstate(checkpoint.python_rng)
