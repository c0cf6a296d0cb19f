"""Sweeps of the real training engine: batches, interruption, divergence, bad configs."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

import pandas as pd
import pytest
from hypothesis import given, settings

import circeff.empirical.train as engine_train
from tests.strategies.sweep import bad_train_configs

TINY = {"task": "add", "p": 7, "d_model": 8, "n_heads": 1, "d_head": 8, "d_mlp": 16,
        "train_frac": 0.5, "steps": 20, "log_every": 5, "checkpoint_every": 5}
GRID_16 = {"kind": "train", "base": TINY,
           "grid": {"lr": [1e-3, 3e-3], "weight_decay": [0.5, 1.0], "seed": [0, 1, 2, 3]}}


def _grid(folder: Path, spec) -> Path:
    path = folder / "grid.json"
    path.write_text(json.dumps(spec))
    return path


def _metrics_bytes(store: Path) -> dict[str, bytes]:
    return {p.parent.name: p.read_bytes() for p in sorted((store / "runs").glob("*/metrics.csv"))}


def test_16_run_engine_sweep_interrupted_and_resumed_equals_uninterrupted(tmp_path, cli, capsys, monkeypatch):
    grid = _grid(tmp_path, GRID_16)
    assert cli(["sweep", "run", str(grid), "--out", str(tmp_path / "whole")]) == 0
    assert "16 runs: 0 already done, 16 ran" in capsys.readouterr().out

    # Ctrl-C at step 12 of the second batch (two batches of 8: one per learning rate).
    calls, real_step = [0], engine_train.adamw_step

    def interrupting_step(*args, **kwargs):
        calls[0] += 1
        if calls[0] > 20 + 12:
            raise KeyboardInterrupt
        return real_step(*args, **kwargs)

    with monkeypatch.context() as m:
        m.setattr(engine_train, "adamw_step", interrupting_step)
        assert cli(["sweep", "run", str(grid), "--out", str(tmp_path / "cut")]) == 130
    capsys.readouterr()
    assert cli(["sweep", "status", str(tmp_path / "cut")]) == 0
    assert capsys.readouterr().out.strip() == "0 new, 8 resumable, 8 done"
    assert cli(["sweep", "run", str(grid), "--out", str(tmp_path / "cut")]) == 0
    assert "16 runs: 8 already done, 8 ran (8 resumed)" in capsys.readouterr().out

    whole, cut = _metrics_bytes(tmp_path / "whole"), _metrics_bytes(tmp_path / "cut")
    assert len(whole) == 16 and whole == cut, "resumed runs are bit-identical to uninterrupted ones"
    table = pd.read_csv(tmp_path / "cut" / "results.csv")
    assert table["run_id"].nunique() == 16 and len(table) == 16 * 5
    pd.testing.assert_frame_equal(table, pd.read_csv(tmp_path / "whole" / "results.csv"), check_exact=True)


def test_nan_in_one_model_is_marked_and_the_others_are_unaffected(tmp_path, cli, capsys):
    healthy = {"kind": "train", "base": TINY, "grid": {"weight_decay": [1.0], "seed": [0, 1]}}
    with_nan = {"kind": "train", "base": TINY, "grid": {"weight_decay": [1.0, 1e30], "seed": [0, 1]}}
    assert cli(["sweep", "run", str(_grid(tmp_path, healthy)), "--out", str(tmp_path / "ok")]) == 0
    assert cli(["sweep", "run", str(_grid(tmp_path, with_nan)), "--out", str(tmp_path / "nan")]) == 0
    out, err = capsys.readouterr()
    assert "2 diverged" in out.splitlines()[-1]
    lines = [line for line in err.splitlines() if line.startswith("diverged ")]
    assert len(lines) == 2 and all("non-finite loss at step " in line for line in lines)

    table = pd.read_csv(tmp_path / "nan" / "results.csv")
    bad = table[table["weight_decay"] == 1e30]
    step = int(json.loads(next((tmp_path / "nan" / "runs" / bad["run_id"].iloc[0]).glob("done.json")).read_text())
               ["summary"]["diverged_at"])
    assert set(bad[bad["step"] > step]["status"]) == {"diverged"}
    assert set(table[table["weight_decay"] == 1.0]["status"]) == {"ok"}
    ok = _metrics_bytes(tmp_path / "ok")
    assert all(_metrics_bytes(tmp_path / "nan")[run_id] == data for run_id, data in ok.items()), \
        "the healthy models of a batch with a diverging model train exactly as without it"


def test_nan_policy_stop_fails_the_batch_with_the_step(tmp_path, cli, capsys):
    spec = {"kind": "train", "base": {**TINY, "nan_policy": "stop"}, "grid": {"weight_decay": [1.0, 1e30]}}
    assert cli(["sweep", "run", str(_grid(tmp_path, spec)), "--out", str(tmp_path / "s")]) == 1
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 3 and all("non-finite loss at step" in line for line in err[:2])
    assert err[-1].startswith("error: 2 of 2 runs failed")


def test_same_seed_same_device_identical_metrics(tmp_path, cli, capsys):
    spec = {"kind": "train", "base": TINY, "grid": {"seed": [3]}}
    for name in ("first", "second"):
        assert cli(["sweep", "run", str(_grid(tmp_path, spec)), "--out", str(tmp_path / name)]) == 0
    first, second = _metrics_bytes(tmp_path / "first"), _metrics_bytes(tmp_path / "second")
    assert len(first) == 1 and first == second


def test_hypothesis_bad_train_configs_one_line_exit_2_nothing_written(cli, capsys):
    tried = []

    @settings(max_examples=150)
    @given(bad_train_configs())
    def check(case):
        fields, base = case
        with tempfile.TemporaryDirectory() as tmp:
            out = Path(tmp) / "out"
            code = cli(["sweep", "run", str(_grid(Path(tmp), {"kind": "train", "base": base})), "--out", str(out)])
            captured = capsys.readouterr()
            assert code == 2, (base, captured.err)
            assert captured.err.count("\n") == 1 and "Traceback" not in captured.err + captured.out
            assert any(captured.err.startswith(f"error: {f}") for f in fields), (fields, captured.err)
            assert not out.exists()
        tried.append(base)

    check()
    assert len(tried) >= 100
    print(f"bad train configs tried: {len(tried)}")


def test_a_run_without_test_examples_has_empty_test_cells_and_null_in_done_json(tmp_path, cli, capsys):
    spec = {"kind": "train", "base": {**TINY, "steps": 5}, "grid": {"train_frac": [0.5, 1.0]}}
    assert cli(["sweep", "run", str(_grid(tmp_path, spec)), "--out", str(tmp_path / "s")]) == 0
    capsys.readouterr()
    table = pd.read_csv(tmp_path / "s" / "results.csv")
    full = table["train_size"] == 49
    assert full.any() and table[full]["test_acc"].isna().all() and table[~full]["test_acc"].notna().all()
    for run_dir in (tmp_path / "s" / "runs").iterdir():
        lines = (run_dir / "metrics.csv").read_text().splitlines()
        header, last = lines[0].split(","), lines[-1].split(",")
        cells = dict(zip(header, last, strict=True))
        summary = json.loads((run_dir / "done.json").read_text())["summary"]
        if cells["train_size"] == "49":
            assert cells["test_loss"] == cells["test_acc"] == "" and summary["test_acc"] is None
        else:
            assert float(cells["test_acc"]) == summary["test_acc"]
