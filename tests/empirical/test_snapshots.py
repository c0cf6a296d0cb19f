"""Weight snapshots over training (``train(..., snapshot_every=N)``, ``circeff train
--snapshot-every N``): files, index, consistency across a kill and a resume, and the readers
(``progress_table``, ``analyse_run(step=...)``, ``circeff analyze``)."""

from __future__ import annotations

import csv
import io
import json

import pytest
import torch
from safetensors import safe_open

from circeff.cli.main import run
from circeff.empirical.checkpoint import (
    CHECKPOINT_NAME,
    SNAPSHOT_INDEX_COLUMNS,
    load_checkpoint,
    load_snapshot,
    read_snapshot,
    read_snapshot_index,
    rebuild_snapshot_index,
    snapshot_files,
)
from circeff.empirical.circuits import analyse_params, analyse_run
from circeff.empirical.config import ModelConfig, RunSpec, TrainConfig
from circeff.empirical.experiments.progress import load_snapshots, progress_table
from circeff.empirical.model import WEIGHT_NAMES, param_norm
from circeff.empirical.tasks import TaskConfig
from circeff.empirical.train import train
from circeff.errors import ConfigError, RunError

TINY = ModelConfig(d_model=16, n_heads=2, d_head=8, d_mlp=32)
TASK = TaskConfig("add", 13)
EVERY = 7


def _config(**kw) -> TrainConfig:
    runs = (RunSpec(seed=0, train_size=80), RunSpec(seed=1, weight_decay=0.5, train_size=60, data_seed=2))
    base = dict(task=TASK, runs=runs, model=TINY, steps=30, log_every=5, checkpoint_every=10, lr=3e-3)
    base.update(kw)
    return TrainConfig(**base)


def _metrics_rows(path):
    with open(path, newline="") as fh:
        return list(csv.DictReader(fh))


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    """30 steps, snapshots every 7: steps 0, 7, 14, 21, 28 and the last, 30."""
    out = tmp_path_factory.mktemp("snap")
    train(_config(), out, progress=False, snapshot_every=EVERY)
    return out


def test_snapshots_at_step_0_every_n_and_the_last_step(run_dir):
    files = snapshot_files(run_dir)
    assert list(files) == [0, 7, 14, 21, 28, 30]
    assert [p.name for p in files.values()] == [f"step_{s:08d}.safetensors" for s in files]
    index = read_snapshot_index(run_dir)
    assert list(index[0]) == SNAPSHOT_INDEX_COLUMNS
    assert [(int(r["step"]), r["file"], int(r["model"])) for r in index] == [
        (s, files[s].name, m) for s in files for m in (0, 1)]


def test_snapshot_weights_are_the_run_at_that_step(run_dir, tmp_path):
    """The snapshot at 14 holds what a run stopped at step 14 holds (engine checkpoints are exact)."""
    train(_config(steps=14), tmp_path, progress=False)
    at14 = load_checkpoint(tmp_path)
    snap = load_snapshot(run_dir, 14)
    assert snap.step == 14 and snap.config == _config()
    for n in WEIGHT_NAMES:
        assert torch.equal(snap.params[n], at14.params[n])


def test_index_metrics_are_those_of_the_snapshot_and_of_metrics_csv(run_dir):
    """Logged steps (0, 30) repeat metrics.csv's rows; the others (7, 14, ...) are measured at
    that step: their norm is the norm of the snapshot's weights."""
    logged = {(r["step"], r["model"]): r for r in _metrics_rows(run_dir / "metrics.csv")}
    index = read_snapshot_index(run_dir)
    for row in index:
        key = (row["step"], row["model"])
        if key in logged:
            assert {k: row[k] for k in logged[key]} == logged[key]
    assert ("7", "0") not in logged  # 7 is not a log step, yet the index has its metrics
    for step in (7, 21):
        snap = load_snapshot(run_dir, step)
        norms = param_norm(snap.params)
        rows = [r for r in index if int(r["step"]) == step]
        assert [float(r["param_norm"]) for r in rows] == pytest.approx([float(x) for x in norms], rel=1e-12)
        assert [r["train_acc"] for r in rows] == [str(r["train_acc"]) for r in snap.rows]


