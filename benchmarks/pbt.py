"""Population-based training on real CPU training runs, against search at equal compute.

Two small tasks, trained for real with PyTorch (one thread per process):

- A: an MLP (64-256-256-10, ReLU, dropout) on scikit-learn's digits, a fixed 1,197 / 600
  train / validation split; validation cross-entropy and accuracy.
- B: a character-level GRU language model (embedding 32, hidden 128, context 64) on the
  Shakespeare corpus of examples/scaling_transformer.py; validation loss in nats/char on a
  fixed sample of 128 held-out windows.

The tuned hyperparameters are AdamW's lr (log), weight decay (log) and the dropout rate. One
*step* is a fixed number of minibatches; compute is counted in steps actually trained.

Table 1, every method at the same total compute B = P x T steps (population P = 8, T steps
per full run):

1. random search: P configurations trained T steps each;
2. the auto sampler with ASHA (min budget T/9, reduction factor 3), until B steps are used;
3. PBT (interval about T/6, one worker, members take turns by pause/resume);
4. PB2 (the same with explore="pb2").

PBT's first population comes from the same seeded random sampler as random search (other
draws). Each method's result is its best final validation loss (for PBT: `study.best_trial`,
the best final member). The chosen configuration of random search and ASHA, and the winning
member's hyperparameter schedule of PBT and PB2 (`study.pbt_schedule` + `params_at`), are
then trained once more from scratch with a fresh initialization and data order: a check of
what each method found, not ranked.

Table 2, one training run of N = T steps' minibatches per method (dropout 0.1, no weight
decay): Adam with a cosine schedule at the best of 5 learning rates (and that grid's
cost, 5 runs), Adam at the default lr 1e-3 (constant and cosine), AdamHD and SGDHD
(hypergradient descent, additive and multiplicative rules) next to Adam / SGD at the same
default lr, and AutoLRS with Adam at equal compute (its exploration counted) and, for
reference, with N kept steps (about twice the compute).

Medians and min-max over seeds; the table goes to benchmarks/results/pbt.txt, raw numbers
to pbt.json (`--quick`: pbt.quick.txt, pbt.quick.json).

    python benchmarks/pbt.py --quick     # 2 seeds, shorter runs: about 5 minutes on 2 cores
    python benchmarks/pbt.py             # 3 seeds: 15-20 minutes on 2 busy cores
"""

from __future__ import annotations

import argparse
import functools
import json
import logging
import math
import os
import platform
import sys
import tempfile
import time
import traceback
from collections.abc import Callable, Mapping
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import asdict, dataclass
from multiprocessing import get_context
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "examples"))
import scaling_transformer as st

import hyperlaw as hl
from hyperlaw.integrations.torch import TrainingLoop
from hyperlaw.lr_schedules import Cosine
from hyperlaw.lr_schedules.torch import lr_scheduler
from hyperlaw.schedulers import ASHA, PBT, params_at

RESULTS = Path(__file__).resolve().parent / "results"
POPULATION = 8
BATCH = 64  # digits minibatch
LM_BATCH = 32  # language-model minibatch (windows)
CONTEXT = 64
VAL_WINDOWS = 128
FIXED_DROPOUT = 0.1  # table 2
DEFAULT_LR = 1e-3  # the optimizers' default learning rate (torch Adam; SGDHD, AdamHD)
LR_GRID = (1e-3, 3e-3, 1e-2, 3e-2, 1e-1)  # table 2's cosine grid, x3.16 apart
AUTOLRS_RANGE = (1e-4, 1e-1)
AUTOLRS_K = 5


@dataclass(frozen=True)
class Size:
    """How long one task's runs are: T steps of `batches` minibatches, PBT interval."""

    steps: int
    batches: int
    interval: int


SIZES = {"full": {"A": Size(36, 10, 6), "B": Size(24, 5, 4)},
         "quick": {"A": Size(18, 10, 3), "B": Size(12, 4, 2)}}

