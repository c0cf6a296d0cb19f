"""The link between engine models and the Appendix B decomposition (circeff.empirical.circuits)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from numpy.testing import assert_allclose

from circeff.empirical.circuits import (
    analyse_params,
    analyse_run,
    centred_correct_logits,
    label_table,
    load_run,
    model_logits,
    train_mask_table,
)
from circeff.empirical.config import ModelConfig, RunSpec, TrainConfig
from circeff.empirical.fourier import correct_class_proxies, decompose
from circeff.empirical.batched import logits_all
from circeff.empirical.model import init_params
from circeff.empirical.tasks import TaskConfig, make_dataset
from circeff.empirical.train import build_training_data
from circeff.errors import ConfigError

SMALL = ModelConfig(d_model=16, n_heads=2, d_head=8, d_mlp=32)


def _config(task: TaskConfig, sizes=(30, 60), seeds=(0, 1)) -> TrainConfig:
    runs = tuple(RunSpec(seed=s, weight_decay=1.0, train_size=d, data_seed=i)
                 for i, (d, s) in enumerate(zip(sizes, seeds)))
    return TrainConfig(task=task, runs=runs, model=SMALL, steps=1)


@pytest.fixture(params=[False, True], ids=["true_labels", "random_labels"])
def run_state(request):
    task = TaskConfig(name="add", p=11, random_labels=request.param, label_seed=3)
    config = _config(task)
    params = init_params(SMALL, task, [r.seed for r in config.runs])
    return config, params


def test_analysis_equals_decomposition_of_logits_all(run_state):
    config, params = run_state
    task = config.task
    results = analyse_params(config, params, step=7)
    # all models in one batch: float32 rounding of batched matmuls differs from one model alone
    all_logits = logits_all(params, task)
    for k, m in enumerate(results):
        direct = decompose(all_logits[k])
        assert m.trig_share == pytest.approx(direct.trig_share, rel=1e-4, abs=1e-7)
        alone = decompose(logits_all(params, task, k))  # the same model on its own: exact
        assert m.key_frequencies == alone.key_frequencies and m.trig_share == alone.trig_share
        assert_allclose(m.frequency_norms, direct.frequency_norms, rtol=1e-4, atol=1e-6)
        mask = train_mask_table(task, config.runs[k].train_size, config.runs[k].data_seed)
        proxies = correct_class_proxies(direct, mask, label_table(task))
        assert m.proxies.trig_train == pytest.approx(proxies.trig_train, rel=1e-4, abs=1e-7)
        assert m.proxies.mem_test == pytest.approx(proxies.mem_test, rel=1e-4, abs=1e-7)
        assert m.step == 7 and m.model == k and m.random_labels == task.random_labels


def test_proxies_add_up_to_the_centred_correct_logit(run_state):
    config, params = run_state
    for m in analyse_params(config, params, step=0):
        assert m.proxies.trig_train + m.proxies.mem_train == pytest.approx(m.correct_logit_train, abs=1e-9)
        assert m.proxies.trig_test + m.proxies.mem_test == pytest.approx(m.correct_logit_test, abs=1e-9)
        assert m.proxies.n_train == m.train_size


def test_train_mask_and_labels_match_the_engine(run_state):
    config, _ = run_state
    dataset = make_dataset(config.task)
    data = build_training_data(dataset, config, torch.device("cpu"))
    for k, run in enumerate(config.runs):
        mask = train_mask_table(config.task, run.train_size, run.data_seed)
        assert np.array_equal(mask.reshape(-1), data.train_mask[k].numpy())
    assert np.array_equal(label_table(config.task).reshape(-1), dataset.labels)


def test_accuracy_and_correct_logit_from_the_logits(run_state):
    config, params = run_state
    (m,) = analyse_params(config, params, step=0, models=[1])
    logits = model_logits(params, config.task, 1)
    labels = label_table(config.task)
    mask = train_mask_table(config.task, config.runs[1].train_size, config.runs[1].data_seed)
    assert m.train_acc == pytest.approx(float((logits.argmax(-1) == labels)[mask].mean()))
    centred = centred_correct_logits(logits, labels)
    assert m.correct_logit_test == pytest.approx(float(centred[~mask].mean()))


def test_a_pure_trigonometric_model_has_share_one():
    """Logits that depend only on a + b - c through one frequency: share 1, that key frequency,
    and all of the correct logit in the G proxy."""
    p, k = 11, 3
    a = np.arange(p)
    s = (a[:, None, None] + a[None, :, None] - a[None, None, :]) % p
    logits = 5.0 * np.cos(2 * np.pi * k * s / p)
    d = decompose(logits)
    assert d.trig_share == pytest.approx(1.0, abs=1e-12) and d.key_frequencies == (k,)
    labels = label_table(TaskConfig(name="add", p=p))
    assert_allclose(centred_correct_logits(logits, labels), 5.0, atol=1e-12)


def test_other_tasks_and_bad_indices_are_refused(tmp_path):
    task = TaskConfig(name="sub", p=11)
    config = _config(task)
    params = init_params(SMALL, task, [0, 1])
    with pytest.raises(ConfigError, match="^task:"):
        analyse_params(config, params, step=0)
    add = _config(TaskConfig(name="add", p=11))
    with pytest.raises(ConfigError, match="^model:"):
        analyse_params(add, init_params(SMALL, add.task, [0, 1]), step=0, models=[2])
    with pytest.raises(ConfigError, match="^run_dir:"):
        load_run(tmp_path)
    with pytest.raises(ConfigError, match="^run_dir:"):
        analyse_run(tmp_path / "missing")