def test_snapshot_is_pickle_free_safetensors(run_dir):
    path = snapshot_files(run_dir)[14]
    assert path.read_bytes()[:2] != b"PK"  # not a zip (torch.save's format)
    with safe_open(str(path), "pt") as fh:
        meta = fh.metadata()
        assert sorted(fh.keys()) == sorted(f"params.{n}" for n in WEIGHT_NAMES)
    assert meta["format"] == "circeff-params-snapshot" and meta["version"] == "2"
    state = json.loads(meta["state"])
    assert state["step"] == 14 and len(state["rows"]) == 2 and state["config"]["steps"] == 30


def test_index_is_rebuilt_from_the_files(run_dir):
    index = run_dir / "snapshots" / "index.csv"
    before = index.read_bytes()
    index.unlink()
    rebuild_snapshot_index(run_dir)
    assert index.read_bytes() == before


def test_kill_after_a_snapshot_before_the_checkpoint_leaves_no_stale_snapshot(run_dir, tmp_path):
    """Killed at step 24 (checkpoint at 20, snapshot at 21): the snapshot at 21 is after the
    checkpoint. A resume deletes it (and any other stale file) and writes it again, byte for byte."""
    out = tmp_path / "killed"

    def kill(step):
        if step == 24:
            raise RuntimeError("killed")  # nothing more is saved, as with SIGKILL

    with pytest.raises(RuntimeError, match="killed"):
        train(_config(), out, progress=False, snapshot_every=EVERY, on_step=kill)
    assert load_checkpoint(out).step == 20 and 21 in snapshot_files(out)
    # make the stale state visible: another content at 21, a step of another rhythm, a half write
    snaps = out / "snapshots"
    (snaps / "step_00000021.safetensors").write_bytes((snaps / "step_00000014.safetensors").read_bytes())
    (snaps / "step_00000023.safetensors").write_bytes((snaps / "step_00000014.safetensors").read_bytes())
    (snaps / ".step_00000028.safetensors.abc.tmp").write_bytes(b"half")

    train(_config(), out, resume=True, progress=False, snapshot_every=EVERY)
    assert sorted(p.name for p in snaps.iterdir()) == sorted(p.name for p in (run_dir / "snapshots").iterdir())
    for p in (run_dir / "snapshots").iterdir():
        assert (snaps / p.name).read_bytes() == p.read_bytes(), p.name
    assert (out / "metrics.csv").read_bytes() == (run_dir / "metrics.csv").read_bytes()
    steps = [int(r["step"]) for r in read_snapshot_index(out)]
    assert steps == [s for s in (0, 7, 14, 21, 28, 30) for _ in (0, 1)]


def test_resume_without_snapshot_every_keeps_earlier_snapshots_and_writes_no_new_ones(tmp_path):
    train(_config(steps=20), tmp_path, progress=False, snapshot_every=EVERY)
    train(_config(steps=30), tmp_path, resume=True, progress=False)
    assert list(snapshot_files(tmp_path)) == [0, 7, 14, 20]
    assert [int(r["step"]) for r in read_snapshot_index(tmp_path)][::2] == [0, 7, 14, 20]


def test_extending_a_run_continues_its_snapshots(tmp_path):
    train(_config(steps=10), tmp_path, progress=False, snapshot_every=EVERY)
    train(_config(steps=30), tmp_path, resume=True, progress=False, snapshot_every=EVERY)
    assert list(snapshot_files(tmp_path)) == [0, 7, 10, 14, 21, 28, 30]


def test_a_fresh_start_removes_snapshots_of_a_run_killed_before_its_first_checkpoint(tmp_path):
    def kill(step):
        if step == 9:
            raise RuntimeError("killed")

    with pytest.raises(RuntimeError):
        train(_config(checkpoint_every=100), tmp_path, progress=False, snapshot_every=4, on_step=kill)
    assert list(snapshot_files(tmp_path)) == [0, 4, 8] and not (tmp_path / CHECKPOINT_NAME).exists()
    train(_config(steps=6, checkpoint_every=100), tmp_path, resume=True, progress=False, snapshot_every=5)
    assert list(snapshot_files(tmp_path)) == [0, 5, 6]  # nothing of the earlier start is left


