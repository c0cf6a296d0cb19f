"""Progress bars that suit where the output goes.

On a terminal: a tqdm bar redrawn in place. Anywhere else (a log file, CI, a SLURM job):
the same tqdm, but each refresh is one whole line, at most one every :data:`LINE_EVERY_S`
seconds, so that a log reads ``train: 40%|...| 1200/3000 [00:31<00:46, 38.5step/s]`` line by
line instead of thousands of carriage returns. ``CIRCEFF_PROGRESS_EVERY`` (seconds) changes the
interval.
"""

from __future__ import annotations

import os
import sys
from typing import Any, TextIO

__all__ = ["LINE_EVERY_S", "bar", "is_terminal", "line_every_s"]

LINE_EVERY_S = 30.0


def is_terminal(stream: TextIO | None = None) -> bool:
    stream = sys.stderr if stream is None else stream
    try:
        return stream.isatty()
    except (AttributeError, ValueError):  # a closed or replaced stream
        return False


def line_every_s() -> float:
    """The interval between progress lines off a terminal (``CIRCEFF_PROGRESS_EVERY`` or 30 s)."""
    text = os.environ.get("CIRCEFF_PROGRESS_EVERY", "")
    try:
        value = float(text)
    except ValueError:
        return LINE_EVERY_S
    return value if value >= 0 else LINE_EVERY_S


class _Lines:
    """A stream for tqdm that turns each in-place redraw into one complete line."""

    def __init__(self, stream: TextIO) -> None:
        self.stream = stream

    def write(self, text: str) -> int:
        line = text.replace("\r", "").replace("\x1b[A", "").rstrip()
        if line:
            self.stream.write(line + "\n")
        return len(text)

    def flush(self) -> None:
        self.stream.flush()


def bar(*args: Any, **kwargs: Any):  # noqa: ANN201 - a tqdm instance
    """``tqdm(*args, **kwargs)``; off a terminal, one line per interval (see the module)."""
    stream = kwargs.pop("file", None) or sys.stderr
    if kwargs.get("disable") or is_terminal(stream):
        from tqdm.auto import tqdm

        return tqdm(*args, file=stream, **kwargs)
    every = line_every_s()
    fixed = {"file": _Lines(stream), "mininterval": every, "maxinterval": max(every, 1.0), "ncols": 100,
             "ascii": True, "dynamic_ncols": False}
    return _line_bar()(*args, **{**kwargs, **fixed})


def _line_bar():  # noqa: ANN202 - a tqdm subclass
    """tqdm's plain text bar (never tqdm.auto's notebook widget) whose postfix and description
    changes wait for the next line instead of printing one each (a training loop sets its
    accuracies every few steps)."""
    from tqdm.std import tqdm

    class LineBar(tqdm):
        def set_postfix(self, ordered_dict=None, refresh=True, **kwargs):  # noqa: ANN001, ANN202, ARG002
            return super().set_postfix(ordered_dict, refresh=False, **kwargs)

        def set_postfix_str(self, s="", refresh=True):  # noqa: ANN001, ANN202, ARG002
            return super().set_postfix_str(s, refresh=False)

        def set_description(self, desc=None, refresh=True):  # noqa: ANN001, ANN202, ARG002
            return super().set_description(desc, refresh=False)

    return LineBar
