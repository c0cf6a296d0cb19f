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


def lemma_D2_facts() -> list[S.Fact]:
    """The sympy facts behind Lemma D.2 (also reused by Theorem D.4 case 1)."""
    r = 1 / (1 + S.a_nonneg)  # 0 < r <= 1
    lam = S.x / (S.x + S.y)
    b = S.b_nonneg  # lambda = 1 / (1 + b), b = y / x >= 0
    log_ratio = sp.expand_log(sp.log((1 / (1 + b)) ** (r - 1)), force=True)
    facts = [
        S.identity("x^r+y^r = (x+y)^r (lam^r + (1-lam)^r)",
                   (S.x + S.y) ** r * (lam**r + (1 - lam) ** r) - S.x**r - S.y**r),
        S.equals("log lam^(r-1) = (1-r) log(1+b)", log_ratio,
                 S.a_nonneg / (1 + S.a_nonneg) * sp.log(1 + b)),
        S.sign("(1-r) log(1+b) >= 0, so lam^r >= lam", log_ratio, "nonnegative"),
        S.sign("(1-r) log(1+b) > 0 when r < 1, b > 0 (strictness)",
               log_ratio.subs({S.a_nonneg: S.a_pos, b: S.t}), "positive"),
        S.sign("t^r concave: d2/dt2 t^r <= 0", sp.diff(S.t**r, S.t, 2), "nonpositive"),
    ]
    return facts


def symbolic_D2() -> RouteResult:
    started = time.perf_counter()
    return S.route_from_facts(
        lemma_D2_facts(), "(x+y)^r <= x^r + y^r for x, y >= 0, 0 < r <= 1",
        "lam^r + (1-lam)^r >= lam + (1-lam) = 1; x = 0 or y = 0 is equality", started)


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
