"""Move what a study learned: copy a study between stores (e.g. an in-memory study to
SQLite for worker processes), and warm-start a new study from the good region of earlier ones
(`warm_start_space`)."""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from hyperlaw.errors import HyperlawError, SpaceMismatchError
from hyperlaw.space import Choice, Param, Space, param_matches
from hyperlaw.store.base import Store
from hyperlaw.trial import TrialRecord, TrialState

if TYPE_CHECKING:
    from hyperlaw.study import Study


def read_all(store: Store, study_id: int) -> list[TrialRecord]:
    """Every trial of a study with its intermediate values (per objective too), by number."""
    changes = store.changes_since(study_id, 0)
    latest: dict[int, TrialRecord] = {}
    for record in changes.trials:
        latest[record.number] = record
    for report in changes.reports:
        record = latest[report.number]
        record.intermediate[report.step] = report.value
        if report.values is not None:
            record.intermediate_values[report.step] = report.values
    return [latest[n] for n in sorted(latest)]


def copy_study(source: Store, name: str, target: Store, new_name: str | None = None) -> None:
    """Copy study `name` with all its trials from `source` into `target`."""
    info = source.get_study(name)
    copied = target.create_study(new_name or name, info.direction, info.space_json,
                                 info.system_attrs, directions=info.directions,
                                 objective_names=info.objective_names)
    for key, value in info.user_attrs.items():
        target.set_study_user_attr(copied.id, key, value)
    for record in read_all(source, info.id):
        target.import_trial(copied.id, record)


def sync_back(source: Store, study: Study) -> None:
    """Bring every trial that changed in `source` back into the study's own store."""
    info = source.get_study(study.name)
    mine = {t.number: t for t in study.trials}
    for record in read_all(source, info.id):
        if mine.get(record.number) != record:
            study.store.import_trial(study.id, record)
    if info.space_json:
        study.store.update_space(study.id, lambda _current: info.space_json or "")
    study.reload_space()


# --- warm starts ---------------------------------------------------------------------------

#: share of an earlier study's complete trials that form its good region (at least 3 trials)
WARM_TOP_SHARE = 0.2
#: bounds of a transferred prior's width (a share of the range)
WARM_WIDTH = (0.05, 0.5)
#: how many of the earlier studies' best configurations the new study tries first
WARM_ENQUEUE = 3

WarmSource = Any  # a Study, a study name in the new study's storage, or (storage, name)


@dataclass(frozen=True)
class WarmStart:
    """What a new study takes from earlier ones: its space with priors, and the earlier best
    configurations (restricted to its parameters) to try first."""

    space: Space
    configs: list[dict[str, Any]]


def warm_start(space: Space, sources: WarmSource | Sequence[WarmSource],
               storage: Store) -> WarmStart:
    """The priors (see `warm_start_space`) and the `WARM_ENQUEUE` best configurations of the
    earlier studies (their best ones in turn: each study's best, then each one's second...)."""
    good = _good_regions(space, sources, storage)
    configs: list[dict[str, Any]] = []
    seen: set[str] = set()
    for rank in range(max((len(g) for g in good), default=0)):
        for region in good:
            if rank < len(region) and len(configs) < WARM_ENQUEUE:
                config = {k: v for k, v in region[rank].items()
                          if k in space and space[k].contains(v)}
                if repr(sorted(config.items())) not in seen:
                    seen.add(repr(sorted(config.items())))
                    configs.append(config)
    return WarmStart(_with_priors(space, [t for g in good for t in g]), configs)


def warm_start_space(space: Space, sources: WarmSource | Sequence[WarmSource],
                     storage: Store) -> Space:
    """`space` with priors centred on the good region of earlier studies (`warm_start=`).

    The good region of each earlier study is its best `WARM_TOP_SHARE` complete trials (at
    least 3; values of different studies are never compared). For every parameter without a
    prior of the user's, the prior sits at the median of the pooled good trials (on the unit
    scale; for a `Choice`, their most frequent value) with a width of twice their spread,
    within `WARM_WIDTH` (for a `Choice`, 1 minus the share of the most frequent value).

    Raises:
        SpaceMismatchError: An earlier study lacks a parameter of `space` or gives it another
            domain.
        HyperlawError: An earlier study has no complete trial, or a source is not a study.
    """
    return _with_priors(space, [t for g in _good_regions(space, sources, storage) for t in g])


