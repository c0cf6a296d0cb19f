"""Theorem D.4 routes: which circuits a global minimiser of the effective loss keeps.

Claims ``D4.case1`` (q <= kappa: winner takes all), ``D4.boundary`` (q = kappa: linear
cost, any split among tied minima), ``D4.case2`` (q > kappa: power law
``w_i ~ P_i^(-q kappa/(q - kappa))``), ``D4.toy_ratio`` (the paper's toy model has
``w_G / w_M = 2^3 = 8`` at its optimum) and ``D4.mixed_kappa`` (one kappa per circuit).

Every symbolic route takes ``negate``: the id of one hypothesis to negate. The facts are
stated on the claim's own loss, with the hypothesis built into the expressions (for
example ``q = kappa r`` with ``r = 1/(1+a)`` for q <= kappa), so negating it changes what
sympy is asked, and the route must then not come out proved.

The numeric routes compare :func:`circeff.theory.optima.minimise` (which does not use the
closed form) with the *stated* prediction. The prediction is a parameter
(``exponent``, ``predict``), so that a deliberately wrong statement (a wrong exponent, or
winner-take-all claimed for q > kappa) runs through the same checker and is refuted.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable

import numpy as np
import sympy as sp

from circeff.theory import optima as O
from circeff.theory import symbols as S
from circeff.theory.results import RouteResult, Status
from circeff.theory.power_derivative import d3_facts
from circeff.theory.subadditivity import lemma_D2_facts

#: The toy model's values (the paper's Table 1): P_G = 1, P_M = 2, kappa = 1.2, q = 2.
TOY = {"P": (1.0, 2.0), "q": 2.0, "kappa": 1.2, "alpha": 0.005, "n_classes": 113}
SHARE_RTOL = 1e-6


def _coerce_exponent(exponent: Callable[[float, float], float] | None
                     ) -> Callable[[float, float], float]:
    return O.power_law_exponent if exponent is None else exponent


def random_problem(rng: np.random.Generator, case: str, n_circuits: int | None = None,
                   ties: bool = False) -> O.OptimumProblem:
    """A seeded instance in the given case. P values are distinct by >= 5 % unless
    ``ties`` (then the two smallest are equal), so that the winner is well defined."""
    I = int(rng.integers(2, 7)) if n_circuits is None else n_circuits
    gaps = rng.uniform(0.05, 0.6, size=I)
    P = 0.5 * np.cumprod(1.0 + gaps)
    if ties:
        P[1] = P[0]
    P = rng.permutation(P)
    kappa = float(rng.uniform(0.5, 2.5))
    # r = q/kappa from every regime of the case, including the numerically hard ones
    ranges = {"winner_take_all": ((0.01, 0.3), (0.3, 0.9), (0.9, 0.999)),
              "boundary": ((1.0, 1.0),), "power_law": ((1.001, 1.2), (1.2, 4.0), (4.0, 20.0))}
    lo, hi = ranges[case][int(rng.integers(len(ranges[case])))]
    r = float(rng.uniform(lo, hi))
    q = kappa if case == O.BOUNDARY else float(r * kappa)
    alpha = float(np.exp(rng.uniform(np.log(1e-6), np.log(5.0))))
    n = int(rng.integers(2, 200))
    return O.OptimumProblem(tuple(float(p) for p in P), q, kappa, alpha, n)


def _problem_dict(p: O.OptimumProblem) -> dict[str, object]:
    return {"P": list(p.P), "q": p.q, "kappa": p.kappa, "alpha": p.alpha,
            "n_classes": p.n_classes}


# ----------------------------------------------------------------------------- symbolic
Pi, Pj, wi, wj = sp.symbols("P_i P_j w_i w_j", positive=True)
_d = sp.Symbol("d", positive=True)  # P_j = P_i (1 + d): P_j is not minimal


def _cost(w: sp.Expr, P: sp.Expr, q: sp.Expr, kappa: sp.Expr, alpha: sp.Expr) -> sp.Expr:
    """One circuit's term of the claim's loss, ``(alpha/q) (w^(1/kappa) P)^q``."""
    return alpha / q * (w ** (1 / kappa) * P) ** q


def _alpha(negate: str | None) -> sp.Expr:
    return -S.u_nonneg if negate == "alpha_pos" else S.alpha


def _check(negate: str | None, allowed: tuple[str, ...], claim: str) -> None:
    if negate not in (None, *allowed):
        raise ValueError(f"{claim} has no hypothesis {negate!r}")


def symbolic_D4_case1(negate: str | None = None) -> RouteResult:
    """The paper's exchange argument on the claim's own loss: move w_j (P_j not minimal)
    onto a circuit i with P_i < P_j. ``q = kappa r`` with ``r = 1/(1+a)`` (r <= 1), so the
    exponent of w in the cost is q/kappa itself, and Lemma D.2 is applied at
    ``(w_i, w_j, q/kappa)``. Hypotheses: ``alpha_pos``, ``r_le_1`` (q <= kappa), ``via_s``
    (L_x depends on w only through s; negated: L_x = F(w_i, w_j))."""
    _check(negate, ("alpha_pos", "r_le_1", "via_s"), "D4.case1")
    started = time.perf_counter()
    r = 1 + S.a_pos if negate == "r_le_1" else 1 / (1 + S.a_nonneg)
    q = S.kappa * r
    alpha = _alpha(negate)
    Pj_ = Pi * (1 + _d)
    F = sp.Function("F")
    lx = sp.Function("L_x")
    rest = sp.Symbol("R", nonnegative=True)  # the other circuits' weights, unchanged
    if negate == "via_s":
        lx_before, lx_after = F(wi, wj), F(wi + wj, 0)
    else:
        lx_before, lx_after = lx(wi + wj + rest), lx((wi + wj) + rest)
    before = lx_before + _cost(wi, Pi, q, S.kappa, alpha) + _cost(wj, Pj_, q, S.kappa, alpha)
    after = lx_after + _cost(wi + wj, Pi, q, S.kappa, alpha)
    gap = wi ** (q / S.kappa) + wj ** (q / S.kappa) - (wi + wj) ** (q / S.kappa)
    extra = (Pj_**q - Pi**q) * wj ** (q / S.kappa)
    facts = [S.identity("L_x unchanged by the move (s is kept)", lx_before - lx_after)]
    facts += lemma_D2_facts(wi, wj, q / S.kappa)
    facts += [
        S.identity("L(before) - L(after) = (alpha/q) [P_i^q G + (P_j^q - P_i^q) w_j^(q/kappa)]"
                   ", G = w_i^r + w_j^r - (w_i + w_j)^r",
                   (before - after) - alpha / q * (Pi**q * gap + extra)),
        S.identity("log(P_j^q / P_i^q) = q log(1 + d)",
                   sp.log(Pj_**q / Pi**q) - q * sp.log(1 + _d)),
        S.sign("q log(1 + d) > 0, so P_j^q > P_i^q", q * sp.log(1 + _d), "positive"),
        S.sign("alpha/q > 0", alpha / q, "positive"),
        S.sign("w_j^(q/kappa) > 0", wj ** (q / S.kappa), "positive"),
        S.equals("a minimiser exists: (alpha/q) P^q t^(q/kappa) -> oo",
                 S.limit(_cost(S.t, Pi, q, S.kappa, alpha), S.t, sp.oo), sp.oo),
    ]
    return S.route_from_facts(
        facts, "q <= kappa: w*_j = 0 for every non-minimal P_j",
        "G >= 0 (Lemma D.2's facts at w_i, w_j) and the second term is > 0, so the move "
        "strictly lowers L; a minimiser exists, so it has w_j = 0", started)


def symbolic_D4_boundary(negate: str | None = None) -> RouteResult:
    """q = kappa on the claim's loss with I circuits (an indexed sum): the cost is
    ``(alpha/q) sum_i P_i^q w_i``, linear in w. Hypotheses: ``alpha_pos``, ``q_eq_kappa``
    (negated: q = kappa (1 + a), a != 0) and ``tie`` (the split statement: P_j = P_i;
    negated: P_j = P_i (1 + d), d > 0)."""
    _check(negate, ("alpha_pos", "q_eq_kappa", "tie"), "D4.boundary")
    started = time.perf_counter()
    a_nz = sp.Symbol("a", nonzero=True, real=True)
    q = S.kappa * (1 + a_nz) if negate == "q_eq_kappa" else S.kappa
    alpha = _alpha(negate)
    i, n_circ = sp.symbols("i I", integer=True, positive=True)
    w, P = sp.IndexedBase("w", positive=True), sp.IndexedBase("P", positive=True)
    cost = sp.Sum(_cost(w[i], P[i], q, S.kappa, alpha), (i, 1, n_circ))
    linear = sp.Sum(alpha / q * P[i] ** q * w[i], (i, 1, n_circ))
    Pj_ = Pi * (1 + _d) if negate == "tie" else Pi
    split = _cost(wi, Pi, q, S.kappa, alpha) + _cost(wj, Pj_, q, S.kappa, alpha)
    facts = [
        S.identity("cost = (alpha/q) sum_i P_i^q w_i (linear in w, any I)",
                   (cost.function - linear.function)),
        S.identity("a split w_i + w_j = s between tied P_i = P_j costs (alpha/q) P_i^q s",
                   split - _cost(wi + wj, Pi, q, S.kappa, alpha)),
        S.sign("alpha/q > 0: weight on a larger P_k costs (alpha/q)(P_k^q - P_min^q) w_k more",
               alpha / q, "positive"),
    ]
    return S.route_from_facts(
        facts, "q = kappa: all weight on minimal P; any split among tied minima is optimal",
        "for fixed s the cost is >= (alpha/q) P_min^q s, with equality iff w_k = 0 wherever "
        "P_k > P_min; a termwise identity of the summands is an identity of the sums",
        started)


def symbolic_D4_case2(negate: str | None = None, exponent: sp.Expr | None = None
                      ) -> RouteResult:
    """The paper's argument for q > kappa, for a general L_x bounded below.

    (1) No zero weight: moving eps from w_i > 0 to w_j = 0 keeps s (so L_x, whatever it
    is) and changes the cost by ``(alpha/q)[P_j^q eps^r - P_i^q (w_i^r - (w_i - eps)^r)]``;
    the corrected Lemma D.3 at ``(x, r, c) = (w_i, q/kappa, r w_i^(r-1)/2)`` bounds the
    bracket below by ``eps r w_i^(r-1)/2``, and ``eps^r / eps -> 0`` for r > 1, so the
    move lowers L for small eps. (2) Interior stationarity with I circuits (indexed
    weights): ``dL/dw_k = L_x'(s) + (alpha/kappa) P_k^q w_k^(r-1)``; the L_x' term is
    common to every k, so the stated weights ``w_k = t P_k^(-q kappa/(q-kappa))`` make
    every dL/dw_k equal. (3) A minimiser exists: L_x >= B and the cost is coercive.
    Hypotheses: ``alpha_pos``, ``r_gt_1`` (q = kappa (1 + a), a > 0; negated:
    q = kappa/(1+a), a >= 0), ``bounded_below`` (negated: L_x(s) = -e^s)
    and ``via_s`` (negated: L_x = F(w_i, w_j))."""
    _check(negate, ("alpha_pos", "r_gt_1", "bounded_below", "via_s"), "D4.case2")
    started = time.perf_counter()
    r = 1 / (1 + S.a_nonneg) if negate == "r_gt_1" else 1 + S.a_pos
    q = S.kappa * r
    alpha = _alpha(negate)
    ev = sp.Symbol("epsilon", positive=True)
    F, lx = sp.Function("F"), sp.Function("L_x")
    rest = sp.Symbol("R", nonnegative=True)
    x_i = ev + S.z  # w_i > eps: w_i = eps + z
    if negate == "via_s":
        lx_before, lx_after = F(x_i, 0), F(x_i - ev, ev)
    else:
        lx_before, lx_after = lx(x_i + rest), lx((x_i - ev) + ev + rest)
    change = (lx_after + _cost(x_i - ev, Pi, q, S.kappa, alpha) + _cost(ev, Pj, q, S.kappa, alpha)
              - lx_before - _cost(x_i, Pi, q, S.kappa, alpha))
    lx_change = lx_after - lx_before
    c_half = r * wi ** (r - 1) / 2
    facts = [S.identity("L_x unchanged by the move (s is kept)", lx_change)]
    facts += d3_facts(None, r=q / S.kappa, x=wi, c=c_half)
    facts += [
        S.identity("change = (alpha/q)[P_j^q eps^r - P_i^q (w_i^r - (w_i-eps)^r)]",
                   change - lx_change - alpha / q * (Pj**q * ev ** (q / S.kappa) - Pi**q * (
                       x_i ** (q / S.kappa) - (x_i - ev) ** (q / S.kappa)))),
        S.equals("eps^r / eps -> 0 as eps -> 0 (r > 1)",
                 S.limit(ev ** (q / S.kappa - 1), ev, 0, "+"), sp.Integer(0)),
        S.sign("the D.3 bound makes the change <= eps (alpha/q) P_i^q (-r w_i^(r-1)/2) + o(eps) "
               "< 0", -alpha / q * Pi**q * c_half, "negative"),
    ]
    # (2) stationarity with I circuits, indexed
    k, j, n_circ = sp.symbols("k j J", integer=True, positive=True)
    w, P = sp.IndexedBase("w", positive=True), sp.IndexedBase("P", positive=True)
    e = S.q * S.kappa / (S.q - S.kappa) if exponent is None else exponent
    e = e.subs(S.q, q)
    top = k + n_circ  # I >= k: the sums run to I = k + J
    loss = lx(sp.Sum(w[j], (j, 1, top))) + sp.Sum(_cost(w[j], P[j], q, S.kappa, alpha),
                                                  (j, 1, top))
    grad_k = sp.diff(loss, w[k]).doit()
    g_k = sp.simplify(grad_k.subs(w[k], S.t * P[k] ** (-e)))
    g_1 = g_k.subs({P[k]: Pi})  # the same expression for another circuit
    stationary = S.identity_or_witness(
        f"dL/dw_k at w_k = t P_k^-({sp.sstr(e)}) does not depend on k", sp.simplify(g_k - g_1))
    facts.append(stationary)
    if stationary.value is False:
        # the stated weights are not stationary: a point where dL/dw_k differ
        return RouteResult("symbolic", Status.REFUTED,
                           f"stated weights w_k ~ P_k^-({sp.sstr(e)}) are not stationary: "
                           f"{stationary.expression}", {"facts": [f.to_dict() for f in facts]},
                           counterexample={"exponent": sp.sstr(e),
                                           "gradient_difference": stationary.witness["value"],
                                           "at": stationary.witness["point"]},
                           seconds=time.perf_counter() - started)
    # (3) existence: L_x >= B, cost coercive
    B = sp.Symbol("B", real=True)
    lower = -sp.exp(S.t) if negate == "bounded_below" else B
    facts.append(S.equals("a minimiser exists: inf L_x + (alpha/q) P^q t^r -> oo",
                          S.limit(lower + _cost(S.t, Pi, q, S.kappa, alpha), S.t, sp.oo),
                          sp.oo))
    return S.route_from_facts(
        facts, f"q > kappa: w*_i > 0 and w*_i ~ P_i^-({sp.sstr(e)})",
        "a minimiser exists and has no zero weight; at an interior minimiser every dL/dw_k "
        "is equal (the shares minimise the cost at fixed s), which fixes the power law "
        "(the cost is strictly convex for r > 1, so this point is the unique one)",
        started)


def symbolic_D4_toy_ratio(negate: str | None = None) -> RouteResult:
    """Hypothesis ``q_gt_kappa`` (q = 2 > kappa = 6/5; negated: kappa = 5/2)."""
    _check(negate, ("q_gt_kappa",), "D4.toy_ratio")
    started = time.perf_counter()
    q = sp.Integer(2)
    kappa = sp.Rational(5, 2) if negate == "q_gt_kappa" else sp.Rational(6, 5)
    e = sp.simplify(q * kappa / (q - kappa))
    ratio = sp.Integer(2) ** e
    facts = [S.sign("q - kappa > 0 (case 2 applies)", q - kappa, "positive"),
             S.equals("q kappa / (q - kappa) = 3 at q=2, kappa=6/5", e, sp.Integer(3)),
             S.equals("w_G/w_M = (P_M/P_G)^3 = 8", ratio, sp.Integer(8))]
    return S.route_from_facts(facts, "toy (P_G=1, P_M=2, q=2, kappa=1.2): w_G/w_M = 8",
                              "D4.case2 ratio formula", started)


# ----------------------------------------------------------------------------- numeric
def _wta_loss(problem: O.OptimumProblem) -> float:
    best = min((O.allocation_with_shares(problem, np.eye(problem.n_circuits)[i])
                for i in range(problem.n_circuits)),
               key=lambda w: O.effective_loss(w, problem.P, problem.q, problem.kappa,
                                              problem.alpha, problem.n_classes))
    return O.effective_loss(best, problem.P, problem.q, problem.kappa, problem.alpha,
                            problem.n_classes)


def numeric_D4_case2(seed: int, n_instances: int = 20,
                     exponent: Callable[[float, float], float] | None = None,
                     case: str = O.POWER_LAW) -> RouteResult:
    """The numeric minimiser's shares agree with ``P_i^(-exponent(q, kappa))`` (normalised).

    ``case`` picks which instances are sampled: running the power law on
    ``winner_take_all`` instances is the falsification of D4.case1.
    """
    started = time.perf_counter()
    exp_fn = _coerce_exponent(exponent)
    rng = np.random.default_rng(seed)
    worst = 0.0
    for i in range(n_instances):
        prob = random_problem(rng, case)
        opt = O.minimise(prob, seed=seed + i)
        shares = O.power_law_shares(prob.P, prob.q, prob.kappa,
                                    exponent=exp_fn(prob.q, prob.kappa))
        stated = O.allocation_with_shares(prob, shares)
        stated_loss = O.effective_loss(stated, prob.P, prob.q, prob.kappa, prob.alpha,
                                       prob.n_classes)
        # relative error of every share float64 can hold (a share below 1e-250 of the
        # total is a weight the loss cannot see)
        seen = shares > 1e-250
        err = float(np.max(np.abs(opt.shares[seen] - shares[seen]) / shares[seen])) \
            if opt.total > 0 else (0.0 if stated.sum() == 0 else math.inf)
        worst = max(worst, err)
        if err > SHARE_RTOL or stated_loss > opt.loss * (1 + 1e-9) + 1e-12:
            return RouteResult(
                "numeric", Status.REFUTED,
                f"instance {i} (q/kappa={prob.r:.3g}, P={np.round(prob.P, 3).tolist()}): "
                f"optimum loss {opt.loss:.6g} < stated power-law loss {stated_loss:.6g}; "
                f"shares {np.round(opt.shares, 4).tolist()} vs stated "
                f"{np.round(shares, 4).tolist()}",
                {"seed": seed, "instance": i},
                counterexample={**_problem_dict(prob), "optimum_weights": opt.weights,
                                "optimum_loss": opt.loss, "stated_weights": stated,
                                "stated_loss": stated_loss},
                seconds=time.perf_counter() - started)
    return RouteResult("numeric", Status.VERIFIED,
                       f"{n_instances} seeded instances (I=2..6, q/kappa in [1.001, 20], alpha "
                       f"in [1e-6, 5]): numeric optimum shares match P_i^(-q kappa/(q-kappa)) "
                       f"to relative {worst:.1e}",
                       {"seed": seed, "n_instances": n_instances, "max_share_error": worst},
                       seconds=time.perf_counter() - started)


def numeric_D4_winner_take_all(seed: int, n_instances: int = 20, case: str = O.WINNER_TAKE_ALL
                               ) -> RouteResult:
    """The numeric optimum puts no weight on non-minimal P and matches the 1-D
    winner-take-all loss. ``case='power_law'`` is the falsification of D4.case2."""
    started = time.perf_counter()
    rng = np.random.default_rng(seed)
    for i in range(n_instances):
        prob = random_problem(rng, case)
        opt = O.minimise(prob, seed=seed + i)
        wta = O.winner_take_all_weights(prob)
        wta_loss = O.effective_loss(wta, prob.P, prob.q, prob.kappa, prob.alpha,
                                    prob.n_classes)
        losers = np.asarray(prob.P) > min(prob.P)
        leak = float(opt.weights[losers].max()) if losers.any() else 0.0
        if leak > 1e-12 * max(opt.total, 1.0) or not math.isclose(opt.loss, wta_loss,
                                                                  rel_tol=1e-9, abs_tol=1e-12):
            return RouteResult(
                "numeric", Status.REFUTED,
                f"instance {i} (q/kappa={prob.r:.3g}, P={np.round(prob.P, 3).tolist()}): "
                f"optimum loss {opt.loss:.6g} < winner-take-all loss {wta_loss:.6g}; "
                f"optimum weights {np.round(opt.weights, 4).tolist()} keep non-minimal circuits",
                {"seed": seed, "instance": i},
                counterexample={**_problem_dict(prob), "optimum_weights": opt.weights,
                                "optimum_loss": opt.loss, "winner_take_all_weights": wta,
                                "winner_take_all_loss": wta_loss},
                seconds=time.perf_counter() - started)
    return RouteResult("numeric", Status.VERIFIED,
                       f"{n_instances} seeded instances (I=2..6, q/kappa in [0.01, 0.999]): zero "
                       "weight off argmin P, loss = 1-D winner-take-all loss (rel 1e-9)",
                       {"seed": seed, "n_instances": n_instances},
                       seconds=time.perf_counter() - started)


def numeric_D4_boundary(seed: int, n_instances: int = 12, require_ties: bool = True
                        ) -> RouteResult:
    """q = kappa with two tied minimal P: the numeric optimum matches winner-take-all; any
    split between the tied minima has the same loss; weight on a larger P costs more.

    ``require_ties=False`` drops the tie: the statement "any split between the two
    smallest P is optimal" is then refuted (falsification of D4.boundary)."""
    started = time.perf_counter()
    rng = np.random.default_rng(seed)
    for i in range(n_instances):
        prob = random_problem(rng, O.BOUNDARY, ties=require_ties)
        opt = O.minimise(prob, seed=seed + i)
        order = np.argsort(prob.P, kind="stable")
        a, b = int(order[0]), int(order[1])
        s = opt.total
        split_losses = []
        for lam in rng.uniform(0, 1, 5):
            w = np.zeros(prob.n_circuits)
            w[a], w[b] = lam * s, (1 - lam) * s
            split_losses.append(O.effective_loss(w, prob.P, prob.q, prob.kappa, prob.alpha,
                                                 prob.n_classes))
        worst = max(split_losses)
        if not math.isclose(worst, opt.loss, rel_tol=1e-10, abs_tol=1e-13):
            return RouteResult(
                "numeric", Status.REFUTED,
                f"instance {i} (P={np.round(prob.P, 3).tolist()}, q=kappa={prob.q:.3g}): a "
                f"split of s*={s:.4g} between P={prob.P[a]:.3g} and P={prob.P[b]:.3g} has loss "
                f"{worst:.8g} > optimum {opt.loss:.8g}",
                {"seed": seed, "instance": i},
                counterexample={**_problem_dict(prob), "split_loss": worst,
                                "optimum_loss": opt.loss, "optimum_weights": opt.weights},
                seconds=time.perf_counter() - started)
        if not math.isclose(opt.loss, _wta_loss(prob), rel_tol=1e-9, abs_tol=1e-12):
            return RouteResult("numeric", Status.FAILED,
                               f"instance {i}: optimum differs from winner-take-all",
                               {"seed": seed}, seconds=time.perf_counter() - started)
        if prob.n_circuits > 2 and s > 0:  # s* = 0 (strong decay): no weight to move
            c = int(order[2])
            w = np.zeros(prob.n_circuits)
            w[a], w[c] = 0.5 * s, 0.5 * s
            if not O.effective_loss(w, prob.P, prob.q, prob.kappa, prob.alpha,
                                    prob.n_classes) > opt.loss:
                return RouteResult("numeric", Status.FAILED,
                                   f"instance {i}: weight on a larger P did not cost more",
                                   {"seed": seed}, seconds=time.perf_counter() - started)
    return RouteResult("numeric", Status.VERIFIED,
                       f"{n_instances} seeded instances with a tie at minimal P: optimum = "
                       "winner-take-all loss; 5 random splits among the tie equal it (rel 1e-10)",
                       {"seed": seed, "n_instances": n_instances},
                       seconds=time.perf_counter() - started)


