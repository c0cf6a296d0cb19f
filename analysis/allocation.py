"""Theorem D.4 against trained networks: the allocation of the correct logit between G and M.

Part 1, D.4 on disjoint parameters (one kappa per circuit)
------------------------------------------------------------
Theorem D.4 tested where its assumptions hold: two circuits on disjoint parameters.

What D.4 states (the paper's Eq. 6, with one kappa per circuit): circuits ``i`` with
efficiencies ``P_i`` (the parameter norm for a unit logit) and exponents ``kappa_i`` (a circuit
at logit ``w_i`` needs norm ``P_i w_i^(1/kappa_i)``), whose costs add, are weighted at the
global minimum of ``L_x(sum_i w_i) + (alpha/q) sum_i (w_i^(1/kappa_i) P_i)^q``. With
``q = 2 < kappa_i`` for both circuits the cost of each circuit is concave in its weight and the
minimum puts all weight on one circuit: the one that needs the smaller norm for the total
logit the optimum reaches. With equal kappas that is the smaller ``P``; with different kappas
it depends on that operating logit ``s``: G wins iff ``P_G s^(1/kappa_G) < P_M s^(1/kappa_M)``.

Inputs (from :func:`circeff.empirical.experiments.allocation.run_disjoint`):

* ``alone``: rows ``circuit, D, seed, alpha, param_norm, correct_logit`` (each circuit settled
  alone along an alpha ladder). The fit ``logit = (norm/P)^kappa`` is P1's
  (:func:`circeff.analysis.efficiency.analyse_efficiency`, one intercept per (D, seed)
  stripe, so kappa comes from the ladder within a network); per stripe
  ``log P = mean(log norm) - mean(log logit) / kappa`` with the circuit's kappa.
* ``pair``: rows ``D, seed, alpha, scale_G, scale_M, objective, g_logit, m_logit`` (the pair
  settled from several starting splits). The settled state of a (D, seed) is the start with
  the LOWEST objective (D.4 is about the global minimum; with concave costs each
  single-circuit corner is a local minimum, so a start near the losing corner may stay there).

Prediction per (D, seed): the D.4 optimum for the stripe's ``(P_G, P_M)``, the circuits'
kappas, the pair's alpha and ``n_classes = P`` (through :func:`d4_optimum`). Its robustness:
the winner is recomputed at the four corners of the two kappa intervals.

Agreement (:func:`compare_disjoint`): the fraction of (D, seed) where the measured winner
(larger correct logit) is the predicted one, with a Clopper-Pearson interval; per D the
measured ratio ``g_logit / m_logit`` (median over seeds, min-max) and whether it is
winner-take-all (the loser keeps under ``wta_share`` of the logit, default 5%).

Part 2, predicted curves at the operating logit
-----------------------------------------------
The G:M logit ratio against D: two predicted curves beside the measured ratio, and the
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
  is winner-take-all: G takes (nearly) all where ``x > 0``, M where ``x < 0`` (the loser holding
  under ``wta_share`` of the logit: ratio beyond ``(1 - wta_share)/wta_share``, 19 for 5%).
* (b) D.4 case 2 with one effective kappa: ``log ratio = e x`` with ``e = q k / (q - k)``, so
  ``k_eff = q e / (q + e)``. ``e`` is fitted through the origin (case 2 has no free
  intercept) by least squares on the medians. Its predictions per D are leave-one-D-out (``e``
  refitted without that D), so a fitted curve is not credited with in-sample errors.

Scoring, the same for both curves: each predicts a region of the log ratio at every D, "G
takes almost all" (ratio beyond ``(1 - wta_share)/wta_share``), "M takes almost all" (below its
inverse) or "a mixture" in between. (a) predicts the winner's region; (b) predicts the region its
(leave-one-D-out) ratio ``exp(e x)`` falls in. A curve's log error at a D is the distance of the
measured log ratio from the region it predicts (0 inside). An earlier version scored (a) by its
region but (b) as a point, which favoured (a).

Near the crossover: D where the bootstrap interval of ``x`` holds 0 (the data do not tell which
circuit needs less norm, so (a)'s winner there is undetermined) are reported apart, with the
measured ratio and both predictions, and are not scored.

Rule of the verdict (fixed before looking at data): the model with the smaller median
absolute log error over the scored D is the one the data support; "by how much" is the
difference ``median|err_a| - median|err_b|`` with a bootstrap interval (seeds resampled within
D, the stripes too). The data support (b) over (a) when that interval lies above 0 (the
verdict holds), (a) over (b) when below (it does not hold), and neither otherwise (undecided);
the reason names the supported account.

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
from scipy.stats import binomtest

from circeff.analysis.efficiency import EfficiencyAnalysis, analyse_efficiency
from circeff.analysis.fig10 import logit_ratio
from circeff.analysis.rule import Verdict
from circeff.analysis.stats import Interval, Record, percentile_interval, require_columns, to_plain
from circeff.errors import ConfigError
from circeff.thresholds import CONFIDENCE_LEVEL, N_BOOT
from circeff.theory import optima

__all__ = [
    "ACCOUNTS",
    "AllocationCurves",
    "CurvePoint",
    "DisjointCell",
    "DisjointComparison",
    "OperatingCrossover",
    "allocation_curves",
    "allocation_verdict",
    "compare_dcrit",
    "compare_disjoint",
    "d4_optimum",
    "fit_alone",
    "kappa_from_exponent",
    "norm_at_logit",
    "operating_crossover",
    "settled_splits",
    "stripe_log_P",
    "winner_at_logit",
]

ALONE_COLUMNS = ("circuit", "D", "seed", "alpha", "param_norm", "correct_logit")
PAIR_COLUMNS = ("D", "seed", "alpha", "scale_G", "scale_M", "objective", "g_logit", "m_logit")


def norm_at_logit(P: float | np.ndarray, kappa: float | np.ndarray, logit: float | np.ndarray) -> np.ndarray:
    """The norm a circuit needs for ``logit``: ``P logit^(1/kappa)``."""
    return np.asarray(P, dtype=float) * np.asarray(logit, dtype=float) ** (1.0 / np.asarray(kappa, dtype=float))


def winner_at_logit(P_G: float, kappa_G: float, P_M: float, kappa_M: float, logit: float) -> str:
    """Which circuit needs the smaller norm for ``logit`` (``"tie"`` if equal)."""
    g, m = norm_at_logit(P_G, kappa_G, logit), norm_at_logit(P_M, kappa_M, logit)
    return "tie" if g == m else ("G" if g < m else "M")


def d4_optimum(P_G: float, P_M: float, kappa_G: float, kappa_M: float, *, alpha: float, n_classes: int,
               q: float = 2.0) -> tuple[float, float]:
    """D.4's optimal weights ``(w_G, w_M)`` (each circuit's logit) from the theory layer's
    minimiser of Eq. 6 with one kappa per circuit."""
    problem = optima.OptimumProblem(P=(P_G, P_M), q=q, kappa=(kappa_G, kappa_M), alpha=alpha, n_classes=n_classes)
    w = optima.minimise(problem).weights
    return float(w[0]), float(w[1])


def _winner(w_G: float, w_M: float) -> str:
    return "tie" if w_G == w_M else ("G" if w_G > w_M else "M")


# ---------------------------------------------------------------------------------------------
# Measurement
# ---------------------------------------------------------------------------------------------


def fit_alone(alone: object, *, level: float = CONFIDENCE_LEVEL, n_boot: int = N_BOOT, seed: int = 0) -> EfficiencyAnalysis:
    """P1's fit on the circuits settled alone (alpha plays the role of the weight decay)."""
    df = require_columns(alone, ALONE_COLUMNS, numeric=("D", "alpha", "param_norm", "correct_logit"))
    rows = df.rename(columns={"alpha": "weight_decay"})
    rows = rows[rows["correct_logit"] > 0]
    return analyse_efficiency(rows, intercepts="D_seed", level=level, n_boot=n_boot, seed=seed)


