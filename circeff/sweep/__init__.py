"""Sweeps: run grids of configs through one executor interface into an idempotent result store.

- :mod:`circeff.sweep.store`: one folder per run keyed by its config hash; ``combine``.
- :mod:`circeff.sweep.executors`: ``RunTask``, ``Executor`` and the in-process, pool and
  submitit (SLURM / local) executors.
- :mod:`circeff.sweep.grid`: grid files and the kinds of run they name.
- :mod:`circeff.sweep.runner`: ``run_sweep`` (skip finished runs, resume the rest).
"""

from circeff.sweep.executors import (
    Executor,
    InProcessExecutor,
    PoolExecutor,
    RunResult,
    RunTask,
    SubmititExecutor,
    execute_group,
    make_executor,
)
from circeff.sweep.runner import SweepReport, run_sweep
from circeff.sweep.store import RunStatus, RunStore, combine, config_hash, load_results

__all__ = [
    "Executor", "InProcessExecutor", "PoolExecutor", "RunResult", "RunStatus", "RunStore",
    "RunTask", "SubmititExecutor", "SweepReport", "combine", "config_hash", "execute_group",
    "load_results", "make_executor", "run_sweep",
]
