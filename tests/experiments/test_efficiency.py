"""Prediction P1's experiment (circeff.empirical.experiments.efficiency) at a tiny scale:
plumbing, files, flags, resume-skip and bad input. The physics is checked by running the
presets (see the issue report), not here."""

from __future__ import annotations

import dataclasses
import shutil

import numpy as np
import pandas as pd
import pytest
import torch

from circeff.analysis.efficiency import EfficiencyAnalysis
from circeff.cli.main import run
from circeff.empirical import presets
from circeff.empirical.config import ModelConfig, Training, with_overrides
from circeff.empirical.experiments import efficiency as eff
from circeff.empirical.experiments.efficiency import (
    ROW_COLUMNS,
    EfficiencyConfig,
    LADDER_NAME,
    fit_rows,
    run_efficiency,
)
from circeff.errors import ConfigError, RunError
from circeff.io import read_json

# P = 11: G networks at 80-100 of 121 pairs; 300 steps at lr 3e-3 memorise, then a two-rung
# ladder of 20 L-BFGS iterations. The convergence and share thresholds are loose here: this
# checks the plumbing only.
TINY = EfficiencyConfig(
    Training(p=11, seeds=(0, 1), steps=300, lr=3e-3, model=ModelConfig(d_model=32, n_heads=2, d_head=16, d_mlp=64),
             log_every=50, checkpoint_every=100),
    m_train_sizes=(20, 40), g_train_sizes=(80, 100), alphas=(1e-3, 1e-2), settle_iterations=20,
    convergence_tol=10.0, trig_share_threshold=0.01, n_boot=200)


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("efficiency")
    return out, run_efficiency(TINY, out, progress=False)


def test_one_row_per_network_and_rung_and_every_file(tiny_run):
    out, result = tiny_run
    assert isinstance(result.analysis, EfficiencyAnalysis) and result.out_dir == out
    assert TINY.n_models == 8 and len(result.rows) == 8 * len(TINY.alphas)
    table = pd.read_csv(out / "efficiency.csv")
    assert list(table.columns) == ROW_COLUMNS and len(table) == 16
    grid = table.groupby("circuit")[["D", "weight_decay", "seed"]].apply(lambda g: len(g.drop_duplicates()))
    assert grid.to_dict() == {"G": 8, "M": 8}
    assert set(table.loc[table["circuit"] == "M", "D"]) == {20, 40}
    for name in ("efficiency.json", "fig3_logit_vs_norm.png", "efficiency_P_of_D.png"):
        assert (out / name).stat().st_size > 0
    summary = read_json(out / "efficiency.json")
    assert {"verdict", "fit_G", "fit_M", "trend_G", "trend_M", "crossover", "P_of_D", "counts"} <= set(summary)
    assert summary["intercepts"] == "D_seed" and summary["fit_M"]["intercepts"] == "D_seed"
    assert summary["counts"]["M"]["networks"] == 8


def test_measurements_are_consistent(tiny_run):
    _, result = tiny_run
    rows = result.rows
    # the correct logit is split exactly into the G and M proxies
    pd.testing.assert_series_equal(rows["trig_train"] + rows["mem_train"], rows["correct_logit"],
                                   check_names=False, atol=1e-9, rtol=0)
    m, g = rows[rows["circuit"] == "M"], rows[rows["circuit"] == "G"]
    # random labels: nothing trigonometric to learn, test accuracy near chance
    assert m["trig_share"].max() < 0.2 and m["test_acc"].max() < 0.5
    # accepted = converged (and, for G, trig share above the threshold)
    assert (rows["accepted"] <= rows["converged"]).all()
    assert ((g["trig_share"] > TINY.trig_share_threshold) | ~g["accepted"]).all()


def test_settling_moves_each_network_along_its_curve(tiny_run):
    _, result = tiny_run
    # a larger alpha is a smaller network with a smaller logit: the same circuit shrunk
    pairs = result.rows.pivot_table(index=["circuit", "D", "seed"], columns="weight_decay",
                                    values=["param_norm", "correct_logit"])
    lo, hi = TINY.alphas
    assert (pairs[("param_norm", hi)] < pairs[("param_norm", lo)]).all()
    assert (pairs[("correct_logit", hi)] < pairs[("correct_logit", lo)]).all()
    assert (result.rows["evaluations"] > TINY.settle_iterations).all()
    assert np.isfinite(result.rows[["norm_drift", "stationarity"]].to_numpy()).all()


def test_rerun_skips_finished_training_and_settling(tiny_run):
    out, first = tiny_run
    files = [out / c / name for c in ("M", "G") for name in ("checkpoint.safetensors", LADDER_NAME)]
    stamps = [f.stat().st_mtime_ns for f in files]
    again = run_efficiency(TINY, out, progress=False)
    assert [f.stat().st_mtime_ns for f in files] == stamps
    pd.testing.assert_frame_equal(again.rows, first.rows)


