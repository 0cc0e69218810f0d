"""Model soups against the best single fine-tune, on a fine-tuning task built offline.

    python benchmarks/soups.py                 # 5 repetitions of 16 fine-tunes each
    python benchmarks/soups.py --repeats 10 --trials 24

The task: an MLP (64-128-10) is pre-trained on 1,000 of scikit-learn's digits; it is then
fine-tuned on the other 797 images under a shift (every image rolled one pixel to the right
and given Gaussian pixel noise, std 2 on the 0-16 scale): 400 to train, 200 to validate and
197 to test. A hyperlaw study (random sampler) tunes the fine-tuning's learning rate, weight
decay and data-order seed for 12 epochs of SGD with momentum, `TrainingLoop` checkpointing
the weights. Then `study.soup` makes a greedy and a uniform soup of the top 8 by validation
loss. Printed per repetition and as medians: the test cross-entropy and accuracy of the best
single fine-tune (by validation), of the greedy soup and of the uniform soup. The test split
is never used to choose.
"""

from __future__ import annotations

import argparse
import statistics
import sys
from collections.abc import Mapping
from typing import Any

import numpy as np
import torch
from sklearn.datasets import load_digits

import hyperlaw as hl
from hyperlaw.integrations.torch import TrainingLoop
from hyperlaw.lineage import recorded

Split = tuple[torch.Tensor, torch.Tensor]


def splits(seed: int) -> dict[str, Split]:
    """Pre-training data, and the shifted fine-tuning train/validation/test splits."""
    x, y = load_digits(return_X_y=True)
    order = np.random.default_rng(seed).permutation(len(x))
    x, y = x[order], y[order]
    shifted = np.roll(x.reshape(-1, 8, 8), 1, axis=2).reshape(-1, 64)
    noisy = shifted + np.random.default_rng(seed + 1).normal(0.0, 2.0, shifted.shape)

    def tensors(a: np.ndarray, b: np.ndarray) -> Split:
        return torch.tensor(a / 16.0, dtype=torch.float32), torch.tensor(b)

    return {"pretrain": tensors(x[:1000], y[:1000]),
            "train": tensors(noisy[1000:1400], y[1000:1400]),
            "valid": tensors(noisy[1400:1600], y[1400:1600]),
            "test": tensors(noisy[1600:], y[1600:])}


def network() -> torch.nn.Module:
    return torch.nn.Sequential(torch.nn.Linear(64, 128), torch.nn.ReLU(),
                               torch.nn.Linear(128, 10))


def pretrain(data: Split, seed: int) -> dict[str, torch.Tensor]:
    torch.manual_seed(seed)
    model = network()
    optimizer = torch.optim.Adam(model.parameters(), lr=3e-3)
    x, y = data
    for _ in range(40):
        for batch in torch.randperm(len(x)).split(100):
            optimizer.zero_grad()
            torch.nn.functional.cross_entropy(model(x[batch]), y[batch]).backward()
            optimizer.step()
    return {k: v.clone() for k, v in model.state_dict().items()}


def scores(weights: Mapping[str, Any], data: Split) -> tuple[float, float]:
    """Cross-entropy and accuracy of `weights` on `data`."""
    model = network()
    model.load_state_dict(dict(weights))
    with torch.no_grad():
        logits = model(data[0])
    loss = float(torch.nn.functional.cross_entropy(logits, data[1]))
    return loss, float((logits.argmax(1) == data[1]).float().mean())


def fine_tune_objective(start: Mapping[str, torch.Tensor], train: Split, valid: Split,
                        epochs: int) -> Any:
    def objective(trial: hl.Trial) -> float:
        torch.manual_seed(trial.params["seed"])
        model = network()
        model.load_state_dict(dict(start))
        optimizer = torch.optim.SGD(model.parameters(), lr=trial.params["lr"], momentum=0.9,
                                    weight_decay=trial.params["weight_decay"])
        loop = TrainingLoop(trial, model, optimizer, every=epochs - 1)
        loss = float("nan")
        for epoch in loop.steps(epochs):
            for batch in torch.randperm(len(train[0])).split(50):
                optimizer.zero_grad()
                torch.nn.functional.cross_entropy(model(train[0][batch]),
                                                  train[1][batch]).backward()
                optimizer.step()
            loss = scores(model.state_dict(), valid)[0]
            loop.report(loss, epoch)
        return loss

    return objective


SPACE = {"lr": hl.Float(1e-3, 0.3, log=True), "weight_decay": hl.Float(1e-6, 1e-2, log=True),
         "seed": hl.Int(0, 10_000)}


def run(repeat: int, n_trials: int, top_k: int, epochs: int) -> dict[str, tuple[float, float]]:
    data = splits(repeat)
    start = pretrain(data["pretrain"], repeat)
    study = hl.create_study(space=SPACE, sampler="random", seed=repeat)
    study.optimize(fine_tune_objective(start, data["train"], data["valid"], epochs),
                   n_trials=n_trials, show_progress=False)

    def valid_loss(weights: Mapping[str, Any]) -> float:
        return scores(weights, data["valid"])[0]

    greedy = study.soup(valid_loss, top_k=top_k, method="greedy")
    uniform = study.soup(valid_loss, top_k=top_k, method="uniform")
    best = study.checkpoints.load(recorded(study.best_trial)[-1])["model"]
    return {"pre-trained": scores(start, data["test"]), "best single": scores(best, data["test"]),
            f"greedy soup ({len(greedy.ingredients)})": scores(greedy.weights, data["test"]),
            "uniform soup": scores(uniform.weights, data["test"])}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--trials", type=int, default=16)
    parser.add_argument("--top-k", type=int, default=8)
    parser.add_argument("--epochs", type=int, default=12)
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    table: dict[str, list[tuple[float, float]]] = {}
    for repeat in range(args.repeats):
        results = run(repeat, args.trials, args.top_k, args.epochs)
        print(f"repeat {repeat}: " + "; ".join(f"{name} {loss:.4f} / {acc:.3f}"
                                               for name, (loss, acc) in results.items()))
        for name, result in results.items():
            table.setdefault(name.split(" (")[0], []).append(result)
    print(f"\nmedian test cross-entropy / accuracy over {args.repeats} repetitions "
          f"({args.trials} fine-tunes, top {args.top_k}):")
    for name, rows in table.items():
        print(f"  {name:14s} {statistics.median(r[0] for r in rows):.4f} / "
              f"{statistics.median(r[1] for r in rows):.3f}")
    gains = [s[0] - g[0] for s, g in zip(table["best single"], table["greedy soup"],
                                         strict=True)]
    print(f"greedy soup below the best single in {sum(g > 0 for g in gains)} of "
          f"{len(gains)} repetitions (median loss difference {statistics.median(gains):+.4f})")


if __name__ == "__main__":
    sys.exit(main())
