"""Predictions P2 and P3 from ungrokking runs, and the one estimator of D_crit.

Input: one row per ungrokked network with columns ``D`` (the reduced size D'), ``seed``,
``weight_decay``, ``final_test_acc`` and, for the rules, ``converged`` (and optionally
``base_trig_share``, the trig share of the seed's base network).

D_crit (:func:`estimate_dcrit`)
-------------------------------
Final test accuracy is a logistic function of ``log D'``:

    acc(D') = lower + (upper - lower) * sigmoid((log D' - log D_crit) / width)

fitted by least squares (``scipy.optimize.curve_fit``, trust-region reflective; the best of
six starts: three midpoints spread over the grid times two widths) with ``lower, upper``
bounded to ``[chance, 1]``, ``width`` to ``[0.01, 2] x`` the span of ``log D'`` and
``log D_crit`` to the observed range widened by one span on each side. D_crit is the midpoint:
where accuracy is halfway between the two fitted plateaus. ``DcritEstimate.at_bound`` flags a
midpoint that ran into its bound (no transition inside the data).

Its interval is a percentile bootstrap over seeds: ``n_boot`` times, draw the seeds with
replacement (each drawn seed brings all its rows), refit from the point fit, and take the
midpoint; a draw with fewer than four distinct D' (one per parameter) is skipped (``n_failed`` counts skipped and
failed draws). ``n_boot = 0`` gives the point estimate alone.

This is the only D_crit of an ungrokking table in the package: P2 reports it, P3 takes it per
(weight decay, seed), the refinement grid, P4's sizes, Figure 8 and the allocation comparison
all read it. (The efficiency crossover of P1, :mod:`circeff.analysis.efficiency`, is a
different quantity: where the two circuits' fitted efficiencies meet.)

P2 (:func:`p2`)
---------------
Every base network must be G-only (``base_trig_share`` above ``g_only_share``, when
the column is given). Only converged rows are fitted; more than ``max_excluded_fraction``
unconverged rows is a failure (run longer rather than drop). The logistic above is compared
with a straight line in ``log D'`` (the ramp). Holds when: the logistic is preferred by the
Bayesian information criterion (Gaussian errors, the noise variance counted as a parameter) by
at least ``min_delta_bic`` (10, "very strong" on the Kass-Raftery scale); at least
``min_in_band`` distinct D' lie inside the fitted 10-90% band of the rise, and the band lies
inside the grid; the fitted jump ``upper - lower`` is at least ``min_jump``. D_crit and its
interval are reported, not used to decide.

P3 (:func:`p3`)
---------------
Per (weight decay, seed), D_crit is :func:`estimate_dcrit`'s point estimate on that unit's
converged rows, refitted from the fit of all converged rows (as a bootstrap draw is refitted from
the point fit); a unit with fewer than four distinct D', whose fit fails, or whose midpoint is
at its bound or outside its grid is censored and dropped (counted). ``log D_crit = s log wd + c_seed`` by OLS with one intercept per seed
(the seeds are the same base networks at every weight decay). Holds, by equivalence, when at
least ``min_weight_decays`` weight decays spanning ``min_wd_ratio`` (4x) each have
``min_seeds`` uncensored seeds and the slope's t interval at ``equivalence_level`` lies inside
``+-tolerance`` (0.1: a tenfold weight decay moves D_crit by at most 26%). Does not hold when
the slope's t interval at ``level`` lies wholly outside ``+-tolerance`` (D_crit shown to move
with weight decay), or when the final-accuracy plateaus differ; a slope interval that straddles
the tolerance shows neither, and P3 is then undecided (as P1's G part is).

"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass
from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd
from scipy.optimize import OptimizeWarning, curve_fit
from scipy.special import expit

from circeff.analysis.rule import (
    Verdict,
    criterion,
    fmt,
    interval,
    interval_inside,
    level_of,
    t_interval,
    verdict,
)
from circeff.analysis.stats import Interval, Record, percentile_interval, require_columns
from circeff.errors import ConfigError, RunError
from circeff.thresholds import CONFIDENCE_LEVEL, EQUIVALENCE_LEVEL, G_ONLY_TRIG_SHARE, MAX_EXCLUDED_FRACTION, N_BOOT
from circeff.validate import in_range, integer_at_least

__all__ = [
    "DCRIT_COLUMNS",
    "P2_COLUMNS",
    "DcritEstimate",
    "TransitionFit",
    "dcrit_by_weight_decay",
    "estimate_dcrit",
    "fit_transition",
    "p2",
    "p3",
    "transition_accuracy",
]

DCRIT_COLUMNS = ("D", "seed", "weight_decay", "final_test_acc")
P2_COLUMNS = ("D", "seed", "weight_decay", "final_test_acc", "converged")
_MIN_DISTINCT_D = 4   # a 4-parameter logistic: a bootstrap draw, P2 and a P3 unit need four distinct D'
_MIN_DISTINCT_D_POINT = 3   # the point estimate alone is reported from three (the bounds hold the plateaus)


@dataclass(frozen=True)
class TransitionFit(Record):
    """Fitted transition: ``lower + (upper - lower) * sigmoid((log D - log_midpoint) / width)``."""

    lower: float
    upper: float
    log_midpoint: float
    width: float

    def accuracy(self, D: np.ndarray | float) -> np.ndarray:
        """The fitted accuracy at dataset size(s) ``D`` (what a plot draws as the curve)."""
        return transition_accuracy(np.log(np.asarray(D, dtype=float)), *self.params)

    @property
    def params(self) -> tuple[float, float, float, float]:
        return self.lower, self.upper, self.log_midpoint, self.width


@dataclass(frozen=True)
class DcritEstimate(Record):
    """D_crit as the midpoint of the ungrokking transition, with its bootstrap interval.

    ``weight_decay`` is None when rows of several weight decays were pooled.
    """

    D_crit: Interval
    curve: TransitionFit
    weight_decay: float | None
    chance: float
    n_rows: int
    n_seeds: int
    D_min: float
    D_max: float
    at_bound: bool
    n_boot: int
    n_failed: int

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> DcritEstimate:
        """The estimate from its JSON form (``to_dict``), as a later stage reads a written one."""
        c = d["curve"]
        return cls(Interval.from_dict(d["D_crit"]),
                   TransitionFit(float(c["lower"]), float(c["upper"]), float(c["log_midpoint"]), float(c["width"])),
                   None if d.get("weight_decay") is None else float(d["weight_decay"]), float(d["chance"]),
                   int(d["n_rows"]), int(d["n_seeds"]), float(d["D_min"]), float(d["D_max"]), bool(d["at_bound"]),
                   int(d["n_boot"]), int(d["n_failed"]))


def transition_accuracy(log_D: np.ndarray, lower: float, upper: float, log_midpoint: float,
                        width: float) -> np.ndarray:
    """The transition model in ``log D`` (``expit`` keeps it overflow-free for steep fits)."""
    return lower + (upper - lower) * expit((np.asarray(log_D) - log_midpoint) / width)


def _bounds(x: np.ndarray, chance: float) -> tuple[list[float], list[float]]:
    lo, hi = float(x.min()), float(x.max())
    span = hi - lo
    return [chance, chance, lo - span, 0.01 * span], [1.0, 1.0, hi + span, 2.0 * span]


def fit_transition(x: np.ndarray, y: np.ndarray, chance: float,
                   starts: np.ndarray | None = None) -> np.ndarray | None:
    """Least-squares logistic in ``x = log D`` (best of a few starts); None if no fit converges."""
    lower_b, upper_b = _bounds(x, chance)
    span = float(x.max() - x.min())
    if starts is None:
        levels = np.unique(x)
        mids = (levels[:-1] + levels[1:]) / 2 if levels.size > 1 else levels
        picks = mids[np.linspace(0, mids.size - 1, min(3, mids.size)).round().astype(int)]
        starts = np.array([[max(chance, y.min()), min(1.0, y.max()), m, w * span]
                           for m in picks for w in (0.05, 0.3)])
    best, best_rss = None, np.inf
    for p0 in starts:
        p0 = np.clip(p0, np.array(lower_b) + 1e-9, np.array(upper_b) - 1e-9)
        with warnings.catch_warnings():
            # a covariance that cannot be estimated is fine: the interval comes from the bootstrap
            warnings.simplefilter("ignore", OptimizeWarning)
            try:
                popt, _ = curve_fit(transition_accuracy, x, y, p0=p0, bounds=(lower_b, upper_b),
                                    method="trf", max_nfev=2000)
            except (RuntimeError, ValueError):
                continue
        rss = float(np.sum((y - transition_accuracy(x, *popt)) ** 2))
        if rss < best_rss:
            best, best_rss = popt, rss
    return best


def _validated(rows: object, chance: float) -> pd.DataFrame:
    in_range("chance", chance, 0.0, 1.0, hi_open=True)
    df = require_columns(rows, DCRIT_COLUMNS, numeric=("D", "weight_decay", "final_test_acc"))
    if (df["D"] <= 0).any():
        raise ConfigError("D", "must be > 0", float(df["D"][df["D"] <= 0].iloc[0]))
    acc = df["final_test_acc"]
    if ((acc < 0) | (acc > 1)).any():
        raise ConfigError("final_test_acc", "must lie in [0, 1]", float(acc[(acc < 0) | (acc > 1)].iloc[0]))
    df["seed"] = df["seed"].astype(str)
    return df


def _estimate(df: pd.DataFrame, chance: float, level: float, n_boot: int, rng: np.random.Generator,
              weight_decay: float | None, start: TransitionFit | None = None) -> DcritEstimate:
    if df["D"].nunique() < _MIN_DISTINCT_D_POINT:
        raise ConfigError("D", f"need at least {_MIN_DISTINCT_D_POINT} distinct D' to fit the transition",
                          sorted(df["D"].unique().tolist()))
    seeds = df["seed"].to_numpy()
    members = [np.flatnonzero(seeds == s) for s in np.unique(seeds)]
    if n_boot > 0 and len(members) < 2:
        raise ConfigError("seed", "need at least two seeds for the bootstrap interval (or n_boot = 0)",
                          len(members))
    x, y = np.log(df["D"].to_numpy()), df["final_test_acc"].to_numpy()
    popt = fit_transition(x, y, chance, starts=None if start is None else np.array([start.params]))
    if popt is None:
        raise RunError(f"the transition fit did not converge (weight decay {weight_decay})")
    reps = []
    for _ in range(n_boot):
        idx = np.concatenate([members[i] for i in rng.integers(0, len(members), len(members))])
        if np.unique(x[idx]).size < _MIN_DISTINCT_D:
            continue
        p = fit_transition(x[idx], y[idx], chance, starts=popt[None, :])
        if p is not None:
            reps.append(p[2])
    method = "bootstrap percentile (seeds resampled)"
    D_crit = (percentile_interval(popt[2], np.array(reps), level, method).map(np.exp) if reps
              else interval(math.exp(popt[2]), np.nan, np.nan, level, method))
    lower_b, upper_b = _bounds(x, chance)
    tol = 1e-3 * float(x.max() - x.min())
    at_bound = bool(popt[2] <= lower_b[2] + tol or popt[2] >= upper_b[2] - tol)
    return DcritEstimate(D_crit, TransitionFit(*(float(v) for v in popt)), weight_decay, float(chance),
                         int(len(df)), len(members), float(df["D"].min()), float(df["D"].max()),
                         at_bound, len(reps), int(n_boot - len(reps)))


def _check(level: float, n_boot: int, seed: int) -> None:
    level_of("level", level)
    integer_at_least("n_boot", n_boot, 0)
    integer_at_least("seed", seed, 0)


def estimate_dcrit(rows: object, *, chance: float, level: float = CONFIDENCE_LEVEL, n_boot: int = N_BOOT,
                   seed: int = 0, start: TransitionFit | None = None) -> DcritEstimate:
    """D_crit of all ``rows`` (weight decays pooled if several), with its seed-bootstrap interval.

    ``start``: refit from this fit instead of the six starts, as a bootstrap draw is refitted
    from the point fit (P3 refits each unit from the pooled fit of its table).

    Raises:
        ConfigError: bad rows or fewer than three distinct D'; RunError: the fit did not converge.
    """
    _check(level, n_boot, seed)
    df = _validated(rows, chance)
    wds = df["weight_decay"].unique()
    return _estimate(df, chance, level, n_boot, np.random.default_rng(seed),
                     float(wds[0]) if wds.size == 1 else None, start)


def dcrit_by_weight_decay(rows: object, *, chance: float, level: float = CONFIDENCE_LEVEL,
                          n_boot: int = N_BOOT, seed: int = 0) -> tuple[DcritEstimate, ...]:
    """One :func:`estimate_dcrit` per weight decay, sorted by weight decay (independent draws)."""
    _check(level, n_boot, seed)
    df = _validated(rows, chance)
    wds = np.sort(df["weight_decay"].unique())
    rngs = [np.random.default_rng(s) for s in np.random.SeedSequence(seed).spawn(wds.size)]
    return tuple(_estimate(df[df["weight_decay"] == wd].reset_index(drop=True), chance, level, n_boot,
                           rng, float(wd)) for wd, rng in zip(wds, rngs))


# ---------------------------------------------------------------------------------------------
# What P2 and P3 both ask of a table
# ---------------------------------------------------------------------------------------------


def _base_problems(table: Any, min_share: float) -> tuple[list[str], dict[str, Any]]:
    """The optional ``base_trig_share`` column: every base network must be G-only."""
    if not isinstance(table, pd.DataFrame) or "base_trig_share" not in table.columns:
        return [], {}
    share = pd.to_numeric(table.groupby("seed")["base_trig_share"].first(), errors="coerce")
    low = share[~(share > min_share)]
    problems = ([f"base networks of seeds {', '.join(map(str, low.index))} are not G-only (trig share "
                 f"{', '.join(f'{v:.3g}' for v in low)} <= {min_share:g}): replace them"] if len(low) else [])
    return problems, {"base_trig_share_min": float(share.min())}


def _run_problems(table: Any, n_all: int, n_dropped: int, g_only_share: float,
                  max_excluded_fraction: float) -> tuple[list[str], dict[str, Any]]:
    """G-only base networks, and few unconverged runs."""
    problems, numbers = _base_problems(table, g_only_share)
    if n_dropped > max_excluded_fraction * n_all:
        problems.append(f"{n_dropped} of {n_all} runs unconverged (at most "
                        f"{max_excluded_fraction:.0%} may be excluded: run them longer)")
    return problems, numbers


def converged_rows(table: Any, chance: float) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(converged rows, excluded rows) of a P2/P3 table, validated."""
    if not 0.0 <= chance < 1.0:
        raise ConfigError("chance", "must lie in [0, 1)", chance)
    df = require_columns(table, P2_COLUMNS, numeric=("D", "weight_decay", "final_test_acc"))
    _validated(df, chance)
    ok = df["converged"].map(lambda v: bool(v) and str(v).lower() not in ("false", "0", "no"))
    df["seed"] = df["seed"].astype(str)
    return df[ok].reset_index(drop=True), df[~ok].reset_index(drop=True)


