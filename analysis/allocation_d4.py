"""Theorem D.4 tested where its assumptions hold: two circuits on disjoint parameters.

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
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy.stats import binomtest

from circeff.analysis.efficiency import EfficiencyAnalysis, analyse_efficiency
from circeff.analysis.stats import Interval, Record, require_columns
from circeff.errors import ConfigError
from circeff.theory import optima

__all__ = [
    "DisjointCell",
    "DisjointComparison",
    "compare_disjoint",
    "d4_optimum",
    "fit_alone",
    "norm_at_logit",
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


def fit_alone(alone: object, *, level: float = 0.95, n_boot: int = 2000, seed: int = 0) -> EfficiencyAnalysis:
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


def _ratio(g: float, m: float) -> float:
    """``g / m``; a circuit left at or below 0 counts as absent (``inf`` or ``0``)."""
    if g > 0 and m > 0:
        return float(g / m)
    return math.inf if g > 0 else (0.0 if m > 0 else math.nan)


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
                    "total_logit": float(total), "ratio": _ratio(best["g_logit"], best["m_logit"]),
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


def compare_disjoint(alone: object, pair: object, *, n_classes: int, q: float = 2.0, level: float = 0.95,
                     n_boot: int = 2000, seed: int = 0, wta_share: float = 0.05,
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
