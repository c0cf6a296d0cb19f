"""`circeff theory ...` through circeff.cli.main.run: outputs, JSON, exit codes, bad input."""

from __future__ import annotations

import json

import pytest

from circeff.cli.main import run
from circeff.theory import claims as C
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
    bad = C.Claim("X.bad", "a claim that a route refutes", ("none",),
                  (lambda seed: RouteResult("numeric", Status.REFUTED, "counterexample 1",
                                            {}, counterexample={"x": 1}),))
    monkeypatch.setitem(C.CLAIMS, "X.bad", bad)
    assert run(["theory", "check", "--claims", "D2,X.bad"]) == 1
    assert "X.bad" in capsys.readouterr().out


def test_cli_optimum_power_law(tmp_path, capsys):
    path = tmp_path / "o.json"
    assert run(["theory", "optimum", "--P", "1.0,1.5,2.0", "--q", "2", "--kappa", "1",
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
    assert run(["theory", "optimum", "--P", "1.5,1.0,2.0", "--q", q, "--kappa", kappa,
                "--json", str(path)]) == 0
    data = json.loads(path.read_text())
    assert data["case"] == case
    assert isinstance(data["closed_form"], list) and len(data["weights"]) == 3
    if case != "power_law":
        assert data["weights"][0] == 0 and data["weights"][2] == 0 and data["weights"][1] > 0


@pytest.mark.parametrize("argv, field", [
    (["theory", "optimum", "--P", "1,2", "--q", "-1"], "--q"),
    (["theory", "optimum", "--P", "1,2", "--kappa", "0"], "--kappa"),
    (["theory", "optimum", "--P", "1,-2"], "--P"),
    (["theory", "optimum", "--P", ""], "--P"),
    (["theory", "optimum", "--P", "1,x"], "--P"),
    (["theory", "optimum", "--P", "1,2", "--n-classes", "1"], "--n-classes"),
    (["theory", "optimum", "--P", "1,2", "--alpha", "0"], "--alpha"),
    (["theory", "optimum", "--P", "1,2", "--alpha", "-0.5"], "--alpha"),
    (["theory", "optimum", "--P", "1,2", "--seed", "-1"], "--seed"),
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
    ["theory", "optimum", "--P", "1,2", "--q", "abc"],
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
