"""Prediction P4 (semi-grokking): the one classifier of a run's trajectory, and the rule.

Input: one row per evaluation with columns ``D``, ``seed``, ``step``, ``train_acc`` and
``test_acc``; a run is a (D, seed).

Classifier (:func:`classify_run`)
---------------------------------
The tail is the last ``tail_fraction`` of a run's step span. Test accuracy is read as a
fraction of the way from chance to 1 (``scaled``). A run is

* **semi** when it is a converged plateau at middling accuracy: mean tail train accuracy at
  least ``min_train_acc``, the Theil-Sen slope of the tail test accuracy times the run's step
  span (the change one more run-length would bring) within ``+-max_drift``, and the mean tail
  scaled accuracy inside ``band``;
* **grokked** when it is settled above the band, **ungeneralised** when settled below it;
* **unsettled** otherwise (still drifting, or middling without fitting the training set).

A run that is still rising (0.05 to 0.50, linearly) has a drift of 0.45 and is not
semi-grokked. The defaults (the last third, 0.15) put a flat plateau with evaluation noise 0.02
at 61 evaluations more than three standard errors of the drift (0.046) inside the tolerance.

Transient plateau (any class): a window of ``plateau_min_fraction`` of the evaluations whose
scaled accuracy has its median in ``band`` and its 10-90% spread at most ``plateau_spread``,
in a run that ends at least ``rise_min`` higher. The first such window is reported (its steps
and level), and the figure marks it.

Rule (:func:`p4`)
-----------------
The count of semi-grokked runs gets a Clopper-Pearson interval at ``level``; P4 holds when its
lower end lies above ``null_fraction`` (0: at least one run is a converged middling plateau).
Transient plateaus are counted separately.

Sizes (:func:`p4_sizes`): ``n_sizes`` geometrically spaced in ``[low_factor, high_factor] x
D_crit``, from the same run's D_crit (:func:`circeff.analysis.ungrokking.estimate_dcrit`).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

from circeff.analysis.rule import Verdict, fmt, interval, level_of, verdict
from circeff.analysis.stats import Record, require_columns
from circeff.errors import ConfigError
from circeff.thresholds import CONFIDENCE_LEVEL, MEMORISED_TRAIN_ACC

__all__ = ["LABELS", "P4_COLUMNS", "RunClass", "classify_run", "classify_runs", "p4", "p4_sizes"]

P4_COLUMNS = ("D", "seed", "step", "train_acc", "test_acc")
LABELS = ("grokked", "semi", "ungeneralised", "unsettled")


@dataclass(frozen=True)
class RunClass(Record):
    """One run's class and the numbers behind it (plateau fields nan when there is none).

    ``plateau_level`` is in test accuracy (not scaled), so a figure can draw it on the curve.
    """

    run: str
    D: float
    seed: object
    label: str
    final_test_acc: float
    final_scaled: float
    drift: float
    final_train_acc: float
    transient: bool
    plateau_start: float
    plateau_end: float
    plateau_level: float


def classify_run(step: np.ndarray, train_acc: np.ndarray, test_acc: np.ndarray, chance: float, *,
                 run: str = "", D: float = math.nan, seed: object = "",
                 tail_fraction: float = 1 / 3, max_drift: float = 0.15,
                 min_train_acc: float = MEMORISED_TRAIN_ACC, band: tuple[float, float] = (0.2, 0.8),
                 plateau_min_fraction: float = 0.1, plateau_spread: float = 0.1,
                 rise_min: float = 0.2) -> RunClass:
    """One run's class (semi, grokked, ungeneralised, unsettled) and its transient plateau."""
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
    start = end = level = math.nan
    if level_ok.any():
        i = int(np.argmax(level_ok))       # the first window; it ends at evaluation i
        start, end, level = float(step[i - w + 1]), float(step[i]), float(chance + (1 - chance) * med[i])
    return RunClass(str(run), float(D), seed, label, final, final_scaled, drift, float(train[tail].mean()),
                    bool(level_ok.any()), start, end, level)