SPACES = {
    "A": hl.Space({"lr": hl.Float(1e-4, 1e-1, log=True),
                   "weight_decay": hl.Float(1e-5, 1.0, log=True),
                   "dropout": hl.Float(0.0, 0.6)}),
    "B": hl.Space({"lr": hl.Float(1e-4, 1e-1, log=True),
                   "weight_decay": hl.Float(1e-5, 1.0, log=True),
                   "dropout": hl.Float(0.0, 0.4)}),
}
TITLES = {"A": "A: MLP on digits (val cross-entropy)",
          "B": "B: char-level GRU on Shakespeare (val nats/char)"}


# --- data and models --------------------------------------------------------------------------
@functools.cache
def digits() -> tuple[torch.Tensor, ...]:
    """Train and validation images (scaled to [0, 1]) and labels, split once with seed 0."""
    from sklearn.datasets import load_digits

    x, y = load_digits(return_X_y=True)
    order = np.random.default_rng(0).permutation(len(y))
    val, train = order[:600], order[600:]
    xs = torch.tensor(x / 16.0, dtype=torch.float32)
    ys = torch.tensor(y)
    return xs[train], ys[train], xs[val], ys[val]


@functools.cache
def characters() -> tuple[torch.Tensor, torch.Tensor, int]:
    """Training ids, the fixed validation windows, and the vocabulary size."""
    train, val, vocab = st.corpus()
    starts = np.random.default_rng(0).integers(0, len(val) - CONTEXT - 1, VAL_WINDOWS)
    windows = torch.from_numpy(np.stack([val[s: s + CONTEXT + 1] for s in starts]))
    return torch.from_numpy(train), windows, vocab


class CharGRU(nn.Module):
    def __init__(self, vocab: int, embedding: int = 32, hidden: int = 128) -> None:
        super().__init__()
        self.embed = nn.Embedding(vocab, embedding)
        self.gru = nn.GRU(embedding, hidden, batch_first=True)
        self.drop = nn.Dropout(0.0)
        self.head = nn.Linear(hidden, vocab)

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        out, _ = self.gru(self.drop(self.embed(ids)))
        return self.head(self.drop(out))


def build(task: str) -> nn.Module:
    """A fresh model for `task` (initialized from the torch RNG)."""
    if task == "A":
        return nn.Sequential(nn.Linear(64, 256), nn.ReLU(), nn.Dropout(0.0),
                             nn.Linear(256, 256), nn.ReLU(), nn.Dropout(0.0),
                             nn.Linear(256, 10))
    return CharGRU(characters()[2])


def minibatch_loss(task: str, model: nn.Module) -> torch.Tensor:
    """The training loss of one minibatch drawn from the torch RNG."""
    if task == "A":
        x, y, _, _ = digits()
        index = torch.randint(0, len(y), (BATCH,))
        return F.cross_entropy(model(x[index]), y[index])
    ids, _, vocab = characters()
    starts = torch.randint(0, len(ids) - CONTEXT - 1, (LM_BATCH,)).unsqueeze(1)
    windows = ids[starts + torch.arange(CONTEXT + 1)]
    logits = model(windows[:, :-1])
    return F.cross_entropy(logits.reshape(-1, vocab), windows[:, 1:].reshape(-1))


def train_minibatch(task: str, model: nn.Module, optimizer: torch.optim.Optimizer) -> float:
    model.train()
    loss = minibatch_loss(task, model)
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    optimizer.step()
    return loss.item()


def validate(task: str, model: nn.Module) -> tuple[float, float | None]:
    """Validation loss (a diverged model counts as twice the loss of a uniform guess) and,
    for task A, accuracy."""
    model.eval()
    with torch.no_grad():
        if task == "A":
            _, _, x, y = digits()
            logits = model(x)
            loss, accuracy = float(F.cross_entropy(logits, y)), float(
                (logits.argmax(1) == y).float().mean())
            classes = 10
        else:
            _, windows, classes = characters()
            logits = model(windows[:, :-1])
            loss = float(F.cross_entropy(logits.reshape(-1, classes),
                                         windows[:, 1:].reshape(-1)))
            accuracy = None
    model.train()
    return (loss if math.isfinite(loss) else 2 * math.log(classes)), accuracy


