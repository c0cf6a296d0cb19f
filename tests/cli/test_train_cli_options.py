"""``circeff train``: --snapshot-every, --threads, Ctrl-C / SIGTERM, the input slips it refuses
before any work, and a module cheap to import."""

from __future__ import annotations

import functools
import inspect
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

import circeff.empirical.train as engine
from circeff.cli.main import run
from circeff.empirical.checkpoint import CHECKPOINT_NAME, load_checkpoint, read_snapshot_index, snapshot_files
from tests.torch_threads import one_torch_thread  # noqa: F401  (autouse fixture: tiny models, one thread)

ROOT = Path(__file__).resolve().parents[2]
TINY = ["--p", "13", "--d-model", "16", "--n-heads", "2", "--d-mlp", "32", "--seeds", "0,1", "--lr", "0.003",
        "--log-every", "5", "--no-progress"]


def _one_line(capsys, code: int, expected_code: int, starts: str) -> str:
    err = capsys.readouterr().err
    assert code == expected_code, err
    lines = [line for line in err.splitlines() if not line.startswith("warning: the cores are oversubscribed")]
    assert len(lines) == 1 and lines[0].startswith(starts), err
    return lines[0]


# ---- importing is cheap -------------------------------------------------------------------------
def test_importing_the_train_command_imports_no_torch():
    code = "import circeff.cli.train, sys; assert 'torch' not in sys.modules, 'torch imported'"
    subprocess.run([sys.executable, "-c", code], check=True, cwd=ROOT, timeout=120)


def test_importing_the_analyze_command_imports_no_torch():
    code = "import circeff.cli.analyze, sys; assert 'torch' not in sys.modules, 'torch imported'"
    subprocess.run([sys.executable, "-c", code], check=True, cwd=ROOT, timeout=120)


def test_preset_help_is_the_presets_own_words():
    from circeff.cli.table import train_preset_help
    from circeff.cli.train import train
    from circeff.empirical.presets import train_preset_help as from_presets

    help_text = inspect.signature(train).parameters["preset"].default.help
    assert train_preset_help() in help_text and from_presets() in help_text


# ---- input slips: one line naming the flag, exit 2, nothing written ------------------------------
@pytest.mark.parametrize(("args", "starts"), [
    (["--seeds", "0,0"], "error: --seeds: must not repeat a value (0 given twice)"),
    (["--seeds", "0,1,0"], "error: --seeds: must not repeat a value"),
    (["--weight-decays", "1,0.5,1"], "error: --weight-decays: must not repeat a value"),
    (["--sizes", "40,40"], "error: --sizes: must not repeat a value"),
    (["--train-frac", "0.5,0.5"], "error: --train-frac: must not repeat a value"),
    (["--train-frac", "0.0001", "--p", "23"],
     "error: --train-frac: gives D = 1 training pairs at P = 23; must give at least P = 23 (--train-frac >= 0.0435)"),
    (["--train-frac", "0.05"], "error: --train-frac: gives D = 8 training pairs at P = 13; must give at least P = 13"),
    (["--train-frac", "0.3,0.3001"], "error: --train-frac: must give a different D for every fraction (0.3 and "
                                     "0.3001 both give D = 51 at P = 13)"),
    (["--sizes", "12"], "error: --sizes: must be in [13, 169]"),
    (["--train-size", "5"], "error: --train-size: must be in [13, 169]"),
    (["--snapshot-every", "0"], "error: --snapshot-every: must be an integer >= 1"),
    (["--snapshot-every", "-5"], "error: --snapshot-every: must be an integer >= 1"),
    (["--snapshot-every", "x"], "error: --snapshot-every: must be an integer"),
    (["--threads", "0"], "error: --threads: must be an integer >= 1"),
    (["--threads", "0", "--seeds", "0,0"], "error: --threads:"),  # checked first, before any work
    (["--init-from", "{tmp}/nowhere"], "error: --init-from: must be a run folder holding checkpoint.safetensors"),
])
def test_input_slips_are_one_line_before_any_work(tmp_path, capsys, args, starts):
    out = tmp_path / "x"
    args = [a.replace("{tmp}", str(tmp_path)) for a in args]
    _one_line(capsys, run(["train", "--out", str(out), *TINY, *args]), 2, starts)
    assert not out.exists()


def test_the_smallest_fraction_the_error_names_is_accepted():
    from circeff.cli.train import check_train_sizes, min_train_frac
    from circeff.empirical.config import resolve_train_size
    from circeff.empirical.tasks import TaskConfig
    from circeff.errors import ConfigError

    for p in (7, 11, 13, 23, 59, 113):
        task = TaskConfig("add", p)
        frac = min_train_frac(p, task.n_examples)
        assert resolve_train_size(task, frac, None) >= p
        check_train_sizes(task, [frac], None)
        with pytest.raises(ConfigError, match=r"must give at least P"):
            check_train_sizes(task, [frac * 0.9], None)


# ---- --snapshot-every ---------------------------------------------------------------------------
def test_snapshot_every_keeps_snapshots_and_an_index(tmp_path, capsys):
    out = tmp_path / "run"
    assert run(["train", "--out", str(out), *TINY, "--steps", "12", "--checkpoint-every", "10",
                "--snapshot-every", "5"]) == 0
    assert list(snapshot_files(out)) == [0, 5, 10, 12]
    assert [(r["step"], r["model"]) for r in read_snapshot_index(out)] == [
        (s, m) for s in ("0", "5", "10", "12") for m in ("0", "1")]


def test_snapshot_every_above_steps_keeps_the_first_and_last_step(tmp_path):
    out = tmp_path / "run"
    assert run(["train", "--out", str(out), *TINY, "--steps", "6", "--snapshot-every", "100"]) == 0
    assert list(snapshot_files(out)) == [0, 6]


