"""Theorem D.4: the effective loss over circuit weights and its global minimiser.

Setting (the paper's Eq. 6, Appendix D.4). I circuits with parameter norms ``P_i`` at
unit weight, non-negative weights ``w_i``, total ``s = sum_i w_i``::

    L(w) = L_x(s) + (alpha / q) * sum_i (w_i^(1/kappa_i) * P_i)^q
    L_x(s) = log(1 + (n - 1) exp(-s))          (cross-entropy, n classes)

With ``r_i = q / kappa_i`` the cost is ``sum_i c_i w_i^(r_i)``, ``c_i = (alpha/q) P_i^q``.
With one kappa for every circuit (the paper's setting) the cases are
(:func:`which_case`):

- ``r < 1`` (q < kappa): ``winner_take_all``: all weight on the circuit with minimal P.
  Ties: the optimum picks ONE of the tied circuits (strict subadditivity).
- ``r = 1`` (q = kappa): ``boundary``: the cost is linear, all weight on minimal P, and
  any split among tied minima is optimal. (The paper's case 1 is "kappa >= q".)
- ``r > 1`` (q > kappa): ``power_law``: every weight positive and
  ``w_i proportional to P_i^(-q kappa / (q - kappa))``.

With one kappa per circuit (``kappa=(6.0, 4.4)``; claim ``D4.mixed_kappa``):

- every ``r_i <= 1``: ``winner_take_all``; the winner minimises ``c_i s*^(r_i)``, which
  depends on the total s*, not on P alone: it is the best single-circuit ray;
- every ``r_i > 1``: ``interior``: every weight positive, ``c_i r_i w_i^(r_i-1)`` equal
  across circuits (shares change with s*, no fixed power law);
- otherwise ``partial``: every circuit with ``r_i > 1`` keeps weight and at most one
  circuit with ``r_i <= 1`` does.

:func:`minimise` is a numeric global minimiser that never uses the closed form: the
origin, every single-circuit ray (each an exact 1-D solve, :mod:`circeff.theory.ray`),
seeded multi-start SLSQP in ``v_i = w_i^(min(r_i, 1))`` (costs linear in v for r_i <= 1,
gradients finite at 0), and a polish (Newton when every r_i > 1, where the problem is
strictly convex). For a partial problem with the cross-entropy it also takes the exact
stationary points of every face the structure result allows (:func:`kkt_candidates`, a
1-D reduction in s with at most two roots per face), which the local solves can miss
where the loss is ~1e-8 and flat. :func:`closed_form_weights` gives the theorem's
prediction.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np
from scipy.optimize import minimize
from scipy.special import expit

from circeff import validate as V
from circeff.errors import ConfigError
from circeff.theory import ray as R

WINNER_TAKE_ALL = "winner_take_all"
BOUNDARY = "boundary"
POWER_LAW = "power_law"
#: one kappa per circuit, every r_i > 1: every weight positive, shares depend on s*.
INTERIOR = "interior"
#: one kappa per circuit, some r_i > 1 and some <= 1: the r_i > 1 circuits keep weight,
#: at most one r_i <= 1 circuit does.
PARTIAL = "partial"
CASES = (WINNER_TAKE_ALL, BOUNDARY, POWER_LAW)
PER_CIRCUIT_CASES = (WINNER_TAKE_ALL, INTERIOR, PARTIAL)
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
    """One instance of Theorem D.4: norms ``P`` (one per circuit), ``q``, ``kappa`` (one
    value for every circuit, or a sequence with one value per circuit), weight decay
    ``alpha`` (> 0 is needed for a finite optimum, the paper leaves it implicit) and
    ``n_classes`` (>= 2) of the cross-entropy. ``loss_x`` replaces the cross-entropy by
    any :class:`LossX`."""

    P: tuple[float, ...]
    q: float
    kappa: float | tuple[float, ...]
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
        if isinstance(self.kappa, (Sequence, np.ndarray)) and not isinstance(self.kappa, str):
            ks = tuple(V.positive("kappa", k) for k in self.kappa)
            if len(ks) == 1:
                object.__setattr__(self, "kappa", ks[0])
            elif len(ks) != len(P):
                raise ConfigError("kappa", f"must be one value, or one per circuit "
                                  f"({len(P)} values)", list(ks))
            else:
                object.__setattr__(self, "kappa", ks)
        else:
            object.__setattr__(self, "kappa", V.positive("kappa", self.kappa))
        object.__setattr__(self, "alpha", V.positive("alpha", self.alpha))
        V.integer_at_least("n_classes", self.n_classes, 2)

    @property
    def per_circuit(self) -> bool:
        """True when kappa was given per circuit (a tuple)."""
        return isinstance(self.kappa, tuple)

    @property
    def kappas(self) -> np.ndarray:
        """kappa_i for every circuit (the single kappa repeated when it is shared)."""
        return np.broadcast_to(np.asarray(self.kappa, dtype=np.float64),
                               (self.n_circuits,)).copy()

    @property
    def rs(self) -> np.ndarray:
        """``r_i = q / kappa_i`` for every circuit."""
        return self.q / self.kappas

    @property
    def uniform(self) -> bool:
        """One exponent for every circuit (a scalar kappa, or equal entries)."""
        return bool(np.all(self.kappas == self.kappas[0]))

    @property
    def r(self) -> float | tuple[float, ...]:
        """``q / kappa``: the exponent of w_i in the cost (a tuple per circuit when kappa
        is given per circuit with unequal entries)."""
        if self.uniform:
            return self.q / float(self.kappas[0])
        return tuple(float(v) for v in self.rs)

    @property
    def case(self) -> str:
        if self.uniform:
            return which_case(self.q, float(self.kappas[0]))
        rs = self.rs
        if np.all(rs <= 1):
            return WINNER_TAKE_ALL
        if np.all(rs > 1):
            return INTERIOR
        return PARTIAL

    @property
    def n_circuits(self) -> int:
        return len(self.P)

    @property
    def loss(self) -> LossX:
        return self.loss_x if self.loss_x is not None else CrossEntropyLoss(self.n_classes)

    @property
    def cost_coefficients(self) -> np.ndarray:
        """``c_i = (alpha / q) P_i^q``: the cost is ``sum_i c_i w_i^(r_i)``."""
        return self.alpha / self.q * np.asarray(self.P) ** self.q

    @property
    def weight_bounds(self) -> np.ndarray:
        """``W_i``: any w with some ``w_i > W_i`` has a cost above ``L_x(0) - inf L_x`` and
        hence a loss above ``L(0)``, so every global minimiser lies in ``[0, W]``."""
        budget = float(self.loss.value(0.0)) - self.loss.lower_bound
        with np.errstate(over="ignore"):
            return (budget / self.cost_coefficients) ** (1.0 / self.rs) * (1 + 1e-9)


def effective_loss(w: Sequence[float] | np.ndarray, P: Sequence[float] | np.ndarray, q: float,
                   kappa: float | Sequence[float], alpha: float, n_classes: int = 2,
                   loss_x: LossX | Callable[[float], float] | None = None) -> float:
    """``L(w) = L_x(sum w) + (alpha/q) sum_i (w_i^(1/kappa_i) P_i)^q`` (the paper's Eq. 6).

    ``kappa`` is one value or one per circuit. ``loss_x`` may be a :class:`LossX`, a plain
    callable ``s -> L_x(s)``, or None for the n-class cross-entropy.
    """
    w = np.asarray(w, dtype=np.float64)
    P = np.asarray(P, dtype=np.float64)
    kappa = np.asarray(kappa, dtype=np.float64)
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

    @property
    def rs(self) -> np.ndarray:
        return self.problem.rs

    @property
    def rho(self) -> np.ndarray:
        """Exponent of the change of variables ``v_i = w_i^(rho_i)``, ``rho_i = min(r_i, 1)``:
        the cost of a circuit with r_i <= 1 is linear in v_i, and every gradient is finite
        at v_i = 0."""
        return np.minimum(self.rs, 1.0)

    def value(self, w: np.ndarray) -> float:
        with np.errstate(over="ignore"):
            return float(self.problem.loss.value(w.sum())) + float(np.sum(self.coef
                                                                          * w ** self.rs))

    def grad_w(self, w: np.ndarray) -> np.ndarray:
        """Gradient in w (finite at w_i = 0 only for r_i >= 1)."""
        with np.errstate(divide="ignore"):
            return float(self.problem.loss.derivative(w.sum())) + self.coef * self.rs * w ** (
                self.rs - 1)

    def hessian_w(self, w: np.ndarray) -> np.ndarray:
        n = w.size
        curv = np.zeros(n)  # w^(r-2) is infinite at w = 0 for r < 2; callers use w > 0
        with np.errstate(over="ignore"):  # a 1e-300 weight: its curvature is huge, not nan
            np.power(w, self.rs - 2, out=curv, where=w > 0)
        return (float(self.problem.loss.second_derivative(w.sum())) * np.ones((n, n))
                + np.diag(self.coef * self.rs * (self.rs - 1) * curv))

    def value_grad_v(self, v: np.ndarray) -> tuple[float, np.ndarray]:
        """Value and gradient in ``v = w^rho``."""
        inv = 1.0 / self.rho
        w = v**inv
        lx_prime = float(self.problem.loss.derivative(w.sum()))
        # d/dv_i of c_i w_i^r_i = c_i (r_i/rho_i) v_i^(r_i/rho_i - 1): c_i when r_i <= 1
        with np.errstate(divide="ignore", invalid="ignore"):
            cost_grad = np.where(self.rs <= 1, self.coef,
                                 self.coef * self.rs * v ** (self.rs - 1))
            grad = lx_prime * inv * v ** (inv - 1.0) + cost_grad
        return self.value(w), np.nan_to_num(grad, nan=0.0, posinf=1e300)

    def kkt_residual(self, w: np.ndarray) -> float:
        """Largest violation of the first-order conditions (in v = w^rho)."""
        _, g = self.value_grad_v(w**self.rho)
        at_zero = w <= 0
        viol = np.where(at_zero, np.maximum(0.0, -g), np.abs(g))
        return float(viol.max())


def solve_total(problem: OptimumProblem, coef: float, r: float | None = None
                ) -> tuple[float, float]:
    """Minimise ``L_x(s) + coef * s^r`` over ``s >= 0`` (default ``r``: the problem's
    shared exponent). Returns ``(s*, value)``; see :mod:`circeff.theory.ray`."""
    r = float(problem.rs[0]) if r is None else r
    lx = problem.loss
    if isinstance(lx, CrossEntropyLoss):
        return R.solve_cross_entropy(lx.n_classes, coef, r)
    budget = float(lx.value(0.0)) - lx.lower_bound
    upper = (budget / coef) ** (1.0 / r) * (1 + 1e-9)
    return R.solve_generic(lx.value, lx.derivative, coef, r, upper)


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
    """Best weights ``s* pi`` for fixed shares (shared exponent r): the 1-D problem with
    ``P_eff^q = sum_i pi_i^r P_i^q``. A single-circuit share vector works for any kappa."""
    shares = np.asarray(shares, dtype=np.float64)
    on = np.flatnonzero(shares > 0)
    rs = problem.rs[on]
    if not np.all(rs == rs[0]):
        raise ConfigError("shares", "fixed shares need one exponent r on their support")
    r = float(rs[0])
    coef = float(np.sum(problem.cost_coefficients[on] * shares[on] ** r))  # (alpha/q) P_eff^q
    s_star, _ = solve_total(problem, coef, r)
    return s_star * shares


def effective_norm(problem: OptimumProblem, shares: np.ndarray | None = None) -> float:
    """``P_eff = (sum_i pi_i^r P_i^q)^(1/q)`` for the power-law shares (or given shares)."""
    if shares is None:
        shares = power_law_shares(problem.P, problem.q, float(problem.kappas[0]))
    return float(np.sum(np.asarray(shares) ** problem.rs * np.asarray(problem.P) ** problem.q)
                 ** (1.0 / problem.q))


def ray_weights(problem: OptimumProblem, index: int) -> np.ndarray:
    """All weight on circuit ``index``, total from its own 1-D problem."""
    shares = np.zeros(problem.n_circuits)
    shares[index] = 1.0
    return allocation_with_shares(problem, shares)


def winner_take_all_weights(problem: OptimumProblem, index: int | None = None) -> np.ndarray:
    """All weight on circuit ``index`` (default: the first minimal P with a shared kappa;
    the best single-circuit ray with kappa per circuit), total from 1-D."""
    if index is not None:
        return ray_weights(problem, index)
    if problem.uniform:
        return ray_weights(problem, int(np.argmin(problem.P)))
    obj = _Objective(problem)
    return min((ray_weights(problem, i) for i in range(problem.n_circuits)), key=obj.value)


def interior_weights(problem: OptimumProblem) -> np.ndarray | None:
    """Every r_i > 1: the KKT conditions ``c_i r_i w_i^(r_i - 1) = p(s)``, ``p = -L_x'``,
    give ``w_i(s)``, and ``sum_i w_i(s) = s`` has one root when p falls (the left side
    falls in s, the right side rises); solved in log s. None when some r_i <= 1 or when
    L_x' is not negative (then there is no such reduction)."""
    if not np.all(problem.rs > 1):
        return None
    lx = problem.loss
    log_cr = np.log(problem.cost_coefficients * problem.rs)
    inv = 1.0 / (problem.rs - 1.0)
    if isinstance(lx, CrossEntropyLoss):
        log_k = math.log(lx.n_classes - 1)

        def log_p(s: float) -> float:
            return R._log_p(s, log_k)
    else:
        def log_p(s: float) -> float:
            d = float(lx.derivative(s))
            return math.log(-d) if d < 0 else -math.inf

    def log_w(u: float) -> np.ndarray:
        s = math.exp(u) if u < 709 else math.inf
        return (log_p(s) - log_cr) * inv

    def gap(u: float) -> float:  # log sum_i w_i(s) - log s, strictly falling in u
        return float(np.logaddexp.reduce(log_w(u))) - u

    try:
        u_lo = R._step_until(gap, 0.0, -1.0, want_positive=True)
        u_hi = R._step_until(gap, 0.0, +1.0, want_positive=False)
        u_star = R._root_u(gap, u_lo, u_hi)
    except ValueError:  # no sign change: L_x' not negative where it matters
        return None
    with np.errstate(under="ignore"):
        return np.exp(log_w(u_star))


def _face_log_weights(log_p: float, log_cr: np.ndarray, rs: np.ndarray) -> np.ndarray:
    """Stationary weights on a face at marginal value p: ``c_i r_i w_i^(r_i - 1) = p``."""
    return (log_p - log_cr) / (rs - 1.0)


def face_stationary_points(problem: OptimumProblem, support: Sequence[int]
                           ) -> list[np.ndarray]:
    """Every stationary point of the cross-entropy problem restricted to the face where
    exactly the circuits in ``support`` are positive, when at most one of them has
    ``r_j <= 1`` (the only faces the structure result leaves, see :func:`minimise`).

    Stationarity ``c_i r_i w_i^(r_i - 1) = p(s)`` gives every ``w_i`` as a function of s,
    and the face reduces to ``k(s) = sum_i w_i(s) - s = 0``. In ``x = -log p(s)`` each
    ``w_i(x)`` is the exponential of an affine function (so convex) and ``s(x) =
    log(n-1) + x + log(1 - e^-x)`` is concave: k is convex in x, with at most two roots,
    on either side of its minimum. All signs are read in ``u = log s`` (x rises with u),
    in log form, so the roots are found at every scale. A circuit with ``r_j = 1`` fixes
    ``p(s) = c_j`` and takes what the others leave of that s. Empty for a generic L_x.
    """
    lx = problem.loss
    if not isinstance(lx, CrossEntropyLoss):
        return []
    idx = np.asarray(support, dtype=int)
    rs, coef = problem.rs[idx], problem.cost_coefficients[idx]
    log_cr = np.log(coef * rs)
    log_k = math.log(lx.n_classes - 1)
    one = np.isclose(rs, 1.0, rtol=0.0, atol=1e-12)
    low = rs < 1.0
    if np.count_nonzero(rs <= 1.0) > 1:
        raise ConfigError("support", "at most one circuit with r_j <= 1 per face",
                          list(support))

    def place(log_w: np.ndarray) -> np.ndarray:
        w = np.zeros(problem.n_circuits)
        with np.errstate(under="ignore", over="ignore"):
            w[idx] = np.exp(log_w)
        return w

    if one.any():
        # p(s) = c_j: s = log(n-1) - logit(c_j) when c_j < p(0) = (n-1)/n
        j = int(np.flatnonzero(one)[0])
        c_j = float(coef[j])
        if not c_j < (lx.n_classes - 1) / lx.n_classes:
            return []
        s = log_k - math.log(c_j) + math.log1p(-c_j)
        log_w = _face_log_weights(math.log(c_j), log_cr, rs)
        rest = np.delete(np.arange(idx.size), j)
        with np.errstate(under="ignore"):
            w_j = s - float(np.exp(log_w[rest]).sum())
        if not w_j > 0:
            return []
        log_w[j] = math.log(w_j)
        return [place(log_w)]

    u_lo = -745.0
    with np.errstate(over="ignore", divide="ignore"):
        u_hi = min(700.0, math.log(float(np.sum(problem.weight_bounds[idx]))) + 1.0)

    def log_w_at(u: float) -> np.ndarray:
        return _face_log_weights(R._log_p(math.exp(u), log_k), log_cr, rs)

    def h(u: float) -> float:  # sign of k: log sum_i w_i(s) - log s
        return float(np.logaddexp.reduce(log_w_at(u))) - u

    def dk_sign(u: float) -> float:
        # sign of dk/dx = w_j/(1 - r_j) - sum_{r_i > 1} w_i/(r_i - 1) - 1/(1 - p(s)),
        # rising in x; log(1/(1 - p)) = log(1 + (n-1) e^-s)
        log_w = log_w_at(u)
        falling = np.append(log_w[~low] - np.log(rs[~low] - 1.0),
                            float(np.logaddexp(0.0, log_k - math.exp(u))))
        rising = log_w[low] - np.log(1.0 - rs[low])
        if rising.size == 0:
            return -1.0
        return float(rising[0] - np.logaddexp.reduce(falling))

    if dk_sign(u_hi) <= 0:
        u_min = u_hi
    elif dk_sign(u_lo) >= 0:
        u_min = u_lo
    else:
        u_min = R._root_u(dk_sign, u_lo, u_hi)
    if not h(u_min) < 0:
        return []
    points = []
    for a, b in ((u_lo, u_min), (u_min, u_hi)):
        if h(a) > 0 > h(b) or h(a) < 0 < h(b):
            points.append(place(log_w_at(R._root_u(h, a, b))))
    return points


def kkt_candidates(problem: OptimumProblem) -> list[np.ndarray]:
    """Stationary points of every face the structure result allows: all circuits with
    ``r_i > 1`` positive, plus none or exactly one circuit with ``r_j <= 1``."""
    rs = problem.rs
    keep = [int(i) for i in np.flatnonzero(rs > 1)]
    faces = [keep] if keep else []
    faces += [keep + [int(j)] for j in np.flatnonzero(rs <= 1)]
    return [w for face in faces for w in face_stationary_points(problem, face)]


def closed_form_weights(problem: OptimumProblem) -> np.ndarray | None:
    """The theorem's prediction: power law (q > kappa) or winner-take-all (q <= kappa; at
    the boundary this is one representative of the optimal set). With kappa per circuit:
    the best single-circuit ray when every r_i <= 1, the stationarity solution when every
    r_i > 1, None for a partial problem."""
    case = problem.case
    if problem.uniform and case == POWER_LAW:
        return allocation_with_shares(problem, power_law_shares(problem.P, problem.q,
                                                                float(problem.kappas[0])))
    if case in (WINNER_TAKE_ALL, BOUNDARY):
        return winner_take_all_weights(problem)
    if case == INTERIOR:
        return interior_weights(problem)
    return None


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
            "shares": self.shares.tolist(),
            "closed_form": None if self.closed_form is None else self.closed_form.tolist(),
            "loss": self.loss,
            "closed_form_loss": self.closed_form_loss,
            "total_weight": self.total,
            "r": list(p.r) if isinstance(p.r, tuple) else p.r,
            "power_law_exponent": power_law_exponent(p.q, float(p.kappas[0]))
            if p.uniform and p.case == POWER_LAW else None,
            "max_abs_diff": self.max_abs_diff,
            "kkt_residual": self.kkt_residual,
            "n_local_solves": self.n_local_solves,
            "P": list(p.P), "q": p.q,
            "kappa": list(p.kappa) if isinstance(p.kappa, tuple) else p.kappa,
            "alpha": p.alpha, "n_classes": p.n_classes,
        }


