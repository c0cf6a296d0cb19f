"""Robust or fragile, and the three outcomes: each check says "fragile" on a verdict built to fail
it, and "robust" only when every check passes (the float-order check included)."""

from __future__ import annotations

import math
from dataclasses import replace

import numpy as np
import pandas as pd
import pytest

from circeff.analysis import controls as C
from circeff.analysis import robustness as R
from circeff.analysis import verdicts as V
from circeff.analysis.rule import Verdict, criterion, verdict

DESIGNS = C.reference_designs()
FIG10 = replace(DESIGNS["fig10a.cpu"], seeds=6)


def _fig10_table(seed: int = 0) -> pd.DataFrame:
    return C.simulate(FIG10, "hypothesis", seed)


def test_outcomes_are_three_and_undecided_is_not_holds():
    assert verdict("k", [], ["f"], {}, {}).outcome == "holds"
    assert verdict("k", ["p"], [], {}, {}).outcome == "does not hold"
    assert verdict("k", [], [], {}, {}, undecided=["too few sizes"]).outcome == "undecided"
    # a contradicting finding wins over a design shortfall
    assert verdict("k", ["p"], [], {}, {}, undecided=["u"]).outcome == "does not hold"
    with pytest.raises(ValueError):
        Verdict("k", True, "", {}, {}, undecided=True)


def test_criterion_margin_is_signed_in_standard_errors():
    assert criterion("x", 3.0, 1.0, 1.0, "above")["margin_se"] == pytest.approx(2.0)
    assert criterion("x", 3.0, 1.0, 1.0, "below")["margin_se"] == pytest.approx(-2.0)
    assert math.isnan(criterion("x", 3.0, 1.0, math.nan, "above")["margin_se"])


def test_fig10a_far_past_its_threshold_is_robust_only_with_the_float_order_check():
    table = _fig10_table()
    v = R.robustness(V.fig10a, table, V.fig10a(table))
    assert v.holds
    checks = v.robustness["checks"]
    assert checks["leave_one_seed_out"]["passed"] and checks["margin"]["passed"] and checks["seeds"]["passed"]
    assert checks["float_order"]["passed"] is None
    assert v.robustness["label"] == "fragile" and v.robustness["not_passed"] == ["float_order"]
    same = R.with_float_order(v, V.fig10a(_fig10_table(1)))
    assert same.robustness["label"] == "robust"
    flipped = R.with_float_order(v, replace(v, holds=False))
    assert flipped.robustness["label"] == "fragile"
    assert flipped.robustness["checks"]["float_order"]["detail"] == "second order: does not hold"


def test_an_undecided_verdict_is_not_robust_when_the_second_run_never_decided_it():
    # both read "undecided", but the second run's stage failed: nothing was compared
    table = _fig10_table()
    v = replace(R.robustness(V.fig10a, table, V.fig10a(table)), holds=False, undecided=True)
    decided = R.with_float_order(v, replace(v, reason="undecided on its own data"))
    assert decided.robustness["checks"]["float_order"]["passed"] is True
    failed = R.with_float_order(v, V.Verdict("fig10a", False, "stage fig10 failed: RunError: x", {"stage_failed": True},
                                             {}, undecided=True))
    assert failed.robustness["checks"]["float_order"]["passed"] is None
    assert failed.robustness["label"] == "fragile" and "stage failed" in failed.robustness["checks"]["float_order"]["detail"]


def test_leave_one_seed_out_catches_a_verdict_carried_by_one_seed():
    # a flat ratio for one seed; the other rises steeply across it: with both fig10a holds, without
    # the steep one it does not
    flat = replace(FIG10, seeds=2, slope=0.0, noise_sd=0.3)
    table = C.simulate(flat, "hypothesis", 2)
    steep = table["seed"] == 0
    x = np.log(table.loc[steep, "D"])
    table.loc[steep, "ratio"] = np.exp(flat.intercept + 10 * (x - np.log(table["D"]).mean()))
    v = V.fig10a(table, min_seeds_per_D=2)
    checked = R.robustness(V.fig10a, table, v, min_seeds_per_D=1)
    loso = checked.robustness["checks"]["leave_one_seed_out"]
    assert v.holds and loso["passed"] is False
    assert loso["outcomes"]["0"] != "holds"


def test_margin_check_fails_a_statistic_within_one_standard_error():
    near = verdict("k", [], [], {}, {}, criteria=[criterion("x", 1.5, 1.0, 1.0, "above")])
    far = verdict("k", [], [], {}, {}, criteria=[criterion("x", 3.5, 1.0, 1.0, "above")])
    assert R.margin(near)["passed"] is False and R.margin(far)["passed"] is True
    # does not hold: the clearest failure decides
    failing = verdict("k", ["p"], [], {}, {}, criteria=[criterion("x", 0.8, 1.0, 1.0, "above"),
                                                          criterion("y", -2.0, 1.0, 1.0, "above")])
    assert R.margin(failing)["passed"] is True
    assert R.margin(verdict("k", [], [], {}, {}))["passed"] is False   # nothing recorded


