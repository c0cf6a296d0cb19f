"""The gradient of the batched engine (empirical/batched.py) against finite differences and
against the plain model's autograd, and the device a training step runs on."""

from __future__ import annotations

import dataclasses

import pytest
import torch

from circeff.empirical.batched import (FoldedTables, LiteralTables, logits_from_tables, loss_and_table_grads,
                                       vocabulary_tables)
from circeff.empirical.metrics import cross_entropy64
from circeff.empirical.config import ModelConfig
from circeff.empirical.model import Transformer, init_params, model_params
from circeff.empirical.tasks import TaskConfig, make_dataset

TINY = ModelConfig(d_model=8, n_heads=2, d_head=4, d_mlp=12)
TASK = TaskConfig("add", 7)


def _tables(fold: bool, dtype=torch.float64):
    params = {n: w.to(dtype) * 2 for n, w in init_params(TINY, TASK, seeds=[0, 3]).items()}
    tables = vocabulary_tables(params, TASK, fold)
    assert type(tables) is (FoldedTables if fold else LiteralTables)
    return tables.map(lambda v: v.detach().requires_grad_())


@pytest.mark.parametrize("fold", [False, True])
def test_gradient_of_the_scored_position_passes_gradcheck(fold):
    """Finite differences in float64 against the backward pass, every table."""
    tables = _tables(fold)
    gen = torch.Generator().manual_seed(0)
    a, b = torch.randint(0, 7, (2, 9), generator=gen), torch.randint(0, 7, (2, 9), generator=gen)

    def f(*xs):
        return logits_from_tables(type(tables)(*xs), a, b)

    assert torch.autograd.gradcheck(f, tables.tensors(), eps=1e-6, atol=1e-6)


@pytest.mark.parametrize("fold", [False, True])
def test_weight_gradients_equal_the_plain_models_autograd(fold):
    """Through both stages, for both paths, paper-size model, in float64 (in float32 a few
    ReLU inputs within rounding of 0 switch sides between the two orders of operations)."""
    cfg, task = ModelConfig(), TaskConfig("add", 23)
    tokens = torch.from_numpy(make_dataset(task).tokens())
    start = init_params(cfg, task, seeds=[1, 2])
    params = {n: w.double().requires_grad_() for n, w in start.items()}
    a, b = tokens[:, 0].expand(2, -1), tokens[:, 2].expand(2, -1)
    weights = torch.randn(2, len(tokens), task.p, generator=torch.Generator().manual_seed(4), dtype=torch.float64)
    (logits_from_tables(vocabulary_tables(params, task, fold), a, b) * weights).sum().backward()
    for k in range(2):
        ref = Transformer.from_params(cfg, task, model_params(start, k)).double()
        (ref(tokens)[:, -1] * weights[k]).sum().backward()
        for n, w in params.items():
            expected = getattr(ref, n).grad
            torch.testing.assert_close(w.grad[k], expected, atol=1e-10 * expected.abs().max().item(), rtol=0)


@pytest.mark.parametrize("fold", [False, True])
@pytest.mark.parametrize("block_size", [None, 7])
def test_training_pass_by_hand_equals_autograd(fold, block_size):
    """loss_and_table_grads (forward and backward written out; with the maps multiplied out,
    ``z W_OI`` and ``z W_OU`` as sums of rows per token and head) against autograd through
    logits_from_tables and the float64 loss, every table, in float64, with padded examples
    (weight 0) and uneven blocks."""
    tables = _tables(fold)
    gen = torch.Generator().manual_seed(1)
    a, b = torch.randint(0, 7, (2, 23), generator=gen), torch.randint(0, 7, (2, 23), generator=gen)
    labels = torch.randint(0, 7, (2, 23), generator=gen)
    weights = torch.rand(2, 23, generator=gen, dtype=torch.float64)
    weights[1, 17:] = 0.0
    expected = cross_entropy64(logits_from_tables(tables, a, b), labels, weights)
    expected.sum().backward()
    loss, grads = loss_and_table_grads(tables.detach(), a, b, labels, weights, block_size)
    torch.testing.assert_close(loss, expected.detach(), rtol=1e-12, atol=0)
    assert type(grads) is type(tables)
    for field in dataclasses.fields(tables):
        t, g = getattr(tables, field.name), getattr(grads, field.name)
        assert g.shape == t.shape, field.name
        torch.testing.assert_close(g, t.grad, rtol=0, atol=1e-12 * t.grad.abs().max().item(), msg=field.name)


