"""How long the command line takes to answer, against starting Python itself.

Runs ``python -c pass``, ``circeff --help``, ``circeff presets`` and ``circeff train --help``
in turn (A B C D, A B C D, ...) as whole processes and prints each one's median wall time and
its median ratio to ``python -c pass`` over the rounds, measured side by side in this one run.
The target is ``circeff --help`` under 1 s on a quiet machine; importing torch alone costs
several seconds on a busy one, which is why no command's help imports it.

    python benchmarks/bench_cli_startup.py [--rounds 9]
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import sys
import time

COMMANDS = {
    "python -c pass": [sys.executable, "-c", "pass"],
    "circeff --help": [sys.executable, "-m", "circeff", "--help"],
    "circeff presets": [sys.executable, "-m", "circeff", "presets"],
    "circeff train --help": [sys.executable, "-m", "circeff", "train", "--help"],
    "python -c 'import torch'": [sys.executable, "-c", "import torch"],
}


def wall(argv: list[str]) -> float:
    t0 = time.perf_counter()
    subprocess.run(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True)
    return time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=9)
    args = ap.parse_args()
    if shutil.which("circeff") is None:
        sys.exit("circeff is not installed (pip install -e .)")
    for argv in COMMANDS.values():  # one warm-up each: the file cache, not the code, is then warm
        wall(argv)
    times: dict[str, list[float]] = {name: [] for name in COMMANDS}
    for _ in range(args.rounds):
        for name, argv in COMMANDS.items():
            times[name].append(wall(argv))
    base = times["python -c pass"]
    print(f"{args.rounds} rounds, commands in turn; median wall time and median ratio to python -c pass")
    for name, ts in times.items():
        ratio = statistics.median(t / b for t, b in zip(ts, base))
        print(f"  {name:28s} {statistics.median(ts):7.3f} s   x{ratio:5.2f}")


if __name__ == "__main__":
    main()
