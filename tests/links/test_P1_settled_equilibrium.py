"""Link: the networks P1 measures sit where Theorem D.1's scaling gain meets weight decay.

At a minimum of ``CE(theta) + (alpha/2)||theta||^2`` the derivative along the ray
``c * theta`` vanishes at ``c = 1``: ``d CE(c theta)/dc = -alpha ||theta||^2``. D.1 says the
left side is negative for a perfectly accurate classifier (scaling up lowers the loss); the
settle stage (:mod:`circeff.empirical.settle`) is what makes it equal to the weight-decay
pull. A network straight out of AdamW training is far from that balance, so the test can fail.
"""

from __future__ import annotations

import pytest
import torch

from circeff.empirical.checkpoint import load_params
from circeff.empirical.config import ModelConfig, RunSpec, TrainConfig
from circeff.empirical.model import param_norm
from circeff.empirical.settle import settle
from circeff.empirical.tasks import TaskConfig, make_dataset
from circeff.empirical.train import build_training_data, loss_and_grads, train

TASK = TaskConfig("add", 13, random_labels=True)  # memorisation only, as P1's M networks
CONFIG = TrainConfig(task=TASK, runs=(RunSpec(seed=0, train_size=60), RunSpec(seed=1, train_size=80, data_seed=1)),
                     model=ModelConfig(d_model=16, n_heads=2, d_head=8, d_mlp=32), steps=300, lr=1e-2,
                     log_every=100, checkpoint_every=300)


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    out = tmp_path_factory.mktemp("equilibrium")
    result = train(CONFIG, out, progress=False)
    assert all(r["train_acc"] == 1.0 for r in result.final_rows())  # D.1 needs perfect accuracy
    return load_params(out)[1]


def _ray_derivative_of_ce(params, h: float = 1e-2) -> torch.Tensor:
    data = build_training_data(make_dataset(TASK), CONFIG, torch.device("cpu"))

    def ce(c: float) -> torch.Tensor:
        return loss_and_grads({k: v * c for k, v in params.items()}, data, CONFIG)[0]

    return (ce(1 + h) - ce(1 - h)) / (2 * h)


@pytest.mark.parametrize("alpha", [1e-2, 1e-1])
def test_P1_settled_networks_balance_the_D1_scaling_gain_against_weight_decay(trained, alpha):
    settled, traces = settle(trained, make_dataset(TASK), CONFIG, alpha, iterations=60)
    gain = _ray_derivative_of_ce(settled)
    pull = alpha * param_norm(settled) ** 2
    assert (gain < 0).all()                                  # D.1: scaling up lowers the loss
    assert ((gain + pull).abs() / pull < 0.25).all(), (gain, pull, traces)
    # the AdamW-trained weights are nowhere near this balance
    raw_gain, raw_pull = _ray_derivative_of_ce(trained), alpha * param_norm(trained) ** 2
    assert ((raw_gain + raw_pull).abs() / raw_pull > 0.5).all()
