"""The claim registry and checker: expected outcomes, falsification, wrong statements rejected."""

from __future__ import annotations

import json

import pytest
import sympy as sp

from circeff.errors import ConfigError
from circeff.theory import allocation as A
from circeff.theory import claims as C
from circeff.theory import optima as O
from circeff.theory import symbols as S
from circeff.theory.check import run_claim, run_claims, run_route
from circeff.theory.results import REFUTED, ClaimResult, RouteResult, Status

REQUIRED_IDS = {"D1", "D2", "D3", "D3.printed", "D4.case1", "D4.case2", "D4.boundary"}


@pytest.fixture(scope="module")
def full_report():
    return run_claims(seed=0, falsify=True)


def test_registry_has_the_stable_ids():
    assert REQUIRED_IDS <= set(C.CLAIMS)
    assert set(C.DEFAULT_IDS) >= REQUIRED_IDS
    assert C.CLAIMS["D3.printed"].expected == REFUTED
    for claim in C.CLAIMS.values():
        assert claim.statement and claim.hypotheses and claim.routes


def test_every_claim_has_a_falsification_variant():
    falsified = {C.CLAIMS[i].falsifies for i in C.FALSIFICATION_IDS}
    assert falsified == set(C.DEFAULT_IDS) - {"D3.printed"}
    for i in C.FALSIFICATION_IDS:
        variant = C.CLAIMS[i]
        assert variant.expected == REFUTED and variant.dropped
        # each variant violates a hypothesis its claim lists as data
        assert variant.dropped in {h.id for h in C.CLAIMS[variant.falsifies].hyps}


NEGATIONS = [(cid, h.id) for cid in C.DEFAULT_IDS for h in C.CLAIMS[cid].hyps]


@pytest.mark.parametrize("claim_id, hyp", NEGATIONS)
def test_symbolic_route_is_not_proved_with_a_hypothesis_negated(claim_id, hyp):
    """The proof depends on every hypothesis it lists: the same symbolic route, with one
    hypothesis negated, must not come out proved (its facts are stated on the claim's own
    expressions, so a negated hypothesis changes what sympy is asked)."""
    claim = C.CLAIMS[claim_id]
    res = run_route(lambda seed: claim.symbolic(hyp), 0, "symbolic")
    assert res.status is not Status.PROVED, (claim_id, hyp, res.detail)
    # a crash is not a negation result: a fact must come out false or undecided
    assert "exception" not in res.data, res.detail


@pytest.mark.parametrize("claim_id", [c for c in C.DEFAULT_IDS if c != "D3.printed"])
def test_symbolic_route_proved_with_every_hypothesis(claim_id):
    assert C.CLAIMS[claim_id].symbolic(None).status is Status.PROVED


@pytest.mark.parametrize("claim_id", C.DEFAULT_IDS)
def test_symbolic_route_rejects_an_unknown_hypothesis(claim_id):
    with pytest.raises(ValueError):
        C.CLAIMS[claim_id].symbolic("no_such_hypothesis")


def test_negation_table_in_the_report(full_report):
    rows = full_report.to_dict()["negations"]
    assert {(r["claim"], r["hypothesis_id"]) for r in rows} == set(NEGATIONS)
    assert all(r["symbolic_status"] != "proved" for r in rows)
    assert full_report.proved_under_negation == []
    # where a numeric falsification variant exists, its counterexample sits beside it
    beside = {(r["claim"], r["hypothesis_id"]) for r in rows if r["numeric_counterexample"]}
    assert ("D2", "r_le_1") in beside and ("D4.homogeneity", "bias_free") in beside


def test_a_proof_that_ignores_its_hypothesis_is_caught():
    """Negative control of the negation check: a route whose facts do not use the
    hypothesis stays proved under negation, and the report flags it."""
    from circeff.theory.check import CheckReport, negation_rows

    def careless(negate):
        return S.route_from_facts([S.sign("2 > 0", sp.Integer(2), "positive")], "c", "s")

    claim = C.Claim("X.careless", "s", (C.Hypothesis("h", "a hypothesis", "not h"),),
                    (lambda seed: careless(None),), symbolic=careless)
    rows = negation_rows(claim, ())
    report = CheckReport(0, (run_claim(claim),), 0.0, tuple(rows))
    assert report.proved_under_negation == ["X.careless/h"] and not report.ok


def test_all_claims_as_expected(full_report):
    assert full_report.ok, full_report.failures
    by_id = {r.claim_id: r for r in full_report.results}
    for claim_id in C.DEFAULT_IDS:
        if claim_id != "D3.printed":
            assert by_id[claim_id].outcome in (Status.PROVED, Status.VERIFIED)
    # every claim is proved by sympy, not only verified
    for claim_id in (c for c in C.DEFAULT_IDS if c != "D3.printed"):
        symbolic = [r for r in by_id[claim_id].routes if r.route == "symbolic"]
        assert symbolic and symbolic[0].status is Status.PROVED, symbolic[0].detail


def test_D3_printed_refuted_with_its_counterexample(full_report):
    res = {r.claim_id: r for r in full_report.results}["D3.printed"]
    assert res.expected == REFUTED and res.outcome is Status.REFUTED and res.ok
    cx = res.counterexample
    assert (cx["eps"], cx["x"], cx["r"], cx["c"]) == (0, 1, 2, 1)


