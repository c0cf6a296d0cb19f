"""The decision rules of P1-P4 and Figure 10a: each says yes on a clean positive and no on its
negative control, and each stated edge case makes it say no (fixed seeds, numbers asserted)."""

from __future__ import annotations

import json
from dataclasses import replace

import numpy as np
import pandas as pd
import pytest
from hypothesis import given

from circeff.analysis import controls as C
from circeff.analysis import verdicts as V
from circeff.analysis.semigrokking import classify_run, p4_sizes
from circeff.errors import ConfigError
from tests.strategies.analysis import fit_seeds, g_short_ranges, rising_runs

DESIGNS = C.reference_designs()
P1_GOOD = replace(DESIGNS["P1.cpu.G_half_decade"], seeds=8, stripe_sd_G=0.03)
P2_GOOD = DESIGNS["P2.quick.refined"]
P3_GOOD = replace(DESIGNS["P3.quick.refined_3wd"], seeds=6)


def _json_safe(v: V.Verdict) -> dict:
    d = v.to_dict()
    json.dumps(d, allow_nan=False)
    return d


# ---- P1 --------------------------------------------------------------------------------------


def test_P1_holds_on_clean_positive_with_recovered_slopes():
    v = V.p1(C.simulate(P1_GOOD, "hypothesis", 3))
    assert v.holds, v.reason
    n = v.numbers
    assert n["slope_M"]["lo"] > 0 and abs(n["slope_M"]["value"] - P1_GOOD.slope_M) < 0.05
    assert n["delta"] == pytest.approx(0.5 * n["slope_M"]["lo"])
    assert -n["delta"] <= n["slope_G"]["lo"] and n["slope_G"]["hi"] <= n["delta"]
    assert n["kappa_M"]["value"] == pytest.approx(P1_GOOD.kappa_M, rel=0.1)
    assert n["log10_range_G"] == pytest.approx(np.log10(913 / 240))
    assert _json_safe(v)["rule"]["equivalence_level"] == 0.9


def test_P1_does_not_hold_when_G_slope_equals_M_slope():
    v = V.p1(C.simulate(P1_GOOD, "alternative", 3))
    assert v.outcome == "does not hold" and v.numbers["outcome_G"] == "does not hold"
    assert v.numbers["slope_G"]["lo"] > v.numbers["delta"]
    assert "G's efficiency changes with D" in v.reason


def test_P1_wide_G_interval_containing_0_is_not_flat():
    # noisy G stripes: the interval straddles 0 but is far wider than +-delta, so flatness
    # is not shown (the rule "the interval contains 0" would have accepted it); whether that is
    # "does not hold" or "undecided" is the design's power, measured by the controls
    table = C.simulate(replace(P1_GOOD, stripe_sd_G=0.5), "hypothesis", 3)
    v = V.p1(table)
    g = v.numbers["slope_G"]
    assert g["lo"] < 0 < g["hi"] and g["hi"] - g["lo"] > 2 * v.numbers["delta"]
    assert v.outcome == "undecided" and "power not measured" in v.reason
    powered = V.p1(table, design_rates={"power": 0.9, "false_accept": 0.01})
    assert powered.outcome == "does not hold" and "G not shown flat on a design with the power" in powered.reason
    weak = V.p1(table, design_rates={"power": 0.3, "false_accept": 0.01})
    assert weak.outcome == "undecided" and "power 0.30" in weak.reason


def test_P1_short_G_range_leaves_G_undecided_by_the_measured_power():
    # the G sizes of the P = 23 quick preset span log10(506 / 436) = 0.065 decades: the controls
    # on that design measure too little power, so G is not decided (M still is)
    design = replace(P1_GOOD, G_D=(436, 476, 506))
    ctl = C.measure_controls(V.p1, design, n=20, seed=0)
    rates = {"power": 1 - ctl["false_reject"]["value"], "false_accept": ctl["false_accept"]["value"]}
    assert rates["power"] < 0.8
    v = V.p1(C.simulate(design, "hypothesis", 3), design_rates=rates)
    assert v.outcome == "undecided" and v.numbers["outcome_M"] == "holds"
    assert v.numbers["log10_range_G"] == pytest.approx(np.log10(506 / 436))