def _local_solve(obj: _Objective, w0: np.ndarray, bounds: np.ndarray,
                 tight: bool = False) -> np.ndarray:
    """One bound-constrained local solve (SLSQP) in ``v = w^rho``.

    SLSQP rather than L-BFGS-B/trust-constr: on these 2-10 dimensional problems their
    per-iteration BLAS calls cost milliseconds when OpenBLAS threads compete for busy
    cores (measured 20x slower on a loaded 2-core machine); SLSQP is as accurate here.
    """
    rho = obj.rho
    opts = {"ftol": 1e-16 if tight else 1e-13, "maxiter": 1000}
    lo = np.zeros_like(bounds)
    with np.errstate(over="ignore", invalid="ignore"):
        res = minimize(obj.value_grad_v, w0**rho, jac=True, method="SLSQP",
                       bounds=list(zip(lo, bounds**rho)), options=opts)
    return np.clip(np.nan_to_num(res.x, nan=0.0), 0.0, None) ** (1.0 / rho)


def _newton_steps(obj: _Objective, w: np.ndarray, max_iter: int = 60) -> np.ndarray:
    """Newton steps with backtracking on the positive coordinates of w."""
    on = w > 0
    if not on.any():
        return w
    w = w.copy()
    f = obj.value(w)
    for _ in range(max_iter):
        g = obj.grad_w(w)
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
    """Polish to machine precision (strictly convex when every r_i > 1).

    Newton on the positive coordinates; then any zero coordinate with r_i > 1 whose
    gradient is negative (so the KKT conditions fail there) is restarted at its own 1-D
    stationary value and Newton runs again. Weights too small for float64 stay 0.
    """
    rs = obj.rs
    for _ in range(3):
        w = _newton_steps(obj, w)
        g = obj.grad_w(w)
        violators = (w <= 0) & (g < 0)
        if not violators.any():
            break
        violators &= rs > 1  # only there is the marginal cost 0 at w_i = 0
        if not violators.any():
            break
        pull = -float(obj.problem.loss.derivative(w.sum()))
        with np.errstate(under="ignore", over="ignore"):
            restart = (pull / (obj.coef[violators] * rs[violators])) ** (
                1.0 / (rs[violators] - 1.0))
        if not np.any(restart > 0):
            break
        w = w.copy()
        w[violators] = restart
    return w


