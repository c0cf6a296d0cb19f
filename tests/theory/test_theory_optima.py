"""Theorem D.4 (weight decay favours efficient circuits) as properties of circeff.theory.optima.

The cross-check ``test_D4_optimum_agrees_with_brute_force`` runs ``circeff theory optimum``
and compares it with a brute-force minimiser written here, independently of the package:
its own effective loss, every support (face) of the non-negative orthant enumerated, and on
each face BFGS in log-weights ``w_i = exp(z_i)`` from several starting totals.
"""

from __future__ import annotations

import itertools
import json
import math
import tempfile
from pathlib import Path

import numpy as np
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st
from scipy.optimize import minimize, root
from scipy.special import expit

from circeff.cli.main import run
from circeff.errors import ConfigError
from circeff.theory import optima as O
from tests.strategies.theory import (efficiency_vectors, optimum_problems, per_circuit_problems,
                                     q_kappa_pairs)


# ----------------------------------------------------------------------------- brute force
def _bf_loss_grad(z, support, P, q, kappa, alpha, n):
    """Effective loss and gradient in log-weights on one face (written independently;
    ``kappa`` is an array, one entry per circuit)."""
    w = np.zeros(len(P))
    w[support] = np.exp(z)
    s = w.sum()
    loss = np.logaddexp(0.0, math.log(n - 1) - s) + alpha / q * np.sum((w ** (1 / kappa) * P) ** q)
    dlx = -expit(math.log(n - 1) - s)
    ws, ks = w[support], kappa[support]
    grad = ws * (dlx + alpha / ks * P[support] ** q * ws ** (q / ks - 1))
    return loss, grad


def brute_force_minimise(P, q, kappa, alpha, n, totals=(1e-3, 0.05, 0.5, 3.0, 10.0, 30.0)):
    """Every support (face), BFGS in log-weights from each starting total: a global
    minimum by enumeration, sharing no code with the package."""
    P = np.asarray(P, dtype=float)
    I = P.size
    kappa = np.broadcast_to(np.asarray(kappa, dtype=float), (I,))
    best_w, best_l = np.zeros(I), math.log(n)  # w = 0: L = log(1 + (n - 1)) = log n
    for k in range(1, I + 1):
        for support in itertools.combinations(range(I), k):
            support = list(support)
            for total in totals:
                z0 = np.full(k, math.log(total / k))
                # BFGS's line search may probe huge (or hugely negative) log-weights: the
                # inf/nan loss or gradient there, in our function and in scipy's np.dot of
                # it with the step, only rejects that trial, so the warnings are noise
                with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
                    res = minimize(_bf_loss_grad, z0, args=(support, P, q, kappa, alpha, n),
                                   jac=True, method="BFGS",
                                   options={"gtol": 1e-11, "maxiter": 2000})
                z = _polish_stationarity(res.x, support, P, q, kappa, alpha, n)
                with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
                    f_z = _bf_loss_grad(z, support, P, q, kappa, alpha, n)[0]
                if f_z <= res.fun:
                    res.x, res.fun = z, f_z
                if res.fun < best_l and np.all(res.x < 20):
                    best_l = float(res.fun)
                    best_w = np.zeros(I)
                    best_w[support] = np.exp(res.x)
    return best_w, best_l


def _polish_stationarity(z0, support, P, q, kappa, alpha, n):
    """Solve the face's stationarity equations in log form,
    ``log(alpha/kappa_i) + q log P_i + (r_i - 1) z_i - log p(s) = 0`` with
    ``p(s) = expit(log(n-1) - s)``: well scaled even where the loss is 1e-30 and BFGS's
    gradient test stops early."""
    ks, Ps = kappa[support], P[support]

    def eqs(z):
        s = np.exp(z).sum()
        log_p = -np.logaddexp(0.0, s - math.log(n - 1))
        return np.log(alpha / ks) + q * np.log(Ps) + (q / ks - 1) * z - log_p

    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
        sol = root(eqs, z0, method="hybr", options={"xtol": 1e-14})
    # hybr reports failure ("xtol too small") on a root it has converged to when the
    # scales differ by decades; a root is judged by its residual (the caller keeps it
    # only where it lowers the loss)
    ok = np.all(np.isfinite(sol.x)) and (sol.success or np.max(np.abs(sol.fun)) < 1e-10)
    return sol.x if ok else z0


