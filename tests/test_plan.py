"""The plan of a run counts the work the stages will do, and estimates its time without training."""

from __future__ import annotations

import json

import numpy as np

from circeff.cli.main import run
from circeff.reproduce.config import reproduce_config
from circeff.reproduce.plan import GPU_FLOPS, Work, plan_stages, stage_work


def test_plan_counts_every_model_step_of_the_stages():
    config = reproduce_config("cpu", "tiny")
    work = stage_work(config)
    ung, base = config.ungrokking, config.base
    # ungrokking: one model per (D', seed) trained steps_for(wd) steps, one batch per weight
    # decay, over the coarse grid and the n_refine D' added around D_crit at run time
    from circeff.empirical.experiments.ungrokking import refine_sizes

    middle = float(np.exp(np.mean(np.log(ung.sizes))))
    n_sizes = len(ung.sizes) + len(refine_sizes(middle, ung))
    assert len(refine_sizes(middle, ung)) > 0
    want = sum(n_sizes * len(base.seeds) * ung.steps_for(wd) for wd in ung.weight_decays)
    # the control: every base on its full training set at every weight decay
    want += sum(len(base.seeds) * ung.steps_for(wd) for wd in ung.weight_decays)
    # the budget's convergence: convergence_sizes D' x seeds, to the largest budget at the largest wd
    want += ung.convergence_sizes * len(base.seeds) * ung.convergence_steps(max(ung.convergence_efolds))
    assert sum(w.model_steps for w in work["ungrokking"]) == want
    assert sum(w.model_steps for w in work["base"]) == len(base.seeds) * base.steps
    eff = config.efficiency
    n_nets = len(eff.seeds) * (len(eff.m_train_sizes) + len(eff.g_train_sizes))
    trained = sum(w.model_steps for w in work["efficiency"] if w.kind == "train")
    settled = sum(w.model_steps for w in work["efficiency"] if w.kind == "settle")
    n_settled = n_nets + len(eff.seeds) * len(eff.g_subset_sizes)  # G is settled again on subsets
    assert trained == n_nets * eff.steps and settled == n_settled * eff.settle_iterations * len(eff.alphas)
    assert set(work) == {"progress", "efficiency", "base", "ungrokking", "semigrokking", "fig10"}


def test_plan_counts_the_G_networks_settled_again_on_subsets():
    from dataclasses import replace

    config = reproduce_config("cpu", "quick")
    eff = replace(config.efficiency, g_train_sizes=(506,), g_subset_sizes=(160, 285, 400))
    settle_G = [w for w in stage_work(replace(config, efficiency=eff))["efficiency"] if w.kind == "settle"][-1]
    assert settle_G.n_models == len(eff.seeds) * (len(eff.g_train_sizes) + len(eff.g_subset_sizes))


def test_plan_time_scales_with_flops_and_the_measured_rate():
    config = reproduce_config("cpu", "tiny")
    work = stage_work(config)
    w = work["base"][0]
    from circeff.reproduce.plan import Calibration, _key

    cal = {_key(x): Calibration(x.model, x.task.p, x.mean_size, 1.0, 1e9) for ws in work.values() for x in ws}
    plans = {p.stage: p for p in plan_stages(work, cal)}
    # 1e9 FLOPs per ms = 1e12 FLOP/s: seconds = FLOPs / 1e12 (a doubled rate would halve it)
    assert abs(plans["base"].cpu_s - w.flops() / 1e12) < 1e-9
    assert abs(plans["base"].gpu_s - w.flops() / GPU_FLOPS) < 1e-9
    doubled = Work(w.stage, w.kind, w.model, w.task, w.sizes, 2 * w.steps, w.log_every)
    assert abs(doubled.flops() - 2 * w.flops()) / w.flops() < 0.1  # evaluations add a little


def test_reproduce_plan_trains_nothing_and_writes_json(tmp_path, capsys):
    assert run(["reproduce", "--scale", "tiny", "--plan", "--json", str(tmp_path / "plan.json")]) == 0
    out = capsys.readouterr().out
    assert "model-steps" in out and "total" in out and "calibration" in out
    data = json.loads((tmp_path / "plan.json").read_text())
    assert data["estimate"] is True and data["total"]["model_steps"] > 0 and data["total"]["cpu_s"] > 0
    assert [p.name for p in tmp_path.iterdir()] == ["plan.json"]


def test_sweep_plan_groups_runs_into_engine_batches(tmp_path, capsys):
    grid = {"kind": "train", "base": {"task": "add", "p": 7, "steps": 5, "train_frac": 0.5},
            "grid": {"seed": [0, 1, 2], "weight_decay": [1.0]}}
    (tmp_path / "g.json").write_text(json.dumps(grid))
    assert run(["sweep", "run", str(tmp_path / "g.json"), "--plan", "--json", str(tmp_path / "p.json")]) == 0
    data = json.loads((tmp_path / "p.json").read_text())
    assert data["total"]["model_steps"] == 15 and len(data["stages"]) == 1
