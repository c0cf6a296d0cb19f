"""The one classifier of a run's trajectory (P4) on constructed trajectories whose class is
known; the P4 rule's count and interval are tested in tests/analysis/test_verdicts.py."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from scipy.special import expit

from circeff.analysis.semigrokking import P4Rule, classify_run, classify_runs
from circeff.errors import ConfigError
from tests.strategies.analysis import trajectory, trajectory_rows

CHANCE = 0.01  # the constructed trajectories start at 0.01
# the constructed transient run's second rise (at 75% of its steps) falls inside the last third,
# so it is still moving there: unsettled, with its transient plateau marked
EXPECTED = {"grok": "grokked", "semi": "semi", "none": "ungeneralised", "transient": "unsettled"}


def _classify(step, acc, rule=P4Rule()):
    return classify_run(step, np.ones_like(np.asarray(acc, float)), acc, CHANCE, rule)


def test_P4_classifier_labels_constructed_trajectories():
    rows = trajectory_rows(list(EXPECTED))
    kinds = dict(zip(rows["run"], rows["kind"]))
    classes = {kinds[c.run]: c for c in classify_runs(rows, CHANCE)}
    assert {k: c.label for k, c in classes.items()} == EXPECTED
    assert classes["transient"].transient
    assert classes["transient"].plateau_level == pytest.approx(0.6, abs=0.05)
    assert not classes["semi"].transient and not classes["grok"].transient
    assert np.isnan(classes["semi"].plateau_start)
    assert classes["semi"].final_test_acc == pytest.approx(0.6, abs=0.02)


# levels inside the band (0.2, 0.8) of chance-scaled accuracy with room for the noise: a raw 0.8
# is 0.79 scaled, so a noisy tail could sit on either side of the band's edge (found by hypothesis)
@given(level=st.floats(0.25, 0.75), noise=st.floats(0.0, 0.02), seed=st.integers(0, 10_000))
def test_P4_delayed_middling_plateau_is_semi(level, noise, seed):
    c = _classify(np.arange(400), trajectory("semi", level=level, noise_sd=noise, seed=seed))
    assert c.label == "semi"
    assert c.final_test_acc == pytest.approx(level, abs=0.03)


@given(level=st.floats(0.3, 0.7), noise=st.floats(0.0, 0.02), seed=st.integers(0, 10_000))
def test_P4_plateau_then_full_generalisation_is_a_transient_plateau(level, noise, seed):
    c = _classify(np.arange(400), trajectory("transient", level=level, noise_sd=noise, seed=seed))
    assert c.label != "semi"
    assert c.transient
    assert c.plateau_level == pytest.approx(level, abs=0.05)
    assert 0 < c.plateau_start < c.plateau_end < 400


@given(scale=st.floats(1e-2, 1e4))
def test_P4_labels_do_not_depend_on_step_units(scale):
    # steps count from initialisation (the delay is a ratio of steps), so only their unit is free
    acc = trajectory("semi", seed=1)
    base = _classify(np.arange(acc.size), acc)
    moved = _classify(scale * np.arange(acc.size), acc)
    assert moved.label == base.label
    # rounding may move one evaluation across the tail's edge: equal to that one point's weight
    assert moved.final_test_acc == pytest.approx(base.final_test_acc, abs=1e-3)


def test_P4_log_spaced_evaluations_use_the_step_span_not_the_point_count():
    # most evaluations are early, but the tail is the last third of the steps
    step = np.unique(np.round(np.geomspace(1, 1e6, 200)))
    acc = 0.01 + 0.59 * expit((np.log10(step) - 5.5) / 0.05)  # rises at step 3e5, before the tail
    c = _classify(step, acc)
    assert c.final_test_acc == pytest.approx(0.6, abs=0.01)
    assert c.label == "semi"


def test_P4_thresholds_are_parameters():
    acc = trajectory("semi", level=0.6, seed=2)
    step = np.arange(acc.size)
    assert _classify(step, acc).label == "semi"
    assert _classify(step, acc, P4Rule(band=(0.7, 0.9))).label == "ungeneralised"
    assert _classify(step, acc, P4Rule(min_train_acc=1.0)).label == "semi"
    # memorised at step 50, test onset at step 150: a delay ratio of 3
    late_fit = np.where(step < 50, 0.5, 1.0)
    c = classify_run(step, late_fit, acc, CHANCE)
    assert (c.label, c.memorised_step, c.onset_step) == ("semi", 50, 150)
    assert classify_run(step, late_fit, acc, CHANCE, P4Rule(min_delay_ratio=3.5)).label == "no_delay"


def test_P4_a_run_that_does_not_fit_its_training_set_is_not_semi():
    acc = trajectory("semi", level=0.6, seed=4)
    c = classify_run(np.arange(acc.size), np.full(acc.size, 0.9), acc, CHANCE)
    assert c.label == "unsettled"


def test_P4_too_few_tail_evaluations_is_a_one_line_error():
    with pytest.raises(ConfigError) as exc:
        _classify(np.arange(5), np.full(5, 0.5))
    assert exc.value.field == "step"
    assert "\n" not in str(exc.value)
