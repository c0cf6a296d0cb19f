"""The registry of claims from Appendix D, keyed by stable ids.

A :class:`Claim` carries its statement, its hypotheses, what it is expected to do
(``holds``, or ``refuted`` for the printed Lemma D.3 and for every falsification variant)
and its routes: functions ``seed -> RouteResult``. Falsification variants drop one
hypothesis of a claim (``falsifies`` names the claim, ``dropped`` the hypothesis); the
checker must find and print a concrete counterexample for each, which is what makes a
"proved"/"verified" on the original trustworthy.

Ids: D1, D1.limit, D2, D3, D3.printed, D4.case1, D4.boundary, D4.case2, D4.toy_ratio;
falsification variants are ``<id>~<dropped>``, e.g. ``D1~margin``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from circeff.errors import ConfigError
from circeff.theory import allocation as A
from circeff.theory import optima as O
from circeff.theory import power_derivative as D3
from circeff.theory import scaling as D1
from circeff.theory import subadditivity as D2
from circeff.theory.results import HOLDS, REFUTED, RouteResult

Route = Callable[[int], RouteResult]


def _fixed(fn: Callable[[], RouteResult]) -> Route:
    """A seed-independent route (symbolic work)."""
    return lambda seed: fn()


@dataclass(frozen=True)
class Claim:
    id: str
    statement: str
    hypotheses: tuple[str, ...]
    routes: tuple[Route, ...]
    expected: str = HOLDS
    falsifies: str | None = None
    dropped: str | None = None

    @property
    def is_falsification(self) -> bool:
        return self.falsifies is not None


_CLAIMS: tuple[Claim, ...] = (
    Claim("D1", "L_x(c f) < L_x(f) for every c > 1 (dL_x(cf)/dc < 0 for c > 0)",
          ("f has perfect training accuracy: every margin f_y(x) - f_y'(x) > 0",),
          (_fixed(D1.symbolic_D1), D1.numeric_D1)),
    Claim("D1.limit", "L_x(c f) -> 0 as c -> infinity",
          ("every margin > 0",), (_fixed(D1.symbolic_D1_limit), D1.numeric_D1_limit)),
    Claim("D2", "(x + y)^r <= x^r + y^r (strict for x, y > 0, r < 1)",
          ("x, y >= 0", "0 < r <= 1"), (_fixed(D2.symbolic_D2), D2.numeric_D2)),
    Claim("D3", "exists delta > 0: for all 0 < eps < delta, "
          "x^r - (x - eps)^r > eps (r x^(r-1) - c)",
          ("x > 0", "r >= 1", "c > 0"), (_fixed(D3.symbolic_D3), D3.numeric_D3)),
    Claim("D3.printed", "(as printed) exists delta > 0: for all eps < delta, "
          "x^r - (x - eps)^r > delta (r x^(r-1) - c)",
          ("r >= 1",), (_fixed(D3.symbolic_D3_printed), D3.numeric_D3_printed),
          expected=REFUTED),
    Claim("D4.case1", "q < kappa: every global minimiser has w_i = 0 unless P_i is minimal "
          "(winner takes all)",
          ("alpha > 0", "q <= kappa (r = q/kappa <= 1)", "L_x depends on w only via s"),
          (_fixed(A.symbolic_D4_case1), A.numeric_D4_winner_take_all)),
    Claim("D4.boundary", "q = kappa: cost linear; all weight on minimal P, any split among "
          "tied minima optimal",
          ("alpha > 0", "q = kappa", "tied minimal P for the split statement"),
          (_fixed(A.symbolic_D4_boundary), A.numeric_D4_boundary)),
    Claim("D4.case2", "q > kappa: every w_i > 0 and w_i proportional to "
          "P_i^(-q kappa/(q - kappa))",
          ("alpha > 0", "q > kappa (r > 1)", "L_x convex, decreasing (cross-entropy)"),
          (_fixed(A.symbolic_D4_case2), A.numeric_D4_case2)),
    Claim("D4.toy_ratio", "toy model (P_G=1, P_M=2, q=2, kappa=1.2): w_G / w_M = 8",
          ("q = 2 > kappa = 1.2",),
          (_fixed(A.symbolic_D4_toy_ratio), lambda seed: A.numeric_D4_toy_ratio())),
    # ---- falsification variants: one hypothesis dropped, a counterexample must be found
    Claim("D1~margin", "D1 with one negative margin", ("perfect accuracy DROPPED",),
          (D1.falsify_D1,), expected=REFUTED, falsifies="D1", dropped="every margin > 0"),
    Claim("D1.limit~margin", "D1.limit with one negative margin",
          ("perfect accuracy DROPPED",), (_fixed(D1.falsify_D1_limit),), expected=REFUTED,
          falsifies="D1.limit", dropped="every margin > 0"),
    Claim("D2~r", "D2 with r in (1, 4]", ("r <= 1 DROPPED",), (D2.falsify_D2,),
          expected=REFUTED, falsifies="D2", dropped="r <= 1"),
    Claim("D3~c", "D3 with c = 0", ("c > 0 DROPPED",), (D3.falsify_D3,), expected=REFUTED,
          falsifies="D3", dropped="c > 0"),
    Claim("D4.case1~case", "power law claimed for q < kappa",
          ("q > kappa DROPPED (instances have q < kappa)",),
          (lambda seed: A.numeric_D4_case2(seed, n_instances=3, case=O.WINNER_TAKE_ALL),),
          expected=REFUTED, falsifies="D4.case1", dropped="wrong case: power law for q < kappa"),
    Claim("D4.case2~case", "winner-take-all claimed for q > kappa",
          ("q <= kappa DROPPED (instances have q > kappa)",),
          (lambda seed: A.numeric_D4_winner_take_all(seed, n_instances=3, case=O.POWER_LAW),),
          expected=REFUTED, falsifies="D4.case2",
          dropped="wrong case: winner-take-all for q > kappa"),
    Claim("D4.boundary~tie", "any split between the two smallest P optimal, without a tie",
          ("tie DROPPED",),
          (lambda seed: A.numeric_D4_boundary(seed, n_instances=3, require_ties=False),),
          expected=REFUTED, falsifies="D4.boundary", dropped="tied minimal P"),
    Claim("D4.toy_ratio~case", "toy ratio 8 claimed with kappa = 2.5 > q = 2",
          ("q > kappa DROPPED",), (lambda seed: A.numeric_D4_toy_ratio(kappa=2.5),),
          expected=REFUTED, falsifies="D4.toy_ratio", dropped="q > kappa"),
)

CLAIMS: dict[str, Claim] = {c.id: c for c in _CLAIMS}
#: the claims ``circeff theory check`` runs by default (D3.printed included: it is
#: expected to be refuted and users should see that).
DEFAULT_IDS: tuple[str, ...] = tuple(c.id for c in _CLAIMS if not c.is_falsification)
FALSIFICATION_IDS: tuple[str, ...] = tuple(c.id for c in _CLAIMS if c.is_falsification)


def get(claim_id: str) -> Claim:
    try:
        return CLAIMS[claim_id]
    except KeyError:
        raise ConfigError("claims", "each id must be one of " + ", ".join(CLAIMS),
                          claim_id) from None


def select(ids: list[str] | tuple[str, ...] | None, falsify: bool = False) -> list[Claim]:
    """Claims by id (default: :data:`DEFAULT_IDS`); with ``falsify`` also the variants that
    falsify each selected claim."""
    chosen = [get(i) for i in (DEFAULT_IDS if ids is None else ids)]
    if falsify:
        ids_chosen = {c.id for c in chosen}
        chosen += [c for c in _CLAIMS if c.falsifies in ids_chosen and c.id not in ids_chosen]
    return chosen
