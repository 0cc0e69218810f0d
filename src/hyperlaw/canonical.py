"""Equivalent configurations run once: a canonical key per configuration, and reuse.

Two configurations are equivalent when they have the same canonical key: the active
parameters only (a conditional parameter whose condition does not hold is dropped), each
value in its domain's own form (a stepped float snapped to its grid point, an int as an int,
a categorical value as the declared choice), then whatever the study's `canonical` function
makes of that dict (user-declared equivalences, e.g. rounding a float or dropping a parameter
that does not change the result), plus how the trial is evaluated: its seed
(`trial.user_attrs["seed"]`, see `hyperlaw.noise`) and, for a multi-seed trial, its tuning
seeds and their aggregate (`user_attrs["seeds"]` and `["seed_aggregate"]`, see
`hyperlaw.seeds`): runs on different seeds are different evaluations.

A study with `dedup` on (the default; see `create_study`) runs its objective through
`Reusing`: a trial whose configuration an earlier complete trial already evaluated is
completed with that trial's values, constraints and user attributes, and marked with
`system_attrs["reused_from"]` (the number of the trial that ran). It spent no compute, so it
copies none of that trial's cost: its cost is its own wall time only ("seconds"), and cost
analyses (`hyperlaw.analysis.cost`) count the evaluation once, on the trial that ran. When
the equivalent trial is still running (another worker took it a moment earlier), the later
trial waits for its outcome; the trial with the lowest number always runs, so at most one
evaluation happens however many workers race.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from hyperlaw.errors import InvalidValueError
from hyperlaw.lineage import PBT, PROMOTED_FROM, RESUME, REUSED_FROM
from hyperlaw.space import Float, Int, Param, Space
from hyperlaw.trial import TrialRecord, TrialState

if TYPE_CHECKING:
    from hyperlaw.trial import Trial

#: a user's equivalence: the canonical params (active, in their domains' form) -> the dict
#: (or any JSON-serializable value) that identifies the configuration
Canonical = Callable[[dict[str, Any]], Any]

#: system attributes of trials that continue another trial's training: never equivalent
_CONTINUATIONS = (RESUME, PBT, PROMOTED_FROM)

#: seconds between two looks at the store while an equivalent trial runs
_POLL_MIN, _POLL_MAX = 0.05, 1.0


def canonical_params(space: Space, params: Mapping[str, Any]) -> dict[str, Any]:
    """The active parameters of `params`, each in its domain's canonical form, by name.
    Names the space does not declare (define-by-run) are kept as they are."""
    out: dict[str, Any] = {}
    for name in sorted(params):
        param = space.get(name)
        if param is None:
            out[name] = params[name]
        elif space.is_active(name, params):
            out[name] = _snapped(param, params[name])
    return out


def _snapped(param: Param, value: Any) -> Any:
    """`value` in `param`'s canonical form; a real number for an int or stepped float
    parameter goes to the nearest grid point (16.0 -> 16, 0.30000000000000004 -> 0.3)."""
    if param.contains(value):
        return param.canonical(value)
    is_real = isinstance(value, int | float) and not isinstance(value, bool) and \
        math.isfinite(value)
    if is_real and isinstance(param, Int):
        return param.low + round((value - param.low) / param.step) * param.step
    if is_real and isinstance(param, Float) and param.step is not None:
        return param.canonical(value)
    return value


def canonical_key(space: Space, params: Mapping[str, Any], seed: Any = None,
                  canonical: Canonical | None = None) -> str:
    """The canonical key of a configuration run on `seed` (see the module docstring); an
    error names a `canonical` function that fails or returns something unserializable."""
    found: Any = canonical_params(space, params)
    if canonical is not None:
        name = getattr(canonical, "__name__", repr(canonical))
        try:
            found = canonical(dict(found))
        except Exception as exc:
            raise InvalidValueError(
                f"canonical function {name} raised {type(exc).__name__}: {exc} for the "
                f"configuration {found!r}; it gets the active parameters as a dict and must "
                "return a JSON-serializable value (e.g. that dict with some values rounded)"
            ) from exc
    try:
        return json.dumps([found, seed], sort_keys=True, separators=(",", ":"))
    except (TypeError, ValueError) as exc:
        raise InvalidValueError(
            f"the canonical key of {dict(params)!r} is not JSON-serializable ({exc}); make "
            "the canonical function return dicts, lists, strings and numbers") from exc


#: user attributes of a multi-seed trial that its result depends on (see `hyperlaw.seeds`)
_SEEDS_ATTRS = ("seeds", "seed_aggregate")


def trial_seed(record: TrialRecord | Trial) -> Any:
    """What a trial's result depends on besides its configuration: the seed it runs on
    (`user_attrs["seed"]`, the `hyperlaw.noise` protocol), and for a multi-seed trial its
    tuning seeds and their aggregate (`hyperlaw.seeds`)."""
    seed = record.user_attrs.get("seed")
    if not any(k in record.user_attrs for k in _SEEDS_ATTRS):
        return seed
    return [seed, *(record.user_attrs.get(k) for k in _SEEDS_ATTRS)]


def is_continuation(system_attrs: Mapping[str, Any]) -> bool:
    """Whether a trial continues another's training (its result depends on more than its
    configuration): such trials are never deduplicated."""
    return any(k in system_attrs for k in _CONTINUATIONS)


def _eligible(record: TrialRecord) -> bool:
    """Whether a trial can hold a result for others: it has params and continues no one."""
    return bool(record.params) and not is_continuation(record.system_attrs)


class Reusing:
    """An objective that runs only for configurations no earlier trial evaluated (see the
    module docstring). Picklable when the objective and `canonical` are, so it travels to
    worker processes and Ray actors with the objective. It keeps an index of the complete
    trials' keys, so looking a trial up costs the trials that changed since the last one.

    `attrs`: user attributes that the objective records on every trial and that its result
    depends on (a multi-seed objective's tuning seeds and aggregate); they are set on the
    trial before it is looked up, so they are part of its key, even while it runs."""

    def __init__(self, objective: Callable[[Trial], Any],
                 canonical: Canonical | None = None,
                 attrs: Mapping[str, Any] | None = None) -> None:
        self.objective = objective
        self.canonical = canonical
        self.attrs = dict(attrs or {})
        self._complete: dict[str, int] = {}  # key -> a complete trial holding its result
        self._open: set[int] = set()  # trials seen waiting or running
        self._scanned = 0  # trials below this number were seen

    def __getstate__(self) -> dict[str, Any]:
        return {"objective": self.objective, "canonical": self.canonical, "attrs": self.attrs}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__init__(state["objective"], state["canonical"],  # type: ignore[misc]
                      state.get("attrs"))

    def key(self, space: Space, record: TrialRecord | Trial) -> str:
        """The canonical key of a trial's configuration and seed."""
        return canonical_key(space, record.params, trial_seed(record), self.canonical)

    def __call__(self, trial: Trial) -> Any:
        study = trial.study
        for k, v in self.attrs.items():
            if trial.user_attrs.get(k) != v:
                trial.set_user_attr(k, v)
        if not trial.params or is_continuation(trial.system_attrs):
            return self.objective(trial)
        key = self.key(study.space, trial)
        wait, next_stale_check = _POLL_MIN, time.monotonic() + study.heartbeat_interval
        while True:
            trials = study.trials
            found = self._equivalent(study.space, trials, key, trial.number)
            if found is None:
                return self.objective(trial)
            if found.state is TrialState.COMPLETE:
                return _reuse(trial, found)
            time.sleep(wait)  # the equivalent trial runs elsewhere: wait for its outcome
            wait = min(2 * wait, _POLL_MAX)
            if time.monotonic() >= next_stale_check:  # its worker may have died
                next_stale_check = time.monotonic() + study.heartbeat_interval
                study.fail_stale_trials()

    def _equivalent(self, space: Space, trials: Sequence[TrialRecord], key: str,
                    before: int) -> TrialRecord | None:
        """The trial that evaluates configuration `key`: a complete one, else the running
        one with the lowest number below `before`, else None."""
        for number in [*sorted(self._open), *range(self._scanned, len(trials))]:
            record = trials[number]
            if record.state in (TrialState.WAITING, TrialState.RUNNING):
                self._open.add(number)
                continue
            self._open.discard(number)
            if record.state is TrialState.COMPLETE and _eligible(record):
                self._complete.setdefault(self.key(space, record), number)
        self._scanned = len(trials)
        if key in self._complete:
            return trials[self._complete[key]]
        for number in sorted(self._open):
            record = trials[number]
            if number < before and record.state is TrialState.RUNNING and \
                    _eligible(record) and self.key(space, record) == key:
                return record
        return None


def _reuse(trial: Trial, original: TrialRecord) -> Any:
    """Complete `trial` with `original`'s result: its values (returned), constraints, the
    user attributes `trial` does not set itself, and `reused_from` (the trial that ran).
    Not its cost: `trial` spent none of it (its "seconds" are its own wall time)."""
    study = trial.study
    root = original.system_attrs.get(REUSED_FROM, original.number)
    study.store.set_trial_system_attr(study.id, trial.number, REUSED_FROM, root)
    trial.system_attrs[REUSED_FROM] = root
    for k, v in original.user_attrs.items():
        if k not in trial.user_attrs:
            trial.set_user_attr(k, v)
    trial._constraints.update(original.constraints)
    values = original.values or (original.value,)
    return values if len(values) > 1 else values[0]
