"""Result records of the theorem checkers.

Every route of every claim ends in one :class:`RouteResult` whose ``status`` is one of
``proved`` (sympy established every fact the argument needs), ``verified`` (numbers on
seeded sampled instances agree, no proof), ``refuted`` (a concrete counterexample was
found and is attached), ``undecided`` (sympy could not decide a fact; we say so instead
of claiming a proof) or ``failed`` (the check itself could not be carried out).

A :class:`ClaimResult` combines the routes of one claim and compares the outcome with
what the claim *expects*: most claims are expected to hold, but some (the printed form
of Lemma D.3, and every falsification variant that drops a hypothesis) are expected to
be refuted. Only a mismatch between the two makes ``circeff theory check`` fail.
"""

from __future__ import annotations

import enum
import math
from dataclasses import dataclass, field
from typing import Any


class Status(str, enum.Enum):
    PROVED = "proved"
    VERIFIED = "verified"
    REFUTED = "refuted"
    UNDECIDED = "undecided"
    FAILED = "failed"


HOLDS = "holds"
REFUTED = "refuted"


@dataclass(frozen=True)
class RouteResult:
    """The outcome of one route (``symbolic`` or ``numeric``) of one claim."""

    route: str
    status: Status
    detail: str
    data: dict[str, Any] = field(default_factory=dict)
    counterexample: dict[str, Any] | None = None
    seconds: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return {
            "route": self.route,
            "status": self.status.value,
            "detail": self.detail,
            "data": jsonable(self.data),
            "counterexample": jsonable(self.counterexample),
            "seconds": round(self.seconds, 4),
        }


@dataclass(frozen=True)
class ClaimResult:
    """All routes of one claim, the combined outcome, and whether it is what was expected."""

    claim_id: str
    statement: str
    expected: str
    routes: tuple[RouteResult, ...]
    falsifies: str | None = None

    @property
    def outcome(self) -> Status:
        return combine(self.routes, self.expected)

    @property
    def ok(self) -> bool:
        """True when the outcome is what the claim expects.

        Expected to hold: proved or verified (one undecided route next to a verified
        one is fine; only undecided routes are not). Expected refuted: at least one route
        exhibited a counterexample and no route failed.
        """
        if self.expected == REFUTED:
            return self.outcome is Status.REFUTED
        return self.outcome in (Status.PROVED, Status.VERIFIED)

    @property
    def counterexample(self) -> dict[str, Any] | None:
        for route in self.routes:
            if route.counterexample is not None:
                return route.counterexample
        return None

    def to_dict(self) -> dict[str, Any]:
        return {
            "claim": self.claim_id,
            "statement": self.statement,
            "expected": self.expected,
            "falsifies": self.falsifies,
            "outcome": self.outcome.value,
            "ok": self.ok,
            "counterexample": jsonable(self.counterexample),
            "routes": [r.to_dict() for r in self.routes],
        }


def combine(routes: tuple[RouteResult, ...], expected: str) -> Status:
    """Combine route statuses: failed > refuted > proved > verified > undecided.

    A refutation always wins over a proof of the same statement: a counterexample is a
    fact, a "proof" next to it means the proof's argument is wrong, which the caller sees
    as ``ok == False`` for claims expected to hold.
    """
    statuses = {r.status for r in routes}
    for s in (Status.FAILED, Status.REFUTED, Status.PROVED, Status.VERIFIED):
        if s in statuses:
            return s
    return Status.UNDECIDED


def jsonable(obj: Any) -> Any:
    """Turn numpy scalars/arrays, tuples and non-finite floats into plain JSON values.

    Infinite floats become the strings ``"inf"``/``"-inf"`` and NaN becomes ``None`` so
    that the JSON written with ``allow_nan=False`` stays valid.
    """
    try:
        import numpy as np
    except ImportError:  # pragma: no cover
        np = None
    if obj is None or isinstance(obj, (str, bool)):
        return obj
    if isinstance(obj, enum.Enum):
        return obj.value
    if isinstance(obj, int):
        return obj
    if isinstance(obj, float):
        if math.isnan(obj):
            return None
        if math.isinf(obj):
            return "inf" if obj > 0 else "-inf"
        return obj
    if np is not None:
        if isinstance(obj, np.ndarray):
            return [jsonable(x) for x in obj.tolist()]
        if isinstance(obj, np.generic):
            return jsonable(obj.item())
    if isinstance(obj, dict):
        return {str(k): jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [jsonable(x) for x in obj]
    return str(obj)
