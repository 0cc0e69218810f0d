"""Keras 3 on the torch backend: a pruning callback.

    from hyperlaw.integrations.keras import HyperlawKerasCallback   # sets KERAS_BACKEND=torch

    def objective(trial):
        model = build_model(trial.params)                            # a compiled keras.Model
        callback = HyperlawKerasCallback(trial, monitor="val_loss")
        model.fit(x, y, validation_data=(xv, yv), epochs=10, callbacks=[callback])
        callback.check_pruned()        # raises hyperlaw.TrialPruned if the scheduler stopped it
        return model.evaluate(xv, yv, verbose=0)

At each epoch end the callback reports the monitored metric at the epoch; when the scheduler
stops the trial it sets `model.stop_training`, Keras ends `fit` normally (every callback's
`on_train_end` runs), and `check_pruned()` then raises `hyperlaw.TrialPruned`.

Keras picks its backend once, when it is first imported, from the environment variable
KERAS_BACKEND. Importing this module before keras sets KERAS_BACKEND=torch; it refuses, naming
the variable, when keras is already imported with another backend or the variable names one.
"""

from __future__ import annotations

import os
import sys
from typing import Any

from hyperlaw.errors import HyperlawError, TrialPruned
from hyperlaw.integrations._common import metric, report
from hyperlaw.trial import Trial

BACKEND = "torch"


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
    """Report `monitor` (a key of the epoch's logs, e.g. ``"val_loss"``) at each epoch end;
    stop training when the scheduler stops or pauses the trial. Call `check_pruned()` after
    `model.fit`."""

    def __init__(self, trial: Trial, monitor: str = "val_loss") -> None:
        super().__init__()
        self.trial = trial
        self.monitor = monitor
        #: the scheduler's decision to stop the trial, raised by `check_pruned`
        self.stopped: TrialPruned | None = None

    def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        """Report the monitored metric at `epoch`; stop training if the scheduler says so."""
        if self.stopped is not None:
            return
        value = metric(logs, self.monitor, f"trial #{self.trial.number}, epoch {epoch}")
        self.stopped = report(self.trial, value, epoch)
        if self.stopped is not None:
            self.model.stop_training = True

    def check_pruned(self) -> None:
        """Raise `hyperlaw.TrialPruned` if the scheduler stopped the trial; call it right
        after `model.fit` returns."""
        if self.stopped is not None:
            raise self.stopped
