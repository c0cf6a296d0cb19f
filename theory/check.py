"""Run claims and collect result records (used by ``circeff theory check`` and tests)."""

from __future__ import annotations

import time
import traceback
from dataclasses import dataclass
from typing import Any

from circeff.theory.claims import Claim, select
from circeff.theory.results import HOLDS, ClaimResult, RouteResult, Status, jsonable


def run_route(route, seed: int, name_hint: str = "route") -> RouteResult:
    """Run one route; an exception becomes a ``failed`` result (never a silent pass)."""
    started = time.perf_counter()
    try:
        return route(seed)
    except Exception as exc:  # noqa: BLE001 - recorded, shown, and counted as a failure
        last = traceback.extract_tb(exc.__traceback__)[-1]
        return RouteResult(name_hint, Status.FAILED,
                           f"{type(exc).__name__}: {exc} (at {last.name}:{last.lineno})",
                           {"exception": type(exc).__name__},
                           seconds=time.perf_counter() - started)


def run_claim(claim: Claim, seed: int = 0) -> ClaimResult:
    routes = tuple(run_route(r, seed) for r in claim.routes)
    return ClaimResult(claim.id, claim.statement, claim.expected, routes, claim.falsifies)


def negation_rows(claim: Claim, results: tuple[ClaimResult, ...]) -> list[dict[str, Any]]:
    """Rerun ``claim``'s symbolic route with each hypothesis negated, one row per
    hypothesis, beside the numeric falsification variant for it (if one was run)."""
    rows = []
    for hyp in claim.hyps:
        res = run_route(lambda seed, h=hyp.id: claim.symbolic(h), 0, "symbolic")
        variant = next((r for r in results if r.falsifies == claim.id
                        and _dropped(r.claim_id) == hyp.id), None)
        numeric = None
        if variant is not None:
            numeric = f"{variant.claim_id}: {variant.outcome.value}"
            route = next((x for x in variant.routes if x.counterexample is not None), None)
            if route is not None:
                numeric += f" ({route.detail})"
        rows.append({"claim": claim.id, "hypothesis_id": hyp.id, "hypothesis": hyp.text,
                     "negation": hyp.negation, "symbolic_status": res.status.value,
                     "symbolic_detail": res.detail, "numeric": numeric,
                     "numeric_counterexample": None if variant is None
                     else variant.counterexample})
    return rows


def _dropped(variant_id: str) -> str | None:
    from circeff.theory.claims import CLAIMS

    claim = CLAIMS.get(variant_id)
    return None if claim is None else claim.dropped


@dataclass(frozen=True)
class CheckReport:
    seed: int
    results: tuple[ClaimResult, ...]
    seconds: float
    negations: tuple[dict[str, Any], ...] = ()

    @property
    def ok(self) -> bool:
        """Every claim's outcome is what it expects (proved or verified for a claim
        expected to hold) and no negated symbolic run came out proved."""
        return all(r.ok for r in self.results) and not self.proved_under_negation

    @property
    def failures(self) -> list[str]:
        return [r.claim_id for r in self.results if not r.ok]

    @property
    def proved_under_negation(self) -> list[str]:
        """``claim/hypothesis`` pairs whose symbolic route still says proved when the
        hypothesis is negated (each one means the proof does not use it)."""
        return [f"{n['claim']}/{n['hypothesis_id']}" for n in self.negations
                if n["symbolic_status"] == Status.PROVED.value]

    @property
    def not_proved(self) -> list[str]:
        """Claims expected to hold whose outcome is not ``proved``."""
        return [r.claim_id for r in self.results
                if r.expected == HOLDS and r.outcome is not Status.PROVED]

    @property
    def counts(self) -> dict[str, int]:
        """How many claims (not variants) came out proved / verified / refuted / ..."""
        out = {s.value: 0 for s in Status}
        for r in self.results:
            if r.falsifies is None:
                out[r.outcome.value] += 1
        return out

    def to_dict(self) -> dict[str, Any]:
        return {"seed": self.seed, "ok": self.ok, "failures": self.failures,
                "counts": self.counts, "not_proved": self.not_proved,
                "proved_under_negation": self.proved_under_negation,
                "seconds": round(self.seconds, 3),
                "claims": [r.to_dict() for r in self.results],
                "negations": jsonable(list(self.negations))}


def run_claims(ids: list[str] | tuple[str, ...] | None = None, seed: int = 0,
               falsify: bool = False) -> CheckReport:
    """Run the selected claims (default: every claim, with D3.printed expected refuted).
    With ``falsify``, also every falsification variant and every symbolic route with
    each hypothesis negated."""
    started = time.perf_counter()
    claims = select(ids, falsify)
    results = tuple(run_claim(c, seed) for c in claims)
    negations: list[dict[str, Any]] = []
    if falsify:
        for claim in claims:
            if claim.symbolic is not None and not claim.is_falsification:
                negations += negation_rows(claim, results)
    return CheckReport(seed, results, time.perf_counter() - started, tuple(negations))
