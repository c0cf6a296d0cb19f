"""D_crit from ungrokking (the package's one D_crit estimator), the P2/P3 rules on tables of known truth, and
agreement of two estimates."""

from __future__ import annotations

import json

import numpy as np
import pytest
from hypothesis import given, settings

from circeff.analysis.ungrokking import (
    dcrit_by_weight_decay,
    estimate_dcrit,
    transition_accuracy,
)
from circeff.analysis import verdicts as V
from circeff.analysis.efficiency import analyse_efficiency
from circeff.analysis.stats import Interval
from circeff.errors import ConfigError
from tests.strategies.analysis import d_crits, efficiency_rows, fit_seeds, ungrokking_rows

CHANCE = 1 / 113
D_PRIME = tuple(np.geomspace(200, 3000, 9))  # Figure 7 uses 7 sizes in [390, 1494]


@given(d_crit=d_crits, seed=fit_seeds)
@settings(max_examples=15)
def test_P2_logistic_midpoint_recovers_known_D_crit(d_crit, seed):
    # a grid that brackets the transition, as the experiments choose D' around the estimate
    grid = tuple(d_crit * np.geomspace(0.25, 4.0, 9))
    rows = ungrokking_rows(d_crit, D_values=grid, n_seeds=8, chance=CHANCE, seed=seed % 10_000)
    est = estimate_dcrit(rows, chance=CHANCE, n_boot=40, seed=seed)
    # each seed's own midpoint scatters by 0.1 in log D; 8 seeds -> about 0.035
    assert abs(np.log(est.D_crit.value / d_crit)) < 0.15
    assert est.curve.lower >= CHANCE and est.curve.upper <= 1.0
    assert est.curve.upper - est.curve.lower > 0.8
    assert not est.at_bound


def test_P2_bootstrap_interval_covers_the_truth():
    hits = 0
    for s in range(10):
        rows = ungrokking_rows(800, D_values=D_PRIME, n_seeds=10, chance=CHANCE, seed=100 + s)
        hits += estimate_dcrit(rows, chance=CHANCE, n_boot=80, seed=s).D_crit.contains(800)
    assert hits >= 8  # nominal 95%: 9.5 of 10 expected


def test_P2_bootstrap_interval_shrinks_with_more_seeds():
    def mean_log_width(n_seeds):
        widths = []
        for s in range(8):   # the width of one 4-seed interval varies by 3x between data sets
            rows = ungrokking_rows(800, D_values=D_PRIME, n_seeds=n_seeds, chance=CHANCE, seed=s)
            iv = estimate_dcrit(rows, chance=CHANCE, n_boot=100, seed=s).D_crit
            widths.append(np.log(iv.hi / iv.lo))
        return np.mean(widths)

    few, many = mean_log_width(4), mean_log_width(24)
    # width ~ 1 / sqrt(seeds): 24 seeds should give about 0.4 of the 4-seed width
    assert many < 0.65 * few


def test_P2_fitted_curve_evaluates_the_model():
    rows = ungrokking_rows(800, D_values=D_PRIME, n_seeds=6, chance=CHANCE, seed=3)
    est = estimate_dcrit(rows, chance=CHANCE, n_boot=30)
    c = est.curve
    # at the midpoint the accuracy is halfway between the plateaus
    assert c.accuracy(est.D_crit.value) == pytest.approx((c.lower + c.upper) / 2)
    np.testing.assert_allclose(c.accuracy(np.array([1e-6, 1e12])), [c.lower, c.upper], atol=1e-6)
    assert transition_accuracy(np.array([0.0]), 0.1, 0.9, 0.0, 1.0)[0] == pytest.approx(0.5)


def _with_converged(rows):
    return rows.assign(converged=True)


def test_P2_transition_verdict_holds_for_a_transition_and_fails_without_one():
    # 9 D' over 1.2 decades put one D' inside this sharp transition: refine, as the experiment does
    coarse = ungrokking_rows(800, D_values=D_PRIME, n_seeds=6, chance=CHANCE, seed=4)
    assert "refine the grid" in V.p2(_with_converged(coarse), CHANCE, n_boot=0).reason
    rows = ungrokking_rows(800, D_values=tuple(sorted({*D_PRIME, *np.geomspace(0.7 * 800, 1.4 * 800, 5)})),
                           n_seeds=6, chance=CHANCE, seed=4)
    v = V.p2(_with_converged(rows), CHANCE, n_boot=0)
    assert v.holds, v.reason
    assert v.numbers["D_crit"]["value"] == pytest.approx(estimate_dcrit(rows, chance=CHANCE, n_boot=30).D_crit.value,
                                                         rel=0.05)
    # every D' already generalises: the transition lies far below the grid
    flat = ungrokking_rows(5, D_values=D_PRIME, n_seeds=6, chance=CHANCE, seed=4)
    assert not V.p2(_with_converged(flat), CHANCE, n_boot=0).holds


