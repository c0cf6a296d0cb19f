"""Link: the allocation curves the reproduce stage reports are the theory layer's Theorem D.4.

(b) is case 2 with one effective kappa: at every D its predicted G:M ratio is
``optima.predicted_ratio`` for circuits whose norms at the operating logit are N_G and N_M,
and kappa_eff is the kappa whose case-2 exponent (``optima.power_law_exponent``) is the fitted
one. (a) is D.4 with one kappa per circuit: its winner at each D is the circuit needing the
smaller norm at that D's operating logit (``winner_at_logit``). (The earlier comparison with
one kappa pooled over G and M is no longer part of the package's reports.)"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from circeff.analysis.allocation import allocation_curves
from circeff.analysis.allocation import winner_at_logit
from circeff.analysis.stats import Interval
from circeff.theory import optima

P_G, P_M = (lambda D: 8.0), (lambda D: 2.0 * D**0.35)
KG, KM = Interval(4.0, 3.9, 4.1, 0.95, "t"), Interval(4.0, 3.9, 4.1, 0.95, "t")
D_VALUES = (40, 80, 160, 320, 640)


def _stripes() -> pd.DataFrame:
    return pd.DataFrame([{"circuit": c, "D": float(d), "seed": s, "log_P": math.log(f(d)) + 0.01 * (s - 0.5)}
                         for c, f in (("G", P_G), ("M", P_M)) for d in D_VALUES for s in (0, 1)])


def _measured(exponent: float) -> pd.DataFrame:
    rows = []
    for d in D_VALUES:
        ratio = (P_M(d) / P_G(d)) ** exponent
        for s, noise in ((0, 0.97), (1, 1.03)):
            m = 20.0 / (1 + ratio)
            rows.append({"D": d, "seed": s, "g_logit": 20.0 - m, "m_logit": m / noise})
    return pd.DataFrame(rows)


@pytest.mark.parametrize("kappa", [1.2, 1.7])
def test_D4_case2_curve_is_the_theory_layers_ratio_with_kappa_eff(kappa):
    c = allocation_curves(_stripes(), KG, KM, _measured(optima.power_law_exponent(2.0, kappa)), n_boot=100)
    # kappa_eff: the theory layer's exponent of kappa_eff is the fitted exponent
    assert math.isclose(optima.power_law_exponent(2.0, c.kappa_eff.value), c.exponent.value, rel_tol=1e-9)
    assert c.kappa_eff.value == pytest.approx(kappa, rel=0.05)
    for p in c.points:
        N_G, N_M = 1.0, math.exp(p.log_norm_ratio)  # only the ratio of the norms enters
        assert p.predicted_b.value == pytest.approx(
            optima.predicted_ratio(N_G, N_M, 2.0, c.kappa_eff.value), rel=1e-9)


def test_D4_case2_curve_link_fails_for_a_mutated_q():
    """Negative control: the same curve is not the theory layer's ratio under q = 3."""
    c = allocation_curves(_stripes(), KG, KM, _measured(optima.power_law_exponent(2.0, 1.2)), n_boot=100)
    off = [abs(math.log(p.predicted_b.value / optima.predicted_ratio(1.0, math.exp(p.log_norm_ratio), 3.0,
                                                                       c.kappa_eff.value)))
           for p in c.points if abs(p.log_norm_ratio) > 0.1]
    assert off and min(off) > 0.1


def test_D4_per_circuit_curve_winner_is_the_smaller_norm_at_the_operating_logit():
    c = allocation_curves(_stripes(), KG, KM, _measured(3.0), n_boot=100)
    assert {p.predicted_a for p in c.points} == {"G takes all", "M takes all"}
    for p in c.points:
        w = winner_at_logit(P_G(p.D), KG.value, P_M(p.D), KM.value, p.operating_logit)
        assert p.predicted_a == f"{w} takes all"
    # and its errors: 0 where the measured ratio is beyond the 95% edge on the predicted side
    edge = math.log(19.0)
    for p in c.points:
        lr = math.log(p.measured.value)
        inside = lr >= edge if p.log_norm_ratio > 0 else lr <= -edge
        assert (p.log_error_a == 0.0) == inside
    np.testing.assert_allclose(c.median_abs_error_a, np.median([abs(p.log_error_a) for p in c.points]))
