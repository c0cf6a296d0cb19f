"""Engine batches of the experiments trained through an executor (SLURM, submitit, a pool).

:class:`ExecutorTrainer` implements the experiments' :class:`~circeff.empirical.backend.Trainer`
protocol: it submits each batch through the executor interface of
:mod:`circeff.sweep.executors` and waits for it, so ``circeff reproduce --executor slurm
--partition NAME`` runs unchanged on a cluster. The engine's checkpoints make a killed job
resumable either way: a rerun finds the checkpoint and continues it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from circeff.empirical.backend import IN_PROCESS, Trainer
from circeff.empirical.checkpoint import CHECKPOINT_NAME
from circeff.errors import RunError
from circeff.sweep.executors import Executor, RunTask, make_executor

__all__ = ["ExecutorTrainer", "make_trainer", "train_whole_batches"]


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


@dataclass(frozen=True)
class ExecutorTrainer:
    """Trains each batch as one task of ``executor`` (its progress bars stay in the job)."""

    executor: Executor

    def train(self, config: Any, run_dir: Path, *, progress: bool, resume: bool) -> None:
        run_dir = Path(run_dir)
        task = RunTask(config, run_dir, resume=resume and (run_dir / CHECKPOINT_NAME).is_file())
        [outcome] = self.executor.run([task])
        if not outcome.ok:
            raise RunError(f"{run_dir}: {outcome.error}")


def make_trainer(name: str = "inprocess", *, folder: Path | None = None, partition: str | None = None,
                 timeout_min: int = 60, gpus_per_node: int = 0, cpus_per_task: int = 1,
                 max_workers: int | None = None) -> Trainer:
    """The trainer for executor ``name``: ``inprocess`` trains here with progress bars; the
    other names are those of :func:`circeff.sweep.executors.make_executor` (``folder`` holds
    submitit's job files). An executor that cannot run here (no ``sbatch``) says so now,
    before any stage starts."""
    if name == "inprocess":
        return IN_PROCESS
    executor = make_executor(name, train_whole_batches, folder=folder, partition=partition,
                             timeout_min=timeout_min, gpus_per_node=gpus_per_node,
                             cpus_per_task=cpus_per_task, max_workers=max_workers)
    check = getattr(executor, "check_available", None)
    if check is not None:
        check()
    return ExecutorTrainer(executor)
