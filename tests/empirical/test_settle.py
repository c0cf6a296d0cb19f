"""Settling at a minimum of CE + (alpha/2)||theta||^2 (circeff.empirical.settle), the P1 stage 2."""

from __future__ import annotations

import pytest
import torch

from circeff.empirical.config import ModelConfig, RunSpec, TrainConfig
from circeff.empirical.model import param_norm
from circeff.empirical.settle import settle, settle_model
from circeff.empirical.tasks import TaskConfig, make_dataset
from circeff.empirical.train import build_training_data, loss_and_grads, train
from circeff.errors import ConfigError

TASK = TaskConfig("add", 13)
CONFIG = TrainConfig(task=TASK, runs=(RunSpec(seed=0, train_size=80), RunSpec(seed=1, train_size=60, data_seed=2)),
                     model=ModelConfig(d_model=16, n_heads=2, d_head=8, d_mlp=32), steps=150, lr=1e-2,
                     log_every=50, checkpoint_every=150)


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    torch.set_num_threads(1)
    state = train(CONFIG, tmp_path_factory.mktemp("settle"), progress=False)
    from circeff.empirical.checkpoint import load_params

    return load_params(state.out_dir, torch.device("cpu"))[1]


def _objective(params, alpha: float) -> torch.Tensor:
    data = build_training_data(make_dataset(TASK), CONFIG, torch.device("cpu"))
    losses, _ = loss_and_grads(params, data, CONFIG)
    return losses + 0.5 * alpha * param_norm(params) ** 2


def test_settling_lowers_each_models_objective(trained):
    alpha = 1e-2
    settled, traces = settle(trained, make_dataset(TASK), CONFIG, alpha, iterations=30)
    before, after = _objective(trained, alpha), _objective(settled, alpha)
    assert (after < before).all()
    assert [t.objective for t in traces] == pytest.approx(after.tolist(), rel=1e-6)
    assert all(t.alpha == alpha and t.evaluations > 30 and t.norm_drift >= 0 for t in traces)


def test_a_larger_alpha_settles_at_a_smaller_norm_and_stationarity_falls(trained):
    small, small_traces = settle(trained, make_dataset(TASK), CONFIG, 1e-3, iterations=40)
    large, large_traces = settle(small, make_dataset(TASK), CONFIG, 1e-1, iterations=40)
    assert (param_norm(large) < param_norm(small)).all()
    # against the trained weights, whose gradient is nowhere near balanced by 1e-1 * theta
    _, fresh = settle(trained, make_dataset(TASK), CONFIG, 1e-1, iterations=1)
    assert all(t.stationarity < f.stationarity for t, f in zip(large_traces, fresh, strict=True))


def test_a_model_settles_the_same_alone_or_in_its_batch(trained):
    batch, traces = settle(trained, make_dataset(TASK), CONFIG, 1e-2, iterations=15)
    alone, trace = settle_model(trained, make_dataset(TASK), CONFIG, 1, 1e-2, iterations=15)
    for name in batch:
        torch.testing.assert_close(batch[name][1:2], alone[name], rtol=0, atol=0)
    assert traces[1] == trace
    for name in trained:  # the input is not modified
        assert not torch.equal(trained[name], batch[name])


@pytest.mark.parametrize(("kwargs", "field"), [({"alpha": 0.0}, "alpha"), ({"iterations": 0}, "iterations")])
def test_bad_settle_input_names_the_field(trained, kwargs, field):
    args = {"alpha": 1e-2, "iterations": 5, **kwargs}
    with pytest.raises(ConfigError, match=f"^{field}:"):
        settle_model(trained, make_dataset(TASK), CONFIG, 0, **args)
