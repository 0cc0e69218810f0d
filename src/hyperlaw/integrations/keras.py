"""Keras 3 on the torch backend: a pruning callback, with checkpoints to pause and resume.

    from hyperlaw.integrations.keras import HyperlawKerasCallback, resume  # KERAS_BACKEND=torch

    def objective(trial):
        model, initial_epoch = resume(trial)       # (None, 0) for a fresh start
        if model is None:
            model = build_model(trial.params)      # a compiled keras.Model
        callback = HyperlawKerasCallback(trial, monitor="val_loss")
        model.fit(x, y, validation_data=(xv, yv), epochs=10, initial_epoch=initial_epoch,
                  callbacks=[callback])
        callback.check_pruned()        # raises hyperlaw.TrialPruned if the scheduler stopped it
        return model.evaluate(xv, yv, verbose=0)

At each epoch end the callback saves the model (`model.save`, a ``.keras`` file with the
optimizer's state) and reports the monitored metric with it at the epoch; when the scheduler
stops or pauses the trial it sets `model.stop_training`, Keras ends `fit` normally (every
callback's `on_train_end` runs), and `check_pruned()` then raises `hyperlaw.TrialPruned`. A
promoted, retried or PBT trial continues with `resume(trial)`: the saved model and the epoch
after its checkpoint.

Keras picks its backend once, when it is first imported, from the environment variable
KERAS_BACKEND. Importing this module before keras sets KERAS_BACKEND=torch; it refuses, naming
the variable, when keras is already imported with another backend or the variable names one.
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
from collections.abc import Mapping
from typing import Any

from hyperlaw.errors import HyperlawError, TrialPruned
from hyperlaw.integrations._common import checkpoint_interval, exploited, metric, report
from hyperlaw.trial import Trial

BACKEND = "torch"
#: the name of the saved model in a checkpoint's directory
MODEL_FILE = "model.keras"


def _require_torch_backend() -> None:
    """Make keras load (or check that it loaded) with the torch backend."""
    if "keras" in sys.modules:
        import keras

        active = keras.backend.backend()
        if active != BACKEND:
            raise HyperlawError(
                f"keras is already imported with the {active!r} backend; "
                "hyperlaw.integrations.keras needs the torch backend. Set the environment "
                "variable KERAS_BACKEND=torch before keras is first imported (in the shell, "
                "or os.environ['KERAS_BACKEND'] = 'torch' at the top of the script)")
        return
    chosen = os.environ.get("KERAS_BACKEND")
    if chosen not in (None, "", BACKEND):
        raise HyperlawError(
            f"the environment variable KERAS_BACKEND is {chosen!r}; "
            "hyperlaw.integrations.keras needs the torch backend: set KERAS_BACKEND=torch "
            "(or unset it)")
    os.environ["KERAS_BACKEND"] = BACKEND


_require_torch_backend()

import keras  # noqa: E402  (after the backend is chosen)

if keras.backend.backend() != BACKEND:  # e.g. a keras.json that names another one
    raise HyperlawError(
        f"keras loaded the {keras.backend.backend()!r} backend although KERAS_BACKEND="
        f"{os.environ.get('KERAS_BACKEND')!r}; set KERAS_BACKEND=torch before importing keras")


class HyperlawKerasCallback(keras.callbacks.Callback):
    """Report `monitor` (a key of the epoch's logs, e.g. ``"val_loss"``) at each epoch end
    with a saved model every `checkpoint_every` epochs (default: every epoch, or the PBT
    interval; 0: never, and a paused trial is then stopped instead); stop training when the
    scheduler stops or pauses the trial. Call `check_pruned()` after `model.fit`."""

    def __init__(self, trial: Trial, monitor: str = "val_loss", *,
                 checkpoint_every: int | None = None) -> None:
        super().__init__()
        self.trial = trial
        self.monitor = monitor
        self.every = checkpoint_interval(trial, checkpoint_every)
        #: the scheduler's decision to stop the trial, raised by `check_pruned`
        self.stopped: TrialPruned | None = None

    def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        """Report the monitored metric at `epoch`; stop training if the scheduler says so."""
        if self.stopped is not None:
            return
        value = metric(logs, self.monitor, f"trial #{self.trial.number}, epoch {epoch}")
        saved = self._save() if self.every and epoch % self.every == 0 else None
        try:
            self.stopped = report(self.trial, value, epoch, saved)
        finally:
            if saved is not None:
                shutil.rmtree(saved, ignore_errors=True)
        if self.stopped is not None:
            self.model.stop_training = True

    def _save(self) -> str:
        """A directory holding the model as MODEL_FILE (keras loads only files named .keras;
        the study stores a checkpoint under a name of its own)."""
        directory = tempfile.mkdtemp(prefix="hyperlaw-keras-")
        self.model.save(os.path.join(directory, MODEL_FILE))
        return directory

    def check_pruned(self) -> None:
        """Raise `hyperlaw.TrialPruned` if the scheduler stopped the trial; call it right
        after `model.fit` returns."""
        if self.stopped is not None:
            raise self.stopped


def resume(trial: Trial, *, hyperparams: Mapping[str, str] | None = None,
           **load_options: Any) -> tuple[Any, int]:
    """The model `trial` continues from (loaded with `keras.models.load_model(path,
    **load_options)`, e.g. `custom_objects=`) and the epoch to start at, for
    `model.fit(..., initial_epoch=...)`; (None, 0) for a trial that starts afresh.

    A PBT child that starts from another member's model gets its own (explored) parameters
    written into the loaded optimizer: `hyperparams` maps trial parameter names to optimizer
    attributes (default: ``lr`` to ``learning_rate``, and every parameter named like an
    attribute, e.g. ``weight_decay``, ``momentum``, ``beta_1``).
    """
    state = trial.load_checkpoint()
    if state is None:
        return None, 0
    checkpoint = trial.checkpoint
    path = os.path.join(state, MODEL_FILE) if isinstance(state, str) else ""
    if not os.path.isfile(path) or checkpoint is None:
        raise HyperlawError(
            f"trial #{trial.number}: its checkpoint is not a directory with {MODEL_FILE} "
            "saved by HyperlawKerasCallback; resume it with trial.load_checkpoint() instead")
    model = keras.models.load_model(path, **load_options)
    if exploited(trial):
        _set_optimizer(model.optimizer, trial, hyperparams)
    return model, checkpoint.step + 1


def _set_optimizer(optimizer: Any, trial: Trial, hyperparams: Mapping[str, str] | None) -> None:
    """Write `trial`'s parameters into a loaded optimizer's attributes (see `resume`)."""
    names = dict(hyperparams) if hyperparams is not None else {
        name: "learning_rate" if name == "lr" else name
        for name in trial.params if hasattr(optimizer, "learning_rate" if name == "lr" else name)}
    for name, attribute in names.items():
        current = getattr(optimizer, attribute, None)
        value = trial.params[name]
        if isinstance(current, keras.Variable):
            current.assign(value)
        elif isinstance(current, int | float) and not isinstance(current, bool):
            setattr(optimizer, attribute, value)
        else:
            raise HyperlawError(
                f"trial #{trial.number}: parameter {name!r} cannot be written into the "
                f"optimizer's {attribute!r} (a {type(current).__name__}, e.g. a learning-rate "
                "schedule); pass resume(trial, hyperparams={...}) naming only plain-valued "
                "attributes, or rebuild the optimizer from the trial's parameters")
