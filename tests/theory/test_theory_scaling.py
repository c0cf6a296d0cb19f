"""Theorem D.1 (scaling a perfect classifier lowers the loss) as properties."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from scipy.special import log_softmax

from circeff.errors import ConfigError
from circeff.theory import check_D1_on_logits
from circeff.theory.results import Status
from circeff.theory.scaling import (
    cross_entropy,
    cross_entropy_of_margins,
    dloss_dc,
    margins,
    symbolic_D1,
    symbolic_D1_limit,
)
from tests.strategies.theory import misclassified_classifiers, perfect_classifiers


@given(perfect_classifiers(), st.floats(1.01, 50.0))
def test_D1_scaling_lowers_loss(clf, c):
    logits, labels = clf
    result = check_D1_on_logits(logits, labels, cs=(c,))
    assert result.perfect_accuracy and result.holds, result.detail
    before, after = cross_entropy(logits, labels), cross_entropy(c * logits, labels)
    assert after <= before
    if before > 1e-300:  # strict wherever float64 can still see it
        assert after < before or np.isclose(after, before, rtol=0, atol=1e-300)


@given(perfect_classifiers(), st.floats(0.05, 20.0))
def test_D1_dloss_dc_negative(clf, c):
    mg = margins(*clf)
    slope = dloss_dc(mg, c)
    assert slope < 0 or slope == 0.0 and cross_entropy_of_margins(mg, c) < 1e-300


@given(perfect_classifiers(min_margin=0.05, max_margin=5.0), st.floats(0.2, 5.0))
def test_D1_dloss_dc_matches_finite_difference(clf, c):
    mg = margins(*clf)
    h = 1e-6
    fd = (cross_entropy_of_margins(mg, c + h) - cross_entropy_of_margins(mg, c - h)) / (2 * h)
    np.testing.assert_allclose(dloss_dc(mg, c), fd, rtol=1e-5, atol=1e-10)


def _squeeze_holds(mg, c):
    """The limit's squeeze at scale c, where the loss is still a normal float:
    ``0 < L_x(cf) <= log(1 + K e^{-c mu})`` (mu the smallest margin, K wrong classes)."""
    mu, k = float(mg.min()), mg.shape[1]
    loss = cross_entropy_of_margins(mg, c)
    return 0 < loss <= np.log1p(k * np.exp(-c * mu)) * (1 + 1e-12)


@given(perfect_classifiers(min_margin=1e-2))
def test_D1_limit_loss_vanishes(clf):
    """At c = 5/mu and 30/mu (loss around e^-5 and e^-30, far from underflow) the loss is
    squeezed under log(1 + K e^{-c mu}), which -> 0, and it falls from one to the other.
    The negative control below shows the squeeze failing with one negative margin."""
    mg = margins(*clf)
    mu = float(mg.min())
    c1, c2 = 5.0 / mu, 30.0 / mu
    assert _squeeze_holds(mg, c1) and _squeeze_holds(mg, c2)
    assert cross_entropy_of_margins(mg, c2) < cross_entropy_of_margins(mg, c1)
    assert np.log1p(mg.shape[1] * np.exp(-c2 * mu)) < 1e-12


@given(misclassified_classifiers())
def test_D1_limit_fails_without_the_margin_hypothesis(clf):
    """Negative control: with one negative margin mu < 0 the loss does not vanish; it is
    at least c |mu| / N (that example's term log(1 + e^{c |mu|}), averaged over N)."""
    mg = margins(*clf)
    mu = float(mg.min())
    assert mu < 0
    c = 30.0 / abs(mu)
    assert cross_entropy_of_margins(mg, c) >= c * abs(mu) / mg.shape[0] * (1 - 1e-12)


@given(perfect_classifiers())
def test_D1_cross_entropy_matches_log_softmax(clf):
    logits, labels = clf
    direct = -log_softmax(logits, axis=1)[np.arange(labels.size), labels].mean()
    np.testing.assert_allclose(cross_entropy(logits, labels), direct, rtol=1e-9, atol=1e-12)


@given(misclassified_classifiers(), st.floats(10.0, 1e4))
def test_D1_negative_margin_not_verified_and_loss_grows(clf, c):
    """Hypothesis dropped: the checker does not verify, and L(cf) >= c |m_min| / N."""
    logits, labels = clf
    result = check_D1_on_logits(logits, labels)
    assert not result.perfect_accuracy
    assert result.status is Status.UNDECIDED and not result.holds
    mg = margins(logits, labels)
    assert cross_entropy_of_margins(mg, c) >= c * -mg.min() / labels.size * (1 - 1e-12)


def test_D1_check_reports_losses_along_c():
    logits = np.array([[2.0, 0.0, -1.0], [0.0, 3.0, 1.0]])
    labels = np.array([0, 1])
    res = check_D1_on_logits(logits, labels, cs=(2.0, 3.0))
    assert res.cs == (2.0, 3.0) and len(res.losses) == 3
    assert res.losses[0] > res.losses[1] > res.losses[2]
    assert res.min_margin == pytest.approx(2.0)
    assert res.to_dict()["status"] == "verified"


@pytest.mark.parametrize("logits, labels, cs, field", [
    (np.zeros(3), np.zeros(3, dtype=int), (2.0,), "logits"),
    (np.zeros((2, 1)), np.zeros(2, dtype=int), (2.0,), "logits"),
    (np.zeros((2, 3)), np.array([0, 3]), (2.0,), "labels"),
    (np.zeros((2, 3)), np.array([0.0, 1.0]), (2.0,), "labels"),
    (np.zeros((2, 3)), np.array([0, 1]), (1.0,), "cs"),
    (np.full((2, 3), np.nan), np.array([0, 1]), (2.0,), "logits"),
])
def test_D1_check_rejects_bad_input(logits, labels, cs, field):
    with pytest.raises(ConfigError) as info:
        check_D1_on_logits(logits, labels, cs=cs)
    assert info.value.field == field


def test_D1_symbolic_routes_proved():
    assert symbolic_D1().status is Status.PROVED
    assert symbolic_D1_limit().status is Status.PROVED
