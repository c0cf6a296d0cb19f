"""Training loop: float64 loss, per-model independence, exact resume, checkpoints, divergence."""

from __future__ import annotations

import csv
import math

import pytest
import torch

from circeff.empirical.checkpoint import CHECKPOINT_NAME, load_checkpoint, load_params, save_checkpoint
from circeff.empirical.config import ModelConfig, RunSpec, TrainConfig
from circeff.empirical.metrics import MISSING, METRIC_COLUMNS, cross_entropy64, csv_rows, milestones, missing_as_nan
from circeff.empirical.model import WEIGHT_NAMES, cross_entropy_high_precision, model_params
from circeff.empirical.model import Transformer as ReferenceTransformer
from circeff.empirical.tasks import TaskConfig, make_dataset, train_indices
from circeff.empirical.train import build_training_data, loss_and_grads, train
from circeff.errors import RunError
from circeff.io import read_json

TINY = ModelConfig(d_model=16, n_heads=2, d_head=8, d_mlp=32)
TASK = TaskConfig("add", 13)


def _config(runs=None, **kw) -> TrainConfig:
    runs = runs or (RunSpec(seed=0, train_size=80), RunSpec(seed=1, weight_decay=0.5, train_size=60, data_seed=2))
    base = dict(task=TASK, runs=runs, model=TINY, steps=20, log_every=5, checkpoint_every=10, lr=3e-3)
    base.update(kw)
    return TrainConfig(**base)


def _read_rows(path):
    with open(path, newline="") as fh:
        return list(csv.DictReader(fh))


# ---- the loss ---------------------------------------------------------------------------------
def test_loss_is_float64_and_has_no_float32_floor():
    """Long runs reach tiny losses (the paper, Appendix A): at tiny loss a float32 cross-entropy rounds to exactly 0."""
    logits = torch.zeros(1, 1, 13)
    logits[0, 0, 3] = 30.0
    loss = cross_entropy64(logits, torch.tensor([[3]]), torch.ones(1, 1, dtype=torch.float64))
    assert loss.dtype == torch.float64
    # log(1 + 12 e^-30) ~ 12 e^-30; float64 resolves it to a few digits (30 + 1e-12 in float64)
    assert math.isclose(loss.item(), 12 * math.exp(-30), rel_tol=1e-2)
    assert -torch.log_softmax(logits[0, 0], -1)[3].item() == 0.0  # the float32 floor


def test_loss_gradient_resolves_losses_below_the_float32_floor():
    """The training pass's own gradient (no autograd) of the float64 loss: where float32
    rounds the loss to 0, the correct class still gets its gradient -w * 12 e^-30."""
    from circeff.empirical.metrics import cross_entropy64_and_grad

    logits = torch.zeros(1, 2, 13)
    logits[0, 0, 3] = 30.0
    labels, weights = torch.tensor([[3, 5]]), torch.tensor([[0.25, 0.75]], dtype=torch.float64)
    loss, grad = cross_entropy64_and_grad(logits, labels, weights)
    assert grad.dtype == torch.float32 and math.isclose(loss.item(), cross_entropy64(logits, labels, weights).item(), rel_tol=1e-12)
    assert math.isclose(grad[0, 0, 3].item(), -0.25 * 12 * math.exp(-30), rel_tol=1e-3)  # a few digits, as the loss
    leaf = logits.double().requires_grad_()
    cross_entropy64(leaf, labels, weights).sum().backward()
    torch.testing.assert_close(grad.double(), leaf.grad, rtol=1e-6, atol=0)
    # softmax is shift-invariant; float64's exp overflows at 710 unless the max comes off first
    shifted_loss, shifted_grad = cross_entropy64_and_grad(logits + 1000.0, labels, weights)
    torch.testing.assert_close(shifted_loss, loss, rtol=1e-6, atol=1e-9)
    torch.testing.assert_close(shifted_grad, grad, rtol=1e-6, atol=1e-12)