def test_P2_a_band_leaving_the_grid_fails_sharpness_only_where_the_grid_shows_it_too_wide():
    # a wide transition (10-90% band x14 in D'); the band leaves the grid at its lower end
    wide = dict(n_seeds=6, chance=CHANCE, seed=5, width=0.6, seed_shift_sd=0.02, noise_sd=0.01)
    # the grid reaches down to 0.5 D_crit: inside it the band already spans about x7, a measured failure
    shown = V.p2(_with_converged(ungrokking_rows(800, D_values=tuple(np.geomspace(400, 12000, 12)), **wide)),
                 CHANCE, n_boot=0)
    assert shown.outcome == "does not hold" and "inside the grid alone" in shown.reason, shown.reason
    # the grid starts at D_crit: inside it the band spans under x4, and the rest is extrapolation
    cut = V.p2(_with_converged(ungrokking_rows(800, D_values=tuple(np.geomspace(800, 12000, 12)), **wide)),
               CHANCE, n_boot=0)
    assert cut.outcome == "undecided" and "widen the grid" in cut.reason, cut.reason


def test_P3_holds_when_D_crit_does_not_depend_on_weight_decay():
    rows = ungrokking_rows({0.3: 800, 1.0: 800, 3.0: 800}, D_values=tuple(np.geomspace(200, 3000, 17)),
                           n_seeds=8, chance=CHANCE, seed=5)
    v = V.p3(_with_converged(rows), CHANCE)
    assert v.holds, v.reason
    est = dcrit_by_weight_decay(rows, chance=CHANCE, n_boot=30)
    assert [e.weight_decay for e in est] == [0.3, 1.0, 3.0]
    json.dumps(v.to_dict(), allow_nan=False)


def test_P3_fails_when_D_crit_moves_with_weight_decay():
    # D_crit proportional to wd^0.4: ten times more weight decay, 2.5 times larger D_crit
    rows = ungrokking_rows({wd: 800 * wd**0.4 for wd in (0.3, 1.0, 3.0)}, D_values=tuple(np.geomspace(200, 3000, 17)),
                           n_seeds=8, chance=CHANCE, seed=6)
    v = V.p3(_with_converged(rows), CHANCE)
    assert v.outcome == "does not hold" and "moves with weight decay" in v.reason, v.reason
    assert v.numbers["slope"]["value"] == pytest.approx(0.4, abs=0.1)


def test_P3_is_undecided_when_the_slope_interval_straddles_the_tolerance():
    # independent of weight decay, but two seeds with noisy units: the interval covers 0 and
    # reaches past +-0.1, which shows neither independence nor dependence
    rows = ungrokking_rows({1.0: 800, 2.0: 800, 4.0: 800}, D_values=tuple(np.geomspace(200, 3000, 17)),
                           n_seeds=2, seed_shift_sd=0.3, chance=CHANCE, seed=3)
    v = V.p3(_with_converged(rows), CHANCE)
    lo, hi = v.numbers["slope"]["lo"], v.numbers["slope"]["hi"]
    assert lo < 0.1 < hi or lo < -0.1 < hi, v.numbers["slope"]
    assert v.outcome == "undecided" and "neither shown nor refuted" in v.reason, v.reason


def test_P3_per_weight_decay_fits_match_the_pooled_fit_of_one_weight_decay():
    rows = ungrokking_rows({0.5: 600, 2.0: 1200}, D_values=D_PRIME, n_seeds=6, chance=CHANCE, seed=7)
    per = dcrit_by_weight_decay(rows, chance=CHANCE, n_boot=30, seed=1)
    alone = estimate_dcrit(rows[rows["weight_decay"] == 2.0], chance=CHANCE, n_boot=30)
    assert per[1].weight_decay == 2.0
    assert per[1].D_crit.value == pytest.approx(alone.D_crit.value, rel=1e-6)
    assert estimate_dcrit(rows, chance=CHANCE, n_boot=30).weight_decay is None


