"""The 1-D problem behind Theorem D.4: ``min_{s >= 0} f(s) = L_x(s) + C s^r``.

Every D.4 optimum reduces to it: for fixed shares the total weight ``s`` solves it with
``C = sum_i c_i pi_i^r`` (see :mod:`circeff.theory.optima`). Its solution is bracketed from
the stationarity condition of the problem itself, never from a fixed grid, so it is found
at every scale (an earlier grid below a budget bound missed optima lying many decades
under that bound when r = q/kappa is small).

Cross-entropy ``L_x(s) = log(1 + (n-1) e^{-s})`` (the case used everywhere): with
``p(s) = -L_x'(s) = expit(log(n-1) - s)`` and ``u = log s``,
``f'(s) < 0  <=>  psi(u) = log p(e^u) + (1 - r) u - log(C r) > 0``.

- ``r > 1``: psi falls strictly from +inf to -inf; one root, the unique minimiser.
- ``r = 1``: psi falls strictly from ``log(p(0)/C)``; a root iff ``p(0) > C``, else s* = 0.
- ``r < 1``: ``log p + (1-r) u`` rises then falls, its peak where ``(1 - p(s)) s = 1 - r``
  (the left side increases in s, so the peak is unique and lies in ``[1-r, n(1-r)]``).
  If psi is <= 0 at the peak, f is non-decreasing and s* = 0. Otherwise psi has two roots:
  the left one is a local maximum of f, the right one a local minimum, which is compared
  with f(0).

Brackets are found by stepping ``u`` in doubling steps away from a start point until psi
changes sign (at most ~20 steps for any float64 scale), then brentq. A generic
:class:`~circeff.theory.optima.LossX` has no such structure: its stationary points are
located by the sign of ``f'`` on a log grid spanning the whole float64 range below the
budget bound (``0.02`` in log s, ~35000 points), each refined by brentq.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
from scipy.optimize import brentq
from scipy.special import expit

_EPS = np.finfo(float).eps
_U_LIMIT = 1e6  # |log s| beyond this is 0 or inf in every float type


def _log_p(s: float, log_k: float) -> float:
    """``log p(s) = -log(1 + e^{s - log(n-1)})`` without overflow."""
    return -float(np.logaddexp(0.0, s - log_k))


def _step_until(fn: Callable[[float], float], u0: float, direction: float,
                want_positive: bool) -> float:
    """Step u from u0 (doubling) until fn(u) has the wanted sign; return that u."""
    step = 1.0
    u = u0
    while abs(u) < _U_LIMIT:
        value = fn(u)
        if (value > 0) == want_positive and value != 0:
            return u
        u += direction * step
        step *= 2.0
    return direction * _U_LIMIT


def _root_u(fn: Callable[[float], float], lo: float, hi: float) -> float:
    return brentq(fn, lo, hi, xtol=1e-16, rtol=4 * _EPS, maxiter=500)


def ce_value(s: float, log_k: float, coef: float, r: float) -> float:
    """``f(s) = log(1 + (n-1) e^{-s}) + C s^r`` (``log_k = log(n-1)``)."""
    with np.errstate(over="ignore"):
        return float(np.logaddexp(0.0, log_k - s)) + coef * s**r


def peak(n_classes: int, r: float) -> float:
    """For r < 1, the s where ``-L_x'(s) s^(1-r)`` peaks: ``(1 - p(s)) s = 1 - r``. The left
    side increases in s, is <= 1 - r at s = 1 - r and >= 1 - r at s = n (1 - r)."""
    log_k = math.log(n_classes - 1)

    def chi(s: float) -> float:
        return float(expit(s - log_k)) * s - (1.0 - r)

    return brentq(chi, 1.0 - r, n_classes * (1.0 - r), xtol=1e-300, rtol=4 * _EPS)


def solve_cross_entropy(n_classes: int, coef: float, r: float) -> tuple[float, float]:
    """``(s*, f(s*))`` for the n-class cross-entropy (see the module docstring)."""
    log_k = math.log(n_classes - 1)
    log_cr = math.log(coef) + math.log(r)
    f0 = ce_value(0.0, log_k, coef, r)

    def psi(u: float) -> float:
        s = math.exp(u) if u < 709.0 else math.inf
        return _log_p(s, log_k) + (1.0 - r) * u - log_cr

    if r < 1:
        u_peak = math.log(peak(n_classes, r))
        if psi(u_peak) <= 0:
            return 0.0, f0
        u_hi = _step_until(psi, u_peak, +1.0, want_positive=False)
        u_star = _root_u(psi, u_peak, u_hi)
    elif r == 1:
        if _log_p(0.0, log_k) - log_cr <= 0:
            return 0.0, f0
        u_lo = _step_until(psi, 0.0, -1.0, want_positive=True)
        u_hi = _step_until(psi, 0.0, +1.0, want_positive=False)
        u_star = _root_u(psi, u_lo, u_hi)
    else:
        u_lo = _step_until(psi, 0.0, -1.0, want_positive=True)
        u_hi = _step_until(psi, 0.0, +1.0, want_positive=False)
        u_star = _root_u(psi, u_lo, u_hi)
    s_star = math.exp(u_star) if u_star > -745.0 else 0.0
    f_star = ce_value(s_star, log_k, coef, r)
    if f_star <= f0:
        return s_star, f_star
    return 0.0, f0


def solve_generic(value: Callable[[np.ndarray], np.ndarray],
                  derivative: Callable[[np.ndarray], np.ndarray], coef: float, r: float,
                  upper: float) -> tuple[float, float]:
    """``(s*, f(s*))`` on ``[0, upper]`` for a generic differentiable L_x.

    ``upper`` must bound every minimiser (the budget bound: beyond it the cost alone
    exceeds ``L_x(0) - inf L_x``). The sign of f' is read on a grid in log s with step
    0.05 from ``upper`` down to the smallest positive float; every sign change from - to +
    (a local minimum) is refined by brentq and compared with f(0) and f(upper).
    """
    def f(s: np.ndarray) -> np.ndarray:
        s = np.asarray(s, dtype=np.float64)
        with np.errstate(over="ignore"):
            return np.asarray(value(s), dtype=np.float64) + coef * s**r

    def dfs(s: np.ndarray) -> np.ndarray:
        s = np.asarray(s, dtype=np.float64)
        with np.errstate(divide="ignore", over="ignore"):
            return np.asarray(derivative(s), dtype=np.float64) + coef * r * s ** (r - 1.0)

    def df(s: float) -> float:
        return float(dfs(np.array([s]))[0])

    u_top = math.log(upper)
    grid = np.exp(np.arange(u_top, -744.0, -0.05))[::-1]
    slopes = dfs(grid)
    candidates = [0.0, float(upper)]
    flips = np.flatnonzero((slopes[:-1] < 0) & (slopes[1:] > 0))
    for k in flips:
        candidates.append(brentq(df, grid[k], grid[k + 1], xtol=1e-300, rtol=4 * _EPS))
    values = f(np.asarray(candidates))
    best = int(np.argmin(values))
    return float(candidates[best]), float(values[best])
