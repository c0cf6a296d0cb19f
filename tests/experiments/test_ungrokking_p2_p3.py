"""Ungrokking (P2, P3) at tiny scale: files, refinement, continuation of unconverged runs, resume,
equal decay budgets, bad input, and what the rules say about a tiny run (and why)."""

from __future__ import annotations

import json
import math

import pandas as pd
import pytest

from circeff.empirical import presets
from circeff.empirical.config import Training
from circeff.empirical.experiments.predictions_common import TINY_MODEL, BaseConfig
from circeff.empirical.experiments.ungrokking import (
    UNGROKKING_COLUMNS,
    UngrokkingConfig,
    run_ungrokking,
    write_ungrokking,
)
from circeff.errors import ConfigError

BASE = BaseConfig(Training(p=11, seeds=(0, 1), steps=60, lr=1e-2, model=TINY_MODEL, log_every=10, checkpoint_every=30))
TINY = UngrokkingConfig(base=BASE, sizes=(10, 30, 60, 100), weight_decays=(1.0, 2.0), decay_budget=40.0, min_steps=0,
                        log_every=10, n_boot=50)


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("ungrok")
    result = run_ungrokking(TINY, out, progress=False)
    write_ungrokking(result)
    return out, result


def test_P3_equal_decay_budget_not_equal_steps():
    # AdamW decays lr * wd per step: smaller weight decay gets proportionally more steps, but no
    # weight decay gets fewer than min_steps (the middle weight decay's, in the presets)
    for cfg in (TINY, *(presets.get("ungrokking", s) for s in presets.SCALES)):
        for wd in cfg.weight_decays:
            if cfg.steps_for(wd) > cfg.min_steps:
                assert math.isclose(cfg.steps_for(wd) * wd, cfg.decay_budget, rel_tol=0.01, abs_tol=wd)
            else:
                assert cfg.steps_for(wd) == cfg.min_steps >= cfg.decay_budget / wd


def test_P2_ungrokking_writes_rows_json_figure_and_engine_runs(tiny_run):
    out, result = tiny_run
    for name in ("ungrokking.csv", "ungrokking.json", "ungrokking.png", "base/checkpoint.safetensors",
                 "wd_1/metrics.csv", "wd_2/config.json"):
        assert (out / name).is_file(), name
    rows = pd.read_csv(out / "ungrokking.csv")
    assert list(rows.columns) == UNGROKKING_COLUMNS
    coarse = rows[rows["stage"].str.startswith("coarse")]
    assert len(coarse) == TINY.n_models and sorted(coarse["D"].unique()) == list(TINY.sizes)
    assert dict(coarse[coarse["stage"] == "coarse"].groupby("weight_decay")["steps"].first()) == {1.0: 40, 2.0: 20}
    summary = json.loads((out / "ungrokking.json").read_text())
    assert summary["D_crit"]["D_crit"]["value"] == pytest.approx(result.D_crit.value)
    # P3 needs three weight decays spanning 4x: two cannot show independence, whatever the data
    assert summary["P3"]["holds"] is False and "needs 3 spanning x4" in summary["P3"]["reason"]
    # P2: the tiny base networks are not G-only (trig share far below 0.95), so P2 cannot hold
    assert summary["P2"]["holds"] is False
    assert (rows["base_trig_share"] < 0.95).all() and "not G-only" in summary["P2"]["reason"]
    # each continuation starts from its own seed's base network (init_index) on its own subset
    cfg = json.loads((out / "wd_1" / "config.json").read_text())
    assert {(r["seed"], r["init_index"], r["data_seed"]) for r in cfg["runs"]} == {(0, 0, 0), (1, 1, 1)}


def test_P2_refines_the_grid_around_the_first_D_crit(tiny_run):
    out, result = tiny_run
    rows = pd.read_csv(out / "ungrokking.csv")
    first = result.first_D_crit
    assert first is not None and result.refined_sizes
    lo, hi = TINY.refine_range
    # the added D' lie in [0.7, 1.4] x the coarse estimate (rounded), are new, and were trained
    assert all(lo * first - 1 <= d <= hi * first + 1 for d in result.refined_sizes)
    assert not set(result.refined_sizes) & set(TINY.sizes)
    refined = rows[rows["stage"].str.startswith("refine")]
    assert sorted(refined["D"].unique()) == list(result.refined_sizes)
    assert (out / "wd_1_refine" / "config.json").is_file()


def test_P2_unconverged_runs_are_continued_not_dropped(tiny_run):
    out, result = tiny_run
    rows = result.rows
    # 40 steps at tiny scale leave runs unconverged; each was continued once ("+1", twice the steps)
    continued = rows[rows["stage"].str.endswith("+1")]
    assert len(continued) > 0
    assert (continued["steps"] == 2 * continued["weight_decay"].map(TINY.steps_for)).all()
    assert any(out.glob("wd_*_more1/checkpoint.safetensors"))
    # every network appears once: the continuation replaces the unconverged row
    assert not rows.duplicated(["D", "seed", "weight_decay"]).any()
    excluded = json.loads((out / "ungrokking.json").read_text())["excluded_unconverged"]
    assert len(excluded) == int((~rows["converged"]).sum())


