"""Figure 10a: the G:M correct-logit ratio rises with the dataset size D, and its rule.

Measurement (:func:`measured_ratios`): rows ``D, seed, g_logit, m_logit`` (correct-logit
proxies of networks trained at each D, Appendix B). A network's G:M ratio is
``g_logit / m_logit``; when ``m_logit <= 0 < g_logit`` it is ``+inf`` (no memorisation left),
when ``g_logit <= 0 < m_logit`` it is ``0``, and when both are ``<= 0`` the row is dropped.

Input of the rule (:func:`fig10a`): columns ``D``, ``seed``, ``ratio`` (G:M correct-logit ratio; inf
allowed, nan rows dropped and counted), one row per network.

Spearman's rank correlation of ``ratio`` with ``D`` and its Fisher-z interval at ``level``
(standard error ``sqrt(1.06 / (n - 3))``, Fieller, Hartley and Pearson 1957). Holds when every D
has at least ``min_seeds_per_D`` networks, there are ``min_D`` sizes, and the interval lies
above 0. This is the package's only rule for Figure 10a.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

from circeff.analysis.rule import Verdict, criterion, fmt, interval, level_of, verdict
from circeff.analysis.stats import require_columns
from circeff.errors import ConfigError
from circeff.thresholds import CONFIDENCE_LEVEL

__all__ = ["FIG10A_COLUMNS", "RATIO_COLUMNS", "fig10a", "logit_ratio", "measured_ratios"]

FIG10A_COLUMNS = ("D", "seed", "ratio")
RATIO_COLUMNS = ("D", "seed", "g_logit", "m_logit")


def logit_ratio(g_logit: np.ndarray | float, m_logit: np.ndarray | float) -> np.ndarray:
    """The G:M ratio ``g / m``; a circuit at or below 0 counts as absent: ``inf`` when only G is
    left, ``0`` when only M is, nan when neither (the package's one convention)."""
    g, m = np.asarray(g_logit, dtype=float), np.asarray(m_logit, dtype=float)
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = np.where((g > 0) & (m > 0), g / m, np.nan)
    return np.where((g > 0) & (m <= 0), np.inf, np.where((g <= 0) & (m > 0), 0.0, ratio))


def measured_ratios(rows: object) -> pd.DataFrame:
    """``D, seed, ratio`` per network (:func:`logit_ratio`; rows where neither circuit is left
    are dropped)."""
    df = require_columns(rows, RATIO_COLUMNS, numeric=("D", "g_logit", "m_logit"))
    if (df["D"] <= 0).any():
        raise ConfigError("D", "must be > 0", float(df["D"][df["D"] <= 0].iloc[0]))
    ratio = logit_ratio(df["g_logit"].to_numpy(), df["m_logit"].to_numpy())
    out = pd.DataFrame({"D": df["D"], "seed": df["seed"], "ratio": ratio})
    return out[np.isfinite(out["ratio"]) | (out["ratio"] == np.inf)].reset_index(drop=True)


def fig10a(table: Any, *, level: float = CONFIDENCE_LEVEL, min_seeds_per_D: int = 3, min_D: int = 3) -> Verdict:
    """Figure 10a: the G:M ratio rises monotonically with D (Spearman, Fisher-z interval)."""
    rule = {"level": level_of("level", level), "min_seeds_per_D": int(min_seeds_per_D), "min_D": int(min_D),
            "statistic": "Spearman rank correlation of ratio with D",
            "interval": "Fisher z, se sqrt(1.06 / (n - 3))"}
    df = require_columns(table, FIG10A_COLUMNS, numeric=("D",))
    ratio = pd.to_numeric(df["ratio"], errors="coerce").to_numpy(dtype=float)
    keep = ~np.isnan(ratio)
    df, ratio = df[keep].reset_index(drop=True), ratio[keep]
    problems, facts, undecided = [], [], []
    per_D = df.assign(ratio=ratio).groupby("D")["ratio"].agg(["median", "size"])
    numbers: dict[str, Any] = {"n": int(len(df)), "n_dropped": int((~keep).sum()),
                               "median_by_D": [{"D": float(d), "ratio": float(r["median"]), "n": int(r["size"])}
                                               for d, r in per_D.iterrows()]}
    thin = per_D.index[per_D["size"] < min_seeds_per_D].tolist()
    if thin:
        undecided.append(f"fewer than {min_seeds_per_D} networks at D = {', '.join(f'{d:g}' for d in thin)}")
    if len(per_D) < min_D:
        undecided.append(f"{len(per_D)} distinct D (needs {min_D})")
    n = len(df)
    if n < 4 or len(per_D) < 2:
        undecided.append("too few networks for a rank correlation")
        return verdict("fig10a", problems, facts, numbers, rule, undecided=undecided)
    rho = float(stats.spearmanr(df["D"].to_numpy(dtype=float), ratio).statistic)
    z, se = np.arctanh(np.clip(rho, -0.999999, 0.999999)), math.sqrt(1.06 / (n - 3))
    zq = float(stats.norm.ppf(0.5 + level / 2))
    rho_iv = interval(rho, math.tanh(z - zq * se), math.tanh(z + zq * se), level, "Fisher z")
    numbers["spearman"] = rho_iv
    above = rho_iv.above(0.0)
    criteria = [criterion("Spearman above 0", float(z), zq * se, se, "above")]
    facts.append(f"Spearman(D, ratio) {fmt(rho_iv)} over {n} networks at {len(per_D)} D "
                 + ("above 0" if above else "not above 0"))
    if not above:
        problems.append("no monotone rise shown")
    return verdict("fig10a", problems, facts, numbers, rule, undecided=undecided, criteria=criteria)
