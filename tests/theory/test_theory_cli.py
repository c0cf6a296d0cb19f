"""`circeff theory ...` through circeff.cli.main.run: outputs, JSON, exit codes, bad input."""

from __future__ import annotations

import json
import math

import pytest

from circeff.cli.main import run
from circeff.errors import ConfigError
from circeff.theory import claims as C
from circeff.theory import optima as O
from circeff.theory.results import RouteResult, Status


def test_cli_check_default_passes_and_shows_D3_printed_refuted(tmp_path, capsys):
    path = tmp_path / "check.json"
    assert run(["theory", "check", "--json", str(path)]) == 0
    out = capsys.readouterr().out
    assert "D3.printed" in out and "refuted (expected)" in out
    assert "eps=0, x=1, r=2, c=1" in out
    for col in ("claim", "route", "status", "detail"):
        assert col in out
    data = json.loads(path.read_text())
    assert data["ok"] is True
    ids = [c["claim"] for c in data["claims"]]
    assert ids == list(C.DEFAULT_IDS)
    printed = next(c for c in data["claims"] if c["claim"] == "D3.printed")
    assert printed["expected"] == "refuted" and printed["outcome"] == "refuted"


def test_cli_check_subset_and_seed(tmp_path):
    path = tmp_path / "sub.json"
    assert run(["theory", "check", "--claims", "D1,D4.case2", "--seed", "7",
                "--json", str(path)]) == 0
    data = json.loads(path.read_text())
    assert [c["claim"] for c in data["claims"]] == ["D1", "D4.case2"] and data["seed"] == 7


def test_cli_check_falsify_prints_counterexamples(tmp_path, capsys):
    path = tmp_path / "f.json"
    assert run(["theory", "check", "--claims", "D2,D4.case2", "--falsify",
                "--json", str(path)]) == 0
    out = capsys.readouterr().out
    assert "D2~r" in out and "D4.case2~case" in out
    data = json.loads(path.read_text())
    variants = [c for c in data["claims"] if c["falsifies"]]
    assert {c["claim"] for c in variants} == {"D2~r", "D4.case2~case"}
    assert all(c["counterexample"] and c["outcome"] == "refuted" for c in variants)


def test_cli_check_exit_nonzero_when_a_claim_fails(monkeypatch, capsys):
    bad = C.Claim("X.bad", "a claim that a route refutes", (),
                  (lambda seed: RouteResult("numeric", Status.REFUTED, "counterexample 1",
                                            {}, counterexample={"x": 1}),))
    monkeypatch.setitem(C.CLAIMS, "X.bad", bad)
    assert run(["theory", "check", "--claims", "D2,X.bad"]) == 1
    assert "X.bad" in capsys.readouterr().out


def test_cli_optimum_power_law(tmp_path, capsys):
    path = tmp_path / "o.json"
    assert run(["theory", "optimum", "--p", "1.0,1.5,2.0", "--q", "2", "--kappa", "1",
                "--alpha", "0.01", "--n-classes", "113", "--json", str(path)]) == 0
    out = capsys.readouterr().out
    assert "power_law" in out and "loss at optimum" in out
    data = json.loads(path.read_text())
    assert {"case", "weights", "closed_form", "loss"} <= set(data)
    assert data["case"] == "power_law"
    w = data["weights"]
    # w_i ~ P_i^-2 here (q kappa / (q - kappa) = 2)
    assert w[0] / w[2] == pytest.approx(4.0, rel=1e-8)
    assert data["closed_form"] == pytest.approx(w, rel=1e-8)


@pytest.mark.parametrize("q, kappa, case", [("0.5", "1", "winner_take_all"),
                                             ("1.3", "1.3", "boundary"),
                                             ("3", "1.2", "power_law")])
def test_cli_optimum_cases(tmp_path, q, kappa, case):
    path = tmp_path / "o.json"
    assert run(["theory", "optimum", "--p", "1.5,1.0,2.0", "--q", q, "--kappa", kappa,
                "--json", str(path)]) == 0
    data = json.loads(path.read_text())
    assert data["case"] == case
    assert isinstance(data["closed_form"], list) and len(data["weights"]) == 3
    if case != "power_law":
        assert data["weights"][0] == 0 and data["weights"][2] == 0 and data["weights"][1] > 0


@pytest.mark.parametrize("argv, field", [
    (["theory", "optimum", "--p", "1,2", "--q", "-1"], "--q"),
    (["theory", "optimum", "--p", "1,2", "--kappa", "0"], "--kappa"),
    (["theory", "optimum", "--p", "1,-2"], "--p"),
    (["theory", "optimum", "--p", ""], "--p"),
    (["theory", "optimum", "--p", "1,x"], "--p"),
    (["theory", "optimum", "--p", "1,2", "--n-classes", "1"], "--n-classes"),
    (["theory", "optimum", "--p", "1,2", "--alpha", "0"], "--alpha"),
    (["theory", "optimum", "--p", "1,2", "--alpha", "-0.5"], "--alpha"),
    (["theory", "optimum", "--p", "1,2", "--seed", "-1"], "--seed"),
    (["theory", "check", "--claims", "D9"], "--claims"),
    (["theory", "check", "--claims", ""], "--claims"),
    (["theory", "check", "--claims", "D1,,D2"], "--claims"),
    (["theory", "check", "--seed", "-3"], "--seed"),
])
def test_cli_bad_input_one_line_exit_2(argv, field, capsys):
    assert run(argv) == 2
    captured = capsys.readouterr()
    lines = [ln for ln in captured.err.splitlines() if ln.strip()]
    assert len(lines) == 1, captured.err
    assert lines[0].startswith(f"error: {field}:")
    assert "Traceback" not in captured.err + captured.out


