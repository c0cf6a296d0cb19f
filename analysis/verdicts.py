"""The decision rules of the paper's predictions P1-P4 and Figure 10a, as pure functions.

Each function takes a pandas DataFrame with the columns listed below and returns a
:class:`Verdict`: whether the prediction holds, why, the numbers the rule used and the rule's
own parameters. Every parameter of a rule is a keyword argument with a default that was fixed
before any run was looked at; the defaults are the published rules, and ``rule`` in the result
records what was applied. Intervals in ``numbers`` are ``{"value", "lo", "hi"}`` dicts; the
confidence level sits beside them in ``rule``.

A rule is only worth stating if data that contradict the prediction make it say no. For every
rule :mod:`circeff.analysis.controls` simulates tables of the run's own design under a named
alternative (and under the paper's hypothesis) and measures how often the rule accepts the
alternative (false accept) and rejects the hypothesis (false reject).

P1 (:func:`p1`), columns ``circuit`` ('G' or 'M'), ``D``, ``seed``, ``alpha``, ``logit``,
``param_norm``: one row per settled network and rung of the L2 ladder.
    Per circuit, ``log logit = kappa log param_norm + b`` with one intercept per (D, seed)
    stripe (ordinary least squares; kappa comes from the ladder inside a network), so each
    stripe has an efficiency ``log P = -b / kappa``. The trend is the OLS slope of the stripes'
    ``log P`` against ``log D``, with a t interval on ``stripes - 2`` degrees of freedom (the
    stripes are the independent units; the shared kappa's error shifts every stripe alike and
    barely moves a slope). M rises: M's slope interval at ``level`` lies above 0. G is flat by
    an equivalence test (two one-sided tests at 5% each): G's slope interval at
    ``equivalence_level`` (0.90) lies inside ``+-delta`` with ``delta = delta_fraction x`` the
    lower end of M's interval (a G trend less than half as steep as the least M could be).
    G's sizes must span ``min_log10_range_G`` (half a decade) and each circuit needs
    ``min_D`` distinct sizes; both kappa intervals must lie above 0.

P2 (:func:`p2`), columns ``D`` (the reduced size D'), ``seed``, ``weight_decay``,
``final_test_acc``, ``converged`` (and optionally ``base_trig_share``, the trig share of the
seed's base network): one row per ungrokked network, weight decays pooled.
    Every base network must be G-only (``base_trig_share`` above ``min_base_trig_share``, 0.95,
    when the column is given). Only converged rows are fitted; more than ``max_excluded_fraction`` unconverged rows is a
    failure (run longer rather than drop). Fitted by least squares: a logistic in ``log D'``
    between plateaus bounded to ``[chance, 1]`` and a straight line in ``log D'`` (the ramp).
    Holds when: the logistic is preferred by the Bayesian information criterion (Gaussian
    errors, the noise variance counted as a parameter) by at least ``min_delta_bic`` (10,
    "very strong" on the Kass-Raftery scale); at least ``min_in_band`` distinct D' lie inside
    the fitted 10-90% band of the rise, and the band lies inside the grid; the fitted jump
    ``upper - lower`` is at least ``min_jump``. D_crit is the logistic's midpoint, with a
    bootstrap interval over seeds (``n_boot``; the interval is reported, not used to decide).

P3 (:func:`p3`), the same columns as P2.
    Per (weight decay, seed), D_crit is where the isotonic (non-decreasing) regression of the
    converged runs' accuracy on ``log D'`` crosses halfway between chance and 1 (linear
    interpolation in ``log D'``); a unit that never crosses inside the grid is censored and
    dropped (counted). ``log D_crit = s log wd + c_seed`` by OLS with one intercept per seed
    (the seeds are the same base networks at every weight decay). Holds, by equivalence, when
    at least ``min_weight_decays`` weight decays spanning ``min_wd_ratio`` (4x) each have
    ``min_seeds`` crossing seeds and the slope's t interval at ``equivalence_level`` lies
    inside ``+-tolerance`` (0.1: a tenfold weight decay moves D_crit by at most 26%).

P4 (:func:`p4`), columns ``D``, ``seed``, ``step``, ``train_acc``, ``test_acc``: one row per
evaluation; a run is a (D, seed).
    The tail is the last ``tail_fraction`` of a run's step span. A run is semi-grokked when it
    is a converged plateau at middling accuracy: mean tail train accuracy at least
    ``min_train_acc``, the Theil-Sen slope of the tail test accuracy times the run's step span
    (the change one more run-length would bring) within ``+-max_drift``, and the mean tail test
    accuracy, as a fraction of the way from chance to 1, inside ``band``. A run that is still
    rising (0.05 to 0.50, linearly) has a drift of 0.45 and is not semi-grokked. The defaults
    (the last third, 0.15) put a flat plateau with evaluation noise 0.02 at 61 evaluations
    more than three standard errors of the drift (0.046) inside the tolerance. Transient
    plateaus (a window of ``plateau_min_fraction`` of the evaluations whose chance-scaled
    accuracy has median in ``band`` and 10-90% spread at most ``plateau_spread``, in a run that
    ends at least ``rise_min`` higher) are counted separately. The count of semi-grokked runs
    gets a Clopper-Pearson interval at ``level``; P4 holds when its lower end lies above
    ``null_fraction`` (0: at least one run is a converged middling plateau).

Figure 10a (:func:`fig10a`), columns ``D``, ``seed``, ``ratio`` (G:M correct-logit ratio; inf
allowed, nan rows dropped and counted): one row per network.
    Spearman's rank correlation of ``ratio`` with ``D`` and its Fisher-z interval at ``level``
    (standard error ``sqrt(1.06 / (n - 3))``, Fieller, Hartley and Pearson 1957). Holds when
    every D has at least ``min_seeds_per_D`` networks, there are ``min_D`` sizes, and the
    interval lies above 0.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats
from scipy.optimize import OptimizeWarning, curve_fit, isotonic_regression
from scipy.special import expit

from circeff.analysis.stats import require_columns, to_plain
from circeff.errors import ConfigError

__all__ = [
    "FIG10A_COLUMNS",
    "P1_COLUMNS",
    "P2_COLUMNS",
    "P4_COLUMNS",
    "Verdict",
    "classify_run",
    "fig10a",
    "logistic_accuracy",
    "p1",
    "p2",
    "p3",
    "p4",
    "p4_sizes",
]

P1_COLUMNS = ("circuit", "D", "seed", "alpha", "logit", "param_norm")
P2_COLUMNS = ("D", "seed", "weight_decay", "final_test_acc", "converged")
P4_COLUMNS = ("D", "seed", "step", "train_acc", "test_acc")
FIG10A_COLUMNS = ("D", "seed", "ratio")


@dataclass(frozen=True)
class Verdict:
    """One prediction's decision: ``holds``, the ``reason`` in words, the ``numbers`` the rule
    used (JSON-safe; intervals as ``{value, lo, hi}``) and the ``rule``'s parameters."""

    key: str            # 'P1','P2','P3','P4','fig10a','allocation'
    holds: bool
    reason: str
    numbers: dict
    rule: dict

    def to_dict(self) -> dict:
        """Plain JSON-ready data (non-finite numbers become None)."""
        return to_plain({"key": self.key, "holds": bool(self.holds), "reason": self.reason,
                         "numbers": self.numbers, "rule": self.rule})


