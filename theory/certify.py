"""Certified Theorem D.4 numbers: interval enclosures of s* and of the optimal loss.

For a problem with one kappa and the cross-entropy, the optimum reduces to the 1-D problem
``f(s) = L_x(s) + C s^r`` (:mod:`circeff.theory.ray`), with ``C = c_min`` (all weight on
the minimal P, r <= 1) or ``C = (sum_i c_i^(-1/(r-1)))^(1-r)`` (the minimum of
``sum_i c_i pi_i^r`` over the simplex, r > 1). Everything below is evaluated in mpmath's
interval arithmetic (``mpmath.iv``), whose results contain the exact value:

- the case: ``r = q/kappa`` as an interval, compared with 1 (q and kappa are the exact
  binary values of the floats given);
- ``s*``: floats ``s_lo < s_hi`` around the numeric root with ``f'(s_lo) < 0 < f'(s_hi)``
  as intervals, so a root of f' lies in between; it is the minimiser because f' has one
  sign change on the branch searched (r >= 1: f convex; r < 1: right of the peak of
  ``-L_x'(s) s^(1-r)``, see :mod:`circeff.theory.ray`), and for r < 1 its value is
  certified below ``f(0)``; when s* = 0 the certificate is ``f' >= 0`` at the peak;
- the loss: ``[inf f([s_lo, s_hi]), sup f(s_mid)]`` (the range of f on the bracket holds
  f(s*), and s* is a minimiser so ``f(s*) <= f(s_mid)``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from mpmath import iv, mpf

from circeff.errors import ConfigError
from circeff.theory import optima as O
from circeff.theory import ray as R

iv.dps = 30


@dataclass(frozen=True)
class Certificate:
    case: str
    case_proof: str
    r: tuple[float, float]
    s_star: tuple[float, float]
    loss: tuple[float, float]
    winner: int | None
    notes: tuple[str, ...]

    def to_dict(self) -> dict[str, Any]:
        return {"case": self.case, "case_proof": self.case_proof, "r": list(self.r),
                "s_star": list(self.s_star), "loss": list(self.loss), "winner": self.winner,
                "notes": list(self.notes)}


def _bounds(x) -> tuple[float, float]:
    """Outward-rounded float bounds of an interval."""
    lo, hi = float(x.a), float(x.b)
    return (math.nextafter(lo, -math.inf), math.nextafter(hi, math.inf))


def _f(s, log_k, coef, r):
    """``log(1 + (n-1) e^{-s}) + C s^r`` in interval arithmetic."""
    return iv.log(1 + iv.exp(log_k - s)) + coef * s**r


def _df(s, log_k, coef, r):
    """``f'(s) = -1 / (1 + e^{s - log(n-1)}) + C r s^(r-1)``."""
    return -1 / (1 + iv.exp(s - log_k)) + coef * r * s ** (r - 1)