def set_dropout(model: nn.Module, p: float) -> None:
    for module in model.modules():
        if isinstance(module, nn.Dropout):
            module.p = float(p)


def apply_params(model: nn.Module, optimizer: torch.optim.Optimizer,
                 params: Mapping[str, Any]) -> None:
    """Set lr, weight decay and dropout (used by the replays; TrainingLoop does the first
    two for trials)."""
    for group in optimizer.param_groups:
        group["lr"], group["weight_decay"] = params["lr"], params["weight_decay"]
    set_dropout(model, params["dropout"])


def train_step(task: str, model: nn.Module, optimizer: torch.optim.Optimizer,
               size: Size) -> None:
    """One step: `size.batches` minibatches."""
    for _ in range(size.batches):
        train_minibatch(task, model, optimizer)


def init_seed(seed: int, number: int) -> int:
    return seed * 100_003 + number


def fresh_model(task: str, params: Mapping[str, Any], seed: int
                ) -> tuple[nn.Module, torch.optim.AdamW]:
    torch.manual_seed(seed)
    model = build(task)
    optimizer = torch.optim.AdamW(model.parameters(), lr=params["lr"],
                                  weight_decay=params["weight_decay"])
    set_dropout(model, params["dropout"])
    return model, optimizer


def replay(task: str, size: Size, params_of_step: Callable[[int], Mapping[str, Any]],
           seed: int) -> dict[str, Any]:
    """Train from scratch with the hyperparameters `params_of_step(step)` at each step."""
    model, optimizer = fresh_model(task, params_of_step(0), seed)
    for step in range(size.steps):
        apply_params(model, optimizer, params_of_step(step))
        train_step(task, model, optimizer, size)
    loss, accuracy = validate(task, model)
    return {"loss": loss, "accuracy": accuracy}


# --- table 1: searches at equal compute -------------------------------------------------------
def budgeted_search(task: str, size: Size, seed: int, storage: str, *, sampler: str,
                    scheduler: Any) -> tuple[hl.Study, int]:
    """ask/tell trials of up to T steps until P x T steps are trained; the last trial is cut
    (and told as pruned) when the budget runs out. Reports go at steps 1..T."""
    study = hl.create_study(storage=storage, space=SPACES[task], sampler=sampler,
                            scheduler=scheduler, seed=seed)
    budget, used = POPULATION * size.steps, 0
    while used < budget:
        trial = study.ask()
        model, optimizer = fresh_model(task, trial.params, init_seed(seed, trial.number))
        for step in range(1, size.steps + 1):
            if used == budget:
                study.tell(trial, state=hl.TrialState.PRUNED)
                break
            train_step(task, model, optimizer, size)
            used += 1
            loss, accuracy = validate(task, model)
            try:
                trial.report(loss, step)
            except hl.TrialPruned:
                study.tell(trial, state=hl.TrialState.PRUNED)
                break
        else:
            trial.set_user_attr("accuracy", accuracy)
            study.tell(trial, loss)
    return study, used


def pbt_objective(task: str, size: Size, seed: int) -> Callable[[hl.Trial], float]:
    def objective(trial: hl.Trial) -> float:
        model, optimizer = fresh_model(task, trial.params, init_seed(seed, trial.number))
        loop = TrainingLoop(trial, model, optimizer)  # resumes; applies lr and weight decay
        loss, accuracy = validate(task, model)  # only used when nothing is left to train
        for step in loop.steps(size.steps):
            set_dropout(model, trial.params["dropout"])
            train_step(task, model, optimizer, size)
            loss, accuracy = validate(task, model)
            loop.report(loss, step)
        trial.set_user_attr("accuracy", accuracy)
        return loss
    return objective