def _cli_optimum(problem: O.OptimumProblem) -> dict:
    kappa = problem.kappa if isinstance(problem.kappa, tuple) else (problem.kappa,)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "optimum.json"
        code = run(["theory", "optimum", "--p", ",".join(repr(p) for p in problem.P),
                    "--q", repr(problem.q), "--kappa", ",".join(repr(k) for k in kappa),
                    "--alpha", repr(problem.alpha), "--n-classes", str(problem.n_classes),
                    "--json", str(path)])
        assert code == 0
        return json.loads(path.read_text())


@st.composite
def cross_check_problems(draw):
    kappa = draw(st.floats(0.5, 2.0))
    # q / kappa across all three cases, including tiny r and r just either side of 1
    r = draw(st.one_of(st.floats(0.01, 0.3), st.floats(0.3, 0.9), st.floats(0.9, 0.999),
                       st.floats(1.001, 1.2), st.floats(1.2, 6.0)))
    P = draw(efficiency_vectors(2, 4))
    alpha = float(np.exp(draw(st.floats(math.log(1e-5), math.log(1.0)))))
    n = draw(st.integers(2, 200))
    return O.OptimumProblem(P, r * kappa, kappa, alpha, n)


def _assert_agrees(problem):
    got = _cli_optimum(problem)
    w_bf, l_bf = brute_force_minimise(problem.P, problem.q, problem.kappa, problem.alpha,
                                      problem.n_classes)
    w = np.asarray(got["weights"])
    assert got["loss"] <= l_bf * (1 + 1e-10) + 1e-14, (got["loss"], l_bf)
    np.testing.assert_allclose(got["loss"], l_bf, rtol=1e-6, atol=1e-300)
    if got["closed_form"] is not None:
        np.testing.assert_allclose(got["closed_form_loss"], got["loss"], rtol=1e-12)
    if math.log(problem.n_classes) - got["loss"] <= 64 * np.finfo(float).eps * l_bf:
        # the optimum lowers the loss below its value at w = 0 (log n) by less than 64 ulps
        # (r just above 1: a total of 1e-14 at r = 1.001), so the brute force, which keeps 0
        # unless a point is strictly lower, cannot place it: the closed form, where there is
        # one, still can; elsewhere the point must be stationary
        if got["closed_form"] is not None:
            closed = np.asarray(got["closed_form"])
            np.testing.assert_allclose(w, closed, rtol=1e-4, atol=1e-4 * np.abs(closed).max())
        else:
            assert got["kkt_residual"] <= 1e-9, got
        return
    # weights below 1e-6 of the total move the loss by less than BFGS resolves
    np.testing.assert_allclose(w, w_bf, rtol=1e-4, atol=1e-4 * max(np.abs(w_bf).max(), 1e-12))


#: the problem that once went wrong: a closed form 5e7 beside the optimum 14.05 (r = 0.075)
SMALL_R = {"P": (0.05, 0.3, 1.0, 2.0, 3.5, 5.0), "q": 0.3, "kappa": 4.0, "alpha": 0.01,
           "n_classes": 113}


R_TABLE = [0.01, 0.05, 0.075, 0.1, 0.3, 0.95, 1.05, 3.0, 10.0]


def _agree_at_r(r, n_circuits):
    P = SMALL_R["P"][:n_circuits]
    problem = O.OptimumProblem(**{**SMALL_R, "P": P, "q": r * SMALL_R["kappa"]})
    _assert_agrees(problem)
    opt = O.minimise(problem)
    np.testing.assert_allclose(opt.weights, opt.closed_form, rtol=1e-9, atol=1e-300)


@pytest.mark.parametrize("r", R_TABLE)
def test_D4_closed_form_numeric_and_brute_force_agree_across_r(r):
    """Closed form = numeric = brute force on the small-r problem's three smallest norms,
    q = r kappa (the brute force enumerates 7 faces; the six-circuit version is slow)."""
    _agree_at_r(r, 3)


@pytest.mark.slow
@pytest.mark.parametrize("r", R_TABLE)
def test_D4_closed_form_numeric_and_brute_force_agree_across_r_six_circuits(r):
    _agree_at_r(r, 6)


