"""Prediction P1: circuit efficiency against dataset size, fitted from single-circuit networks.

Input: one row per trained network with columns ``circuit`` (``"G"`` or ``"M"``), ``D``
(training-set size), ``weight_decay``, ``seed``, ``param_norm`` and ``correct_logit``.

Model (the paper's Appendix D): a circuit at weight ``w`` costs parameter norm ``w^(1/kappa) P``, so
a single-circuit network with norm ``N`` produces the correct logit

    logit = (N / P)^kappa      i.e.      log logit = kappa log N - kappa log P.

``P`` is the norm the circuit needs for a unit logit: lower ``P`` = more efficient.

Fit (per circuit, ordinary least squares on natural logs)
--------------------------------------------------------
``log logit = kappa * log N + b_g`` with one shared ``kappa`` and one intercept ``b_g`` per
intercept group ``g``; then ``log P_g = -b_g / kappa``. Two choices of group (``intercepts``):

* ``"D"`` (default, the model as the issue states it): one intercept per dataset size.
  ``kappa`` gets a t-interval from the OLS covariance ``s^2 (X'X)^-1``; ``P(D)`` gets a
  **delta-method** interval (gradient of ``-b/kappa`` in ``(kappa, b)``, t quantile with the
  residual degrees of freedom), exponentiated. This assumes independent rows: if seeds differ
  in efficiency (the paper's Figure 3 shows they do), pooling them biases kappa and the
  intervals are too narrow; use ``"D_seed"``.
* ``"D_seed"``: one intercept per (D, seed) "stripe", so ``kappa`` comes only from the variation
  across weight decays within a seed (the paper's Section 5.1 "stripes"). ``log P(D)`` is the
  mean of the stripes' ``log P`` (the geometric mean of P over seeds); its interval is a
  t-interval over seeds (``seeds - 1`` degrees of freedom, the between-seed spread is the
  uncertainty that matters) widened by the shared-kappa term ``d log P / d kappa * se(kappa)``.
  Needs two or more seeds per D and two or more weight decays per stripe.

Per-D separate kappas (``CircuitFit.separate``): for every D with at least ``min_points_per_D``
rows, the same model fitted to that D alone; intervals by t (kappa) and the delta method (P,
fit noise only). ``kappa_homogeneity_p`` is the F-test p-value of "one kappa for all those D"
against "one kappa per D" (small p: the shared kappa is a poor summary).

Noise is assumed to be in ``log logit``; the parameter norm is taken as exact (no
errors-in-variables correction).

Trend
-----
``log P(D) = a + s log D`` by unweighted OLS over the fitted ``log P(D)``. Its intervals come
from a **parametric bootstrap**: ``n_boot`` draws (``seed`` argument) of the vector ``log P(D)``
from the sampling distribution above (``"D"``: multivariate t with the delta-method covariance,
which keeps the correlation through the shared kappa; ``"D_seed"``: independent t per D plus the
common kappa term); each draw is refitted and the percentile interval taken. The interval
reflects the uncertainty of the ``P(D)`` estimates, not departures from a power law
(``Trend.residual_sd`` shows those). Measured coverage of nominal 95% intervals on synthetic
data (M with P = 0.5 sqrt(D), 4 D x 4 seeds x 3 weight decays, log-logit noise 0.1; 200-600
datasets): ``"D"`` without seed effects: kappa 0.965, P(D) 0.96, slope 0.945-0.97, crossover
0.92-0.93 (slightly narrow); ``"D_seed"`` with seed effects (sd 0.2 in log P): kappa 0.97, P(D)
0.98, slope and crossover 0.985 (conservative: each D's between-seed scale is estimated from
only ``seeds - 1`` degrees of freedom and drawn separately). ``"D"`` with seed effects: kappa
0.26, P(D) 0.61 - do not pool seeds that differ in efficiency.

The decision P1 is taken by :func:`p1` (an equivalence test for G's flatness, below); the
fits above give the trends and the crossover the figures and pages show.

Rule
----
The rule :func:`p1` reads columns ``circuit`` ('G' or 'M'), ``D``, ``seed``, ``alpha``, ``logit``,
``param_norm``: one row per settled network and rung of the L2 ladder.
Per circuit, ``log logit = kappa log param_norm + b`` with one intercept per (D, seed)
stripe (ordinary least squares; kappa comes from the ladder inside a network), so each
stripe has an efficiency ``log P = -b / kappa``. The trend is **clustered by seed**: the OLS
slope of ``log P`` against ``log D`` within each seed, then the mean over seeds with a t
interval on ``seeds - 1`` degrees of freedom (:func:`clustered_slope`). A seed's networks share
their initial weights and copies of one network compute nearly the same function, so a seed is
one unit; counting each (D, seed) stripe as independent made G's interval far too narrow.
M rises: M's slope interval at ``level`` lies above 0. G is flat by an equivalence test (two
one-sided tests at 5% each): G's slope interval at ``equivalence_level`` (0.90) lies inside
``+-delta`` with ``delta = delta_fraction x`` the lower end of M's interval (a G trend less than
half as steep as the least M could be). G is steep when its interval at ``level`` lies wholly
outside ``+-delta``. Each circuit needs ``min_D`` distinct sizes; both kappa intervals must lie
above 0.

Three outcomes. M's part is decided by its interval alone. G's part is decided only on a design
that can decide it: the controls (:mod:`circeff.analysis.controls`) measure this rule on the
run's own design, and G is judged only when the power against "G's slope equals M's" is at
least ``min_power`` (0.8) and the false accept at most ``max_false_accept`` (0.05). This
replaces an earlier gate on G's range of D, which no settled design could reach. A G slope
that is neither shown flat nor shown steep on a design without that power leaves P1
*undecided*, with the power that shows why; M's outcome is reported beside it.

Efficiency crossover (first D_crit estimate): the D where the M trend meets P_G. With
``g_model="flat"`` (default; the theory says G's efficiency does not depend on D, and G-only
networks are trained at larger D than M-only ones, so extrapolating a G slope is fragile)
``log P_G`` is the mean of the fitted ``log P_G(D)``; with ``"trend"`` it is the G trend line.
``log D_crit = (log P_G - a_M) / s_M`` (or the intersection of the two lines). If M does not
rise faster than G there is no crossing: the point estimate is nan and such draws count as
``+inf`` (the interval's upper end becomes unbounded, ``None`` in ``to_dict()``). The interval is
the percentile interval over the joint draws (G and M independent: different networks).

Results are frozen dataclasses; ``to_dict()`` gives JSON-ready plain data without nan.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import pandas as pd
from scipy import stats

from circeff.analysis.stats import (
    Interval,
    Record,
    check_common,
    percentile_interval,
    require_columns,
)
from circeff.analysis.rule import (
    Verdict,
    fmt,
    interval,
    interval_above_zero,
    interval_inside,
    level_of,
    t_interval,
    verdict,
)
from circeff.errors import ConfigError
from circeff.thresholds import CONFIDENCE_LEVEL, EQUIVALENCE_LEVEL, N_BOOT
from circeff.validate import integer_at_least

__all__ = [
    "CIRCUITS",
    "EFFICIENCY_COLUMNS",
    "P1_COLUMNS",
    "CircuitFit",
    "Crossover",
    "EfficiencyAnalysis",
    "PerD",
    "SeparateFit",
    "Trend",
    "analyse_efficiency",
    "clustered_slope",
    "fit_circuit",
    "fit_trend",
    "efficiency_slope",
    "fitted_lines",
    "p1",
    "per_D_table",
    "stripe_efficiencies",
    "two_seeds_per_D",
]

CIRCUITS = ("G", "M")
EFFICIENCY_COLUMNS = ("circuit", "D", "weight_decay", "seed", "param_norm", "correct_logit")
Intercepts = Literal["D", "D_seed"]


# ---------------------------------------------------------------------------------------------
# Results
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class PerD(Record):
    """Fitted efficiency at one dataset size: ``P`` with its interval."""

    D: float
    n: int
    n_seeds: int
    P: Interval


@dataclass(frozen=True)
class SeparateFit(Record):
    """The model fitted to one D alone (its own kappa)."""

    D: float
    n: int
    kappa: Interval
    P: Interval


@dataclass(frozen=True)
class CircuitFit(Record):
    """Shared-kappa fit for one circuit.

    Attributes:
        circuit: "G" or "M".
        intercepts: "D" or "D_seed" (see module docstring).
        n_rows: rows used.
        kappa: shared exponent with its t-interval.
        per_D: one :class:`PerD` per dataset size, sorted by D.
        residual_sd: standard deviation of the log-logit residuals.
        separate: per-D fits with their own kappa (D with enough rows only).
        kappa_homogeneity_p: F-test p-value, shared vs separate kappas (nan if untestable).
    """

    circuit: str
    intercepts: str
    n_rows: int
    kappa: Interval
    per_D: tuple[PerD, ...]
    residual_sd: float
    separate: tuple[SeparateFit, ...]
    kappa_homogeneity_p: float

    @property
    def D(self) -> np.ndarray:
        return np.array([p.D for p in self.per_D])

    @property
    def P(self) -> np.ndarray:
        return np.array([p.P.value for p in self.per_D])


@dataclass(frozen=True)
class Trend(Record):
    """``log P(D) = intercept + slope * log D`` (natural logs) for one circuit."""

    circuit: str
    slope: Interval
    intercept: float
    residual_sd: float
    n_D: int

    def log_P(self, D: np.ndarray | float) -> np.ndarray:
        """The trend line's ``log P`` at ``D`` (used for interpolation and for plots)."""
        return self.intercept + self.slope.value * np.log(np.asarray(D, dtype=float))


