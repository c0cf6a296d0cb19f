"""Figure 9 (circeff.empirical.experiments.progress) and ``circeff analyze`` on trained runs."""

from __future__ import annotations

import pandas as pd
import pytest
import torch

from circeff.cli.main import run
from circeff.empirical.checkpoint import load_params
from circeff.empirical.config import ModelConfig, Training
from circeff.empirical.experiments.progress import (
    PROGRESS_COLUMNS,
    ProgressConfig,
    load_snapshots,
    progress_table,
    run_progress,
    write_progress,
)
from circeff.empirical.train import train
from circeff.errors import ConfigError, RunError
from circeff.io import read_json

TINY = ProgressConfig(Training(p=11, steps=60, seeds=(0,), log_every=10, lr=3e-3,
                               model=ModelConfig(d_model=16, n_heads=2, d_head=8, d_mlp=32)),
                      train_frac=0.5, snapshot_every=20)


@pytest.fixture(scope="module")
def progress_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("progress")
    result = run_progress(TINY, out, progress=False)
    write_progress(result.rows, out)
    return out, result


def test_progress_run_writes_one_row_per_snapshot(progress_run):
    out, result = progress_run
    assert list(result.rows["step"]) == [0, 20, 40, 60]
    assert (out / "fig9.png").stat().st_size > 0
    table = pd.read_csv(out / "progress.csv")
    assert list(table.columns) == PROGRESS_COLUMNS and len(table) == 4
    # the proxies split the correct logit exactly (centred decomposition)
    pd.testing.assert_series_equal(table["trig_train"] + table["mem_train"], table["correct_logit_train"],
                                   check_names=False, atol=1e-9, rtol=0)
    # the norm at each snapshot is the engine's logged norm
    metrics = pd.read_csv(out / "metrics.csv").set_index("step")
    for _, row in table.iterrows():
        assert row["param_norm"] == pytest.approx(metrics.loc[int(row["step"]), "param_norm"], rel=1e-6)


def test_segments_are_the_same_run_as_one_uninterrupted_run(progress_run, tmp_path):
    out, _ = progress_run
    train(TINY.train_config(), tmp_path / "whole", progress=False)
    _, whole, step = load_params(tmp_path / "whole")
    _, segmented, seg_step = load_params(out)
    assert step == seg_step == TINY.steps
    for name in whole:
        torch.testing.assert_close(segmented[name], whole[name], rtol=0, atol=0)
    assert [s for _, _, s in load_snapshots(out)] == [0, 20, 40, 60]


def test_rerun_skips_finished_segments_and_no_resume_refuses(progress_run):
    out, _ = progress_run
    before = (out / "checkpoint.safetensors").stat().st_mtime_ns
    again = run_progress(TINY, out, progress=False)
    assert (out / "checkpoint.safetensors").stat().st_mtime_ns == before and len(again.rows) == 4
    with pytest.raises(RunError, match="already holds a run"):
        run_progress(TINY, out, progress=False, resume=False)


def test_analyze_progress_and_fourier_commands(progress_run, tmp_path, capsys):
    out, _ = progress_run
    assert run(["analyze", "progress", str(out), "--out", str(tmp_path / "fig")]) == 0
    assert (tmp_path / "fig" / "fig9.png").is_file() and (tmp_path / "fig" / "progress.csv").is_file()
    assert run(["analyze", "fourier", str(out), "--json", str(tmp_path / "f.json")]) == 0
    printed = capsys.readouterr().out
    assert "trig share" in printed and "key frequencies" in printed
    data = read_json(tmp_path / "f.json")
    (model,) = data["models"]
    assert model["trig_train"] + model["mem_train"] == pytest.approx(model["correct_logit_train"], abs=1e-9)


def _one_line_error(capsys, code: int, field: str) -> None:
    err = capsys.readouterr().err
    assert code == 2, err
    name = field if field in ("RUN_DIR", "task") else "--" + field.replace("_", "-")
    assert err.startswith(f"error: {name}:") and err.count("\n") == 1


def test_analyze_bad_input_is_one_line(progress_run, tmp_path, capsys):
    out, _ = progress_run
    _one_line_error(capsys, run(["analyze", "fourier", str(tmp_path)]), "RUN_DIR")  # no checkpoint
    _one_line_error(capsys, run(["analyze", "progress", str(tmp_path)]), "RUN_DIR")  # no snapshots
    _one_line_error(capsys, run(["analyze", "fourier", str(out), "--model", "3"]), "model")
    sub = tmp_path / "sub"
    assert run(["train", "--task", "sub", "--p", "11", "--train-frac", "0.5", "--seeds", "0", "--steps", "1",
                "--out", str(sub), "--no-progress"]) == 0
    capsys.readouterr()
    _one_line_error(capsys, run(["analyze", "fourier", str(sub)]), "task")
    # a plain train run keeps one checkpoint: Figure 9 needs snapshots
    with pytest.raises(ConfigError, match="^run_dir:"):
        progress_table(sub)


@pytest.mark.parametrize(("args", "field"), [
    (["--preset", "huge"], "preset"),
    (["--train-frac", "0"], "train_frac"),
    (["--snapshot-every", "0"], "snapshot_every"),
    (["--p", "1"], "p"),
    (["--device", "tpu"], "device"),
])
def test_experiment_progress_bad_input(tmp_path, capsys, args, field):
    _one_line_error(capsys, run(["experiment", "progress", "--out", str(tmp_path / "x"), "--no-progress", *args]),
                    field)
