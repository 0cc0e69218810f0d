"""Rules shared by every store: best-trial order, retries of stale trials, error messages,
storage URLs shown without their password."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from hyperlaw.errors import StorageError, StudyNotFoundError, TrialStateError
from hyperlaw.lineage import RETRIES, RETRY_KEEPS, RETRY_OF, STALE, WORKER
from hyperlaw.trial import TrialExtras, TrialRecord, TrialState

_QUERY_PASSWORD = re.compile(r"(?i)(\bpassword=)[^&]*")


def mask_url(url: str) -> str:
    """`url` with its password (in the user info or a `password=` query parameter) shown as
    ***. The host is what follows the last `@`, so that an unencoded `@` in the password
    shows no part of it."""
    scheme, sep, rest = url.partition("://")
    if not sep:
        return url
    netloc, slash, path = rest.partition("/")
    user_info, at, host = netloc.rpartition("@")
    if at:
        user, colon, _ = user_info.partition(":")
        netloc = f"{user}{':***' if colon else ''}@{host}"
    return _QUERY_PASSWORD.sub(r"\1***", f"{scheme}://{netloc}{slash}{path}")


def check_url(url: str) -> None:
    """Refuse a storage URL whose user name or password holds an unencoded `@`, which would
    make the part after it read as the host (and show it in messages)."""
    _, sep, rest = url.partition("://")
    user_info = rest.partition("/")[0].rpartition("@")[0]
    if sep and "@" in user_info:
        raise StorageError(
            f"storage URL {mask_url(url)!r}: the user name or password contains an unencoded "
            "'@'; percent-encode it as %40 (e.g. a password p@ss is written p%40ss; encode "
            "':', '/', '?', '#' and '%' likewise, with urllib.parse.quote(password, safe=''))")


def ranked_value(trial: TrialRecord) -> float | None:
    """The value `trial` is ranked by for the best trial (its first objective's), or None
    when it cannot be best (not complete, no value, or infeasible)."""
    value = trial.value
    if trial.state is not TrialState.COMPLETE or value is None or not trial.feasible:
        return None
    return value


def best_of(trials: Iterable[TrialRecord], maximize: bool) -> TrialRecord | None:
    """The complete feasible trial with the best value; the lowest number wins ties."""
    best: TrialRecord | None = None
    best_value = 0.0  # read only once `best` is set
    for t in trials:
        value = ranked_value(t)
        if value is None:
            continue
        if best is None or (value > best_value if maximize else value < best_value):
            best, best_value = t, value
    return best


def extras_of(record: TrialRecord) -> TrialExtras:
    """What a store writes of `record` besides its first value (for copies of trials)."""
    values = record.values if record.values is not None and len(record.values) > 1 else None
    return TrialExtras(values, dict(record.constraints), dict(record.cost))


def retry_attrs(stale: TrialRecord, retry_limit: int) -> dict[str, Any] | None:
    """System attributes of the retry of a stale trial, or None when its retries are used up."""
    retries = int(stale.system_attrs.get(RETRIES, 0))
    if retries >= retry_limit:
        return None
    origin = stale.system_attrs.get(RETRY_OF, stale.number)
    kept = {k: stale.system_attrs[k] for k in RETRY_KEEPS if k in stale.system_attrs}
    return {**kept, RETRY_OF: origin, RETRIES: retries + 1}


def owned(system_attrs: Mapping[str, Any] | None, owner: str | None) -> dict[str, Any]:
    """`system_attrs` of a trial that `owner` starts now (unchanged without an owner)."""
    attrs = dict(system_attrs or {})
    if owner is not None:
        attrs[WORKER] = owner
    return attrs


def missing_study_error(name: str, url: str, known: Sequence[str]) -> StudyNotFoundError:
    listing = ", ".join(repr(n) for n in sorted(known)[:20]) or "none"
    return StudyNotFoundError(
        f"no study named {name!r} in storage {url!r} (studies there: {listing}); check the "
        "name and the storage URL, or create it with hyperlaw.create_study"
    )


def not_running_error(study: str, record: TrialRecord, action: str) -> TrialStateError:
    why = ""
    if record.system_attrs.get(STALE):
        why = " (it was marked failed because its heartbeat stopped)"
    return TrialStateError(
        f"cannot {action} trial #{record.number} of study {study!r}: it is {record.state.value}"
        f"{why}, not running; each trial is told once, with `study.tell` or by returning from "
        "the objective"
    )