def stripe_log_P(alone: object, kappa_G: float, kappa_M: float) -> pd.DataFrame:
    """``circuit, D, seed, log_P`` per stripe with the circuit's kappa (module docstring)."""
    df = require_columns(alone, ALONE_COLUMNS, numeric=("D", "param_norm", "correct_logit"))
    df = df[df["correct_logit"] > 0]
    kappa = {"G": kappa_G, "M": kappa_M}
    out = []
    for (c, d, s), g in df.groupby(["circuit", "D", "seed"]):
        log_P = np.log(g["param_norm"]).mean() - np.log(g["correct_logit"]).mean() / kappa[c]
        out.append({"circuit": c, "D": float(d), "seed": int(s), "log_P": float(log_P)})
    return pd.DataFrame(out)


def settled_splits(pair: object) -> pd.DataFrame:
    """Per (D, seed): the lowest-objective start, its ratio, and whether every start agreed."""
    df = require_columns(pair, PAIR_COLUMNS, numeric=("D", "objective", "g_logit", "m_logit"))
    out = []
    for (d, s), g in df.groupby(["D", "seed"]):
        best = g.loc[g["objective"].idxmin()]
        winners = {_winner(r.g_logit, r.m_logit) for r in g.itertuples()}
        total = best["g_logit"] + best["m_logit"]
        out.append({"D": float(d), "seed": int(s), "alpha": float(best["alpha"]),
                    "g_logit": float(best["g_logit"]), "m_logit": float(best["m_logit"]),
                    "total_logit": float(total), "ratio": float(logit_ratio(best["g_logit"], best["m_logit"])),
                    "g_share": float(best["g_logit"] / total) if total > 0 else math.nan,
                    "winner": _winner(best["g_logit"], best["m_logit"]),
                    "starts_agree": len(winners) == 1, "objective_spread": float(np.ptp(g["objective"]))})
    return pd.DataFrame(out)