def test_P1_flat_G_on_a_design_with_too_much_false_accept_is_undecided():
    v = V.p1(C.simulate(P1_GOOD, "hypothesis", 3), design_rates={"power": 0.95, "false_accept": 0.2})
    assert v.outcome == "undecided" and "controls do not meet the targets" in v.reason


def test_P1_slopes_are_clustered_by_seed():
    # each seed's networks share a slope of their own (seed-to-seed spread 0.1), with almost no
    # noise around it: counting the 8 x 3 stripes as independent units gives an interval several
    # times too narrow; the clustered one is the t interval over the 8 per-seed slopes
    from scipy import stats as st

    from circeff.analysis.efficiency import efficiency_slope, stripe_efficiencies

    table = C.simulate(replace(P1_GOOD, stripe_sd_G=0.001), "hypothesis", 3)
    rng = np.random.default_rng(0)
    own = {s: 0.1 * rng.standard_normal() for s in range(P1_GOOD.seeds)}
    g = table["circuit"] == "G"
    shift = table.loc[g, "seed"].map(own) * np.log(table.loc[g, "D"] / 476.0)
    table.loc[g, "param_norm"] *= np.exp(shift)        # log P moves by the seed's own slope
    v = V.p1(table)
    fit = stripe_efficiencies(table[g], 0.95)
    per_seed = [efficiency_slope(np.log(fit["D"][fit["seed"] == s]), fit["log_P"][fit["seed"] == s], 0.9)[0].value
                for s in range(P1_GOOD.seeds)]
    half = st.t.ppf(0.95, len(per_seed) - 1) * np.std(per_seed, ddof=1) / np.sqrt(len(per_seed))
    got = v.numbers["slope_G"]
    assert got["value"] == pytest.approx(np.mean(per_seed))
    assert (got["hi"] - got["lo"]) / 2 == pytest.approx(half)
    naive = efficiency_slope(np.log(fit["D"]), fit["log_P"], 0.9)[0]
    assert (naive.hi - naive.lo) < 0.75 * (got["hi"] - got["lo"])
    assert v.numbers["seeds_G"] == 8 and got["method"].startswith("t over seeds")


def test_P1_fails_when_M_does_not_rise():
    v = V.p1(C.simulate(replace(P1_GOOD, slope_M=0.0), "hypothesis", 3))
    assert not v.holds
    assert v.numbers["slope_M"]["lo"] <= 0
    assert "M's efficiency does not rise" in v.reason


def test_P1_needs_three_sizes_per_circuit_and_the_columns():
    table = C.simulate(P1_GOOD, "hypothesis", 3)
    v = V.p1(table[table["D"] != 240])
    assert not v.holds and "G has 2 distinct D (needs 3)" in v.reason
    with pytest.raises(ConfigError, match="alpha"):
        V.p1(table.drop(columns="alpha"))


# ---- P2 --------------------------------------------------------------------------------------


def test_P2_holds_on_a_sharp_transition_with_a_refined_grid():
    v = V.p2(C.simulate(P2_GOOD, "hypothesis", 5), P2_GOOD.chance, n_boot=20)
    assert v.holds, v.reason
    n = v.numbers
    assert n["n_in_band"] >= 3 and n["delta_bic"] >= 10
    assert n["D_crit"]["value"] == pytest.approx(P2_GOOD.D_crit, rel=0.15)
    assert n["D_crit"]["lo"] <= n["D_crit"]["value"] <= n["D_crit"]["hi"]
    assert n["width_ratio"] == pytest.approx(n["band_D"][1] / n["band_D"][0])


def test_P2_fails_on_a_linear_ramp_across_the_grid():
    v = V.p2(C.simulate(P2_GOOD, "alternative", 5), P2_GOOD.chance, n_boot=0)
    assert not v.holds
    assert v.numbers["delta_bic"] < 10
    assert "a ramp explains the data" in v.reason


def test_P2_fails_with_too_few_sizes_inside_the_band():
    coarse = DESIGNS["P2.quick"]  # one or two of its six D' fall inside the 10-90% band
    v = V.p2(C.simulate(coarse, "hypothesis", 5), coarse.chance, n_boot=0)
    assert not v.holds
    assert v.numbers["n_in_band"] < 3
    assert "refine the grid" in v.reason


