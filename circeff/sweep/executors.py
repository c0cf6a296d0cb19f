"""One executor interface, three ways to run a grid of runs.

A *task* is one run: its config and the folder its results go to. The work is a
module-level *batch function* ``batch_fn(tasks) -> values`` (picklable by reference, so
that a process pool or a SLURM job can import it) that trains every task of a batch and
returns one value per task: a summary (any JSON-able value, may be None) for a run that
finished, or an ``Exception`` instance for a run that failed while the rest of its batch
went on (for example a run that diverged to NaN).

Every executor groups tasks with a ``group_key(config)`` (tasks with the same key go to
one call of ``batch_fn``; no key means one task per call) and runs each group through
:func:`execute_group`, which writes ``done.json`` for each finished run as its last file
and ``failed.json`` for each failed one. So the executors differ only in *where* a group
runs:

- :class:`InProcessExecutor` (the default): in this process, one group after another,
  so several runs share one engine batch.
- :class:`PoolExecutor`: one group per worker of a local ``ProcessPoolExecutor`` (spawn).
- :class:`SubmititExecutor`: one group per SLURM job via submitit (``cluster="slurm"``),
  or per local subprocess (``cluster="local"``, what the tests use).
"""

from __future__ import annotations

import concurrent.futures as cf
import dataclasses
import multiprocessing
import os
import shutil
from collections.abc import Callable, Hashable, Sequence
from pathlib import Path
from typing import Any, Protocol

from circeff.errors import ConfigError, RunError
from circeff.sweep.store import mark_done, mark_failed


@dataclasses.dataclass(frozen=True)
class RunTask:
    """One run: its config, its own folder, and whether a checkpoint there should be resumed."""

    config: Any
    out_dir: Path
    resume: bool = False

    @property
    def run_id(self) -> str:
        return self.out_dir.name


@dataclasses.dataclass(frozen=True)
class RunResult:
    """What became of one task. ``error`` is one line when ``ok`` is False."""

    run_id: str
    out_dir: Path
    ok: bool
    error: str | None = None
    summary: Any = None


BatchFn = Callable[[Sequence[RunTask]], Sequence[Any]]
GroupKey = Callable[[Any], Hashable]


class Executor(Protocol):
    def run(self, tasks: Sequence[RunTask]) -> list[RunResult]:
        """Run every task; returns one result per task, in the order given."""
        ...


def one_line(exc: BaseException) -> str:
    """An exception as one line: our own errors by their message, others with their type."""
    text = " ".join(str(exc).split())
    if isinstance(exc, (ConfigError, RunError)):
        return text
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def execute_group(batch_fn: BatchFn, tasks: Sequence[RunTask]) -> list[RunResult]:
    """Run one batch and record each run's outcome in its folder (done.json written last).

    Module-level so that pools and submitit jobs can pickle it. A KeyboardInterrupt is
    not caught: the runs stay unfinished and resume on the next attempt.
    """
    tasks = list(tasks)
    try:
        values = list(batch_fn(tasks))
    except Exception as exc:  # one bad batch must not take the sweep down
        error = one_line(exc)
        for task in tasks:
            mark_failed(task.out_dir, error)
        return [RunResult(t.run_id, t.out_dir, ok=False, error=error) for t in tasks]
    if len(values) != len(tasks):
        raise RunError(f"batch function {getattr(batch_fn, '__name__', batch_fn)} returned "
                       f"{len(values)} values for {len(tasks)} runs")
    results = []
    for task, value in zip(tasks, values):
        if isinstance(value, Exception):
            error = one_line(value)
            mark_failed(task.out_dir, error)
            results.append(RunResult(task.run_id, task.out_dir, ok=False, error=error))
        else:
            mark_done(task.out_dir, value)
            results.append(RunResult(task.run_id, task.out_dir, ok=True, summary=value))
    return results


def group_tasks(tasks: Sequence[RunTask], group_key: GroupKey | None,
                max_batch: int | None = None) -> list[list[RunTask]]:
    """Tasks with equal keys in one group (first-seen order), split into chunks of max_batch."""
    if group_key is None:
        return [[t] for t in tasks]
    groups: dict[Hashable, list[RunTask]] = {}
    for task in tasks:
        groups.setdefault(group_key(task.config), []).append(task)
    out: list[list[RunTask]] = []
    for group in groups.values():
        step = max_batch or len(group)
        out.extend(group[i:i + step] for i in range(0, len(group), step))
    return out