def test_P2_a_base_that_is_not_G_only_is_replaced_by_a_G_only_spare():
    from circeff.empirical.experiments.predictions_common import BaseResult

    rows = pd.DataFrame({"seed": [0, 1, 2, 3], "g_only": [True, False, True, True]})
    assert BaseResult(None, rows).chosen(3) == (0, 2, 3)      # seed 1 replaced by spare seed 3
    short = pd.DataFrame({"seed": [0, 1, 2, 3], "g_only": [False, False, True, False]})
    assert BaseResult(None, short).chosen(3) == (0, 1, 2)     # too few G-only: the rule then says so
    cfg = BaseConfig(BASE.training, spare_seeds=(7,))
    assert cfg.all_seeds == (0, 1, 7) and cfg.train_config().n_models == 3
    assert [r.seed for r in cfg.continuation([(10, 1.0, 2)], 5, init_from=".").runs] == [7]
    with pytest.raises(ConfigError) as exc:
        BaseConfig(BASE.training, spare_seeds=(1,))
    assert exc.value.field == "spare_seeds"


def test_P2_continuations_start_from_the_base_networks(tiny_run):
    out, _ = tiny_run
    from circeff.empirical.checkpoint import load_checkpoint

    base = load_checkpoint(out / "base")
    cont = load_checkpoint(out / "wd_1")
    step0 = [r for r in cont.rows if r["step"] == 0]
    base_final = {r["seed"]: r["param_norm"] for r in base.rows if r["step"] == base.step}
    for r in step0:
        assert r["param_norm"] == pytest.approx(base_final[r["seed"]], rel=1e-6)


def test_P2_rerun_skips_finished_training(tiny_run):
    out, first = tiny_run
    before = {p: p.stat().st_mtime_ns for p in out.glob("*/checkpoint.safetensors")}
    again = run_ungrokking(TINY, out, progress=False)
    assert {p: p.stat().st_mtime_ns for p in out.glob("*/checkpoint.safetensors")} == before
    pd.testing.assert_frame_equal(again.rows, first.rows)


def test_ungrokking_resumes_with_more_steps(tmp_path):
    short = UngrokkingConfig(base=BASE, sizes=(10, 30, 60), weight_decays=(1.0,), decay_budget=20.0, min_steps=0,
                             log_every=10, n_boot=50, n_refine=0, max_extensions=0)
    base_dir = tmp_path / "base"
    with pytest.raises(ConfigError):  # one weight decay: fine for P2; the fit needs >= 3 sizes and 2 seeds
        UngrokkingConfig(base=BASE, sizes=(10, 30), decay_budget=20.0)
    run_ungrokking(short, tmp_path / "u", progress=False, base_dir=base_dir)
    longer = UngrokkingConfig(base=BASE, sizes=(10, 30, 60), weight_decays=(1.0,), decay_budget=40.0, min_steps=0,
                              log_every=10, n_boot=50, n_refine=0, max_extensions=0)
    r = run_ungrokking(longer, tmp_path / "u", progress=False, base_dir=base_dir)
    assert set(r.rows["steps"]) == {40}
    assert not r.p3.holds and "needs 3" in r.p3.reason  # P3 needs three weight decays


@pytest.mark.parametrize("changes, field", [
    ({"sizes": (10, 30, 121)}, "sizes"),          # not smaller than the base's 121 pairs
    ({"sizes": (10, 10, 30)}, "sizes"),           # fewer than three distinct
    ({"weight_decays": (0.0, 1.0)}, "weight_decays"),
    ({"decay_budget": -1.0}, "decay_budget"),
    ({"refine_range": (1.4, 0.7)}, "refine_range"),
    ({"max_extensions": -1}, "max_extensions"),
])
def test_ungrokking_bad_config_names_the_field(changes, field):
    with pytest.raises(ConfigError) as exc:
        UngrokkingConfig(**{**TINY.__dict__, **changes})
    assert exc.value.field == field


def test_the_budget_counts_as_converged_only_against_a_larger_one(tiny_run):
    from dataclasses import replace

    _, result = tiny_run
    table = pd.DataFrame({"efolds": [3.0, 9.0, 27.0], "D_crit": [117.0, 132.0, 142.6]})
    # 13% then 8%: not converged, and the largest budget alone shows nothing
    assert replace(result, convergence=table).converged_budget() is None
    table["D_crit"] = [117.0, 140.0, 142.6]
    assert replace(result, convergence=table).converged_budget() == 9.0


def test_P2_P3_budget_check_reads_the_drift_from_the_grids_own_budget(tiny_run):
    from dataclasses import replace

    _, result = tiny_run
    at = result.config.efolds
    # settled from 3x the grid's budget on, but moving from the grid's budget: the check fails
    table = pd.DataFrame({"efolds": [at, 3 * at, 9 * at], "D_crit": [100.0, 120.0, 121.0]})
    run = replace(result, convergence=table)
    assert run.converged_budget() == pytest.approx(3 * at)
    check = run.budget_check()
    assert check["passed"] is False and check["max_drift_seen"] == pytest.approx(0.21)
    # settled from the grid's budget: it passes; no measurement: not a pass
    assert replace(result, convergence=table.assign(D_crit=[120.0, 121.0, 122.0])).budget_check()["passed"] is True
    assert replace(result, convergence=table.iloc[:0]).budget_check()["passed"] is None
