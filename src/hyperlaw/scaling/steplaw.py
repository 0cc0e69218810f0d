"""The Step Law prior: optimal learning rate and batch size from model size and token budget.

lr* = 1.79 * N^-0.713 * D^0.307 and B* = 0.58 * D^0.571 tokens (Li et al. 2025, "Predictable
Scale: Part I", arXiv 2503.04715), N the non-embedding parameters and D the training tokens.
The constants are the means of the paper's 1,000 released bootstrap fits (`data/`), which also
give the intervals.

The loss law L(N, D) = E + A / N^alpha + B / D^beta that `step_law` also returns is not the
paper's: the paper released the code of its loss-law fit but no fitted constants, so hyperlaw
fits that form (`LossLaw`, the released tool's Huber loss) on the best smoothed loss of each
(N, D) cell of the 1,911 released dense runs, and ships the fit with its bootstrap
(`data/steplaw_loss_law.json`, made by `examples/steplaw_paper.py --write-loss-law`).
"""

from __future__ import annotations

import functools
import json
import math
import warnings
from dataclasses import dataclass, replace
from importlib import resources

import numpy as np

from hyperlaw.errors import HyperlawError
from hyperlaw.scaling.exponent_prior import STEP_LAW_EXPONENTS
from hyperlaw.scaling.losslaw import LossLaw

LR_PREFACTOR = 1.79
LR_EXPONENT_N = STEP_LAW_EXPONENTS["lr"]["n_params"]
LR_EXPONENT_D = STEP_LAW_EXPONENTS["lr"]["n_tokens"]
BATCH_PREFACTOR = 0.58
BATCH_EXPONENT_D = STEP_LAW_EXPONENTS["batch_size"]["n_tokens"]
FITTED_N = (2.1e8, 1.07e9)
FITTED_D = (4e9, 1e11)


class StepLawRangeWarning(UserWarning):
    """The Step Law is used outside the model sizes or token budgets it was fitted on."""


@dataclass(frozen=True)
class StepLawPrior:
    """The Step Law's learning rate and batch size for one (N, D), where it was fitted, and the
    `confidence` interval of each over the paper's bootstrap fits (`*_low`, `*_high`)."""

    n_params: float
    n_tokens: float
    seq_len: int
    lr: float
    batch_tokens: float
    batch_sequences: float
    in_range: bool
    lr_low: float = math.nan
    lr_high: float = math.nan
    batch_tokens_low: float = math.nan
    batch_tokens_high: float = math.nan
    confidence: float = 0.9
    #: the loss law fitted on the paper's released dense runs (smoothed final training loss
    #: of its data and recipe; not the paper's own constants, see the module's description)
    loss: float = math.nan
    loss_low: float = math.nan
    loss_high: float = math.nan
    fitted_n: tuple[float, float] = FITTED_N
    fitted_d: tuple[float, float] = FITTED_D

    def to_dict(self) -> dict[str, object]:
        """The prior as a JSON-serializable dict."""
        return {k: (list(v) if isinstance(v, tuple) else v) for k, v in self.__dict__.items()}


@functools.cache
def loss_law() -> LossLaw:
    """The loss law fitted on the paper's released dense runs, with its bootstrap fits."""
    text = resources.files("hyperlaw.scaling").joinpath("data/steplaw_loss_law.json")
    with text.open() as f:
        return LossLaw.from_dict(json.load(f))


@functools.cache
def bootstrap_fits() -> np.ndarray:
    """The paper's 1,000 bootstrap fits, columns lr_intercept, lr_coefN, lr_coefD,
    bs_intercept, bs_coefD (natural logarithms; see `data/README.md`)."""
    text = resources.files("hyperlaw.scaling").joinpath("data/steplaw_bootstrap.csv")
    with text.open() as f:
        return np.loadtxt(f, delimiter=",", skiprows=1)


def step_law(n_params: float, n_tokens: float, seq_len: int = 2048, *,
             round_batch: bool = False, warn: bool = True,
             confidence: float = 0.9) -> StepLawPrior:
    """The Step Law's optimal peak learning rate and batch size (tokens and sequences).

    The values are the published constants; `lr_low`/`lr_high` and
    `batch_tokens_low`/`batch_tokens_high` bound the central `confidence` share of the
    predictions of the paper's 1,000 bootstrap fits (the uncertainty of the law's constants,
    not of one run's optimum). `loss` (with `loss_low`/`loss_high`) is the final loss a run at
    the optimum reaches by the loss law fitted on the paper's released runs (see the module's
    description). `round_batch` rounds the batch in sequences to the nearest
    power of two (the batch in tokens follows). Outside the fitted range (N 2.1e8..1.07e9,
    D 4e9..1e11) the law is an extrapolation: a `StepLawRangeWarning` says so unless
    `warn=False`.
    """
    for name, value in (("n_params", n_params), ("n_tokens", n_tokens), ("seq_len", seq_len)):
        if not isinstance(value, int | float) or not math.isfinite(value) or value <= 0:
            raise HyperlawError(f"step_law: {name} must be a positive number, got {value!r}")
    if not 0 < confidence < 1:
        raise HyperlawError(f"step_law: confidence must lie in (0, 1), got {confidence!r}")
    lr = LR_PREFACTOR * n_params**LR_EXPONENT_N * n_tokens**LR_EXPONENT_D
    batch_tokens = BATCH_PREFACTOR * n_tokens**BATCH_EXPONENT_D
    batch_sequences = batch_tokens / seq_len
    if round_batch:
        batch_sequences = float(2 ** max(0, round(math.log2(batch_sequences))))
        batch_tokens = batch_sequences * seq_len
    in_range = (FITTED_N[0] <= n_params <= FITTED_N[1]) and (FITTED_D[0] <= n_tokens <= FITTED_D[1])
    if warn and not in_range:
        warnings.warn(
            f"step_law: N={n_params:.3g}, D={n_tokens:.3g} lies outside the range the law was "
            f"fitted on (N {FITTED_N[0]:.2g}..{FITTED_N[1]:.3g}, D {FITTED_D[0]:.2g}.."
            f"{FITTED_D[1]:.2g}); treat the values as an extrapolation, or fit your own law "
            "with hyperlaw.scaling.fit", StepLawRangeWarning, stacklevel=2)
    fits = bootstrap_fits()
    log_n, log_d = math.log(n_params), math.log(n_tokens)
    lrs = np.exp(fits[:, 0] + fits[:, 1] * log_n + fits[:, 2] * log_d)
    batches = np.exp(fits[:, 3] + fits[:, 4] * log_d)
    tail = (1 - confidence) / 2
    (lr_low, lr_high), (b_low, b_high) = (np.quantile(v, [tail, 1 - tail])
                                          for v in (lrs, batches))
    loss = replace(loss_law(), confidence=confidence).predict(n_params, n_tokens)
    return StepLawPrior(n_params=float(n_params), n_tokens=float(n_tokens), seq_len=int(seq_len),
                        lr=lr, batch_tokens=batch_tokens, batch_sequences=batch_sequences,
                        in_range=in_range, lr_low=float(lr_low), lr_high=float(lr_high),
                        batch_tokens_low=float(b_low), batch_tokens_high=float(b_high),
                        confidence=confidence, loss=loss.value, loss_low=loss.low,
                        loss_high=loss.high)