@dataclass(frozen=True)
class Crossover(Record):
    """D where the M trend meets P_G: the efficiency estimate of D_crit."""

    D_crit: Interval
    g_model: str
    log_P_G: float
    within_M_range: bool
    n_boot: int
    n_no_crossing: int


@dataclass(frozen=True)
class EfficiencyAnalysis(Record):
    """The P1 estimates: both fits, both trends and the crossover."""

    fit_G: CircuitFit
    fit_M: CircuitFit
    trend_G: Trend
    trend_M: Trend
    crossover: Crossover


# ---------------------------------------------------------------------------------------------
# Input
# ---------------------------------------------------------------------------------------------


def _validated(rows: object) -> pd.DataFrame:
    df = require_columns(rows, EFFICIENCY_COLUMNS,
                         numeric=("D", "weight_decay", "param_norm", "correct_logit"))
    df["circuit"] = df["circuit"].astype(str)
    bad = ~df["circuit"].isin(CIRCUITS)
    if bad.any():
        raise ConfigError("circuit", "must be 'G' or 'M'", df["circuit"][bad].iloc[0])
    for col in ("D", "param_norm"):
        if (df[col] <= 0).any():
            raise ConfigError(col, "must be > 0", float(df[col][df[col] <= 0].iloc[0]))
    if (df["correct_logit"] <= 0).any():
        raise ConfigError("correct_logit", "must be > 0 for a log-log fit (drop failed runs first)",
                          float(df["correct_logit"][df["correct_logit"] <= 0].iloc[0]))
    return df


