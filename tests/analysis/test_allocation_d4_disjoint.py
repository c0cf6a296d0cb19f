"""The disjoint-pair comparison (Theorem D.4 with per-circuit kappa), the predicted allocation
curves, kappa_eff and the operating-logit crossover, on synthetic data whose answer is known."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from circeff.analysis import allocation as allocation_analysis
from circeff.analysis.allocation import (
    allocation_curves,
    allocation_verdict,
    compare_dcrit,
    kappa_from_exponent,
    operating_crossover,
)
from circeff.analysis.allocation import (
    compare_disjoint,
    d4_optimum,
    winner_at_logit,
)
from circeff.analysis.stats import Interval
from circeff.theory import optima

ALPHAS = (1e-4, 1e-3, 1e-2)
N = 23


def _alone(P: dict, kappa: dict, D_values, seeds=(0, 1), noise=0.01, rng_seed=0) -> pd.DataFrame:
    """Rows on logit = (norm/P)^kappa exactly (plus small log noise), three norms per stripe."""
    rng = np.random.default_rng(rng_seed)
    rows = []
    for c in ("G", "M"):
        for d in D_values:
            for s in seeds:
                p = P[c](d) * math.exp(rng.normal(0, 0.02))
                for alpha, norm in zip(ALPHAS, (3.0 * p, 2.5 * p, 2.0 * p)):
                    logit = (norm / p) ** kappa[c] * math.exp(rng.normal(0, noise))
                    rows.append({"circuit": c, "D": d, "seed": s, "alpha": alpha,
                                 "param_norm": norm, "correct_logit": logit})
    return pd.DataFrame(rows)


def _pair(winner_of, D_values, seeds=(0, 1)) -> pd.DataFrame:
    """Settled pair rows: three starts per cell, the lowest objective at ``winner_of(D)``."""
    rows = []
    for d in D_values:
        for s in seeds:
            win = winner_of(d)
            for sg, sm, obj in ((1.0, 0.5, 0.10 if win == "G" else 0.2), (1.0, 1.0, 0.15),
                                (0.5, 1.0, 0.10 if win == "M" else 0.2)):
                g, m = (20.0, 0.01) if (obj == 0.10) == (win == "G") else (0.01, 20.0)
                if obj == 0.15:
                    g, m = (10.0, 10.0)
                rows.append({"D": d, "seed": s, "alpha": 1e-3, "scale_G": sg, "scale_M": sm,
                             "objective": obj, "g_logit": g, "m_logit": m})
    return pd.DataFrame(rows)


P_TRUE = {"G": lambda D: 8.0, "M": lambda D: 2.0 * D**0.35}
KAPPA = {"G": 4.0, "M": 4.0}
D_VALUES = (40, 80, 160, 320)


def _true_winner(D: float) -> str:
    w = d4_optimum(P_TRUE["G"](D), P_TRUE["M"](D), 4.0, 4.0, alpha=1e-3, n_classes=N)
    return "G" if w[0] > w[1] else "M"


def test_D4_swapping_P_flips_the_winner():
    for kG, kM in ((4.0, 4.0), (6.0, 4.4)):
        a = d4_optimum(4.0, 6.0, kG, kM, alpha=1e-3, n_classes=N)
        b = d4_optimum(6.0, 4.0, kG, kM, alpha=1e-3, n_classes=N)
        assert (a[0] > a[1]) != (b[0] > b[1])


def test_D4_per_circuit_kappa_winner_depends_on_operating_logit():
    # equal P: at a logit above 1 the circuit with the larger kappa needs less norm
    assert winner_at_logit(5.0, 6.0, 5.0, 4.0, 20.0) == "G"
    assert winner_at_logit(5.0, 6.0, 5.0, 4.0, 0.05) == "M"
    # G less efficient at unit logit, but wins at a high enough logit
    assert winner_at_logit(6.0, 6.0, 5.0, 4.0, 1.0) == "M"
    assert winner_at_logit(6.0, 6.0, 5.0, 4.0, 1e3) == "G"


def test_D4_disjoint_comparison_agrees_on_synthetic_circuits():
    alone = _alone(P_TRUE, KAPPA, D_VALUES)
    assert {_true_winner(d) for d in D_VALUES} == {"G", "M"}  # the crossover is inside the range
    c = compare_disjoint(alone, _pair(_true_winner, D_VALUES), n_classes=N, n_boot=200)
    assert c.winner_agreement.value == 1.0 and c.n_cells == 8
    assert c.kappa_G.contains(4.0) and c.kappa_M.contains(4.0)
    assert c.n_winner_take_all == 8


def test_D4_disjoint_comparison_catches_a_mutated_prediction(monkeypatch):
    """Negative control: a prediction with P_G and P_M swapped loses the agreement."""
    alone, pair = _alone(P_TRUE, KAPPA, D_VALUES), _pair(_true_winner, D_VALUES)
    real = allocation_analysis.d4_optimum
    monkeypatch.setattr(allocation_analysis, "d4_optimum", lambda P_G, P_M, *a, **k: real(P_M, P_G, *a, **k))
    c = compare_disjoint(alone, pair, n_classes=N, n_boot=200)
    assert c.winner_agreement.value == 0.0 and c.winner_agreement.hi < 0.5


def test_D4_winner_is_not_robust_when_a_kappa_interval_reaches_zero():
    """kappa_G 0.3 with noisy logits: the point estimate is positive, its interval is not, and
    D.4 says nothing at a corner with kappa <= 0: no cell's winner is robust (and none fails)."""
    alone = _alone(P_TRUE, {"G": 0.3, "M": 4.0}, D_VALUES, noise=0.2)
    c = compare_disjoint(alone, _pair(_true_winner, D_VALUES), n_classes=N, n_boot=200)
    assert c.kappa_G.lo < 0 < c.kappa_G.value
    assert c.n_cells == 8 and not any(cell.winner_robust for cell in c.cells)
    # negative control: the same circuits with clean logits have positive intervals and robust winners
    c = compare_disjoint(_alone(P_TRUE, {"G": 0.3, "M": 4.0}, D_VALUES, noise=0.01), _pair(_true_winner, D_VALUES),
                         n_classes=N, n_boot=200)
    assert c.kappa_G.lo > 0 and all(cell.winner_robust for cell in c.cells)