def test_an_interrupted_ladder_resumes_to_the_same_numbers(tiny_run, tmp_path, monkeypatch):
    out, first = tiny_run
    shutil.copytree(out / "M", tmp_path / "M")
    (tmp_path / "M" / LADDER_NAME).unlink()
    real, calls = eff.settle, []

    def killed_in_the_second_rung(*args, **kwargs):
        calls.append(1)
        if len(calls) == 2:
            raise KeyboardInterrupt
        return real(*args, **kwargs)

    monkeypatch.setattr(eff, "settle", killed_in_the_second_rung)
    with pytest.raises(KeyboardInterrupt):
        eff.settle_and_measure(TINY, "M", tmp_path / "M", progress=False)
    assert torch.load(tmp_path / "M" / LADDER_NAME, weights_only=True)["done"] == 1
    monkeypatch.setattr(eff, "settle", real)
    resumed = pd.DataFrame([eff.with_flags(TINY, r) for r in eff.settle_and_measure(TINY, "M", tmp_path / "M", progress=False)],
                           columns=ROW_COLUMNS)
    expected = first.rows[first.rows["circuit"] == "M"].reset_index(drop=True)
    pd.testing.assert_frame_equal(resumed, expected)


def test_too_few_accepted_networks_is_a_run_error_with_the_table_kept(tiny_run, tmp_path):
    out, _ = tiny_run
    strict = with_overrides(TINY, trig_share_threshold=0.999999)  # no G network passes
    with pytest.raises(RunError, match="P1 fit is impossible"):
        run_efficiency(strict, out, progress=False)
    assert "error" in read_json(out / "efficiency.json")
    table = pd.read_csv(out / "efficiency.csv")
    assert table["accepted"].sum() == table.loc[table["circuit"] == "M", "accepted"].sum() > 0  # M only
    run_efficiency(TINY, out, progress=False)  # restore the module fixture's files


def test_fit_rows_keep_D_with_two_seeds_of_two_accepted_networks():
    rows = pd.DataFrame([
        {"circuit": c, "D": d, "seed": seed, "weight_decay": wd, "accepted": ok}
        for c, d, seed, wd, ok in [
            ("M", 10, 0, 1.0, True), ("M", 10, 0, 2.0, True), ("M", 10, 1, 1.0, True), ("M", 10, 1, 2.0, True),
            ("M", 20, 0, 1.0, True), ("M", 20, 0, 2.0, True), ("M", 20, 1, 1.0, True), ("M", 20, 1, 2.0, False),
            ("G", 50, 0, 1.0, True), ("G", 50, 0, 2.0, True), ("G", 50, 1, 1.0, True), ("G", 50, 1, 2.0, True),
        ]])
    kept, dropped = fit_rows(rows)
    assert sorted(set(zip(kept["circuit"], kept["D"]))) == [("G", 50), ("M", 10)]
    assert {(d["circuit"], d["D"], d["seed"]) for d in dropped} == {("M", 20, 1), ("M", 20, None)}
    assert kept["accepted"].all()


def test_presets_are_valid_and_the_quick_one_is_small():
    assert {s for e, s in presets.PRESETS if e == "efficiency"} == {"quick", "full", "paper"}
    quick = presets.get("efficiency", "quick")
    assert quick.p <= 31 and len(quick.m_train_sizes) >= 3 and len(quick.g_train_sizes) >= 3
    assert len(quick.seeds) >= 2 and len(quick.alphas) >= 3 and quick.trig_share_threshold == 0.95
    assert presets.get("efficiency", "paper").p == 113
    assert min(quick.g_train_sizes) > max(quick.m_train_sizes)


@pytest.mark.parametrize(("changes", "field"), [
    ({"m_train_sizes": (40,)}, "m_train_sizes"),
    ({"g_train_sizes": (400, 400)}, "g_train_sizes"),
    ({"g_train_sizes": (400, 10_000)}, "g_train_sizes"),
    ({"alphas": (1e-3,)}, "alphas"),
    ({"alphas": (1e-3, -1.0)}, "alphas"),
    ({"settle_iterations": 0}, "settle_iterations"),
    ({"weight_decay": 0.0}, "train_weight_decay"),
    ({"seeds": (0,)}, "seeds"),
    ({"trig_share_threshold": 1.0}, "trig_share_threshold"),
    ({"p": 1}, "p"),
])
def test_bad_config_names_the_field(changes, field):
    with pytest.raises(ConfigError, match=f"^{field}:"):
        with_overrides(presets.get("efficiency", "quick"), **changes)


@pytest.mark.parametrize(("args", "field"), [
    (["--m-train-sizes", "40"], "m_train_sizes"),
    (["--g-train-sizes", "300"], "g_train_sizes"),
    (["--alphas", "1e-3"], "alphas"),
    (["--settle-iterations", "0"], "settle_iterations"),
    (["--seeds", "0"], "seeds"),
    (["--seeds", "a,b"], "seeds"),
    (["--preset", "huge"], "preset"),
    (["--steps", "0"], "steps"),
    (["--device", "tpu"], "device"),
])
def test_cli_bad_input_is_one_line(tmp_path, capsys, args, field):
    code = run(["experiment", "efficiency", "--preset", "quick", "--out", str(tmp_path / "x"), "--no-progress", *args])
    err = capsys.readouterr().err
    assert code == 2, err
    assert err.startswith(f"error: --{field.replace('_', '-')}:") and err.count("\n") == 1
    assert not (tmp_path / "x").exists()  # nothing trained on bad input