@dataclass(frozen=True)
class _Design:
    """One circuit's rows in the form the estimators need (all arrays indexed by row)."""

    circuit: str
    intercepts: str
    x: np.ndarray            # log param_norm
    y: np.ndarray            # log correct_logit
    D_values: np.ndarray     # sorted distinct D
    d_of_row: np.ndarray     # index into D_values
    group_of_row: np.ndarray  # intercept group (D, or (D, seed) stripe)
    d_of_group: np.ndarray   # D index of every group
    n_seeds: np.ndarray      # distinct seeds per D

    @property
    def n_groups(self) -> int:
        return int(self.d_of_group.size)


def _design(df: pd.DataFrame, circuit: str, intercepts: str) -> _Design:
    if intercepts not in ("D", "D_seed"):
        raise ConfigError("intercepts", "must be 'D' or 'D_seed'", intercepts)
    sub = df[df["circuit"] == circuit].reset_index(drop=True)
    if len(sub) == 0:
        raise ConfigError("circuit", f"no rows for circuit {circuit!r}",
                          sorted(df["circuit"].unique().tolist()))
    D_values, d_of_row = np.unique(sub["D"].to_numpy(), return_inverse=True)
    seed_codes = pd.factorize(sub["seed"].astype(str))[0]
    n_seeds = np.array([np.unique(seed_codes[d_of_row == i]).size for i in range(D_values.size)])
    if intercepts == "D":
        group_of_row = d_of_row
        d_of_group = np.arange(D_values.size)
    else:
        if (n_seeds < 2).any():
            raise ConfigError("seed", f"circuit {circuit}: intercepts='D_seed' needs at least two "
                              "seeds at every D", int(D_values[np.argmax(n_seeds < 2)]))
        stripes = pd.factorize(pd.Series(list(zip(d_of_row, seed_codes))))[0]
        group_of_row = stripes
        d_of_group = np.zeros(stripes.max() + 1, dtype=int)
        d_of_group[stripes] = d_of_row
    return _Design(circuit, intercepts, np.log(sub["param_norm"].to_numpy()),
                   np.log(sub["correct_logit"].to_numpy()), D_values, d_of_row,
                   np.asarray(group_of_row), d_of_group, n_seeds)


# ---------------------------------------------------------------------------------------------
# Estimators
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _OLS:
    beta: np.ndarray   # [kappa, b_0, ..., b_{G-1}]
    cov: np.ndarray
    rss: float
    dof: int


def _ols(x: np.ndarray, y: np.ndarray, group: np.ndarray, n_groups: int) -> _OLS:
    """``y = kappa x + b_group`` by least squares, with the usual covariance ``s^2 (X'X)^-1``."""
    X = np.zeros((x.size, 1 + n_groups))
    X[:, 0] = x
    X[np.arange(x.size), 1 + group] = 1.0
    beta, _, rank, _ = np.linalg.lstsq(X, y, rcond=None)
    dof = x.size - X.shape[1]
    resid = y - X @ beta
    rss = float(resid @ resid)
    if rank < X.shape[1] or dof < 1:
        return _OLS(beta, np.full((X.shape[1], X.shape[1]), np.nan), rss, dof)
    cov = rss / dof * np.linalg.inv(X.T @ X)
    return _OLS(beta, cov, rss, dof)


def _log_P_and_gradient(fit: _OLS, groups: np.ndarray) -> tuple[float, np.ndarray]:
    """``log P = mean_g(-b_g / kappa)`` over ``groups`` and its gradient in ``beta``."""
    kappa = fit.beta[0]
    b = fit.beta[1 + groups]
    grad = np.zeros(fit.beta.size)
    grad[0] = float(np.mean(b)) / kappa**2
    grad[1 + groups] = -1.0 / (kappa * groups.size)
    return float(np.mean(-b / kappa)), grad