def test_kappa_eff_inverts_the_case2_exponent():
    for k in (0.5, 1.0, 1.68, 1.9):
        assert math.isclose(float(kappa_from_exponent(optima.power_law_exponent(2.0, k))), k, rel_tol=1e-12)
    assert math.isclose(float(kappa_from_exponent(10.6)), 1.68, abs_tol=0.01)


def _stripes(P, kappa_sd=0.0, D_values=D_VALUES, seeds=(0, 1, 2)):
    rng = np.random.default_rng(1)
    return pd.DataFrame([{"circuit": c, "D": float(d), "seed": s,
                          "log_P": math.log(P[c](d)) + rng.normal(0, 0.01)}
                         for c in ("G", "M") for d in D_values for s in seeds])


def _measured(ratio_of, total=20.0, D_values=D_VALUES, seeds=(0, 1, 2)):
    rng = np.random.default_rng(2)
    rows = []
    for d in D_values:
        for s in seeds:
            r = ratio_of(d) * math.exp(rng.normal(0, 0.05))
            rows.append({"D": d, "seed": s, "g_logit": total * r / (1 + r), "m_logit": total / (1 + r)})
    return pd.DataFrame(rows)


KG, KM = Interval(4.0, 3.9, 4.1, 0.95, "t"), Interval(4.0, 3.9, 4.1, 0.95, "t")


def _x(d, total=20.0):
    # log(N_M / N_G) at the operating logit with equal kappas
    return math.log(P_TRUE["M"](d) / P_TRUE["G"](d))


def test_allocation_curves_recover_kappa_eff_and_support_case2():
    k_true = 1.5
    e = optima.power_law_exponent(2.0, k_true)
    curves = allocation_curves(_stripes(P_TRUE), KG, KM, _measured(lambda d: math.exp(e * _x(d))), n_boot=200)
    assert curves.kappa_eff.contains(k_true)
    assert all(abs(p.log_error_b) < 0.3 for p in curves.points)
    v = allocation_verdict(curves)
    assert v.holds and v.numbers["supported"] == "b"
    assert v.to_dict()["key"] == "allocation"


