"""Figure 10a's measured G:M ratios and their monotonicity in D; and an earlier, superseded
allocation comparison.

Superseded (kept for the figure helpers that still draw it, used by no stage of ``circeff
reproduce``): :func:`compare_allocation` and :func:`pooled_kappa` compare AdamW endpoints with
Theorem D.4 under ONE kappa pooled over G and M. Measured G and M kappas do not overlap, the
AdamW endpoints are not minima, and G and M share parameters, so that comparison tests a
claim the paper does not make. The allocation comparison the package reports is
:mod:`circeff.analysis.allocation_d4` (D.4 on disjoint parameters, one kappa per circuit) and
:mod:`circeff.analysis.allocation_curves` (predicted curves against settled networks).

Prediction. Theorem D.4 (the paper's Appendix D), evaluated by the theory layer
(:mod:`circeff.theory.optima`; this module never re-derives the formula): with circuit
efficiencies ``P_G(D)``, ``P_M(D)``, the exponent ``kappa`` and the weight-decay norm ``q``
(standard weight decay: ``q = 2``),

* case 1 (``q <= kappa``, the theory layer's ``winner_take_all`` and ``boundary``): one
  circuit takes all; the G:M ratio is ``+inf`` where ``P_G < P_M``, ``0`` where ``P_M < P_G``
  (a tie is nan: any split is optimal);
* case 2 (``q > kappa``, ``power_law``): both circuits are used, with the G:M weight ratio
  ``optima.predicted_ratio(P_G, P_M, q, kappa)`` (a power of ``P_M / P_G``, exponent
  ``optima.power_law_exponent(q, kappa)``).

``P_G(D)`` and ``P_M(D)`` at the measured D come from the P1 fits
(:mod:`circeff.analysis.efficiency`): the M trend line, and for G the same model the crossover
used (flat: ``exp(log_P_G)``; trend: the G line). ``kappa`` defaults to the inverse-variance
weighted mean of the two circuits' fitted kappas (the theory assumes one kappa for the
architecture; both fitted values are kept in the result) and can be given explicitly.

Measurement. Rows ``D, seed, g_logit, m_logit`` (correct-logit proxies of networks trained at
each D, Appendix B). A network's G:M ratio is ``g_logit / m_logit``; when ``m_logit <= 0 <
g_logit`` it is ``+inf`` (no memorisation left), when ``g_logit <= 0 < m_logit`` it is ``0``,
and when both are ``<= 0`` the row is dropped (counted in ``n_dropped``). The measured ratio at a
D is the median over seeds with a percentile bootstrap interval (seeds resampled within D).

Fit statistics (:func:`compare_allocation`):

* ``spearman``: rank correlation across D between predicted ratio and measured median, with a
  bootstrap interval (seeds resampled within every D, medians recomputed). It reflects the
  measurement noise only, not the uncertainty of the P1 fits. A replicate where either side is
  constant counts as correlation 0 (conservative).
* ``median_abs_log_error``: median over D of ``|log(measured median) - log(predicted)|`` (natural
  log; only D where both are finite and positive).
* ``winner_agreement``: fraction of D where the measured median ratio lies on the same side of 1
  as the prediction.
* ``measured_exponent``: slope of ``log(measured median)`` against ``log(P_M / P_G)`` across D
  with a bootstrap interval; case 2 predicts ``exponent``. ``magnitude_holds``: the interval
  contains the predicted exponent.
* ``holds``: case 2: the Spearman interval lies above 0 (the predicted ordering across D is
  reproduced). Case 1: ``winner_agreement >= min_winner_agreement`` (default 0.8).

Figure 10a (:func:`monotonic_verdict`): Spearman correlation between D and the per-network
ratio, with a pairs bootstrap interval (networks resampled with replacement); holds if the
interval lies above 0.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from circeff.analysis.efficiency import EfficiencyAnalysis
from circeff.analysis.stats import (
    Interval,
    Record,
    check_common,
    percentile_interval,
    require_columns,
    spearman,
    spearman_rows,
)
from circeff.errors import ConfigError
from circeff.theory import optima
from circeff.validate import in_range, positive

__all__ = [
    "RATIO_COLUMNS",
    "AllocationComparison",
    "AllocationPrediction",
    "AllocationRow",
    "MonotonicVerdict",
    "compare_allocation",
    "measured_ratios",
    "monotonic_verdict",
    "pooled_kappa",
    "predict_allocation",
]

RATIO_COLUMNS = ("D", "seed", "g_logit", "m_logit")


@dataclass(frozen=True)
class AllocationPrediction(Record):
    """Theorem D.4's G:M weight ratio at each D (``inf``/``0`` when one circuit takes all).

    ``case``: 1 (winner takes all, q <= kappa) or 2 (power law, q > kappa), the paper's
    numbering; ``theory_case``: the theory layer's name (``winner_take_all``, ``boundary``,
    ``power_law``).
    """

    case: int
    theory_case: str
    q: float
    kappa: float
    exponent: float
    D: tuple[float, ...]
    P_G: tuple[float, ...]
    P_M: tuple[float, ...]
    ratio: tuple[float, ...]


@dataclass(frozen=True)
class AllocationRow(Record):
    """One D: efficiencies, the predicted ratio, and the measured median ratio with interval.

    ``predicted`` says the prediction in words, because JSON has no infinity (``to_dict()``
    turns a winner-take-all ratio into None): ``"G takes all"``, ``"M takes all"``, ``"tie"``
    or ``"mixture"``.
    """

    D: float
    P_G: float
    P_M: float
    predicted_ratio: float
    predicted: str
    measured: Interval
    n_seeds: int
    log_error: float


@dataclass(frozen=True)
class AllocationComparison(Record):
    """Predicted against measured allocation over D, with the fit statistics (module doc)."""

    holds: bool
    case: int
    theory_case: str
    q: float
    kappa: float
    kappa_G: float
    kappa_M: float
    exponent: float
    rows: tuple[AllocationRow, ...]
    spearman: Interval
    median_abs_log_error: float
    winner_agreement: float
    measured_exponent: Interval
    magnitude_holds: bool
    n_dropped: int
    reason: str


@dataclass(frozen=True)
class MonotonicVerdict(Record):
    """Figure 10a: the G:M ratio rises with D (Spearman interval above 0)."""

    holds: bool
    rho: Interval
    n: int
    n_D: int
    reason: str


# ---------------------------------------------------------------------------------------------
# Prediction
# ---------------------------------------------------------------------------------------------


def _in_words(ratio: float) -> str:
    if np.isnan(ratio):
        return "tie"
    if ratio == np.inf:
        return "G takes all"
    return "M takes all" if ratio == 0 else "mixture"


def pooled_kappa(analysis: EfficiencyAnalysis) -> float:
    """Inverse-variance weighted mean of the G and M kappas (interval half-width as scale).

    Superseded (module docstring): the package's comparisons use one kappa per circuit."""
    ks = [analysis.fit_G.kappa, analysis.fit_M.kappa]
    half = np.array([(k.hi - k.lo) / 2 for k in ks])
    values = np.array([k.value for k in ks])
    if not np.isfinite(half).all() or (half <= 0).any():
        return float(values.mean())
    w = 1.0 / half**2
    return float(w @ values / w.sum())