@dataclass(frozen=True)
class DisjointCell(Record):
    """One (D, seed): prediction and settled measurement."""

    D: float
    seed: int
    P_G: float
    P_M: float
    predicted_w_G: float
    predicted_w_M: float
    predicted_winner: str
    winner_robust: bool
    operating_winner: str
    measured_g_logit: float
    measured_m_logit: float
    measured_ratio: float
    measured_winner: str
    winner_take_all: bool
    starts_agree: bool
    agrees: bool


@dataclass(frozen=True)
class DisjointComparison(Record):
    """D.4 against the settled disjoint pairs over every (D, seed)."""

    kappa_G: Interval
    kappa_M: Interval
    alpha: float
    n_classes: int
    cells: tuple[DisjointCell, ...]
    winner_agreement: Interval
    n_winner_take_all: int
    n_cells: int
    per_D: tuple[dict, ...]
    reason: str


def compare_disjoint(alone: object, pair: object, *, n_classes: int, q: float = 2.0, level: float = CONFIDENCE_LEVEL,
                     n_boot: int = N_BOOT, seed: int = 0, wta_share: float = 0.05,
                     analysis: EfficiencyAnalysis | None = None) -> DisjointComparison:
    """D.4's winner per (D, seed) from the circuits alone, against the settled pair."""
    a = analysis or fit_alone(alone, level=level, n_boot=n_boot, seed=seed)
    kG, kM = a.fit_G.kappa, a.fit_M.kappa
    logP = stripe_log_P(alone, kG.value, kM.value).set_index(["circuit", "D", "seed"])["log_P"]
    settled = settled_splits(pair)
    cells = []
    for r in settled.itertuples():
        key_G, key_M = ("G", r.D, r.seed), ("M", r.D, r.seed)
        if key_G not in logP.index or key_M not in logP.index:
            continue
        P_G, P_M = math.exp(logP[key_G]), math.exp(logP[key_M])
        w = d4_optimum(P_G, P_M, kG.value, kM.value, alpha=r.alpha, n_classes=n_classes, q=q)
        predicted = _winner(*w)
        # A corner of the kappa intervals at or below 0 is outside D.4 (its logits do not grow
        # with the norm): there the winner is undetermined, so the prediction is not robust.
        corners = {_winner(*d4_optimum(P_G, P_M, g, m, alpha=r.alpha, n_classes=n_classes, q=q))
                   if g > 0 and m > 0 else "undetermined"
                   for g in (kG.lo, kG.hi) for m in (kM.lo, kM.hi)}
        loser = min(r.g_logit, r.m_logit) / max(r.total_logit, 1e-300)
        cells.append(DisjointCell(
            r.D, r.seed, P_G, P_M, w[0], w[1], predicted, corners == {predicted},
            winner_at_logit(P_G, kG.value, P_M, kM.value, r.total_logit),
            r.g_logit, r.m_logit, r.ratio, r.winner, bool(loser < wta_share), bool(r.starts_agree),
            predicted == r.winner))
    if not cells:
        raise ConfigError("pair", "no (D, seed) has both circuits measured alone and the pair settled", 0)
    k = sum(c.agrees for c in cells)
    ci = binomtest(k, len(cells)).proportion_ci(confidence_level=level, method="exact")
    agreement = Interval(k / len(cells), float(ci.low), float(ci.high), level, "Clopper-Pearson")
    per_D = []
    for d in sorted({c.D for c in cells}):
        cs = [c for c in cells if c.D == d]
        ratios = np.array([c.measured_ratio for c in cs])
        per_D.append({"D": d, "n": len(cs), "predicted_winners": sorted({c.predicted_winner for c in cs}),
                      "measured_winners": sorted({c.measured_winner for c in cs}),
                      "ratio_median": float(np.median(ratios)), "ratio_min": float(ratios.min()),
                      "ratio_max": float(ratios.max()),
                      "winner_take_all": int(sum(c.winner_take_all for c in cs)),
                      "agree": int(sum(c.agrees for c in cs))})
    n_wta = sum(c.winner_take_all for c in cells)
    reason = (f"winner agrees with D.4 at {k} of {len(cells)} (D, seed) "
              f"({agreement.value:.0%} [{agreement.lo:.0%}, {agreement.hi:.0%}]); "
              f"{n_wta} of {len(cells)} settled winner-take-all (loser < {wta_share:.0%} of the logit); "
              f"kappas of the circuits settled alone (every G-initialised network, whatever its trig share "
              f"became): kappa_G {kG.value:.3g} [{kG.lo:.3g}, {kG.hi:.3g}], "
              f"kappa_M {kM.value:.3g} [{kM.lo:.3g}, {kM.hi:.3g}]")
    return DisjointComparison(kG, kM, float(settled["alpha"].iloc[0]), int(n_classes), tuple(cells), agreement,
                              int(n_wta), len(cells), tuple(per_D), reason)