def test_allocation_curves_support_winner_take_all_when_data_are_extreme():
    """Negative control for the verdict: ratios far beyond 19 on the predicted side, whose
    size does not follow any power of N_M / N_G, favour (a), not (b)."""
    ratio = lambda d: 1e4 if _x(d) > 0 else 1e-4  # noqa: E731
    D_values = (40, 60, 80, 120, 160, 240, 320)
    curves = allocation_curves(_stripes(P_TRUE, D_values=D_values), KG, KM,
                               _measured(ratio, D_values=D_values), n_boot=200)
    assert curves.median_abs_error_a == 0.0
    v = allocation_verdict(curves)
    assert not v.holds and v.numbers["supported"] in ("a", "neither")


def test_operating_crossover_interpolates_the_known_D():
    # N_G = 8 s^(1/4), N_M = 2 D^0.35 s^(1/4): equal where D^0.35 = 4, D = 4^(1/0.35)
    oc = operating_crossover(_stripes(P_TRUE), KG, KM, operating_logit=20.0, n_boot=300)
    assert math.isclose(oc.D_crit.value, 4 ** (1 / 0.35), rel_tol=0.05)
    assert oc.interpolated and oc.D_crit.contains(4 ** (1 / 0.35))
    # with different kappas the crossing moves with the operating logit
    kG6 = Interval(6.0, 5.9, 6.1, 0.95, "t")
    hi = operating_crossover(_stripes(P_TRUE), kG6, KM, operating_logit=40.0, n_boot=50).D_crit.value
    lo = operating_crossover(_stripes(P_TRUE), kG6, KM, operating_logit=1.0, n_boot=50).D_crit.value
    assert hi < lo


def test_compare_dcrit_goal():
    a, b = Interval(100, 80, 125, 0.95, "x"), Interval(110, 90, 140, 0.95, "x")
    assert compare_dcrit(a, b)["goal_met"]
    wide = Interval(265, 71, 1126, 0.95, "x")
    r = compare_dcrit(wide, Interval(82.3, 78.8, 94.5, 0.95, "x"))
    assert not r["goal_met"] and not r["points_agree"] and r["width_ratio"] > 2