def _iv(value: float, lo: float, hi: float) -> dict[str, float]:
    return {"value": float(value), "lo": float(lo), "hi": float(hi)}


def _fmt(iv: dict[str, float]) -> str:
    return f"{iv['value']:.3g} [{iv['lo']:.3g}, {iv['hi']:.3g}]"


def _t_interval(value: float, se: float, dof: int, level: float) -> dict[str, float]:
    if dof < 1 or not np.isfinite(se):
        return _iv(value, -np.inf, np.inf)
    half = float(stats.t.ppf(0.5 + level / 2, dof)) * se
    return _iv(value, value - half, value + half)


def _level(name: str, value: float) -> float:
    if not 0.0 < value < 1.0:
        raise ConfigError(name, "must lie strictly between 0 and 1", value)
    return float(value)


def _verdict(key: str, problems: list[str], facts: list[str], numbers: dict, rule: dict) -> Verdict:
    reason = "; ".join(facts + problems)
    return Verdict(key, not problems, reason, to_plain(numbers), to_plain(rule))


def _base_problems(table: Any, min_share: float) -> tuple[list[str], dict[str, Any]]:
    """The optional ``base_trig_share`` column: every base network must be G-only."""
    if not isinstance(table, pd.DataFrame) or "base_trig_share" not in table.columns:
        return [], {}
    share = pd.to_numeric(table.groupby("seed")["base_trig_share"].first(), errors="coerce")
    low = share[~(share > min_share)]
    problems = ([f"base networks of seeds {', '.join(map(str, low.index))} are not G-only (trig share "
                 f"{', '.join(f'{v:.3g}' for v in low)} <= {min_share:g}): replace them"] if len(low) else [])
    return problems, {"base_trig_share_min": float(share.min())}


