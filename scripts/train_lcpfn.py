"""Train the small LC-PFN that hyperlaw ships (`make lcpfn`).

A prior-data fitted network (Adriaensen et al., NeurIPS 2023): a transformer trained only on
learning curves sampled from a prior, which then reads a partial curve and outputs, for each
later step, a distribution of the curve's value there, in one forward pass.

The prior (the one of the LC-PFN paper and code): on t = 1..100, a curve is
    y(t) = w1·pow3(t) + w2·ilog2(t) + w3·janoschek(t),   w_k ~ U(0, 1)
    pow3      = c − a·t^(−α)                  a ~ U(−0.6, 0.6), c ~ U(0, 1.25), α ~ LogNormal(0, 2)
    ilog2     = c − a / ln(t + 1)             c ~ U(0, 1), a ~ U(−0.5, 0.5)
    janoschek = α − (α − β)·exp(−κ·t^δ)       α ~ U(0, 1), β ~ U(0, 2),
                                              κ ~ LogNormal(−2, 1), δ ~ LogNormal(0, 0.5)
observed with Gaussian noise, ln σ ~ N(−4, 1). A curve is drawn again when y(100) <= y(1), when
a value leaves [0, 1], or when a value is not finite.

The model: each observed point (t, y) is a context token, each later t a query token. Queries
attend only to context tokens (so they never see each other's targets); context tokens attend to
context tokens. The output at a query is a bar (Riemann) distribution: probabilities of
`--buckets` equal buckets over [0, 1], uniform inside a bucket; targets outside [0, 1] count in
the end buckets. The architecture is written out layer by layer (pre-norm blocks, tanh-GELU) so
that `hyperlaw.curves.pfn` can run the same forward pass in numpy.

The weights go to src/hyperlaw/curves/data/lcpfn.npz (float32), rewritten every
`--save-every` steps so that an interrupted run still leaves a usable model. Everything is
seeded: the same command gives the same weights on the same torch build.
"""

from __future__ import annotations

import argparse
import math
import os
import time
from pathlib import Path

import numpy as np
import torch
from torch import nn

HORIZON = 100
OUT = Path(__file__).resolve().parent.parent / "src/hyperlaw/curves/data/lcpfn.npz"


# --- the prior ---------------------------------------------------------------------------------
def sample_curves(rng: np.random.Generator, count: int) -> tuple[np.ndarray, np.ndarray]:
    """`count` curves from the prior on t = 1..100: (noiseless, noisy), each (count, 100)."""
    t = np.arange(1, HORIZON + 1, dtype=float)
    kept: list[np.ndarray] = []
    total = 0
    while total < count:
        n = 6 * (count - total) + 16  # about a fifth of the draws pass the rejection rules
        a, c, alpha = rng.uniform(-0.6, 0.6, n), rng.uniform(0, 1.25, n), rng.lognormal(0, 2, n)
        c2, a2 = rng.uniform(0, 1, n), rng.uniform(-0.5, 0.5, n)
        top, bottom = rng.uniform(0, 1, n), rng.uniform(0, 2, n)
        kappa, delta = rng.lognormal(-2, 1, n), rng.lognormal(0, 0.5, n)
        w = rng.uniform(0, 1, (n, 3))
        with np.errstate(all="ignore"):
            pow3 = c[:, None] - a[:, None] * t ** (-alpha[:, None])
            ilog2 = c2[:, None] - a2[:, None] / np.log(t + 1)
            decay = np.exp(-kappa[:, None] * t ** delta[:, None])
            jan = top[:, None] - (top - bottom)[:, None] * decay
            y = w[:, :1] * pow3 + w[:, 1:2] * ilog2 + w[:, 2:] * jan
        ok = np.isfinite(y).all(1) & (y[:, -1] > y[:, 0]) & (y >= 0).all(1) & (y <= 1).all(1)
        kept.append(y[ok])
        total += int(ok.sum())
    clean = np.concatenate(kept)[:count]
    sigma = np.exp(rng.normal(-4.0, 1.0, count))
    return clean, clean + sigma[:, None] * rng.normal(size=clean.shape)


def time_features(t: torch.Tensor) -> torch.Tensor:
    """The two input features of a step t in (0, 100]: t/100 and ln(t)/ln(100)."""
    return torch.stack([t / HORIZON, torch.log(t) / math.log(HORIZON)], dim=-1)