@pytest.mark.parametrize("block_size", [None, 16])
@pytest.mark.parametrize("sizes", [(50, 70), (150, 140)])  # the literal and the multiplied-out path
def test_engine_loss_and_gradients_equal_reference_autograd(block_size, sizes):
    """Also when the examples go through in blocks (gradients accumulated over blocks)."""
    from circeff.empirical.batched import uses_fold

    cfg = _config(model=ModelConfig(), runs=(RunSpec(seed=4, train_size=sizes[0]),
                                             RunSpec(seed=9, train_size=sizes[1], data_seed=1)), block_size=block_size)
    assert uses_fold(cfg.model, cfg.task, max(sizes)) == (sizes[0] > 100)
    data = make_dataset(cfg.task)
    batch = build_training_data(data, cfg, torch.device("cpu"))
    from circeff.empirical.model import init_params
    params = init_params(cfg.model, cfg.task, [r.seed for r in cfg.runs])
    losses, grads = loss_and_grads(params, batch, cfg)
    tokens, labels = torch.from_numpy(data.tokens()), torch.from_numpy(data.labels.copy())
    for k, run in enumerate(cfg.runs):
        idx = torch.from_numpy(train_indices(len(data), run.train_size, run.data_seed))
        ref = ReferenceTransformer.from_params(cfg.model, cfg.task, model_params(params, k))
        loss = cross_entropy_high_precision(ref(tokens[idx])[:, -1], labels[idx])
        loss.backward()
        assert math.isclose(losses[k].item(), loss.item(), rel_tol=1e-6)
        for n in WEIGHT_NAMES:
            g = getattr(ref, n).grad
            torch.testing.assert_close(grads[n][k], g, atol=1e-5 * g.abs().max().item(), rtol=0)


# ---- per-model independence --------------------------------------------------------------------
def test_model_trajectory_does_not_depend_on_batch_neighbours(tmp_path):
    """Seed, weight decay and training subset are per model: model (seed 7, wd 0.3, D 50,
    data seed 3) trained alone equals the same model trained among different neighbours."""
    me = RunSpec(seed=7, weight_decay=0.3, train_size=50, data_seed=3)
    others = (RunSpec(seed=1, weight_decay=1.0, train_size=120), RunSpec(seed=2, weight_decay=0.0, train_size=20, data_seed=5),
              RunSpec(seed=3, weight_decay=2.0, train_size=90, data_seed=1))
    alone = train(_config(runs=(me,), chunk_size=4), tmp_path / "alone", progress=False)
    batch = train(_config(runs=(others[0], me, *others[1:]), chunk_size=4), tmp_path / "batch", progress=False)
    _, p_alone, _ = load_params(tmp_path / "alone")
    _, p_batch, _ = load_params(tmp_path / "batch")
    for n in WEIGHT_NAMES:
        torch.testing.assert_close(p_batch[n][1], p_alone[n][0], atol=1e-5, rtol=1e-4)
    mine = [r for r in batch.rows if r["model"] == 1]
    assert len(mine) == len(alone.rows)
    for r_b, r_a in zip(mine, alone.rows):
        assert (r_b["step"], r_b["train_size"], r_b["weight_decay"]) == (r_a["step"], 50, 0.3)
        assert math.isclose(r_b["train_loss"], r_a["train_loss"], rel_tol=1e-4)
    # and the neighbours did train differently
    assert not torch.allclose(p_batch["W_U"][0], p_batch["W_U"][2])


# ---- outputs ----------------------------------------------------------------------------------
def test_metrics_csv_and_config_json(tmp_path):
    cfg = _config()
    result = train(cfg, tmp_path, progress=False)
    rows = _read_rows(tmp_path / "metrics.csv")
    assert list(rows[0]) == METRIC_COLUMNS
    assert [int(r["step"]) for r in rows] == [s for s in (0, 5, 10, 15, 20) for _ in range(2)]
    assert {r["train_size"] for r in rows} == {"80", "60"} and {r["weight_decay"] for r in rows} == {"1.0", "0.5"}
    assert TrainConfig.from_dict(read_json(tmp_path / "config.json")) == cfg
    assert len(result.final_rows()) == 2 and result.step == 20
    assert all(0 <= float(r["train_acc"]) <= 1 and float(r["param_norm"]) > 0 for r in rows)
    assert read_json(tmp_path / "summary.json")["models"][1]["diverged_at"] is None


