"""Describe test-accuracy trajectories (Figures 5 and 6): grokked, semi-grokked, ungeneralised, and
transient plateaus for the figure. P4 itself is decided by :func:`circeff.analysis.verdicts.p4`.

Input: rows ``run, step, test_acc`` (one row per evaluation of one run; steps need not be evenly
spaced). Every threshold is a field of :class:`SemiGrokThresholds`; the defaults:

* ``final`` = mean test accuracy over the tail, the last ``tail_fraction`` (0.2) of the run's step
  span (by step, not by number of points, so log-spaced evaluations are handled).
* **grokked**: ``final >= grokked_at`` (0.95).
* **ungeneralised**: ``final < band[0]`` (0.2). With P = 113 chance is 0.009; 0.2 is well below
  the middling values the paper reports (0.55-0.7), so "near chance" errs towards not calling a
  run semi.
* **semi**: ``band[0] <= final <= band[1]`` (``[0.2, 0.9]``), the tail is stable (its spread,
  the 90th minus the 10th percentile of the tail, is at most ``stable_spread``, 0.1) and the
  rise came after a delay: the onset (first step
  where the accuracy reaches half of ``final``) lies at least ``min_delay_fraction`` (0.05) of the
  step span after the first step. A run that starts middling is not semi-grokking.
* **unsettled**: everything else (middling but unstable or without a delay, or between
  ``band[1]`` and ``grokked_at``).

Transient plateau (any class): after an optional rolling median over ``smooth`` points (1 = off),
the trajectory is cut greedily into level stretches: a stretch keeps the points within
``plateau_tol`` (0.05) of the running mean of its points and ends when ``patience`` (3) points in
a row fall outside (so single noisy evaluations do not break it). A stretch is a transient plateau when its median lies in ``band``, it
lasts at least ``plateau_min_fraction`` (0.1) of the step span, and the run settles higher: its
``final`` accuracy is at least ``rise_min`` (0.2) above the plateau level (so a passing spike does
not count, a second, higher plateau does). The first such stretch is reported.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from circeff.analysis.stats import Record, require_columns
from circeff.errors import ConfigError
from circeff.validate import in_range, integer_at_least

__all__ = [
    "LABELS",
    "SemiGrokThresholds",
    "TrajectoryClass",
    "classify_runs",
    "classify_trajectory",
]

LABELS = ("grokked", "semi", "ungeneralised", "unsettled")


@dataclass(frozen=True)
class SemiGrokThresholds(Record):
    """Thresholds of the classifier (see the module docstring for their meaning)."""

    grokked_at: float = 0.95
    band: tuple[float, float] = (0.2, 0.9)
    tail_fraction: float = 0.2
    stable_spread: float = 0.1
    min_delay_fraction: float = 0.05
    onset_fraction: float = 0.5
    plateau_tol: float = 0.05
    plateau_min_fraction: float = 0.1
    rise_min: float = 0.2
    patience: int = 3
    smooth: int = 1

    def __post_init__(self) -> None:
        in_range("grokked_at", self.grokked_at, 0.0, 1.0, lo_open=True)
        if len(self.band) != 2:
            raise ConfigError("band", "must be a pair (low, high)", self.band)
        in_range("band", self.band[0], 0.0, 1.0)
        in_range("band", self.band[1], self.band[0], self.grokked_at, lo_open=True)
        in_range("tail_fraction", self.tail_fraction, 0.0, 1.0, lo_open=True)
        in_range("stable_spread", self.stable_spread, 0.0, 1.0)
        in_range("min_delay_fraction", self.min_delay_fraction, 0.0, 1.0, hi_open=True)
        in_range("onset_fraction", self.onset_fraction, 0.0, 1.0, lo_open=True)
        in_range("plateau_tol", self.plateau_tol, 0.0, 1.0, lo_open=True)
        in_range("plateau_min_fraction", self.plateau_min_fraction, 0.0, 1.0, lo_open=True)
        in_range("rise_min", self.rise_min, 0.0, 1.0, lo_open=True)
        integer_at_least("patience", self.patience, 1)
        integer_at_least("smooth", self.smooth, 1)


@dataclass(frozen=True)
class TrajectoryClass(Record):
    """The class of one run and the numbers behind it (plateau fields nan when there is none)."""

    run: str
    label: str
    final_acc: float
    tail_spread: float
    onset_step: float
    delayed: bool
    transient_plateau: bool
    plateau_start: float
    plateau_end: float
    plateau_level: float
    reason: str


def _rolling_median(acc: np.ndarray, window: int) -> np.ndarray:
    if window <= 1:
        return acc
    return pd.Series(acc).rolling(window, center=True, min_periods=1).median().to_numpy()


def _stretch_end(values: np.ndarray, start: int, tol: float, patience: int) -> int:
    """One past the last point of the level stretch that begins at ``start``.

    The stretch keeps every point within ``tol`` of the running mean of its points so far and
    ends once ``patience`` points in a row fall outside (isolated noisy points do not end it).
    """
    total, count, last_in, misses = values[start], 1, start, 0
    for j in range(start + 1, values.size):
        if abs(values[j] - total / count) <= tol:
            total, count, last_in, misses = total + values[j], count + 1, j, 0
        else:
            misses += 1
            if misses >= patience:
                break
    return last_in + 1


def _plateau(step: np.ndarray, acc: np.ndarray, final: float,
             th: SemiGrokThresholds) -> tuple[float, float, float] | None:
    span = step[-1] - step[0]
    smooth = _rolling_median(acc, th.smooth)
    i, n = 0, acc.size
    while i < n:
        j = _stretch_end(smooth, i, th.plateau_tol, th.patience)
        level = float(np.median(smooth[i:j]))
        long_enough = step[j - 1] - step[i] >= th.plateau_min_fraction * span
        in_band = th.band[0] <= level <= th.band[1]
        rises = j < n and final >= level + th.rise_min
        if long_enough and in_band and rises:
            return float(step[i]), float(step[j - 1]), level
        i = j
    return None


def classify_trajectory(step: np.ndarray, test_acc: np.ndarray, *, run: str = "",
                        thresholds: SemiGrokThresholds | None = None) -> TrajectoryClass:
    """Class of one trajectory (``step`` increasing; see the module docstring)."""
    th = thresholds or SemiGrokThresholds()
    order = np.argsort(np.asarray(step, dtype=float), kind="stable")
    step = np.asarray(step, dtype=float)[order]
    acc = np.asarray(test_acc, dtype=float)[order]
    if step.size < 3 or step[-1] <= step[0]:
        raise ConfigError("step", "a run needs at least three evaluations over a positive step span",
                          run or step.size)
    span = step[-1] - step[0]
    tail = acc[step >= step[-1] - th.tail_fraction * span]
    final = float(tail.mean())
    # inter-decile range: insensitive to evaluation noise and to the brief spikes the paper
    # reports in semi-grokking runs (Figure 1c), sensitive to drift and to wide oscillation
    tail_spread = float(np.quantile(tail, 0.9) - np.quantile(tail, 0.1))
    reached = np.flatnonzero(acc >= th.onset_fraction * final) if final > 0 else np.array([0])
    onset = float(step[reached[0]])
    delayed = onset - step[0] >= th.min_delay_fraction * span
    plateau = _plateau(step, acc, final, th)
    if final >= th.grokked_at:
        label, why = "grokked", f"final {final:.3g} >= {th.grokked_at:g}"
    elif final < th.band[0]:
        label, why = "ungeneralised", f"final {final:.3g} < {th.band[0]:g}"
    elif final <= th.band[1] and tail_spread <= th.stable_spread and delayed:
        label, why = "semi", (f"final {final:.3g} in [{th.band[0]:g}, {th.band[1]:g}], tail spread "
                              f"{tail_spread:.3g} <= {th.stable_spread:g}, onset at step {onset:g}")
    else:
        problems = []
        if final > th.band[1]:
            problems.append(f"final {final:.3g} between {th.band[1]:g} and {th.grokked_at:g}")
        if tail_spread > th.stable_spread:
            problems.append(f"tail spread {tail_spread:.3g} > {th.stable_spread:g}")
        if not delayed:
            problems.append(f"no delay (onset at step {onset:g})")
        label, why = "unsettled", "; ".join(problems)
    start, end, level = plateau if plateau else (np.nan, np.nan, np.nan)
    if plateau:
        why += f"; transient plateau at {level:.3g} over steps {start:g}-{end:g}"
    return TrajectoryClass(str(run), label, final, tail_spread, onset, bool(delayed),
                           plateau is not None, start, end, level, why)


def classify_runs(rows: object, *, thresholds: SemiGrokThresholds | None = None,
                  run_column: str = "run") -> tuple[TrajectoryClass, ...]:
    """Classify every run in ``rows`` (columns ``run_column, step, test_acc``), sorted by run."""
    df = require_columns(rows, (run_column, "step", "test_acc"), numeric=("step", "test_acc"))
    acc = df["test_acc"]
    if ((acc < 0) | (acc > 1)).any():
        raise ConfigError("test_acc", "must be in [0, 1]", float(acc[(acc < 0) | (acc > 1)].iloc[0]))
    return tuple(classify_trajectory(g["step"].to_numpy(), g["test_acc"].to_numpy(), run=str(run),
                                     thresholds=thresholds)
                 for run, g in df.groupby(run_column, sort=True))
