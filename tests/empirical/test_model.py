"""The batched last-position engine (empirical/batched.py) computes the same model as the plain
full-sequence one (empirical/model.py)."""

from __future__ import annotations

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from circeff.empirical.config import ModelConfig
from circeff.empirical.batched import final_logits, forward_matmul_flops, logits_all, training_matmul_flops, uses_fold
from circeff.empirical.model import (
    WEIGHT_NAMES,
    Transformer,
    init_params,
    init_weights,
    model_params,
    param_norm,
    weight_shapes,
)
from circeff.empirical.tasks import TaskConfig, make_dataset
from tests.strategies.empirical import task_and_p, tiny_model_configs

PAPER_MODEL = ModelConfig()  # d_model 128, 4 heads, d_head 32, d_mlp 512


def _reference_last_logits(cfg, task, params, k, tokens):
    ref = Transformer.from_params(cfg, task, model_params(params, k))
    with torch.no_grad():
        return ref(tokens)[:, -1]


@pytest.mark.parametrize("fold", [False, True])
@pytest.mark.parametrize("name,p", [("add", 23), ("div", 17), ("x3_xy", 13), ("perm", 24)])
def test_final_logits_equal_full_sequence_reference(name, p, fold):
    """E = 3 models with their own seeds, each with its own examples, the paper's model size."""
    task = TaskConfig(name, p)
    data = make_dataset(task)
    tokens = torch.from_numpy(data.tokens())
    params = init_params(PAPER_MODEL, task, seeds=[0, 11, 5])
    gen = torch.Generator().manual_seed(1)
    idx = torch.stack([torch.randperm(len(data), generator=gen)[:150] for _ in range(3)])  # [E, N]
    a, b = tokens[:, 0][idx], tokens[:, 2][idx]
    logits = final_logits(params, a, b, task, fold=fold)
    assert logits.shape == (3, 150, p)
    for k in range(3):
        expected = _reference_last_logits(PAPER_MODEL, task, params, k, tokens[idx[k]])
        torch.testing.assert_close(logits[k], expected, atol=1e-5, rtol=0)


@settings(max_examples=15)
@given(tiny_model_configs(), task_and_p(), st.lists(st.integers(0, 1000), min_size=1, max_size=3),
       st.floats(0.5, 4.0))
def test_final_logits_equal_reference_for_any_architecture_and_weight_scale(cfg, tp, seeds, scale):
    task = TaskConfig(*tp)
    tokens = torch.from_numpy(make_dataset(task).tokens())
    params = {n: t * scale for n, t in init_params(cfg, task, seeds).items()}
    E = len(seeds)
    a, b = tokens[:, 0].expand(E, -1), tokens[:, 2].expand(E, -1)
    for fold in (False, True):
        logits = final_logits(params, a, b, task, fold=fold)
        for k in range(E):
            expected = _reference_last_logits(cfg, task, params, k, tokens)
            # float32 rounding grows with the size of the logits (here up to ~3e3): compare
            # to 1e-5 of the largest logit.
            atol = 1e-5 * max(1.0, expected.abs().max().item())
            torch.testing.assert_close(logits[k], expected, atol=atol, rtol=0)


def test_logits_all_is_the_p_by_p_grid_indexed_a_b_c():
    task = TaskConfig("add", 11)
    params = init_params(PAPER_MODEL, task, seeds=[3, 4])
    grid = logits_all(params, task)
    assert grid.shape == (2, 11, 11, 11)
    one = logits_all(params, task, model_index=1)
    torch.testing.assert_close(one, grid[1], atol=1e-6, rtol=0)
    tokens = torch.from_numpy(make_dataset(task).tokens())
    ref = _reference_last_logits(PAPER_MODEL, task, params, 1, tokens)
    torch.testing.assert_close(one[2, 7], ref[2 * 11 + 7], atol=1e-5, rtol=0)


def test_logits_all_includes_pairs_outside_the_task():
    task = TaskConfig("div", 7)  # b = 0 is not an example, but the grid is P x P
    assert logits_all(init_params(PAPER_MODEL, task, [0]), task, model_index=0).shape == (7, 7, 7)


