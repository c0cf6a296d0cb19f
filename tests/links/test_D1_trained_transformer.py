"""Link: Theorem D.1 (circeff.theory) on a transformer trained by the engine (circeff.empirical).

A batch of small 1-layer transformers trained until they classify every training pair
correctly; on each model's training logits, scaling by c > 1 lowers the training loss, checked
by the theory layer's :func:`check_D1_on_logits` and, independently, by the engine's own
float64 loss. The models memorise random labels and learn true labels, so both a memorising
and a (partly) generalising network are covered.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from circeff.empirical.config import ModelConfig, RunSpec, TrainConfig
from circeff.empirical.metrics import cross_entropy64
from circeff.empirical.batched import final_logits
from circeff.empirical.tasks import TaskConfig, make_dataset, train_indices
from circeff.empirical.train import train
from circeff.empirical.checkpoint import load_params
from circeff.theory import check_D1_on_logits

CS = (1.1, 1.5, 2.0, 4.0)


def _train_logits(tmp_path, random_labels: bool):
    """Train 2 seeds (P = 11, D = 60, 400 steps, lr 3e-3, wd 0.1: about 2 s); return per model
    the float64 logits and labels of its training pairs."""
    task = TaskConfig(name="add", p=11, random_labels=random_labels, label_seed=1)
    runs = tuple(RunSpec(seed=s, weight_decay=0.1, train_size=60, data_seed=0) for s in (0, 1))
    config = TrainConfig(task=task, runs=runs, model=ModelConfig(d_model=32, n_heads=2, d_head=16, d_mlp=64),
                         steps=400, lr=3e-3, log_every=100, checkpoint_every=400)
    out = tmp_path / ("random" if random_labels else "true")
    result = train(config, out, progress=False)
    _, params, _ = load_params(out)
    data = make_dataset(task)
    idx = train_indices(len(data), 60, 0)
    a = torch.from_numpy(data.a[idx]).expand(2, -1)
    b = torch.from_numpy(data.b[idx]).expand(2, -1)
    with torch.no_grad():
        logits = final_logits(params, a, b, task).double()
    return result, logits, torch.from_numpy(data.labels[idx])


@pytest.mark.parametrize("random_labels", [False, True], ids=["true_labels", "random_labels"])
def test_D1_scaling_a_trained_transformer_lowers_its_train_loss(tmp_path, random_labels):
    result, logits, labels = _train_logits(tmp_path, random_labels)
    assert all(r["train_acc"] == 1.0 for r in result.final_rows()), "precondition: perfect train accuracy"
    for k in range(logits.shape[0]):
        check = check_D1_on_logits(logits[k].numpy(), labels.numpy(), cs=CS)
        assert check.perfect_accuracy and check.holds, check.detail
        # the engine's own float64 loss agrees: L(c f) < L(f), falling along c
        weights = torch.full((1, len(labels)), 1.0 / len(labels), dtype=torch.float64)
        losses = [float(cross_entropy64((c * logits[k]).unsqueeze(0), labels.unsqueeze(0), weights)) for c in (1.0, *CS)]
        assert np.all(np.diff(losses) < 0), losses
        np.testing.assert_allclose(losses, check.losses, rtol=1e-6, atol=1e-12)  # log_softmax rounds below 1e-16


def test_D1_hypothesis_is_needed_early_in_training(tmp_path):
    """Before training (chance accuracy) the theorem does not apply, and the check says so."""
    task = TaskConfig(name="add", p=11)
    config = TrainConfig(task=task, runs=(RunSpec(seed=0, train_size=60),),
                         model=ModelConfig(d_model=32, n_heads=2, d_head=16, d_mlp=64), steps=0)
    train(config, tmp_path / "init", progress=False)
    _, params, _ = load_params(tmp_path / "init")
    data = make_dataset(task)
    idx = train_indices(len(data), 60, 0)
    with torch.no_grad():
        logits = final_logits(params, torch.from_numpy(data.a[idx])[None], torch.from_numpy(data.b[idx])[None],
                              task)[0].double().numpy()
    check = check_D1_on_logits(logits, data.labels[idx], cs=CS)
    assert not check.perfect_accuracy and not check.holds
