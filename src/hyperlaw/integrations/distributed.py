"""Trials that train on several processes themselves (DDP): rank 0 reports, the others follow.

    from hyperlaw.integrations.distributed import distributed_report, run_processes

    def train(trial, params, epochs):          # every rank; `trial` is None except on rank 0
        dist.init_process_group("gloo")        # or "nccl"; the environment is torchrun's
        model = DistributedDataParallel(Net(params["width"]))
        for epoch in range(epochs):
            loss = train_one_epoch(model, params["lr"])  # all-reduced: the same on every rank
            distributed_report(trial, loss, epoch)       # raises TrialPruned on every rank
        return loss

    def objective(trial):                      # 2 processes: train(trial, params, 20)
        return run_processes(trial, train, 2, dict(trial.params), 20)

`run_processes` runs rank 0 in the objective's own process (it holds the trial) and starts
the other ranks with multiprocessing's "spawn" method, each with the environment torchrun
gives (RANK, LOCAL_RANK, WORLD_SIZE, LOCAL_WORLD_SIZE, MASTER_ADDR, MASTER_PORT), so
`init_process_group()` and Lightning's `strategy="ddp"` find their peers. `train` must be a
module-level function (spawn pickles it by name). `distributed_report` has rank 0 report and
broadcasts the scheduler's decision, so all ranks stop at the same step.
"""

from __future__ import annotations

import contextlib
import gc
import os
import socket
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

import torch.distributed as dist
import torch.multiprocessing as mp

from hyperlaw.errors import HyperlawError, TrialPruned
from hyperlaw.integrations._common import process_group_broadcast, report_on_rank_zero
from hyperlaw.trial import Trial

T = TypeVar("T")
#: how long the other ranks get to end by themselves once rank 0 failed
GRACE_SECONDS = 10.0


def distributed_report(trial: Trial | None, value: float, step: int, *,
                       checkpoint: Any = None, src: int = 0) -> None:
    """Rank `src` reports `value` at `step` (with `checkpoint`) to `trial`; every rank then
    raises `hyperlaw.TrialPruned` if the scheduler stopped or paused the trial. Call it on
    every rank with the same step; `trial` is needed on rank `src` only. Without a process
    group it reports and raises as `trial.report` does."""
    grouped = dist.is_available() and dist.is_initialized()
    stopped = report_on_rank_zero(trial, lambda: value, step, checkpoint,
                                  rank_zero=not grouped or dist.get_rank() == src,
                                  broadcast=process_group_broadcast(src))
    if stopped is not None:
        raise stopped


def run_processes(trial: Trial, train: Callable[..., T], nprocs: int, *args: Any,
                  address: str = "127.0.0.1", port: int | None = None) -> T:
    """`train(trial, *args)` on rank 0 in this process and `train(None, *args)` on ranks 1 to
    `nprocs` - 1 in new processes, with torchrun's environment (peers at `address`:`port`,
    default a free port); rank 0's result.

    A rank other than 0 that ends with TrialPruned has followed the decision and ends
    normally. When rank 0 fails, the others get GRACE_SECONDS to end, then are terminated;
    when another rank fails, HyperlawError names it and its exit code. The process group, if
    `train` left one, is destroyed on every rank."""
    if isinstance(nprocs, bool) or not isinstance(nprocs, int) or nprocs < 1:
        raise HyperlawError(f"nprocs must be a positive int, got {nprocs!r}")
    env = {"MASTER_ADDR": address, "MASTER_PORT": str(port or _free_port(address)),
           "WORLD_SIZE": str(nprocs), "LOCAL_WORLD_SIZE": str(nprocs)}
    context = mp.get_context("spawn")
    others = [context.Process(target=_follow, args=(train, rank, env, args),
                              name=f"hyperlaw-trial-{trial.number}-rank-{rank}")
              for rank in range(1, nprocs)]
    for process in others:
        process.start()
    try:
        with _environment({**env, "RANK": "0", "LOCAL_RANK": "0"}):
            try:
                result = train(trial, *args)
            finally:
                _destroy_process_group()
    except TrialPruned:
        _join(others, trial)
        raise
    except BaseException:
        for process in others:
            process.join(GRACE_SECONDS)
            if process.is_alive():
                process.terminate()
                process.join()
        raise
    _join(others, trial)
    return result


def _join(others: list[Any], trial: Trial) -> None:
    for process in others:
        process.join()
    failed = [f"{p.name} (exit code {p.exitcode})" for p in others if p.exitcode != 0]
    if failed:
        raise HyperlawError(f"trial #{trial.number}: {', '.join(failed)} failed; its error "
                            "is in its output")


def _follow(train: Callable[..., Any], rank: int, env: dict[str, str],
            args: tuple[Any, ...]) -> None:
    """A rank other than 0: run `train(None, *args)`; a TrialPruned ends it normally."""
    os.environ.update({**env, "RANK": str(rank), "LOCAL_RANK": str(rank)})
    try:
        train(None, *args)
    except TrialPruned:
        pass
    finally:
        _destroy_process_group()
        # Garbage (a pruning's traceback, for one) can hold the model and the process group;
        # freed at interpreter shutdown, a gloo thread still holding tensors takes the GIL
        # and aborts the process (SIGABRT). Free them now, while the interpreter is whole.
        gc.collect()


def _destroy_process_group() -> None:
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


@contextlib.contextmanager
def _environment(values: dict[str, str]) -> Iterator[None]:
    saved = {key: os.environ.get(key) for key in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def _free_port(address: str) -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((address, 0))
        return int(s.getsockname()[1])