# A model trained on every example (D = n) has no test set: its test values are missing.
_NO_TEST_SET = (RunSpec(seed=0, train_size=TASK.n_examples), RunSpec(seed=1, weight_decay=0.5, train_size=60))


def test_missing_test_values_are_nan_in_memory_and_empty_cells_in_metrics_csv(tmp_path):
    import pandas as pd

    result = train(_config(runs=_NO_TEST_SET), tmp_path, progress=False)
    full = [r for r in result.rows if r["model"] == 0]
    assert all(r["test_loss"] is MISSING and r["test_acc"] is MISSING for r in full)
    assert all(isinstance(r["test_loss"], float) and 0 <= r["test_acc"] <= 1 for r in result.rows if r["model"] == 1)
    cells = [r for r in _read_rows(tmp_path / "metrics.csv") if r["model"] == "0"]
    assert cells and all(r["test_loss"] == r["test_acc"] == "" for r in cells)
    table = pd.read_csv(tmp_path / "metrics.csv")
    assert table[table["model"] == 0][["test_loss", "test_acc"]].isna().all().all()
    assert table[table["model"] == 1][["test_loss", "test_acc"]].notna().all().all()
    summary = read_json(tmp_path / "summary.json")["models"]
    assert summary[0]["test_acc"] is None and summary[0]["test_loss"] is None and summary[1]["test_acc"] is not None
    m = milestones(result.rows)[0]
    assert m["generalised_at"] is None and math.isnan(m["final_test_acc"])


def test_a_resumed_run_with_missing_values_equals_an_uninterrupted_one(tmp_path):
    """Rows read back from the checkpoint hold the same missing value as fresh ones, so rows
    and metrics.csv are the same; so are rows of earlier versions, which wrote "" there."""
    straight = train(_config(runs=_NO_TEST_SET, steps=20), tmp_path / "straight", progress=False)
    for name, old_style in (("resumed", False), ("old_rows", True)):
        train(_config(runs=_NO_TEST_SET, steps=10), tmp_path / name, progress=False)
        if old_style:
            ckpt = load_checkpoint(tmp_path / name)
            ckpt.rows = [dict(r, test_loss="", test_acc="") if r["model"] == 0 else r for r in ckpt.rows]
            save_checkpoint(tmp_path / name / CHECKPOINT_NAME, ckpt)
            assert all(r["test_acc"] is MISSING for r in load_checkpoint(tmp_path / name).rows if r["model"] == 0)
        resumed = train(_config(runs=_NO_TEST_SET, steps=20), tmp_path / name, resume=True, progress=False)
        assert resumed.rows == straight.rows, name
        assert (tmp_path / name / "metrics.csv").read_bytes() == (tmp_path / "straight" / "metrics.csv").read_bytes()


def test_missing_values_and_a_diverged_models_nan_are_told_apart():
    """A diverged model's losses are NaN but its test accuracy is a number: metrics.csv writes
    those losses as nan, and only a missing test set as empty cells."""
    diverged = {"test_loss": float("nan"), "test_acc": 0.25, "model": 1}
    missing = {"test_loss": float("nan"), "test_acc": float("nan"), "model": 0}
    old = {"test_loss": "", "test_acc": "", "model": 0}
    assert missing_as_nan(diverged) is diverged
    assert missing_as_nan(missing)["test_acc"] is missing_as_nan(old)["test_loss"] is MISSING
    written = list(csv_rows([diverged, missing]))
    assert math.isnan(written[0]["test_loss"]) and written[0]["test_acc"] == 0.25
    assert written[1]["test_loss"] == written[1]["test_acc"] == ""


def test_random_labels_are_memorised_not_generalised(tmp_path):
    """P1's memorisation-only networks: train accuracy rises, test accuracy stays near chance."""
    task = TaskConfig("add", 13, random_labels=True, label_seed=1)
    cfg = _config(task=task, runs=(RunSpec(seed=0, train_size=120, weight_decay=0.0),),
                  model=ModelConfig(d_model=32, n_heads=2, d_head=16, d_mlp=64), steps=150, log_every=150, lr=1e-2)
    final = train(cfg, tmp_path, progress=False).final_rows()[0]
    assert final["train_acc"] > 0.9
    assert final["test_acc"] < 0.5