@pytest.mark.parametrize("argv", [
    ["theory", "optimum", "--p", "1,2", "--q", "abc"],
    ["theory", "optimum"],
])
def test_cli_typer_parse_errors_one_line(argv, capsys):
    assert run(argv) == 2
    err = capsys.readouterr().err
    assert len([ln for ln in err.splitlines() if ln.strip()]) == 1 and "Traceback" not in err


def test_cli_claims_lists_registry(capsys):
    assert run(["theory", "claims"]) == 0
    out = capsys.readouterr().out
    assert "D3.printed" in out and "D4.boundary" in out


def test_cli_optimum_old_P_spelling_is_gone(capsys):
    assert run(["theory", "optimum", "--P", "1,2"]) == 2
    assert "Traceback" not in capsys.readouterr().err


def test_cli_optimum_kappa_per_circuit(tmp_path, capsys):
    path = tmp_path / "o.json"
    assert run(["theory", "optimum", "--p", "1.0,0.6", "--q", "2", "--kappa", "4.0,2.2",
                "--alpha", "1e-6", "--json", str(path)]) == 0
    data = json.loads(path.read_text())
    assert data["kappa"] == [4.0, 2.2] and data["case"] == "winner_take_all"
    # the larger P wins here: its r = 0.5 is smaller, and s* is large at small alpha
    assert data["weights"][0] > 0 and data["weights"][1] == 0
    assert run(["theory", "optimum", "--p", "1,2,3", "--kappa", "4.0,2.2"]) == 2


@pytest.mark.parametrize("q, kappa, case", [("0.3", "4", "winner_take_all"),
                                             ("2", "2", "boundary"),
                                             ("2", "1.2", "power_law")])
def test_cli_optimum_certify_encloses_the_optimum(tmp_path, capsys, q, kappa, case):
    path = tmp_path / "c.json"
    assert run(["theory", "optimum", "--p", "0.05,0.3,1,2,3.5,5", "--q", q, "--kappa", kappa,
                "--alpha", "0.01", "--certify", "--json", str(path)]) == 0
    out = capsys.readouterr().out
    assert "s* in [" in out and "loss in [" in out and "inside the enclosures: yes" in out
    data = json.loads(path.read_text())
    cert = data["certificate"]
    assert cert["case"] == case == data["case"]
    lo, hi = cert["s_star"]
    assert lo <= data["total_weight"] <= hi and (hi - lo) <= 1e-12 * max(hi, 1e-300)
    assert cert["loss"][0] <= data["loss"] <= cert["loss"][1] * (1 + 4e-16)


def test_certify_rejects_a_wrong_root():
    """The enclosure is a sign certificate: a bracket that does not contain the root
    (shifted by 1 %) fails the interval sign test."""
    from mpmath import iv

    from circeff.theory import certify as Z

    prob = O.OptimumProblem((0.05, 0.3), 0.3, 4.0, 0.01, 113)
    cert = Z.certify(prob)
    s_lo, s_hi = cert.s_star
    log_k = iv.log(iv.mpf(112))
    coef = iv.mpf(0.01) / iv.mpf(0.3) * iv.mpf(0.05) ** iv.mpf(0.3)
    r = iv.mpf(0.3) / iv.mpf(4.0)
    assert Z._df(iv.mpf(s_lo), log_k, coef, r).b < 0 < Z._df(iv.mpf(s_hi), log_k, coef, r).a
    assert not Z._df(iv.mpf(s_hi * 1.01), log_k, coef, r).b < 0


@pytest.mark.parametrize("argv", [
    ["theory", "check", "--claims", "D2", "--json", "/nonexistent-dir/x.json"],
    ["theory", "optimum", "--p", "1,2", "--json", "/nonexistent-dir/x.json"],
    ["theory", "optimum", "--p", "1,2", "--json", "/"],
])
def test_cli_unwritable_json_one_line_exit_2(argv, capsys):
    assert run(argv) == 2
    err = capsys.readouterr().err
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: --json:") and "Traceback" not in err


