"""The PyTorch TrainingLoop helper: real tiny training, resumed through checkpoints."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

import hyperlaw as hl
from hyperlaw.checkpoints import recorded
from hyperlaw.integrations.torch import TrainingLoop
from hyperlaw.schedulers import PBT
from hyperlaw.trial import TrialState

STEPS = 12
torch.set_num_threads(1)


def data() -> tuple[torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(0)
    x = torch.randn(256, 8, generator=generator)
    y = x @ torch.linspace(-1, 1, 8) + 0.1 * torch.randn(256, generator=generator)
    return x, y


def objective(trial: hl.Trial) -> float:
    x, y = data()
    torch.manual_seed(trial.number)
    model = torch.nn.Linear(8, 1)
    optimizer = torch.optim.SGD(model.parameters(), lr=1.0, momentum=0.5)
    loop = TrainingLoop(trial, model, optimizer)
    trial.set_user_attr("start", loop.start)
    trial.set_user_attr("lr_in_optimizer", optimizer.param_groups[0]["lr"])
    if trial.checkpoint is not None:  # the weights are the checkpoint's, not a fresh init
        saved = trial.load_checkpoint()["model"]
        assert torch.equal(model.weight, saved["weight"])
    loss = float("nan")
    for step in loop.steps(STEPS):
        batch = torch.randint(0, len(x), (32,))
        optimizer.zero_grad()
        torch.nn.functional.mse_loss(model(x[batch]).squeeze(1), y[batch]).backward()
        optimizer.step()
        with torch.no_grad():
            loss = float(torch.nn.functional.mse_loss(model(x).squeeze(1), y))
        loop.report(loss, step)
    return loss


def test_pbt_members_resume_with_their_own_hyperparameters(tmp_path: Path) -> None:
    study = hl.create_study(space={"lr": hl.Float(1e-4, 0.3, log=True)}, seed=1,
                            scheduler=PBT(population_size=4, interval=3, seed=2),
                            checkpoint_dir=str(tmp_path / "ckpt"))
    study.optimize(objective, show_progress=False)
    trials = study.trials
    assert not [t for t in trials if t.state is TrialState.FAILED]
    resumed = [t for t in trials if "pbt" in t.system_attrs]
    assert any(t.system_attrs["pbt"]["kind"] == "exploit" for t in resumed)
    for t in resumed:
        assert t.user_attrs["start"] == t.system_attrs["resume"]["step"] + 1
        assert t.user_attrs["lr_in_optimizer"] == pytest.approx(t.params["lr"])
    finals = [t for t in trials if t.state is TrialState.COMPLETE]
    assert len(finals) == 4 and study.best_value < 0.05


def _interrupted(trial: hl.Trial) -> float:
    x, y = data()
    model = torch.nn.Linear(8, 1)
    optimizer = torch.optim.SGD(model.parameters(), lr=1.0)
    loop = TrainingLoop(trial, model, optimizer, every=1)
    for step in loop.steps(5):
        optimizer.zero_grad()
        torch.nn.functional.mse_loss(model(x).squeeze(1), y).backward()
        optimizer.step()
        loop.report(float(step), step)
    return 0.0


def _dead_trial(sqlite_url: str, tmp_path: Path) -> tuple[hl.Study, hl.Trial]:
    """A study whose first trial trained steps 0..4 (checkpoints of steps 3 and 4 kept), then
    its worker "died"; it is queued for a retry."""
    study = hl.create_study(storage=sqlite_url, space={"lr": hl.Float(0.01, 0.1)},
                            checkpoint_dir=str(tmp_path / "ckpt"), retry_stale=1)
    first = study.ask({"lr": 0.05}, heartbeat=True)
    _interrupted(first)
    study.fail_trials_of_dead_worker([first.number], "killed")
    return study, first


def test_a_retried_trial_continues_training_from_its_checkpoint(sqlite_url: str,
                                                                tmp_path: Path) -> None:
    study, first = _dead_trial(sqlite_url, tmp_path)
    study.optimize(objective, n_trials=1, show_progress=False)
    retry = study.trials[-1]
    assert retry.system_attrs["retry_of"] == first.number
    assert retry.user_attrs["start"] == 5 and min(retry.intermediate) == 5
    assert retry.state is TrialState.COMPLETE


def test_a_damaged_newest_checkpoint_resumes_training_from_the_older_one(
        sqlite_url: str, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    study, first = _dead_trial(sqlite_url, tmp_path)
    older, newest = (Path(study.checkpoints.url) / c.path for c in recorded(study.trials[0]))
    newest.write_bytes(newest.read_bytes()[:100])  # a torch zip archive cut short
    with caplog.at_level("WARNING", logger="hyperlaw"):
        study.optimize(objective, n_trials=1, show_progress=False)
    retry = study.trials[-1]
    assert retry.system_attrs["retry_of"] == first.number
    assert retry.user_attrs["start"] == 4 and min(retry.intermediate) == 4
    assert retry.state is TrialState.COMPLETE
    assert f"trial #0 at step 4 ({newest}) cannot be read back" in caplog.text
    assert f"it resumes from the checkpoint of trial #0 at step 3 ({older})" in caplog.text


def test_a_foreign_checkpoint_is_refused(tmp_path: Path) -> None:
    study = hl.create_study(checkpoint_dir=str(tmp_path / "ckpt"), retry_stale=1)
    trial = study.ask({"lr": 0.1})
    trial.save_checkpoint({"weights": [1, 2]}, step=0)
    with pytest.raises(hl.HyperlawError, match="not written by TrainingLoop"):
        TrainingLoop(trial, torch.nn.Linear(2, 1))


def _scheduled(trial: hl.Trial) -> float:
    """Five steps of SGD whose rate halves every step (LambdaLR)."""
    x, y = data()
    model = torch.nn.Linear(8, 1)
    optimizer = torch.optim.SGD(model.parameters(), lr=1.0)
    schedule = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: 0.5 ** step)
    loop = TrainingLoop(trial, model, optimizer, schedule, every=1)
    trial.set_user_attr("lr_at_start", optimizer.param_groups[0]["lr"])
    for step in loop.steps(8):
        optimizer.zero_grad()
        torch.nn.functional.mse_loss(model(x).squeeze(1), y).backward()
        optimizer.step()
        schedule.step()
        loop.report(float(step), step)
        if trial.number == 0 and step == 4:
            break  # the first run "dies" after step 4
    return 0.0


def test_a_resumed_learning_rate_keeps_its_place_in_the_schedule(sqlite_url: str,
                                                                 tmp_path: Path) -> None:
    study = hl.create_study(storage=sqlite_url, space={"lr": hl.Float(0.01, 0.1)},
                            checkpoint_dir=str(tmp_path / "ckpt"), retry_stale=1)
    first = study.ask({"lr": 0.08}, heartbeat=True)
    _scheduled(first)
    assert first.user_attrs["lr_at_start"] == pytest.approx(0.08)
    study.fail_trials_of_dead_worker([first.number], "killed")
    study.optimize(_scheduled, n_trials=1, show_progress=False)
    retry = study.trials[-1]
    assert retry.system_attrs["retry_of"] == first.number and min(retry.intermediate) == 5
    # five scheduler steps were taken before the checkpoint of step 4
    assert retry.user_attrs["lr_at_start"] == pytest.approx(0.08 * 0.5 ** 5)