def _in_order(tasks: Sequence[RunTask], results: Sequence[RunResult]) -> list[RunResult]:
    by_dir = {r.out_dir: r for r in results}
    return [by_dir[t.out_dir] for t in tasks]


def _check_max_batch(max_batch: int | None) -> None:
    if max_batch is not None and (isinstance(max_batch, bool) or not isinstance(max_batch, int)
                                  or max_batch < 1):
        raise ConfigError("--max-batch", "must be an integer >= 1", max_batch)


@dataclasses.dataclass
class InProcessExecutor:
    """Run each group in this process, one after another (several runs per engine batch)."""

    batch_fn: BatchFn
    group_key: GroupKey | None = None
    max_batch: int | None = None

    def __post_init__(self) -> None:
        _check_max_batch(self.max_batch)

    def run(self, tasks: Sequence[RunTask]) -> list[RunResult]:
        results: list[RunResult] = []
        for group in group_tasks(tasks, self.group_key, self.max_batch):
            results.extend(execute_group(self.batch_fn, group))
        return _in_order(tasks, results)


@dataclasses.dataclass
class PoolExecutor:
    """Run each group in a worker of a local process pool (spawn: no fork of torch state)."""

    batch_fn: BatchFn
    group_key: GroupKey | None = None
    max_batch: int | None = None
    max_workers: int | None = None

    def __post_init__(self) -> None:
        _check_max_batch(self.max_batch)
        if self.max_workers is not None and (not isinstance(self.max_workers, int) or self.max_workers < 1):
            raise ConfigError("--max-workers", "must be an integer >= 1", self.max_workers)

    def run(self, tasks: Sequence[RunTask]) -> list[RunResult]:
        groups = group_tasks(tasks, self.group_key, self.max_batch)
        if not groups:
            return []
        workers = min(self.max_workers or os.cpu_count() or 1, len(groups))
        results: list[RunResult] = []
        pool = cf.ProcessPoolExecutor(max_workers=workers, mp_context=multiprocessing.get_context("spawn"))
        try:
            futures = {pool.submit(execute_group, self.batch_fn, g): g for g in groups}
            for future in cf.as_completed(futures):
                try:
                    results.extend(future.result())
                except Exception as exc:  # a worker that died (BrokenProcessPool) or raised
                    error = f"worker failed: {one_line(exc)}"
                    for task in futures[future]:
                        mark_failed(task.out_dir, error)
                        results.append(RunResult(task.run_id, task.out_dir, ok=False, error=error))
        except BaseException:
            pool.shutdown(wait=True, cancel_futures=True)
            raise
        pool.shutdown(wait=True)
        return _in_order(tasks, results)


