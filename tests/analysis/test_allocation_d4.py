"""Theorem D.4's ratio through the theory layer (``predict_allocation``), the measured G:M
ratios and the Figure 10a monotonicity verdict; and the superseded pooled-kappa comparison
(``compare_allocation``, no longer reported by ``circeff reproduce`` but still drawn by a figure
helper), whose tests stay as they were so that the helper keeps computing what it says."""

from __future__ import annotations

import json

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from scipy import stats

from circeff.analysis.allocation import (
    compare_allocation,
    measured_ratios,
    monotonic_verdict,
    pooled_kappa,
    predict_allocation,
)
from circeff.analysis.efficiency import analyse_efficiency
from circeff.errors import ConfigError
from circeff.theory import optima
from tests.strategies.analysis import efficiency_rows, ratio_rows

D_P1 = (100, 300, 1000, 3000)
D_10A = (50, 100, 200, 400, 800, 1600, 3200)
KAPPA = 1.2  # the toy's Table 1 value; q = 2 > kappa puts us in case 2, exponent 3


def efficiency(kappa: float = KAPPA, seed: int = 0):
    rows = efficiency_rows({"G": lambda D: 5.0, "M": lambda D: 0.5 * D**0.5}, kappa=kappa,
                           D_values=D_P1, seed=seed)
    return analyse_efficiency(rows, n_boot=300, seed=seed)


def test_D4_toy_ratio_hand_case_agrees_with_the_theory_layer():
    # P_G = 1, P_M = 2, kappa = 1.2, q = 2: (2/1)^(2 * 1.2 / 0.8) = 2^3 = 8
    pred = predict_allocation([1.0], [1.0], [2.0], q=2.0, kappa=1.2)
    assert pred.case == 2 and pred.theory_case == optima.POWER_LAW
    assert pred.ratio[0] == pytest.approx(8.0, rel=1e-12)
    assert pred.ratio[0] == pytest.approx(optima.predicted_ratio(1.0, 2.0, 2.0, 1.2), rel=1e-12)
    assert pred.exponent == pytest.approx(3.0)
    # and the numeric minimiser of the effective loss (no closed form) gives the same split
    opt = optima.minimise(optima.OptimumProblem((1.0, 2.0), 2.0, 1.2, 0.005, 113))
    assert opt.weights[0] / opt.weights[1] == pytest.approx(8.0, rel=1e-4)


@given(P_G=st.floats(0.5, 5.0), P_M=st.floats(0.5, 5.0), kappa=st.floats(0.5, 3.0))
def test_D4_prediction_is_the_theory_layers_ratio(P_G, P_M, kappa):
    pred = predict_allocation([1.0], [P_G], [P_M], q=2.0, kappa=kappa)
    expected = optima.predicted_ratio(P_G, P_M, 2.0, kappa)
    if np.isnan(expected):
        assert np.isnan(pred.ratio[0])
    else:
        assert pred.ratio[0] == pytest.approx(expected, rel=1e-12)
    assert pred.case == (2 if kappa < 2.0 else 1)


def test_D4_case1_winner_takes_all_when_kappa_at_least_q():
    pred = predict_allocation([100, 1000], [5.0, 5.0], [2.0, 9.0], q=2.0, kappa=2.5)
    assert pred.case == 1
    assert pred.ratio == (0.0, np.inf)  # M wins where it is cheaper, G where it is
    assert np.isnan(pred.exponent)


def test_D4_predicted_allocation_matches_measured_when_networks_follow_the_theory():
    a = efficiency()
    k = pooled_kappa(a)
    # networks whose G:M ratio is exactly what D.4 predicts, times seed noise
    rows = ratio_rows(lambda D: optima.predicted_ratio(5.0, 0.5 * D**0.5, 2.0, k),
                      D_values=D_10A, n_seeds=6, noise_sd=0.2, seed=1)
    cmp = compare_allocation(a, rows, n_boot=500)
    assert cmp.case == 2 and cmp.holds
    assert cmp.spearman.value == pytest.approx(1.0)
    assert cmp.median_abs_log_error < 0.25
    assert cmp.magnitude_holds
    assert cmp.measured_exponent.contains(cmp.exponent)
    assert cmp.winner_agreement >= 6 / 7  # D = 100 is the tie point; noise may flip it
    assert len(cmp.rows) == len(D_10A)
    for row in cmp.rows:
        assert row.measured.lo <= row.measured.value <= row.measured.hi
    json.dumps(cmp.to_dict(), allow_nan=False)