def predict_allocation(D: np.ndarray, P_G: np.ndarray, P_M: np.ndarray, *, q: float = 2.0,
                       kappa: float) -> AllocationPrediction:
    """Theorem D.4's G:M weight ratio at each D, computed by :mod:`circeff.theory.optima`."""
    positive("q", q)
    positive("kappa", kappa)
    D, P_G, P_M = (np.atleast_1d(np.asarray(a, dtype=float)) for a in (D, P_G, P_M))
    if not (D.shape == P_G.shape == P_M.shape):
        raise ConfigError("P_G", "D, P_G and P_M must have the same length", (D.size, P_G.size, P_M.size))
    for name, arr in (("P_G", P_G), ("P_M", P_M)):
        if not (np.isfinite(arr).all() and (arr > 0).all()):
            raise ConfigError(name, "must be finite and > 0", arr.tolist())
    theory_case = optima.which_case(q, kappa)
    # the paper's case 1 ("kappa >= q") includes the boundary q = kappa
    case = 2 if theory_case == optima.POWER_LAW else 1
    ratio = np.array([optima.predicted_ratio(pg, pm, q, kappa) for pg, pm in zip(P_G, P_M)],
                     dtype=float)
    exponent = optima.power_law_exponent(q, kappa) if case == 2 else np.nan
    return AllocationPrediction(case, theory_case, float(q), float(kappa), float(exponent),
                                tuple(D.tolist()),
                                tuple(P_G.tolist()), tuple(P_M.tolist()), tuple(ratio.tolist()))


