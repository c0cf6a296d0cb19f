"""Make every figure and data file of the documentation from the package's own commands.

    python docs/scripts/build_figures.py [RESULTS_DIR] [--run full|converged] [--no-toy] [--no-theory]

- ``RESULTS_DIR`` (optional): the output folder of ``circeff reproduce --quick --out DIR``.
  The figures each stage lists in its ``summary.json`` are copied to
  ``docs/figures/reproduce/`` (same relative paths) and ``summary.json`` to
  ``docs/data/summary.json``; the prediction pages read both. With ``--run full`` (the
  output of ``circeff reproduce --full``) they go to ``docs/figures/reproduce-full/`` and
  ``docs/data/summary_full.json`` instead, which the full-run page reads; ``--run converged``
  (the output of the ``circeff experiment ungrokking`` run at a converged decay budget that
  the P2 page shows) to ``docs/figures/reproduce-converged/`` and ``docs/data/summary_converged.json``.
- toy (default on): runs ``circeff toy figure2 | phase | ungrok | semigrok`` with their
  defaults into a temporary folder, copies the PNGs to ``docs/figures/toy/`` and writes the
  numbers the toy page shows to ``docs/data/toy_summary.json`` (about a minute on 2 cores).
- theory (default on): ``circeff theory check --falsify --json docs/data/theory_check.json``
  (about 10 s), the output the theory pages quote.

Nothing here is edited by hand; rerun the script and commit ``docs/figures`` and
``docs/data`` so that the site builds in CI without running experiments.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

DOCS = Path(__file__).resolve().parents[1]
FIGURES = DOCS / "figures"
DATA = DOCS / "data"


def circeff(*args: str) -> None:
    """Run the CLI exactly as a user would (same interpreter as this script)."""
    cmd = [sys.executable, "-m", "circeff.cli.main", *args]
    print("$ circeff " + " ".join(args), flush=True)
    subprocess.run(cmd, check=True)


def write_json(path: Path, data) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(data, indent=1, allow_nan=False) + "\n")
    tmp.replace(path)


# Each recorded run: its data file under docs/data/ and figure folder under docs/figures/ (the
# docs hook docs/hooks/generated.py reads this mapping to find them).
# quick: the prediction pages; full: the full-run page; converged: P2/P3 at the full scale at a
# decay budget where D_crit has stopped moving (the output of that `circeff experiment ungrokking`)
RUNS = {"quick": ("summary.json", "reproduce"), "full": ("summary_full.json", "reproduce-full"),
        "converged": ("summary_converged.json", "reproduce-converged")}


def copy_reproduce(results: Path, run: str = "quick") -> None:
    """The figures each stage lists in summary.json (same relative paths) and summary.json."""
    data_name, figure_dir = RUNS[run]
    summary = results / "summary.json"
    if not summary.is_file():
        sys.exit(f"error: RESULTS_DIR: no summary.json in {results} (run circeff reproduce first)")
    data = json.loads(summary.read_text())
    dest = FIGURES / figure_dir
    shutil.rmtree(dest, ignore_errors=True)
    for stage, info in data.get("stages", {}).items():
        for caption, rel in (info.get("figures") or {}).items():
            src = results / rel
            if not src.is_file():
                print(f"warning: stage {stage}: figure {rel} listed but missing", file=sys.stderr)
                continue
            (dest / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dest / rel)
            print(f"copied {rel} -> {(dest / rel).relative_to(DOCS)}  ({caption})")
    for stage, info in data.get("stages", {}).items():
        # a run recorded before summary.json carried each stage's tables: they are in the
        # result the stage saved beside its output (done.json), which a resumed run restores
        done = results / stage / "done.json"
        if "tables" not in info and done.is_file():
            info["tables"] = (json.loads(done.read_text()).get("summary") or {}).get("result", {}).get("tables", [])
    data["_source"] = data.get("command") or f"circeff reproduce (output folder {results.name})"
    write_json(DATA / data_name, data)
    print(f"copied summary.json -> {(DATA / data_name).relative_to(DOCS)}")


def toy_summary(out: Path) -> dict:
    """The numbers behind each toy figure, small enough to commit."""
    fig2 = json.loads((out / "figure2" / "fig2.json").read_text())
    rows = []
    for key, p in fig2["panels"].items():
        c = p["config"]
        rows.append([key, c["P_G"], c["P_M"], c["w_G2"], c["w_M2"], p["fit_step"],
                     p["grokking_step"], p["test_loss"][-1], p["w_G"][-1], p["w_M"][-1]])
    phase = json.loads((out / "phase" / "phase.json").read_text())
    grok = [g for row in phase["grokking_step"] for g in row]
    ungrok = json.loads((out / "ungrok" / "ungrok.json").read_text())
    semi = json.loads((out / "semigrok" / "semigrok.json").read_text())

    def final(run):
        return run["test_loss"][-1]

    def share(run):
        wg, wm = run["w_G"][-1], run["w_M"][-1]
        return wg / (wg + wm) if wg + wm > 0 else None

    return {
        "fig2": {
            "caption": "Final values after the default step count of `circeff toy figure2`.",
            "columns": ["panel", "P_G", "P_M", "w_G2(0)", "w_M2(0)", "fit step", "grokking step",
                        "final test loss", "final w_G", "final w_M"],
            "rows": rows},
        "phase": {
            "caption": (f"{len(grok)} configurations ({len(phase['p_ratio'])} efficiency ratios x "
                        f"{len(phase['w_ratio'])} speed ratios, {phase['steps']} steps each)."),
            "columns": ["quantity", "value"],
            "rows": [["P_G / P_M range", [min(phase["p_ratio"]), max(phase["p_ratio"])]],
                     ["w_G2(0) / w_M2(0) range", [min(phase["w_ratio"]), max(phase["w_ratio"])]],
                     ["configurations that grokked", sum(g is not None for g in grok)],
                     ["configurations that never grokked", sum(g is None for g in grok)]]},
        "ungrok": {
            "caption": (f"Law P_M(D) = {ungrok['law']['P_M_ref']} (D / {ungrok['law']['D_ref']:g})"
                        f"^{ungrok['law']['beta']}, P_G = {ungrok['law']['P_G']}; "
                        f"D_crit = {ungrok['D_crit']:g}. Start: the grokked state."),
            "columns": ["D / D_crit", "P_M(D)", "final test loss", "final G share"],
            "rows": [[r["d_ratio"], r["P_M"], final(r), share(r)] for r in ungrok["runs"]]},
        "semigrok": {
            "caption": (f"From scratch at each D; q = {semi['mixture'][0]['config']['q']} > kappa = "
                        f"{semi['kappa']} (mixture) against q = {semi['sharp'][0]['config']['q']} "
                        f"(winner takes all). D_crit = {semi['D_crit']:g}."),
            "columns": ["D / D_crit", "P_M(D)", "test loss (mixture q)", "G share (mixture q)",
                        "test loss (sharp q)", "G share (sharp q)"],
            "rows": [[r["d_ratio"], r["P_M"], final(r), share(r), final(s), share(s)]
                     for r, s in zip(semi["mixture"], semi["sharp"], strict=True)]},
    }


def build_toy() -> None:
    dest = FIGURES / "toy"
    dest.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="circeff-docs-toy-") as tmp:
        out = Path(tmp)
        started = time.perf_counter()
        circeff("toy", "figure2", "--out", str(out / "figure2"))
        circeff("toy", "phase", "--out", str(out / "phase"), "--no-progress")
        circeff("toy", "ungrok", "--out", str(out / "ungrok"))
        circeff("toy", "semigrok", "--out", str(out / "semigrok"))
        for name in ("figure2/fig2.png", "phase/phase.png", "ungrok/ungrok.png",
                     "semigrok/semigrok.png"):
            shutil.copy2(out / name, dest / Path(name).name)
        summary = toy_summary(out)
        summary["_seconds"] = round(time.perf_counter() - started, 1)
        write_json(DATA / "toy_summary.json", summary)
    print(f"toy figures -> {dest.relative_to(DOCS)}")


def build_theory() -> None:
    DATA.mkdir(parents=True, exist_ok=True)
    circeff("theory", "check", "--falsify", "--json", str(DATA / "theory_check.json"))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("results", nargs="?", type=Path, help="output folder of circeff reproduce")
    ap.add_argument("--run", choices=tuple(RUNS), default="quick",
                    help="which recorded run RESULTS_DIR is (quick: the prediction pages; full: the full-run page; "
                         "converged: P2/P3 at a converged decay budget)")
    ap.add_argument("--no-toy", dest="toy", action="store_false", help="skip the toy figures")
    ap.add_argument("--no-theory", dest="theory", action="store_false",
                    help="skip the theory check output")
    args = ap.parse_args()
    if args.results is not None:
        copy_reproduce(args.results, args.run)
    if args.toy:
        build_toy()
    if args.theory:
        build_theory()


if __name__ == "__main__":
    main()
