"""The toy's circuits and losses (the paper's Section 3, Appendix C): closed forms against the logits, and
hand-written gradients against finite differences."""

from __future__ import annotations

import math

import numpy as np
from hypothesis import given
from hypothesis import strategies as st
from numpy.testing import assert_allclose


def approx_fprime(x, f, h):
    """Central differences (forward ones are too coarse where the smoothed cost bends at 0)."""
    x = np.asarray(x, dtype=np.float64)
    out = np.empty_like(x)
    for i in range(x.size):
        e = np.zeros_like(x)
        e[i] = h
        out[i] = (f(x + e) - f(x - e)) / (2 * h)
    return out

from circeff.toy import circuits

weights = st.floats(-20.0, 20.0)
n_classes = st.integers(2, 500)


@given(weights, weights, n_classes)
def test_toy_losses_are_cross_entropy_of_circuit_logits(w_G, w_M, n):
    train_logits = circuits.logits(w_G, w_M, "train", n)
    test_logits = circuits.logits(w_G, w_M, "test", n)
    assert_allclose(circuits.train_loss(w_G, w_M, n), circuits.cross_entropy(train_logits), rtol=1e-10, atol=1e-12)
    assert_allclose(circuits.test_loss(w_G, w_M, n), circuits.cross_entropy(test_logits), rtol=1e-10, atol=1e-12)


def test_toy_circuits_are_lookup_tables():
    n = 7
    assert circuits.generalising_circuit("train", n).tolist() == circuits.generalising_circuit("test", n).tolist()
    assert circuits.memorising_circuit("train", n)[circuits.TRUE_LABEL] == 1.0
    assert circuits.memorising_circuit("test", n)[circuits.WRONG_LABEL] == 1.0
    assert circuits.memorising_circuit("test", n)[circuits.TRUE_LABEL] == 0.0


def test_toy_losses_start_at_chance():
    for n in (2, 3, 113):
        assert math.isclose(float(circuits.train_loss(0.0, 0.0, n)), math.log(n), rel_tol=1e-12)
        assert math.isclose(float(circuits.test_loss(0.0, 0.0, n)), math.log(n), rel_tol=1e-12)


@given(st.floats(-30.0, 30.0), n_classes)
def test_toy_train_loss_grad_matches_finite_difference(s, n):
    numeric = approx_fprime([s], lambda x: float(circuits.train_loss(x[0], 0.0, n)), 1e-6)[0]
    assert_allclose(circuits.train_loss_grad(s, n), numeric, atol=1e-6)


params = st.fixed_dictionaries({
    "P": st.floats(0.2, 4.0), "kappa": st.floats(0.5, 3.0), "r": st.floats(0.3, 3.0),
    "alpha": st.floats(0.0, 0.5), "eps": st.sampled_from([1e-3, 1e-2, 0.1]),
})


@given(params, st.floats(-5.0, 5.0))
def test_toy_weight_decay_grad_matches_finite_difference(p, w):
    q = p["r"] * p["kappa"]
    eps = p["eps"]

    def cost(x):
        return float(circuits._norm_cost(x[0], p["P"], p["kappa"], q, p["alpha"], eps))

    numeric = approx_fprime([w], cost, 1e-6)[0]
    analytic = circuits.weight_decay_grad(w, p["P"], p["kappa"], q, p["alpha"], eps)
    assert_allclose(analytic, numeric, rtol=1e-4, atol=1e-5 + 1e-8 * abs(cost([w])))


@given(st.floats(0.2, 4.0), st.floats(0.5, 3.0), st.floats(1.0, 3.0))
def test_toy_weight_decay_grad_exact_form_is_zero_at_zero_weight_when_r_at_least_one(P, kappa, r):
    g = circuits.weight_decay_grad(0.0, P, kappa, r * kappa, 0.1)
    assert np.isfinite(g) and g == 0.0


@given(st.lists(st.floats(-3.0, 3.0), min_size=4, max_size=4), n_classes, params)
def test_toy_subweight_grad_matches_finite_difference(sw, n, p):
    kw = dict(n_classes=n, P_G=p["P"], P_M=1.5 * p["P"], kappa=p["kappa"], q=p["r"] * p["kappa"],
              alpha=p["alpha"], wd_eps=p["eps"])

    def loss(x):
        return float(circuits.total_loss(x[0] * x[1], x[2] * x[3], **kw))

    numeric = approx_fprime(np.asarray(sw), loss, 1e-6)
    # central differences lose about 1e-16 |L| / h to rounding: allow for it when L is large
    atol = 1e-4 + 1e-8 * abs(loss(np.asarray(sw)))
    assert_allclose(circuits.subweight_grad(sw, **kw), numeric, rtol=1e-4, atol=atol)
