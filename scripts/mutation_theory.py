"""Mutation score of the theory checker: how many deliberately broken versions of the core
theory modules do the theory tests catch?

Runs cosmic-ray (``pip install -e .[mutation]``) on a copy of this working tree, so that
the tree itself is never mutated, on the core modules (the 1-D total-weight solver, the
sympy fact helpers, the result/status logic, the report and the interval certificate).
Every mutant is judged by a fast selection of the theory tests (the hypothesis ``ci``
profile, ``-x``). Mutation runs are CPU-heavy, so a seeded random sample of the mutants
is run by default; the fraction killed is printed with every survivor (file, line,
operator, diff, and whether it is a reviewed equivalent mutant), with the score over the
non-equivalent mutants, and a JSON summary is written.

    python scripts/mutation_theory.py --sample 100 --seed 0 --out mutation.json

A mutant counts as killed when the judge fails or times out; ``incompetent`` mutants (the
module no longer imports) are killed too and reported separately.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
MODULES = ("ray", "symbols", "results", "check", "certify")
#: installed names -> folders (the package-dir mapping of pyproject.toml)
PACKAGE_DIRS = {"theory": "theory", "toy": "toy", "empirical": "empirical",
                "analysis": "analysis"}
FAST_NEGATIONS = ("D1", "D1.limit", "D2", "D3", "D4.boundary", "D4.toy_ratio",
                  "D4.homogeneity")
JUDGE = [
    "tests/theory/test_theory_records.py",
    "tests/theory/test_theory_claims.py::test_claim_result_ok_logic",
    "tests/theory/test_theory_claims.py::test_a_crashing_route_is_failed_not_passed",
    "tests/theory/test_theory_claims.py::test_undecided_sympy_fact_is_not_a_proof",
    "tests/theory/test_theory_claims.py::test_a_proof_that_ignores_its_hypothesis_is_caught",
    "tests/theory/test_theory_claims.py::test_run_claim_default_seed_is_zero",
    "tests/theory/test_theory_cli.py::test_cli_require_proof_exit_codes",
    "tests/theory/test_theory_cli.py::test_cli_optimum_certify_encloses_the_optimum",
    "tests/theory/test_theory_cli.py::test_certify_rejects_a_wrong_root",
    "tests/theory/test_theory_cli.py::test_cli_optimum_certify_zero_total",
    "tests/theory/test_theory_cli.py::test_certify_boundary_zero_total",
    "tests/theory/test_theory_cli.py::test_certify_zero_total_needs_a_far_cutoff",
    "tests/theory/test_theory_cli.py::test_certify_zero_total_proof_fails_where_the_optimum_is_positive",
    "tests/theory/test_theory_cli.py::test_certify_zero_total_proof_fails_just_above_the_peak",
    "tests/theory/test_theory_cli.py::test_certify_refuses_a_local_minimum_above_f0",
    "tests/theory/test_theory_claims.py::test_identity_never_forces_power_or_log_rules_on_negative_bases",
    "tests/theory/test_theory_optima.py",
    "tests/theory/test_theory_lemmas.py",
    "tests/theory/test_theory_scaling.py",
]
N_QUICK = len(JUDGE) - 3  # the quick single tests run before the negation runs

#: Reviewed survivors that change nothing a user can observe, so no test can kill them:
#: (module, the mutated line as cosmic-ray writes it) -> why. Matched on the text of the
#: line, not its number, so that edits elsewhere in a module do not unmatch them.
EQUIVALENT = {
    ("results.py", 'return "inf" if obj > -1 else "-inf"'):
        "only +inf and -inf reach this line",
    ("check.py", "def run_claims(ids: list[str] | tuple[str, ...] << None = None, "
                 "seed: int = 0,"):
        "annotations are never evaluated (from __future__ import annotations)",
    ("ray.py", "return brentq(chi, 1.0 - r, n_classes * (1.0 ** r), xtol=1e-300, "
               "rtol=4 * _EPS)"):
        "still a sign-changing bracket of the same increasing function: same root",
    ("ray.py", "return brentq(chi, 1.0 - r, n_classes + (1.0 - r), xtol=1e-300, "
               "rtol=4 * _EPS)"):
        "still a sign-changing bracket of the same increasing function: same root",
    ("ray.py", "step *= 1.0"):
        "the search still brackets the same root, in more steps",
    ("ray.py", "return direction - _U_LIMIT"):
        "upwards the search stops by log s = 709 (psi = -inf there); downwards 1 in 1e6",
    ("ray.py", "grid = np.exp(np.arange(u_top, - 745.0, -0.05))[::-1]"):
        "one more grid point, at the smallest double, beside one at e^-744",
    ("certify.py", "while not (iv.mpf(n_classes * 1) * iv.exp(-iv.mpf(s_big))"):
        "a looser far-out bound that is still true: same verdicts",
    ("certify.py", "while not (iv.mpf(n_classes ** 1) * iv.exp(-iv.mpf(s_big))"):
        "a looser far-out bound that is still true: same verdicts",
    ("certify.py", "if s_big >= 1e6:"):
        "s_big is a power of 2, never exactly 1e6",
    ("certify.py", "width = s_num * 3.0 ** (k - 52)"):
        "any growth of the width gives a bracket that the sign test certifies",
}


def equivalent_reason(rec: dict) -> str | None:
    """Why a surviving mutant is equivalent, or None when it is a gap in the tests."""
    added = [line[1:].strip() for line in (rec.get("diff") or "").splitlines()
             if line.startswith("+") and not line.startswith("+++")]
    return next((EQUIVALENT[(rec["module"], line)] for line in added
                 if (rec["module"], line) in EQUIVALENT), None)


def copy_tree(dest: Path) -> None:
    """Tracked and untracked-but-not-ignored files, plus the installed-name symlinks."""
    files = subprocess.run(["git", "ls-files", "-co", "--exclude-standard"], cwd=ROOT,
                           check=True, capture_output=True, text=True).stdout.split("\n")
    for rel in filter(None, files):
        src = ROOT / rel
        if src.is_file():
            (dest / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dest / rel)
    for name, folder in PACKAGE_DIRS.items():
        (dest / "circeff" / name).symlink_to(Path("..") / folder)


def judge_command() -> str:
    """pytest on the judge tests, quick ones first, stopping at the first failure."""
    ids = [f"tests/theory/test_theory_claims.py::"
           f"test_symbolic_route_is_not_proved_with_a_hypothesis_negated[{cid}-{h}]"
           for cid, h in _fast_negation_pairs()]
    ids += [f"tests/theory/test_theory_claims.py::"
            f"test_symbolic_route_proved_with_every_hypothesis[{cid}]"
            for cid in FAST_NEGATIONS]
    tests = " ".join(f"'{t}'" for t in JUDGE[:N_QUICK] + ids + JUDGE[N_QUICK:])
    return (f"{sys.executable} -m pytest -x -q -p no:cacheprovider --no-header "
            f"-W ignore::DeprecationWarning {tests}")


def _fast_negation_pairs() -> list[tuple[str, str]]:
    sys.path.insert(0, str(ROOT))
    from circeff.theory.claims import CLAIMS

    return [(cid, h.id) for cid in FAST_NEGATIONS for h in CLAIMS[cid].hyps]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--sample", type=int, default=100,
                    help="mutants to run (seeded sample; 0 = all)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--modules", default=",".join(MODULES))
    ap.add_argument("--timeout", type=float, default=180.0)
    ap.add_argument("--out", type=Path, default=None, help="JSON summary")
    ap.add_argument("--keep", action="store_true", help="keep the temporary copy")
    args = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="mutation-theory-"))
    started = time.time()
    try:
        copy_tree(work)
        env = {**os.environ, "PYTHONPATH": str(work), "HYPOTHESIS_PROFILE": "ci",
               "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
        check = subprocess.run([sys.executable, "-c", "import circeff.theory.ray as m; "
                                "print(m.__file__)"], cwd=work, env=env,
                               capture_output=True, text=True, check=True).stdout.strip()
        if not check.startswith(str(work)):
            print(f"error: the copy does not shadow the installed package ({check})")
            return 1
        judge = judge_command()
        base = subprocess.run(judge, shell=True, cwd=work, env=env, capture_output=True,
                              text=True)
        if base.returncode != 0:
            print("error: the judge fails on the unmutated copy:\n" + base.stdout[-3000:])
            return 1
        modules = [str(work / "theory" / f"{m}.py") for m in args.modules.split(",")]
        cfg = work / "cosmic-ray.toml"
        cfg.write_text("[cosmic-ray]\n"
                       f"module-path = {json.dumps(modules)}\n"
                       f"timeout = {args.timeout}\n"
                       "excluded-modules = []\n"
                       f"test-command = {json.dumps(judge)}\n"
                       "[cosmic-ray.distributor]\nname = \"local\"\n")
        session = work / "session.sqlite"
        subprocess.run(["cosmic-ray", "init", str(cfg), str(session)], cwd=work, env=env,
                       check=True)
        db = sqlite3.connect(session)
        jobs = [r[0] for r in db.execute("SELECT job_id FROM work_items")]
        total = len(jobs)
        if args.sample and args.sample < total:
            keep = set(random.Random(args.seed).sample(jobs, args.sample))
            drop = [(j,) for j in jobs if j not in keep]
            db.executemany("DELETE FROM mutation_specs WHERE job_id = ?", drop)
            db.executemany("DELETE FROM work_items WHERE job_id = ?", drop)
            db.commit()
        db.close()
        print(f"{total} mutants in {args.modules}; running "
              f"{args.sample if args.sample and args.sample < total else total}", flush=True)
        subprocess.run(["cosmic-ray", "exec", str(cfg), str(session)], cwd=work, env=env,
                       check=True)
        dump = subprocess.run(["cosmic-ray", "dump", str(session)], cwd=work, env=env,
                              check=True, capture_output=True, text=True).stdout
        rows = [json.loads(line) for line in dump.splitlines() if line.strip()]
        killed, survived, incompetent = [], [], []
        for item, result in rows:
            spec = item["mutations"][0]
            rec = {"module": Path(spec["module_path"]).name, "line": spec["start_pos"][0],
                   "operator": spec["operator_name"], "occurrence": spec["occurrence"],
                   "outcome": None if result is None else result["test_outcome"],
                   "diff": None if result is None else result.get("diff")}
            outcome = rec["outcome"]
            if outcome == "survived":
                survived.append(rec)
            elif outcome == "incompetent":
                incompetent.append(rec)
            elif outcome == "killed":
                killed.append(rec)
        n = len(killed) + len(survived) + len(incompetent)
        score = (len(killed) + len(incompetent)) / n if n else float("nan")
        print(f"\nmutants run: {n} (sample of {total}); killed {len(killed)}, incompetent "
              f"{len(incompetent)} (count as killed), survived {len(survived)}")
        print(f"mutation score: {score:.3f} ({time.time() - started:.0f} s)")
        for rec in survived:
            rec["equivalent"] = equivalent_reason(rec)
        n_equiv = sum(rec["equivalent"] is not None for rec in survived)
        real = n - n_equiv
        score_real = (len(killed) + len(incompetent)) / real if real else float("nan")
        print(f"equivalent survivors (reviewed, listed in EQUIVALENT): {n_equiv}; score over "
              f"the non-equivalent: {len(killed) + len(incompetent)}/{real} = {score_real:.3f}")
        for rec in survived:
            why = (f"equivalent: {rec['equivalent']}" if rec["equivalent"]
                   else "NOT EQUIVALENT: a gap in the tests")
            print(f"\nSURVIVED {rec['module']}:{rec['line']} {rec['operator']} "
                  f"#{rec['occurrence']} ({why})\n{rec['diff'] or ''}")
        if args.out is not None:
            args.out.write_text(json.dumps(
                {"total_mutants": total, "run": n, "killed": len(killed),
                 "incompetent": len(incompetent), "survived": survived, "score": score,
                 "equivalent": n_equiv, "score_non_equivalent": score_real,
                 "modules": args.modules, "sample": args.sample, "seed": args.seed,
                 "judge": judge, "seconds": round(time.time() - started)}, indent=2))
        return 0
    finally:
        if args.keep:
            print(f"kept {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
