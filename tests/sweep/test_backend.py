"""The experiments' engine batches train through the executor interface unchanged.

`circeff reproduce --executor slurm` relies on this: every batch an experiment needs goes
through `circeff.empirical.backend.train_or_reuse` with the trainer it was given; the
executor trainer submits it (here submitit's local executor: real subprocesses, as on a SLURM
node) and must give exactly the metrics of an in-process run.
"""

from __future__ import annotations

import json
import shutil

import pytest

from circeff.cli.main import run
from circeff.empirical.config import ModelConfig, TrainConfig
from circeff.empirical.tasks import TaskConfig
from circeff.empirical.backend import train_or_reuse
from circeff.sweep.backend import make_trainer


def _tiny_batch() -> TrainConfig:
    task = TaskConfig(name="add", p=7)
    return TrainConfig.grid(task, seeds=(0, 1), weight_decays=(1.0,), train_sizes=(25,),
                            model=ModelConfig(d_model=16, n_heads=2, d_head=8, d_mlp=32),
                            steps=30, log_every=10, checkpoint_every=10)


def test_batches_through_submitit_local_equal_in_process(tmp_path):
    config = _tiny_batch()
    train_or_reuse(config, tmp_path / "here", progress=False, resume=True)
    trainer = make_trainer("submitit-local", folder=tmp_path / "jobs")
    train_or_reuse(config, tmp_path / "job", progress=False, resume=True, trainer=trainer)
    here = (tmp_path / "here" / "metrics.csv").read_bytes()
    assert here == (tmp_path / "job" / "metrics.csv").read_bytes()
    assert any((tmp_path / "jobs").iterdir())  # it really went through submitit


def test_finished_batch_is_reused_not_resubmitted(tmp_path):
    config = _tiny_batch()
    train_or_reuse(config, tmp_path / "run", progress=False, resume=True)
    before = (tmp_path / "run" / "metrics.csv").read_bytes()
    trainer = make_trainer("submitit-local", folder=tmp_path / "jobs")
    train_or_reuse(config, tmp_path / "run", progress=False, resume=True, trainer=trainer)
    assert not (tmp_path / "jobs").exists()  # nothing was submitted
    assert (tmp_path / "run" / "metrics.csv").read_bytes() == before


def test_reproduce_unknown_executor_is_one_line_exit_2(tmp_path, capsys):
    assert run(["reproduce", "--out", str(tmp_path / "out"), "--executor", "bogus"]) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "--executor" in err
    assert not (tmp_path / "out").exists()


@pytest.mark.skipif(shutil.which("sbatch") is not None, reason="this machine has SLURM")
def test_reproduce_slurm_without_sbatch_fails_before_any_stage(tmp_path, capsys):
    code = run(["reproduce", "--out", str(tmp_path / "out"), "--executor", "slurm", "--partition", "p"])
    err = capsys.readouterr().err.strip()
    assert code == 1 and "\n" not in err and "sbatch" in err
    assert not (tmp_path / "out").exists()


@pytest.mark.slow
def test_reproduce_tiny_through_submitit_local_matches_in_process(tmp_path):
    base = ["reproduce", "--scale", "tiny", "--no-progress", "--threads", "1"]
    assert run([*base, "--out", str(tmp_path / "a")]) == 0
    assert run([*base, "--out", str(tmp_path / "b"), "--executor", "submitit-local"]) == 0
    # the same numbers; only the out folder named in the reasons differs
    a = json.dumps(json.loads((tmp_path / "a" / "summary.json").read_text())["verdicts"])
    b = json.dumps(json.loads((tmp_path / "b" / "summary.json").read_text())["verdicts"])
    assert a.replace(str(tmp_path / "a"), "OUT") == b.replace(str(tmp_path / "b"), "OUT")