def test_margin_takes_the_jackknife_error_where_a_statistic_has_none():
    v = verdict("k", [], [], {}, {}, criteria=[criterion("x", 2.0, 1.0, math.nan, "above")])
    assert R.margin(v, jackknife={"x": 0.5})["passed"] is True
    assert R.margin(v, jackknife={"x": 2.0})["passed"] is False
    assert R.jackknife_se({"x": [1.0, 1.0, 1.0]}, 3) == {"x": 0.0}
    assert R.jackknife_se({"x": [1.0, 2.0]}, 3) == {}    # a subset without it: no jackknife


def test_one_seed_is_fragile():
    table = _fig10_table()
    one = table[table["seed"] == 0]
    v = R.robustness(V.fig10a, one, V.fig10a(one, min_seeds_per_D=1))
    assert v.robustness["checks"]["seeds"]["passed"] is False
    assert v.robustness["checks"]["leave_one_seed_out"]["passed"] is False


def test_counted_runs_from_one_seed_are_fragile():
    v = verdict("P4", [], [], {"count_seeds": 1}, {})
    table = pd.DataFrame({"seed": [0, 1, 2]})
    assert R.seeds(table, v)["passed"] is False
    assert R.seeds(table, replace(v, numbers={"count_seeds": 2}))["passed"] is True


def test_undecided_has_no_threshold_to_be_near():
    v = verdict("k", [], [], {}, {}, undecided=["design"])
    assert R.margin(v)["passed"] is True


def test_the_report_names_the_deciding_number_with_the_jackknife_margin():
    from circeff.report import deciding_text, robust_text

    v = verdict("k", [], [], {}, {}, criteria=[criterion("delta BIC", 120.0, 10.0, math.nan, "above"),
                                               criterion("jump", 0.9, 0.5, 0.1, "above")])
    assert deciding_text(v) == "jump: 0.9 vs 0.5 (4 SE)"
    checked = replace(v, robustness={"label": "fragile", "not_passed": ["float_order"],
                                     "checks": {"margin": {"margins_se": {"delta BIC": 2.0, "jump": 4.0}}}})
    assert deciding_text(checked) == "delta BIC: 120 vs 10 (2 SE)"
    assert robust_text(checked.robustness) == "fragile (float order)"
    assert robust_text(None) == "not checked"


def test_P2_P3_decided_while_D_crit_moves_with_the_budget_are_fragile():
    # a robust verdict (every check passed), then the decay-budget check added
    table = _fig10_table()
    robust = R.with_float_order(R.robustness(V.fig10a, table, V.fig10a(table)), V.fig10a(_fig10_table(1)))
    assert robust.robustness["label"] == "robust"
    efolds = [3.0, 9.0, 27.0, 81.0]
    settled = R.decay_budget(efolds, [140.0, 143.0, 144.0, 144.5], 3.0, 0.05)
    assert settled["passed"] is True and settled["max_drift_seen"] == pytest.approx(144.5 / 140 - 1)
    assert R.with_check(robust, "decay_budget", settled).robustness["label"] == "robust"
    # the full run's measured drift: +13% from 3 to 9 e-folds
    moving = R.decay_budget(efolds, [116.8, 132.1, 142.6, 150.0], 3.0, 0.05)
    assert moving["passed"] is False and "+13.1% at 9" in moving["detail"]
    fragile = R.with_check(robust, "decay_budget", moving).robustness
    assert fragile["label"] == "fragile" and fragile["not_passed"] == ["decay_budget"]
    # converged from 27 on, but the verdict was decided at 3: still fragile; decided at 27: not
    assert R.decay_budget(efolds, [116.8, 132.1, 142.6, 144.0], 27.0, 0.05)["passed"] is True
    # a drift downwards counts as much as one upwards, and just past the bound fails
    assert R.decay_budget([3.0, 9.0], [100.0, 94.9], 3.0, 0.05)["passed"] is False
    assert R.decay_budget([3.0, 9.0], [100.0, 95.1], 3.0, 0.05)["passed"] is True


def test_decay_budget_not_measured_is_not_a_pass():
    for efolds, d, at in (([3.0], [120.0], 3.0), ([3.0, 9.0], [120.0, 130.0], 9.0), ([9.0, 27.0], [1.0, 1.0], 3.0),
                          ([3.0, 9.0], [math.nan, 130.0], 3.0), ([], [], 3.0)):
        check = R.decay_budget(efolds, d, at, 0.05)
        assert check["passed"] is None and "not measured" in check["detail"]
    table = _fig10_table()
    robust = R.with_float_order(R.robustness(V.fig10a, table, V.fig10a(table)), V.fig10a(_fig10_table(1)))
    assert R.with_check(robust, "decay_budget", R.decay_budget([], [], 3.0, 0.05)).robustness["label"] == "fragile"