def _run_problems(table: Any, n_all: int, n_dropped: int, min_base_trig_share: float,
                  max_excluded_fraction: float) -> tuple[list[str], dict[str, Any]]:
    """What P2 and P3 both ask of the runs: G-only base networks, and few unconverged runs."""
    problems, numbers = _base_problems(table, min_base_trig_share)
    if n_dropped > max_excluded_fraction * n_all:
        problems.append(f"{n_dropped} of {n_all} runs unconverged (at most "
                        f"{max_excluded_fraction:.0%} may be excluded: run them longer)")
    return problems, numbers


def _converged_rows(table: Any, chance: float) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(converged rows, excluded rows) of a P2/P3 table, validated."""
    if not 0.0 <= chance < 1.0:
        raise ConfigError("chance", "must lie in [0, 1)", chance)
    df = require_columns(table, P2_COLUMNS, numeric=("D", "weight_decay", "final_test_acc"))
    if (df["D"] <= 0).any():
        raise ConfigError("D", "must be > 0", float(df["D"][df["D"] <= 0].iloc[0]))
    acc = df["final_test_acc"]
    if ((acc < 0) | (acc > 1)).any():
        raise ConfigError("final_test_acc", "must lie in [0, 1]", float(acc[(acc < 0) | (acc > 1)].iloc[0]))
    ok = df["converged"].map(lambda v: bool(v) and str(v).lower() not in ("false", "0", "no"))
    df["seed"] = df["seed"].astype(str)
    return df[ok].reset_index(drop=True), df[~ok].reset_index(drop=True)


# ---------------------------------------------------------------------------------------------
# P1
# ---------------------------------------------------------------------------------------------


def _efficiency_fit(df: pd.DataFrame, level: float) -> dict[str, Any]:
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
    D_of = np.array([df["D"].to_numpy()[stripe == i][0] for i in range(n_stripes)])
    return {"kappa": _t_interval(kappa, se, dof, level), "log_P": mean_x - mean_y / kappa,
            "D": D_of, "n_stripes": n_stripes, "n_rows": int(x.size),
            "rung_sd": math.sqrt(float(resid @ resid) / dof) if dof >= 1 else np.nan}


def _slope(log_D: np.ndarray, log_P: np.ndarray, level: float) -> tuple[dict[str, float], float, float]:
    """OLS slope of ``log_P`` on ``log_D`` with a t interval; (interval, intercept, residual sd)."""
    xc = log_D - log_D.mean()
    sxx = float(xc @ xc)
    if sxx == 0:
        return _iv(np.nan, -np.inf, np.inf), np.nan, np.nan
    s = float(xc @ (log_P - log_P.mean()) / sxx)
    a = float(log_P.mean() - s * log_D.mean())
    dof = log_D.size - 2
    resid = log_P - a - s * log_D
    sd = math.sqrt(float(resid @ resid) / dof) if dof >= 1 else np.nan
    return _t_interval(s, sd / math.sqrt(sxx), dof, level), a, sd


def p1(table: Any, *, level: float = 0.95, equivalence_level: float = 0.90,
       delta_fraction: float = 0.5, min_log10_range_G: float = 0.5, min_D: int = 3) -> Verdict:
    """P1: M's efficiency P(D) rises with D, G's is flat (equivalence), see the module doc."""
    rule = {"level": _level("level", level), "equivalence_level": _level("equivalence_level", equivalence_level),
            "delta_fraction": float(delta_fraction), "min_log10_range_G": float(min_log10_range_G),
            "min_D": int(min_D),
            "slope": "OLS of stripe log P on log D, t interval (stripes - 2 dof)",
            "g_flat": "G slope interval at equivalence_level inside +-delta, "
                      "delta = delta_fraction x lower end of M's slope interval"}
    df = require_columns(table, P1_COLUMNS, numeric=("D", "alpha", "logit", "param_norm"))
    bad = (df["logit"] <= 0) | (df["param_norm"] <= 0) | (df["D"] <= 0)
    excluded = int(bad.sum())
    df = df[~bad].reset_index(drop=True)
    df["circuit"] = df["circuit"].astype(str)
    problems, numbers = [], {"excluded_rows": excluded}
    fits: dict[str, dict[str, Any]] = {}
    for c in ("M", "G"):
        sub = df[df["circuit"] == c]
        n_D = int(sub["D"].nunique())
        numbers[f"D_{c}"] = sorted(float(d) for d in sub["D"].unique())
        if n_D < min_D:
            problems.append(f"{c} has {n_D} distinct D (needs {min_D})")
            continue
        fit = _efficiency_fit(sub, level)
        slope_level = level if c == "M" else equivalence_level
        slope, _, sd = _slope(np.log(fit["D"]), fit["log_P"], slope_level)
        fit["slope"] = slope
        fits[c] = fit
        numbers[f"kappa_{c}"] = fit["kappa"]
        numbers[f"slope_{c}"] = slope
        numbers[f"stripes_{c}"] = fit["n_stripes"]
        numbers[f"stripe_sd_{c}"] = sd
        if not fit["kappa"]["lo"] > 0:
            problems.append(f"kappa interval of {c} {_fmt(fit['kappa'])} not above 0: the logit does "
                            "not grow with the norm")
    g_range = (math.log10(max(numbers["D_G"]) / min(numbers["D_G"])) if numbers["D_G"] else 0.0)
    numbers["log10_range_G"] = g_range
    if g_range < min_log10_range_G:
        problems.append(f"G's D range covers {g_range:.2f} decades (needs {min_log10_range_G:g}): "
                        "flatness cannot be tested")
    facts = []
    delta = np.nan
    if "M" in fits:
        m = fits["M"]["slope"]
        rises = m["lo"] > 0
        facts.append(f"M slope {_fmt(m)} " + ("above 0" if rises else "not above 0"))
        if rises:
            delta = delta_fraction * m["lo"]
        else:
            problems.append("M's efficiency does not rise with D")
    numbers["delta"] = delta
    if "G" in fits:
        g = fits["G"]["slope"]
        flat = bool(np.isfinite(delta) and -delta <= g["lo"] and g["hi"] <= delta)
        facts.append(f"G slope {_fmt(g)} " + (f"inside +-{delta:.3g}" if flat else
                                             f"not inside +-{delta:.3g}"))
        if not flat:
            problems.append("G not shown flat")
    return _verdict("P1", problems, facts, numbers, rule)


# ---------------------------------------------------------------------------------------------
# P2
# ---------------------------------------------------------------------------------------------


def logistic_accuracy(log_D: np.ndarray, lower: float, upper: float, log_mid: float,
                      width: float) -> np.ndarray:
    """The transition model: ``lower + (upper - lower) sigmoid((log D - log_mid) / width)``."""
    return lower + (upper - lower) * expit((np.asarray(log_D) - log_mid) / width)


def _fit_logistic(x: np.ndarray, y: np.ndarray, chance: float,
                  starts: np.ndarray | None = None) -> np.ndarray | None:
    """Least-squares logistic in ``x = log D`` (best of a few starts); None if no fit converges."""
    lo, hi = float(x.min()), float(x.max())
    span = hi - lo
    lower_b = [chance, chance, lo - span, 0.01 * span]
    upper_b = [1.0, 1.0, hi + span, 2.0 * span]
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
            warnings.simplefilter("ignore", OptimizeWarning)
            try:
                popt, _ = curve_fit(logistic_accuracy, x, y, p0=p0, bounds=(lower_b, upper_b),
                                    method="trf", max_nfev=2000)
            except (RuntimeError, ValueError):
                continue
        rss = float(np.sum((y - logistic_accuracy(x, *popt)) ** 2))
        if rss < best_rss:
            best, best_rss = popt, rss
    return best


def _bic(rss: float, n: int, k: int) -> float:
    # Gaussian errors with the noise variance profiled out (k counts it); floor avoids log 0
    return n * math.log(max(rss, 1e-12) / n) + k * math.log(n)


def p2(table: Any, chance: float, *, band: tuple[float, float] = (0.1, 0.9), min_in_band: int = 3,
       min_delta_bic: float = 10.0, min_jump: float = 0.5, max_excluded_fraction: float = 0.2,
       level: float = 0.95, n_boot: int = 200, seed: int = 0, min_base_trig_share: float = 0.95) -> Verdict:
    """P2: a phase transition in final test accuracy against log D', not a ramp (module doc)."""
    rule = {"band": list(band), "min_in_band": int(min_in_band), "criterion": "BIC",
            "min_delta_bic": float(min_delta_bic), "min_jump": float(min_jump),
            "max_excluded_fraction": float(max_excluded_fraction), "level": _level("level", level),
            "n_boot": int(n_boot), "seed": int(seed), "min_base_trig_share": float(min_base_trig_share),
            "models": "logistic in log D' (4 parameters + noise) against a line in log D' (2 + noise)"}
    if not 0 < band[0] < band[1] < 1:
        raise ConfigError("band", "must satisfy 0 < low < high < 1", band)
    df, dropped = _converged_rows(table, chance)
    n_all = len(df) + len(dropped)
    problems, base_numbers = _run_problems(table, n_all, len(dropped), min_base_trig_share, max_excluded_fraction)
    facts: list[str] = []
    numbers: dict[str, Any] = {"n_rows": n_all, "n_excluded": len(dropped),
                               "excluded": dropped[["D", "seed", "weight_decay"]].to_dict("records"), **base_numbers}
    if df["D"].nunique() < 4 or len(df) < 6:
        problems.append(f"{df['D'].nunique()} distinct converged D' (needs 4 to compare the models)")
        return _verdict("P2", problems, facts, numbers, rule)
    x, y = np.log(df["D"].to_numpy()), df["final_test_acc"].to_numpy()
    popt = _fit_logistic(x, y, chance)
    if popt is None:
        problems.append("the logistic fit did not converge")
        return _verdict("P2", problems, facts, numbers, rule)
    lower, upper, log_mid, width = (float(v) for v in popt)
    n = y.size
    rss_log = float(np.sum((y - logistic_accuracy(x, *popt)) ** 2))
    line = np.polyfit(x, y, 1)
    rss_lin = float(np.sum((y - np.polyval(line, x)) ** 2))
    delta_bic = _bic(rss_lin, n, 3) - _bic(rss_log, n, 5)
    q = np.log(np.array(band) / (1 - np.array(band)))  # logit of the band ends
    D10, D90 = (float(np.exp(log_mid + width * v)) for v in q)
    grid = np.unique(df["D"].to_numpy())
    in_band = grid[(grid >= D10) & (grid <= D90)]
    inside = D10 >= grid.min() and D90 <= grid.max()
    jump = upper - lower
    D_crit = _iv(math.exp(log_mid), np.nan, np.nan)
    if n_boot > 0:
        D_crit = _bootstrap_midpoint(df, x, y, chance, popt, level, n_boot, seed)
    numbers.update({"D_crit": D_crit, "lower": lower, "upper": upper, "jump": jump,
                    "width_log": width, "band_D": [D10, D90], "width_ratio": D90 / D10,
                    "D_in_band": in_band.tolist(), "n_in_band": int(in_band.size),
                    "delta_bic": delta_bic, "rss_logistic": rss_log, "rss_line": rss_lin,
                    "n_fitted": int(n), "grid": grid.tolist()})
    facts.append(f"D_crit {D_crit['value']:.4g}; {band[0]:.0%}-{band[1]:.0%} band D' "
                 f"{D10:.4g}-{D90:.4g} (x{D90 / D10:.3g}) holds {in_band.size} grid sizes; "
                 f"BIC prefers the logistic over the ramp by {delta_bic:.3g}; jump {jump:.3g}")
    if delta_bic < min_delta_bic:
        problems.append(f"BIC difference {delta_bic:.3g} < {min_delta_bic:g}: a ramp explains the data")
    if in_band.size < min_in_band:
        problems.append(f"{in_band.size} D' inside the band (needs {min_in_band}: refine the grid)")
    if not inside:
        problems.append(f"the band leaves the grid [{grid.min():g}, {grid.max():g}]")
    if jump < min_jump:
        problems.append(f"jump {jump:.3g} < {min_jump:g}")
    return _verdict("P2", problems, facts, numbers, rule)