# ---------------------------------------------------------------------------------------------
# P2
# ---------------------------------------------------------------------------------------------


def _bic(rss: float, n: int, k: int) -> float:
    # Gaussian errors with the noise variance profiled out (k counts it); floor avoids log 0
    return n * math.log(max(rss, 1e-12) / n) + k * math.log(n)


def p2(table: Any, chance: float, *, band: tuple[float, float] = (0.1, 0.9), min_in_band: int = 3,
       min_delta_bic: float = 10.0, min_jump: float = 0.5, max_width_ratio: float = 4.0,
       max_excluded_fraction: float = MAX_EXCLUDED_FRACTION,
       level: float = CONFIDENCE_LEVEL, n_boot: int = N_BOOT, seed: int = 0,
       g_only_share: float = G_ONLY_TRIG_SHARE, estimate: DcritEstimate | None = None,
       control_acc: float | None = None, min_control_acc: float = 0.99) -> Verdict:
    """P2: a phase transition in final test accuracy against log D', not a ramp (module doc).

    ``control_acc``: the lowest final accuracy of the control, the bases continued on their own
    full training set for the same steps; below ``min_control_acc`` accuracy fell without any
    change of data, so a fall at small D' is not evidence of ungrokking and P2 is undecided.

    ``estimate``: :func:`estimate_dcrit` of this table's converged rows with these ``level``,
    ``n_boot`` and ``seed``, when the caller already has it (it is not computed twice).
    """
    rule = {"band": list(band), "min_in_band": int(min_in_band), "criterion": "BIC",
            "min_delta_bic": float(min_delta_bic), "min_jump": float(min_jump),
            "max_excluded_fraction": float(max_excluded_fraction), "level": level_of("level", level),
            "n_boot": int(n_boot), "seed": int(seed), "g_only_share": float(g_only_share),
            "max_width_ratio": float(max_width_ratio), "min_control_acc": float(min_control_acc),
            "models": "logistic in log D' (4 parameters + noise) against a line in log D' (2 + noise)",
            "sharp": "the band's D90/D10 at most max_width_ratio: a bounded null, which a ramp across the grid "
                     "fails however well a sigmoid fits it",
            "design": "too few D' in the band, or a band leaving the grid, is undecided (refine the grid); a "
                      "band leaving the grid fails sharpness only if its part inside the grid is too wide"}
    if not 0 < band[0] < band[1] < 1:
        raise ConfigError("band", "must satisfy 0 < low < high < 1", band)
    df, dropped = converged_rows(table, chance)
    n_all = len(df) + len(dropped)
    # bases that are not G-only, or runs left unconverged, are the design's failing: undecided
    undecided, base_numbers = _run_problems(table, n_all, len(dropped), g_only_share, max_excluded_fraction)
    problems: list[str] = []
    facts: list[str] = []
    numbers: dict[str, Any] = {"n_rows": n_all, "n_excluded": len(dropped),
                               "excluded": dropped[["D", "seed", "weight_decay"]].to_dict("records"), **base_numbers}
    if control_acc is not None:
        numbers["control_min_acc"] = float(control_acc)
        if not control_acc >= min_control_acc:
            undecided.append(f"the control (bases continued on their full training set) ended at accuracy "
                             f"{control_acc:.3g} < {min_control_acc:g}: accuracy falls without any change of data")
    if df["D"].nunique() < _MIN_DISTINCT_D or len(df) < 6:
        undecided.append(f"{df['D'].nunique()} distinct converged D' (needs {_MIN_DISTINCT_D} to compare the models)")
        return verdict("P2", problems, facts, numbers, rule, undecided=undecided)
    try:
        # one seed has no seed-bootstrap interval: the point estimate alone
        est = estimate or estimate_dcrit(df, chance=chance, level=level, seed=seed,
                                         n_boot=n_boot if df["seed"].nunique() >= 2 else 0)
    except RunError:
        undecided.append("the logistic fit did not converge")
        return verdict("P2", problems, facts, numbers, rule, undecided=undecided)
    lower, upper, log_mid, width = est.curve.params
    x, y = np.log(df["D"].to_numpy()), df["final_test_acc"].to_numpy()
    n = y.size
    rss_log = float(np.sum((y - transition_accuracy(x, *est.curve.params)) ** 2))
    line = np.polyfit(x, y, 1)
    rss_lin = float(np.sum((y - np.polyval(line, x)) ** 2))
    delta_bic = _bic(rss_lin, n, 3) - _bic(rss_log, n, 5)
    q = np.log(np.array(band) / (1 - np.array(band)))  # logit of the band ends
    D10, D90 = (float(np.exp(log_mid + width * v)) for v in q)
    grid = np.unique(df["D"].to_numpy())
    in_band = grid[(grid >= D10) & (grid <= D90)]
    inside = D10 >= grid.min() and D90 <= grid.max()
    jump = upper - lower
    numbers.update({"D_crit": est.D_crit, "lower": lower, "upper": upper, "jump": jump,
                    "width_log": width, "band_D": [D10, D90], "width_ratio": D90 / D10,
                    "D_in_band": in_band.tolist(), "n_in_band": int(in_band.size),
                    "delta_bic": delta_bic, "rss_logistic": rss_log, "rss_line": rss_lin,
                    "n_fitted": int(n), "grid": grid.tolist()})
    facts.append(f"D_crit {est.D_crit.value:.4g}; {band[0]:.0%}-{band[1]:.0%} band D' "
                 f"{D10:.4g}-{D90:.4g} (x{D90 / D10:.3g}) holds {in_band.size} grid sizes; "
                 f"BIC prefers the logistic over the ramp by {delta_bic:.3g}; jump {jump:.3g}")
    criteria = [criterion("delta BIC above minimum", delta_bic, min_delta_bic, math.nan, "above"),
                criterion("log D90/D10 below maximum", math.log(D90 / D10), math.log(max_width_ratio), math.nan,
                          "below"),
                criterion("jump above minimum", jump, min_jump, math.nan, "above")]
    if delta_bic < min_delta_bic:
        problems.append(f"BIC difference {delta_bic:.3g} < {min_delta_bic:g}: a ramp explains the data")
    # the band's width is measured only where the grid has D'; beyond the grid it is the fitted
    # curve's extrapolation, so a band leaving the grid fails only if its part inside is too wide
    seen = min(D90, grid.max()) / max(D10, grid.min())
    if D90 / D10 > max_width_ratio and (inside or seen > max_width_ratio):
        problems.append(f"the {band[0]:.0%}-{band[1]:.0%} band spans x{D90 / D10:.3g} of D' (a transition spans at "
                        f"most x{max_width_ratio:g}" + ("" if inside else f"; inside the grid alone x{seen:.3g}") + ")")
    if jump < min_jump:
        problems.append(f"jump {jump:.3g} < {min_jump:g}")
    if in_band.size < min_in_band:
        undecided.append(f"{in_band.size} D' inside the band (needs {min_in_band}): refine the grid")
    if not inside:
        undecided.append(f"the band leaves the grid [{grid.min():g}, {grid.max():g}]: widen the grid")
    return verdict("P2", problems, facts, numbers, rule, undecided=undecided, criteria=criteria)


