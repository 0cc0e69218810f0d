"""Tune small models, fit the laws, train a 4x larger one once at the recommendation.

The end-to-end use of `hl.scaling`:

1. tune the learning rate and batch size of a family of small MLPs (three widths), each as a
   grid sweep in a `ScalingStudy`;
2. fit how the optimum moves with model size and recommend, with 90% intervals, a learning
   rate and batch size for a model more than 4x larger (in parameters) than any tuned;
3. train that model once at the recommendation;
4. check: sweep the same grid at the large size, and compare the recommended run's loss with
   the sweep's best and the compute the sweep would have cost.

The task is a teacher-student problem with fresh data at every step, like pretraining: inputs
are Gaussian, labels are drawn from the class probabilities of a fixed random teacher network,
and the loss is the expected cross-entropy against those probabilities on held-out inputs
(its floor is the teacher's entropy). Compute is counted as 6 * parameters * samples seen.

    python examples/scaling_end_to_end.py        # a few minutes on 2 cores
"""

from __future__ import annotations

import functools
import math
import warnings
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

import hyperlaw as hl
from hyperlaw.samplers import GridSampler
from hyperlaw.scaling.mup import MuReadout, mup_param_groups

INPUTS = 32
CLASSES = 10
TEACHER_WIDTH = 256
VAL_SAMPLES = 4096
WARMUP = 0.05  # share of steps with a linear warmup; then linear decay to zero

#: the sweep of every tuned cell and of the check at the large size
LRS = hl.Float(3e-4, 3e-2, log=True)
BATCHES = (8, 16, 32, 64)


@functools.cache
def teacher() -> tuple[nn.Module, torch.Tensor, torch.Tensor]:
    """The fixed random teacher and the held-out inputs with its class probabilities."""
    gen = torch.Generator().manual_seed(1234)
    net = nn.Sequential(nn.Linear(INPUTS, TEACHER_WIDTH), nn.Tanh(),
                        nn.Linear(TEACHER_WIDTH, TEACHER_WIDTH), nn.Tanh(),
                        nn.Linear(TEACHER_WIDTH, CLASSES))
    for p in net.parameters():
        with torch.no_grad():
            p.copy_(torch.randn(p.shape, generator=gen) / math.sqrt(p.shape[-1]))
    with torch.no_grad():
        net[-1].weight.mul_(3.0)  # confident enough to be learnable, noisy enough to need data
        x = torch.randn(VAL_SAMPLES, INPUTS, generator=gen)
        probs = F.softmax(net(x), dim=-1)
    return net, x, probs


