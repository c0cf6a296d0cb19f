"""The vectorised simulation: Table 1 defaults, validation, the hand-written step against
the reference gradient, independence of batch members, recording steps, divergence."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from numpy.testing import assert_allclose

from circeff.errors import ConfigError, RunError
from circeff.toy import circuits
from circeff.toy.simulate import (OVERFLOW_BOUND, ToyConfig, _advance, _BatchParams, record_steps,
                                  simulate, simulate_one)
from tests.strategies.toy import BAD_VALUES


def test_toy_defaults_are_table1():
    c = ToyConfig()
    assert (c.n_classes, c.P_G, c.P_M, c.kappa, c.q) == (113, 1.0, 2.0, 1.2, 2.0)
    assert (c.alpha, c.lr) == (0.005, 0.01)
    assert c.initial_subweights == (0.0, 0.005, 0.0, 1.0)


@pytest.mark.parametrize(("field", "value"), BAD_VALUES)
def test_toy_config_refuses_bad_values_naming_the_field(field, value):
    with pytest.raises(ConfigError) as info:
        ToyConfig(**{field: value})
    assert info.value.field == field
    assert "\n" not in str(info.value)


def test_toy_singular_gradient_kappa_above_q_is_refused_without_smoothing():
    with pytest.raises(ConfigError) as info:
        ToyConfig(q=2.0, kappa=3.0)
    assert info.value.field == "kappa"
    assert "singular" in str(info.value)


def test_toy_singular_gradient_treatment_with_smoothing_stays_finite():
    # kappa > q is allowed with wd_eps > 0; starting at w_G1 = w_M1 = 0 (the singular point)
    run = simulate(ToyConfig(q=2.0, kappa=3.0, wd_eps=1e-3, w_G2=1.0, steps=5000))
    assert not run.diverged(0)
    assert np.isfinite(run.test_loss).all() and np.isfinite(run.final_subweights).all()


def test_toy_boundary_q_equals_kappa_needs_no_smoothing():
    run = simulate(ToyConfig(q=1.2, kappa=1.2, steps=2000))
    assert np.isfinite(run.train_loss).all()


@given(st.integers(1, 10**7), st.integers(2, 400))
def test_toy_record_steps_are_log_spaced_and_include_both_ends(steps, n_record):
    rec = record_steps(steps, n_record)
    assert rec[0] == 0 and rec[-1] == steps
    assert (np.diff(rec) > 0).all()
    assert rec.size <= n_record + 1


configs = st.builds(
    ToyConfig, n_classes=st.integers(2, 200), P_G=st.floats(0.2, 4.0), P_M=st.floats(0.2, 4.0),
    kappa=st.floats(0.5, 2.0), q=st.floats(2.0, 4.0), alpha=st.floats(0.0, 0.2),
    lr=st.floats(1e-3, 0.1), wd_eps=st.sampled_from([0.0, 1e-3]))
states = st.lists(st.floats(-4.0, 4.0), min_size=4, max_size=4)


@given(st.lists(st.tuples(configs, states), min_size=1, max_size=5))
def test_toy_vectorised_step_is_gradient_descent_on_the_reference_gradient(batch):
    cfgs = [c for c, _ in batch]
    state = np.array([s for _, s in batch], dtype=np.float64)       # [B, 4]
    expected = np.array([
        np.asarray(s) - c.lr * circuits.subweight_grad(
            s, n_classes=c.n_classes, P_G=c.P_G, P_M=c.P_M, kappa=c.kappa, q=c.q, alpha=c.alpha,
            wd_eps=c.wd_eps)
        for c, s in batch])
    work = np.empty((7, len(cfgs)))
    st_T = state.T.copy()
    _advance(st_T, _BatchParams(cfgs), 1, work)
    assert_allclose(st_T.T, expected, rtol=1e-12, atol=1e-13)


def test_toy_batch_members_do_not_interact():
    cfgs = [ToyConfig(steps=3000), ToyConfig(P_G=4.0, steps=3000), ToyConfig(w_G2=1.0, alpha=0.01, steps=3000)]
    together = simulate(cfgs)
    for i, c in enumerate(cfgs):
        alone = simulate(c)
        assert_allclose(together.test_loss[i], alone.test_loss[0], rtol=1e-13)
        assert_allclose(together.final_subweights[i], alone.final_subweights[0], rtol=1e-13)


def test_toy_initial_subweights_override_continues_a_run():
    first = simulate(ToyConfig(steps=1000))
    second = simulate(ToyConfig(steps=1000), initial_subweights=first.final_subweights)
    whole = simulate(ToyConfig(steps=2000))
    assert_allclose(second.final_subweights, whole.final_subweights, rtol=1e-12)


def test_toy_batch_must_share_steps_and_shapes():
    with pytest.raises(ConfigError) as info:
        simulate([ToyConfig(steps=10), ToyConfig(steps=20)])
    assert info.value.field == "steps"
    with pytest.raises(ConfigError) as info:
        simulate(ToyConfig(steps=10), initial_subweights=np.zeros((2, 4)))
    assert info.value.field == "initial_subweights"


def _scalar_divergence_step(c: ToyConfig) -> int | None:
    """A plain per-step reference: the first step after which a subweight is out of bounds."""
    sw = np.array(c.initial_subweights, dtype=np.float64)
    with np.errstate(all="ignore"):
        for t in range(1, c.steps + 1):
            sw = sw - c.lr * circuits.subweight_grad(sw, n_classes=c.n_classes, P_G=c.P_G, P_M=c.P_M,
                                                      kappa=c.kappa, q=c.q, alpha=c.alpha, wd_eps=c.wd_eps)
            if not (np.abs(sw) <= OVERFLOW_BOUND).all():
                return t
    return None


@pytest.mark.parametrize("lr", [30.0, 200.0, 5e3])
def test_toy_divergence_is_reported_with_its_step_and_no_nan_is_recorded(lr):
    bad = ToyConfig(lr=lr, w_G2=1.0, steps=600)
    good = ToyConfig(steps=600)
    run = simulate([good, bad])
    expected = _scalar_divergence_step(bad)
    assert expected is not None
    assert int(run.diverged_step[1]) == expected
    assert not run.diverged(0)
    rec = run.record(1)
    assert rec["diverged_step"] == expected
    assert all(t < expected for t in rec["steps"])
    assert all(math.isfinite(v) for key in ("train_loss", "test_loss", "w_G", "w_M") for v in rec[key])
    # the healthy member is untouched by its diverging neighbour
    assert_allclose(run.test_loss[0], simulate(good).test_loss[0], rtol=1e-13)
    with pytest.raises(RunError, match=f"step {expected}"):
        simulate_one(bad)


def test_toy_config_replace_validates_again():
    with pytest.raises(ConfigError):
        ToyConfig().replace(lr=-1.0)
    assert dataclasses.asdict(ToyConfig().replace(P_G=3.0))["P_G"] == 3.0