def test_Dcrit_two_ways_agree_when_they_estimate_the_same_truth():
    # efficiency crossover at D = 800 and an ungrokking transition at D' = 800: their intervals
    # overlap; against a transition at 3000 they do not
    eff = efficiency_rows({"G": lambda D: 5.0, "M": lambda D: 5.0 * (D / 800) ** 0.5}, kappa=1.5,
                          D_values=(200, 500, 1500, 3000), seed=8)
    crossover = analyse_efficiency(eff, n_boot=500).crossover.D_crit
    ungrok = estimate_dcrit(ungrokking_rows(800, D_values=D_PRIME, n_seeds=8, chance=CHANCE, seed=8),
                            chance=CHANCE, n_boot=100).D_crit
    assert crossover.overlaps(ungrok)
    far = estimate_dcrit(ungrokking_rows(3000, D_values=tuple(np.geomspace(800, 12000, 9)), n_seeds=8,
                                         chance=CHANCE, seed=9), chance=CHANCE, n_boot=100).D_crit
    assert not crossover.overlaps(far)


def test_interval_overlap_is_closed_and_nan_never_overlaps():
    a = Interval(100.0, 80.0, 120.0, 0.95, "x")
    assert a.overlaps(Interval(130.0, 119.0, 150.0, 0.95, "x"))
    assert not a.overlaps(Interval(130.0, 121.0, 150.0, 0.95, "x"))
    assert a.overlaps(Interval(np.nan, 110.0, np.inf, 0.95, "x"))  # unbounded above
    assert not a.overlaps(Interval(np.nan, np.nan, np.nan, 0.95, "x"))
    assert a.overlaps(a)


@pytest.mark.parametrize(("mutate", "field"), [
    (lambda df: df[df["D"] < 300], "D"),
    (lambda df: df.assign(final_test_acc=df["final_test_acc"] + 2), "final_test_acc"),
    (lambda df: df.drop(columns=["seed"]), "seed"),
])
def test_P2_bad_tables_are_one_line_errors(mutate, field):
    rows = ungrokking_rows(800, D_values=D_PRIME, n_seeds=3, chance=CHANCE)
    with pytest.raises(ConfigError) as exc:
        estimate_dcrit(mutate(rows), chance=CHANCE, n_boot=20)
    assert exc.value.field == field
    assert "\n" not in str(exc.value)


def test_P3_needs_three_weight_decays_and_chance_must_be_a_probability():
    rows = ungrokking_rows(800, D_values=D_PRIME, n_seeds=3, chance=CHANCE)
    v = V.p3(_with_converged(rows), CHANCE)
    assert not v.holds and "needs 3" in v.reason
    with pytest.raises(ConfigError) as exc:
        estimate_dcrit(rows, chance=1.5, n_boot=20)
    assert exc.value.field == "chance"


def test_P2_one_seed_cannot_give_a_bootstrap_interval():
    rows = ungrokking_rows(800, D_values=D_PRIME, n_seeds=1, chance=CHANCE)
    with pytest.raises(ConfigError) as exc:
        estimate_dcrit(rows, chance=CHANCE, n_boot=20)
    assert exc.value.field == "seed"
    # the rule still decides on one seed, with the point estimate alone
    v = V.p2(_with_converged(rows), CHANCE, n_boot=20)
    assert v.numbers["D_crit"]["lo"] is None and v.numbers["D_crit"]["value"] > 0


def test_P2_reports_the_one_D_crit_estimate():
    rows = ungrokking_rows(800, D_values=tuple(sorted({*D_PRIME, *np.geomspace(560, 1120, 5)})),
                           n_seeds=6, chance=CHANCE, seed=4)
    v = V.p2(_with_converged(rows), CHANCE, n_boot=40, seed=3)
    est = estimate_dcrit(rows, chance=CHANCE, n_boot=40, seed=3)
    assert v.numbers["D_crit"] == est.D_crit.to_dict()


def test_P3_unit_D_crit_is_censored_outside_its_grid():
    from circeff.analysis.ungrokking import unit_log_dcrit

    inside = ungrokking_rows(800, D_values=D_PRIME, n_seeds=1, chance=CHANCE, seed=11)
    assert abs(unit_log_dcrit(inside, CHANCE) - np.log(800)) < 0.3
    below = ungrokking_rows(20, D_values=D_PRIME, n_seeds=1, chance=CHANCE, seed=11)
    assert np.isnan(unit_log_dcrit(below, CHANCE))
