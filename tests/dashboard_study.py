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