# ---- resume -----------------------------------------------------------------------------------
def test_resume_is_bit_identical_to_an_uninterrupted_run(tmp_path):
    N = 10
    straight = train(_config(steps=2 * N, checkpoint_every=N), tmp_path / "straight", progress=False)
    train(_config(steps=N, checkpoint_every=N), tmp_path / "resumed", progress=False)  # "killed" after N
    resumed = train(_config(steps=2 * N, checkpoint_every=N), tmp_path / "resumed", resume=True, progress=False)
    assert (tmp_path / "straight" / "metrics.csv").read_bytes() == (tmp_path / "resumed" / "metrics.csv").read_bytes()
    a, b = load_checkpoint(tmp_path / "straight"), load_checkpoint(tmp_path / "resumed")
    for n in WEIGHT_NAMES:
        assert torch.equal(a.params[n], b.params[n])
        assert torch.equal(a.optimizer.exp_avg[n], b.optimizer.exp_avg[n])
        assert torch.equal(a.optimizer.exp_avg_sq[n], b.optimizer.exp_avg_sq[n])
    assert a.optimizer.step == b.optimizer.step == 2 * N
    assert straight.rows == resumed.rows


def test_resume_from_a_kill_between_checkpoints_repeats_only_the_lost_steps(tmp_path):
    """A kill after step 13 (checkpoint at 10) loses steps 11-13; resuming redoes them exactly."""
    train(_config(steps=20), tmp_path / "straight", progress=False)
    train(_config(steps=13), tmp_path / "killed", progress=False)
    ckpt = load_checkpoint(tmp_path / "killed")
    # rewind the final checkpoint to the periodic one at step 10, as a kill would have left it
    train(_config(steps=10), tmp_path / "at10", progress=False)
    save_checkpoint(tmp_path / "killed" / CHECKPOINT_NAME, load_checkpoint(tmp_path / "at10"))
    assert ckpt.step == 13
    train(_config(steps=20), tmp_path / "killed", resume=True, progress=False)
    assert (tmp_path / "straight" / "metrics.csv").read_bytes() == (tmp_path / "killed" / "metrics.csv").read_bytes()


