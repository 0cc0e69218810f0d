"""The Transformers integration on a real Trainer: a tiny BERT built from its config (no
download), trained for a few steps on CPU on synthetic token sequences."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import torch
from transformers import BertConfig, BertForSequenceClassification, Trainer, TrainingArguments

import hyperlaw as hl
from hyperlaw.integrations.transformers import (
    HyperlawTrainerCallback,
    hyperlaw_search,
    resume_checkpoint,
)
from hyperlaw.schedulers import ASHA

STEPS_PER_EPOCH = 4  # 64 sequences, batches of 16


class Tokens(torch.utils.data.Dataset):  # type: ignore[type-arg]
    """Random sequences of 8 token ids; the label says whether the first id is below 16."""

    def __init__(self, n: int, seed: int) -> None:
        generator = torch.Generator().manual_seed(seed)
        self.ids = torch.randint(0, 32, (n, 8), generator=generator)

    def __len__(self) -> int:
        return len(self.ids)

    def __getitem__(self, i: int) -> dict[str, Any]:
        return {"input_ids": self.ids[i], "labels": int(self.ids[i, 0] < 16)}


def tiny_bert(trial: hl.Trial | None = None) -> BertForSequenceClassification:
    """About 1000 parameters; the dropout is the trial's when it has one."""
    dropout = 0.0 if trial is None else trial.params.get("dropout", 0.0)
    config = BertConfig(vocab_size=32, hidden_size=8, num_hidden_layers=1,
                        num_attention_heads=2, intermediate_size=8, max_position_embeddings=16,
                        num_labels=2, hidden_dropout_prob=dropout)
    return BertForSequenceClassification(config)


def make_trainer(tmp_path: Path, model_init: Any = tiny_bert, **options: Any) -> Trainer:
    settings = {"save_strategy": "no", "num_train_epochs": 3, **options}
    args = TrainingArguments(output_dir=str(tmp_path / "out"), per_device_train_batch_size=16,
                             per_device_eval_batch_size=64, eval_strategy="epoch",
                             logging_strategy="no", report_to="none", use_cpu=True,
                             disable_tqdm=True, learning_rate=1e-3, **settings)
    return Trainer(model_init=model_init, args=args, train_dataset=Tokens(64, 0),
                   eval_dataset=Tokens(64, 1))


def test_hyperlaw_search_prunes_over_evaluations_and_returns_the_best_run(
        tmp_path: Path) -> None:
    built: list[hl.Trial] = []

    def model_init(trial: hl.Trial) -> BertForSequenceClassification:
        built.append(trial)
        return tiny_bert(trial)

    trainer = make_trainer(tmp_path, model_init)
    # ASHA (η = 2) judges at step 4 (epoch 1): the second trial, whose learning rate is too
    # small to learn anything, ranks below the first and is stopped there
    study = hl.create_study(space={"learning_rate": hl.Float(1e-7, 0.1, log=True),
                                   "dropout": hl.Float(0.0, 0.2)},
                            scheduler=ASHA(min_budget=STEPS_PER_EPOCH,
                                           max_budget=3 * STEPS_PER_EPOCH,
                                           reduction_factor=2))
    study.enqueue({"learning_rate": 0.05, "dropout": 0.0})
    study.enqueue({"learning_rate": 1e-7, "dropout": 0.1})
    best = hyperlaw_search(trainer, study=study, n_trials=2)

    good, poor = study.trials
    assert good.state is hl.TrialState.COMPLETE
    assert sorted(good.intermediate) == [4, 8, 12]
    assert poor.state is hl.TrialState.PRUNED and sorted(poor.intermediate) == [4]
    assert poor.intermediate[4] > good.intermediate[4]
    # Trainer() built one model without a trial; then model_init got each hyperlaw trial
    assert [t if t is None else t.number for t in built] == [None, 0, 1]
    assert best.run_id == "0" and best.objective == pytest.approx(good.value)
    assert best.hyperparameters == good.params and best.run_summary is study
    assert good.value == pytest.approx(good.intermediate[12])
    assert trainer.args.learning_rate == 1e-3  # the trainer's own arguments are back
    assert trainer.args.output_dir == str(tmp_path / "out")


def test_asha_promotion_pauses_at_a_saved_checkpoint_and_resumes_from_it(
        tmp_path: Path) -> None:
    # two epochs of 4 steps, η = 2: the first trial pauses at step 4 (alone at its rung), the
    # second (useless learning rate) ranks below it and pauses; the first is then promoted and
    # its continuation trains steps 5 to 8 from the Trainer checkpoint saved at step 4
    trainer = make_trainer(tmp_path, num_train_epochs=2, save_strategy="epoch")
    study = hl.create_study(space={"learning_rate": hl.Float(1e-7, 0.1, log=True)},
                            scheduler=ASHA(min_budget=STEPS_PER_EPOCH,
                                           max_budget=2 * STEPS_PER_EPOCH,
                                           reduction_factor=2, promotion=True),
                            checkpoint_dir=str(tmp_path / "checkpoints"))
    study.enqueue({"learning_rate": 0.05})
    study.enqueue({"learning_rate": 1e-7})
    best = hyperlaw_search(trainer, study=study, n_trials=3)

    first, poor, continued = study.trials
    assert "suspended" in first.system_attrs and sorted(first.intermediate) == [4]
    assert "suspended" in poor.system_attrs and poor.intermediate[4] > first.intermediate[4]
    assert continued.system_attrs["promoted_from"] == first.number
    assert continued.state is hl.TrialState.COMPLETE and sorted(continued.intermediate) == [8]
    assert best.run_id == str(continued.number)
    # it went on from the checkpoint: only the steps after it were trained in its run
    run = tmp_path / "out" / f"run-{continued.number}"
    assert sorted(p.name for p in run.iterdir()) == ["checkpoint-8"]
    state = json.loads((run / "checkpoint-8" / "trainer_state.json").read_text())
    assert state["global_step"] == 8 and state["epoch"] == 2
    assert resume_checkpoint(study.ask({"learning_rate": 0.05})) is None  # a fresh trial