def _bootstrap_midpoint(df: pd.DataFrame, x: np.ndarray, y: np.ndarray, chance: float,
                        popt: np.ndarray, level: float, n_boot: int, seed: int) -> dict[str, float]:
    """Percentile interval of exp(midpoint), seeds resampled with all their rows."""
    rng = np.random.default_rng(seed)
    seeds = df["seed"].to_numpy()
    members = [np.flatnonzero(seeds == s) for s in np.unique(seeds)]
    reps = []
    for _ in range(n_boot):
        idx = np.concatenate([members[i] for i in rng.integers(0, len(members), len(members))])
        if np.unique(x[idx]).size < 4:
            continue
        p = _fit_logistic(x[idx], y[idx], chance, starts=popt[None, :])
        if p is not None:
            reps.append(p[2])
    if not reps:
        return _iv(math.exp(popt[2]), np.nan, np.nan)
    tail = (1 - level) / 2
    lo, hi = np.quantile(reps, [tail, 1 - tail], method="inverted_cdf")
    return _iv(math.exp(popt[2]), math.exp(lo), math.exp(hi))


# ---------------------------------------------------------------------------------------------
# P3
# ---------------------------------------------------------------------------------------------


def _crossing(log_D: np.ndarray, acc: np.ndarray, level: float) -> float:
    """``log D`` where the isotonic fit of ``acc`` first reaches ``level`` (nan: not inside)."""
    order = np.argsort(log_D, kind="stable")
    x, y = log_D[order], acc[order]
    xs, inv = np.unique(x, return_inverse=True)
    means = np.bincount(inv, y) / np.bincount(inv)
    fit = isotonic_regression(means, weights=np.bincount(inv).astype(float), increasing=True).x
    above = np.flatnonzero(fit >= level)
    if above.size == 0 or above[0] == 0:
        return np.nan
    i = above[0]
    return float(xs[i - 1] + (level - fit[i - 1]) * (xs[i] - xs[i - 1]) / (fit[i] - fit[i - 1]))