def numeric_D4_toy_ratio(kappa: float = TOY["kappa"], expected: float = 8.0) -> RouteResult:
    """Numeric optimum of the toy (P_G=1, P_M=2, q=2, alpha=0.005, n=113): w_G/w_M = 8.

    ``kappa=2.5`` (q < kappa) is the falsification: the ratio is then infinite."""
    started = time.perf_counter()
    prob = O.OptimumProblem(TOY["P"], TOY["q"], kappa, TOY["alpha"], TOY["n_classes"])
    opt = O.minimise(prob)
    w_g, w_m = opt.weights
    ratio = w_g / w_m if w_m > 0 else math.inf
    data = {**_problem_dict(prob), "weights": opt.weights, "ratio": ratio}
    if math.isclose(ratio, expected, rel_tol=1e-6):
        return RouteResult("numeric", Status.VERIFIED,
                           f"numeric optimum w_G={w_g:.6g}, w_M={w_m:.6g}: ratio {ratio:.8g} "
                           f"(expected {expected:g})", data,
                           seconds=time.perf_counter() - started)
    return RouteResult("numeric", Status.REFUTED,
                       f"kappa={kappa:g}, q=2: numeric optimum w_G={w_g:.6g}, w_M={w_m:.6g}, "
                       f"ratio {ratio:.6g} != {expected:g}", data, counterexample=data,
                       seconds=time.perf_counter() - started)


