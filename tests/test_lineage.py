"""The lineage keys and records as stored: databases written by earlier versions hold them."""

from __future__ import annotations

import math

from hyperlaw import lineage
from hyperlaw.lineage import Checkpoint, PbtLink, pbt_link, resume_candidates
from hyperlaw.store.common import retry_attrs
from hyperlaw.trial import TrialRecord, TrialState


def test_stored_key_names_never_change() -> None:
    stored = {lineage.RETRY_OF: "retry_of", lineage.RETRIES: "retries",
              lineage.STALE: "stale", lineage.WORKER: "worker",
              lineage.PROPOSAL: "proposal", lineage.CHECKPOINTS: "checkpoints",
              lineage.RESUME: "resume", lineage.SUSPENDED: "suspended",
              lineage.PROMOTED_FROM: "promoted_from", lineage.PBT: "pbt",
              lineage.CONTINUED_BY: "continued_by"}
    assert all(key == name for key, name in stored.items())


def test_pbt_link_reads_and_writes_the_stored_form() -> None:
    stored = {"member": 2, "parent": 5, "step": 8, "score": 0.25, "kind": "exploit",
              "from": 6}
    link = pbt_link({lineage.PBT: stored})
    assert link == PbtLink(2, 5, 8, 0.25, "exploit", 6)
    assert link.to_json() == stored
    assert pbt_link({}) is None
    older = PbtLink.from_json({**stored, "score": float("nan"), "from": None})
    assert older.source is None and math.isnan(older.score)


def test_a_retry_resumes_from_the_checkpoints_of_the_trial_it_retries() -> None:
    """The keys the store writes on a retry are those the resume rules read."""
    start = Checkpoint(0, 3, "inherited/a", "pickle").to_json()
    own = Checkpoint(1, 6, "trial-1/step-6", "pickle", saved_at=1.0).to_json()
    dead = TrialRecord(1, TrialState.FAILED, {"x": 1},
                       system_attrs={lineage.RESUME: start, lineage.CHECKPOINTS: [own],
                                     lineage.STALE: True})
    attrs = retry_attrs(dead, retry_limit=2)
    assert attrs is not None and attrs[lineage.RETRY_OF] == 1 and attrs[lineage.RETRIES] == 1
    retry = TrialRecord(2, TrialState.RUNNING, {"x": 1}, system_attrs=attrs)
    steps = [c.step for c in resume_candidates(2, retry.system_attrs, [dead, retry])]
    assert steps == [6, 3]