def test_disjoint_pair_costs_and_logits_add_on_a_tiny_transformer():
    """The pair's objective is CE of the summed logits plus both circuits' L2 costs, and the two
    circuits' centred correct logits add up to the pair's (tiny model, a few iterations)."""
    import torch

    from circeff.empirical.disjoint import CircuitInputs, centred_correct_logit, circuit_logits, paired_g_inputs, settle_pair
    from circeff.empirical.experiments.predictions_common import TINY_MODEL
    from circeff.empirical.model import init_params
    from circeff.empirical.tasks import TaskConfig

    task = TaskConfig(name="add", p=7)
    labels = torch.tensor(np.random.default_rng(0).integers(0, 7, size=12))
    ga, gb = paired_g_inputs(labels.numpy(), 7, seed=0)
    assert ((ga + gb) % 7 == labels.numpy()).all()
    g_in = CircuitInputs(torch.from_numpy(ga), torch.from_numpy(gb), labels)
    m_in = CircuitInputs(torch.arange(12) % 7, torch.arange(12) // 7, labels)
    g, m = init_params(TINY_MODEL, task, [0]), init_params(TINY_MODEL, task, [1])
    [r] = settle_pair(g, m, g_in, m_in, task, alpha=1e-2, iterations=3, splits=[(1.0, 1.0)])
    assert math.isclose(r.objective, r.ce + 0.5e-2 * (r.g_norm**2 + r.m_norm**2), rel_tol=1e-9)
    with pytest.raises(ValueError):
        settle_pair(g, m, g_in, CircuitInputs(m_in.a, m_in.b, (labels + 1) % 7), task, 1e-2, 1, [(1.0, 1.0)])
    lg, lm = circuit_logits(g, g_in, task), circuit_logits(m, m_in, task)
    assert math.isclose(float(centred_correct_logit(lg + lm, labels)),
                        float(centred_correct_logit(lg, labels) + centred_correct_logit(lm, labels)), rel_tol=1e-5)


def test_operating_crossover_with_G_at_one_D_is_flat_and_flagged_extrapolated():
    # G measured only at D = 640 (outside M's 40-320): its log P is flat, the crossing is the
    # same D as with G everywhere (G's true P is flat), but it is not interpolated
    st = _stripes(P_TRUE)
    only = pd.concat([st[st["circuit"] == "M"],
                      _stripes(P_TRUE, D_values=(640,)).query("circuit == 'G'")])
    oc = operating_crossover(only, KG, KM, operating_logit=20.0, n_boot=200)
    assert math.isclose(oc.D_crit.value, 4 ** (1 / 0.35), rel_tol=0.05)
    assert oc.D_range_G == (640.0, 640.0) and not oc.interpolated
    # negative control: G measured over M's range gives the same D, now interpolated
    assert operating_crossover(st, KG, KM, operating_logit=20.0, n_boot=50).interpolated


def test_only_G_stripes_above_the_g_only_share_enter_the_crossover():
    from circeff.empirical.experiments.allocation import accepted_g

    alone = _alone(P_TRUE, KAPPA, D_VALUES)
    share = {40: 0.01, 80: 0.5, 160: 0.96, 320: 0.99}
    alone["trig_share"] = [share[int(d)] if c == "G" else float("nan") for c, d in zip(alone["circuit"], alone["D"])]
    # one rung of one D = 160 stripe below the threshold drops that stripe only
    low = alone.index[(alone["circuit"] == "G") & (alone["D"] == 160) & (alone["seed"] == 0)][0]
    alone.loc[low, "trig_share"] = 0.9
    kept = accepted_g(alone, 0.95)
    g = kept[kept["circuit"] == "G"]
    assert sorted({(int(d), int(s)) for d, s in zip(g["D"], g["seed"])}) == [(160, 1), (320, 0), (320, 1)]
    assert (kept["circuit"] == "M").sum() == (alone["circuit"] == "M").sum()
    # negative control: with threshold 0 every stripe stays
    assert len(accepted_g(alone, 0.0)) == len(alone)


def test_allocation_without_two_g_only_seeds_at_any_D_says_how_many_stayed_at_each_D():
    from circeff.empirical.experiments.allocation import analyse_allocation
    from circeff.errors import ConfigError

    alone = _alone(P_TRUE, KAPPA, D_VALUES)
    # seed 0 stays G-only everywhere; seed 1 dips below 0.95 at one rung of every D
    alone["trig_share"] = np.where(alone["circuit"] == "G", 0.97, np.nan)
    for d in D_VALUES:
        rung = alone.index[(alone["circuit"] == "G") & (alone["D"] == d) & (alone["seed"] == 1)][0]
        alone.loc[rung, "trig_share"] = 0.94
    with pytest.raises(ConfigError) as err:
        analyse_allocation(alone, pd.DataFrame(), pd.DataFrame(), n_classes=N, state_alpha=1e-3, n_boot=100)
    assert err.value.field == "g_only_share"
    assert err.value.got == {f"{d:g}": 1 for d in D_VALUES}
    # negative control: with seed 1 above the threshold the stage gets past this check
    alone.loc[alone["circuit"] == "G", "trig_share"] = 0.97
    with pytest.raises(Exception) as later:
        analyse_allocation(alone, pd.DataFrame(), pd.DataFrame(), n_classes=N, state_alpha=1e-3, n_boot=100)
    assert getattr(later.value, "field", None) != "g_only_share"


def test_allocation_without_a_positive_fitted_kappa_stops_naming_kappa():
    # circuits whose logit falls with the norm: Theorem D.4 has nothing to predict, and the
    # stage must say so with the fitted kappas (the reproduce stage turns this into a verdict
    # that does not hold)
    from circeff.empirical.experiments.allocation import analyse_allocation
    from circeff.errors import ConfigError

    alone = _alone(P_TRUE, {"G": -1.0, "M": 4.0}, D_VALUES)
    alone["trig_share"] = 1.0
    with pytest.raises(ConfigError, match="kappa_G -1"):
        analyse_allocation(alone, pd.DataFrame(), pd.DataFrame(), n_classes=N, state_alpha=1e-3,
                           n_boot=100)
    # negative control: positive kappas pass this check (and fail later only on the empty pair)
    alone = _alone(P_TRUE, KAPPA, D_VALUES)
    alone["trig_share"] = 1.0
    with pytest.raises(ConfigError) as err:
        analyse_allocation(alone, pd.DataFrame(), pd.DataFrame(), n_classes=N, state_alpha=1e-3,
                           n_boot=100)
    assert "kappa_G" not in str(err.value)
