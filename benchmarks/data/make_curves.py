"""Regenerate the learning-curve dataset by really training small models.

Three families of curves, each over random configurations, each recording the validation loss
after every unit of training (27 units, so that budgets 1, 3, 9, 27 are the rungs of η = 3):

- ``mlp_digits``: scikit-learn MLPs on the digits data, one unit = one epoch;
- ``cnn_digits``: small PyTorch CNNs on the digits images, one unit = one epoch;
- ``charlm_pydoc``: tiny character-level GRU language models on the pydoc topics text shipped
  with Python, one unit = a fixed number of training tokens (the steps are stored in tokens).

The result is one compressed file, ``curves.npz``: per family the configurations (JSON), the
steps, the curves (configs x steps, float32) and the measured seconds per unit of training.
Diverged runs are kept: their non-finite losses are replaced by the family's cap (1.5 x the
loss of a uniform guess), as a tuner would see a useless run.

    python benchmarks/data/make_curves.py                     # the full dataset
    python benchmarks/data/make_curves.py --minutes 8         # time-boxed per family

The shipped file holds 301 MLP curves (seed 0), 200 CNN curves (`--families cnn_digits
--count 200 --seed 1`) and 300 char-LM curves (`--families charlm_pydoc --seed 1` and
`--seed 2`, 150 each, the second added with `--merge-from`). Each family was trained in one
sitting with one torch thread on a 2-core machine, so the recorded seconds per unit compare
within a family (the simulated clock of the multi-fidelity benchmark uses them).
"""

from __future__ import annotations

import argparse
import itertools
import json
import math
import time
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

HERE = Path(__file__).resolve().parent
UNITS = 27


# --- configuration sampling -------------------------------------------------------------------
def log_uniform(rng: np.random.Generator, low: float, high: float) -> float:
    return float(math.exp(rng.uniform(math.log(low), math.log(high))))


def sample_mlp(rng: np.random.Generator) -> dict[str, Any]:
    optimizer = str(rng.choice(["adam", "sgd"]))
    config = {"lr": log_uniform(rng, 1e-4, 0.5), "width": int(log_uniform(rng, 8, 256)),
              "layers": int(rng.integers(1, 4)), "optimizer": optimizer,
              "weight_decay": log_uniform(rng, 1e-6, 1e-1),
              "batch_size": int(rng.choice([16, 32, 64, 128, 256]))}
    if optimizer == "sgd":
        config["momentum"] = float(rng.uniform(0.0, 0.99))
    return config


def sample_cnn(rng: np.random.Generator) -> dict[str, Any]:
    optimizer = str(rng.choice(["adam", "sgd"]))
    config = {"lr": log_uniform(rng, 1e-4, 0.5), "channels": int(log_uniform(rng, 4, 48)),
              "conv_layers": int(rng.integers(1, 3)), "hidden": int(log_uniform(rng, 16, 128)),
              "dropout": float(rng.uniform(0.0, 0.6)), "optimizer": optimizer,
              "weight_decay": log_uniform(rng, 1e-6, 1e-2),
              "batch_size": int(rng.choice([16, 32, 64, 128]))}
    if optimizer == "sgd":
        config["momentum"] = float(rng.uniform(0.0, 0.99))
    return config


def sample_charlm(rng: np.random.Generator) -> dict[str, Any]:
    return {"lr": log_uniform(rng, 1e-4, 0.1), "hidden": int(log_uniform(rng, 16, 128)),
            "embedding": int(log_uniform(rng, 8, 64)), "seq_len": int(rng.choice([16, 32, 64])),
            "batch_size": int(rng.choice([8, 16, 32])), "clip": log_uniform(rng, 0.1, 10.0),
            "optimizer": str(rng.choice(["adam", "rmsprop", "sgd"]))}


# --- training ---------------------------------------------------------------------------------
def digits_split() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split
    from sklearn.preprocessing import StandardScaler

    x, y = load_digits(return_X_y=True)
    x_train, x_valid, y_train, y_valid = train_test_split(x, y, test_size=0.3, stratify=y,
                                                          random_state=0)
    scaler = StandardScaler().fit(x_train)
    return scaler.transform(x_train), scaler.transform(x_valid), y_train, y_valid