# ---------------------------------------------------------------------------------------------
# Predicted curves at the operating logit
# ---------------------------------------------------------------------------------------------


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
    predicted_b_region: str
    x: Interval
    near_crossover: bool


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
    near_crossover_D: tuple[float, ...]


def _category(centre: np.ndarray, edge: float) -> np.ndarray:
    """The allocation a log ratio ``centre`` falls in: ``"G"`` (the loser M holds under the
    winner-take-all share), ``"M"``, or ``"mix"`` in between."""
    return np.where(centre >= edge, "G", np.where(centre <= -edge, "M", "mix"))


def _region_error(log_r: np.ndarray, category: np.ndarray, edge: float) -> np.ndarray:
    """Signed distance of ``log_r`` from the region of its predicted ``category`` (0 inside)."""
    return np.where(category == "G", np.minimum(log_r - edge, 0.0),
                    np.where(category == "M", np.maximum(log_r + edge, 0.0), log_r - np.clip(log_r, -edge, edge)))


def _errors(log_r: np.ndarray, x: np.ndarray, wta: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Log errors of (a) and of leave-one-D-out (b), both scored the same way: the distance of
    the measured log ratio from the region (G takes almost all, M takes almost all, or a
    mixture) that the curve predicts at that D; and (b)'s predicted log ratios."""
    edge = math.log((1 - wta) / wta)
    err_a = np.where(x == 0, np.nan, _region_error(log_r, np.where(x > 0, "G", "M"), edge))
    pred_b = np.empty_like(log_r)
    for j in range(x.size):
        keep = np.arange(x.size) != j
        e = float(x[keep] @ log_r[keep] / (x[keep] @ x[keep]))
        pred_b[j] = e * x[j]
    return err_a, _region_error(log_r, _category(pred_b, edge), edge), pred_b


def allocation_curves(stripes: pd.DataFrame, kappa_G: Interval, kappa_M: Interval, measured: object, *,
                      q: float = 2.0, wta_share: float = 0.05, level: float = CONFIDENCE_LEVEL, n_boot: int = N_BOOT,
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
        err_a, err_b, pred_b = _errors(log_r, x, wta_share)
        return ratio, total, x, e, err_a, err_b, pred_b

    ratio, total, x, e, err_a, err_b, pred_b = evaluate(None, kappa)

    rng = np.random.default_rng(seed)
    reps = {"ratio": [], "e": [], "pred_b": [], "x": [], "err_a": [], "err_b": []}
    for _ in range(n_boot):
        kap = {"G": _kappa_draw(kappa_G, rng), "M": _kappa_draw(kappa_M, rng)}
        r_, _, x_, e_, ea, eb, _ = evaluate(rng, kap)
        for k, v in (("ratio", r_), ("e", e_), ("pred_b", np.exp(e_ * x_)), ("x", x_), ("err_a", ea), ("err_b", eb)):
            reps[k].append(v)
    R, PB, X = np.array(reps["ratio"]), np.array(reps["pred_b"]), np.array(reps["x"])
    method = "bootstrap percentile (seeds resampled within D; stripes and kappas redrawn)"
    x_iv = [percentile_interval(float(x[j]), X[:, j], level, method) for j in range(D.size)]
    # near the crossover: the data do not tell which circuit needs less norm (x's interval holds
    # 0), so (a)'s winner there is a coin toss; those D are reported apart and not scored
    near = np.array([iv.lo <= 0 <= iv.hi for iv in x_iv]) if n_boot else np.zeros(D.size, bool)
    far = ~near

    def medians(ea: np.ndarray, eb: np.ndarray) -> tuple[float, float]:
        if not far.any():
            return math.nan, math.nan
        return float(np.nanmedian(np.abs(ea[far]))), float(np.nanmedian(np.abs(eb[far])))

    med_a, med_b = medians(err_a, err_b)
    diffs = np.array([np.subtract(*medians(np.asarray(a_), np.asarray(b_)))
                      for a_, b_ in zip(reps["err_a"], reps["err_b"])])
    e_iv = percentile_interval(e, np.array(reps["e"]), level, method)
    edge = math.log((1 - wta_share) / wta_share)
    region = {"G": "G takes almost all", "M": "M takes almost all", "mix": "mixture"}
    points = []
    for j, d in enumerate(D):
        points.append(CurvePoint(
            float(d), int((df["D"] == d).sum()), float(total[j]), float(x[j]),
            percentile_interval(float(ratio[j]), R[:, j], level, "bootstrap percentile (seeds resampled within D)"),
            "G takes all" if x[j] > 0 else ("M takes all" if x[j] < 0 else "tie"), float(err_a[j]),
            percentile_interval(float(math.exp(e * x[j])), PB[:, j], level, method), float(err_b[j]),
            region[str(_category(np.array([pred_b[j]]), edge)[0])], x_iv[j], bool(near[j])))
    k_eff = kappa_from_exponent(np.array([e_iv.value, e_iv.lo, e_iv.hi]), q)
    # k = q e / (q + e) is increasing in e on e > -q, so the interval maps end to end there.
    k_iv = Interval(float(k_eff[0]), float(min(k_eff[1:])), float(max(k_eff[1:])), level,
                    "from the exponent's interval through k = q e / (q + e)")
    diff = percentile_interval(med_a - med_b, diffs, level, method)
    return AllocationCurves(float(q), kappa_G, kappa_M, e_iv, k_iv, float(wta_share), tuple(points),
                            med_a, med_b, diff, tuple(float(d) for d in D[near]))


ACCOUNTS = {"a": "(a) D.4 with per-circuit kappa: winner-take-all at the operating logit",
            "b": "(b) D.4 case 2 with one effective kappa: a power-law split"}


def allocation_verdict(curves: AllocationCurves) -> Verdict:
    """Which account of the allocation the data support, by the rule in the module docstring:
    ``holds`` when (b) is supported, ``does not hold`` when (a) is, ``undecided`` when neither
    (or when every D lies near the crossover). The reason names the supported account."""
    d = curves.error_difference
    scored = [p for p in curves.points if not p.near_crossover]
    if not scored or not np.isfinite(d.value):
        supported = "undecided"
    else:
        supported = "b" if d.lo > 0 else "a" if d.hi < 0 else "neither"
    kappas = (f"kappa_G {curves.kappa_G.value:.3g} and kappa_M {curves.kappa_M.value:.3g} (each fitted to its circuit "
              f"settled alone); kappa_eff {curves.kappa_eff.value:.3g} (fitted to the measured ratios through case 2)")
    names = {**ACCOUNTS, "neither": "neither account over the other", "undecided": "no account: every D lies near "
             "the crossover"}
    reason = (f"both curves scored the same way, by the distance of the measured log ratio from the region each "
              f"predicts (G takes almost all, M takes almost all, or a mixture), over {len(scored)} D away from the "
              f"crossover; median |log error| (a) {curves.median_abs_error_a:.3g}, (b, leave-one-D-out) "
              f"{curves.median_abs_error_b:.3g}; (a) - (b) = {d.value:.3g} [{d.lo:.3g}, {d.hi:.3g}]: the data support "
              f"{names[supported]}. Near the crossover (which circuit needs less norm is undetermined), reported "
              f"apart: D = {', '.join(f'{x:g}' for x in curves.near_crossover_D) or 'none'}. {kappas}")
    half = (d.hi - d.lo) / 2
    se = half / 1.959963984540054 if np.isfinite(half) and half > 0 else math.nan
    criteria = [] if supported == "undecided" else [
        {"name": "(a) - (b) above 0", "value": float(d.value), "threshold": 0.0, "se": se, "passes": "above",
         "margin_se": float(d.value / se) if se == se else math.nan}]
    return Verdict(key="allocation", holds=supported == "b", reason=reason,
                   numbers=to_plain({"supported": supported, "supported_account": names[supported],
                                     "median_abs_error_a": curves.median_abs_error_a,
                                     "median_abs_error_b": curves.median_abs_error_b,
                                     "difference": d, "kappa_eff": curves.kappa_eff, "exponent": curves.exponent,
                                     "near_crossover_D": list(curves.near_crossover_D),
                                     "near_crossover": [{"D": p.D, "measured": p.measured.value,
                                                         "x": p.x.value, "x_lo": p.x.lo, "x_hi": p.x.hi,
                                                         "a": p.predicted_a, "b": p.predicted_b.value,
                                                         "b_region": p.predicted_b_region}
                                                        for p in curves.points if p.near_crossover]}),
                   rule={"statement": "both curves are scored the same way: the distance of the measured log ratio "
                                      "from the region the curve predicts at that D (G takes almost all, M takes "
                                      "almost all, or a mixture; the loser holding under wta_share marks the "
                                      "first two); (b)'s prediction is leave-one-D-out; D whose x = log(N_M/N_G) "
                                      "interval holds 0 are near the crossover and reported apart; the curve with "
                                      "the smaller median |log error| over the other D is supported when the "
                                      "bootstrap interval of median|err_a| - median|err_b| excludes 0",
                         "holds_means": "the data support (b), one effective kappa, over (a), winner-take-all "
                                        "with per-circuit kappa; does not hold: (a) over (b); undecided: neither",
                         "wta_share": curves.wta_share},
                   undecided=supported in ("neither", "undecided"), criteria=tuple(criteria))


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
                        level: float = CONFIDENCE_LEVEL, n_boot: int = N_BOOT, seed: int = 0,
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
