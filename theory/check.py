"""Run claims and collect result records (used by ``circeff theory check`` and tests)."""

from __future__ import annotations

import time
import traceback
from dataclasses import dataclass
from typing import Any

from circeff.theory.claims import Claim, select
from circeff.theory.results import ClaimResult, RouteResult, Status


def run_route(route, seed: int, name_hint: str = "route") -> RouteResult:
    """Run one route; an exception becomes a ``failed`` result (never a silent pass)."""
    started = time.perf_counter()
    try:
        return route(seed)
    except Exception as exc:  # noqa: BLE001 - recorded, shown, and counted as a failure
        last = traceback.extract_tb(exc.__traceback__)[-1]
        return RouteResult(name_hint, Status.FAILED,
                           f"{type(exc).__name__}: {exc} (at {last.name}:{last.lineno})",
                           {}, seconds=time.perf_counter() - started)


def run_claim(claim: Claim, seed: int = 0) -> ClaimResult:
    routes = tuple(run_route(r, seed) for r in claim.routes)
    return ClaimResult(claim.id, claim.statement, claim.expected, routes, claim.falsifies)


@dataclass(frozen=True)
class CheckReport:
    seed: int
    results: tuple[ClaimResult, ...]
    seconds: float

    @property
    def ok(self) -> bool:
        return all(r.ok for r in self.results)

    @property
    def failures(self) -> list[str]:
        return [r.claim_id for r in self.results if not r.ok]

    def to_dict(self) -> dict[str, Any]:
        return {"seed": self.seed, "ok": self.ok, "failures": self.failures,
                "seconds": round(self.seconds, 3),
                "claims": [r.to_dict() for r in self.results]}


def run_claims(ids: list[str] | tuple[str, ...] | None = None, seed: int = 0,
               falsify: bool = False) -> CheckReport:
    """Run the selected claims (default: every claim, with D3.printed expected refuted)."""
    started = time.perf_counter()
    results = tuple(run_claim(c, seed) for c in select(ids, falsify))
    return CheckReport(seed, results, time.perf_counter() - started)