def train_mlp(config: dict[str, Any], seed: int, data: tuple) -> Iterator[float]:
    """The validation loss after each epoch, for as long as it is read."""
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.metrics import log_loss
    from sklearn.neural_network import MLPClassifier

    x_train, x_valid, y_train, y_valid = data
    classes = np.unique(y_train)
    model = MLPClassifier(hidden_layer_sizes=(config["width"],) * config["layers"],
                          solver=config["optimizer"], learning_rate_init=config["lr"],
                          momentum=config.get("momentum", 0.0), alpha=config["weight_decay"],
                          batch_size=config["batch_size"], random_state=seed)
    while True:
        with warnings.catch_warnings(), np.errstate(all="ignore"):
            warnings.simplefilter("ignore", ConvergenceWarning)
            warnings.simplefilter("ignore", RuntimeWarning)
            try:
                model.partial_fit(x_train, y_train, classes=classes)
                proba = model.predict_proba(x_valid)
                loss = (float(log_loss(y_valid, proba, labels=classes))
                        if np.all(np.isfinite(proba)) else math.nan)
            except (ValueError, FloatingPointError):
                loss = math.nan
        yield loss


def train_cnn(config: dict[str, Any], seed: int, data: tuple) -> Iterator[float]:
    """The validation loss after each epoch, for as long as it is read."""
    import torch
    from torch import nn

    torch.manual_seed(seed)
    x_train, x_valid, y_train, y_valid = (torch.as_tensor(a) for a in data)
    x_train = x_train.float().reshape(-1, 1, 8, 8)
    x_valid = x_valid.float().reshape(-1, 1, 8, 8)
    layers: list[nn.Module] = []
    channels_in, size = 1, 8
    for _ in range(config["conv_layers"]):
        layers += [nn.Conv2d(channels_in, config["channels"], 3, padding=1), nn.ReLU(),
                   nn.MaxPool2d(2)]
        channels_in, size = config["channels"], size // 2
    model = nn.Sequential(*layers, nn.Flatten(), nn.Dropout(config["dropout"]),
                          nn.Linear(channels_in * size * size, config["hidden"]), nn.ReLU(),
                          nn.Linear(config["hidden"], 10))
    optimizer = make_optimizer(model, config)
    loss_fn = nn.CrossEntropyLoss()
    generator = torch.Generator().manual_seed(seed)
    while True:
        model.train()
        order = torch.randperm(len(x_train), generator=generator)
        for start in range(0, len(order), config["batch_size"]):
            batch = order[start:start + config["batch_size"]]
            optimizer.zero_grad()
            loss_fn(model(x_train[batch]), y_train[batch]).backward()
            optimizer.step()
        model.eval()
        with torch.no_grad():
            yield float(loss_fn(model(x_valid), y_valid))


def make_optimizer(model: Any, config: dict[str, Any]) -> Any:
    import torch

    name, lr = config["optimizer"], config["lr"]
    decay = config.get("weight_decay", 0.0)
    if name == "adam":
        return torch.optim.Adam(model.parameters(), lr=lr, weight_decay=decay)
    if name == "rmsprop":
        return torch.optim.RMSprop(model.parameters(), lr=lr, weight_decay=decay)
    return torch.optim.SGD(model.parameters(), lr=lr, momentum=config.get("momentum", 0.9),
                           weight_decay=decay)


def pydoc_text() -> tuple[np.ndarray, np.ndarray, int]:
    """The pydoc topics text as character ids: a training part and a validation part."""
    from pydoc_data.topics import topics

    text = "".join(topics[key] for key in sorted(topics))
    alphabet = sorted(set(text))
    index = {c: i for i, c in enumerate(alphabet)}
    ids = np.array([index[c] for c in text], dtype=np.int64)
    cut = int(len(ids) * 0.9)
    return ids[:cut], ids[cut:cut + 8_000], len(alphabet)


CHARLM_TOKENS_PER_UNIT = 8_192


