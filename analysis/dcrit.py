"""D_crit from the ungrokking transition (P2 and P3 estimates), and agreement between two
D_crit estimates.

Input: one row per ungrokked network with columns ``D`` (size D' of the reduced training set),
``seed``, ``weight_decay`` and ``final_test_acc`` (test accuracy at convergence).

Transition model
----------------
Final test accuracy is a logistic function of ``log D``:

    acc(D) = lower + (upper - lower) * sigmoid((log D - log D_mid) / width)

fitted by least squares (``scipy.optimize.curve_fit``, trust-region reflective) with
``lower, upper`` bounded to ``[chance, 1]``, ``width`` to ``[0.01, 2] x`` the span of ``log D``
and ``log D_mid`` to the observed ``log D`` range widened by one span on each side. D_crit is the
midpoint ``D_mid``: where accuracy is halfway between the two plateaus. ``chance`` is a required
argument (``1 / P`` for modular arithmetic). ``DcritEstimate.at_bound`` flags a midpoint that
ran into its bound (no transition inside the data; treat the number with suspicion).

Interval: percentile bootstrap over seeds: ``n_boot`` times, draw the seeds with replacement
(each drawn seed brings all its rows), refit, take the midpoint (``seed`` argument seeds the
draws). Fits that fail to converge are dropped and counted (``n_failed``).

The decisions P2 and P3 are taken by :func:`circeff.analysis.verdicts.p2` and
:func:`~circeff.analysis.verdicts.p3`; this module estimates D_crit and its interval, which
the figures and pages show.

Agreement (:func:`agree`): two estimates agree when their intervals overlap. This is lenient
(two 95% intervals can overlap while the difference is significant at about the 0.5% level);
it is the usual reading of "consistent within the error bars".
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy.optimize import OptimizeWarning, curve_fit
from scipy.special import expit

from circeff.analysis.stats import Interval, Record, check_common, percentile_interval, require_columns
from circeff.errors import ConfigError, RunError
from circeff.validate import in_range

__all__ = [
    "DCRIT_COLUMNS",
    "DcritEstimate",
    "SigmoidFit",
    "agree",
    "fit_dcrit",
    "fit_dcrit_by_weight_decay",
    "sigmoid_accuracy",
]

DCRIT_COLUMNS = ("D", "seed", "weight_decay", "final_test_acc")


@dataclass(frozen=True)
class SigmoidFit(Record):
    """Fitted transition: ``lower + (upper - lower) * sigmoid((log D - log_midpoint) / width)``."""

    lower: float
    upper: float
    log_midpoint: float
    width: float

    def accuracy(self, D: np.ndarray | float) -> np.ndarray:
        """The fitted accuracy at dataset size(s) ``D`` (what a plot draws as the curve)."""
        return sigmoid_accuracy(np.log(np.asarray(D, dtype=float)), self.lower, self.upper,
                                self.log_midpoint, self.width)


@dataclass(frozen=True)
class DcritEstimate(Record):
    """D_crit as the midpoint of the ungrokking transition, with its bootstrap interval.

    ``weight_decay`` is None when rows of several weight decays were pooled.
    """

    D_crit: Interval
    curve: SigmoidFit
    weight_decay: float | None
    chance: float
    n_rows: int
    n_seeds: int
    D_min: float
    D_max: float
    at_bound: bool
    n_boot: int
    n_failed: int


def sigmoid_accuracy(log_D: np.ndarray, lower: float, upper: float, log_midpoint: float,
                     width: float) -> np.ndarray:
    """The transition model in ``log D`` (``expit`` keeps it overflow-free for steep fits)."""
    return lower + (upper - lower) * expit((np.asarray(log_D) - log_midpoint) / width)


def _validated(rows: object) -> pd.DataFrame:
    df = require_columns(rows, DCRIT_COLUMNS, numeric=("D", "weight_decay", "final_test_acc"))
    if (df["D"] <= 0).any():
        raise ConfigError("D", "must be > 0", float(df["D"][df["D"] <= 0].iloc[0]))
    acc = df["final_test_acc"]
    if ((acc < 0) | (acc > 1)).any():
        raise ConfigError("final_test_acc", "must be in [0, 1]", float(acc[(acc < 0) | (acc > 1)].iloc[0]))
    df["seed"] = df["seed"].astype(str)
    return df


class _Fitter:
    """Bounds and starting point shared by the point fit and its bootstrap refits."""

    def __init__(self, log_D: np.ndarray, chance: float) -> None:
        lo, hi = float(log_D.min()), float(log_D.max())
        span = hi - lo
        self.mid_bounds = (lo - span, hi + span)
        self.lower_bounds = np.array([chance, chance, self.mid_bounds[0], 0.01 * span])
        self.upper_bounds = np.array([1.0, 1.0, self.mid_bounds[1], 2.0 * span])
        self.span = span

    def start(self, log_D: np.ndarray, acc: np.ndarray) -> np.ndarray:
        order = np.unique(log_D)
        means = np.array([acc[log_D == v].mean() for v in order])
        lo_acc, hi_acc = means.min(), means.max()
        half = (lo_acc + hi_acc) / 2
        above = np.flatnonzero(means >= half)
        mid = order[above[0]] if above.size else order.mean()
        p0 = np.array([lo_acc, hi_acc, mid, 0.1 * self.span])
        return np.clip(p0, self.lower_bounds + 1e-9, self.upper_bounds - 1e-9)

    def fit(self, log_D: np.ndarray, acc: np.ndarray, p0: np.ndarray) -> np.ndarray | None:
        with warnings.catch_warnings():
            # a covariance that cannot be estimated is fine: the interval comes from the bootstrap
            warnings.simplefilter("ignore", OptimizeWarning)
            try:
                popt, _ = curve_fit(sigmoid_accuracy, log_D, acc, p0=p0,
                                    bounds=(self.lower_bounds, self.upper_bounds), method="trf",
                                    max_nfev=2000)
            except (RuntimeError, ValueError):
                return None
        return popt

    def at_bound(self, log_mid: float) -> bool:
        tol = 1e-3 * self.span
        return bool(log_mid <= self.mid_bounds[0] + tol or log_mid >= self.mid_bounds[1] - tol)


def _fit_one(df: pd.DataFrame, *, chance: float, level: float, n_boot: int,
             rng: np.random.Generator, weight_decay: float | None) -> tuple[DcritEstimate, np.ndarray]:
    seeds = df["seed"].unique()
    if seeds.size < 2:
        raise ConfigError("seed", "need at least two seeds for the bootstrap interval",
                          seeds.tolist())
    if df["D"].nunique() < 3:
        raise ConfigError("D", "need at least three distinct D values to fit the transition",
                          sorted(df["D"].unique().tolist()))
    log_D, acc = np.log(df["D"].to_numpy()), df["final_test_acc"].to_numpy()
    fitter = _Fitter(log_D, chance)
    popt = fitter.fit(log_D, acc, fitter.start(log_D, acc))
    if popt is None:
        raise RunError(f"the transition fit did not converge (weight decay {weight_decay})")
    rows_of_seed = [np.flatnonzero(df["seed"].to_numpy() == s) for s in seeds]
    reps = np.full(n_boot, np.nan)
    for b in range(n_boot):
        idx = np.concatenate([rows_of_seed[i] for i in rng.integers(0, seeds.size, seeds.size)])
        p = fitter.fit(log_D[idx], acc[idx], popt)
        if p is not None:
            reps[b] = p[2]
    good = np.isfinite(reps)
    if not good.any():
        raise RunError(f"no bootstrap refit of the transition converged (weight decay {weight_decay})")
    interval = percentile_interval(popt[2], reps[good], level,
                                   "bootstrap percentile (seeds resampled)").map(np.exp)
    curve = SigmoidFit(*(float(v) for v in popt))
    est = DcritEstimate(interval, curve, weight_decay, float(chance), int(len(df)), int(seeds.size),
                        float(df["D"].min()), float(df["D"].max()), fitter.at_bound(popt[2]),
                        int(good.sum()), int((~good).sum()))
    return est, reps[good]


def _check(chance: float, level: float, n_boot: int, seed: int) -> None:
    in_range("chance", chance, 0.0, 1.0, hi_open=True)
    check_common(level=level, n_boot=n_boot, seed=seed)


def fit_dcrit(rows: object, *, chance: float, level: float = 0.95, n_boot: int = 500,
              seed: int = 0) -> DcritEstimate:
    """D_crit as the midpoint of the transition over all rows (weight decays pooled if several)."""
    _check(chance, level, n_boot, seed)
    df = _validated(rows)
    wds = df["weight_decay"].unique()
    wd = float(wds[0]) if wds.size == 1 else None
    return _fit_one(df, chance=chance, level=level, n_boot=n_boot,
                    rng=np.random.default_rng(seed), weight_decay=wd)[0]


def _by_wd(df: pd.DataFrame, *, chance: float, level: float, n_boot: int,
           seed: int) -> list[tuple[DcritEstimate, np.ndarray]]:
    wds = np.sort(df["weight_decay"].unique())
    rngs = [np.random.default_rng(s) for s in np.random.SeedSequence(seed).spawn(wds.size)]
    return [_fit_one(df[df["weight_decay"] == wd].reset_index(drop=True), chance=chance,
                     level=level, n_boot=n_boot, rng=rng, weight_decay=float(wd))
            for wd, rng in zip(wds, rngs)]


def fit_dcrit_by_weight_decay(rows: object, *, chance: float, level: float = 0.95,
                              n_boot: int = 500, seed: int = 0) -> tuple[DcritEstimate, ...]:
    """One :class:`DcritEstimate` per weight decay, sorted by weight decay."""
    _check(chance, level, n_boot, seed)
    return tuple(est for est, _ in _by_wd(_validated(rows), chance=chance, level=level,
                                           n_boot=n_boot, seed=seed))


def agree(est_a: Interval | DcritEstimate | object, est_b: Interval | DcritEstimate | object) -> bool:
    """Whether two D_crit estimates agree: their intervals overlap (see module doc).

    Accepts :class:`Interval` objects or anything with a ``D_crit`` interval
    (:class:`DcritEstimate`, :class:`circeff.analysis.efficiency.Crossover`). A nan end (no
    estimate) never agrees; an infinite end is unbounded.
    """
    a = getattr(est_a, "D_crit", est_a)
    b = getattr(est_b, "D_crit", est_b)
    for name, iv in (("est_a", a), ("est_b", b)):
        if not isinstance(iv, Interval):
            raise ConfigError(name, "must be an Interval or have a D_crit Interval", type(iv).__name__)
    return a.overlaps(b)
