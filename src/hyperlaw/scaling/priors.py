"""Other published hyperparameter laws, as priors to compare with the Step Law and with laws
fitted on your own runs.

- `compute_law(compute)`: DeepSeek LLM's optimal peak learning rate and batch size as power
  laws of the compute budget C (Bi et al. 2024, "DeepSeek LLM: Scaling Open-Source Language
  Models with Longtermism", arXiv 2401.02954): lr = 0.3118 * C^-0.1250 and
  B = 0.2920 * C^0.3271 tokens, where C = M * D is in FLOPs with M the non-embedding FLOPs per
  token (not 6N) and D the training tokens. Fitted on DeepSeek's own models and data with its
  multi-step schedule; another data mixture or schedule moves the optimum.
- `adamw_timescale` and `weight_decay_for_timescale`: AdamW's weight decay as the timescale
  of the exponential moving average it computes, tau = B / (lr * weight_decay * D), the share
  of the training tokens the average spans ("Power Lines", arXiv 2505.13738, finds the
  optimal tau a power law in tokens per parameter; "How to set AdamW's weight decay as you
  scale model and dataset size" holds it constant as model and data grow). Holding tau while
  lr, B or D change gives the weight decay that keeps the same averaging.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from hyperlaw.errors import HyperlawError

DEEPSEEK_LR = (0.3118, -0.1250)  # (prefactor, exponent of C)
DEEPSEEK_BATCH = (0.2920, 0.3271)  # in tokens


@dataclass(frozen=True)
class ComputeLawPrior:
    """A learning rate and batch size (tokens) for one compute budget, and the law's source."""

    compute: float
    lr: float
    batch_tokens: float
    source: str

    def batch_sequences(self, seq_len: int) -> float:
        """The batch in sequences of `seq_len` tokens."""
        return self.batch_tokens / _positive("seq_len", seq_len)


def compute_law(compute: float) -> ComputeLawPrior:
    """DeepSeek LLM's optimal learning rate and batch size (tokens) for `compute` FLOPs
    (C = M * D, M the non-embedding FLOPs per token; see the module's description)."""
    c = _positive("compute", compute)
    return ComputeLawPrior(compute=c, lr=DEEPSEEK_LR[0] * c ** DEEPSEEK_LR[1],
                           batch_tokens=DEEPSEEK_BATCH[0] * c ** DEEPSEEK_BATCH[1],
                           source="DeepSeek LLM (arXiv 2401.02954)")


def adamw_timescale(lr: float, weight_decay: float, batch_tokens: float,
                    n_tokens: float) -> float:
    """The timescale of AdamW's weight averaging as a share of training:
    tau = B / (lr * weight_decay * D) (1 / (lr * weight_decay) steps of B tokens each)."""
    return _positive("batch_tokens", batch_tokens) / (
        _positive("lr", lr) * _positive("weight_decay", weight_decay)
        * _positive("n_tokens", n_tokens))


def weight_decay_for_timescale(tau: float, lr: float, batch_tokens: float,
                               n_tokens: float) -> float:
    """The weight decay that gives AdamW's averaging the timescale `tau` (a share of the
    training tokens): weight_decay = B / (lr * tau * D)."""
    return _positive("batch_tokens", batch_tokens) / (
        _positive("lr", lr) * _positive("tau", tau) * _positive("n_tokens", n_tokens))


def _positive(name: str, value: float) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) \
            or not math.isfinite(value) or value <= 0:
        raise HyperlawError(f"{name} must be a positive number, got {value!r}")
    return float(value)
