"""Copy a study between stores (e.g. an in-memory study to SQLite for worker processes)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from hyperlaw.store.base import Store
from hyperlaw.trial import TrialRecord

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
