"""`circeff sweep run|combine|status`: grids of runs into an idempotent result store."""

from __future__ import annotations

from pathlib import Path

import typer

from circeff.cli.common import (RESUME_RULE, apply_threads, check_plan_out, check_resumable_out, resume_option,
                                threads_option, warn_if_busy)
from circeff.errors import ConfigError, RunError

# circeff.sweep imports pandas (and its runs torch): each command imports it when it runs, so
# that --help answers at once. The executors' names are spelled out for the help; a test holds
# them equal to circeff.sweep.executors.EXECUTOR_NAMES.
EXECUTORS_HELP = "inprocess, pool, slurm, submitit-local"

app = typer.Typer(help="Run grids of configs (in-process, process pool, SLURM) into a result store.",
                  no_args_is_help=True)


@app.command("run")
def run_cmd(
    grid: Path = typer.Argument(..., help="Grid file (JSON): kind, base, grid, runs."),
    out: Path | None = typer.Option(None, "--out", help="Store folder: one sub-folder per run, results.csv "
                                    "(required unless --plan). " + RESUME_RULE),
    executor: str = typer.Option("inprocess", "--executor",
                                 help=f"Where runs go: {EXECUTORS_HELP}."),
    partition: str | None = typer.Option(None, "--partition", help="SLURM partition (--executor slurm)."),
    timeout_min: int = typer.Option(60, "--timeout-min", help="Time limit of one submitit job, minutes."),
    gpus_per_node: int = typer.Option(0, "--gpus-per-node", help="GPUs per SLURM job."),
    cpus_per_task: int = typer.Option(1, "--cpus-per-task", help="CPUs per submitit job."),
    max_workers: int | None = typer.Option(None, "--max-workers", help="Processes of --executor pool."),
    max_batch: int | None = typer.Option(None, "--max-batch",
                                         help="At most this many runs in one engine batch."),
    plan: bool = typer.Option(False, "--plan", help="Print the engine batches' model-steps, examples and estimated "
                              "wall time (a short calibration here) and exit; trains nothing (train grids)."),
    json_path: Path | None = typer.Option(None, "--json", help="With --plan: also write the plan as JSON here."),
    resume: bool = resume_option(),
    threads: int | None = threads_option(),
) -> None:
    """Run every run of GRID not finished yet in OUT; rerunning the same command resumes (finished
    runs are skipped, unfinished ones continue from their checkpoints)."""
    from circeff.sweep.executors import EXECUTOR_NAMES, make_executor
    from circeff.sweep.grid import load_grid
    from circeff.sweep.runner import default_submitit_folder, run_sweep
    from circeff.sweep.store import RESULTS_CSV

    apply_threads(threads)
    if executor not in EXECUTOR_NAMES:
        raise ConfigError("--executor", f"must be one of {', '.join(EXECUTOR_NAMES)}", executor)
    if json_path is not None and not plan:
        raise ConfigError("--json", "is only for --plan", str(json_path))
    # Build (and so validate) every config and the executor before writing anything.
    kind, configs = load_grid(grid)
    check_plan_out(plan, out)
    if plan:
        warn_if_busy(threads)
        _plan(kind, configs, grid, json_path, max_batch)
        return
    if out is None:
        raise ConfigError("--out", "is required (unless --plan)", None)
    if out.exists() and not out.is_dir():
        raise ConfigError("--out", "must be a folder (a file is in the way)", str(out))
    check_resumable_out(out, resume)
    runner = make_executor(executor, kind.batch_fn, group_key=kind.group_key, max_batch=max_batch,
                           folder=default_submitit_folder(out), partition=partition,
                           timeout_min=timeout_min, gpus_per_node=gpus_per_node,
                           cpus_per_task=cpus_per_task, max_workers=max_workers)
    warn_if_busy(threads)
    try:
        report = run_sweep(configs, out, runner)
    except KeyboardInterrupt as exc:
        # typer turns a KeyboardInterrupt into a silent exit 130; say how to go on (a training
        # loop's stop says what it saved itself)
        from circeff.errors import Interrupted

        if isinstance(exc, Interrupted):
            typer.echo(f"error: {exc}; finished runs are kept", err=True)
            raise typer.Exit(exc.exit_code) from None
        typer.echo("error: interrupted; rerun the same command to resume (finished runs are kept)",
                   err=True)
        raise typer.Exit(130) from None
    ran = len(report.results)
    diverged = [r for r in report.results if r.ok and isinstance(r.summary, dict)
                and r.summary.get("status") == "diverged"]
    typer.echo(f"{report.total} runs: {report.skipped} already done, {ran} ran "
               f"({report.resumed} resumed), {len(report.failed)} failed, {len(diverged)} diverged; "
               f"table: {out / RESULTS_CSV}")
    for result in diverged:
        typer.echo(f"diverged {result.run_id}: non-finite loss at step {result.summary.get('diverged_at')} "
                   "(its rows say status=diverged)", err=True)
    for result in report.failed:
        typer.echo(f"failed {result.run_id}: {result.error}", err=True)
    if report.failed:
        raise RunError(f"{len(report.failed)} of {report.total} runs failed (their folders hold "
                       "failed.json); rerun the same command to retry them")


@app.command("combine")
def combine_cmd(
    out: Path = typer.Argument(..., help="Store folder written by `circeff sweep run`."),
) -> None:
    """Combine every finished run of OUT into OUT/results.csv (and .parquet with pyarrow)."""
    from circeff.sweep.store import RESULTS_CSV, combine

    if not (out / "runs").is_dir():
        raise ConfigError("OUT", "must be a sweep store folder (with a runs/ sub-folder)", str(out))
    table = combine(out)
    typer.echo(f"{table['run_id'].nunique()} finished runs, {len(table)} rows: {out / RESULTS_CSV}")


@app.command("status")
def status_cmd(
    out: Path = typer.Argument(..., help="Store folder written by `circeff sweep run`."),
) -> None:
    """Count the runs of OUT that are done, resumable (checkpoint) and new."""
    from circeff.sweep.store import RunStore

    if not (out / "runs").is_dir():
        raise ConfigError("OUT", "must be a sweep store folder (with a runs/ sub-folder)", str(out))
    counts = RunStore(out).counts()
    typer.echo(", ".join(f"{n} {status}" for status, n in counts.items()))


def _plan(kind, configs, grid: Path, json_path: Path | None, max_batch: int | None) -> None:
    """The grid's engine batches (runs grouped as the executors group them) as a plan."""
    from circeff.io import write_json
    from circeff.reproduce.plan import Work, run_plan

    if kind.name != "train":
        raise ConfigError("--plan", "plans grids of kind train only", kind.name)
    from circeff.sweep.engine import merge

    groups: dict[str, list] = {}
    for c in configs:
        groups.setdefault(kind.group_key(c), []).append(c)
    batches = [merge(g[i:i + (max_batch or len(g))]) for g in groups.values()
               for i in range(0, len(g), max_batch or len(g))]
    work = {f"batch {i}": [Work.of(f"batch {i}", b)] for i, b in enumerate(batches)}
    lines, data = run_plan(f"circeff sweep run {grid} --plan: {len(configs)} runs in {len(batches)} engine batches",
                           work, gpu=any(b.device != "cpu" for b in batches))
    for line in lines:
        typer.echo(line)
    if json_path is not None:
        write_json(json_path, data)
