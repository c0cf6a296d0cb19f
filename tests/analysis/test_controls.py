"""Negative controls and power: the rates are measured, designs are read back from tables,
and a design that cannot reach the targets is reported as such (fixed seeds)."""

from __future__ import annotations

import json
from dataclasses import replace

import numpy as np
import pytest

from circeff.analysis import controls as C
from circeff.analysis import verdicts as V
from circeff.errors import ConfigError

DESIGNS = C.reference_designs()


@pytest.mark.parametrize("name, fn", [
    ("P2.quick.refined", V.p2),
    ("P3.cpu.refined", V.p3),
    ("fig10a.quick.3_seeds", V.fig10a),
    ("P4.quick", V.p4),
])
def test_controls_reject_the_named_alternative(name, fn):
    res = C.measure_controls(fn, DESIGNS[name], n=8, seed=0)
    assert res["false_accept"]["k"] == 0 and res["false_accept"]["n"] == 8
    assert res["false_accept"]["hi"] == pytest.approx(1 - 0.025 ** (1 / 8))  # Clopper-Pearson at k = 0
    assert res["false_reject"]["value"] <= 0.25
    assert res["alternative"] == C.ALTERNATIVES[DESIGNS[name].key]
    json.dumps(res, allow_nan=False)


def test_P1_controls_on_a_G_range_of_half_a_decade():
    design = replace(DESIGNS["P1.cpu.G_half_decade"], seeds=8)
    res = C.measure_controls(V.p1, design, n=20, seed=0)
    assert res["false_accept"]["k"] == 0
    assert res["false_reject"]["value"] <= 0.2
    assert res["rule"]["delta_fraction"] == 0.5


def test_P1_controls_report_a_design_that_cannot_pass():
    # the old quick preset's G sizes span 0.065 decades: the rule never shows G flat, truth or not
    res = C.measure_controls(V.p1, DESIGNS["P1.quick"], n=10, seed=0)
    assert res["false_reject"]["k"] == 10 and not res["meets_targets"]
    assert "lacks the power to tell" in res["example_wrong_reasons"]["false_reject"]


def test_required_design_finds_the_first_design_meeting_targets():
    out = C.required_design(V.fig10a, DESIGNS["fig10a.quick"], "seeds", [2, 3], n=10, seed=0)
    assert out["first_meeting_targets"] == 3
    assert out["tried"][0]["false_reject"]["value"] == 1.0   # two seeds per D never pass


def test_P1_design_read_back_from_a_table():
    truth = DESIGNS["P1.cpu.G_half_decade"]
    est = C.estimate_p1_design(C.simulate(replace(truth, seeds=10), "hypothesis", 0))
    assert est.slope_M == pytest.approx(truth.slope_M, abs=0.05)
    assert est.kappa_M == pytest.approx(truth.kappa_M, rel=0.1)
    assert est.stripe_sd_M == pytest.approx(truth.stripe_sd_M, rel=0.4)
    assert est.G_D == truth.G_D and est.seeds == 10
    assert est.G_cells == tuple((D, s) for D in truth.G_D for s in range(10))


def test_P1_power_is_measured_on_the_G_networks_the_run_kept():
    """A run keeps only the G networks that stayed G-only. The design read back from its table
    simulates those (D, seed) stripes, not every trained seed at every D: with two seeds kept at
    two or more D the clustered slope has one degree of freedom, and the power says so."""
    truth = replace(DESIGNS["P1.cpu.G_half_decade"], seeds=5, stripe_sd_G=0.05)
    table = C.simulate(truth, "hypothesis", 0)
    # seeds 2-4 stayed G-only at one D each; seeds 0 and 1 at every D
    lone = {2: truth.G_D[0], 3: truth.G_D[1], 4: truth.G_D[2]}
    drop = (table["circuit"] == "G") & table["seed"].map(lambda s: s in lone) & (table["D"] != table["seed"].map(lone))
    kept = table[~drop]
    est = C.estimate_p1_design(kept)
    assert est.seeds == 5 and len(est.G_cells) == 2 * 3 + 3
    assert sorted(est.seeds_at("G", truth.G_D[0])) == [0, 1, 2] and len(est.seeds_at("M", truth.M_D[0])) == 5
    sim = C.simulate(est, "hypothesis", 1)
    per_seed = sim[sim["circuit"] == "G"].groupby("seed")["D"].nunique()
    assert sorted(per_seed.tolist()) == [1, 1, 1, 3, 3]
    # the kept design has less power than the same noise with every seed at every D
    full = C.measure_controls(V.p1, replace(est, G_cells=None), n=40, seed=0)
    thin = C.measure_controls(V.p1, est, n=40, seed=0)
    assert thin["false_reject"]["value"] > full["false_reject"]["value"]
    # more copies of the kept networks give the power back
    more = C.measure_controls(V.p1, replace(est, copies=4), n=40, seed=0)
    assert more["false_reject"]["value"] < thin["false_reject"]["value"]