def test_weights_have_transformerlens_names_and_shapes():
    task = TaskConfig("add", 13)
    params = init_params(PAPER_MODEL, task, seeds=[0, 1])
    shapes = weight_shapes(PAPER_MODEL, task)
    assert tuple(params) == WEIGHT_NAMES
    assert shapes["W_E"] == (15, 128) and shapes["W_U"] == (128, 13)
    assert shapes["W_Q"] == (4, 128, 32) and shapes["W_O"] == (4, 32, 128)
    assert shapes["W_in"] == (128, 512) and shapes["W_out"] == (512, 128) and shapes["W_pos"] == (4, 128)
    for n in WEIGHT_NAMES:
        assert params[n].shape == (2, *shapes[n]) and params[n].dtype == torch.float32


def test_each_model_initialisation_depends_only_on_its_own_seed():
    task = TaskConfig("add", 13)
    batch = init_params(PAPER_MODEL, task, seeds=[5, 7, 9])
    alone = init_params(PAPER_MODEL, task, seeds=[7])
    for n in WEIGHT_NAMES:
        assert torch.equal(batch[n][1], alone[n][0])
    assert not torch.equal(batch["W_E"][0], batch["W_E"][2])


def test_param_norm_is_the_l2_norm_of_all_weights_per_model():
    task = TaskConfig("add", 13)
    params = init_params(PAPER_MODEL, task, seeds=[0, 1])
    expected = [torch.cat([params[n][k].flatten().double() for n in WEIGHT_NAMES]).norm() for k in range(2)]
    torch.testing.assert_close(param_norm(params), torch.stack(expected))


@pytest.mark.parametrize("n", [10, 500, 3831, 12769])
def test_engine_multiplies_maps_out_exactly_when_that_saves_flops(n):
    task = TaskConfig("add", 113)
    folded, literal = (forward_matmul_flops(PAPER_MODEL, task, n, fold=f) for f in (True, False))
    assert uses_fold(PAPER_MODEL, task, n) == (folded < literal)
    assert forward_matmul_flops(PAPER_MODEL, task, n) == min(folded, literal)


def test_training_flops_count_the_forward_and_its_two_backward_products():
    """The plan and the engine benchmark divide by this count. At the paper's size the maps are
    multiplied out (N = 3831): per model the attention tables (query, keys folded with it,
    scores and values of 2P + 2 tokens), the maps multiplied out and the rows per head and
    token; per example 4H + 1 row sums into d_mlp + P and the product with W_out W_U. Training
    is that forward and twice it for the backward, 2 FLOPs per multiply-add."""
    task, n, H, d, hd, m = TaskConfig("add", 113), 3831, 4, 128, 128, 512
    tables = 2 * d * hd + 228 * d * (H + hd)
    maps = hd * d * (m + 113) + m * d * 113 + d * (m + 113) + 228 * hd * (m + 113)
    per_example = (4 * H + 1) * (m + 113) + m * 113
    assert training_matmul_flops(PAPER_MODEL, task, n) == 2 * 3 * (tables + maps + n * per_example)
    # 10 examples take the literal path: mixing, W_O, W_in, W_out, W_U per example
    literal = 4 * hd + hd * d + 2 * d * m + d * 113
    assert training_matmul_flops(PAPER_MODEL, task, 10) == 2 * 3 * (tables + 10 * literal)


def test_the_plain_model_and_a_batch_start_from_the_same_weights():
    """``Transformer(seed)`` holds ``init_weights(seed)``, which is row k of a batch whose
    k-th seed it is, so the plain model and the engine start from the same network."""
    task = TaskConfig("add", 13)
    plain = Transformer(PAPER_MODEL, task, seed=7)
    batch = init_params(PAPER_MODEL, task, seeds=[3, 7])
    one = init_weights(PAPER_MODEL, task, 7)
    for n in WEIGHT_NAMES:
        assert torch.equal(getattr(plain, n).detach(), one[n]) and torch.equal(batch[n][1], one[n])
