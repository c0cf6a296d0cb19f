"""Where an experiment's engine batches train: in this process, or through an executor.

The experiments (P1 efficiency, the grokked base networks, ungrokking, semi-grokking,
Figure 10) each call :func:`train_or_reuse` for every engine batch they need. By default that
trains in this process. Inside ``with training_executor("slurm", folder=..., partition=...)``
the same call submits the batch through the executor interface of
:mod:`circeff.sweep.executors` (a SLURM job via submitit, submitit's local subprocesses, or a
process pool) and waits for it, so ``circeff reproduce --executor slurm --partition NAME``
runs unchanged on a cluster. The engine's checkpoints make a killed job resumable either way:
a rerun finds the checkpoint and continues it.
"""

from __future__ import annotations

import contextlib
import contextvars
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from circeff.errors import RunError
from circeff.sweep.executors import Executor, RunTask, make_executor

__all__ = ["train_or_reuse", "train_whole_batches", "training_executor"]

_EXECUTOR: contextvars.ContextVar[Executor | None] = contextvars.ContextVar(
    "circeff_training_executor", default=None)


def train_whole_batches(tasks: Sequence[RunTask]) -> list[Any]:
    """Batch function for the executors: each task is a whole engine batch (a TrainConfig).

    Module-level so that submitit and process pools can pickle it by reference.
    """
    from circeff.empirical.train import train  # torch only where something trains

    summaries = []
    for task in tasks:
        result = train(task.config, task.out_dir, resume=task.resume, progress=False)
        summaries.append({"step": int(result.step), "wall_time_s": float(result.wall_time_s)})
    return summaries


@contextlib.contextmanager
def training_executor(name: str = "inprocess", *, folder: Path | None = None,
                      partition: str | None = None, timeout_min: int = 60,
                      gpus_per_node: int = 0, cpus_per_task: int = 1,
                      max_workers: int | None = None) -> Iterator[Executor | None]:
    """Route every :func:`train_or_reuse` inside the block through the executor ``name``.

    ``inprocess`` (the default) trains in this process with progress bars, exactly as
    without the context manager. The other names are those of
    :func:`circeff.sweep.executors.make_executor`; ``folder`` holds submitit's job files.
    """
    if name == "inprocess":
        yield None
        return
    executor = make_executor(name, train_whole_batches, folder=folder, partition=partition,
                             timeout_min=timeout_min, gpus_per_node=gpus_per_node,
                             cpus_per_task=cpus_per_task, max_workers=max_workers)
    check = getattr(executor, "check_available", None)
    if check is not None:
        check()  # e.g. no sbatch on this machine: say so before any stage starts
    token = _EXECUTOR.set(executor)
    try:
        yield executor
    finally:
        _EXECUTOR.reset(token)


def train_or_reuse(config: Any, run_dir: Path, *, progress: bool, resume: bool) -> None:
    """Train the batch unless ``run_dir`` already holds it at ``config.steps`` (with resume);
    an unfinished run continues from its checkpoint (a different config is a RunError)."""
    from circeff.empirical.checkpoint import CHECKPOINT_NAME, load_checkpoint

    run_dir = Path(run_dir)
    ckpt = run_dir / CHECKPOINT_NAME
    if resume and ckpt.is_file():
        state = load_checkpoint(ckpt, expected=config)  # RunError if written by another config
        if state.step >= config.steps and (run_dir / "summary.json").is_file():
            return
    executor = _EXECUTOR.get()
    if executor is None:
        from circeff.empirical.train import train

        train(config, run_dir, resume=resume, progress=progress)
        return
    [outcome] = executor.run([RunTask(config, run_dir, resume=resume and ckpt.is_file())])
    if not outcome.ok:
        raise RunError(f"{run_dir}: {outcome.error}")