# ---- --threads ----------------------------------------------------------------------------------
def test_threads_sets_torch_threads_and_the_busy_warning_names_them(tmp_path, capsys, monkeypatch):
    seen = {}
    real = engine.train

    def spy(*args, **kwargs):
        seen["threads"] = torch.get_num_threads()
        return real(*args, **kwargs)

    monkeypatch.setattr(engine, "train", spy)
    monkeypatch.setattr(os, "getloadavg", lambda: (64.0, 64.0, 64.0))  # a busy machine
    before = torch.get_num_threads()
    try:
        assert run(["train", "--out", str(tmp_path / "a"), *TINY, "--steps", "2", "--threads", "2"]) == 0
        assert seen["threads"] == 2  # set before the training started
    finally:
        torch.set_num_threads(before)
    err = capsys.readouterr().err
    assert "oversubscribed" in err and "run with --threads 1" in err
    assert run(["train", "--out", str(tmp_path / "b"), *TINY, "--steps", "2", "--threads", "1"]) == 0
    assert "this run already uses one thread" in capsys.readouterr().err
    monkeypatch.setattr(os, "getloadavg", lambda: (0.0, 0.0, 0.0))  # a quiet machine: no warning
    assert run(["train", "--out", str(tmp_path / "c"), *TINY, "--steps", "2"]) == 0
    assert "oversubscribed" not in capsys.readouterr().err


# ---- Ctrl-C and SIGTERM -------------------------------------------------------------------------
def _signal_at(monkeypatch, step: int, sig: int = signal.SIGINT) -> None:
    """Make the CLI's training send ``sig`` to this process after ``step`` (the engine's test hook)."""
    def hook(s):
        if s == step:
            os.kill(os.getpid(), sig)

    monkeypatch.setattr(engine, "train", functools.partial(engine.train, on_step=hook))


def test_ctrl_c_saves_says_so_in_one_line_and_the_same_command_continues(tmp_path, capsys, monkeypatch):
    out = tmp_path / "run"
    args = ["train", "--out", str(out), *TINY, "--steps", "30", "--checkpoint-every", "100", "--snapshot-every", "7"]
    assert run(["train", "--out", str(tmp_path / "straight"), *args[3:]]) == 0
    capsys.readouterr()
    with monkeypatch.context() as m:
        _signal_at(m, 17)
        line = _one_line(capsys, run(args), 130, "error: interrupted by SIGINT at step 17: ")
    assert line == (f"error: interrupted by SIGINT at step 17: saved checkpoint.safetensors and metrics.csv "
                    f"(17 steps) in {out}; rerun the same command to continue from step 17")
    assert load_checkpoint(out).step == 17 and list(snapshot_files(out)) == [0, 7, 14]
    assert run(args) == 0
    captured = capsys.readouterr()
    assert "2 model(s), 30 steps" in captured.out
    assert f"{out}: found a checkpoint at step 17 of 30; continuing from it" in captured.err
    a, b = load_checkpoint(tmp_path / "straight"), load_checkpoint(out)
    assert all(torch.equal(a.params[n], b.params[n]) for n in a.params)
    assert (tmp_path / "straight" / "metrics.csv").read_bytes() == (out / "metrics.csv").read_bytes()
    assert list(snapshot_files(out)) == [0, 7, 14, 21, 28, 30]


def test_sigterm_from_another_process(tmp_path):
    """A real signal from outside (what a scheduler sends): the child trains until step 5, waits
    there for the signal, then saves and exits 143 (128 + SIGTERM) with the one-line message."""
    out, ready, sent = tmp_path / "run", tmp_path / "ready", tmp_path / "sent"
    child = f"""
import functools, sys, time
from pathlib import Path
import circeff.empirical.train as engine
from circeff.cli.main import run

def hook(step):
    if step == 5:
        Path({str(ready)!r}).touch()
        for _ in range(1200):  # up to 60 s, however busy the machine
            if Path({str(sent)!r}).exists():
                break
            time.sleep(0.05)

engine.train = functools.partial(engine.train, on_step=hook)
sys.exit(run(["train", "--out", {str(out)!r}, *{TINY!r}, "--steps", "40", "--checkpoint-every", "100",
              "--threads", "1"]))
"""
    proc = subprocess.Popen([sys.executable, "-c", child], cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)
    try:
        deadline = time.monotonic() + 300  # a busy machine starts the child slowly
        while not ready.exists() and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.05)
        assert ready.exists(), proc.communicate(timeout=60)
        proc.send_signal(signal.SIGTERM)
        sent.touch()
        _, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 143, err
    lines = [line for line in err.splitlines() if not line.startswith("warning:")]
    assert lines == [f"error: interrupted by SIGTERM at step 5: saved checkpoint.safetensors and metrics.csv "
                     f"(5 steps) in {out}; rerun the same command to continue from step 5"], err
    assert load_checkpoint(out).step == 5


# ---- a corrupt checkpoint's advice names what the command takes -----------------------------------
def test_corrupt_checkpoint_advice_fits_the_command(tmp_path, capsys):
    out = tmp_path / "run"
    args = ["train", "--out", str(out), *TINY, "--steps", "4"]
    assert run(args) == 0
    (out / CHECKPOINT_NAME).write_bytes(b"not a checkpoint")
    capsys.readouterr()
    line = _one_line(capsys, run(args), 1, "error: checkpoint")
    assert "corrupt or unreadable" in line and "another --out" in line  # train takes --out
    line = _one_line(capsys, run(["analyze", "fourier", str(out)]), 1, "error: checkpoint")
    assert "corrupt or unreadable" in line and "--out" not in line  # analyze takes RUN_DIR, no --out
    assert "rerun the command that trained the run" in line
