"""Theorem D.4: the effective loss over circuit weights and its global minimiser.

Setting (SPEC section 4, the paper's Eq. 6). I circuits with parameter norms ``P_i`` at
unit weight, non-negative weights ``w_i``, total ``s = sum_i w_i``::

    L(w) = L_x(s) + (alpha / q) * sum_i (w_i^(1/kappa) * P_i)^q
    L_x(s) = log(1 + (n - 1) exp(-s))          (cross-entropy, n classes)

With ``r = q / kappa`` the cost is ``(alpha/q) sum_i P_i^q w_i^r``. The cases
(:func:`which_case`):

- ``r < 1`` (q < kappa): ``winner_take_all``: all weight on the circuit with minimal P.
  Ties: the optimum picks ONE of the tied circuits (strict subadditivity).
- ``r = 1`` (q = kappa): ``boundary``: the cost is linear, all weight on minimal P, and
  any split among tied minima is optimal. (The paper's case 1 is "kappa >= q".)
- ``r > 1`` (q > kappa): ``power_law``: every weight positive and
  ``w_i proportional to P_i^(-q kappa / (q - kappa))``.

The product design card says "q < 1 / q > 1": that is the same statement with kappa
normalised to 1, i.e. it is ``r = q / kappa`` compared with 1.

:func:`minimise` is a numeric global minimiser that never uses the closed form:

- every single-circuit ray ``w = s e_i`` (the vertices) is minimised globally in 1-D
  (dense log grid, then root-finding on the derivative);
- seeded multi-start SLSQP on the box ``0 <= w_i <= W_i`` (any w outside the box costs
  more than ``L(0)``, so the box contains every global minimiser). For ``r <= 1`` it works
  in ``v_i = w_i^r`` (cost linear in v, all gradients finite at 0); for ``r > 1`` in w,
  where the problem is strictly convex (proved by the symbolic route of D4.case2), so
  every start ends at the unique minimiser;
- the best candidate is polished (Newton with the exact Hessian for ``r > 1``; root
  finding on the 1-D derivative for a single-circuit support).

:func:`closed_form_weights` gives the theorem's prediction: power-law shares with the
total from the 1-D problem ``L_x(s) + (alpha/q) P_eff^q s^r``,
``P_eff^q = sum_i pi_i^r P_i^q``; or all weight on the (first) minimal P.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np
from scipy.optimize import brentq, minimize, minimize_scalar
from scipy.special import expit

from circeff import validate as V
from circeff.errors import ConfigError

WINNER_TAKE_ALL = "winner_take_all"
BOUNDARY = "boundary"
POWER_LAW = "power_law"
CASES = (WINNER_TAKE_ALL, BOUNDARY, POWER_LAW)
#: q and kappa count as equal (the boundary case) within this relative tolerance.
BOUNDARY_RTOL = 1e-12


class LossX(Protocol):
    """A training loss that depends on the weights only through s = sum_i w_i.

    It must be differentiable and bounded below by ``lower_bound``.
    """

    lower_bound: float

    def value(self, s: np.ndarray | float) -> np.ndarray | float: ...

    def derivative(self, s: np.ndarray | float) -> np.ndarray | float: ...

    def second_derivative(self, s: np.ndarray | float) -> np.ndarray | float: ...


@dataclass(frozen=True)
class CrossEntropyLoss:
    """``L_x(s) = log(1 + (n - 1) e^{-s})``: n classes, every circuit one-hot on the label."""

    n_classes: int
    lower_bound: float = 0.0

    def _z(self, s: np.ndarray | float) -> np.ndarray | float:
        return math.log(self.n_classes - 1) - np.asarray(s, dtype=np.float64)

    def value(self, s: np.ndarray | float) -> np.ndarray | float:
        return np.logaddexp(0.0, self._z(s))

    def derivative(self, s: np.ndarray | float) -> np.ndarray | float:
        return -expit(self._z(s))

    def second_derivative(self, s: np.ndarray | float) -> np.ndarray | float:
        p = expit(self._z(s))
        return p * (1.0 - p)


@dataclass(frozen=True)
class CallableLoss:
    """A generic L_x from callables; derivatives by central differences when not given."""

    fn: Callable[[float], float]
    lower_bound: float
    fn_prime: Callable[[float], float] | None = None
    step: float = 1e-6

    def value(self, s: np.ndarray | float) -> np.ndarray | float:
        return np.vectorize(self.fn, otypes=[float])(s)

    def derivative(self, s: np.ndarray | float) -> np.ndarray | float:
        if self.fn_prime is not None:
            return np.vectorize(self.fn_prime, otypes=[float])(s)
        s = np.asarray(s, dtype=np.float64)
        lo, hi = np.maximum(s - self.step, 0.0), s + self.step
        return (self.value(hi) - self.value(lo)) / (hi - lo)

    def second_derivative(self, s: np.ndarray | float) -> np.ndarray | float:
        h = 1e-4
        sp_ = np.asarray(s, dtype=np.float64) + h
        return (self.derivative(sp_) - self.derivative(np.asarray(s))) / h


def which_case(q: float, kappa: float) -> str:
    """``winner_take_all`` (q < kappa), ``boundary`` (q = kappa) or ``power_law`` (q > kappa)."""
    q = V.positive("q", q)
    kappa = V.positive("kappa", kappa)
    if math.isclose(q, kappa, rel_tol=BOUNDARY_RTOL):
        return BOUNDARY
    return WINNER_TAKE_ALL if q < kappa else POWER_LAW


def power_law_exponent(q: float, kappa: float) -> float:
    """``q kappa / (q - kappa)``: w_i proportional to P_i^(-exponent) when q > kappa.

    At q = kappa the exponent is infinite (the limit q -> kappa from above): ``inf``."""
    if q == kappa:
        return math.inf
    return q * kappa / (q - kappa)


def predicted_ratio(P_a: float, P_b: float, q: float, kappa: float) -> float:
    """The weight ratio ``w_a / w_b`` the theorem predicts at the global minimum.

    Case 2 (q > kappa): ``(P_b / P_a)^(q kappa / (q - kappa))`` (inf on overflow).
    Winner-take-all and boundary: ``inf`` if P_a < P_b, ``0.0`` if P_a > P_b, and ``nan``
    for a tie (the boundary admits every split; winner-take-all picks either circuit).
    """
    P_a = V.positive("P_a", P_a)
    P_b = V.positive("P_b", P_b)
    case = which_case(q, kappa)
    if case == POWER_LAW:
        log_ratio = power_law_exponent(q, kappa) * (math.log(P_b) - math.log(P_a))
        return math.inf if log_ratio > 709.0 else math.exp(log_ratio)
    if P_a == P_b:
        return math.nan
    return math.inf if P_a < P_b else 0.0


@dataclass(frozen=True)
class OptimumProblem:
    """One instance of Theorem D.4: norms ``P`` (one per circuit), ``q``, ``kappa``,
    weight decay ``alpha`` (> 0 is needed for a finite optimum, the paper leaves it
    implicit) and ``n_classes`` (>= 2) of the cross-entropy. ``loss_x`` replaces the
    cross-entropy by any :class:`LossX`."""

    P: tuple[float, ...]
    q: float
    kappa: float
    alpha: float
    n_classes: int = 2
    loss_x: LossX | None = field(default=None, compare=False)

    def __post_init__(self) -> None:
        P = tuple(self.P) if not isinstance(self.P, (int, float)) else (self.P,)
        V.non_empty("P", P)
        for value in P:
            if isinstance(value, bool) or not isinstance(value, (int, float, np.floating,
                                                                  np.integer)):
                raise ConfigError("P", "must be a list of numbers > 0", list(P))
            if not (math.isfinite(float(value)) and float(value) > 0):
                raise ConfigError("P", "every entry must be a finite number > 0", list(P))
        object.__setattr__(self, "P", tuple(float(v) for v in P))
        object.__setattr__(self, "q", V.positive("q", self.q))
        object.__setattr__(self, "kappa", V.positive("kappa", self.kappa))
        object.__setattr__(self, "alpha", V.positive("alpha", self.alpha))
        V.integer_at_least("n_classes", self.n_classes, 2)

    @property
    def r(self) -> float:
        """``q / kappa``: the exponent of w_i in the cost."""
        return self.q / self.kappa

    @property
    def case(self) -> str:
        return which_case(self.q, self.kappa)

    @property
    def n_circuits(self) -> int:
        return len(self.P)

    @property
    def loss(self) -> LossX:
        return self.loss_x if self.loss_x is not None else CrossEntropyLoss(self.n_classes)

    @property
    def cost_coefficients(self) -> np.ndarray:
        """``(alpha / q) P_i^q``: the cost is ``sum_i coef_i w_i^r``."""
        return self.alpha / self.q * np.asarray(self.P) ** self.q

    @property
    def weight_bounds(self) -> np.ndarray:
        """``W_i``: any w with some ``w_i > W_i`` has a cost above ``L_x(0) - inf L_x`` and
        hence a loss above ``L(0)``, so every global minimiser lies in ``[0, W]``."""
        budget = float(self.loss.value(0.0)) - self.loss.lower_bound
        return (budget / self.cost_coefficients) ** (1.0 / self.r) * (1 + 1e-9)


def effective_loss(w: Sequence[float] | np.ndarray, P: Sequence[float] | np.ndarray, q: float,
                   kappa: float, alpha: float, n_classes: int = 2,
                   loss_x: LossX | Callable[[float], float] | None = None) -> float:
    """``L(w) = L_x(sum w) + (alpha/q) sum_i (w_i^(1/kappa) P_i)^q`` (the paper's Eq. 6).

    ``loss_x`` may be a :class:`LossX`, a plain callable ``s -> L_x(s)``, or None for the
    n-class cross-entropy.
    """
    w = np.asarray(w, dtype=np.float64)
    P = np.asarray(P, dtype=np.float64)
    if w.shape != P.shape:
        raise ConfigError("w", f"must have one weight per circuit ({P.size})", w.shape)
    if np.any(w < 0):
        raise ConfigError("w", "weights must be >= 0", w.tolist())
    s = float(w.sum())
    if loss_x is None:
        lx = float(CrossEntropyLoss(n_classes).value(s))
    elif hasattr(loss_x, "value"):
        lx = float(loss_x.value(s))
    else:
        lx = float(loss_x(s))
    return lx + alpha / q * float(np.sum((w ** (1.0 / kappa) * P) ** q))


# --------------------------------------------------------------------------- objective
@dataclass(frozen=True)
class _Objective:
    problem: OptimumProblem

    @property
    def coef(self) -> np.ndarray:
        return self.problem.cost_coefficients

    def value(self, w: np.ndarray) -> float:
        lx = self.problem.loss
        return float(lx.value(w.sum())) + float(np.sum(self.coef * w ** self.problem.r))

    def value_grad_w(self, w: np.ndarray) -> tuple[float, np.ndarray]:
        """Value and gradient in w (finite at w_i = 0 only for r >= 1)."""
        r = self.problem.r
        lx = self.problem.loss
        s = w.sum()
        grad = float(lx.derivative(s)) + self.coef * r * w ** (r - 1)
        return self.value(w), grad

    def hessian_w(self, w: np.ndarray) -> np.ndarray:
        r = self.problem.r
        n = w.size
        curv = np.zeros(n)  # w^(r-2) is infinite at w = 0 for r < 2; callers use w > 0
        np.power(w, r - 2, out=curv, where=w > 0)
        return (float(self.problem.loss.second_derivative(w.sum())) * np.ones((n, n))
                + np.diag(self.coef * r * (r - 1) * curv))

    def value_grad_v(self, v: np.ndarray) -> tuple[float, np.ndarray]:
        """Value and gradient in ``v = w^r`` (used for r <= 1: cost linear in v)."""
        inv = 1.0 / self.problem.r
        w = v**inv
        s = w.sum()
        lx = self.problem.loss
        grad = float(lx.derivative(s)) * inv * v ** (inv - 1.0) + self.coef
        return self.value(w), grad

    def kkt_residual(self, w: np.ndarray) -> float:
        """Largest violation of the first-order conditions (in v = w^r when r <= 1)."""
        if self.problem.r > 1:
            _, g = self.value_grad_w(w)
        else:
            _, g = self.value_grad_v(w**self.problem.r)
        at_zero = w <= 0
        viol = np.where(at_zero, np.maximum(0.0, -g), np.abs(g))
        return float(viol.max())


def minimise_on_ray(f: Callable[[np.ndarray], np.ndarray], df: Callable[[float], float],
                    hi: float, n_grid: int = 600) -> tuple[float, float]:
    """Global minimum of a 1-D function on ``[0, hi]``.

    Dense grid (0 and a log grid down to ``1e-12 hi``), then every grid-local minimum is
    refined by brentq on the derivative when it changes sign, else by bounded Brent.
    Returns ``(s_star, f(s_star))``.
    """
    grid = np.concatenate([[0.0], np.geomspace(hi * 1e-12, hi, n_grid)])
    vals = np.asarray(f(grid), dtype=np.float64)
    best_s, best_f = float(grid[np.argmin(vals)]), float(vals.min())

    def f_scalar(t: float) -> float:
        return float(f(np.array([t]))[0])

    for k in range(1, grid.size):
        right = vals[k + 1] if k + 1 < grid.size else np.inf
        if not (vals[k] <= vals[k - 1] and vals[k] <= right):
            continue
        lo, up = grid[k - 1], grid[min(k + 1, grid.size - 1)]
        lo_pt = lo if lo > 0 else up * 1e-15  # the derivative may be infinite at 0 (r < 1)
        if df(lo_pt) < 0 < df(up):
            s_k = brentq(df, lo_pt, up, xtol=1e-300, rtol=4 * np.finfo(float).eps,
                         maxiter=500)
        else:
            s_k = minimize_scalar(f_scalar, bounds=(lo, up), method="bounded",
                                  options={"xatol": 1e-14 * up}).x
        f_k = f_scalar(s_k)
        if f_k < best_f:
            best_s, best_f = float(s_k), f_k
    return best_s, best_f


def _solve_total(problem: OptimumProblem, coef: float) -> tuple[float, float]:
    """Minimise ``L_x(s) + coef * s^r`` over ``s >= 0`` (the 1-D problem)."""
    r = problem.r
    lx = problem.loss
    budget = float(lx.value(0.0)) - lx.lower_bound
    hi = (budget / coef) ** (1.0 / r) * (1 + 1e-9)

    def f(sv: np.ndarray) -> np.ndarray:
        return lx.value(sv) + coef * sv**r

    def df(sv: float) -> float:
        return float(lx.derivative(sv)) + coef * r * sv ** (r - 1)

    return minimise_on_ray(f, df, hi)


# --------------------------------------------------------------------------- closed form
def power_law_shares(P: Sequence[float], q: float, kappa: float,
                     exponent: float | None = None) -> np.ndarray:
    """Shares ``pi_i proportional to P_i^(-exponent)`` (default ``q kappa / (q - kappa)``),
    normalised to sum 1, computed in log space."""
    e = power_law_exponent(q, kappa) if exponent is None else exponent
    logits = -e * np.log(np.asarray(P, dtype=np.float64))
    logits -= logits.max()
    shares = np.exp(logits)
    return shares / shares.sum()


def allocation_with_shares(problem: OptimumProblem, shares: np.ndarray) -> np.ndarray:
    """Best weights ``s* pi`` for fixed shares: the 1-D problem with
    ``P_eff^q = sum_i pi_i^r P_i^q``."""
    shares = np.asarray(shares, dtype=np.float64)
    coef = float(np.sum(problem.cost_coefficients * shares**problem.r))  # (alpha/q) P_eff^q
    s_star, _ = _solve_total(problem, coef)
    return s_star * shares


def effective_norm(problem: OptimumProblem, shares: np.ndarray | None = None) -> float:
    """``P_eff = (sum_i pi_i^r P_i^q)^(1/q)`` for the power-law shares (or given shares)."""
    if shares is None:
        shares = power_law_shares(problem.P, problem.q, problem.kappa)
    return float(np.sum(np.asarray(shares) ** problem.r * np.asarray(problem.P) ** problem.q)
                 ** (1.0 / problem.q))


def winner_take_all_weights(problem: OptimumProblem, index: int | None = None) -> np.ndarray:
    """All weight on circuit ``index`` (default: the first minimal P), total from 1-D."""
    i = int(np.argmin(problem.P)) if index is None else index
    shares = np.zeros(problem.n_circuits)
    shares[i] = 1.0
    return allocation_with_shares(problem, shares)


def closed_form_weights(problem: OptimumProblem) -> np.ndarray:
    """The theorem's prediction: power law (q > kappa) or winner-take-all (q <= kappa; at
    the boundary this is one representative of the optimal set)."""
    if problem.case == POWER_LAW:
        return allocation_with_shares(problem, power_law_shares(problem.P, problem.q,
                                                                problem.kappa))
    return winner_take_all_weights(problem)


# --------------------------------------------------------------------------- minimiser
@dataclass(frozen=True)
class Optimum:
    """A numeric global minimiser of the effective loss and the theorem's prediction."""

    problem: OptimumProblem
    case: str
    weights: np.ndarray
    closed_form: np.ndarray | None
    loss: float
    closed_form_loss: float | None
    kkt_residual: float
    n_local_solves: int

    @property
    def total(self) -> float:
        return float(self.weights.sum())

    @property
    def shares(self) -> np.ndarray:
        return self.weights / self.total if self.total > 0 else self.weights

    @property
    def max_abs_diff(self) -> float | None:
        if self.closed_form is None:
            return None
        return float(np.max(np.abs(self.weights - self.closed_form)))

    def to_dict(self) -> dict[str, Any]:
        p = self.problem
        return {
            "case": self.case,
            "weights": self.weights.tolist(),
            "closed_form": None if self.closed_form is None else self.closed_form.tolist(),
            "loss": self.loss,
            "closed_form_loss": self.closed_form_loss,
            "total_weight": self.total,
            "r": p.r,
            "power_law_exponent": power_law_exponent(p.q, p.kappa) if p.case == POWER_LAW
            else None,
            "max_abs_diff": self.max_abs_diff,
            "kkt_residual": self.kkt_residual,
            "n_local_solves": self.n_local_solves,
            "P": list(p.P), "q": p.q, "kappa": p.kappa, "alpha": p.alpha,
            "n_classes": p.n_classes,
        }


