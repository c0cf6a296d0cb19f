"""The rules are fair in both directions: P2's null is bounded (a stated maximum width), a grid
too coarse for the band is undecided rather than "does not hold", P3 compares the plateaus, the
ungrokking control can stop P2, and the allocation curves are scored the same way."""

from __future__ import annotations

import math
from dataclasses import replace

import numpy as np
import pandas as pd
import pytest

from circeff.analysis import controls as C
from circeff.analysis import verdicts as V
from circeff.analysis.allocation import _errors, allocation_verdict

DESIGNS = C.reference_designs()
P2_GOOD = DESIGNS["P2.quick.refined"]
P3_GOOD = replace(DESIGNS["P3.quick.refined_3wd"], seeds=6)


def test_P2_a_wide_sigmoid_fails_the_stated_maximum_width():
    # a smooth transition spread over most of the grid: a sigmoid fits it far better than a line
    # (BIC), but its 10-90% band spans far more than x4 of D'
    wide = replace(P2_GOOD, width=0.9, noise_sd=0.01)
    v = V.p2(C.simulate(wide, "hypothesis", 0), wide.chance, n_boot=0)
    assert v.numbers["width_ratio"] > 4
    assert v.outcome == "does not hold" and "spans x" in v.reason
    sharp = V.p2(C.simulate(P2_GOOD, "hypothesis", 0), P2_GOOD.chance, n_boot=0)
    assert sharp.holds and sharp.numbers["width_ratio"] <= 4


def test_P2_too_few_sizes_in_the_band_is_undecided_not_a_no():
    # the coarse grid alone: a sharp transition leaves fewer than 3 D' inside its band
    coarse = replace(P2_GOOD, sizes=(30, 50, 85, 140, 240, 400), width=0.08)
    v = V.p2(C.simulate(coarse, "hypothesis", 1), coarse.chance, n_boot=0)
    assert v.numbers["n_in_band"] < 3
    assert v.outcome == "undecided" and "refine the grid" in v.reason


def test_P2_is_undecided_when_the_control_loses_accuracy():
    table = C.simulate(P2_GOOD, "hypothesis", 0)
    ok = V.p2(table, P2_GOOD.chance, n_boot=0, control_acc=0.999)
    assert ok.holds and ok.numbers["control_min_acc"] == pytest.approx(0.999)
    bad = V.p2(table, P2_GOOD.chance, n_boot=0, control_acc=0.7)
    assert bad.outcome == "undecided" and "without any change of data" in bad.reason


def test_P3_fails_when_one_weight_decay_has_not_finished_ungrokking():
    # the largest weight decay's runs sit at 0.5 at the smallest D' (incompletely ungrokked) while
    # the others reach chance: D_crit may agree, the plateaus do not
    table = C.simulate(P3_GOOD, "hypothesis", 4)
    wd_max, D_min = table["weight_decay"].max(), table["D"].min()
    table.loc[(table["weight_decay"] == wd_max) & (table["D"] == D_min), "final_test_acc"] = 0.5
    v = V.p3(table, P3_GOOD.chance)
    assert v.numbers["plateaus"]["low_range"] > 0.1
    assert not v.holds and "plateau at the smallest D'" in v.reason
    clean = V.p3(C.simulate(P3_GOOD, "hypothesis", 4), P3_GOOD.chance)
    assert clean.holds and clean.numbers["plateaus"]["low_range"] <= 0.1


def test_allocation_scores_both_curves_by_the_region_they_predict():
    edge = math.log(19.0)
    x = np.array([-2.0, -1.0, 1.0, 2.0])
    # measured: M wins clearly, a mixture, a mixture, G wins clearly
    log_r = np.array([-4.0, -0.5, 0.5, 4.0])
    err_a, err_b, pred_b = _errors(log_r, x, 0.05)
    # (a) predicts a winner everywhere: zero where the winner is clear, the distance to the
    # winner's region in the mixtures
    np.testing.assert_allclose(err_a, [0.0, -0.5 + edge, 0.5 - edge, 0.0])
    # (b) predicts a region too, scored the same way: inside its region costs nothing
    for lr, pb, eb in zip(log_r, pred_b, err_b):
        region = "G" if pb >= edge else "M" if pb <= -edge else "mix"
        inside = {"G": lr >= edge, "M": lr <= -edge, "mix": abs(lr) < edge}[region]
        assert (eb == 0.0) == inside


def test_a_predicted_mixture_is_wrong_by_the_distance_to_the_mixture_region():
    from circeff.analysis.allocation import _region_error

    edge = math.log(19.0)
    got = _region_error(np.array([4.0, -4.0, 0.3]), np.array(["mix", "mix", "mix"]), edge)
    np.testing.assert_allclose(got, [4.0 - edge, -4.0 + edge, 0.0])
    got = _region_error(np.array([0.3, 4.0]), np.array(["G", "M"]), edge)
    np.testing.assert_allclose(got, [0.3 - edge, 4.0 + edge])


def test_allocation_verdict_names_the_supported_account_and_reports_the_crossover_apart():
    from circeff.analysis.allocation import AllocationCurves, CurvePoint
    from circeff.analysis.stats import Interval

    def iv(v, lo, hi):
        return Interval(v, lo, hi, 0.95, "test")

    points = (CurvePoint(40.0, 3, 5.0, -1.0, iv(0.05, 0.04, 0.06), "M takes all", 0.0, iv(0.2, 0.1, 0.3), 1.0,
                         "mixture", iv(-1.0, -1.2, -0.8), False),
              CurvePoint(80.0, 3, 5.0, 0.05, iv(1.0, 0.8, 1.2), "G takes all", -2.9, iv(1.1, 0.9, 1.3), 0.0,
                         "mixture", iv(0.05, -0.1, 0.2), True))
    curves = AllocationCurves(2.0, iv(4, 3, 5), iv(5, 4, 6), iv(1, 0.5, 1.5), iv(0.7, 0.5, 0.9), 0.05, points,
                              0.0, 1.0, iv(-1.0, -1.5, -0.5), (80.0,))
    v = allocation_verdict(curves)
    assert v.outcome == "does not hold" and v.numbers["supported"] == "a"
    assert "winner-take-all" in v.numbers["supported_account"] and "D = 80" in v.reason
    assert v.numbers["near_crossover"][0]["D"] == 80.0
    undecided = allocation_verdict(replace(curves, error_difference=iv(0.1, -0.2, 0.4)))
    assert undecided.outcome == "undecided" and undecided.numbers["supported"] == "neither"
