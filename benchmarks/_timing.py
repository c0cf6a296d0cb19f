"""What the benchmark scripts share: the clock and thread options, read the same way by each."""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable

import torch


def add_timing_options(ap: argparse.ArgumentParser) -> None:
    ap.add_argument("--threads", type=int, default=None, help="torch intra-op threads (default: torch's)")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--clock", choices=("wall", "cpu"), default="wall",
                    help="wall: elapsed time; cpu: this process's CPU time (use with --threads 1 on a "
                         "machine shared with other work: descheduling does not count)")


def clock_of(args: argparse.Namespace) -> Callable[[], float]:
    """The chosen clock, after applying ``--threads``."""
    if args.threads:
        torch.set_num_threads(args.threads)
    return time.perf_counter if args.clock == "wall" else time.process_time