def test_corrupt_checkpoint_is_a_clear_error_not_a_restart(tmp_path):
    train(_config(steps=10), tmp_path, progress=False)
    path = tmp_path / CHECKPOINT_NAME
    good = path.read_bytes()
    for bad in (b"not a checkpoint", good[: len(good) // 2]):
        path.write_bytes(bad)
        with pytest.raises(RunError, match="corrupt or unreadable") as exc:
            train(_config(steps=20), tmp_path, resume=True, progress=False)
        assert "\n" not in str(exc.value)
    assert path.read_bytes() == good[: len(good) // 2]  # nothing was overwritten


def test_checkpoint_of_a_different_config_is_refused(tmp_path):
    train(_config(steps=10), tmp_path, progress=False)
    with pytest.raises(RunError, match=r"different config \(differs in: lr\)"):
        train(_config(steps=20, lr=1e-3), tmp_path, resume=True, progress=False)


def test_existing_run_is_not_overwritten_without_resume(tmp_path):
    train(_config(steps=5), tmp_path, progress=False)
    with pytest.raises(RunError, match="rerun without --no-resume"):
        train(_config(steps=5), tmp_path, progress=False)


# ---- continuing on new subsets (ungrokking) ----------------------------------------------------
def test_init_from_continues_other_runs_weights_on_new_subsets(tmp_path):
    source = train(_config(steps=10), tmp_path / "source", progress=False)
    runs = (RunSpec(seed=0, train_size=30, init_index=1), RunSpec(seed=0, train_size=40, data_seed=4, init_index=0))
    cont = train(_config(runs=runs, steps=5, init_from=str(tmp_path / "source")), tmp_path / "cont", progress=False)
    src_final = {r["model"]: r for r in source.final_rows()}
    start = [r for r in cont.rows if r["step"] == 0]
    assert math.isclose(start[0]["param_norm"], src_final[1]["param_norm"], rel_tol=1e-12)
    assert math.isclose(start[1]["param_norm"], src_final[0]["param_norm"], rel_tol=1e-12)
    assert [r["train_size"] for r in start] == [30, 40]
    assert load_checkpoint(tmp_path / "cont").optimizer.step == 5  # fresh optimiser, 5 steps


# ---- divergence ---------------------------------------------------------------------------------
def _poisoned_source(tmp_path, model: int):
    """A finished run whose model ``model`` has infinite unembedding weights."""
    train(_config(steps=5), tmp_path / "src", progress=False)
    ckpt = load_checkpoint(tmp_path / "src")
    ckpt.params["W_U"][model] = float("inf")
    save_checkpoint(tmp_path / "poisoned.safetensors", ckpt)
    return str(tmp_path / "poisoned.safetensors")


def test_diverged_model_is_frozen_and_marked_others_unaffected(tmp_path):
    src = _poisoned_source(tmp_path, model=1)
    runs = (RunSpec(seed=0, train_size=80), RunSpec(seed=1, weight_decay=0.5, train_size=60, data_seed=2))
    batch = train(_config(runs=runs, init_from=src, chunk_size=1), tmp_path / "batch", progress=False)
    alone = train(_config(runs=runs[:1], init_from=src, chunk_size=1), tmp_path / "alone", progress=False)
    assert batch.diverged == (None, 0)
    assert {r["status"] for r in batch.rows if r["model"] == 1} == {"diverged"}
    assert {r["status"] for r in batch.rows if r["model"] == 0} == {"ok"}
    _, p_batch, _ = load_params(tmp_path / "batch")
    _, p_alone, _ = load_params(tmp_path / "alone")
    _, p_src, _ = load_params(src)
    for n in WEIGHT_NAMES:
        assert torch.equal(p_batch[n][0], p_alone[n][0])
        assert torch.equal(p_batch[n][1], p_src[n][1])  # frozen where it diverged
    assert read_json(tmp_path / "batch" / "summary.json")["models"][1]["diverged_at"] == 0


def test_all_models_diverged_stops_with_the_step_and_saves(tmp_path):
    src = _poisoned_source(tmp_path, model=0)
    runs = (RunSpec(seed=0, train_size=80),)
    with pytest.raises(RunError, match=r"non-finite loss at step 0 in model 0 \(seed 0"):
        train(_config(runs=runs, init_from=src), tmp_path / "run", progress=False)
    assert load_checkpoint(tmp_path / "run").step == 0
    assert (tmp_path / "run" / "metrics.csv").exists()


def test_nan_policy_stop_stops_at_the_first_divergence(tmp_path):
    src = _poisoned_source(tmp_path, model=1)
    with pytest.raises(RunError, match="non-finite loss at step 0 in model 1"):
        train(_config(init_from=src, nan_policy="stop"), tmp_path / "run", progress=False)


# ---- a tiny grokking run ---------------------------------------------------------------------
@pytest.mark.slow
def test_small_modular_addition_memorises_first_then_generalises(tmp_path):
    """Grokking at P = 23: train accuracy reaches 0.99 before test accuracy reaches 0.95."""
    cfg = TrainConfig.grid(TaskConfig("add", 23), seeds=[0], train_fracs=[0.6], steps=3000, log_every=50,
                           checkpoint_every=3000, lr=3e-3)
    m = milestones(train(cfg, tmp_path, progress=False).rows)[0]
    assert m["memorised_at"] is not None and m["generalised_at"] is not None
    assert m["memorised_at"] < m["generalised_at"]


# ---- pickle-free checkpoints, ETA, TensorBoard ----------------------------------------------------
def test_checkpoint_is_safetensors_readable_without_unpickling(tmp_path):
    """Weights, AdamW moments and the RNG state are safetensors tensors; the rest is JSON metadata."""
    import json

    from safetensors import safe_open

    train(_config(steps=10), tmp_path, progress=False)
    path = tmp_path / CHECKPOINT_NAME
    assert path.read_bytes()[:2] != b"PK"  # not a torch zip (pickle) file
    with safe_open(str(path), "pt") as fh:
        keys, meta = set(fh.keys()), fh.metadata()
        assert fh.get_tensor("rng_state").dtype == torch.uint8
    assert keys == ({f"{g}.{n}" for g in ("params", "exp_avg", "exp_avg_sq") for n in WEIGHT_NAMES} | {"rng_state"})
    state = json.loads(meta["state"])
    assert state["step"] == state["adam_step"] == 10 and state["config"] == read_json(tmp_path / "config.json")


def test_a_version_1_torch_checkpoint_still_loads(tmp_path):
    """Runs written before the safetensors format (checkpoint.pt) still resume and analyse."""
    import io

    from circeff.empirical.checkpoint import LEGACY_CHECKPOINT_NAME

    train(_config(steps=10), tmp_path / "new", progress=False)
    ckpt = load_checkpoint(tmp_path / "new")
    legacy = {"format": "circeff-engine-checkpoint", "version": 1, "config": ckpt.config.to_dict(), "step": ckpt.step,
              "params": ckpt.params, "adam_step": ckpt.optimizer.step, "exp_avg": ckpt.optimizer.exp_avg,
              "exp_avg_sq": ckpt.optimizer.exp_avg_sq, "rng_state": ckpt.rng_state, "diverged": ckpt.diverged,
              "rows": ckpt.rows}
    (tmp_path / "old").mkdir()
    buf = io.BytesIO()
    torch.save(legacy, buf)
    (tmp_path / "old" / LEGACY_CHECKPOINT_NAME).write_bytes(buf.getvalue())
    old = load_checkpoint(tmp_path / "old")
    assert old.step == 10 and all(torch.equal(old.params[n], ckpt.params[n]) for n in WEIGHT_NAMES)
    train(_config(steps=20), tmp_path / "old", resume=True, progress=False)
    train(_config(steps=20), tmp_path / "new", resume=True, progress=False)
    assert (tmp_path / "old" / "metrics.csv").read_bytes() == (tmp_path / "new" / "metrics.csv").read_bytes()


def test_without_a_progress_bar_an_eta_line_is_printed(tmp_path, capsys):
    train(_config(steps=6), tmp_path / "quiet", progress=False, eta_every_s=0.0)
    lines = [ln for ln in capsys.readouterr().err.splitlines() if ln.startswith("train: step")]
    assert len(lines) == 6 and lines[-1].startswith("train: step 6/6 (100%)") and "ETA 0:00:00" in lines[-1]
    train(_config(steps=6), tmp_path / "default", progress=False)  # every 5 minutes: none in a short run
    assert "train: step" not in capsys.readouterr().err


def test_tensorboard_events_hold_the_metrics_csv_values(tmp_path):
    pytest.importorskip("tensorboard", reason="tensorboard is not installed (the [tensorboard] extra)")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    result = train(_config(steps=10), tmp_path, progress=False, tensorboard=True)
    events = EventAccumulator(str(tmp_path / "tensorboard"))
    events.Reload()
    logged = [(e.step, e.value) for e in events.Scalars("model_1/train_acc")]
    expected = [(r["step"], r["train_acc"]) for r in result.rows if r["model"] == 1]
    assert [s for s, _ in logged] == [s for s, _ in expected]
    assert [v for _, v in logged] == pytest.approx([v for _, v in expected], abs=1e-6)


def test_tensorboard_has_no_points_for_missing_values(tmp_path):
    pytest.importorskip("tensorboard", reason="tensorboard is not installed (the [tensorboard] extra)")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    train(_config(runs=_NO_TEST_SET, steps=5), tmp_path, progress=False, tensorboard=True)
    events = EventAccumulator(str(tmp_path / "tensorboard"))
    events.Reload()
    tags = set(events.Tags()["scalars"])
    assert {"model_0/train_acc", "model_1/test_acc", "model_1/test_loss"} <= tags
    assert not tags & {"model_0/test_acc", "model_0/test_loss"}


def test_tensorboard_missing_is_a_one_line_config_error_before_anything_is_written(tmp_path, monkeypatch):
    import builtins

    from circeff.errors import ConfigError

    real_import = builtins.__import__

    def no_tensorboard(name, *args, **kwargs):
        if name.startswith(("torch.utils.tensorboard", "tensorboard")):
            raise ImportError("No module named 'tensorboard'")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_tensorboard)
    with pytest.raises(ConfigError, match=r"^tensorboard: needs the tensorboard package"):
        train(_config(steps=2), tmp_path / "x", progress=False, tensorboard=True)
    assert not (tmp_path / "x").exists()
