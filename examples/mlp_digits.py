"""Tune a small neural network on scikit-learn's handwritten digits, epoch by epoch.

A real study: every trial trains an MLP with its hyperparameters and reports the validation
loss after each epoch with a checkpoint of the model, so asynchronous successive halving (ASHA,
its promotion variant) can pause poor trials early and continue the ones that later rank among
the best of their rung. Everything is recorded in a SQLite file that the CLI can read while or
after the study runs.

    python examples/mlp_digits.py            # or: make demo
"""

from __future__ import annotations

import warnings

import numpy as np
from sklearn.datasets import load_digits
from sklearn.exceptions import ConvergenceWarning
from sklearn.metrics import log_loss
from sklearn.model_selection import train_test_split
from sklearn.neural_network import MLPClassifier
from sklearn.preprocessing import StandardScaler

import hyperlaw as hl

STORAGE = "sqlite:///hyperlaw-demo.db"
STUDY = "mlp-digits"
EPOCHS = 20

SPACE = hl.Space({
    "lr": hl.Float(1e-4, 0.3, log=True),
    "width": hl.Int(16, 256, log=True),
    "layers": hl.Int(1, 3),
    "optimizer": hl.Choice(["adam", "sgd"]),
    "momentum": hl.Float(0.0, 0.99, when={"optimizer": "sgd"}),
    "weight_decay": hl.Float(1e-6, 1e-2, log=True),
    "batch_size": hl.Choice([32, 64, 128]),
})


def load_data() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The digits (8x8 images, 10 classes), split 75/25 and standardized."""
    x, y = load_digits(return_X_y=True)
    x_train, x_valid, y_train, y_valid = train_test_split(x, y, test_size=0.25, stratify=y,
                                                          random_state=0)
    scaler = StandardScaler().fit(x_train)
    return scaler.transform(x_train), scaler.transform(x_valid), y_train, y_valid


X_TRAIN, X_VALID, Y_TRAIN, Y_VALID = load_data()
CLASSES = np.unique(Y_TRAIN)


def objective(trial: hl.Trial) -> float:
    """Train up to EPOCHS epochs (from the checkpoint when ASHA continues a paused trial);
    report and checkpoint after each, and return the validation cross-entropy."""
    p = trial.params
    model = trial.load_checkpoint()  # None for a new configuration
    start = 0 if model is None else trial.checkpoint.step + 1
    if model is None:
        model = MLPClassifier(
            hidden_layer_sizes=(p["width"],) * p["layers"], solver=p["optimizer"],
            learning_rate_init=p["lr"], momentum=p.get("momentum", 0.0),
            alpha=p["weight_decay"], batch_size=p["batch_size"], random_state=trial.number)
    loss = float("nan")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        for epoch in range(start, EPOCHS):
            model.partial_fit(X_TRAIN, Y_TRAIN, classes=CLASSES)
            loss = log_loss(Y_VALID, model.predict_proba(X_VALID), labels=CLASSES)
            # raises hl.TrialPruned when ASHA stops or pauses the trial
            trial.report(loss, step=epoch, checkpoint=model)
    trial.set_user_attr("accuracy", float(model.score(X_VALID, Y_VALID)))
    return loss


def main(n_trials: int = 60, n_workers: int = 2) -> hl.Study:
    study = hl.create_study(STUDY, storage=STORAGE, space=SPACE, sampler="auto",
                            scheduler=hl.schedulers.ASHA(min_budget=1, max_budget=EPOCHS - 1,
                                                         reduction_factor=3, promotion=True),
                            seed=0, load_if_exists=True, keep_last_checkpoints=1)
    study.optimize(objective, n_trials=n_trials, n_workers=n_workers)

    trials = study.trials
    configurations = [t for t in trials if "promoted_from" not in t.system_attrs]
    continued = len(trials) - len(configurations)
    complete = sum(t.state is hl.TrialState.COMPLETE for t in trials)
    epochs = sum(len(t.intermediate) for t in trials)
    full = len(configurations) * EPOCHS
    best = study.best_trial
    print(f"\nstudy {study.name!r}: {len(configurations)} configurations, {complete} trained "
          f"to the end; ASHA paused the others at a rung and later continued paused ones "
          f"{continued} times "
          f"({epochs} of {full} epochs trained: {1 - epochs / max(full, 1):.0%} of the "
          "training saved against running every configuration to the end)")
    print(f"best validation loss {best.value:.4f} "
          f"(accuracy {best.user_attrs.get('accuracy', float('nan')):.3f}) from trial "
          f"#{best.number}:")
    for name, value in best.params.items():
        print(f"  {name:>13} = {value:.4g}" if isinstance(value, float)
              else f"  {name:>13} = {value}")
    print("\nlook at it:")
    print(f"  hyperlaw best   --storage {STORAGE} --study {STUDY}")
    print(f"  hyperlaw trials --storage {STORAGE} --study {STUDY}")
    print(f"  hyperlaw export --storage {STORAGE} --study {STUDY} --format csv --out trials.csv")
    print(f"  hyperlaw dashboard --storage {STORAGE}      # then open http://127.0.0.1:8080")
    return study


if __name__ == "__main__":
    main()