def certify(problem: O.OptimumProblem) -> Certificate:
    """Rigorous enclosures for ``problem`` (one kappa, cross-entropy)."""
    if problem.per_circuit:
        raise ConfigError("--certify", "needs one kappa for every circuit")
    if problem.loss_x is not None:
        raise ConfigError("--certify", "needs the cross-entropy L_x")
    q, kappa = iv.mpf(problem.q), iv.mpf(float(problem.kappas[0]))
    r = q / kappa
    notes: list[str] = []
    if problem.q == float(problem.kappas[0]):
        case, proof = O.BOUNDARY, "q == kappa exactly: r = 1"
    elif r.b < 1:
        case, proof = O.WINNER_TAKE_ALL, f"r = q/kappa <= {float(r.b):.17g} < 1"
    elif r.a > 1:
        case, proof = O.POWER_LAW, f"r = q/kappa >= {float(r.a):.17g} > 1"
    else:  # pragma: no cover - an interval of width 1e-30 straddling 1 needs q == kappa
        raise ConfigError("--q", "q/kappa too close to 1 to decide the case", problem.q)
    P = [iv.mpf(p) for p in problem.P]
    alpha = iv.mpf(problem.alpha)
    coefs = [alpha / q * p**q for p in P]
    winner = None
    if case == O.POWER_LAW:
        coef = sum(c ** (-1 / (r - 1)) for c in coefs) ** (1 - r)
        notes.append("C = (sum_i c_i^(-1/(r-1)))^(1-r): the cost of the power-law shares")
    else:
        order = sorted(range(len(P)), key=lambda i: problem.P[i])
        winner = order[0]
        if len(order) > 1 and problem.P[order[1]] == problem.P[winner]:
            notes.append("tie at the minimal P: any one tied circuit (r < 1) or any split "
                         "among them (r = 1) is optimal")
        coef = coefs[winner]
    log_k = iv.log(iv.mpf(problem.n_classes - 1))
    r_float = problem.q / float(problem.kappas[0])
    coef_float = float(coef.mid)
    s_num, _ = R.solve_cross_entropy(problem.n_classes, coef_float, r_float)
    f0 = _f(iv.mpf(0), log_k, coef, r)
    if s_num == 0.0:
        if r_float < 1 and _no_turning_point(log_k, coef, r, problem.n_classes):
            note = ("s* = 0: -L_x'(s) s^(1-r) < C r for every s > 0 (interval "
                    "branch and bound), so f' > 0 and f rises from 0")
        elif r_float == 1 and _df(iv.mpf(0), log_k, coef, r).a >= 0:
            note = "s* = 0: f'(0) = C - p(0) >= 0 and f is convex"
        else:
            raise ConfigError("--certify", "could not certify s* = 0 (for r > 1, s* is "
                              "positive but below the float64 range)")
        return Certificate(case, proof, _bounds(r), (0.0, 0.0), _bounds(f0), winner,
                           tuple(notes + [note]))
    lo, hi = s_num, s_num
    for k in range(1, 60):
        width = s_num * 2.0 ** (k - 52)
        lo, hi = s_num - width, s_num + width
        if _df(iv.mpf(lo), log_k, coef, r).b < 0 < _df(iv.mpf(hi), log_k, coef, r).a:
            break
    else:
        raise ConfigError("--certify", "could not bracket s* by interval signs")
    bracket = iv.mpf([lo, hi])
    loss_lo = _f(bracket, log_k, coef, r).a
    loss_hi = _f(iv.mpf(s_num), log_k, coef, r).b
    if r_float < 1 and not loss_hi < f0.a:
        raise ConfigError("--certify", "could not certify f(s*) < f(0)")
    if r_float < 1:
        notes.append(f"f(s*) <= {float(loss_hi):.17g} < f(0) >= {float(f0.a):.17g}")
    return Certificate(case, proof, _bounds(r), (lo, hi),
                       _bounds(iv.mpf([loss_lo, loss_hi])), winner, tuple(notes))


def _no_turning_point(log_k, coef, r, n_classes: int, max_boxes: int = 20000) -> bool:
    """Prove ``phi(s) = p(s) s^(1-r) < C r`` for every s > 0 (r < 1), i.e. f' > 0.

    Near 0, ``phi <= s^(1-r)``; far out, ``phi <= (n-1) e^{-s} s^(1-r)``, decreasing for
    s > 1; in between, on a box [a, b], ``phi <= p(a) b^(1-r)`` (p falls, s^(1-r) rises),
    and boxes whose bound is not below C r are halved in log s."""
    cr = coef * r
    one_minus_r = 1 - r
    s_small = iv.exp(iv.log(cr / 2) / one_minus_r).a  # s^(1-r) <= C r / 2 below it
    s_big = mpf(2)
    while not (iv.mpf(n_classes - 1) * iv.exp(-iv.mpf(s_big))
               * iv.mpf(s_big) ** one_minus_r).b < cr.a:
        s_big *= 2
        if s_big > 1e6:
            return False
    boxes = [(iv.mpf(s_small), iv.mpf(s_big))]
    checked = 0
    while boxes:
        a, b = boxes.pop()
        checked += 1
        if checked > max_boxes:
            return False
        bound = 1 / (1 + iv.exp(a - log_k)) * b**one_minus_r
        if bound.b < cr.a:
            continue
        mid = iv.sqrt(a * b).a if a.a > 0 else (a.a + b.b) / 2
        boxes += [(a, iv.mpf(mid)), (iv.mpf(mid), b)]
    return True


__all__ = ["Certificate", "certify", "mpf"]
