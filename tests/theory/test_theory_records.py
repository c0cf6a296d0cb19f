"""What the theory layer records besides the verdicts: the JSON form of infinite values,
the time a crashing route took, and which notes a certificate may state. Each test here
was written against a broken version of the code that the other tests let through."""

from __future__ import annotations

import json
import math
import time

import pytest

from circeff.theory import certify as Z
from circeff.theory import optima as O
from circeff.theory.check import run_route
from circeff.theory.results import Status, jsonable


def test_jsonable_keeps_the_sign_of_infinity():
    """+inf and -inf stay distinct strings (a loss of -inf is not a loss of +inf) and the
    result survives a strict JSON round trip."""
    assert jsonable(math.inf) == "inf"
    assert jsonable(-math.inf) == "-inf"
    assert jsonable(float("-inf")) != jsonable(float("inf"))
    data = {"lo": -math.inf, "hi": math.inf, "mid": 1.5, "nan": math.nan}
    back = json.loads(json.dumps(jsonable(data), allow_nan=False))
    assert back == {"lo": "-inf", "hi": "inf", "mid": 1.5, "nan": None}



def test_jsonable_turns_sequences_into_lists():
    """Tuples and lists (nested, with numpy scalars and infinities inside) become JSON
    arrays, not their printed form."""
    import numpy as np

    data = {"pair": (1, 2.5), "nested": [np.float64(0.25), (np.int64(3), -math.inf)]}
    assert jsonable(data) == {"pair": [1, 2.5], "nested": [0.25, [3, "-inf"]]}
    assert jsonable(()) == [] and jsonable([]) == []

def test_a_crashing_route_records_the_time_it_ran():
    """A route that crashes after ~20 ms is recorded as failed with the time it took
    (elapsed wall time, not some other combination of the two clock readings)."""
    def slow_boom(seed):
        time.sleep(0.02)
        raise RuntimeError("late crash")
    res = run_route(slow_boom, 0)
    assert res.status is Status.FAILED
    assert 0.015 <= res.seconds < 5.0
    assert 0.015 <= res.to_dict()["seconds"] < 5.0


@pytest.mark.parametrize("q,kappa,case,has_note", [
    (0.3, 4.0, O.WINNER_TAKE_ALL, True),   # r < 1 with s* > 0: f(s*) < f(0) is proved
    (1.5, 1.0, O.POWER_LAW, False),        # r = 1.5: nothing about f(0) was checked
    (4.0, 4.0, O.BOUNDARY, False),         # r = 1
])
def test_certificate_states_f_below_f0_only_where_it_was_proved(q, kappa, case, has_note):
    """The interval check ``f(s*) < f(0)`` is made only when r < 1 (where the optimum has
    to beat the empty network, Theorem D.4's winner-take-all case); for r >= 1 the
    certificate must not claim it."""
    cert = Z.certify(O.OptimumProblem((0.05, 0.3), q, kappa, 0.01, 113))
    assert cert.case == case
    assert cert.s_star[1] > 0
    stated = [n for n in cert.notes if "f(0)" in n and "f(s*)" in n]
    assert bool(stated) is has_note, cert.notes


def test_negation_row_sits_beside_the_variant_of_its_own_hypothesis():
    """In the negation table of D2, the numeric variant D2~r (which breaks r <= 1) sits
    beside the row that negates r <= 1, and not beside the row for x, y >= 0."""
    from circeff.theory.check import negation_rows, run_claim
    from circeff.theory.claims import CLAIMS

    variant = run_claim(CLAIMS["D2~r"])
    rows = {r["hypothesis_id"]: r for r in negation_rows(CLAIMS["D2"], (variant,))}
    assert set(rows) == {"xy_nonneg", "r_le_1"}
    assert (rows["r_le_1"]["numeric"] or "").startswith("D2~r: refuted"), rows["r_le_1"]
    assert rows["r_le_1"]["numeric_counterexample"] is not None
    assert rows["xy_nonneg"]["numeric"] is None
    assert rows["xy_nonneg"]["numeric_counterexample"] is None


@pytest.mark.parametrize("q,kappa,alpha", [(0.3, 4.0, 0.01), (5.0, 4.0, 0.1), (1.5, 1.0, 0.01)])
def test_certified_bracket_has_f_prime_negative_left_and_positive_right(q, kappa, alpha):
    """The enclosure of s* is a sign certificate: f' < 0 on its left end and f' > 0 on its
    right end, both in interval arithmetic. (At q = 5, kappa = 4, alpha = 0.1 the float
    root lies above the true one, so a bracket checked only on the right would miss it.)"""
    from mpmath import iv

    prob = O.OptimumProblem((0.05, 0.3), q, kappa, alpha, 113)
    cert = Z.certify(prob)
    lo, hi = cert.s_star
    assert 0 < lo < hi
    r = iv.mpf(q) / iv.mpf(kappa)
    coefs = [iv.mpf(alpha) / iv.mpf(q) * iv.mpf(p) ** iv.mpf(q) for p in prob.P]
    if cert.case == O.POWER_LAW:
        coef = sum(c ** (-1 / (r - 1)) for c in coefs) ** (1 - r)
    else:
        coef = coefs[cert.winner]
    log_k = iv.log(iv.mpf(112))
    assert Z._df(iv.mpf(lo), log_k, coef, r).b < 0
    assert Z._df(iv.mpf(hi), log_k, coef, r).a > 0


def test_only_a_proved_negated_run_is_flagged():
    """A negated run that comes out undecided, refuted, verified or failed is what the
    check wants; only one that still comes out proved is flagged, and it alone makes the
    report fail."""
    from circeff.theory.check import CheckReport

    rows = tuple({"claim": "X", "hypothesis_id": s.value, "symbolic_status": s.value}
                 for s in Status)
    report = CheckReport(seed=0, results=(), seconds=0.0, negations=rows)
    assert report.proved_under_negation == ["X/proved"]
    assert not report.ok
    fine = CheckReport(seed=0, results=(), seconds=0.0,
                       negations=tuple(r for r in rows if r["symbolic_status"] != "proved"))
    assert fine.proved_under_negation == [] and fine.ok


def test_a_small_nonzero_value_is_a_witness_against_an_identity():
    # a non-identity whose value at the seeded point is small (x / 1000 is about 1e-3) must be
    # refuted with its witness, not left to the simplifier: the witness test has no scale of
    # its own beyond rounding noise (mutation run: threshold 1e-20 -> 1.0 survived before this)
    import sympy as sp

    from circeff.theory.symbols import identity_or_witness

    x = sp.Symbol("x", positive=True)
    fact = identity_or_witness("small", x / 1000 + sp.sin(x) ** 2 + sp.cos(x) ** 2 - 1)
    assert fact.value is False and 0 < fact.witness["value"] < 1e-2
    assert identity_or_witness("zero", sp.sin(x) ** 2 + sp.cos(x) ** 2 - 1).value is True


@pytest.mark.parametrize("P, tied", [((1.5, 1.0, 1.0, 2.0), True), ((1.5, 1.0, 1.2, 2.0), False),
                                     ((0.05, 0.3), False)])
def test_certificate_states_a_tie_only_where_the_minimal_P_is_tied(P, tied):
    # a mutation-run survivor compared the winner with itself, so every problem "had a tie"
    cert = Z.certify(O.OptimumProblem(P, 2.0, 2.0, 0.01, 113))
    assert any("tie at the minimal P" in n for n in cert.notes) is tied, cert.notes
