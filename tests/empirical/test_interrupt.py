"""SIGINT / SIGTERM during ``train``: save the checkpoint and metrics.csv at the step reached,
raise :class:`circeff.errors.Interrupted` with one line saying so, and continue bit-identically.

The signal is sent to this process from ``train``'s ``on_step`` hook (``os.kill(os.getpid(), ...)``),
so it arrives at a known step; tests/cli/test_train_cli_options.py sends one from another process.
"""

from __future__ import annotations

import os
import signal
import threading

import pytest
import torch

from circeff.empirical.checkpoint import CHECKPOINT_NAME, load_checkpoint, read_snapshot_index, snapshot_files
from circeff.empirical.config import ModelConfig, RunSpec, TrainConfig
from circeff.empirical.model import WEIGHT_NAMES
from circeff.empirical.tasks import TaskConfig
from circeff.empirical.train import train
from circeff.errors import Interrupted, RunError

TINY = ModelConfig(d_model=16, n_heads=2, d_head=8, d_mlp=32)
TASK = TaskConfig("add", 13)


def _config(**kw) -> TrainConfig:
    runs = (RunSpec(seed=0, train_size=80), RunSpec(seed=1, weight_decay=0.5, train_size=60, data_seed=2))
    base = dict(task=TASK, runs=runs, model=TINY, steps=160, log_every=20, checkpoint_every=200, lr=3e-3)
    base.update(kw)
    return TrainConfig(**base)


def _send_at(step: int, sig: int = signal.SIGINT, times: int = 1):
    def hook(s: int) -> None:
        if s == step:
            for _ in range(times):
                os.kill(os.getpid(), sig)
    return hook


def _same_state(a_dir, b_dir) -> None:
    a, b = load_checkpoint(a_dir), load_checkpoint(b_dir)
    assert a.step == b.step and a.optimizer.step == b.optimizer.step
    for n in WEIGHT_NAMES:
        assert torch.equal(a.params[n], b.params[n])
        assert torch.equal(a.optimizer.exp_avg[n], b.optimizer.exp_avg[n])
        assert torch.equal(a.optimizer.exp_avg_sq[n], b.optimizer.exp_avg_sq[n])


@pytest.fixture(scope="module")
def straight(tmp_path_factory):
    """The uninterrupted run (with snapshots every 30 steps) every interrupted one must equal."""
    out = tmp_path_factory.mktemp("straight")
    return out, train(_config(), out, progress=False, snapshot_every=30)


@pytest.mark.parametrize(("sig", "name"), [(signal.SIGINT, "SIGINT"), (signal.SIGTERM, "SIGTERM")])
def test_signal_at_step_141_saves_there_and_resume_is_bit_identical(straight, tmp_path, sig, name):
    """checkpoint_every 200 > 141: without the handler nothing would be saved before the end."""
    ref_dir, ref = straight
    out = tmp_path / "run"
    with pytest.raises(Interrupted) as caught:
        train(_config(), out, resume=True, progress=False, snapshot_every=30, on_step=_send_at(141, sig))
    message = str(caught.value)
    assert message == (f"interrupted by {name} at step 141: saved checkpoint.safetensors and metrics.csv (141 steps) "
                       f"in {out}; rerun the same command to continue from step 141")
    assert "\n" not in message and "last checkpoint" not in message
    # a stop, not a failure: no `except RunError` or `except Exception` on the way up goes on
    assert isinstance(caught.value, KeyboardInterrupt) and not isinstance(caught.value, RunError)
    assert caught.value.exit_code == (130 if name == "SIGINT" else 143)
    assert (caught.value.step, caught.value.signal_name) == (141, name)
    assert caught.value.saved == (CHECKPOINT_NAME, "metrics.csv")
    assert load_checkpoint(out).step == 141
    assert not (out / "summary.json").exists()  # summary.json marks a finished run
    logged = [line.split(",")[0] for line in (out / "metrics.csv").read_text().splitlines()[1:]]
    assert logged[-1] == "140"  # every logged row up to the step reached
    assert sorted(snapshot_files(out)) == [0, 30, 60, 90, 120]

    seen = []
    resumed = train(_config(), out, resume=True, progress=False, snapshot_every=30, on_step=seen.append)
    assert seen[0] == 142  # continued from 141, not from 0
    _same_state(ref_dir, out)
    assert (ref_dir / "metrics.csv").read_bytes() == (out / "metrics.csv").read_bytes()
    assert (ref_dir / CHECKPOINT_NAME).read_bytes() == (out / CHECKPOINT_NAME).read_bytes()
    assert resumed.rows == ref.rows
    assert sorted(snapshot_files(out)) == [0, 30, 60, 90, 120, 150, 160]
    assert (ref_dir / "snapshots" / "index.csv").read_bytes() == (out / "snapshots" / "index.csv").read_bytes()


