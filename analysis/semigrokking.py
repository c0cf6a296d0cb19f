"""Prediction P4 (semi-grokking): the one classifier of a run's trajectory, and the rule.

Input: one row per evaluation with columns ``D``, ``seed``, ``step``, ``train_acc`` and
``test_acc``; a run is a (D, seed). Test accuracy is read as a fraction of the way from chance
to 1 (``scaled``).

Time scales (:func:`timescales`)
--------------------------------
On the test accuracy smoothed by a trailing median of ``smooth`` evaluations:

* ``memorised_step``: the first evaluation with train accuracy >= ``min_train_acc``;
* ``onset_step``: the first evaluation after it at which the smoothed scaled test accuracy
  has risen at least ``onset_rise`` above its value at ``memorised_step``;
* ``final_scaled``: the mean scaled test accuracy over the tail (the last ``tail_fraction`` of
  the run's steps), and ``tail_change``: the Theil-Sen slope of the tail's scaled test accuracy
  times the tail's step span (how far it moved across the tail).

Classifier (:func:`classify_run`): the paper's definition, in order
-------------------------------------------------------------------
Semi-grokking is a form of grokking (Section 5.3): the network first fits its training set,
then after a delay its test accuracy rises, and it stays at a middling value. A run is **semi**
when all of these hold:

1. it memorises first: train accuracy reaches ``min_train_acc``, and the scaled test accuracy at
   that step is still below ``band[0]``;
2. the delay: test accuracy starts to rise (``onset_step``) no earlier than ``min_delay_ratio``
   times ``memorised_step``;
3. the plateau: over the tail, train accuracy stays >= ``min_train_acc``, the scaled test
   accuracy's mean lies inside ``band`` and it moves by at most ``max_tail_change``.

Otherwise it is **grokked** (settled above ``band``), **ungeneralised** (settled below it),
**no_delay** (a settled middling plateau that fails 1 or 2: middling accuracy reached with the
training set, not after it) or **unsettled** (still moving, or not fitting its training set).

Transient semi-grokking (any class, counted separately): a window of ``plateau_min_fraction``
of the evaluations whose scaled accuracy has its median in ``band`` and its 10-90% spread at
most ``plateau_spread``, in a run that ends at least ``rise_min`` higher (the paper's run at
D = 1532 in Figure 6 sat at middling accuracy and later generalised).

Rule (:func:`p4`)
-----------------
P4 holds when at least ``min_semi`` runs are semi-grokked and two of them differ in both seed
and dataset size (one run, or copies of one seed or one size, are not enough). The count also
gets a Clopper-Pearson interval at ``level``, and :func:`p4_power` gives the design's power:
the probability that the rule holds if every run semi-groks independently with probability p.

Sizes (:func:`p4_sizes`): ``n_sizes`` evenly spaced in ``[low_factor, high_factor] x D_crit``,
from the same run's ungrokking D_crit (the paper: 20 sizes evenly spaced in a window somewhat
above its D_crit estimate).

From-scratch threshold (:func:`from_scratch_threshold`): D_up, the midpoint of final test
accuracy against D for these runs, by the same estimator as the ungrokking D_crit
(:func:`circeff.analysis.ungrokking.estimate_dcrit`); censored (an interval with no point) when
no run or every run grokked. :func:`threshold_bracket` compares the
theory's order D_down (ungrokking) <= D_cross (efficiency crossover) <= D_up.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

from circeff.analysis.rule import Verdict, criterion, fmt, interval, level_of, verdict
from circeff.analysis.stats import Interval, Record, require_columns, to_plain
from circeff.errors import ConfigError, RunError
from circeff.thresholds import CONFIDENCE_LEVEL, MEMORISED_TRAIN_ACC, N_BOOT
from circeff.validate import in_range, integer_at_least

__all__ = ["LABELS", "P4_COLUMNS", "POWER_AT", "P4Rule", "RunClass", "Timescales", "classify_run", "classify_runs",
           "design_power", "from_scratch_threshold", "p4", "p4_power", "p4_sizes", "threshold_bracket", "timescales"]

P4_COLUMNS = ("D", "seed", "step", "train_acc", "test_acc")
LABELS = ("grokked", "semi", "no_delay", "ungeneralised", "unsettled")
# the per-run semi-grokking probabilities at which a design's power is stated
POWER_AT = (0.05, 0.1)


@dataclass(frozen=True)
class P4Rule:
    """The settings of the semi-grokking classifier and rule (module doc), stated once.

    The defaults were declared after the pilot (``circeff experiment semigrokking-pilot``) and
    before the main design ran: in the pilot every run fitted its training set within the
    first few hundred steps, and test accuracy moved only thousands of steps later.
    """

    min_train_acc: float = MEMORISED_TRAIN_ACC
    band: tuple[float, float] = (0.2, 0.8)
    min_delay_ratio: float = 2.0
    onset_rise: float = 0.1
    smooth: int = 5
    tail_fraction: float = 1 / 3
    max_tail_change: float = 0.05
    plateau_min_fraction: float = 0.1
    plateau_spread: float = 0.1
    rise_min: float = 0.2
    min_semi: int = 2
    level: float = CONFIDENCE_LEVEL
    # too few semi-grokked runs say "does not hold" only where the design could have seen them:
    # power (p4_power) at least min_power when each run semi-groks with probability power_rate
    power_rate: float = 0.1
    min_power: float = 0.8

    def __post_init__(self) -> None:
        lo, hi = self.band
        if not 0 <= lo < hi <= 1:
            raise ConfigError("band", "must satisfy 0 <= low < high <= 1", self.band)
        for name in ("min_train_acc", "tail_fraction", "onset_rise", "max_tail_change", "plateau_min_fraction",
                     "plateau_spread", "rise_min"):
            in_range(name, getattr(self, name), 0.0, 1.0, lo_open=True)
        in_range("min_delay_ratio", self.min_delay_ratio, 1.0, math.inf)
        integer_at_least("smooth", self.smooth, 1)
        integer_at_least("min_semi", self.min_semi, 2)
        level_of("level", self.level)
        in_range("power_rate", self.power_rate, 0.0, 1.0, lo_open=True)
        in_range("min_power", self.min_power, 0.0, 1.0)

    def to_dict(self) -> dict[str, Any]:
        return to_plain(asdict(self)) | {
            "band_scale": "fraction of the way from chance to 1", "interval": "Clopper-Pearson",
            "tail_change": "Theil-Sen slope of the tail's scaled test accuracy x the tail's step span",
            "holds_when": f"at least {self.min_semi} semi-grokked runs, two of them from distinct seeds and distinct "
                          "sizes",
            "undecided_when": f"it does not hold and the design's power is below {self.min_power:g} where each run "
                              f"semi-groks with probability {self.power_rate:g}"}


@dataclass(frozen=True)
class Timescales(Record):
    """When a run fitted its training set, when its test accuracy started to move, where it ended
    (``nan`` where it never did)."""

    memorised_step: float
    scaled_at_memorised: float
    onset_step: float
    final_scaled: float
    final_train_acc: float
    tail_change: float

    @property
    def delay_ratio(self) -> float:
        """``onset_step / memorised_step`` (nan without both; inf when memorised at step 0)."""
        if not (math.isfinite(self.memorised_step) and math.isfinite(self.onset_step)):
            return math.nan
        return self.onset_step / self.memorised_step if self.memorised_step > 0 else math.inf


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
    tail_change: float
    final_train_acc: float
    memorised_step: float
    onset_step: float
    delay_ratio: float
    transient: bool
    plateau_start: float
    plateau_end: float
    plateau_level: float


def _sorted_run(step: Any, train_acc: Any, test_acc: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    order = np.argsort(np.asarray(step, float), kind="stable")
    return (np.asarray(step, float)[order], np.asarray(train_acc, float)[order],
            np.asarray(test_acc, float)[order])


def _tail(step: np.ndarray, fraction: float) -> np.ndarray:
    span = step[-1] - step[0]
    tail = step >= step[-1] - fraction * span
    if span <= 0 or tail.sum() < 4:
        raise ConfigError("step", f"a run needs at least 4 evaluations in the last {fraction:.3g} of its "
                          f"steps (got {int(tail.sum())} of {int(step.size)})", int(tail.sum()))
    return tail


def timescales(step: Any, train_acc: Any, test_acc: Any, chance: float, rule: P4Rule = P4Rule()) -> Timescales:
    """A run's time scales and tail (module doc); the classifier and the pilot's table both read them."""
    step, train, test = _sorted_run(step, train_acc, test_acc)
    return _timescales(step, train, (test - chance) / (1 - chance), _tail(step, rule.tail_fraction), rule)


def _timescales(step: np.ndarray, train: np.ndarray, scaled: np.ndarray, tail: np.ndarray,
                rule: P4Rule) -> Timescales:
    """:func:`timescales` of a run already sorted by step, its test accuracy scaled."""
    smooth = pd.Series(scaled).rolling(rule.smooth, min_periods=1).median().to_numpy()
    fitted = np.flatnonzero(train >= rule.min_train_acc)
    mem = at_mem = onset = math.nan
    if fitted.size:
        i = int(fitted[0])
        mem, at_mem = float(step[i]), float(smooth[i])
        rose = np.flatnonzero(smooth[i:] >= at_mem + rule.onset_rise)
        onset = float(step[i + rose[0]]) if rose.size else math.nan
    tail_span = step[tail][-1] - step[tail][0]
    change = float(stats.theilslopes(scaled[tail], step[tail]).slope * tail_span)
    return Timescales(mem, at_mem, onset, float(scaled[tail].mean()), float(train[tail].mean()), change)


def _label(t: Timescales, rule: P4Rule) -> str:
    settled = abs(t.tail_change) <= rule.max_tail_change
    lo, hi = rule.band
    if not settled:
        return "unsettled"
    if t.final_scaled > hi:
        return "grokked"
    if t.final_scaled < lo:
        return "ungeneralised"
    if t.final_train_acc < rule.min_train_acc:
        return "unsettled"
    memorised_first = math.isfinite(t.memorised_step) and t.scaled_at_memorised < lo
    delayed = t.delay_ratio >= rule.min_delay_ratio     # False when nan (no onset)
    return "semi" if memorised_first and delayed else "no_delay"


def _transient(step: np.ndarray, scaled: np.ndarray, final_scaled: float, chance: float,
               rule: P4Rule) -> tuple[bool, float, float, float]:
    w = max(3, int(math.ceil(rule.plateau_min_fraction * step.size)))
    roll = pd.Series(scaled).rolling(w)
    med, spread = roll.median().to_numpy(), (roll.quantile(0.9) - roll.quantile(0.1)).to_numpy()
    ok = (med >= rule.band[0]) & (med <= rule.band[1]) & (spread <= rule.plateau_spread) & \
         (final_scaled >= med + rule.rise_min)
    if not ok.any():
        return False, math.nan, math.nan, math.nan
    i = int(np.argmax(ok))       # the first window; it ends at evaluation i
    return True, float(step[i - w + 1]), float(step[i]), float(chance + (1 - chance) * med[i])


def classify_run(step: Any, train_acc: Any, test_acc: Any, chance: float, rule: P4Rule = P4Rule(), *,
                 run: str = "", D: float = math.nan, seed: object = "") -> RunClass:
    """One run's class (:data:`LABELS`) and its transient plateau, by the paper's definition."""
    step, train, test = _sorted_run(step, train_acc, test_acc)
    tail, scaled = _tail(step, rule.tail_fraction), (test - chance) / (1 - chance)
    t = _timescales(step, train, scaled, tail, rule)
    transient = _transient(step, scaled, t.final_scaled, chance, rule)
    return RunClass(str(run), float(D), seed, _label(t, rule), float(test[tail].mean()), t.final_scaled,
                    t.tail_change, t.final_train_acc, t.memorised_step, t.onset_step, t.delay_ratio, *transient)


def classify_runs(trajectories: Any, chance: float, rule: P4Rule = P4Rule()) -> tuple[RunClass, ...]:
    """:func:`classify_run` for every (D, seed) of ``trajectories`` (sorted by D, then seed);
    each run is named ``D<D>_s<seed>``."""
    if not 0.0 <= chance < 1.0:
        raise ConfigError("chance", "must lie in [0, 1)", chance)
    df = require_columns(trajectories, P4_COLUMNS, numeric=("D", "step", "train_acc", "test_acc"))
    return tuple(classify_run(g["step"], g["train_acc"], g["test_acc"], chance, rule,
                              run=f"D{int(D):05d}_s{s}", D=float(D), seed=s)
                 for (D, s), g in df.groupby(["D", "seed"], sort=True))


def p4_sizes(d_crit: float, *, n_sizes: int, low_factor: float, high_factor: float) -> tuple[int, ...]:
    """The semi-grokking sizes by rule: ``n_sizes`` evenly spaced in ``[low_factor, high_factor]
    x D_crit`` (from the same run's D_crit, not from calibration), rounded and deduplicated."""
    if not (d_crit > 0 and math.isfinite(d_crit)):
        raise ConfigError("dcrit", "must be a finite number > 0", d_crit)
    if not 0 < low_factor < high_factor:
        raise ConfigError("low_factor", "must satisfy 0 < low_factor < high_factor", low_factor)
    sizes = np.linspace(low_factor * d_crit, high_factor * d_crit, int(n_sizes))
    return tuple(sorted({int(round(s)) for s in sizes}))


def _holds(semi: Sequence[tuple[float, object]], min_semi: int) -> bool:
    """At least ``min_semi`` runs, two of which differ in both size and seed."""
    return len(semi) >= min_semi and any(a[0] != b[0] and a[1] != b[1] for i, a in enumerate(semi)
                                         for b in semi[i + 1:])


def p4_power(n_sizes: int, n_seeds: int, p: float, min_semi: int = 2) -> float:
    """The probability that the P4 rule holds when each of ``n_sizes x n_seeds`` runs semi-groks
    independently with probability ``p`` (exact for ``min_semi = 2``).

    With two or more semi-grokked runs the rule fails only when they all share one seed or all
    share one size; those events are disjoint (a seed and a size share one run), so their
    probabilities add.
    """
    if min_semi != 2:
        raise ConfigError("min_semi", "the exact power is written for 2", min_semi)
    if not 0 <= p <= 1:
        raise ConfigError("p", "must lie in [0, 1]", p)
    n, q = n_sizes * n_seeds, 1 - p

    def two_or_more(m: int) -> float:  # at least two of m runs semi-grok
        return 1 - q ** m - m * p * q ** (m - 1)

    within_one = n_seeds * q ** (n - n_sizes) * two_or_more(n_sizes) + \
        n_sizes * q ** (n - n_seeds) * two_or_more(n_seeds)
    return float(max(0.0, two_or_more(n) - within_one))


def design_power(n_sizes: int, n_seeds: int, min_semi: int = 2) -> dict[str, float]:
    """:func:`p4_power` at the per-run probabilities every page states (:data:`POWER_AT`), keyed ``p=<p>``."""
    return {f"p={p:g}": p4_power(n_sizes, n_seeds, p, min_semi) for p in POWER_AT}


def p4(trajectories: Any, chance: float, d_crit: float | None = None, *, rule: P4Rule = P4Rule(),
       classes: Sequence[RunClass] | None = None) -> Verdict:
    """P4: at least two runs, of distinct seeds and sizes, memorise, then after a delay settle
    on a middling plateau (module doc).

    ``classes``: the runs already classified by :func:`classify_runs` with this ``rule`` (so a
    caller that needs them for a figure does not classify twice).
    """
    if classes is None:
        classes = classify_runs(trajectories, chance, rule)
    labels = [c.label for c in classes]
    n, k = len(classes), labels.count("semi")
    ci = stats.binomtest(k, n).proportion_ci(confidence_level=rule.level, method="exact")
    counts = {lab: labels.count(lab) for lab in LABELS}
    semi = [(c.D, c.seed) for c in classes if c.label == "semi"]
    sizes, seeds = sorted({c.D for c in classes}), sorted({str(c.seed) for c in classes})
    numbers: dict[str, Any] = {
        "n_runs": n, "n_semi": k, "counts": counts,
        "semi_fraction": interval(k / n, ci.low, ci.high, rule.level, "Clopper-Pearson"),
        "n_transient": int(sum(c.transient for c in classes)),
        "semi_runs": [{"D": c.D, "seed": c.seed, "final_test_acc": c.final_test_acc, "tail_change": c.tail_change,
                       "delay_ratio": c.delay_ratio} for c in classes if c.label == "semi"],
        "transient_runs": [{"D": c.D, "seed": c.seed, "plateau_level": c.plateau_level, "label": c.label}
                           for c in classes if c.transient],
        "sizes": sizes, "n_seeds": len(seeds),
        "power": design_power(len(sizes), len(seeds), rule.min_semi)}
    if d_crit is not None:
        numbers["D_crit"] = float(d_crit)
        numbers["sizes_over_D_crit"] = [s / d_crit for s in sizes]
    facts = [f"{k} of {n} runs semi-grokked (memorised, then after a delay settled at middling accuracy), "
             f"fraction {fmt(numbers['semi_fraction'])}; "
             + ", ".join(f"{lab} {counts[lab]}" for lab in LABELS if lab != "semi")
             + f"; {numbers['n_transient']} transient plateaus"]
    numbers["count_seeds"] = len({str(sd) for _, sd in semi})
    # the count against its threshold (min_semi - 1/2 between the integers), in binomial standard
    # errors of a count at the observed rate (k + 1/2) / (n + 1), which is never 0
    rate = (k + 0.5) / (n + 1)
    criteria = [criterion("semi runs above minimum", k, rule.min_semi - 0.5, math.sqrt(n * rate * (1 - rate)),
                          "above")]
    problems = [] if _holds(semi, rule.min_semi) else [
        f"{k} semi-grokked run(s): the rule needs at least {rule.min_semi}, two of them from distinct seeds and "
        f"distinct sizes (power of this {len(sizes)} x {len(seeds)} design: "
        + ", ".join(f"{p} {v:.2f}" for p, v in numbers["power"].items()) + ")"]
    power = p4_power(len(sizes), len(seeds), rule.power_rate, rule.min_semi)
    numbers["power_at_rule_rate"] = power
    undecided: list[str] = []
    if problems and power < rule.min_power:
        # a design that would miss semi-grokking at this rate cannot show that it is absent
        undecided = [problems.pop() + f"; this design has power {power:.2f} (< {rule.min_power:g}) where each run "
                     f"semi-groks with probability {rule.power_rate:g}, so it cannot show that semi-grokking is "
                     "absent"]
    return verdict("P4", problems, facts, numbers, rule.to_dict(), criteria=criteria, undecided=undecided)


def from_scratch_threshold(classes: Sequence[RunClass], chance: float, *, level: float = CONFIDENCE_LEVEL,
                           n_boot: int = N_BOOT, seed: int = 0) -> tuple[Interval, Any, str]:
    """D_up, the from-scratch threshold: ``(interval, estimate, note)``.

    When some but not all sizes grok, the midpoint of final test accuracy against D, by the
    ungrokking D_crit estimator (``estimate`` is its
    :class:`~circeff.analysis.ungrokking.DcritEstimate`). When no run grokked, D_up lies above the
    largest size (interval ``(nan, D_max, inf)``); when every run grokked, below the smallest
    (``(nan, 0, D_min)``); ``note`` says so.
    """
    from circeff.analysis.ungrokking import estimate_dcrit

    sizes = sorted({c.D for c in classes})
    grokked = [c.D for c in classes if c.label == "grokked"]
    if not grokked:
        return (interval(math.nan, sizes[-1], math.inf, level, "censored: no run grokked"), None,
                f"no run grokked from scratch: D_up lies above the largest size, {sizes[-1]:g}")
    if len(grokked) == len(classes):
        return (interval(math.nan, 0.0, sizes[0], level, "censored: every run grokked"), None,
                f"every run grokked from scratch: D_up lies below the smallest size, {sizes[0]:g}")
    rows = pd.DataFrame({"D": [c.D for c in classes], "seed": [str(c.seed) for c in classes],
                         "weight_decay": 0.0, "final_test_acc": [c.final_test_acc for c in classes]})
    try:
        est = estimate_dcrit(rows, chance=chance, level=level, n_boot=n_boot, seed=seed)
    except (ConfigError, RunError) as exc:
        return (interval(math.nan, sizes[0], sizes[-1], level, "censored: no transition fit"), None,
                f"D_up lies inside the sizes, but the transition could not be fitted ({exc})")
    if est.at_bound:
        return (interval(math.nan, sizes[0], sizes[-1], level, "censored: midpoint at the edge of the sizes"), est,
                "the from-scratch midpoint lies at the edge of the sizes: D_up is only bounded by them")
    return est.D_crit, est, ""


def _order(low: Interval, high: Interval) -> str:
    """``low <= high``: holds (points in order, or the intervals separated in order), does not
    hold (``low``'s interval wholly above ``high``'s), or undecided (points reversed but the
    intervals overlap, or a censored end that cannot tell)."""
    if low.lo > high.hi:
        return "does not hold"
    if low.hi <= high.lo or (math.isfinite(low.value) and math.isfinite(high.value) and low.value <= high.value):
        return "holds"
    return "undecided"


def threshold_bracket(d_down: Interval | None, d_cross: Interval | None, d_up: Interval | None) -> dict[str, Any]:
    """The theory's order D_down <= D_cross <= D_up (and D_down <= D_up), each inequality
    holds / does not hold / undecided (points reversed but intervals overlapping, or missing)."""
    named = {"D_down": d_down, "D_cross": d_cross, "D_up": d_up}
    out: dict[str, Any] = {k: (v.to_dict() if v is not None else None) for k, v in named.items()}
    for a, b in (("D_down", "D_cross"), ("D_cross", "D_up"), ("D_down", "D_up")):
        x, y = named[a], named[b]
        out[f"{a} <= {b}"] = _order(x, y) if x is not None and y is not None else "undecided"
    return out