def test_D4_small_r_command_closed_form_is_the_optimum():
    got = _cli_optimum(O.OptimumProblem(**SMALL_R))
    assert got["case"] == O.WINNER_TAKE_ALL
    np.testing.assert_allclose(got["closed_form"][0], 14.053233, rtol=1e-6)
    np.testing.assert_allclose(got["weights"], got["closed_form"], rtol=1e-12)
    np.testing.assert_allclose(got["loss"], 0.01663277334, rtol=1e-9)


@st.composite
def per_circuit_cross_check(draw):
    return draw(per_circuit_problems(2, 3))


#: partial problems in the tiny-loss regime (s* ~ 24, loss ~ 1e-8) that once went wrong:
#: the local solves stopped at w_2 = 6e-4 (loss 5e-5 above the optimum, w_2 = 0.032), and
#: the brute force's stationarity polish threw away a converged root (hybr flags
#: "xtol too small"), leaving it 2.6e-6 above the optimum (w_2 = 1.65e-3).
MIXED_TINY_LOSS = [
    O.OptimumProblem((0.010114856452604551, 1.0, 0.0301973834223185), 2.6875,
                     (53.75, 35.71288848827065, 0.671875), 0.01831563888873418, 2),
    O.OptimumProblem((0.011108996538242306, 1.0, 0.22313016014842982), 3.0,
                     (48.0, 6.0, 0.8571428571428571), 0.01831563888873418, 2),
]


@settings(max_examples=10)
@given(per_circuit_cross_check())
@example(MIXED_TINY_LOSS[0])
@example(MIXED_TINY_LOSS[1])
def test_D4_mixed_kappa_optimum_agrees_with_brute_force(problem):
    _assert_agrees(problem)


@given(per_circuit_problems())
def test_D4_mixed_kappa_structure(problem):
    """One kappa per circuit: every r_i > 1 circuit keeps weight (when any weight is kept);
    at most one r_i <= 1 circuit keeps weight; with every r_i <= 1 the winner is the best
    single-circuit ray, which need not be the minimal P."""
    opt = O.minimise(problem)
    rs = problem.rs
    if opt.total == 0:
        return
    # a circuit with r_i > 1 keeps w_i >= its stationary value at w_i = 0-pull; where
    # even that underflows float64 the weight is unrepresentable
    p = float(-O.CrossEntropyLoss(problem.n_classes).derivative(opt.total))
    with np.errstate(under="ignore", over="ignore", divide="ignore"):
        floor = (p / (problem.cost_coefficients * rs)) ** (1 / (rs - 1))
    assert np.all(opt.weights[(rs > 1) & (floor > 1e-280)] > 0)
    assert np.count_nonzero(opt.weights[rs <= 1]) <= 1
    if np.all(rs <= 1):
        assert opt.case == O.WINNER_TAKE_ALL and np.count_nonzero(opt.weights) == 1
        rays = [O.ray_weights(problem, i) for i in range(problem.n_circuits)]
        ray_losses = [O.effective_loss(w, problem.P, problem.q, problem.kappa, problem.alpha,
                                       problem.n_classes) for w in rays]
        np.testing.assert_allclose(opt.loss, min(ray_losses), rtol=1e-12)
    if opt.closed_form is not None:
        np.testing.assert_allclose(opt.loss, opt.closed_form_loss, rtol=1e-10)


@given(per_circuit_problems(2, 4))
@example(MIXED_TINY_LOSS[0])
def test_D4_mixed_kappa_face_points_are_stationary_and_bound_the_minimum(problem):
    """Every point :func:`kkt_candidates` returns is stationary on its face (each positive
    weight's marginal cost equals p(s), relative 1e-9, read from the loss written here),
    and the minimiser is never above the best of them."""
    opt = O.minimise(problem)
    for w in O.kkt_candidates(problem):
        on = w > 1e-280
        s = w.sum()
        p = float(expit(math.log(problem.n_classes - 1) - s))
        marginal = (problem.alpha / problem.kappas[on] * np.asarray(problem.P)[on] ** problem.q
                    * w[on] ** (problem.rs[on] - 1))
        np.testing.assert_allclose(marginal, p, rtol=1e-9)
        f = O.effective_loss(w, problem.P, problem.q, problem.kappa, problem.alpha,
                             problem.n_classes)
        assert opt.loss <= f * (1 + 1e-12)


