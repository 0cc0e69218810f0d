"""The Keras 3 callback on real Keras with the torch backend: a tiny Dense network on
scikit-learn's digits, stopped by ASHA; and the backend is chosen or refused by name."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from sklearn.datasets import load_digits

import hyperlaw as hl
from hyperlaw.integrations.keras import (  # before keras: sets the backend
    HyperlawKerasCallback,
    resume,
)
from hyperlaw.schedulers import ASHA

# isort: split
import keras  # after hyperlaw.integrations.keras, which makes it load the torch backend

SRC = str(Path(hl.__file__).resolve().parents[1])


def objective(trial: hl.Trial) -> float:
    x, y = load_digits(return_X_y=True)
    x = x / 16.0
    keras.utils.set_random_seed(0)
    model, initial_epoch = resume(trial)
    if model is None:
        model = keras.Sequential([keras.Input((64,)), keras.layers.Dense(8, activation="relu"),
                                  keras.layers.Dense(10)])  # 610 parameters
        model.compile(optimizer=keras.optimizers.SGD(trial.params["lr"]),
                      loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    trial.set_user_attr("initial_epoch", initial_epoch)
    trial.set_user_attr("lr_used", float(model.optimizer.learning_rate))
    if initial_epoch >= 3:  # a PBT child handed off after the last epoch: nothing to train
        return float(model.evaluate(x[1400:], y[1400:], verbose=0))
    callback = HyperlawKerasCallback(trial, monitor="val_loss")
    history = model.fit(x[:1400], y[:1400], validation_data=(x[1400:], y[1400:]), epochs=3,
                        initial_epoch=initial_epoch, batch_size=200, verbose=0,
                        callbacks=[callback])
    trial.set_user_attr("epochs", len(history.history["val_loss"]))
    callback.check_pruned()
    return float(history.history["val_loss"][-1])


def test_asha_stops_a_keras_trial_after_fit_ends(tmp_path: Path) -> None:
    assert keras.backend.backend() == "torch"
    study = hl.create_study(space={"lr": hl.Float(1e-7, 1.0, log=True)},
                            scheduler=ASHA(min_budget=1, max_budget=2, reduction_factor=2))
    study.enqueue({"lr": 0.5})
    study.enqueue({"lr": 1e-7})  # learns nothing: below the first at epoch 1, stopped there
    study.optimize(objective, n_trials=2, show_progress=False)
    good, poor = study.trials
    assert good.state is hl.TrialState.COMPLETE and sorted(good.intermediate) == [0, 1, 2]
    assert good.user_attrs["epochs"] == 3 and good.value == good.intermediate[2]
    assert poor.state is hl.TrialState.PRUNED and sorted(poor.intermediate) == [0, 1]
    assert poor.user_attrs["epochs"] == 2  # model.stop_training ended fit after epoch 1
    assert poor.intermediate[1] > good.intermediate[1]


def test_asha_promotion_pauses_a_keras_trial_and_resumes_its_saved_model(
        tmp_path: Path) -> None:
    # η = 2: the first trial pauses at epoch 1 (alone at its rung), the second ranks below it
    # and pauses; the first is promoted and trains epoch 2 from its saved model
    study = hl.create_study(space={"lr": hl.Float(1e-7, 1.0, log=True)},
                            scheduler=ASHA(min_budget=1, max_budget=2, reduction_factor=2,
                                           promotion=True),
                            checkpoint_dir=str(tmp_path / "checkpoints"))
    study.enqueue({"lr": 0.5})
    study.enqueue({"lr": 1e-7})
    study.optimize(objective, n_trials=3, show_progress=False)
    first, poor, continued = study.trials
    assert "suspended" in first.system_attrs and sorted(first.intermediate) == [0, 1]
    assert "suspended" in poor.system_attrs and poor.intermediate[1] > first.intermediate[1]
    assert continued.system_attrs["promoted_from"] == first.number
    assert continued.state is hl.TrialState.COMPLETE and sorted(continued.intermediate) == [2]
    assert continued.user_attrs == {"initial_epoch": 2, "epochs": 1, "lr_used": 0.5}
    assert continued.value < first.intermediate[1]  # it went on from the trained weights


def test_an_unlogged_metric_is_named() -> None:
    study = hl.create_study(space={"lr": hl.Float(0.1, 0.2)})
    trial = study.ask()
    callback = HyperlawKerasCallback(trial, monitor="val_accuracy")
    with pytest.raises(hl.HyperlawError, match=r"'val_accuracy' was not logged.*'val_loss'"):
        callback.on_epoch_end(0, {"loss": 1.0, "val_loss": 1.2})


def test_another_backend_is_refused_naming_the_variable() -> None:
    # (keras already imported with another backend is refused the same way; no other backend
    # than torch can load here: keras' jax, numpy and tensorflow backends all need packages
    # that the test environment does not install)
    run = subprocess.run([sys.executable, "-c", "import hyperlaw.integrations.keras"],
                         capture_output=True, text=True,
                         env={**os.environ, "KERAS_BACKEND": "jax", "PYTHONPATH": SRC})
    assert run.returncode != 0
    assert "KERAS_BACKEND is 'jax'" in run.stderr and "KERAS_BACKEND=torch" in run.stderr
    assert "No module named" not in run.stderr  # refused before keras tried to load jax


def test_an_exploited_pbt_child_trains_with_its_own_learning_rate(tmp_path: Path) -> None:
    # the worse of two members copies the better's saved model (with its optimizer, whose
    # learning rate is the donor's) and perturbs the rate: the child must train with its own
    study = hl.create_study(storage=f"sqlite:///{tmp_path / 'study.db'}",
                            space={"lr": hl.Float(1e-6, 1.0, log=True)},
                            scheduler=hl.schedulers.PBT(population_size=2, interval=1,
                                                        quantile_fraction=0.5,
                                                        resample_probability=0.0, seed=0),
                            checkpoint_dir=str(tmp_path / "checkpoints"))
    study.enqueue({"lr": 0.5})
    study.enqueue({"lr": 1e-6})
    study.optimize(objective, show_progress=False)
    children = [t for t in study.trials if t.system_attrs.get("pbt", {}).get("kind") == "exploit"]
    assert children and all(t.state is hl.TrialState.COMPLETE or t.state is hl.TrialState.PRUNED
                            for t in study.trials), [t.state for t in study.trials]
    for child in children:
        donor = study.trials[child.system_attrs["pbt"]["parent"]]
        assert child.params["lr"] != pytest.approx(donor.params["lr"])
        assert child.user_attrs["lr_used"] == pytest.approx(child.params["lr"], rel=1e-6)