def _ray_candidates(problem: OptimumProblem) -> list[np.ndarray]:
    out = []
    for i in range(problem.n_circuits):
        shares = np.zeros(problem.n_circuits)
        shares[i] = 1.0
        out.append(allocation_with_shares(problem, shares))
    return out


def _local_solve(obj: _Objective, w0: np.ndarray, bounds: np.ndarray,
                 tight: bool = False) -> np.ndarray:
    """One bound-constrained local solve (SLSQP).

    SLSQP rather than SLSQP: on these 2-10 dimensional problems SLSQP's per-iteration
    BLAS calls cost milliseconds when OpenBLAS threads compete for busy cores (measured
    20x slower on a loaded 2-core machine); SLSQP is as accurate here and stays fast.
    """
    r = obj.problem.r
    opts = {"ftol": 1e-16 if tight else 1e-13, "maxiter": 1000}
    lo = np.zeros_like(bounds)
    if r > 1:
        res = minimize(obj.value_grad_w, w0, jac=True, method="SLSQP",
                       bounds=list(zip(lo, bounds)), options=opts)
        return np.clip(res.x, 0.0, bounds)
    res = minimize(obj.value_grad_v, w0**r, jac=True, method="SLSQP",
                   bounds=list(zip(lo, bounds**r)), options=opts)
    return np.clip(res.x, 0.0, None) ** (1.0 / r)


