"""Semi-grokking (P4) at tiny scale: sizes from D_crit, on-demand D_crit, files, resume."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from circeff.empirical.config import Training
from circeff.empirical.experiments.predictions_common import TINY_MODEL, BaseConfig
from circeff.empirical.experiments.semigrokking import SemigrokConfig, run_semigrokking, write_semigrokking, sizes_above
from circeff.empirical.experiments.ungrokking import UngrokkingConfig
from circeff.errors import ConfigError

TINY = SemigrokConfig(Training(p=11, model=TINY_MODEL, lr=1e-2, seeds=(0, 1), steps=120, log_every=10,
                               checkpoint_every=60), n_sizes=2, low_factor=1.0, high_factor=2.0)


def test_P4_sizes_evenly_spaced_from_dcrit():
    assert sizes_above(100.0, 3, 1.0, 4.0, 10_000) == (100, 250, 400)
    assert sizes_above(100.0, 3, 1.0, 4.0, 300) == (100, 250, 299)  # clipped below the dataset size
    with pytest.raises(ConfigError) as exc:
        sizes_above(float("nan"), 3, 1.0, 2.0, 100)
    assert exc.value.field == "dcrit"


def test_P4_without_dcrit_or_sizes_is_a_one_line_error(tmp_path):
    with pytest.raises(ConfigError) as exc:
        run_semigrokking(TINY, tmp_path, progress=False)
    assert exc.value.field == "dcrit" and "\n" not in str(exc.value)


def test_P4_semigrokking_writes_curves_classes_and_verdict(tmp_path):
    r = run_semigrokking(TINY, tmp_path, dcrit=40.0, progress=False)
    assert r.sizes == (40, 80)
    write_semigrokking(r)
    for name in ("curves.csv", "classes.csv", "semigrokking.json", "semigrokking.png", "runs/checkpoint.safetensors"):
        assert (tmp_path / name).is_file(), name
    curves = pd.read_csv(tmp_path / "curves.csv")
    assert curves["run"].nunique() == 4 == len(r.classes)
    assert curves.groupby("run")["step"].max().eq(120).all()
    summary = json.loads((tmp_path / "semigrokking.json").read_text())
    assert summary["D_crit_used"] == 40.0
    v = summary["verdict"]
    assert v["numbers"]["n_runs"] == 4 and sum(v["numbers"]["counts"].values()) == 4
    assert v["numbers"]["sizes_over_D_crit"] == [1.0, 2.0]
    # the figure's classes are the rule's classes
    assert sorted(c.label for c in r.classes) == sorted(
        lab for lab, n in v["numbers"]["counts"].items() for _ in range(n))
    # holds only with two semi-grokked runs of distinct seeds and sizes
    semi = [(c.D, c.seed) for c in r.classes if c.label == "semi"]
    assert v["holds"] == any(a[0] != b[0] and a[1] != b[1] for a in semi for b in semi)
    # the pilot's table and the per-size counts are written from the same classes
    scales = pd.read_csv(tmp_path / "timescales.csv")
    assert list(scales["class"]) == [c.label for c in r.classes]
    assert {"step_train_0.99", "step_test_onset", "final_test_acc", "weight_decay"} <= set(scales.columns)
    by_size = pd.read_csv(tmp_path / "by_size.csv")
    assert by_size[["grokked", "semi", "no_delay", "ungeneralised", "unsettled"]].to_numpy().sum() == 4
    assert (tmp_path / "semigrokking_final.png").is_file()
    assert summary["config"]["decay_budget"] == pytest.approx(TINY.lr * TINY.weight_decay * TINY.steps)
    assert 0 <= summary["config"]["power"]["p=0.1"] <= 1
    # rerun: training is skipped (the checkpoint is not rewritten)
    stamp = (tmp_path / "runs" / "checkpoint.safetensors").stat().st_mtime_ns
    run_semigrokking(TINY, tmp_path, dcrit=40.0, progress=False)
    assert (tmp_path / "runs" / "checkpoint.safetensors").stat().st_mtime_ns == stamp


def test_P4_dcrit_computed_on_demand_from_ungrokking(tmp_path):
    base = BaseConfig(Training(p=11, seeds=(0, 1), steps=40, lr=1e-2, model=TINY_MODEL, log_every=10,
                               checkpoint_every=20))
    ungrok = UngrokkingConfig(base=base, sizes=(10, 30, 60), weight_decays=(1.0,), decay_budget=20.0, min_steps=0,
                              log_every=10, n_boot=30)
    r = run_semigrokking(SemigrokConfig(**{**TINY.__dict__, "n_sizes": 1}), tmp_path, ungrokking=ungrok,
                         progress=False)
    assert (tmp_path / "ungrokking_for_dcrit" / "ungrokking.json").is_file()
    assert r.dcrit is not None and r.dcrit > 0
    assert len(r.sizes) == 1


def test_P4_bad_config_names_the_field():
    with pytest.raises(ConfigError) as exc:
        SemigrokConfig(Training(p=11), sizes=(50, 121))
    assert exc.value.field == "sizes"
    with pytest.raises(ConfigError) as exc:
        SemigrokConfig(Training(p=11), low_factor=2.0, high_factor=1.0)
    assert exc.value.field == "high_factor"