def population_search(task: str, size: Size, seed: int, storage: str, checkpoints: str,
                      explore: str) -> hl.Study:
    scheduler = PBT(population_size=POPULATION, interval=size.interval, explore=explore,
                    seed=seed)
    study = hl.create_study(storage=storage, space=SPACES[task], sampler="random",
                            scheduler=scheduler, seed=seed, checkpoint_dir=checkpoints)
    study.optimize(pbt_objective(task, size, seed), n_trials=None, n_workers=1,
                   show_progress=False)
    return study


def tune_job(task: str, method: str, seed: int, size: Size) -> dict[str, Any]:
    """One method on one task and seed, then the re-run of what it found."""
    torch.set_num_threads(1)
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="hyperlaw-pbt-") as tmp:
        storage = f"sqlite:///{tmp}/study.db"
        if method in ("random", "asha"):
            scheduler = (ASHA(min_budget=size.steps / 9, max_budget=size.steps,
                              reduction_factor=3) if method == "asha" else "fifo")
            study, _ = budgeted_search(task, size, seed, storage,
                                       sampler="auto" if method == "asha" else "random",
                                       scheduler=scheduler)
        else:
            study = population_search(task, size, seed, storage, f"{tmp}/checkpoints",
                                      explore="pb2" if method == "pb2" else "perturb")
        trials = study.trials
        best = study.best_trial
        out: dict[str, Any] = {
            "loss": best.value, "accuracy": best.user_attrs.get("accuracy"),
            "params": best.params, "best_trial": best.number,
            "steps": sum(len(t.intermediate) for t in trials), "budget": POPULATION * size.steps,
            "trials": len(trials),
            "states": {s.value: sum(t.state is s for t in trials) for s in hl.TrialState
                       if any(t.state is s for t in trials)},
            "initial_params": [t.params for t in trials if "pbt" not in t.system_attrs
                               ][:POPULATION],
            "search_seconds": time.perf_counter() - started}
        if method in ("random", "asha"):
            out["complete_full_runs"] = sum(t.state is hl.TrialState.COMPLETE for t in trials)
            params = dict(best.params)
            out["rerun"] = replay(task, size, lambda _step: params, init_seed(seed, 99_999))
        else:
            kinds = [(t.system_attrs.get("pbt") or {}).get("kind") for t in trials]
            out["exploits"], out["pauses"] = kinds.count("exploit"), kinds.count("pause")
            schedule = study.pbt_schedule(best)
            out["schedule"] = [{"start": s.start, "trial": s.trial, "params": dict(s.params)}
                               for s in schedule]
            out["rerun"] = replay(task, size, lambda step: params_at(schedule, step),
                                  init_seed(seed, 99_999))
    out["seconds"] = time.perf_counter() - started
    return out


# --- table 2: one training run ----------------------------------------------------------------
SINGLE = (*(f"cosine@{lr:g}" for lr in LR_GRID), "adam", "adamhd", "adamhd-mult", "sgd",
          "sgdhd", "sgdhd-mult", "autolrs", "autolrs-kept")


