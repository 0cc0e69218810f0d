"""What the framework callbacks share: report without raising, rank 0's decision for every
rank, when to checkpoint, the monitored metric, and a PBT child's optimizer settings."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from hyperlaw.errors import HyperlawError, TrialPruned
from hyperlaw.lineage import pbt_link
from hyperlaw.trial import Trial


def report(trial: Trial, value: float, step: int,
           checkpoint: Any = None) -> TrialPruned | None:
    """`trial.report`, returning the scheduler's TrialPruned (stop or pause) instead of raising
    it, so a callback can let its framework shut down first and raise it afterwards."""
    try:
        trial.report(value, step, checkpoint=checkpoint)
    except TrialPruned as stop:
        return stop
    return None


CONTINUE, STOP, FAILED = 0, 1, 2


def report_on_rank_zero(trial: Trial | None, value: Callable[[], float], step: int,
                        checkpoint: Any = None, *, rank_zero: bool = True,
                        broadcast: Callable[[int], int] | None = None) -> TrialPruned | None:
    """Rank zero reports `value()` at `step`; every rank gets the scheduler's decision through
    `broadcast` (which sends rank zero's int to every rank and returns it; None: one process)
    and returns a TrialPruned to raise once the framework has shut down, or None. When rank
    zero fails, it tells the others (so none waits for ever) and raises; they raise too."""
    send = broadcast or (lambda code: code)
    outcome: TrialPruned | None = None
    if rank_zero:
        try:
            if trial is None:
                raise HyperlawError(
                    "the rank that reports (rank 0) got trial=None; pass the trial on that "
                    "rank (None only on the other ranks)")
            outcome = report(trial, value(), step, checkpoint)
        except BaseException:
            send(FAILED)
            raise
    decision = send(CONTINUE if outcome is None else STOP)
    if decision == FAILED:
        raise HyperlawError(f"rank 0 could not report step {step} of the trial; its error is "
                            "in its output")
    if decision == STOP:
        return outcome or TrialPruned(f"rank 0's trial was stopped at step {step}")
    return None


#: the latest decision's tensor, held until the next: a gloo worker thread that dropped the
#: last reference to it would need the GIL, and during an exiting interpreter's shutdown
#: that kills the thread and aborts the process
_LAST_SENT: list[Any] = []


def process_group_broadcast(src: int = 0) -> Callable[[int], int] | None:
    """A `broadcast` for `report_on_rank_zero` over torch.distributed's default process group
    (rank `src`'s int, on every rank), or None when no group of several processes runs."""
    import torch
    import torch.distributed as dist

    if not (dist.is_available() and dist.is_initialized()) or dist.get_world_size() == 1:
        return None
    device = (torch.device("cuda", torch.cuda.current_device())
              if dist.get_backend() == "nccl" else torch.device("cpu"))

    def send(code: int) -> int:
        box = torch.tensor([code], dtype=torch.int64, device=device)
        dist.broadcast(box, src=src)
        _LAST_SENT[:] = [box]
        return int(box.item())

    return send


def checkpoint_interval(trial: Trial | None, every: int | None) -> int:
    """Save a checkpoint every this many reports: `every` (0 turns checkpoints off), else the
    PBT interval of the study's scheduler, else every report (what the promotion variants of
    ASHA and Hyperband need to pause a trial at a rung, and a retried trial to resume)."""
    if every is None:
        if trial is None:
            return 1
        return int(getattr(trial.study.scheduler, "interval", 1))
    if isinstance(every, bool) or not isinstance(every, int) or every < 0:
        raise HyperlawError(
            f"checkpoint_every must be an int >= 0 (0: no checkpoints), got {every!r}")
    return every


def metric(logs: Any, monitor: str, where: str) -> float:
    """The float value of `logs[monitor]` (a number, numpy scalar or one-element tensor), or
    an error naming the metric, what was logged and the fix."""
    value = logs.get(monitor) if logs is not None else None
    if value is None:
        logged = sorted(logs) if logs else []
        raise HyperlawError(
            f"{where}: the monitored metric {monitor!r} was not logged (logged: {logged}); "
            f"log it during validation or pass monitor= one of those")
    return float(value.item() if hasattr(value, "item") else value)


def exploited(trial: Trial | None) -> bool:
    """Whether `trial` is a PBT child that starts from another member's checkpoint with
    explored hyperparameters (a checkpoint restores the donor's optimizer settings)."""
    link = None if trial is None else pbt_link(trial.system_attrs)
    return link is not None and link.kind == "exploit"


def optimizer_settings(optimizer: Any) -> list[dict[str, Any]]:
    """A copy of each torch param group's settings (all but its parameters)."""
    return [{k: v for k, v in group.items() if k != "params"}
            for group in optimizer.param_groups]


def adopt_settings(optimizer: Any, settings: list[dict[str, Any]],
                   lr_schedulers: Sequence[Any] = ()) -> None:
    """Give an optimizer restored from a donor's checkpoint the `settings` this trial
    configured it with (`optimizer_settings` before the restore), keeping its state.

    A learning rate under an LR scheduler keeps its place in the schedule: the restored rate
    is scaled by the ratio of the new base rate (``initial_lr``) to the donor's, and the
    schedulers' base rates follow, so a warmup or decay goes on from the same step.
    """
    for group, fresh in zip(optimizer.param_groups, settings, strict=True):
        for key, value in fresh.items():
            if key not in ("lr", "initial_lr"):
                group[key] = value
        if "lr" not in fresh:
            continue
        if fresh.get("initial_lr") and group.get("initial_lr"):
            group["lr"] = group["lr"] * (fresh["initial_lr"] / group["initial_lr"])
            group["initial_lr"] = fresh["initial_lr"]
        else:
            group["lr"] = fresh["lr"]
    base_lrs = [group.get("initial_lr", group["lr"]) for group in optimizer.param_groups]
    for scheduler in lr_schedulers:
        if getattr(scheduler, "optimizer", None) is optimizer and hasattr(scheduler, "base_lrs"):
            scheduler.base_lrs = list(base_lrs)
