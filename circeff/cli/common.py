"""What every command that trains shares: the resume rule, the preset option, the old
spellings of renamed options, single-value list options, ``--threads`` and the warning for
busy cores."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Optional, TypeVar

import typer

from circeff.errors import ConfigError

__all__ = ["RESUME_HELP", "RESUME_RULE", "THREADS_HELP", "apply_threads", "busy_cores", "check_plan_out",
           "check_resumable_out", "float_check_option", "resume_option", "single", "spelling", "threads_option", "warn_if_busy"]

T = TypeVar("T")

# The one resume rule of every command that trains (docs/cli.md states it once more).
RESUME_RULE = ("Rerunning the same command into the same --out continues from the last checkpoint and skips "
               "finished work; --no-resume starts afresh and refuses an --out that already holds files.")
RESUME_HELP = ("Continue what --out holds (the default: rerun the same command after a stop); --no-resume: "
               "start afresh, refused if --out already holds files.")


def resume_option() -> bool:
    return typer.Option(True, "--resume/--no-resume", help=RESUME_HELP)


def float_check_option() -> bool:
    return typer.Option(False, "--float-check", help="train every stage a second time with another order of "
                        "floating-point sums (CPU engine block size 256, in DIR/float-order; about doubles the time) "
                        "and label a verdict robust only if its outcome is the same; without it no verdict can be "
                        "called robust")


def check_resumable_out(out: Optional[Path], resume: bool) -> None:
    """With ``--no-resume``, ``--out`` must be new or an empty folder (nothing is overwritten)."""
    if resume or out is None or not out.is_dir() or not any(out.iterdir()):
        return
    raise ConfigError("--out", "already holds a run (or other files) and --no-resume starts afresh: pick another "
                      "--out or remove it, or drop --no-resume to continue it", str(out))


def check_plan_out(plan: bool, out: Optional[Path]) -> None:
    """``--plan`` trains nothing and writes no out folder: an ``--out`` beside it is a slip."""
    if plan and out is not None:
        raise ConfigError("--out", "is not used with --plan (it trains nothing and writes no folder); drop --out, "
                          "or give --json FILE to write the plan", str(out))


def spelling(value: Optional[T], flag: str, old_value: Optional[T], old_flag: str) -> tuple[Optional[T], str]:
    """The value of an option given under its name or its old spelling (hidden), and the flag
    that was typed (errors name it)."""
    if value is not None and old_value is not None:
        raise ConfigError(flag, f"give it once ({old_flag} is its old spelling)", f"{value} and {old_value}")
    return (old_value, old_flag) if old_value is not None else (value, flag)


def single(flag: str, values: Optional[tuple[T, ...]], what: str) -> Optional[T]:
    """The one value of a list option on a command that takes one (``what`` says why)."""
    if values is None:
        return None
    if len(values) != 1:
        raise ConfigError(flag, f"takes one value here ({what})", ",".join(str(v) for v in values))
    return values[0]


THREADS_HELP = ("torch CPU threads (default: torch's choice, one per core); 1 is faster when other jobs share "
                "the cores")


def threads_option() -> Optional[int]:
    return typer.Option(None, "--threads", help=THREADS_HELP)


def apply_threads(threads: Optional[int]) -> None:
    """Set torch's CPU threads (checked before any work; torch is imported only here)."""
    if threads is None:
        return
    if isinstance(threads, bool) or threads < 1:
        raise ConfigError("--threads", "must be an integer >= 1", threads)
    import torch

    torch.set_num_threads(threads)


def busy_cores(threads: Optional[int] = None) -> Optional[str]:
    """A warning when other work already keeps the cores busy (``None`` when they are free).

    The 1-minute load average counts runnable processes; above the core count, torch's
    default of one thread per core makes every thread wait for the others (a 2-core machine
    with one busy neighbour ran 50 times slower per step), and ``--plan``'s calibration
    measures that contention rather than the run.
    """
    try:
        load = os.getloadavg()[0]
    except OSError:  # not on every platform
        return None
    cores = os.cpu_count() or 1
    if load <= cores:
        return None
    advice = ("wait for the other jobs, or run with --threads 1" if threads != 1
              else "wait for the other jobs (this run already uses one thread)")
    return (f"warning: the cores are oversubscribed (1-minute load {load:.1f} on {cores} cores): training and "
            f"--plan's estimate will be slower than on a quiet machine; {advice}")


def warn_if_busy(threads: Optional[int] = None) -> None:
    """Print :func:`busy_cores`'s warning on stderr, if any."""
    message = busy_cores(threads)
    if message:
        print(message, file=sys.stderr, flush=True)