def autolrs_sizes(n: int) -> dict[str, int]:
    """Stages scaled to the run: exploration k*tau' = tau, as AutoLRS's defaults (k=10,
    tau'=tau/10) have, with k=5 so that a candidate's series is not too short."""
    tau = max(n // 12, 15)
    return {"tau": tau, "tau_prime": max(3, tau // AUTOLRS_K), "k": AUTOLRS_K,
            "tau_max": 4 * tau}


def single_job(task: str, method: str, seed: int, size: Size) -> dict[str, Any]:
    """One training run of N = T * batches minibatches with `method`."""
    torch.set_num_threads(1)
    started = time.perf_counter()
    n = size.steps * size.batches
    torch.manual_seed(init_seed(seed, 50_000))  # the same initialization for every method
    model = build(task)
    set_dropout(model, FIXED_DROPOUT)
    out: dict[str, Any] = {"compute": n, "kept": n}
    try:
        if method.startswith("autolrs"):
            from hyperlaw.integrations.autolrs import AutoLRS

            optimizer: torch.optim.Optimizer = torch.optim.Adam(model.parameters(),
                                                                lr=DEFAULT_LR)
            search = AutoLRS(model, optimizer, lambda: train_minibatch(task, model, optimizer),
                             min_lr=AUTOLRS_RANGE[0], max_lr=AUTOLRS_RANGE[1],
                             val_loss=lambda: validate(task, model)[0], seed=seed,
                             **autolrs_sizes(n))
            search.run(n, budget="compute" if method == "autolrs" else "kept")
            out.update(compute=search.compute_steps, kept=search.steps_used,
                       schedule=search.schedule, settings=autolrs_sizes(n))
        else:
            optimizer = make_optimizer(method, model)
            scheduler = None
            if method.startswith("cosine@"):
                scheduler = lr_scheduler(optimizer, Cosine(peak_lr=float(method[7:]),
                                                           total_steps=n))
            for _ in range(n):
                train_minibatch(task, model, optimizer)
                if scheduler is not None:
                    scheduler.step()
            out["final_lr"] = optimizer.param_groups[0]["lr"]
    except ImportError as exc:
        return {"error": f"missing: {exc}"}
    except Exception as exc:  # a module being finished: report what failed, go on
        return {"error": "".join(traceback.format_exception_only(exc)).strip()}
    out["loss"], out["accuracy"] = validate(task, model)
    out["seconds"] = time.perf_counter() - started
    return out


def make_optimizer(method: str, model: nn.Module) -> torch.optim.Optimizer:
    params = model.parameters()
    if method.startswith("cosine@") or method == "adam":
        return torch.optim.Adam(params, lr=DEFAULT_LR)
    if method == "sgd":
        return torch.optim.SGD(params, lr=DEFAULT_LR, momentum=0.9)
    from hyperlaw.integrations.hypergradient import SGDHD, AdamHD

    multiplicative = method.endswith("-mult")
    if method.startswith("adamhd"):
        return AdamHD(params, lr=DEFAULT_LR, multiplicative=multiplicative)
    return SGDHD(params, lr=DEFAULT_LR, momentum=0.9, multiplicative=multiplicative)


# --- running ----------------------------------------------------------------------------------
def run_job(key: str, size: Size) -> tuple[str, dict[str, Any]]:
    logging.getLogger("hyperlaw").setLevel(logging.ERROR)
    kind, task, method, seed = key.split("|")
    if kind == "tune":
        return key, tune_job(task, method, int(seed), size)
    return key, single_job(task, method, int(seed), size)


def job_keys(tasks: list[str], seeds: int, single_tasks: list[str]) -> list[str]:
    """Every job, the slowest first (so two processes finish together)."""
    keys = [f"tune|{t}|{m}|{s}" for t in tasks for m in ("pbt", "pb2", "asha", "random")
            for s in range(seeds)]
    keys += [f"single|{t}|{m}|{s}" for t in single_tasks for m in SINGLE for s in range(seeds)]
    return sorted(keys, key=lambda k: (k.split("|")[1] != "B", k.startswith("single")))


def summary(values: list[float], fmt: str = "{:.4f}") -> str:
    if not values:
        return "-"
    return (fmt.format(float(np.median(values))) + " [" + fmt.format(min(values)) + ", "
            + fmt.format(max(values)) + "]")


LABELS = {"random": "random search (P configs x T)", "asha": "auto sampler + ASHA",
          "pbt": "PBT", "pb2": "PB2"}
SHORT = {"random": "random", "asha": "ASHA", "pbt": "PBT", "pb2": "PB2"}


def table_one(task: str, runs: dict[str, Any], seeds: int, size: Size) -> list[str]:
    got = {m: [runs[f"tune|{task}|{m}|{s}"] for s in range(seeds)
               if f"tune|{task}|{m}|{s}" in runs] for m in LABELS}
    budget = POPULATION * size.steps
    lines = [f"## {TITLES[task]}: P={POPULATION} x T={size.steps} steps = {budget} steps per "
             f"method (1 step = {size.batches} minibatches; PBT interval {size.interval}); "
             f"{seeds} seeds",
             f"{'method':<31}{'val loss median [min, max]':<29}"
             f"{'accuracy (A)':<23}{'vs best':>8}{'rank':>5}  {'vs random':<10}"
             f"{'steps trained':<15}trials"]
    medians = {m: float(np.median([r["loss"] for r in rs])) for m, rs in got.items() if rs}
    best = min(medians.values())
    order = sorted(medians, key=medians.__getitem__)
    for m, rs in got.items():
        if not rs:
            lines.append(f"{LABELS[m]:<31}not run")
            continue
        losses = [r["loss"] for r in rs]
        acc = [100 * r["accuracy"] for r in rs if r.get("accuracy") is not None]
        versus = "-" if m == "random" or "random" not in medians else (
            "wins" if medians[m] < medians["random"] else "LOSES")
        steps = summary([r["steps"] for r in rs], "{:.0f}")
        lines.append(f"{LABELS[m]:<31}{summary(losses):<29}{summary(acc, '{:.1f}'):<23}"
                     f"{medians[m] / best:>7.3f}x{order.index(m) + 1:>5}  {versus:<10}"
                     f"{steps:<15}{np.median([r['trials'] for r in rs]):.0f}")
    lines.append("re-trained from scratch with a fresh initialization (not ranked):")
    for m, rs in got.items():
        reruns = [r["rerun"] for r in rs if "rerun" in r]
        if not reruns:
            continue
        what = "best member's schedule" if m in ("pbt", "pb2") else "chosen config"
        acc = [100 * r["accuracy"] for r in reruns if r.get("accuracy") is not None]
        lines.append(f"  {SHORT[m] + ': ' + what:<29}"
                     f"{summary([r['loss'] for r in reruns]):<29}{summary(acc, '{:.1f}')}")
    fixed = [m for m in ("random", "asha") if got[m]]
    for m in ("pbt", "pb2"):
        if not got[m] or not fixed:
            continue
        wins = 0
        for s in range(seeds):
            mine = runs.get(f"tune|{task}|{m}|{s}")
            theirs = [runs[k]["loss"] for f in fixed if (k := f"tune|{task}|{f}|{s}") in runs]
            wins += mine is not None and bool(theirs) and mine["loss"] < min(theirs)
        ratio = medians[m] / min(medians[f] for f in fixed)
        extra = [r["steps"] - r["budget"] for r in got[m]]
        half = len(got[m]) / 2
        verdict = ("WINS" if ratio < 1 and wins > half else
                   "LOSES" if ratio > 1 and wins < half else "MIXED (median and seeds disagree)")
        lines.append(
            f"{LABELS[m]} vs best fixed configuration (best of random, ASHA): median loss ratio "
            f"{ratio:.3f} -> {verdict}; better in {wins}/{len(got[m])}"
            f" seeds; steps trained - P x T: {', '.join(f'{e:+d}' for e in extra)}; exploits "
            f"{summary([r['exploits'] for r in got[m]], '{:.0f}')}, pauses "
            f"{summary([r['pauses'] for r in got[m]], '{:.0f}')}")
    return lines


SINGLE_LABELS = {
    "cosine": "Adam cosine, lr tuned (grid of 5)", "cosine@0.001": "Adam cosine, lr 1e-3",
    "adam": "Adam constant, lr 1e-3", "adamhd": "AdamHD lr 1e-3 (additive)",
    "adamhd-mult": "AdamHD lr 1e-3 (multiplicative)", "sgd": "SGD m=0.9 constant, lr 1e-3",
    "sgdhd": "SGDHD m=0.9 lr 1e-3 (additive)", "sgdhd-mult": "SGDHD m=0.9 lr 1e-3 (mult.)",
    "autolrs": "AutoLRS (Adam), equal compute", "autolrs-kept": "AutoLRS (Adam), N kept steps"}
BASELINE = {"adamhd": "adam", "adamhd-mult": "adam", "sgdhd": "sgd", "sgdhd-mult": "sgd",
            "autolrs": "adam", "autolrs-kept": "adam"}


def table_two(task: str, runs: dict[str, Any], seeds: int, size: Size) -> list[str]:
    n = size.steps * size.batches
    per_seed: dict[str, list[dict[str, Any]]] = {m: [] for m in SINGLE_LABELS}
    errors: dict[str, str] = {}
    for s in range(seeds):
        grid = {lr: runs.get(f"single|{task}|cosine@{lr:g}|{s}") for lr in LR_GRID}
        grid = {lr: r for lr, r in grid.items() if r and "loss" in r}
        if grid:
            lr = min(grid, key=lambda x: grid[x]["loss"])
            per_seed["cosine"].append({**grid[lr], "lr": lr,
                                       "compute": sum(r["compute"] for r in grid.values())})
        for m in SINGLE_LABELS:
            r = runs.get(f"single|{task}|{m}|{s}")
            if r and "loss" in r:
                per_seed[m].append(r)
            elif r:
                errors[m] = r["error"]
    lines = [f"## {TITLES[task]}: one training run of N = {n} minibatches (dropout "
             f"{FIXED_DROPOUT}, no weight decay); {seeds} seeds",
             f"{'method':<34}{'val loss median [min, max]':<29}{'accuracy (A)':<23}"
             f"{'vs tuned':>9}{'rank':>5}  {'vs default':<11}{'compute (minibatches)'}"]
    medians = {m: float(np.median([r["loss"] for r in rs])) for m, rs in per_seed.items() if rs}
    order = sorted(medians, key=medians.__getitem__)
    tuned = medians.get("cosine")
    for m, rs in per_seed.items():
        if not rs:
            lines.append(f"{SINGLE_LABELS[m]:<34}{'not run: ' + errors.get(m, '-')}")
            continue
        acc = [100 * r["accuracy"] for r in rs if r.get("accuracy") is not None]
        base = BASELINE.get(m)
        versus = "-" if base not in medians else (
            "wins" if medians[m] < medians[base] else "LOSES")
        if m == "cosine":
            compute = f"{summary([r['compute'] for r in rs], '{:.0f}')} (5 runs)"
        elif m.startswith("autolrs"):
            compute = (f"{summary([r['compute'] for r in rs], '{:.0f}')}, kept "
                       f"{summary([r['kept'] for r in rs], '{:.0f}')}")
        else:
            compute = f"{n}"
        ratio = f"{medians[m] / tuned:>8.3f}x" if tuned else f"{'-':>9}"
        lines.append(f"{SINGLE_LABELS[m]:<34}{summary([r['loss'] for r in rs]):<29}"
                     f"{summary(acc, '{:.1f}'):<23}{ratio}{order.index(m) + 1:>5}  "
                     f"{versus:<11}{compute}")
    if per_seed["cosine"]:
        edge = any(r["lr"] in (LR_GRID[0], LR_GRID[-1]) for r in per_seed["cosine"])
        lines.append("grid's best lr per seed: " + ", ".join(
            f"{r['lr']:g}" for r in per_seed["cosine"]) + f" (grid {', '.join(map(str, LR_GRID))}"
            + ("; AT THE GRID'S EDGE: the grid may be too narrow)" if edge else ")"))
    finals = {m: [r["final_lr"] for r in per_seed[m]] for m in ("adamhd", "adamhd-mult", "sgdhd",
                                                                 "sgdhd-mult") if per_seed[m]}
    if finals:
        lines.append("final adapted lr (median): " + ", ".join(
            f"{m} {np.median(v):.3g}" for m, v in finals.items()))
    lines.append("'vs default': against the same optimizer at lr 1e-3 without tuning "
                 "(Adam constant for AdamHD and AutoLRS, SGD m=0.9 for SGDHD)")
    return lines


def machine() -> dict[str, Any]:
    return {"cpus": os.cpu_count(), "load_average": os.getloadavg(),
            "python": platform.python_version(), "torch": torch.__version__,
            "hyperlaw": hl.__version__}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="2 seeds, shorter runs")
    parser.add_argument("--seeds", type=int, default=None)
    parser.add_argument("--tasks", nargs="*", default=["A", "B"], choices=["A", "B"])
    parser.add_argument("--single-tasks", nargs="*", default=["A", "B"], choices=["A", "B"],
                        help="tasks of table 2 (one training run)")
    parser.add_argument("--workers", type=int, default=2, help="processes (one thread each)")
    parser.add_argument("--resume", action="store_true",
                        help="keep the runs already in the JSON file (same settings); with "
                        "every run there, only print the tables again")
    args = parser.parse_args()
    mode = "quick" if args.quick else "full"
    seeds = args.seeds or (2 if args.quick else 3)
    sizes = SIZES[mode]
    stem = "pbt.quick" if args.quick else "pbt"
    json_path, text_path = RESULTS / f"{stem}.json", RESULTS / f"{stem}.txt"
    config = {"mode": mode, "seeds": seeds, "population": POPULATION,
              "sizes": {t: asdict(s) for t, s in sizes.items()}, "lr_grid": LR_GRID,
              "spaces": {t: s.to_json() for t, s in SPACES.items()}}
    runs: dict[str, Any] = {}
    info = machine()
    started = time.perf_counter()
    if args.resume and json_path.exists():
        previous = json.loads(json_path.read_text())
        if previous.get("config") == json.loads(json.dumps(config)):
            runs, info = previous["runs"], previous["machine"]
            started -= previous["seconds"]  # the table reports the time of every session
    keys = [k for k in job_keys(args.tasks, seeds, args.single_tasks) if k not in runs]
    print(f"{mode} mode, {seeds} seeds, {len(keys)} jobs on {args.workers} processes; "
          f"{info}", flush=True)

    def save() -> None:
        json_path.write_text(json.dumps({"config": config, "machine": info, "runs": runs,
                                         "seconds": time.perf_counter() - started}, indent=1))

    with ProcessPoolExecutor(args.workers, mp_context=get_context("spawn")) as pool:
        futures = [pool.submit(run_job, k, sizes[k.split("|")[1]]) for k in keys]
        for future in as_completed(futures):
            key, result = future.result()
            runs[key] = result
            save()
            print(f"  [{time.perf_counter() - started:6.0f} s] {key}: "
                  + (f"loss {result['loss']:.4f}" if "loss" in result else result["error"])
                  + (f", {result['steps']} steps" if "steps" in result else "")
                  + (f", {result['seconds']:.0f} s" if "seconds" in result else ""), flush=True)
    if keys or "load_average_after" not in info:
        info["load_average_after"] = os.getloadavg()
    save()
    lines = [f"hyperlaw {info['hyperlaw']}, torch {info['torch']}, {info['cpus']} cores, "
             f"{args.workers} processes of 1 thread, load average before "
             f"{', '.join(f'{x:.1f}' for x in info['load_average'])}, after "
             f"{', '.join(f'{x:.1f}' for x in info['load_average_after'])}; "
             f"{mode} mode, {(time.perf_counter() - started) / 60:.1f} min", ""]
    for task in args.tasks:
        lines += [*table_one(task, runs, seeds, sizes[task]), ""]
    for task in args.single_tasks:
        lines += [*table_two(task, runs, seeds, sizes[task]), ""]
    text = "\n".join(lines)
    print("\n" + text)
    text_path.write_text(text)


if __name__ == "__main__":
    main()