def test_snapshot_every_above_steps_keeps_the_first_and_last_step(tmp_path):
    train(_config(steps=6), tmp_path, progress=False, snapshot_every=1000)
    assert list(snapshot_files(tmp_path)) == [0, 6]


@pytest.mark.parametrize("bad", [0, -1, 2.5, True])
def test_snapshot_every_must_be_a_positive_integer(tmp_path, bad):
    with pytest.raises(ConfigError, match="^snapshot_every: must be an integer >= 1"):
        train(_config(), tmp_path / "x", progress=False, snapshot_every=bad)
    assert not (tmp_path / "x").exists()


# ---- readers ----------------------------------------------------------------------------------
def test_progress_table_reads_the_train_snapshots(run_dir):
    table = progress_table(run_dir, model=1)
    assert list(table["step"]) == [0, 7, 14, 21, 28, 30]
    index = {int(r["step"]): float(r["param_norm"]) for r in read_snapshot_index(run_dir) if r["model"] == "1"}
    assert list(table["param_norm"]) == pytest.approx([index[s] for s in table["step"]], rel=1e-6)


def test_analyse_run_at_a_step_is_that_snapshot(run_dir):
    (at21,) = analyse_run(run_dir, [0], step=21)
    snap = load_snapshot(run_dir, 21)
    (direct,) = analyse_params(snap.config, snap.params, 21, [0])
    assert at21 == direct and at21.step == 21
    (final,) = analyse_run(run_dir, [0])
    assert final.step == 30 and final.param_norm != at21.param_norm


def test_a_step_without_snapshot_lists_the_steps_there_are(run_dir):
    with pytest.raises(ConfigError) as caught:
        analyse_run(run_dir, step=8)
    assert str(caught.value) == (f"step: must be a step with a snapshot in {run_dir / 'snapshots'}: "
                                 "0, 7, 14, 21, 28, 30 (got 8)")


