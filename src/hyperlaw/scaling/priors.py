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
- `critical_batch_size(loss)`: the critical batch size in tokens as a power law of the loss
  (Kaplan et al. 2020, "Scaling Laws for Neural Language Models", arXiv 2001.08361, eq. 1.4):
  B_crit = 2e8 / L^(1/0.21) tokens, L the training loss in nats per token. Fitted on
  transformers trained on WebText2 with GPT-2's byte-pair tokenizer; another tokenizer or data
  set moves L, so the constants do not carry over, but the form does, and the critical batch
  can be measured on your own run with `gradient_noise_scale`.
- `gradient_noise_scale`: McCandlish et al. 2018 ("An Empirical Model of Large-Batch
  Training", arXiv 1812.06162, appendix A.1), the simple noise scale tr(Σ)/|G|², the critical
  batch's estimate, from squared gradient norms measured at two batch sizes.
- `batch_tradeoff(batch, critical_batch)`: the steps and the data a batch size costs relative
  to the least possible, (S/S_min − 1)(E/E_min − 1) = 1 with B_crit = E_min/S_min (the same
  two papers): at the critical batch, twice the minimal steps and twice the minimal data.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from hyperlaw.errors import HyperlawError

DEEPSEEK_LR = (0.3118, -0.1250)  # (prefactor, exponent of C)
DEEPSEEK_BATCH = (0.2920, 0.3271)  # in tokens
KAPLAN_CRITICAL_BATCH = (2e8, 0.21)  # (B* in tokens, alpha_B): B_crit = B* / L^(1/alpha_B)


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


def critical_batch_size(loss: float) -> float:
    """Kaplan et al.'s critical batch size in tokens at training loss `loss` (nats per token):
    B_crit = 2e8 / loss^(1/0.21). See the module's description for where it holds."""
    b_star, alpha = KAPLAN_CRITICAL_BATCH
    return b_star / _positive("loss", loss) ** (1.0 / alpha)


def gradient_noise_scale(small_batch: float, small_sq_norm: float, big_batch: float,
                         big_sq_norm: float) -> float:
    """The simple gradient noise scale tr(Σ)/|G|² (McCandlish et al. 2018), an estimate of the
    critical batch size, in the unit of the batch sizes (examples, or tokens).

    `small_sq_norm` and `big_sq_norm` are mean squared norms of the gradient of the mean loss
    over batches of `small_batch` and `big_batch` (in data parallelism: one worker's gradient
    and the all-reduced one). Since E|G_B|² = |G|² + tr(Σ)/B, two sizes give unbiased
    estimates of |G|² and tr(Σ); average many measurements of each norm before the ratio.
    """
    small, big = _positive("small_batch", small_batch), _positive("big_batch", big_batch)
    if big <= small:
        raise HyperlawError(f"gradient_noise_scale: big_batch ({big:g}) must exceed "
                            f"small_batch ({small:g})")
    small_sq = _positive("small_sq_norm", small_sq_norm)
    big_sq = _positive("big_sq_norm", big_sq_norm)
    signal = (big * big_sq - small * small_sq) / (big - small)
    noise = (small_sq - big_sq) / (1.0 / small - 1.0 / big)
    if signal <= 0 or noise <= 0:
        raise HyperlawError(
            f"gradient_noise_scale: these norms (|G|² {small_sq:g} at batch {small:g}, "
            f"{big_sq:g} at batch {big:g}) give a {'signal' if signal <= 0 else 'noise'} "
            f"estimate of {signal if signal <= 0 else noise:g}; the squared norm must fall as "
            f"the batch grows, more slowly than 1/batch: average more measurements, or measure "
            f"batch sizes further apart")
    return noise / signal


@dataclass(frozen=True)
class BatchTradeoff:
    """What a batch size costs relative to the least possible: `steps_factor` = S/S_min and
    `tokens_factor` = E/E_min (data, and so compute)."""

    steps_factor: float
    tokens_factor: float


def batch_tradeoff(batch: float, critical_batch: float) -> BatchTradeoff:
    """The steps and data a batch of `batch` needs to reach a loss, relative to the minimum,
    given the critical batch at that loss (same unit): S/S_min = 1 + B_crit/B and
    E/E_min = 1 + B/B_crit (McCandlish et al. 2018; Kaplan et al. 2020, eq. 5.4)."""
    ratio = _positive("critical_batch", critical_batch) / _positive("batch", batch)
    return BatchTradeoff(steps_factor=1.0 + ratio, tokens_factor=1.0 + 1.0 / ratio)


def _positive(name: str, value: float) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) \
            or not math.isfinite(value) or value <= 0:
        raise HyperlawError(f"{name} must be a positive number, got {value!r}")
    return float(value)