@dataclasses.dataclass
class SubmititExecutor:
    """Run each group as one submitit job: a SLURM job, or a local subprocess.

    ``cluster="slurm"`` submits with sbatch (``partition``, ``timeout_min``,
    ``gpus_per_node``, ``cpus_per_task``, ``mem_gb``; anything else as ``slurm_params``,
    e.g. ``{"account": "abc"}``). ``cluster="local"`` runs the same pickled job in a real
    subprocess on this machine, which is how CI tests the path. Job logs and pickles go
    to ``folder``. Waits for every job; Ctrl-C cancels the jobs it submitted, so that a
    rerun never races a still-running job on the same run folder.
    """

    batch_fn: BatchFn
    folder: Path
    cluster: str = "slurm"
    group_key: GroupKey | None = None
    max_batch: int | None = None
    partition: str | None = None
    timeout_min: int = 60
    gpus_per_node: int = 0
    cpus_per_task: int = 1
    mem_gb: float | None = None
    slurm_params: dict[str, Any] = dataclasses.field(default_factory=dict)

    def __post_init__(self) -> None:
        _check_max_batch(self.max_batch)
        if self.cluster not in ("slurm", "local"):
            raise ConfigError("cluster", "must be 'slurm' or 'local'", self.cluster)
        if self.cluster == "slurm" and not self.partition:
            raise ConfigError("--partition", "is required with --executor slurm", self.partition)
        for name in ("timeout_min", "cpus_per_task"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ConfigError(f"--{name.replace('_', '-')}", "must be an integer >= 1", value)
        if isinstance(self.gpus_per_node, bool) or not isinstance(self.gpus_per_node, int) or self.gpus_per_node < 0:
            raise ConfigError("--gpus-per-node", "must be an integer >= 0", self.gpus_per_node)

    def check_available(self) -> None:
        """A one-line RunError now, before any work, if jobs could not be submitted."""
        try:
            import submitit  # noqa: F401
        except ImportError:
            raise RunError("the submitit executors need submitit: pip install 'circuit-efficiency[slurm]'") from None
        if self.cluster == "slurm" and shutil.which("sbatch") is None:
            raise RunError("--executor slurm: sbatch is not on PATH (not a SLURM login node?); "
                           "use --executor submitit-local to run the same jobs here")

    def _executor(self) -> Any:
        self.check_available()
        import submitit

        executor = submitit.AutoExecutor(folder=self.folder, cluster=self.cluster)
        params: dict[str, Any] = {"name": "circeff", "timeout_min": self.timeout_min,
                                  "cpus_per_task": self.cpus_per_task}
        if self.mem_gb is not None:
            params["mem_gb"] = self.mem_gb
        if self.cluster == "slurm":
            params["gpus_per_node"] = self.gpus_per_node
            params["slurm_partition"] = self.partition
            params.update({f"slurm_{k}": v for k, v in self.slurm_params.items()})
        executor.update_parameters(**params)
        return executor

    def run(self, tasks: Sequence[RunTask]) -> list[RunResult]:
        groups = group_tasks(tasks, self.group_key, self.max_batch)
        if not groups:
            return []
        executor = self._executor()
        jobs = []
        try:
            with executor.batch():  # one SLURM job array for the whole sweep
                for group in groups:
                    jobs.append((executor.submit(execute_group, self.batch_fn, group), group))
            if self.cluster == "local":
                # submitit waits 15 s for the result file of a job that died, for slow network
                # file systems; a local job's files are on this disk, so 2 s is plenty.
                for job, _ in jobs:
                    if hasattr(job, "_results_timeout_s"):
                        job._results_timeout_s = 2
            results: list[RunResult] = []
            for job, group in jobs:
                try:
                    results.extend(job.result())
                except Exception as exc:  # the job died (killed, timed out, out of memory)
                    error = _job_error(job, exc)
                    for task in group:
                        mark_failed(task.out_dir, error)
                        results.append(RunResult(task.run_id, task.out_dir, ok=False, error=error))
        except BaseException:
            for job, _ in jobs:
                job.cancel(check=False)
            raise
        return _in_order(tasks, results)


def _job_error(job: Any, exc: BaseException) -> str:
    """One line for a job that failed: the error it raised, or how it ended without a result."""
    if type(exc).__name__ == "UncompletedJobError":  # killed, timed out, out of memory
        return (f"job {job.job_id} ended without a result (state {job.state}); "
                f"its log: {job.paths.stderr}")
    # FailedJobError carries the job's whole traceback; its last line is the error itself.
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    return f"job {job.job_id} failed: {lines[-1][:500] if lines else type(exc).__name__}"


EXECUTOR_NAMES = ("inprocess", "pool", "slurm", "submitit-local")


def make_executor(name: str, batch_fn: BatchFn, *, group_key: GroupKey | None = None,
                  max_batch: int | None = None, folder: Path | None = None,
                  partition: str | None = None, timeout_min: int = 60, gpus_per_node: int = 0,
                  cpus_per_task: int = 1, max_workers: int | None = None) -> Executor:
    """The executor named on the command line (``--executor``)."""
    if name == "inprocess":
        return InProcessExecutor(batch_fn, group_key=group_key, max_batch=max_batch)
    if name == "pool":
        return PoolExecutor(batch_fn, group_key=group_key, max_batch=max_batch, max_workers=max_workers)
    if name in ("slurm", "submitit-local"):
        if folder is None:
            raise ConfigError("folder", "a folder for submitit's job files is required")
        return SubmititExecutor(batch_fn, folder=folder, cluster="slurm" if name == "slurm" else "local",
                                group_key=group_key, max_batch=max_batch, partition=partition,
                                timeout_min=timeout_min, gpus_per_node=gpus_per_node,
                                cpus_per_task=cpus_per_task)
    raise ConfigError("--executor", f"must be one of {', '.join(EXECUTOR_NAMES)}", name)