def p3(table: Any, chance: float, *, min_weight_decays: int = 3, min_wd_ratio: float = 4.0,
       min_seeds: int = 2, tolerance: float = 0.1, equivalence_level: float = 0.90,
       max_excluded_fraction: float = 0.2, min_base_trig_share: float = 0.95) -> Verdict:
    """P3: D_crit does not depend on weight decay, by an equivalence test (module doc)."""
    rule = {"min_weight_decays": int(min_weight_decays), "min_wd_ratio": float(min_wd_ratio),
            "min_seeds": int(min_seeds), "tolerance": float(tolerance),
            "equivalence_level": _level("equivalence_level", equivalence_level),
            "max_excluded_fraction": float(max_excluded_fraction),
            "min_base_trig_share": float(min_base_trig_share),
            "D_crit": "isotonic fit of accuracy on log D' per (weight decay, seed) crossing "
                      "halfway between chance and 1",
            "slope": "OLS of log D_crit on log weight decay with one intercept per seed, t interval"}
    df, dropped = _converged_rows(table, chance)
    n_all = len(df) + len(dropped)
    if (df["weight_decay"] <= 0).any():
        raise ConfigError("weight_decay", "must be > 0 (the slope is against log weight decay)",
                          float(df["weight_decay"][df["weight_decay"] <= 0].iloc[0]))
    problems, base_numbers = _run_problems(table, n_all, len(dropped), min_base_trig_share, max_excluded_fraction)
    facts: list[str] = []
    numbers: dict[str, Any] = {"n_rows": n_all, "n_excluded": len(dropped), **base_numbers}
    half = chance + 0.5 * (1 - chance)
    units = []
    for (wd, s), g in df.groupby(["weight_decay", "seed"], sort=True):
        units.append({"weight_decay": float(wd), "seed": s,
                      "log_D_crit": _crossing(np.log(g["D"].to_numpy()), g["final_test_acc"].to_numpy(), half)})
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
        problems.append(f"{wds.size} weight decays with {min_seeds}+ crossing seeds spanning x{ratio:.3g} "
                        f"(needs {min_weight_decays} spanning x{min_wd_ratio:g})")
    u = u[u["weight_decay"].isin(wds)]
    slope = _iv(np.nan, -np.inf, np.inf)
    if wds.size >= 2:
        seeds = pd.factorize(u["seed"].astype(str))[0]
        X = np.column_stack([np.log(u["weight_decay"].to_numpy()), np.eye(seeds.max() + 1)[seeds]])
        yv = u["log_D_crit"].to_numpy()
        beta, _, rank, _ = np.linalg.lstsq(X, yv, rcond=None)
        dof = yv.size - rank
        resid = yv - X @ beta
        if dof >= 1 and rank == X.shape[1]:
            cov = float(resid @ resid) / dof * np.linalg.inv(X.T @ X)
            slope = _t_interval(float(beta[0]), math.sqrt(cov[0, 0]), dof, equivalence_level)
        else:
            slope = _iv(float(beta[0]), -np.inf, np.inf)
    numbers["slope"] = slope
    spread = float(np.exp(per_wd["mean"].max() - per_wd["mean"].min())) if len(per_wd) else np.nan
    numbers["spread_ratio"] = spread
    equivalent = -tolerance <= slope["lo"] and slope["hi"] <= tolerance
    facts.append(f"slope of log D_crit vs log wd {_fmt(slope)} "
                 + (f"inside +-{tolerance:g}" if equivalent else f"not inside +-{tolerance:g}")
                 + f"; D_crit max/min over weight decays {spread:.3g}")
    if not equivalent:
        problems.append("independence of weight decay not shown")
    return _verdict("P3", problems, facts, numbers, rule)


