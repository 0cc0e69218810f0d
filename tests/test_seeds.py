"""Multi-seed tuning: each configuration trains on several tuning seeds in lockstep, the
scheduler judges the seeds' aggregate, test seeds stay apart; real (tiny) training."""

from __future__ import annotations

import statistics
import threading
from pathlib import Path

import numpy as np
import pytest
import torch
from sklearn.datasets import load_digits

import hyperlaw as hl
from hyperlaw.errors import HyperlawError
from hyperlaw.schedulers import ASHA

X, Y = load_digits(return_X_y=True)
X_T, Y_T = torch.tensor(X / 16.0, dtype=torch.float32), torch.tensor(Y)
SPACE = {"lr": hl.Float(1e-4, 1.0, log=True)}
EPOCHS = 4


def train(trial: hl.Trial) -> float:
    """A linear classifier whose initialisation and data order follow `trial.seed`."""
    assert trial.seed is not None
    generator = torch.Generator().manual_seed(trial.seed)
    model = torch.nn.Linear(64, 10)
    with torch.no_grad():
        model.weight.copy_(torch.randn(10, 64, generator=generator))
    optimizer = torch.optim.SGD(model.parameters(), lr=trial.params["lr"])
    loss = float("nan")
    for epoch in range(EPOCHS):
        for batch in torch.randperm(1200, generator=generator).split(200):
            optimizer.zero_grad()
            torch.nn.functional.cross_entropy(model(X_T[batch]), Y_T[batch]).backward()
            optimizer.step()
        with torch.no_grad():
            loss = float(torch.nn.functional.cross_entropy(model(X_T[1200:]), Y_T[1200:]))
        trial.report(loss, epoch)
    return loss


def test_each_configuration_trains_on_every_tuning_seed_in_worker_processes(
        tmp_path: Path) -> None:
    torch.set_num_threads(1)
    study = hl.create_study(storage=f"sqlite:///{tmp_path / 's.db'}", space=SPACE, seed=0)
    study.optimize(train, n_trials=2, seeds_per_config=3, n_workers=2, show_progress=False)
    assert len(study.trials) == 2
    for trial in study.trials:
        assert trial.state is hl.TrialState.COMPLETE
        assert trial.user_attrs["seeds"] == [0, 1, 2]
        values = trial.user_attrs["seed_values"]
        assert len(set(values)) == 3  # three different trainings
        assert trial.value == pytest.approx(statistics.fmean(values))
        assert sorted(trial.intermediate) == list(range(EPOCHS))


REPORTS: dict[tuple[int, int], list[int]] = {}
LOCK = threading.Lock()


def scripted(trial: hl.Trial) -> float:
    """Reports value = lr + seed at each step, recording the steps each seed reached."""
    assert trial.seed is not None
    for step in range(EPOCHS):
        with LOCK:
            REPORTS.setdefault((trial.number, trial.seed), []).append(step)
        trial.report(trial.params["lr"] + trial.seed, step)
    return trial.params["lr"] + trial.seed


def test_the_scheduler_judges_and_stops_the_seeds_together() -> None:
    REPORTS.clear()
    study = hl.create_study(space=SPACE, seed=0,
                            scheduler=ASHA(min_budget=1, max_budget=EPOCHS - 1,
                                           reduction_factor=2))
    for lr in (0.1, 0.9, 0.05, 0.8):
        study.enqueue({"lr": lr})
    study.optimize(scripted, n_trials=4, seeds_per_config=[3, 7], seed_aggregate="max",
                   show_progress=False)
    for trial in study.trials:
        for value in trial.intermediate.values():
            assert value == pytest.approx(trial.params["lr"] + 7)  # the max of the two seeds
        steps = [REPORTS[(trial.number, seed)] for seed in (3, 7)]
        assert steps[0] == steps[1]  # stopped at the same step, together
    pruned = [t for t in study.trials if t.state is hl.TrialState.PRUNED]
    assert {t.params["lr"] for t in pruned} >= {0.9}
    assert all(max(REPORTS[(t.number, 3)]) < EPOCHS - 1 for t in pruned)


def failing(trial: hl.Trial) -> float:
    for step in range(EPOCHS):
        if trial.seed == 1 and step == 2:
            raise ValueError("seed 1 diverged")
        trial.report(1.0, step)
    return 1.0


def test_a_failing_seed_fails_the_trial_and_releases_the_others() -> None:
    study = hl.create_study(space=SPACE, seed=0)
    study.optimize(failing, n_trials=1, seeds_per_config=3, show_progress=False)
    trial = study.trials[0]
    assert trial.state is hl.TrialState.FAILED
    assert "seed 1 diverged" in (trial.error or "")
    assert sorted(trial.intermediate) == [0, 1]


def resumable(trial: hl.Trial) -> float:
    """Each seed keeps its own state in the trial's checkpoints."""
    assert trial.seed is not None
    state = trial.load_checkpoint() or {"seed": trial.seed, "step": -1}
    assert state["seed"] == trial.seed  # its own, not another seed's
    for step in range(state["step"] + 1, EPOCHS):
        trial.report(trial.params["lr"] * (trial.seed + 1) / (step + 1), step,
                     checkpoint={"seed": trial.seed, "step": step})
    return trial.params["lr"] * (trial.seed + 1) / EPOCHS


def test_a_paused_multi_seed_trial_resumes_each_seed_from_its_own_state(
        tmp_path: Path) -> None:
    study = hl.create_study(space=SPACE, seed=0, checkpoint_dir=str(tmp_path / "ckpt"),
                            scheduler=ASHA(min_budget=1, max_budget=EPOCHS - 1,
                                           reduction_factor=2, promotion=True))
    study.enqueue({"lr": 0.1})
    study.enqueue({"lr": 0.9})
    study.optimize(resumable, n_trials=4, seeds_per_config=2, show_progress=False)
    continued = [t for t in study.trials if "promoted_from" in t.system_attrs]
    assert continued and all(t.state is not hl.TrialState.FAILED for t in study.trials)
    assert min(continued[0].intermediate) > 0  # it went on after its checkpoint