def _stationary_tiny_weights(obj: _Objective, w: np.ndarray, rel: float = 1e-8
                             ) -> np.ndarray:
    """Every r_i > 1: at an interior minimiser ``c_i r_i w_i^(r_i - 1) = -L_x'(s)`` for each
    i. Newton leaves weights far below ``rel * s`` wherever the loss can no longer see
    them (a 1e-78 share is invisible next to a rounding error of the total); set those
    from this condition at the current s, in log space (0 when it underflows)."""
    s = w.sum()
    pull = -float(obj.problem.loss.derivative(s))
    tiny = w < rel * s
    if not (pull > 0 and tiny.any()):
        return w
    rs = obj.rs[tiny]
    log_w = (math.log(pull) - np.log(obj.coef[tiny] * rs)) / (rs - 1.0)
    out = w.copy()
    with np.errstate(under="ignore"):
        out[tiny] = np.exp(np.minimum(log_w, math.log(rel * s)))
    f, f_out = obj.value(w), obj.value(out)
    return out if f_out <= f + 4 * np.finfo(float).eps * abs(f) else w


def _snap_tiny_weights(obj: _Objective, w: np.ndarray, rel: float = 1e-9) -> np.ndarray:
    """Move weights below ``rel * s`` of circuits with r_j <= 1 onto the largest weight (s
    unchanged) when that does not raise the loss beyond rounding: bound-constrained
    solvers stop a few ulps off ``w_j = 0``, where such a cost is concave or linear."""
    w = w.copy()
    f = obj.value(w)
    for j in np.flatnonzero((w > 0) & (w < rel * w.sum()) & (obj.rs <= 1)):
        cand = w.copy()
        cand[int(np.argmax(w))] += cand[j]
        cand[j] = 0.0
        f_c = obj.value(cand)
        if f_c <= f + 4 * np.finfo(float).eps * abs(f):  # equal up to rounding
            w, f = cand, f_c
    return w