def test_D4_allocation_verdict_fails_when_the_ratio_falls_with_D():
    a = efficiency()
    rows = ratio_rows(lambda D: 1e3 / D, D_values=D_10A, n_seeds=6, seed=2)
    cmp = compare_allocation(a, rows, n_boot=500)
    assert not cmp.holds
    assert cmp.spearman.value < 0
    assert not cmp.magnitude_holds


def test_D4_allocation_magnitude_fails_with_a_wrong_exponent():
    # ordering right, size wrong: measured ratio grows as (P_M/P_G)^1 instead of ^3
    a = efficiency()
    rows = ratio_rows(lambda D: 0.5 * D**0.5 / 5.0, D_values=D_10A, n_seeds=6, noise_sd=0.1, seed=3)
    cmp = compare_allocation(a, rows, n_boot=500)
    assert cmp.holds
    assert not cmp.magnitude_holds
    assert cmp.measured_exponent.value == pytest.approx(1.0, abs=0.2)


def test_D4_case1_comparison_counts_winner_agreement():
    a = efficiency()
    away = tuple(D for D in D_10A if D != 100)  # 100 is the fitted crossover, a near tie
    rows = ratio_rows(lambda D: 1e3 if D > 100 else 1e-3, D_values=away, n_seeds=4, seed=4)
    cmp = compare_allocation(a, rows, kappa=2.5, n_boot=200)
    assert cmp.case == 1
    assert cmp.winner_agreement == pytest.approx(1.0)
    assert cmp.holds
    flipped = ratio_rows(lambda D: 1e-3 if D > 100 else 1e3, D_values=away, n_seeds=4, seed=4)
    assert not compare_allocation(a, flipped, kappa=2.5, n_boot=200).holds


def test_measured_ratio_conventions_for_non_positive_logits():
    rows = [{"D": 10, "seed": 0, "g_logit": 2.0, "m_logit": 0.5},
            {"D": 10, "seed": 1, "g_logit": 2.0, "m_logit": -0.1},
            {"D": 10, "seed": 2, "g_logit": -1.0, "m_logit": 0.5},
            {"D": 10, "seed": 3, "g_logit": -1.0, "m_logit": 0.0}]
    out = measured_ratios(rows)
    assert out["ratio"].tolist() == [4.0, np.inf, 0.0]
    assert out["seed"].tolist() == [0, 1, 2]


def test_fig10a_monotonic_verdict_holds_for_a_rising_ratio():
    rows = measured_ratios(ratio_rows(lambda D: (D / 50) ** 2, D_values=D_10A, seed=5))
    v = monotonic_verdict(rows["D"], rows["ratio"], seed=0)
    assert v.holds
    assert v.rho.value == pytest.approx(stats.spearmanr(rows["D"], rows["ratio"])[0])
    assert v.n == len(rows) and v.n_D == len(D_10A)


@pytest.mark.parametrize("ratio_of_D", [lambda D: 3.0, lambda D: 1e4 / D])
def test_fig10a_monotonic_verdict_fails_for_flat_or_falling_ratios(ratio_of_D):
    rows = measured_ratios(ratio_rows(ratio_of_D, D_values=D_10A, noise_sd=0.5, seed=6))
    v = monotonic_verdict(rows["D"], rows["ratio"], seed=0)
    assert not v.holds


def test_fig10a_interval_narrows_with_more_networks():
    def width(n_seeds):
        rows = measured_ratios(ratio_rows(lambda D: D**0.3, D_values=D_10A, n_seeds=n_seeds,
                                          noise_sd=1.0, seed=7))
        rho = monotonic_verdict(rows["D"], rows["ratio"], seed=1).rho
        return rho.hi - rho.lo

    assert width(40) < 0.6 * width(4)


def test_allocation_bad_input_is_one_line_errors():
    with pytest.raises(ConfigError) as exc:
        monotonic_verdict([1, 1, 2, 2], [1.0, 2.0, 3.0, 4.0])
    assert exc.value.field == "D"
    with pytest.raises(ConfigError) as exc:
        monotonic_verdict([1, 2, 3], [1.0, np.nan, 3.0])
    assert exc.value.field == "ratio"
    with pytest.raises(ConfigError) as exc:
        predict_allocation([1.0], [0.0], [1.0], kappa=1.2)
    assert exc.value.field == "P_G"
    with pytest.raises(ConfigError) as exc:
        compare_allocation(efficiency(), ratio_rows(lambda D: 1.0, D_values=(10, 20)), n_boot=50)
    assert exc.value.field == "D"
    with pytest.raises(ConfigError) as exc:
        measured_ratios([{"D": 1, "seed": 0, "g_logit": 1.0}])
    assert exc.value.field == "m_logit"
