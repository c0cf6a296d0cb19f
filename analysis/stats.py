"""Small statistics shared by the analysis modules: intervals, bootstrap draws, rank correlation,
input checks, and JSON-safe records.

Conventions used by every module of :mod:`circeff.analysis`:

* Logarithms are natural logarithms unless a name says otherwise. A slope in log-log space does
  not depend on the base.
* An interval is an :class:`Interval` ``(value, lo, hi)`` at a confidence ``level`` with the name
  of the ``method`` that produced it. ``lo = -inf`` or ``hi = +inf`` means unbounded on that side;
  ``value = nan`` means no point estimate exists (for example no crossover). ``to_dict()`` turns
  every non-finite number into ``None`` so the result can go to JSON (``allow_nan=False``).
* Every random draw takes a ``seed`` argument (``numpy.random.default_rng(seed)``).
* Percentile intervals use order statistics (``method="inverted_cdf"``) rather than linear
  interpolation, so replicates equal to ``+inf`` (an estimate that does not exist in that
  replicate, e.g. "never crosses") give an honest unbounded end instead of ``nan``.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from circeff.errors import ConfigError
from circeff.thresholds import CONFIDENCE_LEVEL
from circeff.validate import in_range, integer_at_least

__all__ = [
    "Interval",
    "Record",
    "check_common",
    "percentile_interval",
    "require_columns",
    "to_plain",
]


def to_plain(obj: Any) -> Any:
    """Plain Python (dict/list/float/int/str/bool/None) with every nan or inf turned into None."""
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return {f.name: to_plain(getattr(obj, f.name)) for f in dataclasses.fields(obj)}
    if isinstance(obj, Mapping):
        return {str(k): to_plain(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [to_plain(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return [to_plain(v) for v in obj.tolist()]
    if isinstance(obj, (bool, np.bool_)):
        return bool(obj)
    if isinstance(obj, (int, np.integer)):
        return int(obj)
    if isinstance(obj, (float, np.floating)):
        value = float(obj)
        return value if math.isfinite(value) else None
    return obj


class Record:
    """Mixin for the frozen result dataclasses: ``to_dict()`` gives JSON-ready plain data."""

    def to_dict(self) -> dict[str, Any]:
        return to_plain(self)


@dataclass(frozen=True)
class Interval(Record):
    """A point estimate with a two-sided interval at confidence ``level``.

    ``lo``/``hi`` may be infinite (unbounded side); ``value`` may be nan (no estimate).
    """

    value: float
    lo: float
    hi: float
    level: float
    method: str

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Interval:
        """An Interval from its JSON form (None ends are unbounded, a None value is nan)."""
        def num(v: Any, default: float) -> float:
            return default if v is None else float(v)

        return cls(num(d.get("value"), math.nan), num(d.get("lo"), -math.inf), num(d.get("hi"), math.inf),
                   float(d.get("level") or CONFIDENCE_LEVEL), str(d.get("method", "")))

    def contains(self, x: float) -> bool:
        """``lo <= x <= hi``; False when either end is nan."""
        return bool(self.lo <= x <= self.hi)

    def above(self, x: float) -> bool:
        """The whole interval lies strictly above ``x``."""
        return bool(self.lo > x)

    def within(self, lo: float, hi: float) -> bool:
        """The whole interval lies inside ``[lo, hi]``."""
        return bool(lo <= self.lo and self.hi <= hi)

    def overlaps(self, other: Interval) -> bool:
        """The two closed intervals share at least one point (False if either end is nan)."""
        return bool(self.lo <= other.hi and other.lo <= self.hi)

    def map(self, fn: Any, method: str | None = None) -> Interval:
        """Apply a monotone increasing function to all three numbers (e.g. ``np.exp``)."""
        with np.errstate(over="ignore"):
            return Interval(float(fn(self.value)), float(fn(self.lo)), float(fn(self.hi)),
                            self.level, method or self.method)


def check_common(*, level: float, n_boot: int | None = None, seed: int | None = None) -> None:
    """Validate the arguments every estimator shares (one-line ConfigError naming the field)."""
    in_range("level", level, 0.0, 1.0, lo_open=True, hi_open=True)
    if n_boot is not None:
        integer_at_least("n_boot", n_boot, 20)
    if seed is not None:
        integer_at_least("seed", seed, 0)


def require_columns(rows: Any, columns: Iterable[str], *, numeric: Iterable[str] = ()) -> pd.DataFrame:
    """A DataFrame copy of ``rows`` holding ``columns``; numeric ones must be finite numbers.

    Raises ConfigError naming the first missing or non-finite column.
    """
    if not isinstance(rows, pd.DataFrame):
        try:
            rows = pd.DataFrame(rows)
        except (TypeError, ValueError):
            raise ConfigError("rows", "must be a table (DataFrame or list of dicts)",
                              type(rows).__name__) from None
    columns = list(columns)
    missing = [c for c in columns if c not in rows.columns]
    if missing:
        raise ConfigError(missing[0], "column is missing from the rows", sorted(map(str, rows.columns)))
    if len(rows) == 0:
        raise ConfigError("rows", "must not be empty", 0)
    out = rows[columns].copy()
    for col in numeric:
        values = pd.to_numeric(out[col], errors="coerce").to_numpy(dtype=float)
        bad = ~np.isfinite(values)
        if bad.any():
            raise ConfigError(col, "must hold finite numbers", rows[col].iloc[int(np.argmax(bad))])
        out[col] = values
    return out.reset_index(drop=True)


def percentile_interval(value: float, replicates: np.ndarray, level: float,
                        method: str = "bootstrap percentile") -> Interval:
    """Percentile interval of bootstrap ``replicates`` (nan replicates must be removed first)."""
    reps = np.asarray(replicates, dtype=float)
    if reps.size == 0 or np.isnan(reps).any():
        raise ValueError("replicates must be non-empty and nan-free")
    tail = (1.0 - level) / 2.0
    lo, hi = np.quantile(reps, [tail, 1.0 - tail], method="inverted_cdf")
    return Interval(float(value), float(lo), float(hi), float(level), method)
