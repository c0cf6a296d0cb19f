"""Lemmas D.2 (subadditivity) and D.3 (power-derivative bound, printed and corrected)."""

from __future__ import annotations

import numpy as np
from hypothesis import given
from hypothesis import strategies as st

from circeff.theory.power_derivative import (
    corrected_delta,
    corrected_gap,
    printed_gap,
    symbolic_D3,
    symbolic_D3_printed,
)
from circeff.theory.results import Status
from circeff.theory.subadditivity import subadditivity_gap, symbolic_D2

nonneg = st.floats(0.0, 100.0)


@given(nonneg, nonneg, st.floats(1e-3, 1.0))
def test_D2_subadditivity(x, y, r):
    gap = float(subadditivity_gap(x, y, r))
    assert gap >= -1e-12 * max(1.0, (x + y) ** r)


@given(st.floats(0.01, 100.0), st.floats(0.01, 100.0), st.floats(1e-3, 0.99))
def test_D2_strict_for_positive_arguments_and_r_below_1(x, y, r):
    assert float(subadditivity_gap(x, y, r)) > 0


@given(st.floats(0.1, 10.0), st.floats(0.1, 10.0), st.floats(1.01, 4.0))
def test_D2_fails_for_r_above_1(x, y, r):
    """Dropping r <= 1: (x + y)^r > x^r + y^r for every x, y > 0."""
    assert float(subadditivity_gap(x, y, r)) < 0


def test_D2_symbolic_proved():
    res = symbolic_D2()
    assert res.status is Status.PROVED, res.detail
    assert all(f["sympy"] is True for f in res.data["facts"])


@given(st.floats(1e-9, 1.0))
def test_D3_printed_counterexample_at_every_delta(delta):
    """eps = 0, x = 1, r = 2, c = 1: LHS 0, RHS delta > 0; eps = delta/4 fails as well."""
    assert printed_gap(1.0, 2.0, 1.0, delta, 0.0) < 0
    assert printed_gap(1.0, 2.0, 1.0, delta, delta / 4) < 0


def test_D3_printed_refuted_symbolically():
    res = symbolic_D3_printed()
    assert res.status is Status.REFUTED
    cx = res.counterexample
    assert (cx["eps"], cx["x"], cx["r"], cx["c"]) == (0, 1, 2, 1)


@given(st.floats(0.05, 20.0), st.floats(1.0, 5.0), st.floats(1e-3, 10.0),
       st.floats(1e-6, 1 - 1e-6))
def test_D3_corrected_bound_holds_below_delta(x, r, c, frac):
    delta = corrected_delta(x, r, c)
    assert 0 < delta <= x
    assert float(corrected_gap(x, r, c, frac * delta)) > 0


@given(st.floats(0.05, 20.0), st.floats(1.05, 5.0), st.floats(1e-3, 10.0))
def test_D3_delta_is_where_the_derivative_vanishes(x, r, c):
    """g' > 0 just below delta and <= 0 just above it (up to 1e-12 x: the root can sit
    within 1e-20 of x, closer than the float grid resolves)."""
    def dg(e):
        return r * (x - e) ** (r - 1) - r * x ** (r - 1) + c

    delta = corrected_delta(x, r, c)
    tol = 1e-9 * max(1.0, r * x ** (r - 1))
    assert dg(delta * (1 - 1e-9)) > -tol
    if delta < x:
        assert dg(min(x, delta + 1e-12 * x)) <= tol


@given(st.floats(0.2, 5.0), st.floats(1.05, 4.0), st.floats(1e-4, 0.5))
def test_D3_without_c_fails(x, r, frac):
    """Dropping c > 0 (c = 0): convexity of t^r makes g(eps) < 0 for every eps > 0."""
    assert float(corrected_gap(x, r, 0.0, frac * x)) < 0


def test_D3_symbolic_proved():
    assert symbolic_D3().status is Status.PROVED