@dataclass(frozen=True)
class _LogPDistribution:
    """Estimated ``log P(D)`` and its approximate sampling distribution, for intervals and draws.

    ``"D"`` intercepts: multivariate t with the delta-method covariance ``cov`` and ``dof``
    residual degrees of freedom. ``"D_seed"``: independent t per D (scale ``se_seed``, ``dof_D`` =
    seeds - 1, the between-seed spread) plus the shared-kappa term ``grad_kappa * sd_kappa``
    times a t with ``dof`` degrees of freedom. ``se`` is the scale of one D's interval.
    """

    value: np.ndarray
    se: np.ndarray
    dof_D: np.ndarray
    dof: int
    cov: np.ndarray | None = None
    se_seed: np.ndarray | None = None
    grad_kappa: np.ndarray | None = None
    sd_kappa: float = 0.0

    def draws(self, n: int, rng: np.random.Generator) -> np.ndarray:
        """``[n, n_D]`` draws of ``log P(D)`` (a parametric bootstrap)."""
        if self.cov is not None:
            z = rng.multivariate_normal(np.zeros(self.value.size), self.cov, size=n,
                                        method="eigh")
            return self.value + z / np.sqrt(rng.chisquare(self.dof, size=(n, 1)) / self.dof)
        t_D = rng.standard_t(self.dof_D, size=(n, self.value.size))
        t_kappa = rng.standard_t(self.dof, size=(n, 1))
        return self.value + self.se_seed * t_D + self.grad_kappa * self.sd_kappa * t_kappa

    def interval(self, i: int, level: float, method: str) -> Interval:
        return t_interval(self.value[i], self.se[i], self.dof_D[i], level, method)


def _check_identifiable(des: _Design, fit: _OLS) -> None:
    n_params = 1 + des.n_groups
    if fit.dof < 1:
        raise ConfigError("rows", f"circuit {des.circuit}: need more than {n_params} rows "
                          f"(one kappa plus {des.n_groups} intercepts)", int(des.x.size))
    if not np.isfinite(fit.cov).all():
        if des.intercepts == "D_seed":
            raise ConfigError("weight_decay", f"circuit {des.circuit}: intercepts='D_seed' needs "
                              "two or more parameter norms (weight decays) within a seed and D")
        raise ConfigError("param_norm", f"circuit {des.circuit}: must vary within at least one D "
                          "to fit kappa")


def _log_P_distribution(des: _Design, fit: _OLS) -> _LogPDistribution:
    n_D = des.D_values.size
    if des.intercepts == "D":
        value, J = np.zeros(n_D), np.zeros((n_D, fit.beta.size))
        for i in range(n_D):
            value[i], J[i] = _log_P_and_gradient(fit, np.flatnonzero(des.d_of_group == i))
        cov = J @ fit.cov @ J.T
        se = np.sqrt(np.clip(np.diag(cov), 0.0, None))
        return _LogPDistribution(value, se, np.full(n_D, fit.dof), fit.dof, cov)
    kappa = fit.beta[0]
    log_P_stripe = -fit.beta[1:] / kappa
    value, se_seed, grad = np.zeros(n_D), np.zeros(n_D), np.zeros(n_D)
    for i in range(n_D):
        groups = np.flatnonzero(des.d_of_group == i)
        value[i] = log_P_stripe[groups].mean()
        se_seed[i] = log_P_stripe[groups].std(ddof=1) / np.sqrt(groups.size)
        grad[i] = fit.beta[1 + groups].mean() / kappa**2
    sd_kappa = float(np.sqrt(fit.cov[0, 0]))
    # one P(D)'s interval folds the kappa term into the between-seed scale
    se = np.sqrt(se_seed**2 + (grad * sd_kappa) ** 2)
    return _LogPDistribution(value, se, des.n_seeds - 1, fit.dof, None, se_seed, grad, sd_kappa)


def _separate_fits(des: _Design, level: float, min_points: int) -> tuple[tuple[SeparateFit, ...], float]:
    fits, rss_sep, dof_sep, rows_used = [], 0.0, 0, []
    for i, D in enumerate(des.D_values):
        rows = np.flatnonzero(des.d_of_row == i)
        if rows.size < min_points:
            continue
        codes, group = np.unique(des.group_of_row[rows], return_inverse=True)
        fit = _ols(des.x[rows], des.y[rows], group, codes.size)
        if fit.dof < 1 or not np.isfinite(fit.cov).all():
            continue
        kappa = t_interval(fit.beta[0], np.sqrt(fit.cov[0, 0]), fit.dof, level, "OLS t")
        log_P, grad = _log_P_and_gradient(fit, np.arange(codes.size))
        se = np.sqrt(max(float(grad @ fit.cov @ grad), 0.0))
        P = t_interval(log_P, se, fit.dof, level, "delta method (t), fit noise only").map(np.exp)
        fits.append(SeparateFit(float(D), int(rows.size), kappa, P))
        rss_sep += fit.rss
        dof_sep += fit.dof
        rows_used.append(rows)
    p_value = np.nan
    if len(fits) >= 2 and rss_sep > 0:
        rows = np.concatenate(rows_used)
        codes, group = np.unique(des.group_of_row[rows], return_inverse=True)
        shared = _ols(des.x[rows], des.y[rows], group, codes.size)
        df1 = len(fits) - 1
        F = max(shared.rss - rss_sep, 0.0) / df1 / (rss_sep / dof_sep)
        p_value = float(stats.f.sf(F, df1, dof_sep))
    return tuple(fits), p_value