# ---------------------------------------------------------------------------------------------
# Measurement
# ---------------------------------------------------------------------------------------------


def measured_ratios(rows: object) -> pd.DataFrame:
    """``D, seed, ratio`` per network (conventions for non-positive logits in the module doc)."""
    df = require_columns(rows, RATIO_COLUMNS, numeric=("D", "g_logit", "m_logit"))
    if (df["D"] <= 0).any():
        raise ConfigError("D", "must be > 0", float(df["D"][df["D"] <= 0].iloc[0]))
    g, m = df["g_logit"].to_numpy(), df["m_logit"].to_numpy()
    ratio = np.full(g.size, np.nan)
    both = (g > 0) & (m > 0)
    ratio[both] = g[both] / m[both]
    ratio[(g > 0) & (m <= 0)] = np.inf
    ratio[(g <= 0) & (m > 0)] = 0.0
    out = pd.DataFrame({"D": df["D"], "seed": df["seed"], "ratio": ratio})
    return out[np.isfinite(out["ratio"]) | (out["ratio"] == np.inf)].reset_index(drop=True)


def _median_replicates(ratio_by_D: list[np.ndarray], n_boot: int,
                       rng: np.random.Generator) -> np.ndarray:
    """``[n_boot, n_D]`` medians with seeds resampled within each D."""
    out = np.empty((n_boot, len(ratio_by_D)))
    for j, r in enumerate(ratio_by_D):
        out[:, j] = np.median(r[rng.integers(0, r.size, size=(n_boot, r.size))], axis=1)
    return out


def _slope(x: np.ndarray, Y: np.ndarray) -> np.ndarray:
    xc = x - x.mean()
    return (Y - Y.mean(axis=1, keepdims=True)) @ xc / (xc @ xc)