def test_transition_design_read_back_from_a_table():
    truth = replace(DESIGNS["P2.cpu.refined"], seeds=8)
    est = C.estimate_transition_design(C.simulate(truth, "hypothesis", 0), truth.chance)
    assert est.D_crit == pytest.approx(truth.D_crit, rel=0.1)
    assert est.noise_sd == pytest.approx(truth.noise_sd, rel=0.4)
    assert est.seed_sd == pytest.approx(truth.seed_sd, abs=0.08)
    assert est.sizes == tuple(float(s) for s in truth.sizes) and est.unconverged == 0


def test_P4_and_fig10_designs_read_back_from_tables():
    truth = DESIGNS["P4.quick"]
    est = C.estimate_p4_design(C.simulate(truth, "hypothesis", 0), truth.chance)
    assert est.noise_sd == pytest.approx(truth.noise_sd, rel=0.3)
    assert est.steps == tuple(float(s) for s in truth.steps) and est.seeds == truth.seeds
    f = DESIGNS["fig10a.cpu"]
    est = C.estimate_fig10_design(C.simulate(f, "hypothesis", 0))
    assert est.slope == pytest.approx(f.slope, abs=0.3) and est.noise_sd == pytest.approx(0.5, rel=0.3)


def test_simulate_names_a_bad_truth():
    with pytest.raises(ConfigError, match="truth"):
        C.simulate(DESIGNS["P2.quick"], "null")
    table = C.simulate(DESIGNS["P3.quick.refined_3wd"], "alternative", 0)
    assert np.isclose(table["weight_decay"].max() / table["weight_decay"].min(), 4.0)


def test_measure_designs_uses_each_designs_own_verdict():
    out = C.measure_designs({"a": DESIGNS["fig10a.cpu"], "b": DESIGNS["P3.cpu.refined"]}, n=4, seed=0)
    assert out["a"]["key"] == "fig10a" and out["b"]["key"] == "P3"
    assert out["b"]["rule"]["tolerance"] == 0.1 and out["a"]["false_accept"]["n"] == 4


def test_P1_without_power_says_how_many_seeds_would_judge_G():
    """A design too noisy to judge G (two seeds, G's stripes as noisy as the full run's) gets a
    power projection over more seeds, and the power rises with them; a design with the power
    gets none."""
    truth = replace(DESIGNS["P1.cpu.G_half_decade"], seeds=2, stripe_sd_G=0.3)
    entry, verdict = C.p1_on_its_design(C.simulate(truth, "hypothesis", 0), n=20)
    assert verdict.numbers["outcome_G"] == "undecided"
    scan = entry["seeds_for_power"]
    assert scan["field"] == "copies" and [t["copies"] for t in scan["tried"]][0] == C.SEED_MULTIPLES[0]
    power = [1 - t["false_reject"]["value"] for t in scan["tried"]]
    assert power == sorted(power)
    quiet = replace(DESIGNS["P1.cpu.G_half_decade"], seeds=5, stripe_sd_G=0.01)
    entry, _ = C.p1_on_its_design(C.simulate(quiet, "hypothesis", 0), n=20)
    assert C.rates_of(entry)["power"] >= 0.8 and "seeds_for_power" not in entry
