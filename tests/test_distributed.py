"""Trials that train on two processes themselves (DDP with gloo on CPU): rank 0 reports, the
other rank follows the scheduler's decision; with plain torch.distributed and with
Lightning's DDP strategy. (Lightning is imported where it is used: the second process of a
plain-torch trial imports this module and needs only torch.)"""

from __future__ import annotations

import atexit
import gc
import json
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DataLoader, TensorDataset

import hyperlaw as hl
from hyperlaw.integrations.distributed import distributed_report, run_processes
from hyperlaw.schedulers import ASHA

EPOCHS = 3


def data(rank: int = 0, world: int = 1) -> tuple[torch.Tensor, ...]:
    """1000 training points (this rank's share) and 200 validation points in 16 dimensions,
    of 4 linearly separable classes."""
    generator = torch.Generator().manual_seed(0)
    x = torch.randn(1200, 16, generator=generator)
    y = (x @ torch.randn(16, 4, generator=generator)).argmax(dim=1)
    return x[:1000][rank::world], y[:1000][rank::world], x[1000:], y[1000:]


def record(log_dir: str, number: int, epochs: list[int]) -> None:
    rank = dist.get_rank() if dist.is_initialized() else 0
    Path(log_dir, f"trial-{number}-rank-{rank}.json").write_text(json.dumps(epochs))


def torch_train(trial: hl.Trial | None, params: dict[str, Any], number: int,
                log_dir: str) -> float:
    """Every rank: a DDP linear classifier (68 parameters) on its half of the data."""
    dist.init_process_group("gloo")
    rank, world = dist.get_rank(), dist.get_world_size()
    x, y, x_valid, y_valid = data(rank, world)
    torch.manual_seed(0)
    model = DistributedDataParallel(torch.nn.Linear(16, 4))
    optimizer = torch.optim.SGD(model.parameters(), lr=params["lr"])
    epochs: list[int] = []
    try:
        for epoch in range(EPOCHS):
            epochs.append(epoch)
            for i in range(0, len(x), 100):
                optimizer.zero_grad()
                torch.nn.functional.cross_entropy(model(x[i:i + 100]), y[i:i + 100]).backward()
                optimizer.step()
            with torch.no_grad():
                loss = torch.nn.functional.cross_entropy(model(x_valid), y_valid)
            dist.all_reduce(loss)
            distributed_report(trial, loss.item() / world, epoch)
    finally:
        record(log_dir, number, epochs)
    return loss.item() / world


def torch_train_counting_leftovers(trial: hl.Trial | None, params: dict[str, Any],
                                   number: int, log_dir: str) -> float:
    """`torch_train`; the other rank also writes, as it exits, how many DDP modules it
    still holds."""
    if trial is None:
        path = Path(log_dir, f"trial-{number}-ddp-alive-at-exit.json")
        atexit.register(lambda: path.write_text(json.dumps(
            sum(isinstance(o, DistributedDataParallel) for o in gc.get_objects()))))
    return torch_train(trial, params, number, log_dir)


def two_trials(tmp_path: Path, objective: Any, n_trials: int = 2,
               promotion: bool = False) -> hl.Study:
    """Enqueue a good and a useless learning rate under ASHA (η = 2, judged at epoch 1)."""
    study = hl.create_study(space={"lr": hl.Float(1e-7, 1.0, log=True)},
                            scheduler=ASHA(min_budget=1, max_budget=EPOCHS - 1,
                                           reduction_factor=2, promotion=promotion),
                            checkpoint_dir=str(tmp_path / "checkpoints"))
    study.enqueue({"lr": 0.5})
    study.enqueue({"lr": 1e-7})
    study.optimize(objective, n_trials=n_trials, show_progress=False)
    return study


def epochs_of(tmp_path: Path, number: int) -> list[list[int]]:
    return [json.loads((tmp_path / f"trial-{number}-rank-{rank}.json").read_text())
            for rank in (0, 1)]


def test_ddp_with_plain_torch_rank_0_reports_and_rank_1_follows(tmp_path: Path) -> None:
    study = two_trials(tmp_path, lambda trial: run_processes(
        trial, torch_train, 2, dict(trial.params), trial.number, str(tmp_path)))
    good, poor = study.trials
    assert good.state is hl.TrialState.COMPLETE and sorted(good.intermediate) == [0, 1, 2]
    assert poor.state is hl.TrialState.PRUNED and sorted(poor.intermediate) == [0, 1]
    assert epochs_of(tmp_path, good.number) == [[0, 1, 2]] * 2
    assert epochs_of(tmp_path, poor.number) == [[0, 1]] * 2  # rank 1 stopped with rank 0
    assert not dist.is_initialized()  # nothing left behind for the next trial


