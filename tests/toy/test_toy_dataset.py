"""Dataset size in the toy: the P_M(D) law and D_crit, ungrokking below D_crit, and the
stable middling mixture near D_crit when q > kappa (toy semi-grokking)."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from circeff.errors import ConfigError
from circeff.toy.dataset import (DatasetSizeLaw, SemigrokExperiment, UngrokExperiment, semigrok_data,
                                 ungrok_data)

laws = st.builds(DatasetSizeLaw, P_G=st.floats(0.2, 5.0), P_M_ref=st.floats(0.2, 5.0),
                 D_ref=st.floats(10.0, 1e6), beta=st.floats(0.1, 2.0))


@given(laws)
def test_toy_dataset_law_crossover_is_closed_form(law):
    assert math.isclose(float(law.P_M(law.D_crit)), law.P_G, rel_tol=1e-9)


@given(laws, st.floats(1.0, 1e5), st.floats(1.01, 10.0))
def test_toy_dataset_memorisation_norm_grows_with_D(law, D, factor):
    assert law.P_M(D * factor) > law.P_M(D)
    # G's side of the crossover: below D_crit memorising is cheaper, above it is dearer
    assert (law.P_M(D) < law.P_G) == (D < law.D_crit) or math.isclose(D, law.D_crit, rel_tol=1e-9)


def test_toy_dataset_law_refuses_bad_values():
    with pytest.raises(ConfigError) as info:
        DatasetSizeLaw(beta=0.0)
    assert info.value.field == "beta"
    with pytest.raises(ConfigError) as info:
        DatasetSizeLaw().P_M(-1.0)
    assert info.value.field == "D"


def test_toy_ungrokking_below_D_crit_and_not_above():
    data = ungrok_data(UngrokExperiment(pretrain_steps=30_000, steps=40_000, d_ratios=(0.25, 0.5, 2.0, 4.0)))
    half_chance = 0.5 * data["chance_loss"]
    pre = data["pretrain"]
    assert pre["test_loss"][-1] < 0.1 * half_chance            # grokked before the switch
    by_ratio = {r["d_ratio"]: r for r in data["runs"]}
    for ratio in (0.25, 0.5):                                     # D < D_crit: test loss rises again
        assert by_ratio[ratio]["final_test_loss"] > half_chance
        assert by_ratio[ratio]["final_test_loss"] > 20 * by_ratio[ratio]["start_test_loss"]
    for ratio in (2.0, 4.0):                                      # D > D_crit: stays grokked
        assert by_ratio[ratio]["final_test_loss"] < half_chance
    finals = [by_ratio[r]["final_test_loss"] for r in (0.25, 0.5, 2.0, 4.0)]
    assert (np.diff(finals) < 0).all()


def test_toy_semigrokking_is_a_stable_middling_mixture_near_D_crit():
    exp = SemigrokExperiment(steps=120_000, d_ratios=(0.5, 1.0, 2.0))
    data = semigrok_data(exp)
    mix = {r["d_ratio"]: r for r in data["mixture"]}
    grokked, middling, memorised = (mix[r]["final_test_loss"] for r in (2.0, 1.0, 0.5))
    assert grokked < middling < memorised
    # clearly neither end: at least twice the grokked loss and at most half the memorised one
    assert middling > 2 * grokked and middling < 0.5 * memorised
    assert mix[1.0]["settle_change"] < 1e-3 * middling            # stable, not in transit
    assert 0.2 < mix[1.0]["final_G_share"] < 0.8                  # a genuine mixture
    assert mix[1.0]["grokking_step"] is not None and mix[1.0]["grokking_step"] > 10 * mix[1.0]["fit_step"]
