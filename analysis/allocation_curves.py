"""The G:M logit ratio against D: two predicted curves beside the measured ratio, and the
efficiency crossover read at the logit the networks actually reach.

Inputs:

* ``eff``: per circuit and D, the stripes' ``log P`` (:func:`stripe_log_P`) and the circuits'
  kappas, from circuits measured alone at overlapping D (the disjoint experiment: M networks
  and G-initialised networks settled at the same D);
* ``measured``: rows ``D, seed, g_logit, m_logit`` of the networks whose allocation is compared
  (Figure 10's networks, at an AdamW endpoint or settled).

Operating logit ``s(D)``: the median over seeds of the measured total correct logit
``g_logit + m_logit`` at that D. A circuit's norm for it is ``N_i(D) = P_i(D) s^(1/kappa_i)``;
``log N_i`` is interpolated in ``log D`` by a straight line per circuit (fitted to the
stripes, so within the measured D range it interpolates).

Curves (``x(D) = log(N_M / N_G)``, natural logs):

* (a) D.4 with per-circuit kappa at the operating logit. With ``q = 2`` below both kappas this
  is winner-take-all: G takes (nearly) all where ``x > 0``, M where ``x < 0``. Its log error at
  a D is the distance of ``log(measured ratio)`` from the winner-take-all region, taken as the
  loser holding under ``wta_share`` of the logit (ratio beyond ``(1 - wta_share)/wta_share``,
  19 for 5%); 0 inside the region.
* (b) D.4 case 2 with one effective kappa: ``log ratio = e x`` with ``e = q k / (q - k)``, so
  ``k_eff = q e / (q + e)``. ``e`` is fitted through the origin (case 2 has no free
  intercept) by least squares on the medians. Its log errors per D are leave-one-D-out (``e``
  refitted without that D), so a fitted curve is not credited with in-sample errors.

Rule of the verdict (fixed before looking at data): the model with the smaller median
absolute log error over D is the one the data support; "by how much" is the difference
``median|err_a| - median|err_b|`` with a bootstrap interval (seeds resampled within D, the
stripes too). The data support (b) over (a) when that interval lies above 0, (a) over (b)
when below, neither otherwise.

Crossover at the operating logit (:func:`operating_crossover`): the D where ``N_G = N_M`` on
the two interpolated lines, with a bootstrap interval (stripes resampled within D, kappas
drawn from their intervals), compared with another D_crit estimate by the ratio of point
estimates and of interval widths (log widths, ``log(hi/lo)``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd

from circeff.analysis.stats import Interval, Record, percentile_interval, require_columns
from circeff.analysis.verdicts import Verdict
from circeff.errors import ConfigError

__all__ = [
    "AllocationCurves",
    "CurvePoint",
    "OperatingCrossover",
    "allocation_curves",
    "allocation_verdict",
    "compare_dcrit",
    "kappa_from_exponent",
    "operating_crossover",
]


def kappa_from_exponent(e: float | np.ndarray, q: float = 2.0) -> float | np.ndarray:
    """Invert ``e = q k / (q - k)``: ``k = q e / (q + e)`` (nan where ``e = -q``)."""
    e = np.asarray(e, dtype=float)
    with np.errstate(divide="ignore", invalid="ignore"):
        return q * e / (q + e)


def _line(log_D: np.ndarray, y: np.ndarray) -> tuple[float, float]:
    slope, intercept = np.polyfit(log_D, y, 1)
    return float(intercept), float(slope)


class _Stripes:
    """The stripes' ``log P`` per circuit, grouped by D, as arrays (fast to resample)."""

    def __init__(self, stripes: pd.DataFrame) -> None:
        df = require_columns(stripes, ("circuit", "D", "log_P"), numeric=("D", "log_P"))
        self.groups: dict[str, list[tuple[float, np.ndarray]]] = {}
        self.ranges: dict[str, tuple[float, float]] = {}
        for c in ("G", "M"):
            g = df[df["circuit"] == c]
            if g["D"].nunique() < (1 if c == "G" else 2):
                raise ConfigError("D", f"circuit {c} needs log P at {'one' if c == 'G' else 'two'} or more D",
                                  g["D"].tolist())
            self.groups[c] = [(float(d), x["log_P"].to_numpy(float)) for d, x in g.groupby("D")]
            self.ranges[c] = (float(g["D"].min()), float(g["D"].max()))
        self.D_range = (float(df["D"].min()), float(df["D"].max()))

    def line(self, c: str, rng: np.random.Generator | None = None) -> tuple[float, float]:
        """Intercept and slope of ``log P`` against ``log D`` (stripes resampled within D); G
        measured at a single D is flat (slope 0: the paper takes G's efficiency as independent
        of D)."""
        xs, ys = [], []
        for d, v in self.groups[c]:
            if rng is not None:
                v = v[rng.integers(0, v.size, size=v.size)]
            xs.append(np.full(v.size, math.log(d)))
            ys.append(v)
        if len(xs) == 1:
            return float(np.mean(ys[0])), 0.0
        return _line(np.concatenate(xs), np.concatenate(ys))