@pytest.mark.parametrize("n_train", [20, 150])  # the literal and the multiplied-out path
def test_a_training_step_follows_the_weights_device(n_train, monkeypatch):
    """No tensor of a step is made on the CPU behind the caller's back: the step runs on the
    ``meta`` device (shapes only), where mixing in a CPU tensor fails. This is the CPU-side
    check of ``--device cuda``; one table made on the CPU makes it fail."""
    from circeff.empirical import batched, train
    from circeff.empirical.config import RunSpec, TrainConfig
    from circeff.empirical.optim import adamw_init, adamw_step
    from circeff.empirical.train import build_training_data, loss_and_grads

    task = TaskConfig("add", 13)  # the paper's widths: 150 examples multiply the maps out, 20 do not
    config = TrainConfig(task=task, runs=(RunSpec(seed=0, train_size=n_train), RunSpec(seed=1, train_size=n_train - 5)),
                         model=ModelConfig(), block_size=64)
    assert batched.uses_fold(config.model, task, n_train) == (n_train == 150)
    meta = torch.device("meta")
    params = init_params(config.model, task, [0, 1], meta)
    data = build_training_data(make_dataset(task), config, meta)
    losses, grads = loss_and_grads(params, data, config)
    adamw_step(params, grads, adamw_init(params), lr=1e-3, beta1=0.9, beta2=0.98, eps=1e-8,
               weight_decay=torch.ones(2, dtype=torch.float64, device=meta))
    assert losses.device == meta and all(g.device == meta for g in grads.values())
    real = batched.vocabulary_tables

    def one_table_on_the_cpu(*args, **kwargs):
        tables = real(*args, **kwargs)
        return dataclasses.replace(tables, s_op=torch.zeros_like(tables.s_op, device="cpu"))

    monkeypatch.setattr(train, "vocabulary_tables", one_table_on_the_cpu)
    with pytest.raises(RuntimeError, match="device cpu is not on the expected device meta"):
        loss_and_grads(params, data, config)


@pytest.mark.parametrize("fold", [False, True])
def test_tables_have_the_documented_shapes(fold):
    """Each layout is its own frozen class; the fields have the shapes their comments give."""
    E, P, H, d_head = 2, TASK.p, TINY.n_heads, TINY.d_head
    tables = vocabulary_tables(init_params(TINY, TASK, seeds=[0, 3]), TASK, fold)
    shapes = {"s_a": (E, P, H), "s_b": (E, P, H), "s_op": (E, H), "s_eq": (E, H)}
    if fold:
        R = H * (2 * P + 2) + 1
        shapes |= {"rows_in": (E, R, TINY.d_mlp), "rows_U": (E, R, TASK.d_vocab_out),
                   "W_outU": (E, TINY.d_mlp, TASK.d_vocab_out)}
    else:
        hd = H * d_head
        shapes |= {"v_a": (E, P, hd), "v_b": (E, P, hd), "v_op": (E, hd), "v_eq": (E, hd),
                   "W_O": (E, hd, TINY.d_model), "x_eq": (E, TINY.d_model), "W_in": (E, TINY.d_model, TINY.d_mlp),
                   "W_out": (E, TINY.d_mlp, TINY.d_model), "W_U": (E, TINY.d_model, TASK.d_vocab_out)}
    assert {f.name: tuple(getattr(tables, f.name).shape) for f in dataclasses.fields(tables)} == shapes
    assert (tables.n_models, tables.p, tables.n_heads) == (E, P, H)
    fields = [getattr(tables, f.name) for f in dataclasses.fields(tables)]
    assert len(tables.tensors()) == len(fields) and all(a is b for a, b in zip(tables.tensors(), fields))
    with pytest.raises(dataclasses.FrozenInstanceError):
        tables.s_a = tables.s_b
