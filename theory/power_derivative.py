"""Lemma D.3 (first-order bound on x^r), as printed and as intended.

Printed (false): for x, c and r >= 1 there is delta > 0 such that for every eps < delta,
``x^r - (x - eps)^r > delta (r x^(r-1) - c)``. At eps = 0, x = 1, r = 2, c = 1 the left
side is 0 and the right side is delta > 0, for *every* delta; the failure survives
requiring eps > 0 (eps = delta/4 gives ``delta/2 - delta^2/16 < delta``).

Corrected (the derivative bound used by Theorem D.4 case 2): for x > 0, r >= 1, c > 0
there is delta > 0 such that for all 0 < eps < delta,
``x^r - (x - eps)^r > eps (r x^(r-1) - c)``.
Proof: ``g(eps) = x^r - (x - eps)^r - eps (r x^(r-1) - c)`` has g(0) = 0, g'(0) = c > 0 and
g'' <= 0 on [0, x) (r >= 1), so g' stays positive up to its first zero delta (or x) and
g > 0 on (0, delta). The numeric route computes that delta with brentq.
"""

from __future__ import annotations

import math
import time

import numpy as np
import sympy as sp
from scipy.optimize import brentq

from circeff.theory import symbols as S
from circeff.theory.results import RouteResult, Status


def lhs(x: float, r: float, eps: np.ndarray | float) -> np.ndarray:
    """``x^r - (x - eps)^r`` without cancellation for small eps."""
    eps = np.asarray(eps, dtype=np.float64)
    return -(x**r) * np.expm1(r * np.log1p(-eps / x))


def corrected_gap(x: float, r: float, c: float, eps: np.ndarray | float) -> np.ndarray:
    """``g(eps) = x^r - (x - eps)^r - eps (r x^(r-1) - c)`` (> 0 on (0, delta))."""
    eps = np.asarray(eps, dtype=np.float64)
    return lhs(x, r, eps) - eps * (r * x ** (r - 1) - c)


def corrected_delta(x: float, r: float, c: float) -> float:
    """The largest delta in (0, x] on which g' > 0: the root of
    ``g'(eps) = r (x - eps)^(r-1) - r x^(r-1) + c`` (decreasing in eps), or x."""
    def dg(e: float) -> float:
        return r * (x - e) ** (r - 1) - r * x ** (r - 1) + c
    if dg(x) >= 0:
        return x
    return brentq(dg, 0.0, x, xtol=1e-300, rtol=4 * np.finfo(float).eps, maxiter=500)


def printed_gap(x: float, r: float, c: float, delta: float, eps: float) -> float:
    """LHS - RHS of the printed form: ``x^r - (x-eps)^r - delta (r x^(r-1) - c)``."""
    return float(lhs(x, r, eps)) - delta * (r * x ** (r - 1) - c)


# ----------------------------------------------------------------------------- printed form
def symbolic_D3_printed(negate: str | None = None) -> RouteResult:
    """Refute the printed form for every delta > 0 with sympy (x = 1, r = 2, c = 1).
    Negating ``r_ge_1`` uses r = 1/2, where this counterexample no longer works."""
    started = time.perf_counter()
    if negate not in (None, "r_ge_1"):
        raise ValueError(f"D3.printed has no hypothesis {negate!r}")
    rr = sp.Rational(1, 2) if negate == "r_ge_1" else sp.Integer(2)
    ev = sp.Symbol("e", nonnegative=True)
    gap = 1**rr - (1 - ev) ** rr - S.delta * (rr * 1 ** (rr - 1) - 1)
    at_zero = sp.simplify(gap.subs(ev, 0))
    at_quarter = sp.expand(gap.subs(ev, S.delta / 4))
    neg_zero, neg_quarter = at_zero.is_negative, at_quarter.is_negative
    cx = {"x": 1, "r": 2, "c": 1, "eps": 0, "lhs": 0, "rhs": "delta (> 0 for every delta)",
          "also_eps": "delta/4", "gap_at_delta/4": sp.sstr(at_quarter)}
    data = {"gap_at_eps0": sp.sstr(at_zero), "gap_at_eps_delta/4": sp.sstr(at_quarter)}
    if neg_zero and neg_quarter:
        return RouteResult(
            "symbolic", Status.REFUTED,
            "counterexample eps=0, x=1, r=2, c=1: LHS 0 < RHS delta for every delta > 0 "
            f"(sympy); also with 0 < eps = delta/4: LHS - RHS = {sp.sstr(at_quarter)} < 0",
            data, counterexample=cx, seconds=time.perf_counter() - started)
    return RouteResult("symbolic", Status.UNDECIDED,
                       f"sympy could not decide the sign of {at_zero} / {at_quarter}", data,
                       seconds=time.perf_counter() - started)