def train_charlm(config: dict[str, Any], seed: int, data: tuple) -> Iterator[float]:
    """The validation loss after each unit of tokens, for as long as it is read."""
    import torch
    from torch import nn

    torch.manual_seed(seed)
    train_ids, valid_ids, vocab = data
    rng = np.random.default_rng(seed)

    class CharLM(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.embed = nn.Embedding(vocab, config["embedding"])
            self.rnn = nn.GRU(config["embedding"], config["hidden"], batch_first=True)
            self.head = nn.Linear(config["hidden"], vocab)

        def forward(self, x: Any) -> Any:
            return self.head(self.rnn(self.embed(x))[0])

    model = CharLM()
    optimizer = make_optimizer(model, config)
    loss_fn = nn.CrossEntropyLoss()
    seq, batch = config["seq_len"], config["batch_size"]
    steps_per_unit = max(1, CHARLM_TOKENS_PER_UNIT // (seq * batch))
    n_valid = (len(valid_ids) - 1) // 64
    valid_x = torch.as_tensor(valid_ids[:n_valid * 64].reshape(n_valid, 64))
    valid_y = torch.as_tensor(valid_ids[1:n_valid * 64 + 1].reshape(n_valid, 64))
    while True:
        model.train()
        for _ in range(steps_per_unit):
            starts = rng.integers(0, len(train_ids) - seq - 1, size=batch)
            x = torch.as_tensor(np.stack([train_ids[s:s + seq] for s in starts]))
            y = torch.as_tensor(np.stack([train_ids[s + 1:s + seq + 1] for s in starts]))
            optimizer.zero_grad()
            loss = loss_fn(model(x).reshape(-1, vocab), y.reshape(-1))
            loss.backward()
            nn.utils.clip_grad_norm_(model.parameters(), config["clip"])
            optimizer.step()
        model.eval()
        with torch.no_grad():
            yield float(loss_fn(model(valid_x).reshape(-1, vocab), valid_y.reshape(-1)))


FAMILIES = {
    # name: (sampler, trainer, data loader, classes for the loss cap, step unit, default count)
    "mlp_digits": (sample_mlp, train_mlp, digits_split, 10, "epoch", 300),
    "cnn_digits": (sample_cnn, train_cnn, digits_split, 10, "epoch", 250),
    "charlm_pydoc": (sample_charlm, train_charlm, pydoc_text, 103, "token", 150),
}


def generate(name: str, count: int, minutes: float, seed: int) -> dict[str, np.ndarray]:
    sampler, trainer, loader, classes, unit, _ = FAMILIES[name]
    data = loader()
    cap = 1.5 * math.log(classes)
    rng = np.random.default_rng(seed)
    configs, curves, seconds = [], [], []
    deadline = time.monotonic() + minutes * 60
    while len(configs) < count and time.monotonic() < deadline:
        config = sampler(rng)
        started = time.perf_counter()
        losses = np.array(list(itertools.islice(trainer(config, len(configs), data), UNITS)),
                          dtype=np.float64)
        seconds.append((time.perf_counter() - started) / UNITS)
        losses[~np.isfinite(losses)] = cap
        curves.append(np.minimum(losses, cap))
        configs.append(config)
    scale = CHARLM_TOKENS_PER_UNIT if unit == "token" else 1
    print(f"{name}: {len(configs)} configurations, {sum(seconds) * UNITS:.0f} s of training")
    return {f"{name}/configs": np.array(json.dumps(configs)),
            f"{name}/steps": np.arange(1, UNITS + 1, dtype=np.int64) * scale,
            f"{name}/unit": np.array(unit),
            f"{name}/curves": np.array(curves, dtype=np.float32),
            f"{name}/seconds_per_unit": np.array(seconds, dtype=np.float32)}


def merge(source: Path, target: Path) -> None:
    """Append the configurations of `source` to those of the same families in `target`."""
    with np.load(target) as old, np.load(source) as new:
        arrays = {k: old[k] for k in old.files}
        for family in sorted({k.split("/")[0] for k in new.files}):
            if f"{family}/configs" not in arrays:
                arrays.update({k: new[k] for k in new.files if k.startswith(family + "/")})
                continue
            configs = json.loads(str(arrays[f"{family}/configs"]))
            configs += json.loads(str(new[f"{family}/configs"]))
            arrays[f"{family}/configs"] = np.array(json.dumps(configs))
            for key in ("curves", "seconds_per_unit"):
                arrays[f"{family}/{key}"] = np.concatenate([arrays[f"{family}/{key}"],
                                                            new[f"{family}/{key}"]])
    np.savez_compressed(target, **arrays)
    print(f"merged {source} into {target}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--families", nargs="*", default=list(FAMILIES))
    parser.add_argument("--minutes", type=float, default=math.inf,
                        help="wall-clock cap per family (the dataset records how many it got)")
    parser.add_argument("--count", type=int, default=None, help="configurations per family")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=HERE / "curves.npz")
    parser.add_argument("--merge-from", type=Path, default=None,
                        help="append the configurations of another such file to --out and stop")
    args = parser.parse_args()
    if args.merge_from is not None:
        merge(args.merge_from, args.out)
        return
    import torch

    torch.set_num_threads(1)
    arrays: dict[str, np.ndarray] = {}
    if args.out.exists():  # keep the families not regenerated this time
        with np.load(args.out) as old:
            arrays.update({k: old[k] for k in old.files
                           if k.split("/")[0] not in args.families})
    for name in args.families:
        count = args.count or FAMILIES[name][5]
        arrays.update(generate(name, count, args.minutes, args.seed))
    np.savez_compressed(args.out, **arrays)
    print(f"wrote {args.out} ({args.out.stat().st_size / 1e6:.2f} MB)")


if __name__ == "__main__":
    main()
