"""The Lightning callback on real Lightning: report, stop, pause, and resume from its
checkpoint in a real ASHA-promotion study of a tiny network on scikit-learn's digits."""

from __future__ import annotations

import sys
from pathlib import Path

import lightning.pytorch as pl
import pytest
import torch
from sklearn.datasets import load_digits
from torch.utils.data import DataLoader, TensorDataset

import hyperlaw as hl
from hyperlaw.integrations._common import adopt_settings, optimizer_settings
from hyperlaw.integrations.lightning import HyperlawCallback, fit, resume_checkpoint
from hyperlaw.schedulers import ASHA

EPOCHS = 3  # steps 0, 1, 2


def digits() -> tuple[DataLoader, DataLoader]:
    x, y = load_digits(return_X_y=True)
    x = torch.tensor(x / 16.0, dtype=torch.float32)
    y = torch.tensor(y)
    train = TensorDataset(x[:1400], y[:1400])
    valid = TensorDataset(x[1400:], y[1400:])
    return DataLoader(train, batch_size=200), DataLoader(valid, batch_size=400)


class TinyNet(pl.LightningModule):
    """A linear classifier (650 parameters) that records the epochs it trained."""

    def __init__(self, lr: float) -> None:
        super().__init__()
        self.lr = lr
        self.layer = torch.nn.Linear(64, 10)
        self.epochs: list[int] = []
        self.lrs: list[float] = []  # the optimizer's learning rate at each epoch's start

    def training_step(self, batch: tuple[torch.Tensor, torch.Tensor], _: int) -> torch.Tensor:
        x, y = batch
        return torch.nn.functional.cross_entropy(self.layer(x), y)

    def validation_step(self, batch: tuple[torch.Tensor, torch.Tensor], _: int) -> None:
        x, y = batch
        self.log("val_loss", torch.nn.functional.cross_entropy(self.layer(x), y))

    def on_train_epoch_start(self) -> None:
        self.epochs.append(self.current_epoch)
        self.lrs.append(self.trainer.optimizers[0].param_groups[0]["lr"])

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return torch.optim.SGD(self.parameters(), lr=self.lr)


def trainer(root: Path, callback: HyperlawCallback, **options: object) -> pl.Trainer:
    return pl.Trainer(max_epochs=EPOCHS, accelerator="cpu", devices=1, logger=False,
                      enable_checkpointing=False, enable_progress_bar=False,
                      enable_model_summary=False, default_root_dir=str(root),
                      num_sanity_val_steps=0, callbacks=[callback],
                      **options)  # type: ignore[arg-type]


def make_objective(root: Path):  # type: ignore[no-untyped-def]
    train, valid = digits()

    def objective(trial: hl.Trial) -> float:
        torch.manual_seed(0)
        model = TinyNet(trial.params["lr"])
        start = resume_checkpoint(trial)
        trial.set_user_attr("resumed", start is not None)
        lightning = trainer(root, HyperlawCallback(trial, monitor="val_loss"))
        try:
            fit(lightning, model, train, valid, ckpt_path=start)
        finally:
            trial.set_user_attr("epochs", model.epochs)
            trial.set_user_attr("lrs", model.lrs)
            trial.set_user_attr("global_step", lightning.global_step)
            trial.set_user_attr("status", lightning.state.status.value)
        return lightning.callback_metrics["val_loss"].item()

    return objective


def test_asha_promotion_pauses_and_resumes_a_lightning_trial(tmp_path: Path) -> None:
    # η = 2, rungs at epochs 1 and 2: the first trial pauses at epoch 1 (alone at its rung);
    # the second, with a useless learning rate, ranks below it and pauses; the first is then
    # promoted and its continuation trains epoch 2 from its Lightning checkpoint.
    study = hl.create_study(storage=f"sqlite:///{tmp_path / 'study.db'}",
                            space={"lr": hl.Float(1e-6, 1.0, log=True)},
                            scheduler=ASHA(min_budget=1, max_budget=EPOCHS - 1,
                                           reduction_factor=2, promotion=True),
                            checkpoint_dir=str(tmp_path / "checkpoints"))
    study.enqueue({"lr": 0.5})
    study.enqueue({"lr": 1e-6})
    study.optimize(make_objective(tmp_path), n_trials=3, show_progress=False)
    first, poor, continued = study.trials

    assert first.state is hl.TrialState.PRUNED and "suspended" in first.system_attrs
    assert first.user_attrs["epochs"] == [0, 1] and sorted(first.intermediate) == [0, 1]
    assert poor.state is hl.TrialState.PRUNED and sorted(poor.intermediate) == [0, 1]
    assert poor.intermediate[1] > first.intermediate[1]

    assert continued.system_attrs["promoted_from"] == first.number
    assert continued.state is hl.TrialState.COMPLETE and continued.user_attrs["resumed"]
    assert continued.user_attrs["epochs"] == [2]  # Lightning's epoch counter went on
    assert continued.user_attrs["global_step"] == 3 * first.user_attrs["global_step"] // 2
    assert sorted(continued.intermediate) == [2]
    assert continued.value < first.intermediate[1]  # it trained on from the learned weights


