"""kill -9 a training process at random points, rerun the same command: bit-identical results."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.sweep.conftest import REPO_ROOT

N_KILLS = 5
# A tiny model takes ~5 ms a step on a quiet machine, so one attempt's jitter (up to 50 ms)
# can run ~12 steps past its kill target. Kill targets lie in the first half of a run long
# enough that 5 such overshoots still leave training to kill inside: with 40 steps the
# last attempt sometimes found training already finished (1 run in 3 on a quiet machine).
STEPS = 200
KILL_RANGE = range(2, STEPS // 2)
TINY = {"task": "add", "p": 7, "d_model": 16, "n_heads": 2, "d_head": 8, "d_mlp": 32,
        "train_frac": 0.5, "steps": STEPS, "log_every": 2, "checkpoint_every": 2}


def _env():
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO_ROOT), env.get("PYTHONPATH", "")) if p)
    env["OMP_NUM_THREADS"] = "1"  # the same threads in every attempt; no oversubscription in CI
    return env


def _last_step(metrics_glob: list[Path]) -> int:
    """Last step in the (atomically written) metrics.csv of the training folder; -1 if none yet."""
    for path in metrics_glob:
        try:
            lines = path.read_text().strip().splitlines()
        except OSError:
            continue
        if len(lines) > 1:
            return int(lines[-1].split(",")[0])
    return -1


def kill_and_rerun(cmd: list[str], progress: callable, kill_steps: list[int], rng: random.Random,
                   timeout_s: float = 120.0, first_cmd: list[str] | None = None) -> list[int]:
    """Run ``first_cmd`` (default ``cmd``); SIGKILL it once training passed each of ``kill_steps``
    (plus a random jitter), rerunning ``cmd`` after each kill; finally let it finish.

    Returns the last logged step seen at each kill (the kill points survived).
    """
    survived = []
    for i, target in enumerate(kill_steps):
        start = progress()
        attempt = first_cmd if i == 0 and first_cmd is not None else cmd
        proc = subprocess.Popen(attempt, env=_env(), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        deadline = time.monotonic() + timeout_s
        # Every attempt trains at least one logged step before it is killed, so that each
        # kill point lies inside training, and not only in start-up.
        while (proc.poll() is None and (progress() < target or progress() <= start)
               and time.monotonic() < deadline):
            time.sleep(0.005)
        time.sleep(rng.uniform(0.0, 0.05))  # land anywhere: mid-step, mid-checkpoint write, ...
        if proc.poll() is not None:
            raise AssertionError(f"finished before kill point {target}: {proc.stderr.read().decode()}")
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        survived.append(progress())
    final = subprocess.run(cmd, env=_env(), capture_output=True, text=True, timeout=timeout_s)
    assert final.returncode == 0, final.stderr
    return survived


@pytest.mark.slow  # ~20-40 s; `circeff train`'s kill test below runs by default
def test_kill_9_sweep_at_5_random_points_then_rerun_is_bit_identical(tmp_path):
    grid = tmp_path / "grid.json"
    grid.write_text(json.dumps({"kind": "train", "base": TINY, "grid": {"seed": [0, 1]}}))
    cmd = [sys.executable, "-m", "tests.sweep.cli_entry", "sweep", "run", str(grid), "--out"]
    whole = subprocess.run(cmd + [str(tmp_path / "whole")], env=_env(), capture_output=True, text=True)
    assert whole.returncode == 0, whole.stderr

    rng = random.Random(8)
    kill_steps = sorted(rng.sample(KILL_RANGE, N_KILLS))
    cut = tmp_path / "cut"
    survived = kill_and_rerun(cmd + [str(cut)], lambda: _last_step(sorted(cut.glob("batches/*/metrics.csv"))),
                              kill_steps, rng)
    assert len(survived) >= N_KILLS
    print(f"kill -9 points survived: {len(survived)} (last logged step at each kill: {survived})")

    runs = sorted(p.parent.name for p in (tmp_path / "whole" / "runs").glob("*/done.json"))
    assert len(runs) == 2
    for run_id in runs:
        a = (tmp_path / "whole" / "runs" / run_id / "metrics.csv").read_bytes()
        b = (cut / "runs" / run_id / "metrics.csv").read_bytes()
        assert a == b, f"run {run_id}: metrics differ after {len(survived)} kills"
    assert (tmp_path / "whole" / "results.csv").read_bytes() == (cut / "results.csv").read_bytes()


def test_kill_9_circeff_train_at_5_random_points_then_rerun_is_bit_identical(tmp_path):
    def cmd(out, resume=True):
        return [sys.executable, "-m", "circeff", "train", "--out", str(out), "--task", "add", "--p", "7",
                "--train-frac", "0.5", "--steps", str(STEPS), "--seeds", "0,1", "--log-every", "2",
                "--checkpoint-every", "2", "--no-progress", *(["--resume"] if resume else [])]

    whole = subprocess.run(cmd(tmp_path / "whole", resume=False), env=_env(), capture_output=True, text=True)
    assert whole.returncode == 0, whole.stderr
    rng = random.Random(5)
    kill_steps = sorted(rng.sample(KILL_RANGE, N_KILLS))
    cut = tmp_path / "cut"
    # the first attempt starts the run; every rerun after a kill continues it with --resume
    survived = kill_and_rerun(cmd(cut), lambda: _last_step([cut / "metrics.csv"]), kill_steps, rng,
                              first_cmd=cmd(cut, resume=False))
    assert len(survived) >= N_KILLS
    print(f"circeff train: kill -9 points survived: {len(survived)} (last logged step at each: {survived})")
    assert (tmp_path / "whole" / "metrics.csv").read_bytes() == (cut / "metrics.csv").read_bytes()