# ---------------------------------------------------------------------------------------------
# P3
# ---------------------------------------------------------------------------------------------


def pooled_fit(rows: pd.DataFrame, chance: float) -> TransitionFit | None:
    """The transition fitted to all ``rows`` (six starts), or None where it cannot be."""
    if rows["D"].nunique() < _MIN_DISTINCT_D_POINT:
        return None
    try:
        return estimate_dcrit(rows, chance=chance, n_boot=0).curve
    except RunError:
        return None


def unit_log_dcrit(unit: pd.DataFrame, chance: float, start: TransitionFit | None = None) -> float:
    """``log D_crit`` of one (weight decay, seed) unit: :func:`estimate_dcrit`'s point estimate
    (refitted from ``start``, the pooled fit of the unit's table, when given), nan (censored)
    when the fit fails or its midpoint is at its bound or not inside the unit's grid."""
    if unit["D"].nunique() < _MIN_DISTINCT_D:
        return np.nan
    try:
        est = estimate_dcrit(unit, chance=chance, n_boot=0, start=start)
    except RunError:
        return np.nan
    inside = est.D_min <= est.D_crit.value <= est.D_max and not est.at_bound
    return float(est.curve.log_midpoint) if inside else np.nan


def p3(table: Any, chance: float, *, min_weight_decays: int = 3, min_wd_ratio: float = 4.0,
       min_seeds: int = 2, tolerance: float = 0.1, plateau_tolerance: float = 0.1,
       equivalence_level: float = EQUIVALENCE_LEVEL, level: float = CONFIDENCE_LEVEL,
       max_excluded_fraction: float = MAX_EXCLUDED_FRACTION,
       g_only_share: float = G_ONLY_TRIG_SHARE, estimate: DcritEstimate | None = None) -> Verdict:
    """P3: D_crit does not depend on weight decay, by an equivalence test (module doc): holds
    when shown independent, does not hold when shown dependent, undecided when neither.

    ``estimate``: :func:`estimate_dcrit` of this table's converged rows, when the caller already
    has it; its fit is where every unit's refit starts (it is not fitted twice).
    """
    rule = {"min_weight_decays": int(min_weight_decays), "min_wd_ratio": float(min_wd_ratio),
            "min_seeds": int(min_seeds), "tolerance": float(tolerance),
            "equivalence_level": level_of("equivalence_level", equivalence_level),
            "level": level_of("level", level),
            "max_excluded_fraction": float(max_excluded_fraction),
            "g_only_share": float(g_only_share),
            "plateau_tolerance": float(plateau_tolerance),
            "dependent": "the slope's t interval at level wholly outside +-tolerance; an interval that straddles "
                         "the tolerance is undecided",
            "D_crit": "the transition's logistic midpoint per (weight decay, seed), censored outside its grid",
            "slope": "OLS of log D_crit on log weight decay with one intercept per seed, t interval",
            "plateaus": "mean final test accuracy at the smallest and at the largest D' per weight decay; "
                        "their range over weight decays at most plateau_tolerance (an incompletely ungrokked "
                        "weight decay sits higher at the smallest D')"}
    df, dropped = converged_rows(table, chance)
    n_all = len(df) + len(dropped)
    if (df["weight_decay"] <= 0).any():
        raise ConfigError("weight_decay", "must be > 0 (the slope is against log weight decay)",
                          float(df["weight_decay"][df["weight_decay"] <= 0].iloc[0]))
    # bases that are not G-only, or runs left unconverged, are the design's failing: undecided
    undecided, base_numbers = _run_problems(table, n_all, len(dropped), g_only_share, max_excluded_fraction)
    problems: list[str] = []
    criteria: list[dict] = []
    facts: list[str] = []
    numbers: dict[str, Any] = {"n_rows": n_all, "n_excluded": len(dropped), **base_numbers}
    # each unit is refitted from the pooled fit, as a bootstrap draw is: the same minimum as six
    # fresh starts (within 1e-6 in log D on 990 simulated units) at a sixth of the cost
    pooled = estimate.curve if estimate is not None else pooled_fit(df, chance)
    units = [{"weight_decay": float(wd), "seed": s, "log_D_crit": unit_log_dcrit(g, chance, pooled)}
             for (wd, s), g in df.groupby(["weight_decay", "seed"], sort=True)]
    u = pd.DataFrame(units, columns=["weight_decay", "seed", "log_D_crit"])
    censored = u[~np.isfinite(u["log_D_crit"])]
    u = u[np.isfinite(u["log_D_crit"])]
    numbers["n_censored"] = int(len(censored))
    per_wd = u.groupby("weight_decay")["log_D_crit"].agg(["mean", "size"])
    numbers["D_crit_by_wd"] = [{"weight_decay": float(wd), "D_crit": float(np.exp(r["mean"])),
                                "n_seeds": int(r["size"])} for wd, r in per_wd.iterrows()]
    wds = per_wd.index[per_wd["size"] >= min_seeds].to_numpy(dtype=float)
    ratio = float(wds.max() / wds.min()) if wds.size else 0.0
    numbers["wd_ratio"] = ratio
    if wds.size < min_weight_decays or ratio < min_wd_ratio:
        undecided.append(f"{wds.size} weight decays with {min_seeds}+ uncensored seeds spanning x{ratio:.3g} "
                        f"(needs {min_weight_decays} spanning x{min_wd_ratio:g})")
    u = u[u["weight_decay"].isin(wds)]
    method = "t, one intercept per seed"
    slope = wide = interval(np.nan, -np.inf, np.inf, level, method)
    if wds.size >= 2:
        seeds = pd.factorize(u["seed"].astype(str))[0]
        X = np.column_stack([np.log(u["weight_decay"].to_numpy()), np.eye(seeds.max() + 1)[seeds]])
        yv = u["log_D_crit"].to_numpy()
        beta, _, rank, _ = np.linalg.lstsq(X, yv, rcond=None)
        dof = yv.size - rank
        resid = yv - X @ beta
        if dof >= 1 and rank == X.shape[1]:
            cov = float(resid @ resid) / dof * np.linalg.inv(X.T @ X)
            se = math.sqrt(cov[0, 0])
            slope = t_interval(float(beta[0]), se, dof, equivalence_level, method)
            wide = t_interval(float(beta[0]), se, dof, level, method)
            criteria.append(interval_inside("|slope| inside +-tolerance", slope, tolerance, se))
        else:
            slope = interval(float(beta[0]), -np.inf, np.inf, equivalence_level, method)
    numbers["slope"] = slope
    numbers["slope_at_level"] = wide
    spread = float(np.exp(per_wd["mean"].max() - per_wd["mean"].min())) if len(per_wd) else np.nan
    numbers["spread_ratio"] = spread
    equivalent = slope.within(-tolerance, tolerance)
    facts.append(f"slope of log D_crit vs log wd {fmt(slope)} "
                 + (f"inside +-{tolerance:g}" if equivalent else f"not inside +-{tolerance:g}")
                 + f"; D_crit max/min over weight decays {spread:.3g}")
    if wide.lo > tolerance or wide.hi < -tolerance:
        problems.append(f"D_crit moves with weight decay: the slope's {level:.0%} interval {fmt(wide)} lies outside "
                        f"+-{tolerance:g}")
    elif not equivalent:
        undecided.append(f"the slope interval straddles +-{tolerance:g}: independence of weight decay neither shown "
                         "nor refuted (more seeds or weight decays would narrow it)")
    plateaus = _plateaus(df)
    numbers["plateaus"] = plateaus
    if plateaus:
        worst = max(("low", "high"), key=lambda k: plateaus[f"{k}_range"])
        criteria.append(criterion("plateau range below tolerance", plateaus[f"{worst}_range"], plateau_tolerance,
                                  math.nan, "below"))
        facts.append(f"final accuracy at the smallest D' {plateaus['low_range']:.3g} apart over weight decays, at the "
                     f"largest {plateaus['high_range']:.3g}")
        if plateaus[f"{worst}_range"] > plateau_tolerance:
            problems.append(f"the final-accuracy plateau at the {'smallest' if worst == 'low' else 'largest'} D' "
                            f"differs by {plateaus[f'{worst}_range']:.3g} between weight decays (at most "
                            f"{plateau_tolerance:g})")
    return verdict("P3", problems, facts, numbers, rule, undecided=undecided, criteria=criteria)


def _plateaus(df: pd.DataFrame) -> dict[str, Any]:
    """Mean final test accuracy at the smallest and the largest D' that every weight decay
    reached, per weight decay, and the range of each over weight decays ({} if fewer than two)."""
    common = sorted(set.intersection(*[set(g["D"]) for _, g in df.groupby("weight_decay")])) if len(df) else []
    if len(common) < 2 or df["weight_decay"].nunique() < 2:
        return {}
    at = {k: df[df["D"] == d].groupby("weight_decay")["final_test_acc"].mean()
          for k, d in (("low", common[0]), ("high", common[-1]))}
    return {"D_low": float(common[0]), "D_high": float(common[-1]),
            **{f"{k}_by_wd": {f"{w:g}": float(v) for w, v in a.items()} for k, a in at.items()},
            **{f"{k}_range": float(a.max() - a.min()) for k, a in at.items()}}
