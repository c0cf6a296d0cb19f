"""P1 efficiency fits: recovery of known P(D) and kappa, interval coverage, verdicts that can
fail, the crossover D_crit, and one-line errors for bad tables."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings

from circeff.analysis import verdicts as V
from circeff.analysis.efficiency import (
    analyse_efficiency,
    fit_circuit,
    fit_trend,
    fitted_lines,
    per_D_table,
)
from circeff.errors import ConfigError
from tests.strategies.analysis import d_crits, efficiency_rows, fit_seeds, kappas, log_P0s, slopes

D_GRID = (100, 300, 1000, 3000)


def theory_shaped(seed: int = 0, **kw):
    """G flat at 5, M rising as 0.5 sqrt(D): they cross at D = 100."""
    return efficiency_rows({"G": lambda D: 5.0, "M": lambda D: 0.5 * D**0.5}, kappa=1.5,
                           D_values=D_GRID, seed=seed, **kw)


@given(kappa=kappas, log_P0=log_P0s, slope=slopes, seed=fit_seeds)
def test_P1_fit_recovers_known_P_and_kappa(kappa, log_P0, slope, seed):
    truth = {"G": lambda D: np.exp(log_P0), "M": lambda D: np.exp(log_P0) * (D / 100) ** slope}
    rows = efficiency_rows(truth, kappa=kappa, D_values=D_GRID, noise_sd=0.05, seed=seed)
    a = analyse_efficiency(rows, n_boot=200, seed=seed)
    for fit in (a.fit_G, a.fit_M):
        assert fit.kappa.value == pytest.approx(kappa, rel=0.08)
        np.testing.assert_allclose(fit.P, [truth[fit.circuit](D) for D in D_GRID], rtol=0.12)
    assert a.trend_M.slope.value == pytest.approx(slope, abs=0.06)
    assert abs(a.trend_G.slope.value) < 0.06


def _coverage(intercepts: str, seed_sd: float, n_datasets: int = 60):
    hits = {"kappa": 0, "P": 0, "slope": 0, "crossover": 0}
    n_P = 0
    for s in range(n_datasets):
        a = analyse_efficiency(theory_shaped(seed=s, seed_sd=seed_sd, noise_sd=0.1),
                               intercepts=intercepts, n_boot=1000, seed=s)
        hits["kappa"] += a.fit_M.kappa.contains(1.5)
        for p in a.fit_M.per_D:
            hits["P"] += p.P.contains(0.5 * p.D**0.5)
            n_P += 1
        hits["slope"] += a.trend_M.slope.contains(0.5)
        hits["crossover"] += a.crossover.D_crit.contains(100.0)
    return {k: v / (n_P if k == "P" else n_datasets) for k, v in hits.items()}


@pytest.mark.parametrize(("intercepts", "seed_sd"), [("D", 0.0), ("D_seed", 0.2)])
def test_P1_intervals_cover_the_truth_at_about_the_nominal_rate(intercepts, seed_sd):
    coverage = _coverage(intercepts, seed_sd)
    for name, c in coverage.items():
        assert 0.85 <= c <= 1.0, (name, coverage)


def test_P1_seed_effects_bias_pooled_kappa_and_stripes_remove_it():
    # the paper's Figure 3 caveat: seeds differ in efficiency; pooling them confounds kappa
    rows = theory_shaped(seed=3, seed_sd=0.4, n_seeds=6)
    pooled = fit_circuit(rows, "M", intercepts="D")
    stripes = fit_circuit(rows, "M", intercepts="D_seed")
    assert not pooled.kappa.contains(1.5)
    assert stripes.kappa.contains(1.5)
    assert stripes.kappa.value == pytest.approx(1.5, rel=0.05)


def p1_of(rows: pd.DataFrame):
    """The P1 rule on an estimation table (its columns renamed to the rule's)."""
    return V.p1(rows.rename(columns={"weight_decay": "alpha", "correct_logit": "logit"}))


def test_P1_verdict_holds_for_theory_shaped_data():
    v = p1_of(theory_shaped(seed=1))
    assert v.holds, v.reason
    assert analyse_efficiency(theory_shaped(seed=1), n_boot=500).trend_M.slope.above(0.0)


def test_P1_verdict_fails_when_M_is_flat():
    rows = efficiency_rows({"G": lambda D: 5.0, "M": lambda D: 8.0}, kappa=1.5, D_values=D_GRID,
                           seed=2)
    v = p1_of(rows)
    assert not v.holds
    assert v.numbers["slope_M"]["lo"] <= 0 and "M" in v.reason


def test_P1_verdict_fails_when_G_rises():
    rows = efficiency_rows({"G": lambda D: 0.5 * D**0.3, "M": lambda D: 0.5 * D**0.5}, kappa=1.5,
                           D_values=D_GRID, seed=4)
    v = p1_of(rows)
    assert v.numbers["slope_M"]["lo"] > 0
    assert not v.holds and "G" in v.reason


@given(d_crit=d_crits, seed=fit_seeds)
@settings(max_examples=20)
def test_P1_crossover_recovers_known_D_crit(d_crit, seed):
    # P_M(D) = P_G at D = d_crit, with P_M proportional to sqrt(D)
    rows = efficiency_rows({"G": lambda D: 5.0, "M": lambda D: 5.0 * (D / d_crit) ** 0.5},
                           kappa=1.5, D_values=D_GRID, noise_sd=0.05, seed=seed)
    a = analyse_efficiency(rows, n_boot=300, seed=seed)
    assert a.crossover.D_crit.value == pytest.approx(d_crit, rel=0.15)
    assert a.crossover.D_crit.lo < a.crossover.D_crit.value < a.crossover.D_crit.hi


def test_P1_no_crossover_gives_nan_estimate_and_json_without_nan():
    rows = efficiency_rows({"G": lambda D: 5.0, "M": lambda D: 50.0 / D**0.3}, kappa=1.5,
                           D_values=D_GRID, seed=6)
    a = analyse_efficiency(rows, n_boot=300)
    assert np.isnan(a.crossover.D_crit.value)
    assert a.crossover.n_no_crossing == a.crossover.n_boot
    d = a.to_dict()
    assert d["crossover"]["D_crit"]["value"] is None
    json.dumps(d, allow_nan=False)


def test_P1_trend_g_model_crosses_the_G_line():
    rows = theory_shaped(seed=7)
    a = analyse_efficiency(rows, n_boot=300, g_model="trend")
    assert a.crossover.g_model == "trend"
    assert a.crossover.D_crit.value == pytest.approx(100.0, rel=0.15)


def test_P1_results_are_json_ready_and_tables_flat():
    a = analyse_efficiency(theory_shaped(seed=8), n_boot=200)
    text = json.dumps(a.to_dict(), allow_nan=False)
    assert '"crossover"' in text and '"kappa"' in text
    table = per_D_table(a)
    assert list(table.columns) == ["circuit", "D", "n", "n_seeds", "P", "P_lo", "P_hi", "kappa"]
    assert len(table) == 2 * len(D_GRID)


def test_P1_fitted_lines_pass_through_unit_logit_at_P():
    rows = theory_shaped(seed=9)
    fit = fit_circuit(rows, "M")
    lines = fitted_lines(fit, rows)
    for p in fit.per_D:
        line = lines[lines["D"] == p.D]
        # logit = (norm / P)^kappa is linear in log-log and equals 1 at norm = P
        coef = np.polyfit(np.log(line["param_norm"]), np.log(line["correct_logit"]), 1)
        assert coef[0] == pytest.approx(fit.kappa.value)
        assert np.exp(-coef[1] / coef[0]) == pytest.approx(p.P.value)


def test_P1_separate_kappas_detect_a_D_dependent_exponent():
    same = fit_circuit(theory_shaped(seed=10, n_seeds=6), "M")
    assert len(same.separate) == len(D_GRID)
    assert same.kappa_homogeneity_p > 0.01
    frames = [efficiency_rows({"M": lambda D: 0.5 * D**0.5}, kappa=k, D_values=(D,), seed=11 + i,
                              n_seeds=6)
              for i, (D, k) in enumerate(zip(D_GRID, (1.0, 1.4, 1.8, 2.2)))]
    differs = fit_circuit(pd.concat(frames, ignore_index=True), "M")
    assert differs.kappa_homogeneity_p < 1e-6
    np.testing.assert_allclose([s.kappa.value for s in differs.separate], [1.0, 1.4, 1.8, 2.2],
                               rtol=0.08)


def test_P1_fit_trend_alone_matches_the_full_analysis():
    rows = theory_shaped(seed=12)
    t = fit_trend(rows, "M", n_boot=400, seed=3)
    a = analyse_efficiency(rows, n_boot=400, seed=3)
    assert t.slope.value == pytest.approx(a.trend_M.slope.value)


# --- bad input: one-line errors naming the field ----------------------------------------------


def _one_line(err: ConfigError, field: str) -> None:
    assert err.field == field
    assert "\n" not in str(err)
    assert str(err).startswith(f"{field}: ")


def test_P1_single_D_is_a_config_error_naming_D():
    rows = theory_shaped(seed=0)
    rows = rows[~((rows["circuit"] == "M") & (rows["D"] != 100))]
    with pytest.raises(ConfigError) as exc:
        analyse_efficiency(rows, n_boot=100)
    _one_line(exc.value, "D")


@pytest.mark.parametrize(("mutate", "field"), [
    (lambda df: df.drop(columns=["param_norm"]), "param_norm"),
    (lambda df: df.assign(correct_logit=df["correct_logit"] - 100), "correct_logit"),
    (lambda df: df.assign(circuit="X"), "circuit"),
    (lambda df: df[df["circuit"] == "G"], "circuit"),
    (lambda df: df.assign(D=-df["D"]), "D"),
    (lambda df: df.assign(param_norm=np.nan), "param_norm"),
    (lambda df: df.assign(param_norm=1.0), "param_norm"),
])
def test_P1_bad_tables_are_one_line_errors(mutate, field):
    with pytest.raises(ConfigError) as exc:
        analyse_efficiency(mutate(theory_shaped(seed=0)), n_boot=100)
    _one_line(exc.value, field)


def test_P1_stripes_need_two_seeds():
    rows = theory_shaped(seed=0, n_seeds=1)
    with pytest.raises(ConfigError) as exc:
        fit_circuit(rows, "M", intercepts="D_seed")
    _one_line(exc.value, "seed")


@pytest.mark.parametrize(("kwargs", "field"), [
    ({"level": 1.5}, "level"), ({"n_boot": 3}, "n_boot"), ({"seed": -1}, "seed"),
    ({"g_model": "curvy"}, "g_model"),
    ({"intercepts": "seed"}, "intercepts"),
])
def test_P1_bad_arguments_are_one_line_errors(kwargs, field):
    with pytest.raises(ConfigError) as exc:
        analyse_efficiency(theory_shaped(seed=0), **kwargs)
    _one_line(exc.value, field)


def test_P1_verdict_fails_when_logits_do_not_grow_with_the_norm():
    rows = theory_shaped(seed=13)
    rng = np.random.default_rng(0)
    g = rows["circuit"] == "G"
    # G logits unrelated to the norm: kappa is about 0 and P(D) means nothing
    rows.loc[g, "correct_logit"] = np.exp(0.05 * rng.standard_normal(int(g.sum())))
    a = analyse_efficiency(rows, n_boot=300)
    assert not a.fit_G.kappa.above(0.0)
    v = p1_of(rows)
    assert not v.holds and "kappa" in v.reason