def test_P2_excludes_unconverged_runs_and_counts_them():
    table = C.simulate(P2_GOOD, "hypothesis", 5)
    bad = table.index[(table["D"] >= 240)][:4]
    table.loc[bad, "converged"] = False
    table.loc[bad, "final_test_acc"] = 0.0      # would wreck the upper plateau if fitted
    v = V.p2(table, P2_GOOD.chance, n_boot=0)
    assert v.holds, v.reason
    assert v.numbers["n_excluded"] == 4 and v.numbers["n_fitted"] == len(table) - 4
    assert v.numbers["upper"] > 0.95
    many = table.index[:len(table) // 4]
    table.loc[many, "converged"] = False
    v = V.p2(table, P2_GOOD.chance, n_boot=0)
    assert not v.holds and "run them longer" in v.reason


# ---- P3 --------------------------------------------------------------------------------------


def test_P3_holds_when_D_crit_does_not_move_with_weight_decay():
    v = V.p3(C.simulate(P3_GOOD, "hypothesis", 2), P3_GOOD.chance)
    assert v.holds, v.reason
    s = v.numbers["slope"]
    assert -0.1 <= s["lo"] and s["hi"] <= 0.1
    assert v.numbers["wd_ratio"] == pytest.approx(4.0)


def test_P3_fails_when_D_crit_grows_as_weight_decay_to_the_quarter():
    v = V.p3(C.simulate(P3_GOOD, "alternative", 2), P3_GOOD.chance)
    assert not v.holds
    assert v.numbers["slope"]["value"] == pytest.approx(0.25, abs=0.08)
    assert v.numbers["slope"]["hi"] > 0.1


def test_P3_fails_with_two_weight_decays_spanning_2x():
    design = replace(P3_GOOD, weight_decays=(1.0, 2.0))
    v = V.p3(C.simulate(design, "hypothesis", 2), design.chance)
    assert not v.holds
    assert "spanning x2 (needs 3 spanning x4)" in v.reason


# ---- P4 --------------------------------------------------------------------------------------

STEPS = np.arange(0, 3001, 50.0)
TRAIN = np.ones_like(STEPS)


def test_P4_still_rising_trajectory_is_not_semi_grokked():
    rising = np.linspace(0.05, 0.50, STEPS.size)
    c = classify_run(STEPS, TRAIN, rising, 1 / 23)
    assert c.label == "unsettled"
    # across the last third of the steps, in units of the way from chance to 1
    assert c.tail_change == pytest.approx(0.45 / 3 / (1 - 1 / 23), rel=0.02)


def test_P4_converged_middling_plateau_is_semi_grokked():
    t = STEPS / STEPS[-1]
    rng = np.random.default_rng(0)
    plateau = 1 / 23 + (0.6 - 1 / 23) / (1 + np.exp(-(t - 0.3) / 0.02)) + 0.02 * rng.standard_normal(t.size)
    c = classify_run(STEPS, TRAIN, plateau, 1 / 23)
    assert c.label == "semi"
    assert abs(c.tail_change) < 0.05 and c.final_test_acc == pytest.approx(0.6, abs=0.02)
    c = classify_run(STEPS, np.full_like(STEPS, 0.9), plateau, 1 / 23)
    assert c.label == "unsettled"    # training accuracy 0.9 < 0.99: not a converged network


def test_P4_verdict_on_hypothesis_and_on_still_rising_runs():
    design = DESIGNS["P4.quick"]
    yes = V.p4(C.simulate(design, "hypothesis", 4), design.chance, d_crit=82.3)
    assert yes.holds, yes.reason
    assert yes.numbers["n_semi"] >= 2 and yes.numbers["semi_fraction"]["lo"] > 0
    assert yes.numbers["sizes_over_D_crit"][0] == pytest.approx(design.sizes[0] / 82.3)
    no = V.p4(C.simulate(design, "alternative", 4), design.chance)
    assert not no.holds
    assert no.numbers["n_semi"] == 0 and no.numbers["semi_fraction"]["lo"] == 0


def test_P4_transient_plateau_counted_separately():
    t = STEPS / STEPS[-1]
    transient = (1 / 23 + (0.5 - 1 / 23) / (1 + np.exp(-(t - 0.2) / 0.02))
                 + 0.5 / (1 + np.exp(-(t - 0.55) / 0.02)))
    table = pd.DataFrame({"D": 200, "seed": 0, "step": STEPS, "train_acc": 1.0, "test_acc": transient})
    v = V.p4(table, 1 / 23)
    assert v.numbers["n_transient"] == 1 and v.numbers["counts"]["grokked"] == 1
    assert not v.holds


def test_P4_sizes_follow_the_rule_from_D_crit():
    assert p4_sizes(100.0, n_sizes=3, low_factor=1.0, high_factor=4.0) == (100, 250, 400)  # evenly spaced
    with pytest.raises(ConfigError, match="dcrit"):
        p4_sizes(float("nan"), n_sizes=3, low_factor=1.0, high_factor=4.0)


# ---- Figure 10a ------------------------------------------------------------------------------


def test_fig10a_holds_on_a_rising_ratio_and_fails_on_a_flat_one():
    design = DESIGNS["fig10a.quick.3_seeds"]
    yes = V.fig10a(C.simulate(design, "hypothesis", 0))
    assert yes.holds and yes.numbers["spearman"]["lo"] > 0.8
    no = V.fig10a(C.simulate(design, "alternative", 0))
    assert not no.holds and no.numbers["spearman"]["lo"] <= 0


def test_fig10a_fails_with_fewer_than_three_seeds_per_D():
    design = DESIGNS["fig10a.quick"]  # two seeds per D, as in the P = 23 quick preset
    v = V.fig10a(C.simulate(design, "hypothesis", 0))
    assert not v.holds
    assert v.numbers["spearman"]["lo"] > 0.8
    assert "fewer than 3 networks at D = 20" in v.reason


def test_fig10a_ranks_infinite_ratios_and_drops_nan():
    table = C.simulate(DESIGNS["fig10a.quick.3_seeds"], "hypothesis", 0)
    table.loc[table["D"] == 500, "ratio"] = np.inf
    table.loc[0, "ratio"] = np.nan
    v = V.fig10a(table)
    assert v.numbers["n_dropped"] == 1 and v.numbers["n"] == len(table) - 1
    assert "fewer than 3 networks at D = 20" in v.reason
    assert _json_safe(v)["numbers"]["median_by_D"][-1]["ratio"] is None


def test_P2_and_P3_need_G_only_base_networks():
    table = C.simulate(P3_GOOD, "hypothesis", 2)
    table["base_trig_share"] = table["seed"].map(lambda s: 0.88 if s == 1 else 0.99)
    for v in (V.p2(table, P3_GOOD.chance, n_boot=0), V.p3(table, P3_GOOD.chance)):
        assert not v.holds
        assert v.numbers["base_trig_share_min"] == pytest.approx(0.88)
        assert "seeds 1 are not G-only (trig share 0.88 <= 0.95)" in v.reason


@given(G_D=g_short_ranges, seed=fit_seeds)
def test_P1_G_is_never_called_changing_on_a_short_range_without_a_steep_interval(G_D, seed):
    # on a short G range a flat G gives a wide slope interval: never "G changes with D" unless
    # its interval at the test level lies wholly outside +-delta
    v = V.p1(C.simulate(replace(P1_GOOD, G_D=G_D), "hypothesis", seed))
    g, delta = v.numbers["slope_G"], v.numbers["delta"]
    steep = "G's efficiency changes with D" in v.reason
    assert steep == (v.numbers["outcome_G"] == "does not hold")
    if steep:
        assert g["lo"] > delta or g["hi"] < -delta


@given(run=rising_runs)
def test_P4_a_run_rising_by_0_2_or_more_is_never_semi_grokked(run):
    start, rise = run
    c = classify_run(STEPS, TRAIN, np.linspace(start, start + rise, STEPS.size), 1 / 23)
    assert c.label != "semi"
    assert c.tail_change == pytest.approx(rise / 3 / (1 - 1 / 23), rel=0.02)