# ----------------------------------------------------------------------------- per-circuit kappa
def symbolic_D4_mixed_kappa(negate: str | None = None) -> RouteResult:
    """One kappa per circuit, ``r_i = q/kappa_i``, on the claim's own cost terms.

    (1) A circuit k with r_k > 1 keeps weight: moving eps from a circuit j with w_j > 0
    onto w_k = 0 keeps s and changes the cost by ``c_k eps^(r_k) - c_j (w_j^(r_j) -
    (w_j - eps)^(r_j))``; divided by eps this tends to ``-c_j r_j w_j^(r_j-1) < 0``
    because ``eps^(r_k - 1) -> 0``. (2) Two circuits i, j with r_i, r_j <= 1 never both
    keep weight: along ``w_i + w_j = t`` the cost ``c_i x^(r_i) + c_j (t-x)^(r_j)`` is
    concave in x, so its minimum over [0, t] is at an end. Hypotheses: ``alpha_pos``,
    ``r_k_gt_1`` (negated: r_k = 1/(1+a)), ``pair_r_le_1`` (negated: r_j = 1 + b, b > 0)
    and ``via_s`` (negated: L_x = F(w_i, w_j))."""
    _check(negate, ("alpha_pos", "r_k_gt_1", "pair_r_le_1", "via_s"), "D4.mixed_kappa")
    started = time.perf_counter()
    alpha = _alpha(negate)
    kk, ki, kj = sp.symbols("kappa_k kappa_i kappa_j", positive=True)
    b_nn, b_pos = sp.Symbol("b", nonnegative=True), sp.Symbol("b", positive=True)
    r_k = 1 / (1 + S.a_nonneg) if negate == "r_k_gt_1" else 1 + S.a_pos
    r_i = 1 / (1 + S.a_nonneg)
    r_j = 1 + b_pos if negate == "pair_r_le_1" else 1 / (1 + b_nn)
    q = S.q
    ev = sp.Symbol("epsilon", positive=True)
    Pk = sp.Symbol("P_k", positive=True)
    # kappa_i = q / r_i: the cost's exponent of w is then r_i itself
    cost_k = _cost(ev, Pk, q, q / r_k, alpha)
    x_j = ev + S.z  # w_j > eps
    drop_j = _cost(x_j, Pj, q, q / r_i, alpha) - _cost(x_j - ev, Pj, q, q / r_i, alpha)
    cj = alpha / q * Pj**q
    F, lx = sp.Function("F"), sp.Function("L_x")
    xw, tt = sp.Symbol("x", positive=True), sp.Symbol("t", positive=True)
    if negate == "via_s":
        lx_move = F(xw, tt - xw) - F(tt, 0)
    else:
        lx_move = lx(xw + (tt - xw)) - lx(tt)
    y = sp.Symbol("y", positive=True)  # t - x > 0
    h = _cost(xw, Pi, q, q / r_i, alpha) + _cost(y, Pj, q, q / r_j, alpha)
    h2 = sp.diff(h, xw, 2) + sp.diff(h, y, 2)  # d2/dx2 of h(x, t - x): no cross term
    facts = [
        S.identity("L_x unchanged by moving weight between two circuits (s kept)", lx_move),
        S.equals("eps^(r_k) / eps -> 0 as eps -> 0 (r_k > 1)",
                 S.limit(cost_k / ev, ev, 0, "+"), sp.Integer(0)),
        S.equals("(cost drop of j) / eps -> c_j r_j w_j^(r_j - 1)",
                 S.limit(drop_j / ev, ev, 0, "+"), cj * r_i * S.z ** (r_i - 1)),
        S.sign("c_j r_j w_j^(r_j-1) > 0: the move lowers L for small eps",
               cj * r_i * S.z ** (r_i - 1), "positive"),
        S.sign("d2/dx2 [c_i x^(r_i) + c_j (t-x)^(r_j)] <= 0 for r_i, r_j <= 1", h2,
               "nonpositive"),
    ]
    return S.route_from_facts(
        facts, "every circuit with r_i > 1 keeps weight; at most one with r_i <= 1 does",
        "a concave function on [0, t] takes its minimum at an end (strictly when some "
        "r < 1; with both r = 1 the split is free, as in the boundary case)", started)