def _good_regions(space: Space, sources: WarmSource | Sequence[WarmSource],
                  storage: Store) -> list[list[dict[str, Any]]]:
    """Per earlier study, the parameters of its good trials, best first."""
    good: list[list[dict[str, Any]]] = []
    for store, name in _warm_sources(sources, storage):
        info = store.get_study(name)
        _check_warm_space(space, info.space_json, name)
        good.append(_good_trials(read_all(store, info.id), info.direction, name))
    return good


def _with_priors(space: Space, good: list[dict[str, Any]]) -> Space:
    params: dict[str, Param] = {}
    for name, param in space.items():
        values = [t[name] for t in good if name in t and param.contains(t[name])]
        if param.is_dim and not param.has_prior and values:
            params[name] = _transferred(param, values)
        else:
            params[name] = param
    return Space(params)


def _warm_sources(sources: WarmSource | Sequence[WarmSource],
                  storage: Store) -> list[tuple[Store, str]]:
    from hyperlaw.store import open_store
    from hyperlaw.study import Study

    items = [sources] if isinstance(sources, str | tuple | Study) else list(sources)
    found: list[tuple[Store, str]] = []
    for item in items:
        if isinstance(item, Study):
            found.append((item.store, item.name))
        elif isinstance(item, str):
            found.append((storage, item))
        elif isinstance(item, tuple) and len(item) == 2 and isinstance(item[1], str):
            found.append((open_store(item[0], mode="read"), item[1]))
        else:
            raise HyperlawError(
                f"warm_start got {item!r}; pass earlier studies as Study objects, study names "
                "in the same storage, or (storage, name) pairs")
    return found


def _check_warm_space(space: Space, space_json: str | None, name: str) -> None:
    earlier = Space.from_json(space_json) if space_json else Space({})
    for param_name in space.dims:
        theirs = earlier.get(param_name)
        if theirs is None:
            raise SpaceMismatchError(
                f"warm_start: parameter {param_name!r} is not in the space of earlier study "
                f"{name!r} (it has {sorted(earlier)}); warm-start from a study of the same "
                "parameters, or drop the parameter")
        if not param_matches(theirs, space[param_name]):
            raise SpaceMismatchError(
                f"warm_start: parameter {param_name!r} is {space[param_name]!r} here but "
                f"{theirs!r} in earlier study {name!r}; give it the same domain in both "
                "studies to transfer its good region")


def _good_trials(records: list[TrialRecord], direction: str, name: str) -> list[dict[str, Any]]:
    done = [r for r in records if r.state is TrialState.COMPLETE and r.value is not None]
    if not done:
        raise HyperlawError(f"warm_start: earlier study {name!r} has no complete trial; "
                            "run it first or leave it out of warm_start")
    sign = -1.0 if direction == "maximize" else 1.0
    done.sort(key=lambda r: sign * float(r.value or 0.0))
    n_top = max(3, math.ceil(WARM_TOP_SHARE * len(done)))
    return [r.params for r in done[:n_top]]


def _transferred(param: Param, values: list[Any]) -> Param:
    """`param` with a prior fitted to the good values `values` (see `warm_start_space`)."""
    if isinstance(param, Choice):
        counts = Counter(param.index(v) for v in values)
        index, count = counts.most_common(1)[0]
        width = min(max(1.0 - count / len(values), 0.1), 1.0)
        return param.with_prior(param.values[index], width)
    units = np.array([param.to_unit(v) for v in values])
    centre = float(np.median(units))
    width = float(np.clip(2.0 * units.std(), *WARM_WIDTH))
    return param.with_prior(param.from_unit(centre), width)