def test_the_stopping_variant_prunes_and_raises_after_lightning_shut_down(
        tmp_path: Path) -> None:
    study = hl.create_study(space={"lr": hl.Float(1e-6, 1.0, log=True)},
                            scheduler=ASHA(min_budget=1, max_budget=EPOCHS - 1,
                                           reduction_factor=2),
                            checkpoint_dir=str(tmp_path / "checkpoints"))
    study.enqueue({"lr": 0.5})
    study.enqueue({"lr": 1e-6})
    study.optimize(make_objective(tmp_path), n_trials=2, show_progress=False)
    good, poor = study.trials
    assert good.state is hl.TrialState.COMPLETE and good.user_attrs["epochs"] == [0, 1, 2]
    assert poor.state is hl.TrialState.PRUNED and poor.user_attrs["epochs"] == [0, 1]
    assert "suspended" not in poor.system_attrs
    # Lightning ended the run as a normal one (an exception inside fit would leave it
    # "interrupted", with its loggers finalized as failed)
    assert poor.user_attrs["status"] == good.user_attrs["status"] == "finished"


def test_an_unlogged_metric_is_named(tmp_path: Path) -> None:
    study = hl.create_study(space={"lr": hl.Float(0.1, 0.2)})
    trial = study.ask()
    train, valid = digits()
    lightning = trainer(tmp_path, HyperlawCallback(trial, monitor="val_acc"))
    with pytest.raises(hl.HyperlawError, match=r"'val_acc' was not logged.*'val_loss'"):
        fit(lightning, TinyNet(0.1), train, valid)


def test_importing_hyperlaw_imports_no_framework() -> None:
    import subprocess

    code = ("import sys, hyperlaw, hyperlaw.integrations; "
            "print(sorted(m for m in ('lightning', 'transformers', 'keras') "
            "if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout
    assert out.strip() == "[]"


def test_an_exploited_pbt_child_trains_with_its_own_learning_rate(tmp_path: Path) -> None:
    # Two members; at each epoch the worse copies the better's Lightning checkpoint and
    # perturbs its learning rate. The restored optimizer must train with the child's rate,
    # not the donor's that the checkpoint holds.
    study = hl.create_study(storage=f"sqlite:///{tmp_path / 'study.db'}",
                            space={"lr": hl.Float(1e-6, 1.0, log=True)},
                            scheduler=hl.schedulers.PBT(population_size=2, interval=1,
                                                        quantile_fraction=0.5,
                                                        resample_probability=0.0, seed=0),
                            checkpoint_dir=str(tmp_path / "checkpoints"))
    study.enqueue({"lr": 0.5})
    study.enqueue({"lr": 1e-6})
    study.optimize(make_objective(tmp_path), show_progress=False)
    children = [t for t in study.trials if t.system_attrs.get("pbt", {}).get("kind") == "exploit"
                and t.user_attrs.get("epochs")]  # (one handed off after the last epoch)
    assert children, [(t.system_attrs, t.user_attrs) for t in study.trials]
    for child in children:
        donor = study.trials[child.system_attrs["pbt"]["parent"]]
        assert child.params["lr"] != pytest.approx(donor.params["lr"])
        assert child.user_attrs["lrs"] == pytest.approx([child.params["lr"]]
                                                        * len(child.user_attrs["lrs"]))


def test_a_restored_learning_rate_keeps_its_place_in_the_schedule() -> None:
    def configured(lr: float) -> tuple[torch.optim.Optimizer, torch.optim.lr_scheduler.LambdaLR]:
        optimizer = torch.optim.SGD(torch.nn.Linear(2, 1).parameters(), lr=lr, momentum=0.9)
        return optimizer, torch.optim.lr_scheduler.LambdaLR(optimizer, lambda e: 0.5 ** e)

    donor, donor_schedule = configured(0.5)
    for _ in range(2):
        donor.step()
        donor_schedule.step()
    child, child_schedule = configured(0.4)
    child.param_groups[0]["momentum"] = 0.5
    settings = optimizer_settings(child)
    child.load_state_dict(donor.state_dict())  # what a checkpoint restore does
    child_schedule.load_state_dict(donor_schedule.state_dict())
    assert child.param_groups[0]["lr"] == pytest.approx(0.125)  # the donor's, before
    adopt_settings(child, settings, [child_schedule])
    assert child.param_groups[0]["lr"] == pytest.approx(0.4 * 0.5 ** 2)
    assert child.param_groups[0]["momentum"] == 0.5
    child.step()
    child_schedule.step()
    assert child.param_groups[0]["lr"] == pytest.approx(0.4 * 0.5 ** 3)
