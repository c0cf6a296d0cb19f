"""Sympy symbols and the small decision helpers every symbolic route uses.

Hypotheses are encoded in sympy *assumptions*, so that what sympy proves is proved under
exactly those hypotheses and nothing more:

- a positive margin is a ``positive=True`` symbol;
- ``0 < r <= 1`` is written ``r = 1/(1 + a)`` with ``a >= 0`` (sympy has no "<= 1"
  assumption), ``r > 1`` is ``r = 1 + a`` with ``a > 0``, ``r >= 1`` is ``1 + a``
  with ``a >= 0``;
- ``0 < eps < x`` is written ``x = eps + z`` with ``z > 0``.

A :class:`Fact` records one question put to sympy and its answer, ``True``, ``False`` or
``None`` ("sympy could not decide"). :func:`route_from_facts` turns a list of facts into a
route result that is ``proved`` only when sympy answered ``True`` to every one of them.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import sympy as sp

from circeff.theory.results import RouteResult, Status

# Scaling factor of a classifier (Theorem D.1) and a generic margin.
c = sp.Symbol("c", positive=True)
m = sp.Symbol("m", positive=True)
# Non-negative / positive helper symbols used to encode inequalities (see module docstring).
a_nonneg = sp.Symbol("a", nonnegative=True)
a_pos = sp.Symbol("a", positive=True)
b_nonneg = sp.Symbol("b", nonnegative=True)
x, y, z, t = sp.symbols("x y z t", positive=True)
eps, delta = sp.symbols("epsilon delta", positive=True)
u_nonneg = sp.Symbol("u", nonnegative=True)
# Theorem D.4: norm exponent q, layers kappa, weight decay alpha, total weight s.
q, kappa, alpha, s = sp.symbols("q kappa alpha s", positive=True)
k_wrong = sp.Symbol("k", positive=True)  # n - 1 wrong classes (n >= 2)


@dataclass(frozen=True)
class Fact:
    """One question to sympy: is ``expression`` ``predicate``? ``value`` is sympy's answer."""

    name: str
    expression: str
    predicate: str
    value: bool | None
    witness: dict[str, object] | None = None  # a point that disproves the fact

    def to_dict(self) -> dict[str, object]:
        return {"fact": self.name, "expression": self.expression, "predicate": self.predicate,
                "sympy": self.value, "witness": self.witness}


def sign(name: str, expr: sp.Expr, predicate: str) -> Fact:
    """Ask sympy ``expr.is_<predicate>`` (e.g. negative, nonnegative), after simplify and
    after factor when sympy cannot decide the expression as written."""
    value = getattr(expr, f"is_{predicate}")
    for rewrite in (sp.simplify, sp.factor):
        if value is not None:
            break
        rewritten = rewrite(expr)
        value = getattr(rewritten, f"is_{predicate}")
        if value is not None:
            expr = rewritten
    return Fact(name, sp.sstr(expr), predicate, value)


def _bases_nonnegative(expr: sp.Expr) -> bool:
    """Every power's base is known to be >= 0 (then ``(ab)^r = a^r b^r`` and
    ``(a^b)^c = a^(bc)`` hold for real exponents, so forcing them is valid)."""
    return all(p.base.is_nonnegative for p in expr.atoms(sp.Pow)) and all(
        a.args[0].is_positive for a in expr.atoms(sp.log))


def identity(name: str, expr: sp.Expr) -> Fact:
    """Is ``expr`` identically zero? Powers are combined (and logs expanded) with
    ``force=True`` only when every base is known to be non-negative, where that is valid;
    otherwise sympy works without forcing."""
    force = _bases_nonnegative(expr)
    reduced = sp.simplify(sp.powdenest(sp.expand_power_base(expr, force=force), force=force))
    if force and reduced != 0:
        reduced = sp.simplify(sp.expand_log(reduced, force=True))
    value: bool | None = True if reduced == 0 else None
    return Fact(name, sp.sstr(reduced), "zero", value)


def identity_or_witness(name: str, expr: sp.Expr, seed: int = 0) -> Fact:
    """Is ``expr`` identically zero? First evaluate it at a seeded rational point (every
    free symbol set to a value its assumptions allow): a non-zero value there disproves
    the identity (``False``, with the point). Otherwise ask :func:`identity`."""
    import random

    rnd = random.Random(seed)
    point = {}
    for sym in sorted(expr.free_symbols, key=str):
        v = sp.Rational(rnd.randint(1, 9), rnd.randint(1, 5)) + sp.Rational(1, 7)
        point[sym] = -v if sym.is_negative or sym.is_nonpositive else v
    try:
        value = complex(sp.N(expr.subs(point), 30))
    except (TypeError, ValueError):
        value = None
    if value is not None and abs(value) > 1e-20:
        at = {str(k): str(v) for k, v in point.items()}
        return Fact(name, f"{sp.sstr(expr)[:200]} = {value.real:.6g} at "
                    + ", ".join(f"{k}={v}" for k, v in at.items()), "zero", False,
                    witness={"point": at, "value": value.real})
    return identity(name, expr)


def equals(name: str, expr: sp.Expr, target: sp.Expr) -> Fact:
    """Is ``expr == target`` (as an identity)?"""
    if expr == target:  # structurally equal (also covers oo == oo, where expr - target is nan)
        value: bool | None = True
    else:
        value = identity(name, expr - target).value
    return Fact(name, f"{sp.sstr(expr)} == {sp.sstr(target)}", "identity", value)


def combine_powers(expr: sp.Expr) -> sp.Expr:
    """``(a b)^r -> a^r b^r`` and ``(a^b)^c -> a^(bc)``, only when every base is known
    to be non-negative (where these rules hold)."""
    if not _bases_nonnegative(expr):
        return expr
    return sp.powdenest(sp.expand_power_base(expr, force=True), force=True)


def limit(expr: sp.Expr, var: sp.Symbol, point: sp.Expr, direction: str = "+") -> sp.Expr:
    """``sympy.limit`` (after :func:`combine_powers`), or ``nan`` (an undecided fact) where
    sympy cannot compute it (e.g. it cannot tell the sign of an exponent)."""
    try:
        return sp.limit(combine_powers(expr), var, point, direction)
    except (NotImplementedError, ValueError):
        return sp.nan


def route_from_facts(facts: list[Fact], conclusion: str, closing_step: str,
                     started: float | None = None) -> RouteResult:
    """``proved`` iff sympy answered True to every fact; otherwise say which it did not.

    ``closing_step`` names the textbook step (not done by sympy) that turns the facts into
    the claim, so the reader sees exactly what was machine-checked.
    """
    seconds = time.perf_counter() - started if started is not None else 0.0
    data = {"facts": [f.to_dict() for f in facts], "closing_step": closing_step}
    false = [f for f in facts if f.value is False]
    unknown = [f for f in facts if f.value is None]
    if false:
        return RouteResult("symbolic", Status.FAILED,
                           f"sympy says the needed fact is false: {false[0].name}", data,
                           seconds=seconds)
    if unknown:
        return RouteResult("symbolic", Status.UNDECIDED,
                           f"sympy could not decide: {unknown[0].name} "
                           f"({unknown[0].expression} {unknown[0].predicate}?)", data,
                           seconds=seconds)
    if not facts:
        return RouteResult("symbolic", Status.UNDECIDED, "no facts to check", data,
                           seconds=seconds)
    names = "; ".join(f.name for f in facts)
    return RouteResult("symbolic", Status.PROVED,
                       f"{conclusion} [sympy: {names}; then {closing_step}]", data,
                       seconds=seconds)