@functools.cache
def stream(n_samples: int, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """`n_samples` fresh training inputs and labels drawn from the teacher (one stream shared
    by every run of a seed, so runs differ only by their hyperparameters)."""
    net, _, _ = teacher()
    gen = torch.Generator().manual_seed(10_000 + seed)
    x = torch.randn(n_samples, INPUTS, generator=gen)
    with torch.no_grad():
        y = torch.multinomial(F.softmax(net(x), dim=-1), 1, generator=gen).squeeze(1)
    return x, y


def student(width: int, mup_base: int | None = None) -> nn.Module:
    """A two-hidden-layer ReLU MLP; with `mup_base`, its output layer is μP's readout for
    the base width `mup_base`."""
    readout = (MuReadout(width, CLASSES, mup_base) if mup_base
               else nn.Linear(width, CLASSES))
    return nn.Sequential(nn.Linear(INPUTS, width), nn.ReLU(), nn.Linear(width, width), nn.ReLU(),
                         readout)


def n_params(width: int) -> int:
    """The parameters of `student(width)`."""
    return INPUTS * width + width + width * width + width + width * CLASSES + CLASSES


def width_of(params: float) -> int:
    """The width whose student has `params` parameters (the nearest)."""
    return min(range(4, 4096), key=lambda w: abs(n_params(w) - params))


def train(width: int, lr: float, batch_size: int, n_samples: float, *, seed: int = 0,
          mup_base: int | None = None) -> float:
    """Train `student(width)` with AdamW on `n_samples` fresh samples; the held-out loss.

    With `mup_base`, the student is in μP relative to width `mup_base` (`lr` is the base
    width's rate; hidden matrices get lr * mup_base / width).
    """
    torch.set_num_threads(1)
    torch.manual_seed(seed)
    _, x_val, p_val = teacher()
    model = student(width, mup_base)
    if mup_base:
        groups = mup_param_groups(model, student(mup_base, mup_base), lr, weight_decay=0.0)
    else:
        groups = [{"params": list(model.parameters())}]
    optimizer = torch.optim.AdamW(groups, lr=lr, weight_decay=0.0)
    steps = max(1, int(n_samples // batch_size))
    warm = max(1, int(WARMUP * steps))
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda s: min((s + 1) / warm, (steps - s) / max(1, steps - warm)))
    xs, ys = stream(steps * batch_size, seed)
    for step in range(steps):
        batch = slice(step * batch_size, (step + 1) * batch_size)
        loss = F.cross_entropy(model(xs[batch]), ys[batch])
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        scheduler.step()
    with torch.no_grad():
        val = float(-(p_val * F.log_softmax(model(x_val), dim=-1)).sum(-1).mean())
    return val if math.isfinite(val) else 1e3


def flops(width: int, n_samples: float) -> float:
    """Training compute of one run, 6 * parameters * samples."""
    return 6.0 * n_params(width) * n_samples


@dataclass
class Report:
    """What the end-to-end run found."""

    target_width: int
    n_samples: float
    size_ratio: float  # target parameters / largest tuned
    lr: hl.scaling.Prediction
    batch_size: hl.scaling.Prediction
    trained_lr: float
    trained_batch: int
    loss: float  # the one run at the recommendation
    sweep_best: float  # the best of the grid at the target size
    sweep_best_config: dict[str, Any]
    sweep_median: float
    tuning_flops: float  # every run of the small widths
    sweep_flops: float  # the grid at the target size
    compute_saved: float  # 1 - (tuning + one run) / sweep
    warnings: list[str]

    @property
    def gap(self) -> float:
        """How far the recommended run's loss is above the sweep's best (relative)."""
        return self.loss / self.sweep_best - 1.0


def main(widths: tuple[int, ...] = (16, 24, 32, 48, 64), target_width: int = 160,
         n_samples: float = 2**14, resolution: int = 6, batches: tuple[int, ...] = BATCHES,
         storage: str | None = None, verbose: bool = True) -> Report:
    """Tune `widths`, recommend for `target_width`, train it once, check against a sweep."""
    space = hl.Space({"lr": LRS, "batch_size": hl.Choice(list(batches))})
    grid = resolution * len(batches)

    def objective(config: dict[str, Any], n_params: float, n_tokens: float) -> float:
        return train(width_of(n_params), config["lr"], int(config["batch_size"]), n_tokens)

    cells = [(n_params(w), n_samples) for w in widths]
    # later cells are warm-started with up to 3 recommended configurations, then the grid
    scaling = hl.scaling.ScalingStudy(
        objective, cells=cells, space=space, storage=storage, targets=("lr", "batch_size"),
        n_trials=grid + 3, n_trials_warm=grid + 3, sampler=GridSampler(resolution=resolution))
    scaling.run()
    target = n_params(target_width)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", hl.scaling.ScalingWarning)
        rec = scaling.recommend(n_params=target, n_tokens=n_samples)
    lr, batch = rec["lr"], rec["batch_size"]
    # a power of two, as usual, within the batch sizes tuned (no law carries far beyond them)
    trained_batch = int(min(max(2 ** round(math.log2(batch.value)), min(batches)),
                            max(batches)))
    loss = train(target_width, lr.value, trained_batch, n_samples)

    sweep = [({"lr": r, "batch_size": b}, train(target_width, r, b, n_samples))
             for r in LRS.grid(resolution) for b in batches]
    best_config, best = min(sweep, key=lambda s: s[1])
    tuning = sum(flops(width_of(row["n_params"]), n_samples) for row in scaling.records())
    sweep_flops = len(sweep) * flops(target_width, n_samples)
    report = Report(
        target_width=target_width, n_samples=n_samples,
        size_ratio=target / max(n_params(w) for w in widths),
        lr=lr, batch_size=batch, trained_lr=lr.value, trained_batch=trained_batch, loss=loss,
        sweep_best=best, sweep_best_config=best_config,
        sweep_median=float(np.median([s[1] for s in sweep])), tuning_flops=tuning,
        sweep_flops=sweep_flops,
        compute_saved=1.0 - (tuning + flops(target_width, n_samples)) / sweep_flops,
        warnings=[str(w.message) for w in caught])
    if verbose:
        _print(report, scaling)
    return report


def _print(r: Report, scaling: hl.scaling.ScalingStudy) -> None:
    for law in scaling.fit().values():
        print(f"law: {law.formula()}")
    for message in r.warnings:
        print(f"warning: {message}")
    print(f"width {r.target_width} ({n_params(r.target_width):,} parameters, "
          f"{r.size_ratio:.1f}x the largest tuned):")
    print(f"  recommended lr {r.lr.value:.4g} (90% interval {r.lr.low:.4g} .. {r.lr.high:.4g}), "
          f"batch size {r.batch_size.value:.3g} ({r.batch_size.low:.3g} .. "
          f"{r.batch_size.high:.3g}); trained at lr {r.trained_lr:.4g}, batch {r.trained_batch}")
    print(f"  loss {r.loss:.4f}; sweep of the same grid at this size: best {r.sweep_best:.4f} "
          f"at {r.sweep_best_config}, median {r.sweep_median:.4f}; gap {r.gap:+.2%}")
    print(f"  compute: tuning {r.tuning_flops:.3g} FLOPs + one run "
          f"{flops(r.target_width, r.n_samples):.3g}, against {r.sweep_flops:.3g} for the "
          f"sweep: {r.compute_saved:.0%} saved")

if __name__ == "__main__":
    main()
