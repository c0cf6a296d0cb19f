"""``circeff train``: a run end to end, and bad input as one line naming the field (exit 2)."""

from __future__ import annotations

import pytest
import torch

from circeff.cli.main import run
from circeff.io import read_json

SMALL = ["--p", "11", "--steps", "4", "--log-every", "2", "--checkpoint-every", "2", "--no-progress"]


def test_train_command_writes_metrics_config_and_checkpoint(tmp_path, capsys):
    out = tmp_path / "run"
    code = run(["train", "--task", "add", "--train-frac", "0.5", "--seeds", "0,1", "--weight-decays", "1.0,0.5",
                "--out", str(out), *SMALL])
    assert code == 0
    assert {p.name for p in out.iterdir()} >= {"metrics.csv", "config.json", "checkpoint.safetensors", "summary.json"}
    config = read_json(out / "config.json")
    assert [(r["seed"], r["weight_decay"]) for r in config["runs"]] == [(0, 1.0), (1, 1.0), (0, 0.5), (1, 0.5)]
    assert config["task"] == {"name": "add", "p": 11, "random_labels": False, "label_seed": 0}
    assert "4 model(s), 4 steps" in capsys.readouterr().out


def test_train_command_resumes_and_refuses_a_changed_config(tmp_path, capsys):
    out = str(tmp_path / "run")
    args = ["train", "--sizes", "50", "--seeds", "3", "--out", out]
    assert run([*args, *SMALL]) == 0
    capsys.readouterr()
    assert run([*args, *SMALL]) == 0  # the same command again: the finished run is continued (nothing to do)
    assert "1 model(s), 4 steps" in capsys.readouterr().out
    assert run([*args, *SMALL, "--no-resume"]) == 2  # --out holds a run: bad input naming --out
    err = capsys.readouterr().err
    assert err.startswith("error: --out:") and "another --out" in err and err.count("\n") == 1
    more = [a if a != "4" else "6" for a in SMALL]
    assert run([*args, *more]) == 0
    assert "1 model(s), 6 steps" in capsys.readouterr().out
    assert run([*args, *more, "--resume", "--lr", "0.01"]) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: checkpoint") and "differs in: lr" in err and "\n" not in err


@pytest.mark.parametrize(("args", "field"), [
    (["--task", "pow"], "task"),
    (["--task", "div", "--p", "21"], "p"),
    (["--task", "perm", "--p", "100"], "p"),
    (["--train-frac", "0"], "train_frac"),
    (["--train-frac", "1.5"], "train_frac"),
    (["--sizes", "1000"], "sizes"),
    (["--train-size", "1000"], "train_size"),  # the old spelling
    (["--train-frac", "0.5", "--sizes", "10"], "train_frac"),
    (["--seeds", ""], "seeds"),
    (["--seeds", "a,b"], "seeds"),
    (["--weight-decays", "-1"], "weight_decays"),
    (["--weight-decay", "-1"], "weight_decay"),  # the old spelling
    (["--steps", "-5"], "steps"),
    (["--lr", "0"], "lr"),
    (["--preset", "tpu"], "preset"),
    (["--preset", "cpu"], "preset"),  # now called full
    (["--d-model", "30"], "d_model"),
    (["--n-heads", "0"], "n_heads"),
    (["--nan-policy", "ignore"], "nan_policy"),
    (["--device", "tpu"], "device"),
    (["--block-size", "0"], "block_size"),
    (["--chunk-size", "0"], "chunk_size"),
])
def test_bad_input_is_one_line_naming_the_field(tmp_path, capsys, args, field):
    code = run(["train", "--p", "11", "--out", str(tmp_path / "x"), "--no-progress", *args])
    err = capsys.readouterr().err
    assert code == 2
    assert err.startswith(f"error: --{field.replace('_', '-')}:") and err.count("\n") == 1
    assert not (tmp_path / "x").exists()


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")
def test_cuda_without_cuda_is_one_line(tmp_path, capsys):
    assert run(["train", "--device", "cuda", "--out", str(tmp_path / "x"), "--no-progress"]) == 2
    assert capsys.readouterr().err.startswith("error: --device: cuda is not available")
