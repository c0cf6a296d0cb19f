"""Batched AdamW is torch's AdamW, with one weight decay per model."""

from __future__ import annotations

import torch

from circeff.empirical.optim import adamw_init, adamw_step

HYPER = dict(lr=1e-3, beta1=0.9, beta2=0.98, eps=1e-8)


def _stacked(E: int, seed: int = 0) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return {"W_in": torch.randn(E, 6, 5, generator=g), "W_U": torch.randn(E, 3, generator=g)}


def _torch_adamw_trajectory(params, grads_per_step, weight_decay):
    leaves = {n: t.clone().requires_grad_() for n, t in params.items()}
    opt = torch.optim.AdamW(list(leaves.values()), lr=HYPER["lr"], betas=(HYPER["beta1"], HYPER["beta2"]),
                            eps=HYPER["eps"], weight_decay=weight_decay, foreach=False)
    for grads in grads_per_step:
        for n, leaf in leaves.items():
            leaf.grad = grads[n].clone()
        opt.step()
    return {n: t.detach() for n, t in leaves.items()}


def _grads(params, steps, seed=1):
    g = torch.Generator().manual_seed(seed)
    return [{n: torch.randn(t.shape, generator=g) for n, t in params.items()} for _ in range(steps)]


def test_batched_adamw_equals_torch_adamw_for_one_model():
    params = _stacked(1)
    grads = _grads(params, 40)
    expected = _torch_adamw_trajectory({n: t[0] for n, t in params.items()}, [{n: g[n][0] for n in g} for g in grads], 1.0)
    state = adamw_init(params)
    for g in grads:
        adamw_step(params, g, state, weight_decay=torch.tensor([1.0]), **HYPER)
    for n in params:
        torch.testing.assert_close(params[n][0], expected[n], atol=1e-6, rtol=0)
    assert state.step == 40


def test_per_model_weight_decay_equals_one_torch_optimiser_per_model():
    params = _stacked(3, seed=2)
    decays = [1.0, 0.3, 0.0]
    grads = _grads(params, 25)
    expected = [_torch_adamw_trajectory({n: t[k] for n, t in params.items()},
                                        [{n: g[n][k] for n in g} for g in grads], decays[k]) for k in range(3)]
    state = adamw_init(params)
    for g in grads:
        adamw_step(params, g, state, weight_decay=torch.tensor(decays), **HYPER)
    for k in range(3):
        for n in params:
            torch.testing.assert_close(params[n][k], expected[k][n], atol=1e-6, rtol=0)


def test_inactive_model_keeps_its_weights_and_others_move_as_before():
    params, twin = _stacked(2, seed=3), _stacked(2, seed=3)
    grads = _grads(params, 5)
    s1, s2 = adamw_init(params), adamw_init(twin)
    active = torch.tensor([True, False])
    before = {n: t[1].clone() for n, t in params.items()}
    for g in grads:
        adamw_step(params, {n: torch.stack([g[n][0], torch.zeros_like(g[n][1])]) for n in g}, s1,
                   weight_decay=torch.tensor([1.0, 1.0]), active=active, **HYPER)
        adamw_step(twin, g, s2, weight_decay=torch.tensor([1.0, 1.0]), **HYPER)
    for n in params:
        assert torch.equal(params[n][1], before[n])
        assert torch.equal(params[n][0], twin[n][0])
