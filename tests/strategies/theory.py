"""Hypothesis strategies for the theory layer (circeff.theory).

- :func:`perfect_classifiers`: logit matrices whose every margin is positive (Theorem D.1's
  hypothesis), with integer labels.
- :func:`misclassified_classifiers`: the same with one negative margin (hypothesis dropped).
- :func:`efficiency_vectors`: circuit norms P with distinct values (relative gaps >= 5 %,
  so the winner of D.4 case 1 is well defined), or with a tie at the minimum.
- :func:`q_kappa_pairs`: (q, kappa) inside one case of Theorem D.4.
- :func:`optimum_problems`: complete :class:`circeff.theory.optima.OptimumProblem` instances.
"""

from __future__ import annotations

import numpy as np
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from circeff.theory import optima as O

#: r = q / kappa ranges used per case: each case is drawn from a bulk range and from the
#: ranges where numerics are hardest (tiny r, r just below or above 1, large r).
CASE_RATIOS = {
    O.WINNER_TAKE_ALL: ((0.01, 0.3), (0.3, 0.9), (0.9, 0.999)),
    O.POWER_LAW: ((1.001, 1.2), (1.2, 20.0)),
}
ALPHAS = (1e-6, 50.0)


@st.composite
def perfect_classifiers(draw, max_examples: int = 12, max_classes: int = 8,
                        min_margin: float = 1e-3, max_margin: float = 30.0):
    """``(logits (N, n), labels (N,))`` with every margin in [min_margin, max_margin]."""
    n_ex = draw(st.integers(1, max_examples))
    n_cls = draw(st.integers(2, max_classes))
    labels = draw(arrays(np.int64, n_ex, elements=st.integers(0, n_cls - 1)))
    logits = draw(arrays(np.float64, (n_ex, n_cls),
                         elements=st.floats(-10, 10, allow_nan=False)))
    margin = draw(arrays(np.float64, n_ex, elements=st.floats(min_margin, max_margin)))
    rows = np.arange(n_ex)
    logits[rows, labels] = -np.inf
    logits[rows, labels] = logits.max(axis=1) + margin
    return logits, labels


@st.composite
def misclassified_classifiers(draw, max_examples: int = 12, max_classes: int = 8):
    """A perfect classifier with one wrong class raised above the correct one."""
    logits, labels = draw(perfect_classifiers(max_examples, max_classes))
    bad = draw(st.integers(0, labels.size - 1))
    n_cls = logits.shape[1]
    offset = draw(st.integers(1, n_cls - 1))
    wrong = (labels[bad] + offset) % n_cls
    logits = logits.copy()
    logits[bad, wrong] = logits[bad, labels[bad]] + draw(st.floats(0.05, 5.0))
    return logits, labels


@st.composite
def efficiency_vectors(draw, min_size: int = 2, max_size: int = 6, min_gap: float = 0.05,
                       tie: bool = False):
    """Norms P_i > 0, pairwise relative gaps >= ``min_gap`` (or the two smallest tied)."""
    size = draw(st.integers(min_size, max_size))
    base = draw(st.floats(0.3, 2.0))
    gaps = draw(st.lists(st.floats(min_gap, 0.8), min_size=size, max_size=size))
    P = base * np.cumprod(1.0 + np.asarray(gaps)) / (1.0 + gaps[0])
    if tie:
        P[1] = P[0]
    order = draw(st.permutations(range(size)))
    return tuple(float(P[i]) for i in order)


@st.composite
def q_kappa_pairs(draw, case: str):
    """(q, kappa) with q/kappa in the case's range (boundary: q == kappa)."""
    kappa = draw(st.floats(0.5, 2.5))
    if case == O.BOUNDARY:
        return kappa, kappa
    lo, hi = draw(st.sampled_from(CASE_RATIOS[case]))
    return draw(st.floats(lo, hi)) * kappa, kappa


@st.composite
def spread_efficiency_vectors(draw, min_size: int = 2, max_size: int = 8,
                              tie: bool = False):
    """Norms P_i spread over three decades (log-uniform in [1e-2, 10]) with relative gaps
    >= 5 %, or with the two smallest exactly tied."""
    size = draw(st.integers(min_size, max_size))
    logs = draw(st.lists(st.floats(np.log(1e-2), np.log(10.0)), min_size=size,
                         max_size=size))
    P = np.sort(np.exp(np.asarray(logs)))
    for i in range(1, size):  # enforce the gap, then rescale into range
        P[i] = max(P[i], P[i - 1] * 1.05)
    if tie:
        P[1] = P[0]
    order = draw(st.permutations(range(size)))
    return tuple(float(P[i]) for i in order)


@st.composite
def optimum_problems(draw, case: str, min_size: int = 2, max_size: int = 6,
                     tie: bool = False, spread: bool = False):
    """Problems in one case; alpha log-uniform in [1e-6, 50]; ``spread`` draws P over
    three decades and up to ``max_size`` circuits."""
    q, kappa = draw(q_kappa_pairs(case))
    if spread:
        P = draw(spread_efficiency_vectors(min_size, max_size, tie=tie))
    else:
        P = draw(efficiency_vectors(min_size, max_size, tie=tie))
    alpha = float(np.exp(draw(st.floats(np.log(ALPHAS[0]), np.log(ALPHAS[1])))))
    n = draw(st.integers(2, 200))
    return O.OptimumProblem(P, q, kappa, alpha, n)


@st.composite
def per_circuit_problems(draw, min_size: int = 2, max_size: int = 4):
    """Problems with one kappa per circuit, r_i = q/kappa_i on both sides of 1."""
    size = draw(st.integers(min_size, max_size))
    q = draw(st.floats(0.5, 3.0))
    rs = draw(st.lists(st.one_of(st.floats(0.05, 0.95), st.floats(1.05, 4.0)),
                       min_size=size, max_size=size))
    P = draw(spread_efficiency_vectors(size, size))
    alpha = float(np.exp(draw(st.floats(np.log(1e-4), np.log(1.0)))))
    n = draw(st.integers(2, 200))
    return O.OptimumProblem(P, q, tuple(q / r for r in rs), alpha, n)