def _newton_steps(obj: _Objective, w: np.ndarray, max_iter: int = 60) -> np.ndarray:
    """Newton steps with backtracking on the positive coordinates of w (r > 1)."""
    on = w > 0
    if not on.any():
        return w
    w = w.copy()
    f = obj.value(w)
    for _ in range(max_iter):
        _, g = obj.value_grad_w(w)
        try:
            step = np.linalg.solve(obj.hessian_w(w)[np.ix_(on, on)], g[on])
        except np.linalg.LinAlgError:
            break
        t = 1.0
        while t > 1e-12:
            cand = w.copy()
            cand[on] = w[on] - t * step
            if np.all(cand[on] > 0):
                f_c = obj.value(cand)
                # allow rounding-level increases: near the optimum a tiny weight's step
                # changes the loss by less than one ulp, yet the gradient still drives it
                if f_c <= f + 4 * np.finfo(float).eps * abs(f):
                    break
            t *= 0.5
        else:
            break
        moved = np.max(np.abs(cand[on] - w[on]) / w[on])
        w, f = cand, f_c
        if moved < 1e-15:
            break
    return w


def _newton_polish(obj: _Objective, w: np.ndarray) -> np.ndarray:
    """Polish the strictly convex r > 1 problem to machine precision.

    Newton on the positive coordinates; then any zero coordinate whose gradient is
    negative (so the KKT conditions fail there) is restarted at its own 1-D stationary
    value and Newton runs again. Weights too small for float64 stay 0.
    """
    r = obj.problem.r
    for _ in range(3):
        w = _newton_steps(obj, w)
        _, g = obj.value_grad_w(w)
        violators = (w <= 0) & (g < 0)
        if not violators.any():
            break
        pull = -float(obj.problem.loss.derivative(w.sum()))
        with np.errstate(under="ignore"):
            restart = (pull / (obj.coef[violators] * r)) ** (1.0 / (r - 1.0))
        if not np.any(restart > 0):
            break
        w = w.copy()
        w[violators] = restart
    return w