def compare_allocation(analysis: EfficiencyAnalysis, rows: object, *, q: float = 2.0,
                       kappa: float | None = None, level: float = 0.95, n_boot: int = 2000,
                       seed: int = 0, min_winner_agreement: float = 0.8) -> AllocationComparison:
    """Superseded (module docstring); Theorem D.4's prediction from the P1 fits beside the measured G:M ratios (module doc)."""
    check_common(level=level, n_boot=n_boot, seed=seed)
    in_range("min_winner_agreement", min_winner_agreement, 0.0, 1.0)
    ratios = measured_ratios(rows)
    n_dropped = len(require_columns(rows, RATIO_COLUMNS)) - len(ratios)
    D = np.sort(ratios["D"].unique())
    if D.size < 3:
        raise ConfigError("D", "need at least three distinct D values to compare allocations",
                          D.tolist())
    k = pooled_kappa(analysis) if kappa is None else positive("kappa", kappa)
    P_M = np.exp(analysis.trend_M.log_P(D))
    if analysis.crossover.g_model == "flat":
        P_G = np.full(D.size, np.exp(analysis.crossover.log_P_G))
    else:
        P_G = np.exp(analysis.trend_G.log_P(D))
    pred = predict_allocation(D, P_G, P_M, q=q, kappa=k)
    predicted = np.array(pred.ratio)

    ratio_by_D = [ratios.loc[ratios["D"] == d, "ratio"].to_numpy() for d in D]
    medians = np.array([np.median(r) for r in ratio_by_D])
    reps = _median_replicates(ratio_by_D, n_boot, np.random.default_rng(seed))
    table = []
    for j, d in enumerate(D):
        measured = percentile_interval(medians[j], reps[:, j], level,
                                       "bootstrap percentile (seeds resampled within D)")
        both = np.isfinite([medians[j], predicted[j]]).all() and medians[j] > 0 and predicted[j] > 0
        err = float(np.log(medians[j]) - np.log(predicted[j])) if both else np.nan
        table.append(AllocationRow(float(d), float(P_G[j]), float(P_M[j]), float(predicted[j]),
                                   _in_words(predicted[j]), measured, int(ratio_by_D[j].size), err))

    # rank agreement across D; a constant side gives nan -> 0 (conservative)
    rho_point = spearman(predicted, medians)
    rho_reps = np.nan_to_num(spearman_rows(np.broadcast_to(predicted, reps.shape), reps), nan=0.0)
    rho = percentile_interval(np.nan_to_num(rho_point, nan=0.0), rho_reps, level,
                              "bootstrap percentile (seeds resampled within D)")
    errors = np.array([r.log_error for r in table])
    mael = float(np.median(np.abs(errors[np.isfinite(errors)]))) if np.isfinite(errors).any() else np.nan
    # which side of 1 (G or M larger); nan for a tie prediction never agrees
    same_side = np.sign(predicted - 1.0) == np.sign(medians - 1.0)
    agreement = float(np.mean(same_side))

    log_x = np.log(P_M / P_G)
    valid = (medians > 0) & np.isfinite(medians)
    rep_ok = ((reps > 0) & np.isfinite(reps)).all(axis=1)
    if np.ptp(log_x) > 0 and valid.all() and rep_ok.mean() >= 0.5:
        slope = float(_slope(log_x, np.log(medians)[None, :])[0])
        slopes = _slope(log_x, np.log(reps[rep_ok]))
        exponent_iv = percentile_interval(slope, slopes, level,
                                          "bootstrap percentile (seeds resampled within D)")
    else:
        exponent_iv = Interval(np.nan, -np.inf, np.inf, level, "not estimable")
    magnitude = pred.case == 2 and exponent_iv.contains(pred.exponent)

    if pred.case == 2:
        holds = rho.above(0.0)
        reason = (f"case 2 (q={q:g} > kappa={k:.3g}): Spearman(predicted, measured) {rho.value:.3g} "
                  f"[{rho.lo:.3g}, {rho.hi:.3g}] {'above 0' if holds else 'not above 0'}; "
                  f"exponent predicted {pred.exponent:.3g}, measured {exponent_iv.value:.3g} "
                  f"[{exponent_iv.lo:.3g}, {exponent_iv.hi:.3g}]; median |log error| {mael:.3g}")
    else:
        holds = agreement >= min_winner_agreement
        reason = (f"case 1 (q={q:g} <= kappa={k:.3g}): winner takes all; measured side agrees at "
                  f"{agreement:.0%} of D (needs {min_winner_agreement:.0%})")
    return AllocationComparison(bool(holds), pred.case, pred.theory_case, float(q), float(k),
                                analysis.fit_G.kappa.value, analysis.fit_M.kappa.value,
                                pred.exponent, tuple(table), rho, mael, agreement, exponent_iv,
                                bool(magnitude), int(n_dropped), reason)


def monotonic_verdict(D: np.ndarray, ratio: np.ndarray, *, seed: int = 0, n_boot: int = 2000,
                      level: float = 0.95) -> MonotonicVerdict:
    """Figure 10a: Spearman(D, ratio) over networks with a pairs-bootstrap interval.

    ``ratio`` may hold ``+inf`` and ``0`` (ranked like any value); nan is refused.
    """
    check_common(level=level, n_boot=n_boot, seed=seed)
    D, ratio = np.asarray(D, dtype=float), np.asarray(ratio, dtype=float)
    if D.shape != ratio.shape or D.ndim != 1:
        raise ConfigError("ratio", "must be a 1-d array as long as D", (D.shape, ratio.shape))
    if np.isnan(ratio).any() or (ratio < 0).any():
        raise ConfigError("ratio", "must be >= 0 (inf allowed), no nan", ratio.tolist()[:5])
    n_D = np.unique(D).size
    if n_D < 3:
        raise ConfigError("D", "need at least three distinct D values for a rank correlation",
                          np.unique(D).tolist())
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, D.size, size=(n_boot, D.size))
    reps = np.nan_to_num(spearman_rows(D[idx], ratio[idx]), nan=0.0)
    rho = percentile_interval(spearman(D, ratio), reps, level,
                              "bootstrap percentile (networks resampled)")
    holds = rho.above(0.0)
    reason = (f"Spearman(D, G:M ratio) {rho.value:.3g} [{rho.lo:.3g}, {rho.hi:.3g}] over {D.size} "
              f"networks at {n_D} D values: {'above 0' if holds else 'not above 0'}")
    return MonotonicVerdict(bool(holds), rho, int(D.size), int(n_D), reason)