def numeric_D3_printed(seed: int, n_tries: int = 200) -> RouteResult:
    """Search seeded (x, r, c) for one that violates the printed form at *every* delta on a
    grid 1e-9..1 (with eps = 0 and with eps = delta/4)."""
    started = time.perf_counter()
    rng = np.random.default_rng(seed)
    deltas = np.geomspace(1e-9, 1.0, 37)
    for i in range(n_tries):
        x, r, c = rng.uniform(0.2, 4.0), rng.uniform(1.0, 4.0), rng.uniform(0.0, 4.0)
        if x - deltas[-1] <= 0:
            continue
        bad = all(printed_gap(x, r, c, d, 0.0) <= 0 and printed_gap(x, r, c, d, d / 4) <= 0
                  for d in deltas)
        if bad:
            return RouteResult(
                "numeric", Status.REFUTED,
                f"search found x={x:.3g}, r={r:.3g}, c={c:.3g}: for each of 37 deltas in "
                "[1e-9, 1], eps=0 and eps=delta/4 violate the printed inequality",
                {"seed": seed, "tries": i + 1},
                counterexample={"x": x, "r": r, "c": c, "eps": [0.0, "delta/4"],
                                "deltas": [float(deltas[0]), float(deltas[-1])]},
                seconds=time.perf_counter() - started)
    return RouteResult("numeric", Status.VERIFIED, f"no counterexample in {n_tries} tries",
                       {"seed": seed}, seconds=time.perf_counter() - started)


# ----------------------------------------------------------------------------- corrected form
def d3_facts(negate: str | None = None, r: sp.Expr | None = None,
             x: sp.Expr | None = None, c: sp.Expr | None = None) -> list[S.Fact]:
    """The facts behind the corrected Lemma D.3 on ``g(eps) = x^r - (x-eps)^r -
    eps (r x^(r-1) - c)``. Hypotheses (each may be negated): ``x_pos`` (x > 0, and the
    lemma looks at 0 <= eps < x, written x = eps + z with z > 0; negated: x = -z <= 0),
    ``r_ge_1`` (r = 1 + a, a >= 0; negated: r = 1/(1+a), a > 0) and ``c_pos`` (c > 0;
    negated: c = -u, u >= 0). Theorem D.4 case 2 passes its own r, x and c."""
    if negate not in (None, "x_pos", "r_ge_1", "c_pos"):
        raise ValueError(f"D3 has no hypothesis {negate!r}")
    if r is None:
        r = 1 / (1 + S.a_pos) if negate == "r_ge_1" else 1 + S.a_nonneg
    if c is None:
        c = -S.u_nonneg if negate == "c_pos" else S.c
    xx = sp.Symbol("x", positive=True) if x is None else x
    ev = sp.Symbol("e", nonnegative=True)
    g = xx**r - (xx - ev) ** r - ev * (r * xx ** (r - 1) - c)
    g1 = sp.diff(g, ev)
    g2 = sp.diff(g, ev, 2)
    # 0 <= eps < x  <=>  x = eps + z, z > 0; negated x: x = -z, so x - eps < 0
    at = {xx: ev + S.z} if negate != "x_pos" else {xx: -S.z}
    return [
        S.equals("g(0) = 0", g.subs(ev, 0), sp.Integer(0)),
        S.equals("g'(0) = c", g1.subs(ev, 0), c),
        S.sign("g'(0) = c > 0", g1.subs(ev, 0).subs(at), "positive"),
        S.sign("g''(eps) <= 0 on [0, x) for r >= 1", g2.subs(at), "nonpositive"),
    ]