# ---------------------------------------------------------------------------------------------
# P4
# ---------------------------------------------------------------------------------------------


def p4_sizes(d_crit: float, *, n_sizes: int = 8, low_factor: float = 1.0,
             high_factor: float = 4.0) -> tuple[int, ...]:
    """The semi-grokking sizes by rule: ``n_sizes`` geometrically spaced in
    ``[low_factor, high_factor] x D_crit`` (from the same run's D_crit, not from calibration)."""
    if not (d_crit > 0 and math.isfinite(d_crit)):
        raise ConfigError("dcrit", "must be a finite number > 0", d_crit)
    if not 0 < low_factor < high_factor:
        raise ConfigError("low_factor", "must satisfy 0 < low_factor < high_factor", low_factor)
    sizes = np.geomspace(low_factor * d_crit, high_factor * d_crit, int(n_sizes))
    return tuple(sorted({int(round(s)) for s in sizes}))


def classify_run(step: np.ndarray, train_acc: np.ndarray, test_acc: np.ndarray, chance: float, *,
                 tail_fraction: float = 1 / 3, max_drift: float = 0.15, min_train_acc: float = 0.99,
                 band: tuple[float, float] = (0.2, 0.8), plateau_min_fraction: float = 0.1,
                 plateau_spread: float = 0.1, rise_min: float = 0.2) -> dict[str, Any]:
    """One run's class (semi, grokked, ungeneralised, unsettled) and transient-plateau flag."""
    order = np.argsort(step, kind="stable")
    step = np.asarray(step, float)[order]
    train, test = np.asarray(train_acc, float)[order], np.asarray(test_acc, float)[order]
    span = step[-1] - step[0]
    tail = step >= step[-1] - tail_fraction * span
    if span <= 0 or tail.sum() < 4:
        raise ConfigError("step", f"a run needs at least 4 evaluations in the last {tail_fraction:.3g} of its "
                          f"steps (got {int(tail.sum())} of {int(step.size)})", int(tail.sum()))
    final = float(test[tail].mean())
    scaled = (test - chance) / (1 - chance)
    final_scaled = float(scaled[tail].mean())
    drift = float(stats.theilslopes(test[tail], step[tail]).slope * span)
    fit = float(train[tail].mean()) >= min_train_acc
    settled = abs(drift) <= max_drift
    if final_scaled > band[1] and settled:
        label = "grokked"
    elif final_scaled < band[0] and settled:
        label = "ungeneralised"
    elif band[0] <= final_scaled <= band[1] and settled and fit:
        label = "semi"
    else:
        label = "unsettled"
    w = max(3, int(math.ceil(plateau_min_fraction * step.size)))
    roll = pd.Series(scaled).rolling(w)
    med, spread = roll.median().to_numpy(), (roll.quantile(0.9) - roll.quantile(0.1)).to_numpy()
    level_ok = (med >= band[0]) & (med <= band[1]) & (spread <= plateau_spread) & (final_scaled >= med + rise_min)
    return {"label": label, "final_test_acc": final, "final_scaled": final_scaled, "drift": drift,
            "final_train_acc": float(train[tail].mean()), "transient": bool(np.any(level_ok))}


