"""Run a list of configs through an executor into a result store, skipping finished runs."""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from circeff.sweep.executors import Executor, RunResult, RunTask
from circeff.sweep.store import RunStatus, RunStore, combine, config_hash


@dataclasses.dataclass(frozen=True)
class SweepReport:
    """What one call of :func:`run_sweep` did."""

    total: int
    skipped: int      # finished before this call
    resumed: int      # restarted from a checkpoint
    results: tuple[RunResult, ...]
    table: pd.DataFrame | None

    @property
    def failed(self) -> list[RunResult]:
        return [r for r in self.results if not r.ok]


def plan(store: RunStore, configs: Sequence[Any]) -> tuple[list[RunTask], int]:
    """Tasks for every config not yet done (duplicates once), and how many were already done.

    Writes each unfinished run's folder and config.json.
    """
    tasks: list[RunTask] = []
    seen: set[str] = set()
    skipped = 0
    for config in configs:
        run_id = config_hash(config)
        if run_id in seen:
            continue
        seen.add(run_id)
        status = store.status(config)
        if status is RunStatus.DONE:
            store.prepare(config)  # checks that the finished folder really is this config
            skipped += 1
            continue
        out_dir = store.prepare(config)
        tasks.append(RunTask(config, out_dir, resume=status is RunStatus.RESUMABLE))
    return tasks, skipped


def run_sweep(configs: Sequence[Any], store_root: str | os.PathLike[str], executor: Executor, *,
              combine_results: bool = True) -> SweepReport:
    """Run every config that is not finished yet, then write the combined table.

    Interrupting (Ctrl-C, kill) and calling again with the same configs resumes: finished
    runs are skipped and runs with a checkpoint continue from it.
    """
    store = RunStore(store_root)
    store.verify()  # refuse a corrupt store before adding to it
    with store.lock():  # two sweeps writing one store would train the same runs twice
        tasks, skipped = plan(store, configs)
        results = executor.run(tasks)
        table = combine(store.root) if combine_results else None
    return SweepReport(total=skipped + len(tasks), skipped=skipped,
                       resumed=sum(t.resume for t in tasks), results=tuple(results), table=table)


def default_submitit_folder(store_root: str | os.PathLike[str]) -> Path:
    """Where submitit keeps job pickles and logs: beside the runs, inside the store."""
    return Path(store_root) / "submitit"
