"""Lemma D.2 (subadditivity of t^r): for x, y >= 0 and 0 < r <= 1,
``(x + y)^r <= x^r + y^r``, strictly when x, y > 0 and r < 1; false for r > 1.

Symbolic route: with lambda = x / (x + y),
``x^r + y^r = (x + y)^r (lambda^r + (1 - lambda)^r)`` and ``lambda^r >= lambda`` for
lambda in (0, 1] and r <= 1 (because ``log lambda^(r-1) = (1 - r) log(1/lambda) >= 0``);
adding the two bounds gives ``lambda^r + (1 - lambda)^r >= 1``. Theorem D.4 case 1 uses
it with r = q / kappa.
"""

from __future__ import annotations

import time

import numpy as np
import sympy as sp

from circeff.theory import symbols as S
from circeff.theory.results import RouteResult, Status


def subadditivity_gap(x: np.ndarray | float, y: np.ndarray | float,
                      r: np.ndarray | float) -> np.ndarray:
    """``x^r + y^r - (x + y)^r`` (>= 0 under the lemma's hypotheses)."""
    x, y = np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)
    return x**r + y**r - (x + y) ** r


def d2_quantities(negate: str | None = None) -> tuple[sp.Expr, sp.Expr, sp.Expr]:
    """``(x, y, r)`` encoding the lemma's hypotheses, or one of them negated:
    ``xy_nonneg`` (x, y >= 0; negated: x < 0) and ``r_le_1`` (0 < r <= 1, written
    ``r = 1/(1+a)``, a >= 0; negated: ``r = 1 + a``, a > 0)."""
    if negate not in (None, "xy_nonneg", "r_le_1"):
        raise ValueError(f"D2 has no hypothesis {negate!r}")
    x = -S.x if negate == "xy_nonneg" else S.x
    r = 1 + S.a_pos if negate == "r_le_1" else 1 / (1 + S.a_nonneg)
    return x, S.y, r


def lemma_D2_facts(x: sp.Expr, y: sp.Expr, r: sp.Expr) -> list[S.Fact]:
    """The facts behind ``x^r + y^r >= (x + y)^r``, stated on the given expressions (Theorem
    D.4 case 1 calls it with its own weights and r = q/kappa).

    With lam = x/(x+y), mu = y/(x+y): ``x^r + y^r = (x+y)^r (lam^r + mu^r)``; the paper's
    "sum >= 1" step is ``lam^r + mu^r >= lam + mu = 1``, from ``lam^r - lam =
    lam (lam^(r-1) - 1)`` and ``log lam^(r-1) = (1 - r) log(1 + y/x) >= 0`` (and the same
    for mu)."""
    lam, mu = x / (x + y), y / (x + y)
    facts = [
        S.identity("x^r+y^r = (x+y)^r (lam^r + mu^r)",
                   (x + y) ** r * (lam**r + mu**r) - x**r - y**r),
        S.equals("sum step: lam + mu = 1", sp.simplify(lam + mu), sp.Integer(1)),
        S.identity("lam^r - lam = lam (lam^(r-1) - 1)", lam**r - lam - lam * (lam ** (r - 1) - 1)),
    ]
    for name, part, other, mine in (("lam", lam, y, x), ("mu", mu, x, y)):
        log_form = (1 - r) * sp.log(1 + other / mine)
        facts.append(S.identity(f"log {name}^(r-1) = (1-r) log(1 + {other}/{mine})",
                                sp.log(part ** (r - 1)) - log_form))
        facts.append(S.sign(f"(1-r) log(1 + {other}/{mine}) >= 0, so {name}^r >= {name}",
                            log_form, "nonnegative"))
    return facts


def symbolic_D2(negate: str | None = None) -> RouteResult:
    started = time.perf_counter()
    x, y, r = d2_quantities(negate)
    facts = lemma_D2_facts(x, y, r)
    # strictness for x, y > 0 and r < 1 (a > 0)
    if negate is None:
        facts.append(S.sign("(1-r) log(1 + y/x) > 0 when r < 1 (strictness)",
                            ((1 - r) * sp.log(1 + y / x)).subs(S.a_nonneg, S.a_pos), "positive"))
    return S.route_from_facts(
        facts, "(x+y)^r <= x^r + y^r for x, y >= 0, 0 < r <= 1",
        "lam^r + mu^r >= lam + mu = 1 (exp is increasing); x = 0 or y = 0 is equality",
        started)


def numeric_D2(seed: int, n_samples: int = 20000) -> RouteResult:
    """Seeded samples (x, y in [0, 10] with exact zeros mixed in, r in (0, 1])."""
    started = time.perf_counter()
    rng = np.random.default_rng(seed)
    x = rng.uniform(0, 10, n_samples) * (rng.random(n_samples) > 0.05)
    y = rng.uniform(0, 10, n_samples) * (rng.random(n_samples) > 0.05)
    r = np.where(rng.random(n_samples) < 0.05, 1.0, rng.uniform(1e-3, 1.0, n_samples))
    gap = subadditivity_gap(x, y, r)
    scale = np.maximum(1.0, (x + y) ** r)
    worst = int(np.argmin(gap / scale))
    if gap[worst] < -1e-12 * scale[worst]:
        return RouteResult("numeric", Status.REFUTED, "sampled violation",
                           {"seed": seed}, counterexample={"x": x[worst], "y": y[worst],
                                                           "r": r[worst], "gap": gap[worst]},
                           seconds=time.perf_counter() - started)
    strict = (x > 0) & (y > 0) & (r < 0.999)
    if not np.all(gap[strict] > 0):
        return RouteResult("numeric", Status.FAILED, "strictness failed for x, y > 0, r < 1",
                           {"seed": seed}, seconds=time.perf_counter() - started)
    return RouteResult("numeric", Status.VERIFIED,
                       f"{n_samples} seeded (x, y, r): min relative gap "
                       f"{(gap / scale).min():.2e} >= 0; strict for all {int(strict.sum())} "
                       "with x, y > 0, r < 0.999",
                       {"seed": seed, "n_samples": n_samples,
                        "min_relative_gap": float((gap / scale).min())},
                       seconds=time.perf_counter() - started)


def falsify_D2(seed: int, n_samples: int = 1000) -> RouteResult:
    """Drop "r <= 1": seeded search over r in (1, 4] finds x, y with (x+y)^r > x^r + y^r."""
    started = time.perf_counter()
    rng = np.random.default_rng(seed)
    for i in range(n_samples):
        x, y = rng.uniform(0.1, 5.0, 2)
        r = rng.uniform(1.0, 4.0)
        gap = float(subadditivity_gap(x, y, r))
        if r > 1 and gap < 0:
            return RouteResult(
                "numeric", Status.REFUTED,
                f"r = {r:.3g} > 1, x = {x:.3g}, y = {y:.3g}: (x+y)^r = {(x + y) ** r:.4g} > "
                f"x^r + y^r = {x**r + y**r:.4g}", {"seed": seed, "tries": i + 1},
                counterexample={"x": x, "y": y, "r": r, "gap": gap},
                seconds=time.perf_counter() - started)
    return RouteResult("numeric", Status.VERIFIED, f"no counterexample in {n_samples} tries",
                       {"seed": seed}, seconds=time.perf_counter() - started)