def test_the_other_ranks_free_their_model_before_the_interpreter_shuts_down(
        tmp_path: Path) -> None:
    # TrialPruned's traceback holds the DDP module in a reference cycle; freed only by the
    # interpreter's shutdown, gloo's threads could abort the rank (exit code -6).
    study = two_trials(tmp_path, lambda trial: run_processes(
        trial, torch_train_counting_leftovers, 2, dict(trial.params), trial.number,
        str(tmp_path)))
    assert [t.state for t in study.trials] == [hl.TrialState.COMPLETE, hl.TrialState.PRUNED]
    for trial in study.trials:
        alive = tmp_path / f"trial-{trial.number}-ddp-alive-at-exit.json"
        assert json.loads(alive.read_text()) == 0, trial.number


def lightning_train(trial: hl.Trial | None, params: dict[str, Any], number: int,
                    log_dir: str, start: str | None) -> float:
    """Every rank: Lightning's DDP strategy (gloo) over the two processes, from the
    checkpoint `start` when the trial continues another."""
    import lightning.pytorch as pl
    from lightning.pytorch.strategies import DDPStrategy

    from hyperlaw.integrations.lightning import HyperlawCallback, fit

    class TinyNet(pl.LightningModule):
        def __init__(self, lr: float) -> None:
            super().__init__()
            self.lr = lr
            self.layer = torch.nn.Linear(16, 4)
            self.epochs: list[int] = []

        def training_step(self, batch: tuple[torch.Tensor, ...], _: int) -> torch.Tensor:
            return torch.nn.functional.cross_entropy(self.layer(batch[0]), batch[1])

        def validation_step(self, batch: tuple[torch.Tensor, ...], _: int) -> None:
            loss = torch.nn.functional.cross_entropy(self.layer(batch[0]), batch[1])
            self.log("val_loss", loss, sync_dist=True)  # the same value on every rank

        def on_train_epoch_start(self) -> None:
            self.epochs.append(self.current_epoch)

        def configure_optimizers(self) -> torch.optim.Optimizer:
            return torch.optim.SGD(self.parameters(), lr=self.lr)

    x, y, x_valid, y_valid = data()  # Lightning shards the batches between the ranks
    torch.manual_seed(0)
    model = TinyNet(params["lr"])
    trainer = pl.Trainer(max_epochs=EPOCHS, accelerator="cpu", devices=2,
                         strategy=DDPStrategy(process_group_backend="gloo"),
                         callbacks=[HyperlawCallback(trial, monitor="val_loss")],
                         logger=False, enable_checkpointing=False, enable_progress_bar=False,
                         enable_model_summary=False, num_sanity_val_steps=0,
                         default_root_dir=log_dir)
    try:
        fit(trainer, model, DataLoader(TensorDataset(x, y), batch_size=100),
            DataLoader(TensorDataset(x_valid, y_valid), batch_size=200), ckpt_path=start)
    finally:
        record(log_dir, number, model.epochs)
    return trainer.callback_metrics["val_loss"].item()


def test_ddp_with_lightning_rank_0_reports_and_rank_1_follows(tmp_path: Path) -> None:
    from hyperlaw.integrations.lightning import resume_checkpoint

    def objective(trial: hl.Trial) -> float:
        start = resume_checkpoint(trial)  # every rank resumes from rank 0's checkpoint
        return run_processes(trial, lightning_train, 2, dict(trial.params), trial.number,
                             str(tmp_path), start)

    # ASHA's promotion variant (η = 2): the first trial pauses at epoch 1 (alone at its rung),
    # the second ranks below it and pauses; the first is promoted and goes on from epoch 2
    study = two_trials(tmp_path, objective, n_trials=3, promotion=True)
    first, poor, continued = study.trials
    assert "suspended" in first.system_attrs and sorted(first.intermediate) == [0, 1]
    assert poor.state is hl.TrialState.PRUNED and sorted(poor.intermediate) == [0, 1]
    assert continued.system_attrs["promoted_from"] == first.number
    assert continued.state is hl.TrialState.COMPLETE and sorted(continued.intermediate) == [2]
    assert epochs_of(tmp_path, first.number) == [[0, 1]] * 2  # rank 1 paused with rank 0
    assert epochs_of(tmp_path, poor.number) == [[0, 1]] * 2
    assert epochs_of(tmp_path, continued.number) == [[2]] * 2  # both resumed at epoch 2
    assert not dist.is_initialized()


def fails_on_rank_1(trial: hl.Trial | None) -> float:
    """Rank 1 fails before any collective call; rank 0 finishes alone."""
    import os

    if os.environ["RANK"] == "1":
        raise RuntimeError("rank 1 ran out of memory")
    return 0.5


def test_a_failed_rank_fails_the_trial_naming_it() -> None:
    study = hl.create_study()
    study.optimize(lambda trial: run_processes(trial, fails_on_rank_1, 2), n_trials=1,
                   show_progress=False)
    trial = study.trials[0]
    assert trial.state is hl.TrialState.FAILED
    assert "hyperlaw-trial-0-rank-1 (exit code 1) failed" in trial.error