def test_the_previous_handlers_come_back(tmp_path):
    calls = []

    def mine(signum, frame):  # noqa: ARG001
        calls.append(signum)

    old_int, old_term = signal.signal(signal.SIGINT, mine), signal.signal(signal.SIGTERM, mine)
    try:
        during = []
        train(_config(steps=3), tmp_path / "a", progress=False,
              on_step=lambda s: during.append(signal.getsignal(signal.SIGINT)))
        assert during[0] is not mine  # train's own handler while it runs
        assert signal.getsignal(signal.SIGINT) is mine and signal.getsignal(signal.SIGTERM) is mine
        with pytest.raises(Interrupted):
            train(_config(steps=10), tmp_path / "b", progress=False, on_step=_send_at(2, signal.SIGTERM))
        assert signal.getsignal(signal.SIGINT) is mine and signal.getsignal(signal.SIGTERM) is mine
        with pytest.raises(RuntimeError, match="boom"):
            train(_config(steps=10), tmp_path / "c", progress=False,
                  on_step=lambda s: (_ for _ in ()).throw(RuntimeError("boom")))
        assert signal.getsignal(signal.SIGINT) is mine and signal.getsignal(signal.SIGTERM) is mine
        assert calls == []  # train took the signal, not the handler before it
    finally:
        signal.signal(signal.SIGINT, old_int)
        signal.signal(signal.SIGTERM, old_term)


def test_a_second_signal_stops_at_once(tmp_path):
    """The first signal asks for a save at the end of the step; a second one does not wait."""
    with pytest.raises(KeyboardInterrupt):
        train(_config(steps=10, checkpoint_every=4), tmp_path, progress=False, on_step=_send_at(6, times=2))
    assert load_checkpoint(tmp_path).step == 4  # the last periodic checkpoint stays; nothing at 6


def test_an_ignored_signal_stays_ignored(tmp_path):
    """A run started with SIGINT ignored (nohup, a background job) keeps ignoring it."""
    old = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        result = train(_config(steps=8), tmp_path, progress=False, on_step=_send_at(3))
        assert result.step == 8 and signal.getsignal(signal.SIGINT) is signal.SIG_IGN
    finally:
        signal.signal(signal.SIGINT, old)


def test_outside_the_main_thread_no_handler_is_installed(tmp_path):
    """Python lets only the main thread set handlers: train in a worker thread runs without them."""
    before = signal.getsignal(signal.SIGINT)
    seen, errors = [], []

    def work():
        try:
            train(_config(steps=4), tmp_path, progress=False,
                  on_step=lambda s: seen.append(signal.getsignal(signal.SIGINT)))
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    worker = threading.Thread(target=work)
    worker.start()
    worker.join()
    assert errors == [] and len(seen) == 4 and all(h is before for h in seen)


def test_interrupted_twice_then_finished_equals_the_uninterrupted_run(tmp_path, straight):
    """Interrupted, resumed and interrupted again one step later: the third start still ends
    as the uninterrupted run, with each snapshot step once in the index."""
    ref_dir, _ = straight
    with pytest.raises(Interrupted, match="at step 50:"):
        train(_config(), tmp_path, progress=False, snapshot_every=30, on_step=_send_at(50))
    with pytest.raises(Interrupted, match="at step 51: .*continue from step 51$"):
        train(_config(), tmp_path, resume=True, progress=False, snapshot_every=30, on_step=_send_at(51))
    train(_config(), tmp_path, resume=True, progress=False, snapshot_every=30)
    _same_state(ref_dir, tmp_path)
    assert (ref_dir / "metrics.csv").read_bytes() == (tmp_path / "metrics.csv").read_bytes()
    steps = [int(r["step"]) for r in read_snapshot_index(tmp_path)]
    assert steps == sorted(steps) and len(steps) == 2 * len(set(steps))  # each step once, two models


def test_a_signal_after_the_last_step_still_stops_the_caller(tmp_path):
    """The run finishes and saves everything, then raises the stop, so that a stage or sweep
    that called it does not go on to the next piece of work."""
    out = tmp_path / "run"
    with pytest.raises(Interrupted, match=r"after the last step \(10\): the run finished"):
        train(_config(steps=10), out, progress=False, on_step=_send_at(10, signal.SIGTERM))
    assert load_checkpoint(out).step == 10 and (out / "summary.json").is_file()


def test_a_stop_is_not_one_failed_stage(tmp_path, monkeypatch):
    """reproduce records a stage's RunError or bug as a failed stage and goes on; a stop must
    end the whole command instead."""
    import circeff.reproduce as reproduce
    from circeff.reproduce.config import named_config

    def stopped(*args, **kwargs):
        raise Interrupted("interrupted by SIGINT at step 3: saved ...", step=3, signal_name="SIGINT")

    monkeypatch.setattr(reproduce, "stage", lambda name: type("S", (), {"run": staticmethod(stopped),
                                                                         "needs": (), "reads": (),
                                                                         "verdicts": ()})())
    ctx = reproduce.Context(named_config("quick", "cpu", tiny=True), tmp_path, False, reproduce.IN_PROCESS)
    with pytest.raises(Interrupted):
        reproduce.run_stage(ctx, "base", "stamp", {})


def test_after_a_fresh_start_the_hint_drops_no_resume(tmp_path):
    """A run started with resume off (--no-resume) refuses its own folder next time: the hint
    must say to rerun without it."""
    with pytest.raises(Interrupted, match="rerun the same command without --no-resume to continue from step 4$"):
        train(_config(steps=10), tmp_path / "run", resume=False, progress=False, on_step=_send_at(4))