def test_D4_mixed_kappa_winner_is_not_always_the_minimal_P():
    """kappa = (4.0, 2.2), q = 2 (r = 0.5, 0.909), P = (1.0, 0.6): circuit 0 has the larger
    P but the smaller r, so c_0 s^0.5 < c_1 s^0.909 once s > (1/0.36)^(1/0.409) ~ 12.2.
    Small alpha (large s*) makes circuit 0 the winner, larger alpha circuit 1. (With the
    trained transformers' kappa = (6.0, 4.4) the same holds beyond s ~ 5.7 for
    P = (1.0, 0.9), but there the optimum drops to w = 0 before s* gets that small.)"""
    winners = set()
    for alpha in (1e-6, 1e-3, 1e-2, 1.0):
        opt = O.minimise(O.OptimumProblem((1.0, 0.6), 2.0, (4.0, 2.2), alpha, 113))
        winners.add(int(np.argmax(opt.weights)) if opt.total > 0 else -1)
    assert {0, 1} <= winners


#: r just above 1, where the loss is flat to rounding around a total of 1e-8: the local solves
#: once stopped 5e-4 (relative) away from the exact stationary point
FLAT_R = O.OptimumProblem((1.25, 1.875), 1.001953125, 1.0, 0.8161762130223398, 67)


@settings(max_examples=10)
@example(FLAT_R)
@given(cross_check_problems())
def test_D4_optimum_agrees_with_brute_force(problem):
    _assert_agrees(problem)


@pytest.mark.slow
@settings(max_examples=150)
@given(cross_check_problems())
def test_D4_optimum_agrees_with_brute_force_thorough(problem):
    _assert_agrees(problem)


# ----------------------------------------------------------------------------- properties
@given(optimum_problems(O.POWER_LAW, max_size=8, spread=True))
def test_D4_case2_power_law_ratio(problem):
    """Shares compared with a relative tolerance, share by share (a share of 1e-40 must
    be right to 1e-6 of itself), wherever float64 can represent the weight."""
    opt = O.minimise(problem)
    assert opt.case == O.POWER_LAW
    shares = O.power_law_shares(problem.P, problem.q, problem.kappa)
    seen = shares * opt.total > 1e-280
    if not seen.any():  # s* itself below float64 resolution (strong decay, r ~ 1)
        assert opt.total < 1e-250
        return
    assert np.all(opt.weights[seen] > 0)
    np.testing.assert_allclose(opt.shares[seen], shares[seen], rtol=1e-6, atol=0)
    i, j = int(np.argmin(problem.P)), int(np.argmax(problem.P))
    if seen[j]:
        np.testing.assert_allclose(opt.weights[i] / opt.weights[j],
                                   O.predicted_ratio(problem.P[i], problem.P[j], problem.q,
                                                     problem.kappa), rtol=1e-6)


@given(optimum_problems(O.POWER_LAW, max_size=8, spread=True))
def test_D4_case2_closed_form_matches_numeric(problem):
    opt = O.minimise(problem)
    seen = opt.closed_form > 1e-280
    np.testing.assert_allclose(opt.weights[seen], opt.closed_form[seen], rtol=1e-7, atol=0)
    np.testing.assert_allclose(opt.loss, opt.closed_form_loss, rtol=1e-12)


@given(optimum_problems(O.POWER_LAW, spread=True))
def test_D4_case2_total_solves_effective_norm_problem(problem):
    """s* is stationary for L_x(s) + (alpha/q) P_eff^q s^r: the two sides of
    ``p(s) = (alpha/kappa) P_eff^q s^(r-1)`` agree in log form (relative)."""
    w = O.closed_form_weights(problem)
    s, r = w.sum(), problem.r
    if s < 1e-250:  # below float64: s* is represented as 0
        return
    p_eff = O.effective_norm(problem)
    log_p = -np.logaddexp(0.0, s - math.log(problem.n_classes - 1))
    log_cost = (math.log(problem.alpha / problem.kappa) + problem.q * math.log(p_eff)
                + (r - 1) * math.log(s))
    assert abs(log_p - log_cost) < 1e-9


