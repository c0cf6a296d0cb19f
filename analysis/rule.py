"""What every decision rule shares: the :class:`Verdict` record and its interval helpers.

The rules themselves live beside the statistics they decide on, one module per prediction:
P1 in :mod:`circeff.analysis.efficiency`, P2 and P3 in :mod:`circeff.analysis.ungrokking`, P4
in :mod:`circeff.analysis.semigrokking`, Figure 10a in :mod:`circeff.analysis.fig10`;
:mod:`circeff.analysis.verdicts` lists them by key.

Intervals inside a verdict's ``numbers`` are :class:`~circeff.analysis.stats.Interval` records
(JSON: ``{value, lo, hi, level, method}``); the same type every estimator returns.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy import stats

from circeff.analysis.stats import Interval, to_plain
from circeff.errors import ConfigError

__all__ = ["Verdict", "fmt", "interval", "level_of", "t_interval", "verdict"]


@dataclass(frozen=True)
class Verdict:
    """One prediction's decision: ``holds``, the ``reason`` in words, the ``numbers`` the rule
    used (JSON-safe; intervals as ``{value, lo, hi, level, method}``) and the ``rule``'s
    parameters."""

    key: str            # 'P1','P2','P3','P4','fig10a','allocation'
    holds: bool
    reason: str
    numbers: dict
    rule: dict

    def to_dict(self) -> dict:
        """Plain JSON-ready data (non-finite numbers become None)."""
        return to_plain({"key": self.key, "holds": bool(self.holds), "reason": self.reason,
                         "numbers": self.numbers, "rule": self.rule})

    def with_numbers(self, **numbers: Any) -> Verdict:
        """The same decision with more numbers recorded beside it."""
        return Verdict(self.key, self.holds, self.reason, to_plain({**self.numbers, **numbers}), self.rule)


def interval(value: float, lo: float, hi: float, level: float = math.nan, method: str = "") -> Interval:
    """An :class:`Interval` from plain numbers (``level`` nan where none applies)."""
    return Interval(float(value), float(lo), float(hi), float(level), method)


def fmt(iv: Interval | dict) -> str:
    """``value [lo, hi]`` to three significant figures."""
    if isinstance(iv, dict):
        iv = Interval(iv["value"], iv["lo"], iv["hi"], iv.get("level", math.nan), iv.get("method", ""))
    return f"{iv.value:.3g} [{iv.lo:.3g}, {iv.hi:.3g}]"


def t_interval(value: float, se: float, dof: int, level: float, method: str = "t") -> Interval:
    """``value +- t_{dof} se`` at ``level`` (unbounded when there is no degree of freedom)."""
    if dof < 1 or not np.isfinite(se):
        return interval(value, -np.inf, np.inf, level, method)
    half = float(stats.t.ppf(0.5 + level / 2, dof)) * se
    return interval(value, value - half, value + half, level, method)


def level_of(name: str, value: float) -> float:
    """A confidence level, checked to lie strictly between 0 and 1."""
    if not 0.0 < value < 1.0:
        raise ConfigError(name, "must lie strictly between 0 and 1", value)
    return float(value)


def verdict(key: str, problems: list[str], facts: list[str], numbers: dict, rule: dict) -> Verdict:
    """The verdict of a rule: it holds when no problem was found; the reason lists both."""
    reason = "; ".join(facts + problems)
    return Verdict(key, not problems, reason, to_plain(numbers), to_plain(rule))