def test_an_optuna_style_hp_space_defines_the_space(tmp_path: Path) -> None:
    # a model_init without argument; checkpoints go to run-<number> under output_dir
    trainer = make_trainer(tmp_path, lambda: tiny_bert(), save_strategy="epoch")

    def hp_space(trial: hl.Trial) -> dict[str, Any]:
        return {"learning_rate": trial.suggest_float("learning_rate", 1e-3, 1e-2, log=True),
                "num_train_epochs": trial.suggest_int("num_train_epochs", 1, 2)}

    best = hyperlaw_search(trainer, hp_space, n_trials=2, direction="maximize",
                           compute_objective=lambda metrics: -metrics["eval_loss"],
                           storage=f"sqlite:///{tmp_path / 'hf.db'}", seed=0)
    study = best.run_summary
    assert [t.state for t in study.trials] == [hl.TrialState.COMPLETE] * 2
    for trial in study.trials:  # it trained for the trial's number of epochs
        assert max(trial.intermediate) == STEPS_PER_EPOCH * trial.params["num_train_epochs"]
        last = STEPS_PER_EPOCH * trial.params["num_train_epochs"]
        assert (tmp_path / "out" / f"run-{trial.number}" / f"checkpoint-{last}").is_dir()
    assert best.objective == max(t.value for t in study.trials)


def test_the_callback_stops_a_trainer_the_objective_built(tmp_path: Path) -> None:
    study = hl.create_study(scheduler=hl.schedulers.ThresholdStopping(upper=0.0))

    def objective(trial: hl.Trial) -> float:
        trainer = make_trainer(tmp_path)
        callback = HyperlawTrainerCallback(trial, monitor="eval_loss")
        trainer.add_callback(callback)
        trainer.train()
        trial.set_user_attr("trained_steps", trainer.state.global_step)
        callback.check_pruned()
        return trainer.evaluate()["eval_loss"]

    study.optimize(objective, n_trials=1, show_progress=False)
    trial = study.trials[0]
    assert trial.state is hl.TrialState.PRUNED  # any loss is above the bound 0
    assert trial.user_attrs["trained_steps"] == STEPS_PER_EPOCH
    assert list(trial.intermediate) == [STEPS_PER_EPOCH]


def test_search_without_model_init_says_how(tmp_path: Path) -> None:
    args = TrainingArguments(output_dir=str(tmp_path), report_to="none", use_cpu=True)
    trainer = Trainer(model=tiny_bert(), args=args, train_dataset=Tokens(8, 0))
    with pytest.raises(hl.HyperlawError, match="model_init="):
        hyperlaw_search(trainer, n_trials=1)


def test_an_exploited_pbt_child_trains_with_its_own_learning_rate(tmp_path: Path) -> None:
    # the worse of two members continues from the better's Trainer checkpoint, whose
    # optimizer and LR scheduler hold the donor's rate; the child must train with its own
    trainer = make_trainer(tmp_path, num_train_epochs=2, save_strategy="epoch")
    study = hl.create_study(space={"learning_rate": hl.Float(1e-7, 0.1, log=True)},
                            scheduler=hl.schedulers.PBT(population_size=2,
                                                        interval=STEPS_PER_EPOCH,
                                                        quantile_fraction=0.5,
                                                        resample_probability=0.0, seed=0),
                            checkpoint_dir=str(tmp_path / "checkpoints"))
    study.enqueue({"learning_rate": 0.05})
    study.enqueue({"learning_rate": 1e-7})
    hyperlaw_search(trainer, study=study, n_trials=None)
    children = [t for t in study.trials if t.system_attrs.get("pbt", {}).get("kind") == "exploit"]
    trained = [t for t in children
               if any((tmp_path / "out" / f"run-{t.number}").glob("checkpoint-*"))]
    assert trained, [(t.number, t.state, t.system_attrs) for t in study.trials]
    for child in trained:
        donor = study.trials[child.system_attrs["pbt"]["parent"]]
        assert child.params["learning_rate"] != pytest.approx(donor.params["learning_rate"])
        checkpoint = max((tmp_path / "out" / f"run-{child.number}").glob("checkpoint-*"))
        schedule = torch.load(checkpoint / "scheduler.pt", weights_only=False)
        assert schedule["base_lrs"] == pytest.approx([child.params["learning_rate"]]
                                                     * len(schedule["base_lrs"]))