@given(optimum_problems(O.WINNER_TAKE_ALL, max_size=8, spread=True))
def test_D4_case1_winner_take_all(problem):
    opt = O.minimise(problem)
    assert opt.case == O.WINNER_TAKE_ALL
    winner = int(np.argmin(problem.P))
    losers = np.arange(problem.n_circuits) != winner
    assert np.all(opt.weights[losers] == 0)
    assert (opt.weights[winner] > 0) == (opt.closed_form[winner] > 0)  # s* = 0 when decay wins
    np.testing.assert_allclose(opt.weights, opt.closed_form, rtol=1e-9, atol=0)


@given(optimum_problems(O.WINNER_TAKE_ALL, max_size=8, spread=True, tie=True))
def test_D4_case1_ties_pick_one_circuit(problem):
    """Exact tie at the minimal P under r < 1: the optimum keeps ONE of the tied circuits
    (strict subadditivity), with the winner-take-all loss."""
    opt = O.minimise(problem)
    tied = np.flatnonzero(np.asarray(problem.P) == min(problem.P))
    assert tied.size == 2
    assert np.count_nonzero(opt.weights) <= 1
    assert np.all(opt.weights[np.asarray(problem.P) > min(problem.P)] == 0)
    np.testing.assert_allclose(opt.loss, opt.closed_form_loss, rtol=1e-12)


@given(optimum_problems(O.BOUNDARY, tie=True), st.floats(0.0, 1.0))
def test_D4_boundary_any_split_among_ties_optimal(problem, lam):
    opt = O.minimise(problem)
    assert opt.case == O.BOUNDARY
    tied = np.flatnonzero(np.isclose(problem.P, min(problem.P), rtol=0, atol=0))
    assert tied.size == 2
    w = np.zeros(problem.n_circuits)
    w[tied[0]], w[tied[1]] = lam * opt.total, (1 - lam) * opt.total
    split = O.effective_loss(w, problem.P, problem.q, problem.kappa, problem.alpha,
                             problem.n_classes)
    np.testing.assert_allclose(split, opt.loss, rtol=1e-12)
    assert np.all(opt.weights[np.asarray(problem.P) > min(problem.P)] == 0)


@given(optimum_problems(O.BOUNDARY), st.floats(0.01, 0.99))
def test_D4_boundary_weight_on_larger_P_costs_more(problem, lam):
    opt = O.minimise(problem)
    if opt.total == 0:  # decay so strong that s* = 0: there is no weight to move
        assert O.solve_total(problem, float(problem.cost_coefficients.min()))[0] == 0
        return
    order = np.argsort(problem.P)
    w = np.zeros(problem.n_circuits)
    w[order[0]], w[order[1]] = lam * opt.total, (1 - lam) * opt.total
    assert O.effective_loss(w, problem.P, problem.q, problem.kappa, problem.alpha,
                            problem.n_classes) > opt.loss


@given(st.floats(0.05, 10.0), st.floats(0.05, 10.0), st.floats(0.1, 10.0))
def test_D4_case_depends_only_on_q_over_kappa(q, kappa, c):
    """Scaling q and kappa together leaves the optimum's shares unchanged only through r:
    the case of (q, kappa) is the case of (c q, c kappa), and it is decided by r = q/kappa
    against 1 (checked against an independent rule, not against which_case itself)."""
    r = q / kappa
    expected = (O.BOUNDARY if math.isclose(r, 1.0, rel_tol=1e-12) else
                O.WINNER_TAKE_ALL if r < 1 else O.POWER_LAW)
    assert O.which_case(q, kappa) == expected
    if not math.isclose(r, 1.0, rel_tol=1e-9):
        assert O.which_case(c * q, c * kappa) == expected


def test_D4_toy_ratio_is_8():
    assert O.predicted_ratio(1.0, 2.0, 2.0, 1.2) == pytest.approx(8.0, rel=1e-12)
    opt = O.minimise(O.OptimumProblem((1.0, 2.0), 2.0, 1.2, 0.005, 113))
    assert opt.weights[0] / opt.weights[1] == pytest.approx(8.0, rel=1e-8)


def test_D4_predicted_ratio_winner_take_all_and_ties():
    assert O.predicted_ratio(1.0, 2.0, 0.5, 1.0) == math.inf
    assert O.predicted_ratio(2.0, 1.0, 1.0, 1.0) == 0.0
    assert math.isnan(O.predicted_ratio(1.0, 1.0, 1.0, 1.0))
    assert O.predicted_ratio(1.0, 1.0, 2.0, 1.0) == 1.0


