"""Link: the allocation comparison of the Figure 10 experiment predicts exactly what the theory
layer's Theorem D.4 gives for the fitted P_G(D), P_M(D) and kappa."""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd

from circeff.analysis.allocation import pooled_kappa
from circeff.analysis.efficiency import analyse_efficiency
from circeff.empirical.experiments.fig10 import compare_with_theory
from circeff.theory import optima
from tests.strategies.analysis import efficiency_rows, ratio_rows

D_P1 = (100, 300, 1000, 3000)
D_10A = (50, 100, 200, 400, 800, 1600)


def _analysis(kappa: float):
    rows = efficiency_rows({"G": lambda D: 5.0, "M": lambda D: 0.5 * D**0.5}, kappa=kappa, D_values=D_P1, seed=0)
    return analyse_efficiency(rows, n_boot=200, seed=0)


def test_D4_case2_allocation_prediction_equals_theory_predicted_ratio(tmp_path):
    analysis = _analysis(1.2)
    rows = ratio_rows(lambda D: (D / 400) ** 1.5, D_values=D_10A, seed=1)
    c = compare_with_theory(analysis, rows, tmp_path, q=2.0, n_boot=200)
    kappa = pooled_kappa(analysis)
    assert math.isclose(c.kappa, kappa, rel_tol=1e-12)
    assert c.case == 2 and c.theory_case == optima.which_case(2.0, kappa)
    for r in c.rows:
        P_M = math.exp(float(analysis.trend_M.log_P(np.array([r.D]))[0]))
        P_G = (math.exp(analysis.crossover.log_P_G) if analysis.crossover.g_model == "flat"
               else math.exp(float(analysis.trend_G.log_P(np.array([r.D]))[0])))
        assert math.isclose(r.P_M, P_M, rel_tol=1e-9) and math.isclose(r.P_G, P_G, rel_tol=1e-9)
        assert math.isclose(r.predicted_ratio, optima.predicted_ratio(P_G, P_M, 2.0, kappa), rel_tol=1e-12)
        assert r.predicted == "mixture"
    table = pd.read_csv(tmp_path / "allocation.csv")
    np.testing.assert_allclose(table["predicted_ratio"], [r.predicted_ratio for r in c.rows], rtol=1e-12)
    assert (tmp_path / "allocation.png").is_file()
    assert json.loads((tmp_path / "allocation.json").read_text())["case"] == 2


def test_D4_case1_allocation_with_kappa_at_least_q_is_winner_take_all(tmp_path):
    analysis = _analysis(1.2)
    rows = ratio_rows(lambda D: (D / 400) ** 1.5, D_values=D_10A, seed=2)
    c = compare_with_theory(analysis, rows, tmp_path, q=1.0, kappa=1.5, n_boot=200)
    assert c.case == 1
    for r in c.rows:
        expected = optima.predicted_ratio(r.P_G, r.P_M, 1.0, 1.5)
        assert r.predicted_ratio == expected and r.predicted_ratio in (0.0, math.inf)
        assert r.predicted == ("G takes all" if r.predicted_ratio == math.inf else "M takes all")