_P_METHOD = {"D": "delta method (t)", "D_seed": "t over seeds (+ kappa term)"}
_DRAW_METHOD = {"D": "parametric bootstrap (multivariate t, delta-method covariance)",
                "D_seed": "parametric bootstrap (t over seeds per D, + kappa term)"}


def _fit(des: _Design, *, level: float, min_points_per_D: int) -> tuple[CircuitFit, _LogPDistribution]:
    shared = _ols(des.x, des.y, des.group_of_row, des.n_groups)
    _check_identifiable(des, shared)
    kappa = t_interval(shared.beta[0], np.sqrt(shared.cov[0, 0]), shared.dof, level, "OLS t")
    dist = _log_P_distribution(des, shared)
    per_D = tuple(
        PerD(float(D), int((des.d_of_row == i).sum()), int(des.n_seeds[i]),
             dist.interval(i, level, _P_METHOD[des.intercepts]).map(np.exp))
        for i, D in enumerate(des.D_values))
    separate, p_value = _separate_fits(des, level, min_points_per_D)
    fit = CircuitFit(des.circuit, des.intercepts, int(des.x.size), kappa, per_D,
                     float(np.sqrt(shared.rss / shared.dof)), separate, p_value)
    return fit, dist


def two_seeds_per_D(rows: pd.DataFrame) -> pd.Series:
    """Which rows lie at a (circuit, D) with two or more seeds: the rows a fit with
    ``intercepts="D_seed"`` can use (it compares seeds within each D)."""
    return rows.groupby(["circuit", "D"])["seed"].transform("nunique") >= 2


def fit_circuit(rows: object, circuit: str, *, intercepts: Intercepts = "D", level: float = CONFIDENCE_LEVEL,
                min_points_per_D: int = 3) -> CircuitFit:
    """Shared-kappa fit of ``logit = (norm / P(D))^kappa`` for one circuit (see module doc)."""
    check_common(level=level)
    integer_at_least("min_points_per_D", min_points_per_D, 3)
    des = _design(_validated(rows), circuit, intercepts)
    return _fit(des, level=level, min_points_per_D=min_points_per_D)[0]


# ---------------------------------------------------------------------------------------------
# Trend and crossover
# ---------------------------------------------------------------------------------------------