def _log_norms(st: _Stripes, kappa: dict[str, float], log_s: np.ndarray | float, D: np.ndarray,
               rng: np.random.Generator | None = None) -> dict[str, np.ndarray]:
    """``log N_i`` at ``D`` per circuit: the ``log P`` line plus ``log s / kappa_i``."""
    out = {}
    for c in ("G", "M"):
        a, b = st.line(c, rng)
        out[c] = a + b * np.log(D) + np.asarray(log_s) / kappa[c]
    return out


def _kappa_draw(k: Interval, rng: np.random.Generator) -> float:
    # normal with the interval's half-width as 1.96 sd (the t-interval of the fit), kept > 0
    sd = (k.hi - k.lo) / (2 * 1.96) if np.isfinite(k.hi - k.lo) else 0.0
    return float(max(rng.normal(k.value, sd), 1e-3))


@dataclass(frozen=True)
class CurvePoint(Record):
    """One D: the measured ratio, both predicted curves and their log errors."""

    D: float
    n_seeds: int
    operating_logit: float
    log_norm_ratio: float
    measured: Interval
    predicted_a: str
    log_error_a: float
    predicted_b: Interval
    log_error_b: float


@dataclass(frozen=True)
class AllocationCurves(Record):
    q: float
    kappa_G: Interval
    kappa_M: Interval
    exponent: Interval
    kappa_eff: Interval
    wta_share: float
    points: tuple[CurvePoint, ...]
    median_abs_error_a: float
    median_abs_error_b: float
    error_difference: Interval


