"""Small validators shared by every frozen config's ``__post_init__``.

Each raises :class:`circeff.errors.ConfigError` naming the field and the allowed range.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import TypeVar

from circeff.errors import ConfigError

V = TypeVar("V")


def _finite_number(field: str, value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ConfigError(field, "must be a number", value)
    if not math.isfinite(value):
        raise ConfigError(field, "must be a finite number", value)
    return float(value)


def positive(field: str, value: object) -> float:
    """Require a finite number > 0."""
    v = _finite_number(field, value)
    if v <= 0:
        raise ConfigError(field, "must be > 0", value)
    return v


def non_negative(field: str, value: object) -> float:
    """Require a finite number >= 0."""
    v = _finite_number(field, value)
    if v < 0:
        raise ConfigError(field, "must be >= 0", value)
    return v


def in_range(field: str, value: object, lo: float, hi: float, *, lo_open: bool = False,
             hi_open: bool = False) -> float:
    """Require lo <= value <= hi (either end may be open)."""
    v = _finite_number(field, value)
    ok_lo = v > lo if lo_open else v >= lo
    ok_hi = v < hi if hi_open else v <= hi
    if not (ok_lo and ok_hi):
        left = "(" if lo_open else "["
        right = ")" if hi_open else "]"
        raise ConfigError(field, f"must be in {left}{lo:g}, {hi:g}{right}", value)
    return v


def integer_at_least(field: str, value: object, lo: int) -> int:
    """Require an int >= lo."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise ConfigError(field, f"must be an integer >= {lo}", value)
    if value < lo:
        raise ConfigError(field, f"must be an integer >= {lo}", value)
    return value


def non_empty(field: str, values: Sequence[object]) -> None:
    """Require a non-empty sequence."""
    if len(values) == 0:
        raise ConfigError(field, "must not be empty", list(values))


def parse_float_list(field: str, text: str) -> tuple[float, ...]:
    """Parse '1.0,1.5,2' into floats; one-line error on anything else."""
    parts = [p.strip() for p in text.split(",")]
    if not text.strip() or any(p == "" for p in parts):
        raise ConfigError(field, "must be a comma-separated list of numbers, e.g. 1.0,1.5", text)
    try:
        return tuple(float(p) for p in parts)
    except ValueError:
        raise ConfigError(field, "must be a comma-separated list of numbers, e.g. 1.0,1.5", text) from None


def parse_int_list(field: str, text: str) -> tuple[int, ...]:
    """Parse '0,1,2' into ints; one-line error on anything else."""
    parts = [p.strip() for p in text.split(",")]
    if not text.strip() or any(p == "" for p in parts):
        raise ConfigError(field, "must be a comma-separated list of integers, e.g. 0,1,2", text)
    try:
        return tuple(int(p) for p in parts)
    except ValueError:
        raise ConfigError(field, "must be a comma-separated list of integers, e.g. 0,1,2", text) from None


def distinct(field: str, values: Sequence[V]) -> Sequence[V]:
    """Require no value twice (``--seeds 0,0`` would train two identical models)."""
    seen = [v for i, v in enumerate(values) if v in values[:i]]
    if seen:
        raise ConfigError(field, f"must not repeat a value ({', '.join(map(str, dict.fromkeys(seen)))} given twice)",
                          ",".join(map(str, values)))
    return values


def one_of(field: str, registry: Mapping[str, V], name: object) -> V:
    """The entry ``registry[name]``; a ConfigError naming ``field`` and the allowed names if unknown."""
    if not isinstance(name, str) or name not in registry:
        raise ConfigError(field, f"must be one of {', '.join(registry)}", name)
    return registry[name]