def classify_runs(trajectories: Any, chance: float, **classifier: Any) -> tuple[RunClass, ...]:
    """:func:`classify_run` for every (D, seed) of ``trajectories`` (sorted by D, then seed);
    each run is named ``D<D>_s<seed>``."""
    if not 0.0 <= chance < 1.0:
        raise ConfigError("chance", "must lie in [0, 1)", chance)
    df = require_columns(trajectories, P4_COLUMNS, numeric=("D", "step", "train_acc", "test_acc"))
    return tuple(classify_run(g["step"].to_numpy(), g["train_acc"].to_numpy(), g["test_acc"].to_numpy(), chance,
                              run=f"D{int(D):05d}_s{s}", D=float(D), seed=s, **classifier)
                 for (D, s), g in df.groupby(["D", "seed"], sort=True))


def p4_sizes(d_crit: float, *, n_sizes: int, low_factor: float, high_factor: float) -> tuple[int, ...]:
    """The semi-grokking sizes by rule: ``n_sizes`` geometrically spaced in
    ``[low_factor, high_factor] x D_crit`` (from the same run's D_crit, not from calibration)."""
    if not (d_crit > 0 and math.isfinite(d_crit)):
        raise ConfigError("dcrit", "must be a finite number > 0", d_crit)
    if not 0 < low_factor < high_factor:
        raise ConfigError("low_factor", "must satisfy 0 < low_factor < high_factor", low_factor)
    sizes = np.geomspace(low_factor * d_crit, high_factor * d_crit, int(n_sizes))
    return tuple(sorted({int(round(s)) for s in sizes}))


def p4(trajectories: Any, chance: float, d_crit: float | None = None, *, classes: Sequence[RunClass] | None = None,
       tail_fraction: float = 1 / 3, max_drift: float = 0.15, min_train_acc: float = MEMORISED_TRAIN_ACC,
       band: tuple[float, float] = (0.2, 0.8), plateau_min_fraction: float = 0.1, plateau_spread: float = 0.1,
       rise_min: float = 0.2, level: float = CONFIDENCE_LEVEL, null_fraction: float = 0.0) -> Verdict:
    """P4: some runs settle on a converged plateau at middling test accuracy (module doc).

    ``classes``: the runs already classified by :func:`classify_runs` with these same
    arguments (so a caller that needs them for a figure does not classify twice).
    """
    rule = {"tail_fraction": float(tail_fraction), "max_drift": float(max_drift),
            "min_train_acc": float(min_train_acc), "band": list(band),
            "band_scale": "fraction of the way from chance to 1",
            "plateau_min_fraction": float(plateau_min_fraction), "plateau_spread": float(plateau_spread),
            "rise_min": float(rise_min), "level": level_of("level", level), "null_fraction": float(null_fraction),
            "interval": "Clopper-Pearson", "drift": "Theil-Sen slope of the tail test accuracy x the step span"}
    if not 0 <= band[0] < band[1] <= 1:
        raise ConfigError("band", "must satisfy 0 <= low < high <= 1", band)
    if classes is None:
        kw = {k: rule[k] for k in ("tail_fraction", "max_drift", "min_train_acc", "plateau_min_fraction",
                                   "plateau_spread", "rise_min")}
        classes = classify_runs(trajectories, chance, band=tuple(band), **kw)
    labels = [c.label for c in classes]
    n, k = len(classes), labels.count("semi")
    ci = stats.binomtest(k, n).proportion_ci(confidence_level=level, method="exact")
    counts = {lab: labels.count(lab) for lab in ("semi", "grokked", "ungeneralised", "unsettled")}
    numbers: dict[str, Any] = {"n_runs": n, "n_semi": k, "counts": counts,
                               "semi_fraction": interval(k / n, ci.low, ci.high, level, "Clopper-Pearson"),
                               "n_transient": int(sum(c.transient for c in classes)),
                               "semi_runs": [{"D": c.D, "seed": c.seed, "final_test_acc": c.final_test_acc,
                                              "drift": c.drift} for c in classes if c.label == "semi"],
                               "sizes": sorted({c.D for c in classes})}
    if d_crit is not None:
        numbers["D_crit"] = float(d_crit)
        numbers["sizes_over_D_crit"] = [s / d_crit for s in numbers["sizes"]]
    facts = [f"{k} of {n} runs semi-grokked, fraction {fmt(numbers['semi_fraction'])}; "
             f"grokked {counts['grokked']}, ungeneralised {counts['ungeneralised']}, unsettled "
             f"{counts['unsettled']}; {numbers['n_transient']} transient plateaus"]
    problems = []
    if not ci.low > null_fraction:
        problems.append(f"the interval's lower end {ci.low:.3g} is not above {null_fraction:g}")
    return verdict("P4", problems, facts, numbers, rule)
