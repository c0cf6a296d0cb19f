"""The trajectory describer of the P4 figure on constructed trajectories whose class is known
(the P4 rule itself is tested in tests/analysis/test_verdicts.py)."""

from __future__ import annotations

import json

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from scipy.special import expit

from circeff.analysis.semigrok import (
    SemiGrokThresholds,
    classify_runs,
    classify_trajectory,
)
from circeff.errors import ConfigError
from tests.strategies.analysis import trajectory, trajectory_rows

EXPECTED = {"grok": "grokked", "semi": "semi", "none": "ungeneralised", "transient": "grokked",
            "early_middling": "unsettled", "wobbly": "unsettled"}


def test_P4_classifier_labels_constructed_trajectories():
    classes = {c.run.split("-", 1)[1]: c for c in classify_runs(trajectory_rows(list(EXPECTED)))}
    assert {k: c.label for k, c in classes.items()} == EXPECTED
    assert classes["transient"].transient_plateau
    assert classes["transient"].plateau_level == pytest.approx(0.6, abs=0.05)
    assert not classes["semi"].transient_plateau
    assert not classes["grok"].transient_plateau
    assert classes["semi"].delayed and not classes["early_middling"].delayed
    assert classes["semi"].final_acc == pytest.approx(0.6, abs=0.02)


@given(level=st.floats(0.25, 0.85), noise=st.floats(0.0, 0.02), seed=st.integers(0, 10_000))
def test_P4_delayed_middling_plateau_is_semi(level, noise, seed):
    c = classify_trajectory(np.arange(400), trajectory("semi", level=level, noise_sd=noise, seed=seed))
    assert c.label == "semi"
    assert c.final_acc == pytest.approx(level, abs=0.03)


@given(level=st.floats(0.25, 0.7), noise=st.floats(0.0, 0.02), seed=st.integers(0, 10_000))
def test_P4_plateau_then_full_generalisation_is_a_transient_grok(level, noise, seed):
    acc = trajectory("transient", level=level, noise_sd=noise, seed=seed)
    c = classify_trajectory(np.arange(400), acc)
    assert c.label == "grokked"
    assert c.transient_plateau
    assert c.plateau_level == pytest.approx(level, abs=0.05)
    assert 0 < c.plateau_start < c.plateau_end < 400


@given(t0=st.floats(1.0, 1e6), scale=st.floats(1e-2, 1e4))
def test_P4_labels_do_not_depend_on_step_units_or_offset(t0, scale):
    acc = trajectory("semi", seed=1)
    base = classify_trajectory(np.arange(acc.size), acc)
    moved = classify_trajectory(t0 + scale * np.arange(acc.size), acc)
    assert moved.label == base.label
    assert moved.final_acc == pytest.approx(base.final_acc)


def test_P4_log_spaced_evaluations_use_the_step_span_not_the_point_count():
    # evaluations every power of ten: most points are early, but the tail is the last 20% of steps
    step = np.unique(np.round(np.geomspace(1, 1e6, 200)))
    acc = 0.01 + 0.59 * expit((np.log10(step) - 5.5) / 0.05)  # rises at step 3e5
    c = classify_trajectory(step, acc)
    assert c.final_acc == pytest.approx(0.6, abs=0.01)
    assert c.label == "semi"


def test_P4_thresholds_are_parameters():
    acc = trajectory("semi", level=0.6, seed=2)
    step = np.arange(acc.size)
    assert classify_trajectory(step, acc).label == "semi"
    narrow = SemiGrokThresholds(band=(0.7, 0.9))
    assert classify_trajectory(step, acc, thresholds=narrow).label == "ungeneralised"
    late = SemiGrokThresholds(min_delay_fraction=0.5)  # the rise at 40% is no longer late enough
    assert classify_trajectory(step, acc, thresholds=late).label == "unsettled"


def test_P4_a_spike_is_not_a_transient_plateau():
    acc = trajectory("semi", level=0.5, seed=3)
    acc[250:255] = 1.0  # a brief spike up and back, as in the paper's Figure 1(c)
    c = classify_trajectory(np.arange(acc.size), acc)
    assert c.label == "semi"
    assert not c.transient_plateau


@pytest.mark.parametrize(("kwargs", "field"), [
    ({"band": (0.9, 0.2)}, "band"), ({"grokked_at": 1.5}, "grokked_at"),
    ({"tail_fraction": 0.0}, "tail_fraction"), ({"smooth": 0}, "smooth"),
    ({"patience": 0}, "patience"),
])
def test_P4_bad_thresholds_are_one_line_errors(kwargs, field):
    with pytest.raises(ConfigError) as exc:
        SemiGrokThresholds(**kwargs)
    assert exc.value.field == field
    assert "\n" not in str(exc.value)


def test_P4_bad_rows_are_one_line_errors():
    rows = trajectory_rows(["semi"])
    with pytest.raises(ConfigError) as exc:
        classify_runs(rows.drop(columns=["test_acc"]))
    assert exc.value.field == "test_acc"
    with pytest.raises(ConfigError) as exc:
        classify_runs(rows.assign(test_acc=2.0))
    assert exc.value.field == "test_acc"
    with pytest.raises(ConfigError) as exc:
        classify_runs(rows.head(2))
    assert exc.value.field == "step"
