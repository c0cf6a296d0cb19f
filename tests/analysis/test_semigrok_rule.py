"""The P4 rule as the paper defines semi-grokking (memorised first, a delay, then a middling
plateau, in two runs of distinct seeds and sizes), each negative control seen to fail through
the same function, the design's power, and the threshold bracket D_down <= D_cross <= D_up."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from hypothesis import given
from hypothesis import strategies as st
from scipy.special import expit

from circeff.analysis import verdicts as V
from circeff.analysis.semigrokking import (P4Rule, classify_run, from_scratch_threshold, p4, p4_power,
                                           threshold_bracket, timescales)
from circeff.analysis.stats import Interval
from circeff.errors import ConfigError

CHANCE = 1 / 31
STEPS = np.arange(0, 12_001, 50, dtype=float)
T = STEPS / STEPS[-1]
TRAIN = np.clip(expit((STEPS - 150) / 20), 0, 1)     # memorised near step 150, as in the pilot


def _semi(level=0.5, onset=0.3):
    return CHANCE + (level - CHANCE) * expit((T - onset) / 0.02)


def _table(runs):
    """Rows of ``runs``: {(D, seed): test accuracy}; train accuracy TRAIN for every run."""
    return pd.concat([pd.DataFrame({"D": float(D), "seed": s, "step": STEPS, "train_acc": TRAIN, "test_acc": acc})
                      for (D, s), acc in runs.items()], ignore_index=True)


def _flat():
    return np.full(STEPS.size, CHANCE + 0.005)


def test_P4_timescales_read_memorisation_onset_and_plateau():
    t = timescales(STEPS, TRAIN, _semi(onset=0.3), CHANCE)
    assert t.memorised_step == pytest.approx(250, abs=50)
    assert t.onset_step == pytest.approx(0.3 * 12_000, abs=300)   # the first 0.1 of the rise
    assert t.delay_ratio > 10
    assert t.final_scaled == pytest.approx((0.5 - CHANCE) / (1 - CHANCE), abs=1e-3)
    assert abs(t.tail_change) < 1e-3


def test_P4_delayed_middling_plateau_is_semi():
    assert classify_run(STEPS, TRAIN, _semi(), CHANCE).label == "semi"


def test_P4_negative_control_still_rising_run_is_not_semi():
    rising = CHANCE + (0.5 - CHANCE) * T       # ends middling, but still rising
    c = classify_run(STEPS, TRAIN, rising, CHANCE)
    assert c.label == "unsettled" and c.tail_change > 0.05


def test_P4_negative_control_middling_with_the_training_set_has_no_delay():
    together = CHANCE + (0.5 - CHANCE) * expit((STEPS - 150) / 20)   # test rises with train
    c = classify_run(STEPS, TRAIN, together, CHANCE)
    assert c.label == "no_delay"
    # and one that rises soon after, within twice the memorisation step
    soon = CHANCE + (0.5 - CHANCE) * expit((STEPS - 280) / 10)
    assert classify_run(STEPS, TRAIN, soon, CHANCE).label == "no_delay"
    # middling already when the training set is fitted, a later second rise to another middling
    # level does not make it semi-grokking: it did not memorise first
    early = CHANCE + (0.3 - CHANCE) * expit((STEPS - 60) / 10)
    two_step = early + (0.55 - 0.3) * expit((T - 0.3) / 0.02)
    c = classify_run(STEPS, TRAIN, two_step, CHANCE)
    assert c.delay_ratio >= 2 and c.label == "no_delay"


# the count logic on three-run tables, with the power gate off (such a design has no power)
COUNT_ONLY = P4Rule(min_power=0.0)


def test_P4_negative_control_a_single_semi_run_does_not_hold():
    v = p4(_table({(300, 0): _semi(), (320, 1): _flat(), (340, 2): _flat()}), CHANCE, rule=COUNT_ONLY)
    assert v.numbers["n_semi"] == 1 and v.outcome == "does not hold"
    assert "at least 2" in v.reason


def test_P4_two_semi_runs_of_one_seed_or_one_size_do_not_hold():
    one_seed = p4(_table({(300, 0): _semi(), (320, 0): _semi(0.6), (340, 1): _flat()}), CHANCE, rule=COUNT_ONLY)
    one_size = p4(_table({(300, 0): _semi(), (300, 1): _semi(0.6), (340, 2): _flat()}), CHANCE, rule=COUNT_ONLY)
    assert one_seed.numbers["n_semi"] == one_size.numbers["n_semi"] == 2
    assert one_seed.outcome == one_size.outcome == "does not hold"


def _grid(n_sizes: int, n_seeds: int, semi: set[tuple[int, int]]) -> pd.DataFrame:
    return _table({(300 + 20 * i, j): (_semi() if (i, j) in semi else _flat())
                   for i in range(n_sizes) for j in range(n_seeds)})


def test_P4_too_few_semi_runs_say_does_not_hold_only_where_the_design_had_the_power():
    # the quick design (4 sizes x 4 seeds: power 0.37 at a per-run rate of 0.1) cannot show absence
    small = p4(_grid(4, 4, {(0, 0)}), CHANCE)
    assert small.outcome == "undecided" and small.numbers["power_at_rule_rate"] == pytest.approx(
        p4_power(4, 4, 0.1)) and "cannot show" in small.reason
    # the full design (8 sizes x 5 seeds: power 0.87) can
    large = p4(_grid(8, 5, {(0, 0)}), CHANCE)
    assert large.outcome == "does not hold" and large.numbers["power_at_rule_rate"] == pytest.approx(0.871, abs=1e-3)
    # the gate never turns a holding verdict into anything else, and its threshold is a parameter
    assert p4(_grid(4, 4, {(0, 0), (1, 1)}), CHANCE).outcome == "holds"
    assert p4(_grid(4, 4, {(0, 0)}), CHANCE, rule=P4Rule(min_power=0.3)).outcome == "does not hold"
    assert p4(_grid(8, 5, {(0, 0)}), CHANCE, rule=P4Rule(power_rate=0.05)).outcome == "undecided"


def test_P4_two_semi_runs_of_distinct_seeds_and_sizes_hold():
    v = p4(_table({(300, 0): _semi(), (320, 1): _semi(0.6), (340, 2): _flat()}), CHANCE)
    assert v.holds, v.reason
    assert v.numbers["counts"]["semi"] == 2 and v.numbers["counts"]["ungeneralised"] == 1


def test_P4_transient_plateau_is_counted_separately():
    transient = _semi(0.5, 0.2) + (1 - 0.5) * expit((T - 0.5) / 0.02)
    v = p4(_table({(300, 0): transient, (320, 1): _semi(), (340, 2): _flat()}), CHANCE)
    assert v.numbers["n_transient"] == 1 and v.numbers["counts"]["grokked"] == 1
    assert v.numbers["transient_runs"][0]["D"] == 300
    assert not v.holds          # a transient plateau does not count as semi-grokked
    assert p4(_table({(300, 0): transient, (320, 1): _semi(), (340, 2): _flat()}), CHANCE,
              rule=COUNT_ONLY).outcome == "does not hold"


@given(p=st.floats(0.0, 1.0), n_sizes=st.integers(1, 6), n_seeds=st.integers(1, 5))
def test_P4_power_is_a_probability_and_zero_without_two_seeds_or_sizes(p, n_sizes, n_seeds):
    power = p4_power(n_sizes, n_seeds, p)
    assert 0 <= power <= 1
    if n_sizes == 1 or n_seeds == 1:
        assert power == pytest.approx(0, abs=1e-12)


def test_P4_power_matches_simulation_of_the_rule():
    rng = np.random.default_rng(0)
    n_sizes, n_seeds, p, n = 8, 5, 0.05, 4000
    hits = 0
    for _ in range(n):
        semi = rng.random((n_sizes, n_seeds)) < p
        runs = [(i, j) for i in range(n_sizes) for j in range(n_seeds) if semi[i, j]]
        hits += any(a[0] != b[0] and a[1] != b[1] for a in runs for b in runs)
    assert p4_power(n_sizes, n_seeds, p) == pytest.approx(hits / n, abs=3 * math.sqrt(0.25 / n))
    # the design's stated numbers
    assert p4_power(8, 5, 0.05) == pytest.approx(0.515, abs=0.001)
    assert p4_power(8, 5, 0.10) == pytest.approx(0.871, abs=0.001)


def test_P4_rule_settings_are_checked_with_one_line_errors():
    for kwargs, field in (({"band": (0.8, 0.2)}, "band"), ({"min_delay_ratio": 0.5}, "min_delay_ratio"),
                          ({"min_semi": 1}, "min_semi"), ({"max_tail_change": 0.0}, "max_tail_change"),
                          ({"power_rate": 0.0}, "power_rate"), ({"min_power": 1.5}, "min_power")):
        with pytest.raises(ConfigError) as exc:
            P4Rule(**kwargs)
        assert exc.value.field == field and "\n" not in str(exc.value)


def _iv(value, lo, hi):
    return Interval(value, lo, hi, 0.95, "test")


def test_bracket_holds_in_order_and_fails_when_reversed():
    ok = threshold_bracket(_iv(100, 90, 110), _iv(150, 120, 180), _iv(300, 280, 320))
    assert ok["D_down <= D_cross"] == ok["D_cross <= D_up"] == ok["D_down <= D_up"] == "holds"
    reversed_ = threshold_bracket(_iv(300, 280, 320), _iv(150, 120, 180), _iv(100, 90, 110))
    assert reversed_["D_down <= D_cross"] == reversed_["D_cross <= D_up"] == "does not hold"
    # points reversed but intervals overlapping: the data cannot tell
    close = threshold_bracket(_iv(160, 120, 200), _iv(150, 120, 180), None)
    assert close["D_down <= D_cross"] == "undecided" and close["D_cross <= D_up"] == "undecided"
    # a censored D_up (no run grokked up to 400) still orders against a finite D_down
    censored = threshold_bracket(_iv(100, 90, 110), None, _iv(math.nan, 400, math.inf))
    assert censored["D_down <= D_up"] == "holds"
    assert V.threshold_bracket is threshold_bracket


def _classes(final_by_D):
    rows = {(D, s): np.full(STEPS.size, CHANCE + (1 - CHANCE) * f) for D, fs in final_by_D.items()
            for s, f in enumerate(fs)}
    from circeff.analysis.semigrokking import classify_runs
    return classify_runs(_table(rows), CHANCE)


def test_from_scratch_threshold_is_censored_or_fitted():
    none, _, note = from_scratch_threshold(_classes({200: [0, 0], 300: [0, 0.02]}), CHANCE, n_boot=0)
    assert math.isnan(none.value) and none.lo == 300 and none.hi == math.inf and "above" in note
    every, _, _ = from_scratch_threshold(_classes({200: [1, 1], 300: [1, 1]}), CHANCE, n_boot=0)
    assert every.hi == 200
    fitted, est, note = from_scratch_threshold(
        _classes({200: [0, 0, 0], 250: [0, 0.02, 0], 300: [0.5, 0.4, 0.6], 350: [1, 1, 1], 400: [1, 1, 1]}),
        CHANCE, n_boot=50)
    assert note == "" and est is not None and 250 < fitted.value < 350