def _errors(log_r: np.ndarray, x: np.ndarray, wta: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Log errors of (a) and leave-one-out (b), and the full-data exponent fit's predictions."""
    edge = math.log((1 - wta) / wta)
    err_a = np.where(x > 0, np.minimum(log_r - edge, 0.0), np.maximum(log_r + edge, 0.0))
    err_a = np.where(x == 0, np.nan, err_a)
    err_b = np.empty_like(log_r)
    for j in range(x.size):
        keep = np.arange(x.size) != j
        e = float(x[keep] @ log_r[keep] / (x[keep] @ x[keep]))
        err_b[j] = log_r[j] - e * x[j]
    return err_a, err_b, x


def allocation_curves(stripes: pd.DataFrame, kappa_G: Interval, kappa_M: Interval, measured: object, *,
                      q: float = 2.0, wta_share: float = 0.05, level: float = 0.95, n_boot: int = 1000,
                      seed: int = 0) -> AllocationCurves:
    """Both predicted curves, the measured ratios and the errors per D (module docstring)."""
    df = require_columns(measured, ("D", "seed", "g_logit", "m_logit"), numeric=("D", "g_logit", "m_logit"))
    df = df[(df["g_logit"] > 0) & (df["m_logit"] > 0)].copy()
    df["ratio"] = df["g_logit"] / df["m_logit"]
    df["total"] = df["g_logit"] + df["m_logit"]
    D = np.sort(df["D"].unique().astype(float))
    if D.size < 3:
        raise ConfigError("D", "need three or more D with both proxies positive", D.tolist())
    kappa = {"G": kappa_G.value, "M": kappa_M.value}
    st = _Stripes(stripes)
    by_D = [(df.loc[df["D"] == d, "ratio"].to_numpy(float), df.loc[df["D"] == d, "total"].to_numpy(float))
            for d in D]

    def evaluate(rng: np.random.Generator | None, kap: dict[str, float]):
        pick = [(r, t) if rng is None else (r[i], t[i]) for r, t in by_D
                for i in [None if rng is None else rng.integers(0, r.size, size=r.size)]]
        ratio = np.array([np.median(r) for r, _ in pick])
        total = np.array([np.median(t) for _, t in pick])
        lines = _log_norms(st, kap, np.log(total), D, rng)
        x = lines["M"] - lines["G"]
        log_r = np.log(ratio)
        e = float(x @ log_r / (x @ x))
        err_a, err_b, _ = _errors(log_r, x, wta_share)
        return ratio, total, x, e, err_a, err_b

    ratio, total, x, e, err_a, err_b = evaluate(None, kappa)
    med_a, med_b = float(np.nanmedian(np.abs(err_a))), float(np.nanmedian(np.abs(err_b)))

    rng = np.random.default_rng(seed)
    reps = {"ratio": [], "e": [], "diff": [], "pred_b": []}
    for _ in range(n_boot):
        kap = {"G": _kappa_draw(kappa_G, rng), "M": _kappa_draw(kappa_M, rng)}
        r_, _, x_, e_, ea, eb = evaluate(rng, kap)
        reps["ratio"].append(r_)
        reps["e"].append(e_)
        reps["diff"].append(np.nanmedian(np.abs(ea)) - np.nanmedian(np.abs(eb)))
        reps["pred_b"].append(np.exp(e_ * x_))
    R, PB = np.array(reps["ratio"]), np.array(reps["pred_b"])
    method = "bootstrap percentile (seeds resampled within D; stripes and kappas redrawn)"
    e_iv = percentile_interval(e, np.array(reps["e"]), level, method)
    points = []
    for j, d in enumerate(D):
        points.append(CurvePoint(
            float(d), int((df["D"] == d).sum()), float(total[j]), float(x[j]),
            percentile_interval(float(ratio[j]), R[:, j], level, "bootstrap percentile (seeds resampled within D)"),
            "G takes all" if x[j] > 0 else ("M takes all" if x[j] < 0 else "tie"), float(err_a[j]),
            percentile_interval(float(math.exp(e * x[j])), PB[:, j], level, method), float(err_b[j])))
    k_eff = kappa_from_exponent(np.array([e_iv.value, e_iv.lo, e_iv.hi]), q)
    # k = q e / (q + e) is increasing in e on e > -q, so the interval maps end to end there.
    k_iv = Interval(float(k_eff[0]), float(min(k_eff[1:])), float(max(k_eff[1:])), level,
                    "from the exponent's interval through k = q e / (q + e)")
    diff = percentile_interval(med_a - med_b, np.array(reps["diff"]), level, method)
    return AllocationCurves(float(q), kappa_G, kappa_M, e_iv, k_iv, float(wta_share), tuple(points),
                            med_a, med_b, diff)


def _iv(i: Interval) -> dict[str, float]:
    return {"value": i.value, "lo": i.lo, "hi": i.hi}


def allocation_verdict(curves: AllocationCurves) -> Verdict:
    """Which predicted curve the data support, by the rule in the module docstring."""
    d = curves.error_difference
    if d.lo > 0:
        supported, holds = "b", True
    elif d.hi < 0:
        supported, holds = "a", False
    else:
        supported, holds = "neither", False
    names = {"a": "D.4 with per-circuit kappa (winner-take-all at the operating logit)",
             "b": f"case 2 with kappa_eff {curves.kappa_eff.value:.3g}", "neither": "neither curve"}
    reason = (f"median |log error| (a) {curves.median_abs_error_a:.3g}, (b, leave-one-D-out) "
              f"{curves.median_abs_error_b:.3g}; (a) - (b) = {d.value:.3g} [{d.lo:.3g}, {d.hi:.3g}]: "
              f"the data support {names[supported]}")
    return Verdict(key="allocation", holds=holds, reason=reason,
                   numbers={"median_abs_error_a": curves.median_abs_error_a,
                            "median_abs_error_b": curves.median_abs_error_b,
                            "difference": _iv(d), "kappa_eff": _iv(curves.kappa_eff),
                            "exponent": _iv(curves.exponent), "supported": supported},
                   rule={"statement": "the curve with the smaller median |log error| over D is supported; "
                                      "(b)'s errors are leave-one-D-out; decided when the bootstrap "
                                      "interval of median|err_a| - median|err_b| excludes 0",
                         "holds_means": "the data support case 2 with an effective kappa over "
                                        "winner-take-all with per-circuit kappa",
                         "wta_share": curves.wta_share})


@dataclass(frozen=True)
class OperatingCrossover(Record):
    """``interpolated``: the crossover lies inside both circuits' measured D ranges."""

    D_crit: Interval
    operating_logit: float
    D_range: tuple[float, float]
    interpolated: bool
    n_no_crossing: int
    D_range_G: tuple[float, float]
    D_range_M: tuple[float, float]


def operating_crossover(stripes: pd.DataFrame, kappa_G: Interval, kappa_M: Interval, operating_logit: float, *,
                        level: float = 0.95, n_boot: int = 2000, seed: int = 0,
                        resample_stripes: bool = True) -> OperatingCrossover:
    """D where ``N_G = N_M`` at ``operating_logit`` (module docstring).

    ``resample_stripes=False`` (and kappa intervals of zero width) split the interval's width
    into its two sources: the stripes' spread over seeds, and the kappas' uncertainty."""
    s = math.log(operating_logit)
    st = _Stripes(stripes)

    def crossing(rng: np.random.Generator | None, kG: float, kM: float) -> float:
        (aG, bG), (aM, bM) = st.line("G", rng), st.line("M", rng)
        aG, aM = aG + s / kG, aM + s / kM
        if bM <= bG:  # M does not grow faster than G: no crossing
            return math.inf
        log_D = (aG - aM) / (bM - bG)
        return math.exp(log_D) if log_D < 700 else math.inf  # beyond float range: no crossing in reach

    value = crossing(None, kappa_G.value, kappa_M.value)
    rng = np.random.default_rng(seed)
    reps = np.array([crossing(rng if resample_stripes else None, _kappa_draw(kappa_G, rng), _kappa_draw(kappa_M, rng))
                     for _ in range(n_boot)])
    iv = percentile_interval(value if np.isfinite(value) else math.nan, reps, level,
                             "bootstrap percentile (stripes resampled within D; kappas redrawn)")
    # interpolated only where both circuits were measured (their D ranges overlap there)
    lo, hi = max(st.ranges["G"][0], st.ranges["M"][0]), min(st.ranges["G"][1], st.ranges["M"][1])
    return OperatingCrossover(iv, float(operating_logit), st.D_range, bool(lo <= value <= hi),
                              int(np.isinf(reps).sum()), st.ranges["G"], st.ranges["M"])


def compare_dcrit(a: Interval, b: Interval, *, tolerance: float = 0.25, max_width_ratio: float = 2.0) -> dict:
    """Two D_crit estimates: relative gap of the points, log-width ratio, and the goal
    (points within ``tolerance``, the wider interval at most ``max_width_ratio`` times the other)."""
    gap = abs(a.value - b.value) / min(a.value, b.value)
    wa, wb = math.log(a.hi / a.lo), math.log(b.hi / b.lo)
    ratio = max(wa, wb) / min(wa, wb)
    return {"point_gap": gap, "log_width_a": wa, "log_width_b": wb, "width_ratio": ratio,
            "points_agree": bool(gap <= tolerance), "widths_comparable": bool(ratio <= max_width_ratio),
            "goal_met": bool(gap <= tolerance and ratio <= max_width_ratio)}