def test_falsification_variants_find_counterexamples(full_report):
    for res in full_report.results:
        if res.falsifies is not None:
            assert res.outcome is Status.REFUTED, (res.claim_id, res.routes)
            assert res.counterexample, res.claim_id


def test_report_is_json_clean(full_report):
    text = json.dumps(full_report.to_dict(), allow_nan=False)
    data = json.loads(text)
    assert {"claims", "ok", "seed"} <= set(data)
    assert {"claim", "expected", "outcome", "ok", "routes"} <= set(data["claims"][0])


# ------------------------------------------------------------- wrong statements are rejected
@pytest.mark.parametrize("wrong", [
    S.q * S.kappa / (S.q + S.kappa),  # sign slip
    S.q / (S.q - S.kappa),            # kappa dropped from the numerator
    S.kappa / (S.q - S.kappa),        # q dropped
])
def test_D4_case2_wrong_exponent_refuted_symbolically(wrong):
    res = A.symbolic_D4_case2(exponent=wrong)
    assert res.status is Status.REFUTED
    assert abs(res.counterexample["gradient_difference"]) > 1e-9


def test_D4_case2_right_exponent_proved_in_another_form():
    res = A.symbolic_D4_case2(exponent=-S.q / (1 - S.q / S.kappa))
    assert res.status is Status.PROVED, res.detail


@pytest.mark.parametrize("wrong", [
    lambda q, k: q * k / (q + k),
    lambda q, k: q / (q - k),
    lambda q, k: 1.01 * q * k / (q - k),
])
def test_D4_case2_wrong_exponent_refuted_numerically(wrong):
    res = A.numeric_D4_case2(seed=3, n_instances=3, exponent=wrong)
    assert res.status is Status.REFUTED
    assert res.counterexample["optimum_loss"] <= res.counterexample["stated_loss"]


def test_D4_case2_winner_take_all_claim_refuted():
    res = A.numeric_D4_winner_take_all(seed=1, n_instances=2, case=O.POWER_LAW)
    assert res.status is Status.REFUTED
    cx = res.counterexample
    assert cx["optimum_loss"] < cx["winner_take_all_loss"]


def test_D4_case1_power_law_claim_refuted():
    res = A.numeric_D4_case2(seed=1, n_instances=2, case=O.WINNER_TAKE_ALL)
    assert res.status is Status.REFUTED
    assert res.counterexample["optimum_loss"] < res.counterexample["stated_loss"]


def test_D4_boundary_split_without_tie_refuted():
    res = A.numeric_D4_boundary(seed=2, n_instances=2, require_ties=False)
    assert res.status is Status.REFUTED
    assert res.counterexample["split_loss"] > res.counterexample["optimum_loss"]


# ------------------------------------------------------------- the result model itself
def _route(status, cx=None):
    return RouteResult("numeric", status, "x", {}, counterexample=cx)


@pytest.mark.parametrize("expected, statuses, ok", [
    ("holds", [Status.PROVED, Status.VERIFIED], True),
    ("holds", [Status.UNDECIDED, Status.VERIFIED], True),
    ("holds", [Status.UNDECIDED], False),
    ("holds", [Status.PROVED, Status.REFUTED], False),
    ("holds", [Status.VERIFIED, Status.FAILED], False),
    ("refuted", [Status.REFUTED], True),
    ("refuted", [Status.VERIFIED], False),
    ("refuted", [Status.REFUTED, Status.FAILED], False),
])
def test_claim_result_ok_logic(expected, statuses, ok):
    res = ClaimResult("X", "s", expected, tuple(_route(s) for s in statuses))
    assert res.ok is ok


def test_a_crashing_route_is_failed_not_passed():
    def boom(seed):
        raise ZeroDivisionError("no")
    res = run_route(boom, 0)
    assert res.status is Status.FAILED and "ZeroDivisionError" in res.detail
    claim = C.Claim("X.boom", "s", (), (boom,))
    assert not run_claim(claim).ok


def test_undecided_sympy_fact_is_not_a_proof():
    fact = S.sign("sin is positive", sp.sin(S.x), "positive")
    assert fact.value is None
    res = S.route_from_facts([fact], "c", "step")
    assert res.status is Status.UNDECIDED and "could not decide" in res.detail


def test_unknown_claim_id_is_a_config_error():
    with pytest.raises(ConfigError) as info:
        C.select(["D9"])
    assert "D1" in info.value.allowed


def test_select_adds_falsifiers_of_selected_claims():
    ids = [c.id for c in C.select(["D2"], falsify=True)]
    assert ids == ["D2", "D2~r"]


def test_run_claim_default_seed_is_zero():
    seen = []
    claim = C.Claim("X.seed", "s", (),
                    (lambda seed: seen.append(seed) or _route(Status.VERIFIED),))
    run_claim(claim)
    assert seen == [0]


def test_identity_never_forces_power_or_log_rules_on_negative_bases():
    """log(xy) = log x + log y and (xy)^r = x^r y^r need x, y >= 0: with negative symbols
    the identity helper must not prove them (forcing the rules would)."""
    xn, yn = sp.symbols("x_n y_n", negative=True)
    assert S.identity("log rule", sp.log(xn * yn) - sp.log(xn) - sp.log(yn)).value is not True
    assert S.identity("power rule", (xn * yn) ** S.t - xn**S.t * yn**S.t).value is not True
    xp, yp = sp.symbols("x_p y_p", positive=True)
    assert S.identity("log rule", sp.log(xp * yp) - sp.log(xp) - sp.log(yp)).value is True
