"""Print the Theorem D.4 optimum across r = q/kappa: closed form, numeric minimiser and the
test suite's independent brute-force minimiser (every face, BFGS in log-weights, then the
face's stationarity equations), on P = (0.05, 0.3, 1, 2, 3.5, 5), kappa = 4, alpha = 0.01,
113 classes, q = r kappa.

    python scripts/theory_r_table.py [--r 0.01,0.05,...]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from circeff.theory import optima as O  # noqa: E402
from tests.theory.test_theory_optima import SMALL_R, brute_force_minimise  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--r", default="0.01,0.05,0.075,0.1,0.3,0.95,1.05,3,10")
    args = ap.parse_args()
    print(f"P = {SMALL_R['P']}, kappa = {SMALL_R['kappa']}, alpha = {SMALL_R['alpha']}, "
          f"n = {SMALL_R['n_classes']}")
    print(f"{'r':>6} {'case':>16} {'s* closed form':>18} {'s* numeric':>18} "
          f"{'s* brute force':>18} {'loss numeric':>14} {'loss brute':>14} {'max|dw|/s':>10}")
    for r in (float(v) for v in args.r.split(",")):
        prob = O.OptimumProblem(**{**SMALL_R, "q": r * SMALL_R["kappa"]})
        opt = O.minimise(prob)
        w_bf, l_bf = brute_force_minimise(prob.P, prob.q, prob.kappa, prob.alpha,
                                          prob.n_classes)
        dw = max(np.max(np.abs(opt.weights - w_bf)), np.max(np.abs(opt.weights
                                                                  - opt.closed_form)))
        print(f"{r:>6g} {opt.case:>16} {opt.closed_form.sum():>18.12g} {opt.total:>18.12g} "
              f"{w_bf.sum():>18.12g} {opt.loss:>14.8g} {l_bf:>14.8g} "
              f"{dw / max(opt.total, 1e-300):>10.1e}")


if __name__ == "__main__":
    main()
