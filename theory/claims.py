"""The registry of claims from Appendix D, keyed by stable ids.

A :class:`Claim` carries its statement, its hypotheses as data (:class:`Hypothesis`: an
id, the text, and what the negated run assumes), what it is expected to do (``holds``, or
``refuted`` for the printed Lemma D.3 and for every falsification variant), its routes
(functions ``seed -> RouteResult``) and its symbolic route as a function of the negated
hypothesis: ``symbolic(None)`` is the proof, ``symbolic(h.id)`` reruns the same facts
with hypothesis ``h`` negated, which must not come out proved
(``circeff theory check --falsify``). Falsification variants run the numeric checker on
instances that violate one hypothesis (``falsifies`` names the claim, ``dropped`` the
hypothesis id); each must find and print a concrete counterexample.

Ids: D1, D1.limit, D2, D3, D3.printed, D4.case1, D4.boundary, D4.case2, D4.toy_ratio,
D4.mixed_kappa, D4.homogeneity; falsification variants are ``<id>~<dropped>``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from circeff.errors import ConfigError
from circeff.theory import allocation as A
from circeff.theory import homogeneity as H
from circeff.theory import optima as O
from circeff.theory import power_derivative as D3
from circeff.theory import scaling as D1
from circeff.theory import subadditivity as D2
from circeff.theory.results import HOLDS, REFUTED, RouteResult

Route = Callable[[int], RouteResult]
Symbolic = Callable[[str | None], RouteResult]


def _sym(fn: Symbolic) -> Route:
    """The symbolic route as run by default: no hypothesis negated (seed-independent)."""
    return lambda seed: fn(None)


@dataclass(frozen=True)
class Hypothesis:
    """One hypothesis of a claim: ``id`` (what a symbolic route's ``negate`` takes),
    ``text``, and ``negation`` (what the negated symbolic run assumes instead)."""

    id: str
    text: str
    negation: str


@dataclass(frozen=True)
class Claim:
    id: str
    statement: str
    hyps: tuple[Hypothesis, ...]
    routes: tuple[Route, ...]
    expected: str = HOLDS
    falsifies: str | None = None
    dropped: str | None = None
    symbolic: Symbolic | None = None

    @property
    def hypotheses(self) -> tuple[str, ...]:
        return tuple(h.text for h in self.hyps)

    @property
    def is_falsification(self) -> bool:
        return self.falsifies is not None


def _h(hid: str, text: str, negation: str) -> Hypothesis:
    return Hypothesis(hid, text, negation)


ALPHA = _h("alpha_pos", "alpha > 0", "alpha = -u <= 0")
VIA_S = _h("via_s", "L_x depends on w only through s = sum_i w_i",
           "L_x = F(w_i, w_j), any function of the weights")


def _claim(cid: str, statement: str, hyps: tuple[Hypothesis, ...], symbolic: Symbolic,
           numeric: Route, expected: str = HOLDS) -> Claim:
    return Claim(cid, statement, hyps, (_sym(symbolic), numeric), expected,
                 symbolic=symbolic)


def _variant(cid: str, statement: str, route: Route, falsifies: str, dropped: str) -> Claim:
    return Claim(cid, statement, (_h(dropped, f"{dropped} DROPPED", "(numeric only)"),),
                 (route,), expected=REFUTED, falsifies=falsifies, dropped=dropped)


_CLAIMS: tuple[Claim, ...] = (
    _claim("D1", "L_x(c f) < L_x(f) for every c > 1 (dL_x(cf)/dc < 0 for c > 0), any "
           "number of classes",
           (_h("margins", "f has perfect training accuracy: every margin f_y(x) - f_y'(x) > 0",
               "one margin m_1 = -mu < 0"),),
           D1.symbolic_D1, D1.numeric_D1),
    _claim("D1.limit", "L_x(c f) -> 0 as c -> infinity",
           (_h("margins", "every margin > 0", "smallest margin mu < 0"),),
           D1.symbolic_D1_limit, D1.numeric_D1_limit),
    _claim("D2", "(x + y)^r <= x^r + y^r (strict for x, y > 0, r < 1)",
           (_h("xy_nonneg", "x, y >= 0", "x < 0"),
            _h("r_le_1", "0 < r <= 1", "r = 1 + a > 1")),
           D2.symbolic_D2, D2.numeric_D2),
    _claim("D3", "exists delta > 0: for all 0 < eps < delta, "
           "x^r - (x - eps)^r > eps (r x^(r-1) - c)",
           (_h("x_pos", "x > 0", "x <= 0"), _h("r_ge_1", "r >= 1", "r = 1/(1+a) < 1"),
            _h("c_pos", "c > 0", "c = -u <= 0")),
           D3.symbolic_D3, D3.numeric_D3),
    _claim("D3.printed", "(as printed) exists delta > 0: for all eps < delta, "
           "x^r - (x - eps)^r > delta (r x^(r-1) - c)",
           (_h("r_ge_1", "r >= 1", "r = 1/2"),),
           D3.symbolic_D3_printed, D3.numeric_D3_printed, expected=REFUTED),
    _claim("D4.case1", "q <= kappa: every global minimiser has w_i = 0 unless P_i is minimal "
           "(winner takes all)",
           (ALPHA, _h("r_le_1", "q <= kappa (r = q/kappa <= 1)", "q = kappa (1 + a) > kappa"),
            VIA_S),
           A.symbolic_D4_case1, A.numeric_D4_winner_take_all),
    _claim("D4.boundary", "q = kappa: cost linear; all weight on minimal P, any split among "
           "tied minima optimal (any number I of circuits)",
           (ALPHA, _h("q_eq_kappa", "q = kappa", "q = kappa (1 + a), a != 0"),
            _h("tie", "tied minimal P for the split statement", "P_j = P_i (1 + d), d > 0")),
           A.symbolic_D4_boundary, A.numeric_D4_boundary),
    _claim("D4.case2", "q > kappa: every w_i > 0 and w_i proportional to "
           "P_i^(-q kappa/(q - kappa)) (any number I of circuits, any L_x bounded below)",
           (ALPHA, _h("r_gt_1", "q > kappa (r > 1)", "q = kappa/(1 + a) <= kappa"),
            _h("bounded_below", "L_x bounded below", "L_x(s) = -e^s"), VIA_S),
           A.symbolic_D4_case2, A.numeric_D4_case2),
    _claim("D4.toy_ratio", "toy model (P_G=1, P_M=2, q=2, kappa=1.2): w_G / w_M = 8",
           (_h("q_gt_kappa", "q = 2 > kappa = 1.2", "kappa = 2.5 > q"),),
           A.symbolic_D4_toy_ratio, lambda seed: A.numeric_D4_toy_ratio()),
    _claim("D4.mixed_kappa", "one kappa_i per circuit (r_i = q/kappa_i): every circuit with "
           "r_i > 1 keeps weight; at most one circuit with r_i <= 1 keeps weight, and when "
           "every r_i <= 1 it is the best single-circuit ray (which depends on s*, not on P "
           "alone)",
           (ALPHA, _h("r_k_gt_1", "r_k > 1 for the circuit said to keep weight",
                      "r_k = 1/(1+a) <= 1"),
            _h("pair_r_le_1", "r_i, r_j <= 1 for the pair said not to share",
               "r_j = 1 + b > 1"), VIA_S),
           A.symbolic_D4_mixed_kappa, A.numeric_D4_mixed_kappa),
    _claim("D4.homogeneity", "D.4's model of a circuit: scaling every parameter of a "
           "bias-free ReLU MLP with k layers by c > 0 scales its logits by c^k (kappa = k)",
           (_h("bias_free", "no biases", "every layer has a bias"),
            _h("relu", "positively homogeneous activations (ReLU)",
               "a softmax attention layer"),
            _h("c_pos", "c > 0", "c < 0")),
           H.symbolic_D4_homogeneity, H.numeric_D4_homogeneity),
    # ---- falsification variants: one hypothesis violated, a counterexample must be found
    _variant("D1~margin", "D1 with one negative margin", D1.falsify_D1, "D1", "margins"),
    Claim("D1.limit~margin", "D1.limit with one negative margin",
          (_h("margins", "margins DROPPED", "(numeric only)"),),
          (lambda seed: D1.falsify_D1_limit(),), expected=REFUTED, falsifies="D1.limit",
          dropped="margins"),
    _variant("D2~r", "D2 with r in (1, 4]", D2.falsify_D2, "D2", "r_le_1"),
    _variant("D3~c", "D3 with c = 0", D3.falsify_D3, "D3", "c_pos"),
    _variant("D4.case1~case", "winner-take-all checked on q > kappa instances",
             lambda seed: A.numeric_D4_winner_take_all(seed, n_instances=3, case=O.POWER_LAW),
             "D4.case1", "r_le_1"),
    _variant("D4.case2~case", "power law checked on q < kappa instances",
             lambda seed: A.numeric_D4_case2(seed, n_instances=3, case=O.WINNER_TAKE_ALL),
             "D4.case2", "r_gt_1"),
    _variant("D4.boundary~tie", "any split between the two smallest P optimal, without a tie",
             lambda seed: A.numeric_D4_boundary(seed, n_instances=3, require_ties=False),
             "D4.boundary", "tie"),
    _variant("D4.toy_ratio~case", "toy ratio 8 claimed with kappa = 2.5 > q = 2",
             lambda seed: A.numeric_D4_toy_ratio(kappa=2.5), "D4.toy_ratio", "q_gt_kappa"),
    _variant("D4.mixed_kappa~pair", "'at most one circuit keeps weight' extended to r_i > 1",
             lambda seed: A.numeric_D4_mixed_kappa(seed, n_instances=4, pair_bound=4.0),
             "D4.mixed_kappa", "pair_r_le_1"),
    _variant("D4.homogeneity~bias", "homogeneity claimed for ReLU MLPs with biases",
             lambda seed: H.numeric_D4_homogeneity(seed, n_networks=3, variant="bias"),
             "D4.homogeneity", "bias_free"),
    _variant("D4.homogeneity~softmax", "homogeneity claimed for softmax attention",
             lambda seed: H.numeric_D4_homogeneity(seed, n_networks=3, variant="softmax"),
             "D4.homogeneity", "relu"),
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