def random_per_circuit_problem(rng: np.random.Generator, all_concave: bool = False,
                               ) -> O.OptimumProblem:
    I = int(rng.integers(2, 5))
    P = 0.5 * np.cumprod(1.0 + rng.uniform(0.05, 0.6, size=I))
    P = rng.permutation(P)
    q = float(rng.uniform(0.5, 3.0))
    if all_concave:
        rs = rng.uniform(0.05, 0.95, size=I)
    else:
        rs = np.where(rng.random(I) < 0.5, rng.uniform(0.05, 0.95, I), rng.uniform(1.05, 4.0, I))
    alpha = float(np.exp(rng.uniform(np.log(1e-4), np.log(0.5))))
    return O.OptimumProblem(tuple(float(p) for p in P), q, tuple(float(q / r) for r in rs),
                            alpha, int(rng.integers(2, 200)))


def numeric_D4_mixed_kappa(seed: int, n_instances: int = 16, pair_bound: float = 1.0
                           ) -> RouteResult:
    """Seeded per-circuit problems: the numeric optimum keeps every r_i > 1 circuit, at
    most one circuit with ``r_i <= pair_bound``, and with every r_i <= 1 equals the best
    single-circuit ray. ``pair_bound = 4`` (the statement extended to r_i > 1 circuits)
    is the falsification."""
    started = time.perf_counter()
    rng = np.random.default_rng(seed)
    not_min_p = 0
    for i in range(n_instances):
        prob = random_per_circuit_problem(rng, all_concave=i % 2 == 0)
        opt = O.minimise(prob, seed=seed + i)
        rs = prob.rs
        if opt.total == 0:
            continue
        bad = None
        if np.any(opt.weights[rs > pair_bound] <= 0):
            bad = "a circuit with r_i > 1 has zero weight"
        elif np.count_nonzero(opt.weights[rs <= pair_bound]) > 1:
            bad = f"{np.count_nonzero(opt.weights[rs <= pair_bound])} circuits with " \
                  f"r_i <= {pair_bound:g} keep weight"
        elif np.all(rs <= 1):
            ray = O.winner_take_all_weights(prob)
            ray_loss = O.effective_loss(ray, prob.P, prob.q, prob.kappa, prob.alpha,
                                        prob.n_classes)
            if not math.isclose(opt.loss, ray_loss, rel_tol=1e-10):
                bad = f"optimum loss {opt.loss:.10g} != best ray {ray_loss:.10g}"
            not_min_p += int(np.argmax(opt.weights) != int(np.argmin(prob.P)))
        if bad:
            return RouteResult(
                "numeric", Status.REFUTED,
                f"instance {i} (r = {np.round(rs, 3).tolist()}, P = "
                f"{np.round(prob.P, 3).tolist()}): {bad}; weights "
                f"{np.round(opt.weights, 4).tolist()}", {"seed": seed, "instance": i},
                counterexample={**_problem_dict(prob), "optimum_weights": opt.weights},
                seconds=time.perf_counter() - started)
    return RouteResult("numeric", Status.VERIFIED,
                       f"{n_instances} seeded problems with kappa per circuit (I=2..4, r_i "
                       "in [0.05, 0.95] or [1.05, 4]): every r_i > 1 circuit keeps weight, at "
                       "most one r_i <= 1 circuit does; all-concave optima = best ray "
                       f"({not_min_p} of them not on the minimal P)",
                       {"seed": seed, "n_instances": n_instances, "winner_not_min_P": not_min_p},
                       seconds=time.perf_counter() - started)
