"""The Step Law prior: optimal learning rate and batch size from model size and token budget.

lr* = 1.79 * N^-0.713 * D^0.307 and B* = 0.58 * D^0.571 tokens (Li et al. 2025, "Predictable
Scale: Part I", arXiv 2503.04715), N the non-embedding parameters and D the training tokens.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass

from hyperlaw.errors import HyperlawError

LR_PREFACTOR = 1.79
LR_EXPONENT_N = -0.713
LR_EXPONENT_D = 0.307
BATCH_PREFACTOR = 0.58
BATCH_EXPONENT_D = 0.571
FITTED_N = (2.1e8, 1.07e9)
FITTED_D = (4e9, 1e11)


class StepLawRangeWarning(UserWarning):
    """The Step Law is used outside the model sizes or token budgets it was fitted on."""


@dataclass(frozen=True)
class StepLawPrior:
    """The Step Law's learning rate and batch size for one (N, D), and where it was fitted."""

    n_params: float
    n_tokens: float
    seq_len: int
    lr: float
    batch_tokens: float
    batch_sequences: float
    in_range: bool
    fitted_n: tuple[float, float] = FITTED_N
    fitted_d: tuple[float, float] = FITTED_D

    def to_dict(self) -> dict[str, object]:
        """The prior as a JSON-serializable dict."""
        return {k: (list(v) if isinstance(v, tuple) else v) for k, v in self.__dict__.items()}


def step_law(n_params: float, n_tokens: float, seq_len: int = 2048, *,
             round_batch: bool = False, warn: bool = True) -> StepLawPrior:
    """The Step Law's optimal peak learning rate and batch size (tokens and sequences).

    `round_batch` rounds the batch in sequences to the nearest power of two (the batch in
    tokens follows). Outside the fitted range (N 2.1e8..1.07e9, D 4e9..1e11) the law is an
    extrapolation: a `StepLawRangeWarning` says so unless `warn=False`.
    """
    for name, value in (("n_params", n_params), ("n_tokens", n_tokens), ("seq_len", seq_len)):
        if not isinstance(value, int | float) or not math.isfinite(value) or value <= 0:
            raise HyperlawError(f"step_law: {name} must be a positive number, got {value!r}")
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
    return StepLawPrior(n_params=float(n_params), n_tokens=float(n_tokens), seq_len=int(seq_len),
                        lr=lr, batch_tokens=batch_tokens, batch_sequences=batch_sequences,
                        in_range=in_range)