def test_cli_require_proof_exit_codes(monkeypatch, capsys):
    assert run(["theory", "check", "--claims", "D2,D3", "--require-proof"]) == 0
    only_verified = C.Claim("X.numeric", "a claim with a numeric route only", (),
                            (lambda seed: RouteResult("numeric", Status.VERIFIED, "ok"),))
    monkeypatch.setitem(C.CLAIMS, "X.numeric", only_verified)
    assert run(["theory", "check", "--claims", "D2,X.numeric"]) == 0
    assert run(["theory", "check", "--claims", "D2,X.numeric", "--require-proof"]) == 3
    out = capsys.readouterr().out
    assert "not proved symbolically: X.numeric" in out and "verified" in out


@pytest.mark.parametrize("q, kappa", [("0.3", "4"), ("2", "1.2")])
def test_cli_optimum_certify_zero_total(tmp_path, capsys, q, kappa):
    """Decay so strong that s* = 0 (r < 1: f' > 0 at the peak; r > 1: s* underflows or
    is tiny): the certificate says so, and the numeric optimum lies inside it."""
    path = tmp_path / "z.json"
    assert run(["theory", "optimum", "--p", "5,6", "--q", q, "--kappa", kappa,
                "--alpha", "50", "--n-classes", "2", "--certify", "--json", str(path)]) == 0
    data = json.loads(path.read_text())
    cert = data["certificate"]
    assert cert["s_star"][0] <= data["total_weight"] <= cert["s_star"][1]
    assert cert["loss"][0] <= data["loss"] <= cert["loss"][1] * (1 + 4e-16)
    if q == "0.3":
        assert data["total_weight"] == 0 and cert["s_star"] == [0.0, 0.0]
        assert cert["loss"][0] <= math.log(2) <= cert["loss"][1]


def test_certify_zero_total_proof_fails_where_the_optimum_is_positive():
    """Negative control of the s* = 0 proof: on the small-r problem (s* = 14.05) the
    branch and bound must not prove f' > 0 everywhere; at alpha = 50 it must."""
    from mpmath import iv

    from circeff.theory import certify as Z

    def proves(alpha):
        coef = iv.mpf(alpha) / iv.mpf(0.3) * iv.mpf(5.0) ** iv.mpf(0.3)
        return Z._no_turning_point(iv.log(iv.mpf(1)), coef, iv.mpf(0.3) / iv.mpf(4.0), 2)

    assert proves(50.0)
    assert not proves(1e-3)


def test_certify_boundary_zero_total():
    """q = kappa with C = 0.9 > p(0) = 1/2 (two classes): f'(0) = 0.4 >= 0 and f convex,
    so s* = 0 is certified; the loss enclosure holds log 2."""
    from circeff.theory import certify as Z

    cert = Z.certify(O.OptimumProblem((1.0, 1.2), 2.0, 2.0, 1.8, 2))
    assert cert.case == O.BOUNDARY and cert.s_star == (0.0, 0.0)
    assert cert.loss[0] <= math.log(2) <= cert.loss[1]
    assert "f'(0)" in cert.notes[-1]


def test_certify_zero_total_needs_a_far_cutoff():
    """113 classes: the tail cutoff of the s* = 0 proof must be pushed out (s = 2 -> 4)
    before ``(n-1) e^{-s} s^(1-r) < C r``; the proof still succeeds."""
    from circeff.theory import certify as Z

    cert = Z.certify(O.OptimumProblem((5.0, 6.0), 0.3, 4.0, 50.0, 113))
    assert cert.s_star == (0.0, 0.0) and "branch and bound" in cert.notes[-1]


def test_certify_zero_total_proof_fails_just_above_the_peak():
    """r = 0.9, two classes: phi(s) = s^0.1 / (1 + e^s) peaks at about 0.383 near s = 0.19.
    With C r = 0.37 (below that peak) f' turns negative there, so s* = 0 must NOT be
    proved; with C r = 0.40 it must."""
    from mpmath import iv

    from circeff.theory import certify as Z

    r = iv.mpf(0.9)
    log_k = iv.log(iv.mpf(1))
    assert not Z._no_turning_point(log_k, iv.mpf(0.37) / r, r, 2)
    assert Z._no_turning_point(log_k, iv.mpf(0.40) / r, r, 2)


def test_certify_refuses_a_local_minimum_above_f0(monkeypatch):
    """r = 0.9, two classes, C r = 0.37: f dips just right of its local maximum but stays
    above f(0), so s* = 0. Handed that local minimum as 's*' (a solver bug), the
    certificate must refuse rather than certify it."""
    from scipy.optimize import brentq

    from circeff.theory import certify as Z
    from circeff.theory import ray as R

    prob = O.OptimumProblem((1.0,), 0.9, 1.0, 0.37, 2)
    coef, r = 0.37 / 0.9, 0.9

    def fprime(s):
        return -1 / (1 + math.exp(s)) + coef * r * s ** (r - 1)

    local_min = brentq(fprime, R.peak(2, r), 5.0)
    assert R.ce_value(local_min, 0.0, coef, r) > math.log(2)
    monkeypatch.setattr(Z.R, "solve_cross_entropy",
                        lambda n, c, rr: (local_min, R.ce_value(local_min, 0.0, c, rr)))
    with pytest.raises(ConfigError, match="f\\(s\\*\\) < f\\(0\\)"):
        Z.certify(prob)
