"""What every command that trains shares: the resume rule, the preset option, the old
spellings of renamed options and single-value list options."""

from __future__ import annotations

from pathlib import Path
from typing import Optional, TypeVar

import typer

from circeff.errors import ConfigError

__all__ = ["RESUME_HELP", "RESUME_RULE", "check_resumable_out", "resume_option", "single", "spelling"]

T = TypeVar("T")

# The one resume rule of every command that trains (docs/cli.md states it once more).
RESUME_RULE = ("Rerunning the same command into the same --out continues from the last checkpoint and skips "
               "finished work; --no-resume starts afresh and refuses an --out that already holds files.")
RESUME_HELP = ("Continue what --out holds (the default: rerun the same command after a stop); --no-resume: "
               "start afresh, refused if --out already holds files.")


def resume_option() -> bool:
    return typer.Option(True, "--resume/--no-resume", help=RESUME_HELP)


def check_resumable_out(out: Optional[Path], resume: bool) -> None:
    """With ``--no-resume``, ``--out`` must be new or an empty folder (nothing is overwritten)."""
    if resume or out is None or not out.is_dir() or not any(out.iterdir()):
        return
    raise ConfigError("--out", "already holds a run (or other files) and --no-resume starts afresh: pick another "
                      "--out or remove it, or drop --no-resume to continue it", str(out))


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