def p4(trajectories: Any, chance: float, d_crit: float | None = None, *, tail_fraction: float = 1 / 3,
       max_drift: float = 0.15, min_train_acc: float = 0.99, band: tuple[float, float] = (0.2, 0.8),
       plateau_min_fraction: float = 0.1, plateau_spread: float = 0.1, rise_min: float = 0.2,
       level: float = 0.95, null_fraction: float = 0.0) -> Verdict:
    """P4: some runs settle on a converged plateau at middling test accuracy (module doc)."""
    rule = {"tail_fraction": float(tail_fraction), "max_drift": float(max_drift),
            "min_train_acc": float(min_train_acc), "band": list(band),
            "band_scale": "fraction of the way from chance to 1",
            "plateau_min_fraction": float(plateau_min_fraction), "plateau_spread": float(plateau_spread),
            "rise_min": float(rise_min), "level": _level("level", level), "null_fraction": float(null_fraction),
            "interval": "Clopper-Pearson", "drift": "Theil-Sen slope of the tail test accuracy x the step span"}
    if not 0.0 <= chance < 1.0:
        raise ConfigError("chance", "must lie in [0, 1)", chance)
    if not 0 <= band[0] < band[1] <= 1:
        raise ConfigError("band", "must satisfy 0 <= low < high <= 1", band)
    df = require_columns(trajectories, P4_COLUMNS, numeric=("D", "step", "train_acc", "test_acc"))
    kw = {k: rule[k] for k in ("tail_fraction", "max_drift", "min_train_acc", "plateau_min_fraction",
                               "plateau_spread", "rise_min")}
    runs = []
    for (D, s), g in df.groupby(["D", "seed"], sort=True):
        c = classify_run(g["step"].to_numpy(), g["train_acc"].to_numpy(), g["test_acc"].to_numpy(),
                         chance, band=tuple(band), **kw)
        runs.append({"D": float(D), "seed": s, **c})
    labels = [r["label"] for r in runs]
    n, k = len(runs), labels.count("semi")
    ci = stats.binomtest(k, n).proportion_ci(confidence_level=level, method="exact")
    counts = {lab: labels.count(lab) for lab in ("semi", "grokked", "ungeneralised", "unsettled")}
    numbers: dict[str, Any] = {"n_runs": n, "n_semi": k, "counts": counts,
                               "semi_fraction": _iv(k / n, ci.low, ci.high),
                               "n_transient": int(sum(r["transient"] for r in runs)),
                               "semi_runs": [{"D": r["D"], "seed": r["seed"], "final_test_acc": r["final_test_acc"],
                                              "drift": r["drift"]} for r in runs if r["label"] == "semi"],
                               "sizes": sorted({r["D"] for r in runs})}
    if d_crit is not None:
        numbers["D_crit"] = float(d_crit)
        numbers["sizes_over_D_crit"] = [s / d_crit for s in numbers["sizes"]]
    facts = [f"{k} of {n} runs semi-grokked, fraction {_fmt(numbers['semi_fraction'])}; "
             f"grokked {counts['grokked']}, ungeneralised {counts['ungeneralised']}, unsettled "
             f"{counts['unsettled']}; {numbers['n_transient']} transient plateaus"]
    problems = []
    if not ci.low > null_fraction:
        problems.append(f"the interval's lower end {ci.low:.3g} is not above {null_fraction:g}")
    return _verdict("P4", problems, facts, numbers, rule)