def test_test_seeds_stay_apart_and_the_winner_gets_an_interval(tmp_path: Path) -> None:
    torch.set_num_threads(1)
    study = hl.create_study(storage=f"sqlite:///{tmp_path / 's.db'}", space=SPACE, seed=0)
    study.optimize(train, n_trials=2, seeds_per_config=2, show_progress=False)
    with pytest.raises(HyperlawError, match=r"seeds \[1\] were already used for tuning"):
        study.reevaluate(train, top_k=1, seeds=[1, 100])
    [winner] = study.reevaluate(train, top_k=1, seeds=range(100, 105))
    low, high = winner.interval(0.95)
    assert low < winner.mean < high and winner.seeds == (100, 101, 102, 103, 104)


def test_bad_settings_are_named() -> None:
    study = hl.create_study(space=SPACE)
    with pytest.raises(HyperlawError, match="seeds_per_config must be >= 1"):
        study.optimize(train, n_trials=1, seeds_per_config=0)
    with pytest.raises(HyperlawError, match="lists a seed twice"):
        study.optimize(train, n_trials=1, seeds_per_config=[1, 1])
    with pytest.raises(HyperlawError, match="seed_aggregate must be one of"):
        study.optimize(train, n_trials=1, seeds_per_config=2, seed_aggregate="mode")
    study.optimize(lambda trial: "low", n_trials=1, seeds_per_config=2, show_progress=False)
    assert "must return one number" in (study.trials[0].error or "")
    two = hl.create_study(space=SPACE, directions=["minimize", "minimize"])
    two.optimize(lambda trial: (1.0, 2.0), n_trials=1, seeds_per_config=2, show_progress=False)
    assert "one objective" in (two.trials[0].error or "")
    assert hl.create_study(space=SPACE).ask().seed is None


def global_rng(trial: hl.Trial) -> float:
    """Draws from the global torch and NumPy generators after seeding them, as objectives do."""
    assert trial.seed is not None
    torch.manual_seed(trial.seed)
    np_rng_seed(trial.seed)
    value = 0.0
    for step in range(EPOCHS):
        value += float(torch.rand(1)) + float(np.random.rand())
        torch.randn(100)  # consumes the generator as a training step would
        trial.report(value, step)
    return value


def np_rng_seed(seed: int) -> None:
    np.random.seed(seed)


def test_each_seed_runs_as_it_would_alone_despite_global_generators() -> None:
    class Alone:  # a plain trial-like object for the standalone run
        def __init__(self, seed: int) -> None:
            self.seed = seed

        def report(self, value: float, step: int) -> None:
            pass

    alone = [global_rng(Alone(seed)) for seed in (3, 7, 11)]  # type: ignore[arg-type]
    torch.manual_seed(123)
    before = torch.get_rng_state()
    study = hl.create_study(space=SPACE, seed=0)
    study.optimize(global_rng, n_trials=2, seeds_per_config=[3, 7, 11], show_progress=False)
    for trial in study.trials:
        assert trial.user_attrs["seed_values"] == pytest.approx(alone, rel=1e-12)
    assert torch.equal(torch.get_rng_state(), before)  # the caller's state is given back


def _seed_value(trial: hl.Trial) -> float:
    """A result that depends on the seed: reusing it on other seeds would be wrong."""
    return trial.params["lr"] + trial.seed


def _worst(values: list[float]) -> float:
    return max(values)


@pytest.mark.parametrize("storage", [None, "sqlite"])
def test_dedup_reuses_a_multi_seed_result_only_for_the_same_seeds_and_aggregate(
        storage: str | None, tmp_path: Path) -> None:
    url = None if storage is None else f"sqlite:///{tmp_path / 'seeds.db'}"
    study = hl.create_study(storage=url, space=SPACE, sampler="random", seed=0)
    ran: list[tuple[int, int]] = []

    def objective(trial: hl.Trial) -> float:
        ran.append((trial.number, trial.seed))
        return _seed_value(trial)

    def run(seeds: int | list[int], aggregate: object = "mean") -> list[hl.TrialRecord]:
        before = len(study.trials)
        study.enqueue({"lr": 0.01})
        study.optimize(objective, n_trials=1, seeds_per_config=seeds,
                       seed_aggregate=aggregate, show_progress=False)  # type: ignore[arg-type]
        return study.trials[before:]

    (first,) = run([0, 1])
    (other,) = run([2, 3])
    assert "reused_from" not in other.system_attrs
    assert other.value == pytest.approx(2.51) and other.user_attrs["seeds"] == [2, 3]
    (same,) = run(2)  # seeds 0 and 1 again: the first result is reused
    assert same.system_attrs["reused_from"] == first.number and same.value == first.value
    (median,) = run([0, 1], "max")  # the same seeds under another aggregate
    assert "reused_from" not in median.system_attrs and median.value == pytest.approx(1.01)
    (named,) = run([0, 1], _worst)
    assert "reused_from" not in named.system_attrs
    (again,) = run([0, 1], _worst)  # a module-level function is known by its name
    assert again.system_attrs["reused_from"] == named.number
    (anonymous,) = run([0, 1], lambda v: max(v))  # a lambda is not told from another
    assert "reused_from" not in anonymous.system_attrs
    assert [n for n, _ in ran] == [0, 0, 1, 1, 3, 3, 4, 4, 6, 6]