def test_analyze_commands_on_a_train_run(run_dir, tmp_path, capsys):
    assert run(["analyze", "fourier", str(run_dir), "--step", "14", "--json", str(tmp_path / "f.json")]) == 0
    data = json.loads((tmp_path / "f.json").read_text())
    assert data["step"] == 14 and [m["step"] for m in data["models"]] == [14, 14]
    capsys.readouterr()
    assert run(["analyze", "fourier", str(run_dir), "--step", "15"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: --step: must be a step with a snapshot in") and "0, 7, 14, 21, 28, 30 (got 15)" in err
    assert err.count("\n") == 1
    assert run(["analyze", "progress", str(run_dir), "--out", str(tmp_path / "fig"), "--model", "1"]) == 0
    assert "6 snapshots, steps 0..30" in capsys.readouterr().out
    assert (tmp_path / "fig" / "fig9.png").is_file()


def test_analyze_fourier_step_on_a_run_without_snapshots(tmp_path, capsys):
    train(_config(steps=4), tmp_path, progress=False)
    assert run(["analyze", "fourier", str(tmp_path), "--step", "4", "--model", "0"]) == 0  # the checkpoint's step
    capsys.readouterr()
    assert run(["analyze", "fourier", str(tmp_path), "--step", "2"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: --step: must be 4, the step of the final checkpoint") and "--snapshot-every" in err


# ---- earlier versions' snapshots and broken files ------------------------------------------------
def _legacy_snapshot(path, config, params, step) -> None:
    """A snapshot as circeff experiment progress wrote it before (torch zip)."""
    payload = {"format": "circeff-params-snapshot", "version": 1, "step": step, "config": config.to_dict(),
               "params": {n: params[n].detach().cpu() for n in WEIGHT_NAMES}}
    buf = io.BytesIO()
    torch.save(payload, buf)
    path.write_bytes(buf.getvalue())


def test_earlier_pt_snapshots_are_still_read_beside_new_ones(run_dir, tmp_path):
    snaps = tmp_path / "snapshots"
    snaps.mkdir()
    at7, at14 = load_snapshot(run_dir, 7), load_snapshot(run_dir, 14)
    _legacy_snapshot(snaps / "step_00000007.pt", at7.config, at7.params, 7)
    _legacy_snapshot(snaps / "step_00000014.pt", at14.config, at14.params, 14)
    name = "step_00000021.safetensors"
    (snaps / name).write_bytes((run_dir / "snapshots" / name).read_bytes())
    assert [s for _, _, s in load_snapshots(tmp_path)] == [7, 14, 21]
    old = read_snapshot(snaps / "step_00000007.pt")
    assert old.rows == [] and all(torch.equal(old.params[n], at7.params[n]) for n in WEIGHT_NAMES)
    # a prune leaves the earlier format alone (it has no metrics for the index)
    assert [e[0] for e in rebuild_snapshot_index(tmp_path)] == [21]


def test_a_corrupt_snapshot_is_a_one_line_run_error(run_dir, tmp_path):
    snaps = tmp_path / "snapshots"
    snaps.mkdir()
    good = (run_dir / "snapshots" / "step_00000007.safetensors").read_bytes()
    (snaps / "step_00000007.safetensors").write_bytes(good[: len(good) // 2])
    with pytest.raises(RunError, match="snapshot .* is corrupt or unreadable") as caught:
        load_snapshot(tmp_path, 7)
    assert "\n" not in str(caught.value) and "--out" not in str(caught.value)


# ---- circeff experiment progress: the same format ----------------------------------------------
def _progress_config(steps: int):
    from circeff.empirical.config import Training
    from circeff.empirical.experiments.progress import ProgressConfig

    return ProgressConfig(Training(p=11, steps=steps, seeds=(0,), log_every=10, lr=3e-3, model=TINY),
                          train_frac=0.5, snapshot_every=10)


def test_progress_experiment_writes_the_train_format(tmp_path):
    from circeff.empirical.experiments.progress import run_progress

    result = run_progress(_progress_config(20), tmp_path, progress=False)
    assert list(result.rows["step"]) == [0, 10, 20]
    assert sorted(p.name for p in (tmp_path / "snapshots").iterdir()) == [
        "index.csv", "step_00000000.safetensors", "step_00000010.safetensors", "step_00000020.safetensors"]


def test_progress_run_of_an_earlier_version_continues_with_new_snapshots(tmp_path):
    """An earlier version's run (segments, .pt snapshots up to its checkpoint at 20) goes on to
    40: the new steps come as safetensors, step 20 is not written twice."""
    from circeff.empirical.experiments.progress import run_progress

    config = _progress_config(40)
    snaps = tmp_path / "snapshots"
    snaps.mkdir()
    for target in (0, 10, 20):
        if target:
            train(config.train_config(target), tmp_path, resume=True, progress=False)
        state = load_checkpoint(tmp_path) if target else None
        if state is None:
            from circeff.empirical.model import init_params
            params = init_params(TINY, config.task, [0], torch.device("cpu"))
        else:
            params = state.params
        _legacy_snapshot(snaps / f"step_{target:08d}.pt", config.train_config(target), params, target)
    result = run_progress(config, tmp_path, progress=False)
    assert list(result.rows["step"]) == [0, 10, 20, 30, 40]
    assert {s: p.suffix for s, p in snapshot_files(tmp_path).items()} == {
        0: ".pt", 10: ".pt", 20: ".pt", 30: ".safetensors", 40: ".safetensors"}
    # the same weights as one uninterrupted run
    train(config.train_config(), tmp_path / "whole", progress=False)
    whole = load_checkpoint(tmp_path / "whole")
    assert all(torch.equal(whole.params[n], load_snapshot(tmp_path, 40).params[n]) for n in WEIGHT_NAMES)
