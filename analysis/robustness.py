"""Robust or fragile: whether a verdict survives the changes that should not change it.

A verdict is **robust** when all four checks pass, and **fragile** otherwise (a fragile verdict
is reported as such, beside its outcome, never hidden):

``leave_one_seed_out``
    The rule gives the same outcome on the table without each seed in turn.
``float_order``
    A second run that differs only in the order of floating-point sums (the engine's block
    size: ``circeff reproduce --float-check``) gives the same outcome. When no second run was
    made the check is *not run*, and the verdict cannot be called robust.
``margin``
    The deciding statistic lies at least ``min_margin_se`` standard errors past its threshold
    (the rule's :func:`~circeff.analysis.rule.criterion` records; a statistic without a standard
    error of its own takes the jackknife one over the leave-one-seed-out subsets): for a verdict that holds,
    every criterion; for one that does not hold, at least one failing criterion. An undecided
    verdict decided nothing, so there is no threshold to be near (the check passes, saying so).
``seeds``
    The table holds at least two distinct seeds, and where a verdict counts runs
    (``numbers["count_seeds"]``), the counted runs come from at least two seeds.

A verdict may carry further checks that only it can make (:func:`with_check`); each must pass
too. The ungrokking verdicts carry ``decay_budget``: D_crit, read again at larger decay budgets,
moves by at most the stated drift from the budget the verdict was decided at
(:func:`decay_budget`). A verdict decided while D_crit is still moving is fragile, whatever
it says.

Everything here is a pure function of a rule, its table and its verdict.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import replace
from typing import Any

import numpy as np
import pandas as pd

from circeff.analysis.rule import Verdict
from circeff.analysis.stats import to_plain
from circeff.errors import ConfigError, RunError

__all__ = ["CHECKS", "MIN_MARGIN_SE", "decay_budget", "float_order", "jackknife_se", "label", "leave_one_seed_out", "margin", "robustness",
           "seeds", "with_check", "with_float_order"]

CHECKS = ("leave_one_seed_out", "float_order", "margin", "seeds")
MIN_MARGIN_SE = 1.0


def _check(passed: bool | None, detail: str, **extra: Any) -> dict:
    """``passed`` is None for a check that was not run."""
    return to_plain({"passed": passed, "detail": detail, **extra})


def leave_one_seed_out(decide: Callable[..., Verdict], table: pd.DataFrame, outcome: str, *,
                       seed_column: str = "seed", **kwargs: Any) -> dict:
    """The outcome of ``decide`` (a rule) on ``table`` without each seed in turn (an error
    counts as a change)."""
    found = sorted(pd.unique(table[seed_column]))
    if len(found) < 2:
        return _check(False, f"{len(found)} seed: none can be left out")
    outcomes: dict[str, str] = {}
    values: dict[str, list[float]] = {}
    for s in found:
        try:
            v = decide(table[table[seed_column] != s].reset_index(drop=True), **kwargs)
        except (ConfigError, RunError, ValueError) as exc:
            outcomes[str(s)] = f"error: {exc}"
            continue
        outcomes[str(s)] = v.outcome
        for c in v.criteria:
            values.setdefault(c["name"], []).append(c["value"])
    changed = [s for s, o in outcomes.items() if o != outcome]
    detail = (f"same outcome without each of {len(found)} seeds" if not changed else
              "outcome changes without seed " + ", ".join(f"{s} ({outcomes[s]})" for s in changed))
    return _check(not changed, detail, outcomes=outcomes, jackknife_se=jackknife_se(values, len(found)))


def jackknife_se(values: dict[str, list[float]], n: int) -> dict[str, float]:
    """The leave-one-seed-out (jackknife) standard error of each criterion seen in all ``n``
    subsets: ``sqrt((n - 1) / n * sum (x_i - mean)^2)``."""
    out = {}
    for name, xs in values.items():
        x = np.asarray(xs, float)
        if x.size == n and n >= 2 and np.all(np.isfinite(x)):
            out[name] = float(np.sqrt((n - 1) / n * np.sum((x - x.mean()) ** 2)))
    return out


def margin(verdict: Verdict, min_margin_se: float = MIN_MARGIN_SE, jackknife: dict[str, float] | None = None) -> dict:
    """Whether the deciding statistic is ``min_margin_se`` standard errors past its threshold.
    A criterion without a standard error of its own takes its ``jackknife`` one (over seeds)."""
    if verdict.outcome == "undecided":
        return _check(True, "undecided: no decision to be near a threshold")
    if not verdict.criteria:
        return _check(False, "the rule recorded no deciding statistic")
    margins = {}
    for c in verdict.criteria:
        m = c["margin_se"]
        if (m is None or m != m) and (jackknife or {}).get(c["name"], 0) > 0:
            sign = 1.0 if c["passes"] == "above" else -1.0
            m = sign * (c["value"] - c["threshold"]) / jackknife[c["name"]]
        margins[c["name"]] = m
    known = {k: m for k, m in margins.items() if m is not None and m == m}
    if verdict.holds:
        if len(known) < len(margins):
            return _check(False, "a deciding statistic has no standard error", margins_se=margins)
        name = min(known, key=known.get)
        ok = known[name] >= min_margin_se
        return _check(ok, f"closest: {name} {known[name]:.2f} SE on the passing side "
                          f"(needs {min_margin_se:g})", margins_se=margins)
    failing = {k: -m for k, m in known.items() if m < 0}
    if not failing:
        return _check(False, "no failing statistic with a standard error decides it", margins_se=margins)
    name = max(failing, key=failing.get)
    ok = failing[name] >= min_margin_se
    return _check(ok, f"clearest failure: {name} {failing[name]:.2f} SE past its threshold "
                      f"(needs {min_margin_se:g})", margins_se=margins)


def seeds(table: pd.DataFrame, verdict: Verdict, seed_column: str = "seed") -> dict:
    """At least two seeds in the table, and in the counted runs where the verdict counts."""
    n = int(pd.Series(table[seed_column]).nunique())
    counted = verdict.numbers.get("count_seeds")
    if n < 2:
        return _check(False, f"the table holds {n} seed")
    if counted is not None and verdict.holds and int(counted) < 2:
        return _check(False, f"the counted runs come from {int(counted)} seed (of {n})")
    return _check(True, f"{n} seeds" + (f"; counted runs from {int(counted)}" if counted is not None else ""))


def float_order(outcome: str, other: Verdict | None) -> dict:
    """Whether a second run with another order of floating-point sums gives ``outcome``."""
    if other is None:
        return _check(None, "not run (circeff reproduce --float-check runs it)")
    if other.numbers.get("stage_failed"):
        # an outcome the second run never decided cannot agree with the first, even when both read "undecided"
        return _check(None, f"not decided: the second run's stage failed ({other.reason})")
    same = other.outcome == outcome
    return _check(same, f"second order: {other.outcome}", other_outcome=other.outcome)


def decay_budget(efolds: Sequence[float], d_crit: Sequence[float], at: float, max_drift: float) -> dict:
    """Whether D_crit has stopped moving at the decay budget ``at`` (e-folds): measured at ``at``
    and at one or more larger budgets (``efolds``, ``d_crit``: one value per budget), it moves
    by at most ``max_drift`` (relative) from ``at`` to every larger one. Not run (None) where
    no value at ``at`` or none beyond it was measured."""
    pairs = sorted((float(e), float(d)) for e, d in zip(efolds, d_crit) if np.isfinite(d))
    here = [d for e, d in pairs if np.isclose(e, at, rtol=1e-6)]
    later = [(e, d) for e, d in pairs if e > at * (1 + 1e-6)]
    if not here or not later:
        return _check(None, f"not measured: D_crit at {at:.3g} e-folds and at a larger budget are needed")
    drifts = [(e, d / here[0] - 1) for e, d in later]
    worst = max(abs(x) for _, x in drifts)
    text = ", ".join(f"{x:+.1%} at {e:.3g}" for e, x in drifts)
    return _check(bool(worst <= max_drift), f"D_crit {here[0]:.4g} at {at:.3g} e-folds moves {text} "
                                            f"(converged: at most {max_drift:.0%})", max_drift_seen=worst)


def label(checks: dict[str, dict]) -> str:
    """``"robust"`` when every check passed (the four of :data:`CHECKS` and any further one
    the verdict carries), else ``"fragile"``."""
    return "robust" if all(checks.get(k, {}).get("passed") is True for k in (*CHECKS, *checks)) else "fragile"


def _with_checks(verdict: Verdict, checks: dict[str, dict]) -> Verdict:
    failed = [k for k in dict.fromkeys((*CHECKS, *checks)) if checks[k]["passed"] is not True]
    return replace(verdict, robustness=to_plain({"label": label(checks), "not_passed": failed, "checks": checks}))


def robustness(decide: Callable[..., Verdict] | None, table: pd.DataFrame, verdict: Verdict, *,
               seed_column: str = "seed", min_margin_se: float = MIN_MARGIN_SE, **kwargs: Any) -> Verdict:
    """``verdict`` with its ``robustness``: the checks this run can make (``decide``, the rule,
    applied to ``table`` with ``kwargs``, less each seed; None where the verdict has no single
    rule and table, which then fails the check), the float-order check not yet run."""
    loso = (leave_one_seed_out(decide, table, verdict.outcome, seed_column=seed_column, **kwargs)
            if decide is not None else _check(False, "no single rule and table to rerun without a seed"))
    checks = {"leave_one_seed_out": loso, "float_order": float_order(verdict.outcome, None),
              "margin": margin(verdict, min_margin_se, loso.get("jackknife_se")),
              "seeds": seeds(table, verdict, seed_column)}
    return _with_checks(verdict, checks)


def with_check(verdict: Verdict, name: str, check: dict) -> Verdict:
    """``verdict`` with the robustness check ``name`` made (one of :data:`CHECKS`, or a
    further check only this verdict can make)."""
    checks = dict((verdict.robustness or {}).get("checks") or {})
    for k in CHECKS:
        checks.setdefault(k, _check(False, "not checked"))
    checks[name] = check
    return _with_checks(verdict, checks)


def with_float_order(verdict: Verdict, other: Verdict | None) -> Verdict:
    """``verdict`` with the float-order check made against ``other`` (the second run's verdict)."""
    return with_check(verdict, "float_order", float_order(verdict.outcome, other))
