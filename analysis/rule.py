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
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
from scipy import stats

from circeff.analysis.stats import Interval, to_plain
from circeff.errors import ConfigError

__all__ = ["OUTCOMES", "Verdict", "criterion", "fmt", "interval", "interval_above_zero", "interval_inside", "level_of",
           "t_interval", "verdict"]

# A verdict says one of three things. "undecided" is for a design that cannot decide (too few
# sizes in a band, too little power), never for a prediction the data contradict.
OUTCOMES = ("holds", "does not hold", "undecided")


@dataclass(frozen=True)
class Verdict:
    """One prediction's decision: ``holds``, the ``reason`` in words, the ``numbers`` the rule
    used (JSON-safe; intervals as ``{value, lo, hi, level, method}``) and the ``rule``'s
    parameters.

    ``undecided`` marks a verdict that does not hold because the design could not decide (its
    :attr:`outcome` is then ``"undecided"``). ``criteria`` are the deciding statistics, each a
    :func:`criterion` record (value, threshold, standard error, side), from which the
    robustness check reads how far the decision is from its threshold; ``robustness`` is that
    check's result once made.
    """

    key: str            # 'P1','P2','P3','P4','fig10a','allocation'
    holds: bool
    reason: str
    numbers: dict
    rule: dict
    undecided: bool = False
    criteria: tuple = ()
    robustness: dict | None = None   # :func:`circeff.analysis.robustness.robustness`, once checked

    def __post_init__(self) -> None:
        if self.holds and self.undecided:
            raise ValueError("a verdict that holds is decided")
        object.__setattr__(self, "criteria", tuple(to_plain(dict(c)) for c in self.criteria))

    @property
    def outcome(self) -> str:
        """``"holds"``, ``"does not hold"`` or ``"undecided"``."""
        return "holds" if self.holds else "undecided" if self.undecided else "does not hold"

    def to_dict(self) -> dict:
        """Plain JSON-ready data (non-finite numbers become None)."""
        return to_plain({"key": self.key, "holds": bool(self.holds), "reason": self.reason,
                         "numbers": self.numbers, "rule": self.rule, "undecided": bool(self.undecided),
                         "criteria": list(self.criteria), "robustness": self.robustness})

    def with_numbers(self, **numbers: Any) -> Verdict:
        """The same decision with more numbers recorded beside it."""
        return replace(self, numbers=to_plain({**self.numbers, **numbers}))


def criterion(name: str, value: float, threshold: float, se: float, passes: str) -> dict:
    """One deciding statistic: it passes when ``value`` is ``passes`` (``"above"`` or
    ``"below"``) ``threshold``; ``margin_se`` is the signed distance in standard errors
    (positive: on the passing side)."""
    if passes not in ("above", "below"):
        raise ValueError(f"passes must be 'above' or 'below', not {passes!r}")
    sign = 1.0 if passes == "above" else -1.0
    margin = sign * (value - threshold) / se if se > 0 and math.isfinite(se) else (
        math.copysign(math.inf, sign * (value - threshold)) if se == 0 and value != threshold else math.nan)
    return {"name": name, "value": float(value), "threshold": float(threshold), "se": float(se),
            "passes": passes, "margin_se": float(margin)}


def interval_above_zero(name: str, iv: Interval, se: float) -> dict:
    """The :func:`criterion` of "``iv``'s lower end lies above 0": its value against the value at
    which the lower end would touch 0."""
    return criterion(name, iv.value, iv.value - iv.lo, se, "above")


def interval_inside(name: str, iv: Interval, bound: float, se: float) -> dict:
    """The :func:`criterion` of "``iv`` lies inside +-``bound``" (an equivalence test): ``|value|``
    against the bound less the interval's half-width."""
    return criterion(name, abs(iv.value), bound - (iv.hi - iv.lo) / 2, se, "below")


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


def verdict(key: str, problems: list[str], facts: list[str], numbers: dict, rule: dict, *,
            undecided: list[str] | tuple[str, ...] = (), criteria: list[dict] | tuple[dict, ...] = ()) -> Verdict:
    """The verdict of a rule: it holds when no problem was found and the design could decide;
    it is undecided when the only problems are ``undecided`` ones (what the design could not
    decide); the reason lists all of them."""
    reason = "; ".join(facts + problems + [f"undecided: {u}" for u in undecided])
    return Verdict(key, not problems and not undecided, reason, to_plain(numbers), to_plain(rule),
                   undecided=bool(undecided) and not problems, criteria=tuple(criteria))