def _snap_tiny_weights(obj: _Objective, w: np.ndarray, rel: float = 1e-9) -> np.ndarray:
    """Move weights below ``rel * s`` onto the largest weight (s unchanged) when that does
    not raise the loss beyond rounding: bound-constrained solvers stop a few ulps off
    ``w_j = 0``. Used only for r <= 1, where the cost is concave or linear in each w_j."""
    w = w.copy()
    f = obj.value(w)
    for j in np.flatnonzero((w > 0) & (w < rel * w.sum())):
        cand = w.copy()
        cand[int(np.argmax(w))] += cand[j]
        cand[j] = 0.0
        f_c = obj.value(cand)
        if f_c <= f + 4 * np.finfo(float).eps * abs(f):  # equal up to rounding
            w, f = cand, f_c
    return w


def minimise(problem: OptimumProblem, *, seed: int = 0, n_starts: int | None = None) -> Optimum:
    """Numerically find a global minimiser of the effective loss (no closed form used).

    Candidates: the origin, the I vertex rays (each minimised globally in 1-D), and local
    SLSQP solves from the uniform point and ``n_starts`` seeded random points (default
    2 for the strictly convex r > 1 problem, where every start ends at the same point and
    the extra one is a cross-check, and 4 for r <= 1, whose solves also start from every
    vertex). The best candidate is polished. Deterministic per seed.
    """
    obj = _Objective(problem)
    I, r = problem.n_circuits, problem.r
    bounds = problem.weight_bounds
    rng = np.random.default_rng(seed)
    rays = _ray_candidates(problem)
    candidates = [np.zeros(I)] + rays
    rays_best = min(candidates, key=obj.value)
    starts = [] if r > 1 else [c for c in rays if c.sum() > 0]
    starts.append(np.full(I, max(rays_best.sum(), 1e-3) / I))
    if n_starts is None:
        n_starts = 2 if r > 1 else 4
    for _ in range(n_starts):
        shares = rng.dirichlet(np.ones(I))
        total = math.exp(rng.uniform(math.log(1e-3 * bounds.min()), math.log(bounds.max())))
        starts.append(np.minimum(shares * total, bounds))
    for w0 in starts:
        candidates.append(_local_solve(obj, np.asarray(w0, dtype=np.float64), bounds))
    n_local = len(starts)
    best = min(candidates, key=obj.value)
    if r > 1:
        best = _newton_polish(obj, best)
    else:
        if np.count_nonzero(best) > 1:
            best = min([best, _local_solve(obj, best, bounds, tight=True)], key=obj.value)
            n_local += 1
        best = _snap_tiny_weights(obj, best)
        if np.count_nonzero(best) == 1:
            # re-solve the ray of this support (root-finding on the 1-D derivative)
            ray = allocation_with_shares(problem, (best > 0).astype(float))
            if obj.value(ray) <= obj.value(best) + 4 * np.finfo(float).eps * abs(obj.value(best)):
                best = ray
    closed = closed_form_weights(problem)
    return Optimum(problem=problem, case=problem.case, weights=best, closed_form=closed,
                   loss=obj.value(best), closed_form_loss=obj.value(closed),
                   kkt_residual=obj.kkt_residual(best), n_local_solves=n_local)