def minimise(problem: OptimumProblem, *, seed: int = 0, n_starts: int | None = None) -> Optimum:
    """Numerically find a global minimiser of the effective loss (no closed form used).

    Candidates: the origin, the I single-circuit rays (each an exact 1-D solve), and local
    SLSQP solves from every ray, the uniform point and ``n_starts`` seeded random points
    (default 2 when every r_i > 1, where the problem is strictly convex and every start
    ends at the same point, else 4), with totals drawn around the best ray's total. The
    best candidate is polished. Deterministic per seed.
    """
    obj = _Objective(problem)
    I, rs = problem.n_circuits, problem.rs
    convex = bool(np.all(rs > 1))
    bounds = problem.weight_bounds
    rng = np.random.default_rng(seed)
    rays = [ray_weights(problem, i) for i in range(I)]
    candidates = [np.zeros(I)] + rays
    rays_best = min(candidates, key=obj.value)
    scale = rays_best.sum() if rays_best.sum() > 0 else min(1.0, float(bounds.min()))
    starts = [] if convex else [c for c in rays if c.sum() > 0]
    starts.append(np.full(I, scale / I))
    if n_starts is None:
        n_starts = 2 if convex else 4
    for _ in range(n_starts):
        shares = rng.dirichlet(np.ones(I))
        total = scale * math.exp(rng.uniform(math.log(0.1), math.log(10.0)))
        starts.append(np.minimum(shares * total, bounds))
    if not convex and not np.all(rs <= 1):
        # partial: the r_i > 1 circuits with each single r_j <= 1 circuit
        for j in np.flatnonzero(rs <= 1):
            w0 = np.where(rs > 1, scale / I, 0.0)
            w0[j] = scale / I
            starts.append(w0)
    for w0 in starts:
        candidates.append(_local_solve(obj, np.asarray(w0, dtype=np.float64), bounds))
    n_local = len(starts)
    if convex:
        # the KKT conditions reduce to one equation in s (Newton alone stalls where the
        # Hessian is near-singular: r ~ 18, weights of 1e-4, loss of 1e-11)
        kkt = interior_weights(problem)
        if kkt is not None and np.all(np.isfinite(kkt)):
            candidates.append(kkt)
    best = min(candidates, key=obj.value)
    if convex:
        # where the loss is flat to rounding (r just above 1: a total of 1e-8 whose 5e-4
        # relative move changes no digit of it), the local solves stop anywhere on the flat
        # part and Newton cannot see the way; among the points equal in loss, the most
        # stationary one is the minimiser
        f_best = obj.value(best)
        ties = [c for c in candidates if obj.value(c) <= f_best + 64 * np.finfo(float).eps * abs(f_best)]
        best = min(ties, key=obj.kkt_residual)
        best = _stationary_tiny_weights(obj, _newton_polish(obj, best))
    else:
        if np.count_nonzero(best) > 1:
            best = min([best, _local_solve(obj, best, bounds, tight=True)], key=obj.value)
            n_local += 1
        best = _snap_tiny_weights(obj, best)
        if np.count_nonzero(best) == 1:
            # re-solve the ray of this support (root-finding on the 1-D derivative)
            ray = ray_weights(problem, int(np.flatnonzero(best)[0]))
            if obj.value(ray) <= obj.value(best) + 4 * np.finfo(float).eps * abs(obj.value(best)):
                best = ray
        if best.sum() > 0 and np.any(rs > 1):
            # a circuit with r_i > 1 at zero always has a negative gradient (its marginal
            # cost vanishes at 0): restart it at its 1-D stationary value and polish
            polished = _newton_polish(obj, best)
            if obj.value(polished) <= obj.value(best) + 4 * np.finfo(float).eps * abs(
                    obj.value(best)):
                best = polished
    if np.any(rs > 1) and np.any(rs <= 1):
        # partial: the local solves stop early where the loss is ~1e-8 and flat (a second
        # stationary point of the weight of an r_i > 1 circuit lies a decade away, 1e-5
        # relative in loss); the stationary points of every allowed face are exact
        exact = kkt_candidates(problem)
        if exact:
            exact_best = min(exact, key=obj.value)
            f_best = obj.value(best)
            if obj.value(exact_best) <= f_best + 64 * np.finfo(float).eps * abs(f_best):
                best = exact_best
    closed = closed_form_weights(problem)
    return Optimum(problem=problem, case=problem.case, weights=best, closed_form=closed,
                   loss=obj.value(best),
                   closed_form_loss=None if closed is None else obj.value(closed),
                   kkt_residual=obj.kkt_residual(best), n_local_solves=n_local)