@given(optimum_problems(O.POWER_LAW, max_size=4))
def test_D4_effective_loss_matches_formula(problem):
    rng = np.random.default_rng(0)
    w = rng.uniform(0, 5, problem.n_circuits)
    P = np.asarray(problem.P)
    by_hand = (math.log(1 + (problem.n_classes - 1) * math.exp(-w.sum()))
               + problem.alpha / problem.q * np.sum((w ** (1 / problem.kappa) * P) ** problem.q))
    got = O.effective_loss(w, problem.P, problem.q, problem.kappa, problem.alpha,
                           problem.n_classes)
    np.testing.assert_allclose(got, by_hand, rtol=1e-12)
    lx = O.CrossEntropyLoss(problem.n_classes)
    np.testing.assert_allclose(
        O.effective_loss(w, problem.P, problem.q, problem.kappa, problem.alpha,
                         loss_x=lambda s: float(lx.value(s))), got, rtol=1e-12)


@given(q_kappa_pairs(O.POWER_LAW), efficiency_vectors(2, 4))
def test_D4_case2_power_law_for_a_generic_loss(qk, P):
    """The shares do not depend on L_x: with L_x(s) = exp(-s) the power law still holds."""
    q, kappa = qk
    loss = O.CallableLoss(lambda s: math.exp(-s), lower_bound=0.0,
                          fn_prime=lambda s: -math.exp(-s))
    problem = O.OptimumProblem(P, q, kappa, 0.01, 2, loss_x=loss)
    opt = O.minimise(problem)
    np.testing.assert_allclose(opt.shares, O.power_law_shares(P, q, kappa), rtol=1e-5,
                               atol=1e-9)


@pytest.mark.parametrize("kwargs, field", [
    ({"P": (), "q": 2, "kappa": 1, "alpha": 0.01, "n_classes": 5}, "P"),
    ({"P": (1.0, -2.0), "q": 2, "kappa": 1, "alpha": 0.01, "n_classes": 5}, "P"),
    ({"P": (1.0, math.inf), "q": 2, "kappa": 1, "alpha": 0.01, "n_classes": 5}, "P"),
    ({"P": (1.0,), "q": -1, "kappa": 1, "alpha": 0.01, "n_classes": 5}, "q"),
    ({"P": (1.0,), "q": 2, "kappa": 0, "alpha": 0.01, "n_classes": 5}, "kappa"),
    ({"P": (1.0,), "q": 2, "kappa": 1, "alpha": 0.0, "n_classes": 5}, "alpha"),
    ({"P": (1.0,), "q": 2, "kappa": 1, "alpha": 0.01, "n_classes": 1}, "n_classes"),
    ({"P": (1.0,), "q": 2, "kappa": 1, "alpha": 0.01, "n_classes": 2.5}, "n_classes"),
])
def test_D4_problem_validation(kwargs, field):
    with pytest.raises(ConfigError) as info:
        O.OptimumProblem(**kwargs)
    assert info.value.field == field


@pytest.mark.parametrize("r", [0.05, 0.5, 0.97, 1.0, 1.003, 2.0, 12.0])
@pytest.mark.parametrize("coef", [1e-9, 1e-3, 0.3])
def test_D4_generic_solver_matches_cross_entropy_solver(r, coef):
    """The generic 1-D solver (any L_x: sign changes of f' in log s) and the
    cross-entropy solver (stationarity bracket) find the same s* and value when the
    generic one is handed the cross-entropy as a plain function."""
    from circeff.theory import ray as R

    n = 113
    lx = O.CrossEntropyLoss(n)
    s_ce, f_ce = R.solve_cross_entropy(n, coef, r)
    upper = (math.log(n) / coef) ** (1 / r) * (1 + 1e-9)
    s_g, f_g = R.solve_generic(lx.value, lx.derivative, coef, r, upper)
    np.testing.assert_allclose(f_g, f_ce, rtol=1e-13)
    np.testing.assert_allclose(s_g, s_ce, rtol=1e-9, atol=1e-300)
    # and s* is stationary (or 0 with f' >= 0 there)
    if s_ce > 0:
        slope = float(lx.derivative(s_ce)) + coef * r * s_ce ** (r - 1)
        assert abs(slope) <= 1e-9 * float(-lx.derivative(s_ce))
