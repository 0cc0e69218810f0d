"""A small real SQLite storage for the dashboard tests, with known counts."""

from __future__ import annotations

import math
from dataclasses import dataclass

import hyperlaw as hl

SPACE = hl.Space({"lr": hl.Float(1e-4, 1e-1, log=True), "width": hl.Int(16, 256, log=True),
                  "optimizer": hl.Choice(["adam", "sgd"]), "dropout": hl.Float(0.0, 0.5)})
N_TRIALS = 30
N_STEPS = 8


@dataclass(frozen=True)
class Built:
    url: str
    counts: dict[str, int]
    complete: list[int]
    pruned: list[int]
    failed: list[int]
    best_number: int
    best_value: float


def loss(params: dict) -> float:
    """Depends mostly on the learning rate (best near 10^-2.5), a little on the rest."""
    return ((math.log10(params["lr"]) + 2.5) ** 2 + 0.05 * (params["optimizer"] == "sgd")
            + 0.1 * params["dropout"])


def build_storage(path: str) -> Built:
    """Studies `mlp` (30 finished trials + 1 running), `live` (3 trials) and `empty`."""
    url = f"sqlite:///{path}"
    study = hl.create_study("mlp", storage=url, space=SPACE, sampler="random", seed=7)
    complete, pruned, failed = [], [], []
    for i in range(N_TRIALS):
        trial = study.ask()
        target = loss(trial.params)
        steps = 3 if i % 7 == 3 else N_STEPS
        for step in range(steps):
            trial.report(target + 1.0 / (step + 1), step)
        trial.set_user_attr("seed", i)
        if i % 7 == 3:
            study.tell(trial, state="pruned")
            pruned.append(trial.number)
        elif i % 11 == 5:
            study.tell(trial, state="failed", error=f"RuntimeError: diverged at trial {i}")
            failed.append(trial.number)
        else:
            study.tell(trial, target)
            complete.append(trial.number)
    study.ask()  # stays running
    best = study.best_trial
    live = hl.create_study("live", storage=url, space=SPACE, sampler="random", seed=3)
    for _ in range(3):
        trial = live.ask()
        live.tell(trial, loss(trial.params))
    hl.create_study("empty", storage=url, direction="maximize")
    counts = {"complete": len(complete), "pruned": len(pruned), "failed": len(failed),
              "running": 1, "waiting": 0}
    return Built(url, counts, complete, pruned, failed, best.number, float(best.value))


#: choice values that end or change an HTML script element when inlined carelessly
HOSTILE_CHOICES = ["<!--<script>", "</script><b>x</b>", "a\u2028b&amp;"]
#: the plots of a report of a study with parameters
REPORT_PLOTS = ("history", "curves", "parallel", "slice", "rank", "contour", "importance", "edf",
                "timeline")


def hostile_report(out: str) -> str:
    """Write the static report of a study whose choice values are HTML, and return its path."""
    from hyperlaw.analysis import StudyColumns
    from hyperlaw.plot.report import write_report

    study = hl.create_study("html", seed=0, space={
        "lr": hl.Float(1e-4, 1e-1, log=True), "tag": hl.Choice(HOSTILE_CHOICES)})
    for _ in range(12):
        trial = study.ask()
        for step in range(3):
            trial.report(loss({**trial.params, "optimizer": "adam", "dropout": 0.0}) + 1 / (
                step + 1), step)
        study.tell(trial, loss({**trial.params, "optimizer": "adam", "dropout": 0.0})
                   + HOSTILE_CHOICES.index(trial.params["tag"]))
    columns = StudyColumns.from_store(study.store, "html")
    return str(write_report(columns, "html", out))


#: the objectives of the multi-objective test study, and its one constraint's limit
MO_OBJECTIVES = {"loss": "minimize", "latency_ms": "minimize"}
MEMORY_LIMIT = 10.0


@dataclass(frozen=True)
class MultiBuilt:
    url: str
    complete: list[int]
    front: list[int]  # of the feasible complete trials, found by brute force
    infeasible: list[int]
    failed: list[int]


def _brute_front(points: dict[int, tuple[float, ...]]) -> list[int]:
    """Trials no other trial dominates (every objective minimized)."""
    def dominates(a: tuple[float, ...], b: tuple[float, ...]) -> bool:
        return all(x <= y for x, y in zip(a, b, strict=True)) and a != b

    return sorted(n for n, p in points.items()
                  if not any(dominates(q, p) for m, q in points.items() if m != n))


def build_multi_objective(url: str) -> MultiBuilt:
    """Study `mo` (loss and latency, a memory limit, tokens as cost; 24 trials, one failed)
    and `mo3` (three objectives, the last maximized; 15 trials) in the storage at `url`."""
    study = hl.create_study("mo", storage=url, space=SPACE, sampler="random", seed=5,
                            objectives=MO_OBJECTIVES)
    complete, infeasible, failed = [], [], []
    feasible_points: dict[int, tuple[float, ...]] = {}
    for i in range(24):
        trial = study.ask()
        latency = trial.params["width"] / 10 + 5 * trial.params["dropout"]
        memory = trial.params["width"] / 16
        trial.constrain("memory_gb", memory, max=MEMORY_LIMIT)
        trial.add_cost(tokens=1000.0 * trial.params["width"])
        for step in range(3):
            trial.report((loss(trial.params) + 1 / (step + 1), latency), step)
        if i == 7:
            study.tell(trial, state="failed", error="RuntimeError: out of memory")
            failed.append(trial.number)
            continue
        study.tell(trial, (loss(trial.params), latency))
        complete.append(trial.number)
        if memory > MEMORY_LIMIT:
            infeasible.append(trial.number)
        else:
            feasible_points[trial.number] = (loss(trial.params), latency)
    three = hl.create_study("mo3", storage=url, space=SPACE, sampler="random", seed=6,
                            directions=["minimize", "minimize", "maximize"])
    for _ in range(15):
        trial = three.ask()
        three.tell(trial, (loss(trial.params), trial.params["width"] / 10.0,
                           trial.params["dropout"]))
    return MultiBuilt(url, complete, _brute_front(feasible_points), infeasible, failed)
