"""Run a benchmark script and record its output, with the machine, in docs/data/benchmarks.json.

    python docs/scripts/record_benchmark.py toy    [-- extra args for bench_toy.py]
    python docs/scripts/record_benchmark.py engine [-- extra args for bench_engine.py]
    python docs/scripts/record_benchmark.py settle [-- extra args for bench_settle.py]
    python docs/scripts/record_benchmark.py engine --name "engine (H100)" -- --device cuda

The performance page renders the file. The printed output is kept verbatim; the headline
numbers are parsed from it (the toy's vectorised/loop ratio and batch seconds; the engine's
speed-up and % of peak per variant; the settle's ratio, batched against one model at a time). The machine is read from /proc/cpuinfo, os.cpu_count()
and os.getloadavg() just before the run (a busy machine inflates absolute times, so the load
is part of the record). Each name is one entry; rerunning replaces it.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
OUT = ROOT / "docs" / "data" / "benchmarks.json"
SCRIPTS = {"toy": "benchmarks/bench_toy.py", "engine": "benchmarks/bench_engine.py",
           "settle": "benchmarks/bench_settle.py"}


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def versions() -> dict[str, str]:
    out = {"python": platform.python_version()}
    for mod in ("numpy", "torch"):
        try:
            out[mod] = __import__(mod).__version__
        except ImportError:
            pass
    return out


def headline(kind: str, lines: list[str]) -> dict[str, object]:
    """The numbers a reader looks for first, parsed from the script's own table."""
    found: dict[str, object] = {}
    if kind == "toy":
        for line in lines:
            if line.startswith("vectorised numpy batch"):
                cols = line.split()
                found["batch seconds"] = float(cols[-3])
                found["ratio vs python loop (per config-step)"] = float(cols[-1])
                found["configs x steps"] = f"{cols[-5]} x {cols[-4]}"
            if "target:" in line:
                found["target (10^4 x 10^4 under 10 s)"] = line.split("->", 1)[1].strip()
    elif kind == "settle":
        for line in lines:
            m = re.match(r"^(one model at a time|batched \(all models\))\s+(\d+\.\d+)\s+\(.*?\)\s+(\S+)", line)
            if m:
                found[f"{m.group(1)}: ms/model-iteration"] = float(m.group(2))
                found[f"{m.group(1)}: speed-up"] = m.group(3)
            if line.startswith("largest relative difference"):
                found["largest relative norm difference"] = line.rsplit(":", 1)[1].strip()
    else:
        for line in lines:
            # "engine E=16 (chunk 4, block 512)   95.1   (90..99)   5.50x ..." or "reference (1 model) ..."
            m = re.match(r"^(engine\S*.*?E\s*=\s*\d+(?:\s*\([^)]*\))?|reference\S*.*?)\s+(\d+\.\d+)\s+"
                         r"\(.*?\)\s+(\S+)\s+(\S+)\s+(\S+)", line)
            if m:
                name = " ".join(m.group(1).split())
                found[f"{name}: ms/model-step"] = float(m.group(2))
                found[f"{name}: speed-up"] = m.group(3)
                found[f"{name}: % peak"] = m.group(5)
    return found


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("kind", choices=sorted(SCRIPTS))
    ap.add_argument("--name", help="entry name (default: the kind)")
    ap.add_argument("--note", default="", help="free text shown with the numbers")
    # what follows "--" goes to the script; argparse's REMAINDER after the positional kind would
    # also swallow --name and --note written before the "--"
    argv = sys.argv[1:]
    cut = argv.index("--") if "--" in argv else len(argv)
    args = ap.parse_args(argv[:cut])
    extra = argv[cut + 1:]
    cmd = [sys.executable, SCRIPTS[args.kind], *extra]
    load = os.getloadavg()
    started = dt.datetime.now(dt.timezone.utc)
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True)
    sys.stdout.write(proc.stdout)
    if proc.returncode != 0:
        sys.stderr.write(proc.stderr)
        sys.exit(f"error: {' '.join(cmd)} exited with {proc.returncode}; nothing recorded")
    lines = proc.stdout.rstrip("\n").splitlines()
    entry = {
        "command": "python " + " ".join([SCRIPTS[args.kind], *extra]),
        "date": started.strftime("%Y-%m-%d %H:%M UTC"),
        "measured_by": "docs/scripts/record_benchmark.py",
        "machine": {"cpu": cpu_model(), "cores": os.cpu_count(),
                    "load_before": [round(x, 2) for x in load], **versions()},
        "headline": headline(args.kind, lines),
        "output": lines,
    }
    if args.note:
        entry["note"] = args.note
    data = json.loads(OUT.read_text()) if OUT.is_file() else {}
    data[args.name or args.kind] = entry
    OUT.parent.mkdir(parents=True, exist_ok=True)
    tmp = OUT.with_suffix(".tmp")
    tmp.write_text(json.dumps(data, indent=1) + "\n")
    tmp.replace(OUT)
    print(f"recorded {args.name or args.kind} -> {OUT.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