# --- the model ---------------------------------------------------------------------------------
class Block(nn.Module):
    """Pre-norm transformer block: masked multi-head attention, then a tanh-GELU feed-forward."""

    def __init__(self, dim: int, heads: int, hidden: int) -> None:
        super().__init__()
        self.heads = heads
        self.norm1, self.norm2 = nn.LayerNorm(dim), nn.LayerNorm(dim)
        self.qkv = nn.Linear(dim, 3 * dim)
        self.proj = nn.Linear(dim, dim)
        self.ff1, self.ff2 = nn.Linear(dim, hidden), nn.Linear(hidden, dim)

    def forward(self, h: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
        """h: (B, N, D); bias: (B, 1, N) additive attention bias over keys (0 or −inf)."""
        b, n, d = h.shape
        q, k, v = self.qkv(self.norm1(h)).view(b, n, 3, self.heads, d // self.heads).unbind(2)
        q, k, v = (x.transpose(1, 2) for x in (q, k, v))  # (B, H, N, d_h)
        scores = q @ k.transpose(-1, -2) / math.sqrt(d // self.heads) + bias[:, None]
        mixed = (scores.softmax(-1) @ v).transpose(1, 2).reshape(b, n, d)
        h = h + self.proj(mixed)
        return h + self.ff2(nn.functional.gelu(self.ff1(self.norm2(h)), approximate="tanh"))


class PFN(nn.Module):
    """Context tokens (t, y) and query tokens t in; per token, logits over the buckets out."""

    def __init__(self, dim: int, layers: int, heads: int, hidden: int, buckets: int) -> None:
        super().__init__()
        self.embed_t = nn.Linear(2, dim)
        self.embed_y = nn.Linear(1, dim)
        self.blocks = nn.ModuleList(Block(dim, heads, hidden) for _ in range(layers))
        self.norm = nn.LayerNorm(dim)
        self.head1, self.head2 = nn.Linear(dim, hidden), nn.Linear(hidden, buckets)

    def forward(self, t: torch.Tensor, y: torch.Tensor, keep: torch.Tensor) -> torch.Tensor:
        """t: (B, N) steps; y: (B, C) values at the first C steps (the context); keep: (B, C)
        bool, which context points were observed. Returns logits (B, N − C, buckets) at the
        remaining N − C steps (the queries)."""
        context = keep.shape[1]
        h = self.embed_t(time_features(t))
        h = torch.cat([h[:, :context] + self.embed_y(y[..., None]), h[:, context:]], dim=1)
        bias = torch.zeros(keep.shape, dtype=h.dtype).masked_fill(~keep, float("-inf"))
        bias = torch.cat([bias, torch.full((t.shape[0], t.shape[1] - context), float("-inf"))],
                         dim=1)[:, None, :]
        for block in self.blocks:
            h = block(h, bias)
        queries = self.norm(h[:, context:])
        return self.head2(nn.functional.gelu(self.head1(queries), approximate="tanh"))


def weights_of(model: PFN) -> dict[str, np.ndarray]:
    return {name: p.detach().numpy().astype(np.float32) for name, p in model.state_dict().items()}


def save(model: PFN, args: argparse.Namespace, step: int, loss: float, path: Path) -> None:
    """Write the weights and the architecture atomically (a reader never sees half a file)."""
    meta = {"dim": args.dim, "layers": args.layers, "heads": args.heads, "hidden": args.hidden,
            "buckets": args.buckets, "horizon": HORIZON, "step": step, "seed": args.seed}
    arrays = {f"meta.{k}": np.array(v) for k, v in meta.items()}
    arrays["meta.loss"] = np.array(loss, dtype=np.float64)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp.npz")
    np.savez_compressed(tmp, **weights_of(model), **arrays)
    os.replace(tmp, path)


# --- training ----------------------------------------------------------------------------------
def make_batch(rng: np.random.Generator, size: int, queries: int) -> tuple[torch.Tensor, ...]:
    """A batch sharing one cut: the first `cut` steps are the context (a random subset of them
    for half the curves, like curves logged at irregular steps); the queries are t = 100 and
    random later steps, `queries` in all (fewer when fewer remain)."""
    _, noisy = sample_curves(rng, size)
    cut = int(rng.integers(1, HORIZON))
    keep = np.ones((size, cut), dtype=bool)
    sparse = rng.random(size) < 0.5
    subset = rng.random((size, cut)) < rng.uniform(0.1, 1.0, (size, 1))
    subset[np.arange(size), rng.integers(0, cut, size)] = True  # at least one point each
    keep[sparse] = subset[sparse]
    count = min(queries, HORIZON - cut)
    later = rng.random((size, HORIZON - 1 - cut)).argsort(axis=1)[:, : count - 1] + cut
    index = np.concatenate([np.broadcast_to(np.arange(cut), (size, cut)), later,
                            np.full((size, 1), HORIZON - 1)], axis=1)
    t = (index + 1).astype(np.float32)
    y = np.take_along_axis(noisy, index, axis=1).astype(np.float32)
    return (torch.from_numpy(t), torch.from_numpy(y[:, :cut].copy()), torch.from_numpy(keep),
            torch.from_numpy(y[:, cut:].copy()))


def bucket_of(y: torch.Tensor, buckets: int) -> torch.Tensor:
    return (y.clamp(0.0, 1.0) * buckets).long().clamp(max=buckets - 1)


def evaluate(model: PFN, batches: list[tuple[torch.Tensor, ...]], buckets: int) -> float:
    """Mean negative log density of the held-out query values (lower is better)."""
    model.eval()
    total, count = 0.0, 0
    with torch.no_grad():
        for t, y, keep, target in batches:
            logits = model(t, y, keep).reshape(-1, buckets)
            nll = nn.functional.cross_entropy(logits, bucket_of(target.reshape(-1), buckets),
                                              reduction="sum")
            total += float(nll) - math.log(buckets) * logits.shape[0]
            count += logits.shape[0]
    model.train()
    return total / count


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=4000)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--queries", type=int, default=8, help="query steps per curve")
    parser.add_argument("--dim", type=int, default=64)
    parser.add_argument("--layers", type=int, default=4)
    parser.add_argument("--heads", type=int, default=4)
    parser.add_argument("--hidden", type=int, default=128)
    parser.add_argument("--buckets", type=int, default=400)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--save-every", type=int, default=250)
    parser.add_argument("--stop-at", type=int, default=None,
                        help="end after this step (the schedule still spans --steps): "
                             "reproduces a checkpoint of a longer run")
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args()

    torch.manual_seed(args.seed)
    torch.set_num_threads(args.threads)
    torch.use_deterministic_algorithms(True)
    rng = np.random.default_rng(args.seed)
    held_out = [make_batch(np.random.default_rng([args.seed, 1, i]), 64, args.queries)
                for i in range(8)]
    model = PFN(args.dim, args.layers, args.heads, args.hidden, args.buckets)
    params = sum(p.numel() for p in model.parameters())
    print(f"parameters: {params} ({4 * params / 1e6:.2f} MB as float32)", flush=True)
    opt = torch.optim.AdamW(model.parameters(), lr=args.lr, weight_decay=0.0)
    warmup = max(args.steps // 20, 1)

    def rate(step: int) -> float:
        if step < warmup:
            return (step + 1) / warmup
        return 0.5 * (1 + math.cos(math.pi * (step - warmup) / max(args.steps - warmup, 1)))

    sched = torch.optim.lr_scheduler.LambdaLR(opt, rate)
    start, running = time.monotonic(), float("nan")
    last = args.steps if args.stop_at is None else min(args.stop_at, args.steps)
    for step in range(1, last + 1):
        t, y, keep, target = make_batch(rng, args.batch, args.queries)
        logits = model(t, y, keep).reshape(-1, args.buckets)
        loss = nn.functional.cross_entropy(logits, bucket_of(target.reshape(-1), args.buckets))
        opt.zero_grad()
        loss.backward()
        nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        sched.step()
        nll = loss.item() - math.log(args.buckets)
        running = nll if math.isnan(running) else 0.98 * running + 0.02 * nll
        if step % 50 == 0 or step == last:
            print(f"step {step} train nll {running:.3f} "
                  f"elapsed {time.monotonic() - start:.0f}s", flush=True)
        if step % args.save_every == 0 or step == last:
            held = evaluate(model, held_out, args.buckets)
            save(model, args, step, held, args.out)
            print(f"step {step} held-out nll {held:.3f} saved {args.out}", flush=True)
    print(f"done in {time.monotonic() - start:.0f}s", flush=True)


if __name__ == "__main__":
    main()
