"""``circeff reproduce``: run every check and experiment, write ``report.md`` and ``summary.json``.

``--preset quick|full|paper`` names the scale as in every command (``--quick`` and ``--full`` are
shortcuts; ``--preset paper --smoke`` cuts the paper's run down for a GPU smoke test). See
:mod:`circeff.reproduce` for the stages, resuming and the out-folder rules.
"""

from __future__ import annotations

import shlex
from pathlib import Path
from typing import Optional

import typer

from circeff.cli import table
from circeff.cli.common import (RESUME_HELP, RESUME_RULE, THREADS_HELP, apply_threads, check_plan_out,
                                check_resumable_out, float_check_option, warn_if_busy)
from circeff.errors import ConfigError

__all__ = ["reproduce"]


def _scale_help(scale: str) -> str:
    return f"{table.training_help(scale)} in every experiment; `circeff presets` lists steps, seeds and sizes"


def reproduce(
    out: Optional[Path] = typer.Option(None, "--out", help="out folder (created; required unless --plan). "
                                       + RESUME_RULE),
    quick: bool = typer.Option(False, "--quick", help="shortcut for --preset quick (the default): "
                               + _scale_help("quick")),
    full: bool = typer.Option(False, "--full", help="shortcut for --preset full: " + _scale_help("full")),
    preset: Optional[str] = typer.Option(None, "--preset", help="quick (the default), full or paper (the paper's "
                                         "settings, for a GPU: " + _scale_help("paper") + ")"),
    smoke: bool = typer.Option(False, "--smoke", help="with --preset paper: a tenth of the steps and three seeds "
                               "(a GPU smoke test)"),
    device: str = typer.Option("cpu", "--device", help="cpu or cuda"),
    resume: bool = typer.Option(True, "--resume/--no-resume", help=RESUME_HELP),
    force: bool = typer.Option(False, "--force", help="replace results of a different config in --out"),
    threads: Optional[int] = typer.Option(None, "--threads", help=THREADS_HELP),
    no_progress: bool = typer.Option(False, "--no-progress", help="no progress bars"),
    executor: str = typer.Option("inprocess", "--executor",
                                 help="where engine batches train: inprocess, pool, slurm (submitit) or submitit-local"),
    partition: Optional[str] = typer.Option(None, "--partition", help="SLURM partition (--executor slurm)"),
    timeout_min: int = typer.Option(240, "--timeout-min", help="SLURM time limit per job in minutes"),
    gpus_per_node: int = typer.Option(0, "--gpus-per-node", help="GPUs per SLURM job (use with --device cuda)"),
    plan: bool = typer.Option(False, "--plan", help="print every stage's model-steps, examples and estimated "
                              "wall time (a calibration of a few engine steps here, < ~20 s) and exit; trains nothing"),
    json_path: Optional[Path] = typer.Option(None, "--json", help="with --plan: also write the plan as JSON here"),
    float_check: bool = float_check_option(),
    scale: Optional[str] = typer.Option(None, "--scale", hidden=True, help="tests only: tiny"),
) -> None:
    """Theory checks, toy Figure 2, a grokking run, P1-P4, Figure 10 and Theorem D.4's allocation."""
    from circeff.reproduce import run_reproduce
    from circeff.reproduce.config import named_config
    from circeff.sweep.backend import make_trainer

    name = _preset_named(quick, full, preset, scale)
    if device != "cpu" and not device.startswith("cuda"):
        raise ConfigError("--device", "must be cpu or cuda", device)
    apply_threads(threads)
    _check_executor(executor, timeout_min, gpus_per_node)
    config = named_config(name, device, smoke=smoke, tiny=scale == "tiny")
    typed = f"--preset {name}" + (" --smoke" if smoke else "")
    if json_path is not None and not plan:
        raise ConfigError("--json", "is only for --plan", str(json_path))
    check_plan_out(plan, out)
    if plan:
        warn_if_busy(threads)
        _print_plan(config, f"circeff reproduce {typed}: plan", json_path)
        return
    if out is None:
        raise ConfigError("--out", "is required (unless --plan)", None)
    check_resumable_out(out, resume)
    command = (f"circeff reproduce {typed} --device {device} --out {shlex.quote(str(out))}"
               if scale is None else f"circeff reproduce --scale tiny {typed} --out {shlex.quote(str(out))}")
    if float_check:
        if executor != "inprocess":
            raise ConfigError("--float-check", "needs --executor inprocess (the block size is set in this process)",
                              executor)
        command += " --float-check"
    # The executor changes where batches train, never what they compute, so it is not part of
    # the reproduce config (a run started in-process may be finished on SLURM and vice versa).
    warn_if_busy(threads)
    trainer = make_trainer(executor, folder=out / "jobs", partition=partition, timeout_min=timeout_min,
                           gpus_per_node=gpus_per_node)
    summary = run_reproduce(config, out, force=force, progress=not no_progress, command=command, trainer=trainer,
                            float_check=float_check)
    from circeff.report import verdict_line

    for key, v in summary["verdicts"].items():
        print(verdict_line(key, v))
    print(f"wall time {summary['timings']['total_s']:.1f} s; report: {out / 'report.md'}; "
          f"summary: {out / 'summary.json'}")


def _preset_named(quick: bool, full: bool, preset: Optional[str], scale: Optional[str]) -> str:
    """The preset the options name: --quick and --full are shortcuts for --preset."""
    from circeff.reproduce.config import check_preset

    if quick and full:
        raise ConfigError("--quick", "give at most one of --quick and --full", "both")
    shortcut = "quick" if quick else "full" if full else None
    if scale is not None and shortcut:
        raise ConfigError("--scale", "cannot be combined with --quick or --full", scale)
    if scale is not None and scale != "tiny":
        raise ConfigError("--scale", "must be tiny", scale)
    if preset is not None:
        check_preset(preset)
        if shortcut and preset != shortcut:
            hint = {("paper", "quick"): " (--preset paper --smoke is the paper's run cut down)",
                    ("paper", "full"): " (--preset paper alone is the paper's full run)"}.get((preset, shortcut), "")
            raise ConfigError("--preset", f"--{shortcut} is --preset {shortcut}: give one of them{hint}", preset)
    return preset or shortcut or "quick"


def _check_executor(executor: str, timeout_min: int, gpus_per_node: int) -> None:
    from circeff.sweep.executors import EXECUTOR_NAMES

    if executor not in EXECUTOR_NAMES:
        raise ConfigError("--executor", f"must be one of {', '.join(EXECUTOR_NAMES)}", executor)
    if timeout_min < 1:
        raise ConfigError("--timeout-min", "must be >= 1", timeout_min)
    if gpus_per_node < 0:
        raise ConfigError("--gpus-per-node", "must be >= 0", gpus_per_node)


def _print_plan(config, title: str, json_path: Optional[Path]) -> None:
    from circeff.io import write_json
    from circeff.reproduce.plan import run_plan, stage_work

    lines, data = run_plan(title, stage_work(config), gpu=config.preset == "paper" or config.base.device != "cpu")
    for line in lines:
        print(line)
    if json_path is not None:
        write_json(json_path, data)