def symbolic_D3(negate: str | None = None) -> RouteResult:
    started = time.perf_counter()
    return S.route_from_facts(
        d3_facts(negate), "x^r - (x-eps)^r > eps (r x^(r-1) - c) for 0 < eps < delta",
        "g' decreasing and g'(0) > 0, so g' > 0 on [0, delta); g(eps) = int_0^eps g' > 0",
        started)


def numeric_D3(seed: int, n_instances: int = 300) -> RouteResult:
    """Seeded (x, r, c): delta from brentq on g', then g > 0 on 200 eps in (0, delta)."""
    started = time.perf_counter()
    rng = np.random.default_rng(seed)
    min_delta = math.inf
    for i in range(n_instances):
        x = float(np.exp(rng.uniform(np.log(0.05), np.log(20.0))))
        r = 1.0 if i % 10 == 0 else float(rng.uniform(1.0, 5.0))
        c = float(np.exp(rng.uniform(np.log(1e-3), np.log(10.0))))
        delta = corrected_delta(x, r, c)
        eps = delta * np.geomspace(1e-8, 1 - 1e-9, 200)
        gap = corrected_gap(x, r, c, eps)
        min_delta = min(min_delta, delta / x)
        if not (delta > 0 and np.all(gap > 0)):
            k = int(np.argmin(gap))
            return RouteResult("numeric", Status.REFUTED,
                               f"g(eps) = {gap[k]:.3g} <= 0 at x={x:.3g}, r={r:.3g}, c={c:.3g}",
                               {"seed": seed},
                               counterexample={"x": x, "r": r, "c": c, "eps": eps[k]},
                               seconds=time.perf_counter() - started)
    return RouteResult("numeric", Status.VERIFIED,
                       f"{n_instances} seeded (x, r, c): g > 0 on (0, delta) with delta from "
                       f"brentq (smallest delta/x = {min_delta:.3g})",
                       {"seed": seed, "n_instances": n_instances, "min_delta_over_x": min_delta},
                       seconds=time.perf_counter() - started)


def falsify_D3(seed: int, n_tries: int = 200) -> RouteResult:
    """Drop "c > 0" (c = 0): for r > 1 convexity gives x^r - (x-eps)^r < eps r x^(r-1), so
    every eps > 0 violates the corrected bound; the search prints the first instance."""
    started = time.perf_counter()
    rng = np.random.default_rng(seed)
    for i in range(n_tries):
        x, r = float(rng.uniform(0.2, 5.0)), float(rng.uniform(1.0, 4.0))
        eps = x * np.geomspace(1e-6, 0.5, 20)
        gap = corrected_gap(x, r, 0.0, eps)
        if np.all(gap <= 0):
            return RouteResult(
                "numeric", Status.REFUTED,
                f"c = 0, x = {x:.3g}, r = {r:.3g}: g(eps) <= 0 for all 20 eps in "
                f"[{eps[0]:.2g}, {eps[-1]:.2g}] (max {gap.max():.3g}), so no delta works",
                {"seed": seed, "tries": i + 1},
                counterexample={"x": x, "r": r, "c": 0.0, "eps": float(eps[0]),
                                "gap": float(gap[0])},
                seconds=time.perf_counter() - started)
    return RouteResult("numeric", Status.VERIFIED, f"no counterexample in {n_tries} tries",
                       {"seed": seed}, seconds=time.perf_counter() - started)