def _line(log_D: np.ndarray, log_P: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Row-wise OLS of ``log_P [B, n_D]`` on ``log_D [n_D]``: (intercept [B], slope [B])."""
    xc = log_D - log_D.mean()
    slope = (log_P - log_P.mean(axis=1, keepdims=True)) @ xc / (xc @ xc)
    return log_P.mean(axis=1) - slope * log_D.mean(), slope


def _trend(fit: CircuitFit, value: np.ndarray, draws: np.ndarray, level: float,
           method: str) -> Trend:
    log_D = np.log(fit.D)
    a, s = _line(log_D, value[None, :])
    _, s_draws = _line(log_D, draws)
    resid = value - (a[0] + s[0] * log_D)
    resid_sd = float(np.sqrt(resid @ resid / (log_D.size - 2))) if log_D.size > 2 else np.nan
    return Trend(fit.circuit, percentile_interval(s[0], s_draws, level, method), float(a[0]),
                 resid_sd, int(log_D.size))


def _require_two_D(des: _Design) -> None:
    if des.D_values.size < 2:
        raise ConfigError("D", f"circuit {des.circuit}: needs at least two distinct D values to fit "
                          "the trend of P(D)", des.D_values.tolist())


def fit_trend(rows: object, circuit: str, *, intercepts: Intercepts = "D", level: float = CONFIDENCE_LEVEL,
              n_boot: int = N_BOOT, seed: int = 0) -> Trend:
    """Slope of ``log P(D)`` against ``log D`` for one circuit with its interval."""
    check_common(level=level, n_boot=n_boot, seed=seed)
    des = _design(_validated(rows), circuit, intercepts)
    _require_two_D(des)
    fit, dist = _fit(des, level=level, min_points_per_D=3)
    draws = dist.draws(n_boot, np.random.default_rng(seed))
    return _trend(fit, dist.value, draws, level, _DRAW_METHOD[intercepts])


def _crossing(aM: np.ndarray, sM: np.ndarray, aG: np.ndarray, sG: np.ndarray) -> np.ndarray:
    """``log D`` where the lines meet; +inf where M does not rise faster than G."""
    rel = sM - sG
    out = np.full(np.shape(rel), np.inf)
    ok = rel > 0
    out[ok] = (aG[ok] - aM[ok]) / rel[ok]
    return out


def _crossover(fit_G: CircuitFit, fit_M: CircuitFit, logPG: np.ndarray, logPM: np.ndarray,
               g_model: str, level: float, method: str) -> Crossover:
    """``logPG``/``logPM``: ``[1 + B, n_D]``, the estimate in row 0 then B draws."""
    aM, sM = _line(np.log(fit_M.D), logPM)
    if g_model == "flat":
        aG, sG = logPG.mean(axis=1), np.zeros(logPG.shape[0])
    else:
        aG, sG = _line(np.log(fit_G.D), logPG)
    log_cross = _crossing(aM, sM, aG, sG)
    point = float(np.exp(log_cross[0])) if np.isfinite(log_cross[0]) else np.nan
    with np.errstate(over="ignore"):
        reps = np.exp(log_cross[1:])
    interval = percentile_interval(point, reps, level, method)
    within = bool(np.isfinite(point) and fit_M.D.min() <= point <= fit_M.D.max())
    return Crossover(interval, g_model, float(aG[0]), within, int(reps.size),
                     int(np.isinf(log_cross[1:]).sum()))


def analyse_efficiency(rows: object, *, intercepts: Intercepts = "D", level: float = CONFIDENCE_LEVEL,
                       n_boot: int = N_BOOT, seed: int = 0,
                       g_model: Literal["flat", "trend"] = "flat",
                       min_points_per_D: int = 3) -> EfficiencyAnalysis:
    """P1 estimates from single-circuit networks: fits, trends and the crossover (D_crit).

    ``n_boot`` draws of the parametric bootstrap (``seed`` seeds them) give the slope and
    crossover intervals. Raises ConfigError naming ``D`` when a circuit has fewer than two D
    values, ``circuit`` when one circuit is missing, and the offending column for bad values.
    """
    check_common(level=level, n_boot=n_boot, seed=seed)
    integer_at_least("min_points_per_D", min_points_per_D, 3)
    if g_model not in ("flat", "trend"):
        raise ConfigError("g_model", "must be 'flat' or 'trend'", g_model)
    df = _validated(rows)
    missing = [c for c in CIRCUITS if c not in set(df["circuit"])]
    if missing:
        raise ConfigError("circuit", "rows for both 'G' and 'M' are needed", sorted(set(df["circuit"])))
    designs = {c: _design(df, c, intercepts) for c in CIRCUITS}
    for des in designs.values():
        _require_two_D(des)
    rng_G, rng_M = (np.random.default_rng(s) for s in np.random.SeedSequence(seed).spawn(2))
    fit_G, dist_G = _fit(designs["G"], level=level, min_points_per_D=min_points_per_D)
    fit_M, dist_M = _fit(designs["M"], level=level, min_points_per_D=min_points_per_D)
    draws_G, draws_M = dist_G.draws(n_boot, rng_G), dist_M.draws(n_boot, rng_M)
    method = _DRAW_METHOD[intercepts]
    trend_G = _trend(fit_G, dist_G.value, draws_G, level, method)
    trend_M = _trend(fit_M, dist_M.value, draws_M, level, method)
    crossover = _crossover(fit_G, fit_M, np.vstack([dist_G.value, draws_G]),
                           np.vstack([dist_M.value, draws_M]), g_model, level,
                           method + ", G and M drawn independently")
    return EfficiencyAnalysis(fit_G, fit_M, trend_G, trend_M, crossover)


# ---------------------------------------------------------------------------------------------
# Tables for plots and CSV
# ---------------------------------------------------------------------------------------------


def fitted_lines(fit: CircuitFit, rows: object, n_points: int = 20) -> pd.DataFrame:
    """The fitted ``logit = (norm / P(D))^kappa`` over each D's observed norm range.

    Columns ``circuit, D, param_norm, correct_logit``; what a Figure 3 panel draws as lines.
    """
    integer_at_least("n_points", n_points, 2)
    df = _validated(rows)
    df = df[df["circuit"] == fit.circuit]
    out = []
    for p in fit.per_D:
        norms = df.loc[df["D"] == p.D, "param_norm"]
        if norms.empty:
            continue
        grid = np.geomspace(norms.min(), norms.max(), n_points)
        out.append(pd.DataFrame({"circuit": fit.circuit, "D": p.D, "param_norm": grid,
                                 "correct_logit": (grid / p.P.value) ** fit.kappa.value}))
    return pd.concat(out, ignore_index=True)


def per_D_table(analysis: EfficiencyAnalysis) -> pd.DataFrame:
    """Flat table of the fitted P(D): ``circuit, D, n, n_seeds, P, P_lo, P_hi, kappa``."""
    rows = []
    for fit in (analysis.fit_G, analysis.fit_M):
        for p in fit.per_D:
            rows.append({"circuit": fit.circuit, "D": p.D, "n": p.n, "n_seeds": p.n_seeds,
                         "P": p.P.value, "P_lo": p.P.lo, "P_hi": p.P.hi,
                         "kappa": fit.kappa.value})
    return pd.DataFrame(rows)


# ---------------------------------------------------------------------------------------------
# The rule
# ---------------------------------------------------------------------------------------------

P1_COLUMNS = ("circuit", "D", "seed", "alpha", "logit", "param_norm")


def stripe_efficiencies(df: pd.DataFrame, level: float) -> dict[str, Any]:
    """Shared-kappa fit of one circuit: kappa interval and each stripe's ``log P``."""
    x, y = np.log(df["param_norm"].to_numpy()), np.log(df["logit"].to_numpy())
    stripe = df.groupby(["D", "seed"], sort=True).ngroup().to_numpy()
    n_stripes = int(stripe.max()) + 1
    count = np.bincount(stripe, minlength=n_stripes)
    mean_x = np.bincount(stripe, x, n_stripes) / count
    mean_y = np.bincount(stripe, y, n_stripes) / count
    xc, yc = x - mean_x[stripe], y - mean_y[stripe]
    sxx = float(xc @ xc)
    kappa = float(xc @ yc / sxx) if sxx > 0 else np.nan
    dof = x.size - n_stripes - 1
    resid = yc - kappa * xc
    se = math.sqrt(float(resid @ resid) / dof / sxx) if dof >= 1 and sxx > 0 else np.inf
    first = np.array([np.flatnonzero(stripe == i)[0] for i in range(n_stripes)])
    D_of, seed_of = df["D"].to_numpy()[first], df["seed"].to_numpy()[first]
    log_P = mean_x - mean_y / kappa
    return {"kappa": t_interval(kappa, se, dof, level, "t"), "kappa_se": se, "log_P": log_P,
            "D": D_of, "seed": seed_of, "n_stripes": n_stripes, "n_rows": int(x.size),
            "rung_sd": math.sqrt(float(resid @ resid) / dof) if dof >= 1 else np.nan,
            "within_seed_sd": _within_seed_sd(log_P, seed_of)}


def _within_seed_sd(log_P: np.ndarray, seed: np.ndarray) -> float:
    """The spread of ``log P`` within a seed across its sizes (pooled over seeds)."""
    resid = np.concatenate([log_P[seed == s] - log_P[seed == s].mean() for s in pd.unique(seed)])
    dof = resid.size - pd.unique(seed).size
    return math.sqrt(float(resid @ resid) / dof) if dof >= 1 else np.nan


def efficiency_slope(log_D: np.ndarray, log_P: np.ndarray, level: float) -> tuple[Interval, float, float]:
    """OLS slope of ``log_P`` on ``log_D`` with a t interval; (interval, intercept, residual sd)."""
    xc = log_D - log_D.mean()
    sxx = float(xc @ xc)
    if sxx == 0:
        return interval(np.nan, -np.inf, np.inf, level, "t"), np.nan, np.nan
    s = float(xc @ (log_P - log_P.mean()) / sxx)
    a = float(log_P.mean() - s * log_D.mean())
    dof = log_D.size - 2
    resid = log_P - a - s * log_D
    sd = math.sqrt(float(resid @ resid) / dof) if dof >= 1 else np.nan
    return t_interval(s, sd / math.sqrt(sxx), dof, level, "t"), a, sd


def clustered_slope(log_D: np.ndarray, log_P: np.ndarray, cluster: np.ndarray,
                    level: float) -> tuple[Interval, float, int]:
    """The slope of ``log_P`` on ``log_D`` clustered by ``cluster`` (the seed): the OLS slope
    within each cluster with two or more distinct D, then their mean with a t interval over
    clusters (clusters - 1 degrees of freedom). Networks of one seed share their initial
    weights, so they are one unit, never several; copies of a network are one cluster.
    Returns (interval, standard error, clusters used)."""
    slopes = []
    for c in pd.unique(cluster):
        x, y = log_D[cluster == c], log_P[cluster == c]
        if np.unique(x).size >= 2:
            slopes.append(efficiency_slope(x, y, level)[0].value)
    k = len(slopes)
    if k == 0:
        return interval(np.nan, -np.inf, np.inf, level, "t over seeds"), np.inf, 0
    mean = float(np.mean(slopes))
    se = float(np.std(slopes, ddof=1) / math.sqrt(k)) if k >= 2 else np.inf
    return t_interval(mean, se, k - 1, level, "t over seeds (slope within each seed)"), se, k


def p1(table: Any, *, level: float = CONFIDENCE_LEVEL, equivalence_level: float = EQUIVALENCE_LEVEL,
       delta_fraction: float = 0.5, min_D: int = 3, design_rates: dict | None = None,
       min_power: float = 0.8, max_false_accept: float = 0.05) -> Verdict:
    """P1: M's efficiency P(D) rises with D, G's is flat (equivalence), see the module doc.

    ``design_rates``: ``{"power", "false_accept"}`` of this rule on this run's design, measured
    by :mod:`circeff.analysis.controls` (power = 1 - false reject against the alternative
    "G's slope equals M's"). G's part is decided only on a design with at least ``min_power``
    power and at most ``max_false_accept`` false accept; otherwise, and when no rates are
    given, a G slope that is neither shown flat nor shown steep leaves P1 undecided.
    """
    rule = {"level": level_of("level", level), "equivalence_level": level_of("equivalence_level", equivalence_level),
            "delta_fraction": float(delta_fraction), "min_D": int(min_D),
            "min_power": level_of("min_power", min_power), "max_false_accept": level_of("max_false_accept",
                                                                                          max_false_accept),
            "slope": "stripe log P on log D within each seed, averaged over seeds, t interval (seeds - 1 dof)",
            "g_flat": "G slope interval at equivalence_level inside +-delta, "
                      "delta = delta_fraction x lower end of M's slope interval",
            "g_steep": "G slope interval at level wholly outside +-delta",
            "power": "G decided only where the design has min_power against G slope = M slope and "
                     "max_false_accept (measured by the controls)"}
    df = require_columns(table, P1_COLUMNS, numeric=("D", "alpha", "logit", "param_norm"))
    bad = (df["logit"] <= 0) | (df["param_norm"] <= 0) | (df["D"] <= 0)
    excluded = int(bad.sum())
    df = df[~bad].reset_index(drop=True)
    df["circuit"] = df["circuit"].astype(str)
    problems, undecided, criteria = [], [], []
    numbers: dict[str, Any] = {"excluded_rows": excluded}
    fits: dict[str, dict[str, Any]] = {}
    for c in ("M", "G"):
        sub = df[df["circuit"] == c]
        n_D = int(sub["D"].nunique())
        numbers[f"D_{c}"] = sorted(float(d) for d in sub["D"].unique())
        if n_D < min_D:
            undecided.append(f"{c} has {n_D} distinct D (needs {min_D})")
            continue
        fit = stripe_efficiencies(sub, level)
        slope_level = level if c == "M" else equivalence_level
        slope, se, clusters = clustered_slope(np.log(fit["D"]), fit["log_P"], fit["seed"], slope_level)
        # the same slope and error at the test level (G: is it steep?)
        fit.update(slope=slope, se=se, clusters=clusters,
                   wide=t_interval(slope.value, se, clusters - 1, level, slope.method))
        fits[c] = fit
        numbers[f"kappa_{c}"] = fit["kappa"]
        numbers[f"slope_{c}"] = slope
        numbers[f"slope_se_{c}"] = se
        numbers[f"stripes_{c}"] = fit["n_stripes"]
        numbers[f"seeds_{c}"] = clusters
        numbers[f"within_seed_sd_{c}"] = fit["within_seed_sd"]
        kappa = fit["kappa"]
        criteria.append(interval_above_zero(f"kappa_{c} above 0", kappa, fit["kappa_se"]))
        if not kappa.above(0.0):
            problems.append(f"kappa interval of {c} {fmt(kappa)} not above 0: the logit does "
                            "not grow with the norm")
    numbers["log10_range_G"] = (math.log10(max(numbers["D_G"]) / min(numbers["D_G"])) if numbers["D_G"] else 0.0)
    facts = []
    delta = np.nan
    numbers["outcome_M"] = numbers["outcome_G"] = "undecided"
    if "M" in fits:
        m = fits["M"]
        rises = m["slope"].above(0.0)
        criteria.append(interval_above_zero("M slope above 0", m["slope"], m["se"]))
        facts.append(f"M slope {fmt(m['slope'])} " + ("above 0" if rises else "not above 0"))
        numbers["outcome_M"] = "holds" if rises else "does not hold"
        if rises:
            delta = delta_fraction * m["slope"].lo
        else:
            problems.append("M's efficiency does not rise with D")
    numbers["delta"] = delta
    if design_rates is not None:
        numbers["design_power"] = float(design_rates["power"])
        numbers["design_false_accept"] = float(design_rates["false_accept"])
    able = design_rates is not None and design_rates["power"] >= min_power and \
        design_rates["false_accept"] <= max_false_accept
    if "G" in fits and np.isfinite(delta):
        g = fits["G"]
        flat = bool(g["slope"].within(-delta, delta))
        steep = bool(g["wide"].lo > delta or g["wide"].hi < -delta)
        criteria.append(interval_inside("|G slope| inside +-delta", g["slope"], delta, g["se"]))
        facts.append(f"G slope {fmt(g['slope'])} " + (f"inside +-{delta:.3g}" if flat else
                                                     f"not inside +-{delta:.3g}"))
        rates = ("" if design_rates is None else f" (power {design_rates['power']:.2f} against G slope = M slope, "
                 f"false accept {design_rates['false_accept']:.2f}; needs {min_power:g} and {max_false_accept:g})")
        if steep:
            problems.append(f"G's slope interval at {level:g} lies outside +-{delta:.3g}: G's efficiency changes with D")
            numbers["outcome_G"] = "does not hold"
        elif flat and (able or design_rates is None):
            numbers["outcome_G"] = "holds"
        elif flat:
            undecided.append("G shown flat on a design whose controls do not meet the targets" + rates)
        elif able:
            problems.append("G not shown flat on a design with the power to show it" + rates)
            numbers["outcome_G"] = "does not hold"
        else:
            undecided.append("G neither shown flat nor shown steep, and the design lacks the power to tell"
                             + (rates or " (power not measured)"))
    elif "G" in fits:
        undecided.append("G cannot be judged without a rising M slope to set delta")
    return verdict("P1", problems, facts, numbers, rule, undecided=undecided, criteria=criteria)