# ---------------------------------------------------------------------------------------------
# Figure 10a
# ---------------------------------------------------------------------------------------------


def fig10a(table: Any, *, level: float = 0.95, min_seeds_per_D: int = 3, min_D: int = 3) -> Verdict:
    """Figure 10a: the G:M ratio rises monotonically with D (Spearman, Fisher-z interval)."""
    rule = {"level": _level("level", level), "min_seeds_per_D": int(min_seeds_per_D), "min_D": int(min_D),
            "statistic": "Spearman rank correlation of ratio with D",
            "interval": "Fisher z, se sqrt(1.06 / (n - 3))"}
    df = require_columns(table, FIG10A_COLUMNS, numeric=("D",))
    ratio = pd.to_numeric(df["ratio"], errors="coerce").to_numpy(dtype=float)
    keep = ~np.isnan(ratio)
    df, ratio = df[keep].reset_index(drop=True), ratio[keep]
    problems, facts = [], []
    per_D = df.assign(ratio=ratio).groupby("D")["ratio"].agg(["median", "size"])
    numbers: dict[str, Any] = {"n": int(len(df)), "n_dropped": int((~keep).sum()),
                               "median_by_D": [{"D": float(d), "ratio": float(r["median"]), "n": int(r["size"])}
                                               for d, r in per_D.iterrows()]}
    thin = per_D.index[per_D["size"] < min_seeds_per_D].tolist()
    if thin:
        problems.append(f"fewer than {min_seeds_per_D} networks at D = {', '.join(f'{d:g}' for d in thin)}")
    if len(per_D) < min_D:
        problems.append(f"{len(per_D)} distinct D (needs {min_D})")
    n = len(df)
    if n < 4 or len(per_D) < 2:
        problems.append("too few networks for a rank correlation")
        return _verdict("fig10a", problems, facts, numbers, rule)
    rho = float(stats.spearmanr(df["D"].to_numpy(dtype=float), ratio).statistic)
    z, se = np.arctanh(np.clip(rho, -0.999999, 0.999999)), math.sqrt(1.06 / (n - 3))
    zq = float(stats.norm.ppf(0.5 + level / 2))
    rho_iv = _iv(rho, math.tanh(z - zq * se), math.tanh(z + zq * se))
    numbers["spearman"] = rho_iv
    above = rho_iv["lo"] > 0
    facts.append(f"Spearman(D, ratio) {_fmt(rho_iv)} over {n} networks at {len(per_D)} D "
                 + ("above 0" if above else "not above 0"))
    if not above:
        problems.append("no monotone rise shown")
    return _verdict("fig10a", problems, facts, numbers, rule)
