"""The allocation stage of ``circeff reproduce`` at the tiny scale: it runs the disjoint D.4
test, settles Figure 10's networks, fits both curves and the crossovers, produces the
``allocation`` verdict from those numbers, resumes from its markers, and a mutated D.4
prediction shows up in its verdict. (Tiny numbers mean nothing; the tests check that the
verdict's numbers are the ones its rule and tables are computed from.)"""

from __future__ import annotations

import math

import numpy as np
import pytest

from circeff.analysis import allocation
from circeff.analysis.allocation import kappa_from_exponent
from circeff.empirical import disjoint
from circeff.reproduce import reproduce_config
from circeff.reproduce.stages import Context, stage_allocation, stage_base, stage_fig10


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    out = tmp_path_factory.mktemp("reproduce")
    ctx = Context(reproduce_config("cpu", "tiny"), out, progress=False)
    upstream = {}
    for name, stage in (("base", stage_base), ("fig10", stage_fig10)):
        upstream[name] = stage(ctx, out / name, dict(upstream))
    result = stage_allocation(ctx, out / "allocation", upstream)
    return ctx, out, result, upstream


def test_allocation_stage_verdict_numbers_follow_its_rule(tiny):
    ctx, out, r, _ = tiny
    v = r.verdict("allocation")
    n = v.numbers
    cfg = ctx.config.allocation
    # the disjoint test covers every (D, seed) of the preset, each pair settled
    assert n["disjoint_cells"] == len(cfg.disjoint.sizes) * len(cfg.disjoint.seeds)
    assert 0.0 <= n["disjoint_winner_agreement"]["value"] <= 1.0
    # the verdict's medians are the medians of the per-D log errors it lists, away from the crossover
    errs = n["log_error_by_D"]
    assert len(errs) == len(ctx.config.fig10.sizes)
    scored = [e for e in errs if not e["near_crossover"]]
    assert [e["D"] for e in errs if e["near_crossover"]] == n["near_crossover_D"]
    if scored:
        assert math.isclose(n["median_abs_error_a"], float(np.median([abs(e["a"]) for e in scored])), rel_tol=1e-12)
        assert math.isclose(n["median_abs_error_b"], float(np.median([abs(e["b"]) for e in scored])), rel_tol=1e-12)
    # kappa_eff is the exponent mapped through k = q e / (q + e)
    assert math.isclose(n["kappa_eff"]["value"], float(kappa_from_exponent(n["exponent"]["value"])), rel_tol=1e-12)
    # holds exactly when the difference's interval lies above 0 (the data support case 2)
    d = n["difference"]
    assert v.holds == (d["lo"] > 0)
    assert n["supported"] == ("undecided" if not scored else "b" if d["lo"] > 0 else "a" if d["hi"] < 0
                              else "neither")
    assert v.outcome == {"b": "holds", "a": "does not hold"}.get(n["supported"], "undecided")
    # settled and AdamW ratios for every D of Figure 10, three D_crit routes
    assert [x["D"] for x in n["fig10_ratio_by_D"]] == [float(d) for d in ctx.config.fig10.sizes]
    assert {x["route"] for x in n["dcrit_routes"]} == {"operating_settled", "operating_adamw", "unit_logit"}
    assert (out / "allocation" / "allocation_curves.png").stat().st_size > 10_000
    assert (out / "allocation" / "allocation_d4.json").is_file()
    assert "crossover_operating" in r.estimates


def test_allocation_stage_resumes_without_settling_again(tiny, monkeypatch):
    ctx, out, first, upstream = tiny

    def boom(*a, **k):
        raise AssertionError("settled again although the markers say it is done")

    monkeypatch.setattr(disjoint, "settle_alone", boom)
    monkeypatch.setattr("circeff.empirical.experiments.allocation.settle_alone", boom)
    monkeypatch.setattr("circeff.empirical.experiments.allocation.settle_fig10", boom)
    again = stage_allocation(ctx, out / "allocation", upstream)
    assert again.verdict("allocation").numbers == first.verdict("allocation").numbers
    # without its marker the settled Figure 10 is redone (so the check above could fail)
    marker = out / "allocation" / "fig10_settled.json"
    saved = marker.read_text()
    marker.unlink()
    try:
        with pytest.raises(AssertionError, match="settled again"):
            stage_allocation(ctx, out / "allocation", upstream)
    finally:
        marker.write_text(saved)


def test_allocation_stage_catches_a_mutated_D4_prediction(tiny, monkeypatch):
    """Negative control: D.4's weights handed to the wrong circuits (G's to M, M's to G) lose
    the agreement the real prediction has on the tiny pairs. (Swapping only P_G and P_M is
    not a control here: with kappa_G != kappa_M the operating logit can keep the winner.)"""
    ctx, out, first, upstream = tiny
    good = first.verdict("allocation").numbers
    assert good["disjoint_winner_agreement"]["value"] == 1.0
    real = allocation.d4_optimum
    monkeypatch.setattr(allocation, "d4_optimum", lambda *a, **k: real(*a, **k)[::-1])
    mutated = stage_allocation(ctx, out / "allocation", upstream).verdict("allocation").numbers
    assert mutated["disjoint_winner_agreement"]["value"] == 0.0
    assert mutated["disjoint_winner_agreement"]["hi"] < 0.75


def test_allocation_leaves_out_a_D_where_one_G_seed_stayed_G_only(tiny):
    # kappa_G's fit needs two seeds per D; a D where only one G circuit kept its trig share is
    # left out of it (the full run's float-order second run failed on such a D instead)
    import pandas as pd

    from circeff.empirical.experiments.allocation import analyse_allocation

    ctx, out, _, _ = tiny
    folder = out / "allocation"
    alone = pd.read_csv(folder / "disjoint" / "disjoint_alone.csv")
    pair = pd.read_csv(folder / "disjoint" / "disjoint_pair.csv")
    fig10_rows = pd.read_csv(folder / "fig10_settled.csv")
    g = alone["circuit"] == "G"
    D_values = sorted(alone.loc[g, "D"].unique())
    assert len(D_values) >= 3 and alone.loc[g, "seed"].nunique() >= 2
    lone_D, lone_seed = D_values[0], sorted(alone.loc[g, "seed"].unique())[0]
    alone.loc[g, "trig_share"] = 1.0  # every G circuit counts as generalising...
    others = g & (alone["D"] == lone_D) & (alone["seed"] != lone_seed)
    alone.loc[others, "trig_share"] = 0.0  # ...but at one D only one seed does
    a = analyse_allocation(alone, pair, fig10_rows, n_classes=ctx.config.base.p,
                           state_alpha=ctx.config.allocation.state_alpha, g_only_share=0.5, n_boot=50)
    used = {d for d, _ in a.summary["g_stripes_used"]}
    assert lone_D not in used and used == set(map(float, D_values[1:]))
