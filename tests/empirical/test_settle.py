"""Settling at a minimum of CE + (alpha/2)||theta||^2 (circeff.empirical.settle), the P1 stage 2."""

from __future__ import annotations

from dataclasses import replace

import pytest
import torch

from circeff.empirical.batched import final_logits
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


# A batched evaluation may round differently from a model's evaluation alone (other block
# boundaries and padding), and L-BFGS carries a rounding difference forward; the settled norm
# and logits of a model must still agree with its settle alone to these tolerances.
NORM_RTOL = 1e-5
LOGIT_ATOL = 1e-4


def _logits(params):
    tokens = torch.from_numpy(make_dataset(TASK).tokens())
    E = params["W_E"].shape[0]
    return final_logits(params, tokens[:, 0].expand(E, -1), tokens[:, 2].expand(E, -1), TASK)


def _alone(params, config, alpha, iterations):
    runs = [settle_model(params, make_dataset(TASK), config, k, alpha, iterations) for k in range(config.n_models)]
    return {n: torch.cat([w[n] for w, _ in runs]) for n in params}, [t for _, t in runs]


def test_a_model_settles_the_same_alone_or_in_its_batch(trained):
    """Each model keeps its own L-BFGS (history, line search, step sizes) in the batch."""
    batch, traces = settle(trained, make_dataset(TASK), CONFIG, 1e-2, iterations=40)
    alone, alone_traces = _alone(trained, CONFIG, 1e-2, 40)
    torch.testing.assert_close(param_norm(batch), param_norm(alone), rtol=NORM_RTOL, atol=0)
    torch.testing.assert_close(_logits(batch), _logits(alone), atol=LOGIT_ATOL, rtol=0)
    assert [t.evaluations for t in traces] == [t.evaluations for t in alone_traces]
    for name in trained:  # the input is not modified
        assert not torch.equal(trained[name], batch[name])


def test_summing_the_objectives_into_one_lbfgs_would_not_settle_each_model_as_alone(trained):
    """Negative control for the test above: one L-BFGS on the summed objective (one line
    search for all models) ends elsewhere, by far more than the tolerances."""
    data = build_training_data(make_dataset(TASK), CONFIG, torch.device("cpu"))
    weights = {n: p.detach().clone().requires_grad_() for n, p in trained.items()}

    def closure():
        losses, grads = loss_and_grads({n: w.detach() for n, w in weights.items()}, data, CONFIG)
        for n, w in weights.items():
            w.grad = grads[n] + 1e-2 * w.detach()
        return losses.sum() + 0.5 * 1e-2 * param_norm(weights).pow(2).sum()

    torch.optim.LBFGS(list(weights.values()), max_iter=40, line_search_fn="strong_wolfe",
                      tolerance_grad=0.0, tolerance_change=0.0).step(closure)
    coupled = {n: w.detach() for n, w in weights.items()}
    alone, _ = _alone(trained, CONFIG, 1e-2, 40)
    assert ((param_norm(coupled) - param_norm(alone)).abs() / param_norm(alone)).max() > 100 * NORM_RTOL


def test_a_model_of_a_mixed_batch_settles_as_alone(trained):
    """Another neighbour set (a third model with another data seed and size): model 1 still
    settles as alone."""
    runs = (*CONFIG.runs, RunSpec(seed=5, train_size=120, data_seed=4))
    config = replace(CONFIG, runs=runs)
    params = {n: torch.cat([p, p[:1] * 1.1]) for n, p in trained.items()}
    batch, _ = settle(params, make_dataset(TASK), config, 1e-2, iterations=25)
    alone, _ = settle_model(params, make_dataset(TASK), config, 1, 1e-2, iterations=25)
    torch.testing.assert_close(param_norm(batch)[1:2], param_norm(alone), rtol=NORM_RTOL, atol=0)
    torch.testing.assert_close(_logits(batch)[1:2], _logits(alone), atol=LOGIT_ATOL, rtol=0)


def test_progress_is_reported_for_every_model_and_errors_reach_the_caller(trained, monkeypatch):
    seen = []
    settle(trained, make_dataset(TASK), CONFIG, 1e-2, iterations=2, on_model=seen.append)
    assert seen == [0, 1]
    import circeff.empirical.settle as module

    def broken(*_args):
        raise ValueError("evaluation broke")

    monkeypatch.setattr(module, "_objective_and_grads", broken)
    with pytest.raises(ValueError, match="evaluation broke"):
        settle(trained, make_dataset(TASK), CONFIG, 1e-2, iterations=2)


@pytest.mark.parametrize(("kwargs", "field"), [({"alpha": 0.0}, "alpha"), ({"iterations": 0}, "iterations")])
def test_bad_settle_input_names_the_field(trained, kwargs, field):
    args = {"alpha": 1e-2, "iterations": 5, **kwargs}
    with pytest.raises(ConfigError, match=f"^{field}:"):
        settle_model(trained, make_dataset(TASK), CONFIG, 0, **args)
