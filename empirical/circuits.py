"""From a trained engine model to its circuits: logits of every pair, the Appendix B
decomposition, the G/M correct-logit proxies, the trigonometric share and the correct logit.

The engine (:mod:`circeff.empirical.train`) stores stacked weights of E models; this module
reads one model at a time, builds its ``[P, P, P]`` logits with
:func:`circeff.empirical.batched.logits_all` and hands them to
:func:`circeff.empirical.fourier.decompose`. Nothing here trains or fits.

Definitions (used by Figure 9 and prediction P1):

* **correct logit** of an input: the logit of its label minus the mean of its logits over all
  labels (softmax ignores that mean). A split's correct logit is the mean over the split. For a
  random-label (memorisation-only) network the label is the random one it was trained on.
* **proxies** (:class:`circeff.empirical.fourier.CircuitProxies`, centred): the trigonometric
  and memorisation parts of that correct logit. With centring they add up to it exactly, on
  every split: ``trig_train + mem_train == correct_logit_train``.
* **trig share**: fraction of the squared (label-centred) logit norm in the trigonometric
  subspace; a G-only network has a share near 1 (the paper's Section 5.1: above 0.95).

The decomposition is defined for modular addition only (the Fourier directions of
``a + b - c``); any other task is refused with a one-line ConfigError naming ``task``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch

from circeff.empirical.checkpoint import (CHECKPOINT_NAME, SNAPSHOT_DIR, has_checkpoint, load_params,
                                          list_steps, read_snapshot, snapshot_files)
from circeff.empirical.config import TrainConfig
from circeff.empirical.fourier import CircuitProxies, correct_class_proxies, decompose
from circeff.empirical.batched import logits_all
from circeff.empirical.model import Params, param_norm
from circeff.empirical.tasks import TaskConfig, make_dataset, train_indices
from circeff.errors import ConfigError

__all__ = [
    "ModelCircuits",
    "analyse_params",
    "analyse_run",
    "centred_correct_logits",
    "label_table",
    "load_run",
    "model_logits",
    "require_fourier_task",
    "train_mask_table",
]

FOURIER_TASKS = ("add",)


@dataclass(frozen=True)
class ModelCircuits:
    """The circuits of one model of a run at one step.

    Attributes:
        model, seed, weight_decay, train_size, data_seed: which model (from its RunSpec).
        step: the training step of the weights.
        random_labels: the model was trained on random labels (memorisation only).
        param_norm: L2 norm of all its weights.
        train_acc, test_acc: accuracy on its training pairs and on the rest (nan if none).
        correct_logit_train, correct_logit_test: mean label-centred correct-class logit.
        trig_share, trig_fraction: from :func:`circeff.empirical.fourier.decompose`.
        key_frequencies: frequencies covering 90% of the trigonometric norm, largest first.
        frequency_norms: projection norm of every frequency ``k = 1 .. (P - 1) / 2``.
        proxies: centred G (trig) and M (mem) correct-logit proxies on train and test.
    """

    model: int
    seed: int
    weight_decay: float
    train_size: int
    data_seed: int
    step: int
    random_labels: bool
    param_norm: float
    train_acc: float
    test_acc: float
    correct_logit_train: float
    correct_logit_test: float
    trig_share: float
    trig_fraction: float
    key_frequencies: tuple[int, ...]
    frequency_norms: tuple[float, ...]
    proxies: CircuitProxies

    def to_row(self) -> dict[str, object]:
        """One flat row (CSV/DataFrame): proxies as ``trig_train`` ... columns, key
        frequencies as ``"k1;k2"``, without the per-frequency norms."""
        row = {k: v for k, v in asdict(self).items() if k not in ("proxies", "frequency_norms")}
        row["key_frequencies"] = ";".join(str(k) for k in self.key_frequencies)
        row.update({k: getattr(self.proxies, k) for k in ("trig_train", "mem_train", "trig_test", "mem_test")})
        return row


def require_fourier_task(task: TaskConfig) -> None:
    """ConfigError naming ``task`` unless the Fourier decomposition applies to it."""
    if task.name not in FOURIER_TASKS:
        raise ConfigError("task", "must be 'add' (the Fourier decomposition is defined for modular "
                          "addition only)", task.name)


def label_table(task: TaskConfig) -> np.ndarray:
    """int ``[P, P]`` label of every pair as trained (random labels for a random-label task)."""
    require_fourier_task(task)
    return make_dataset(task).labels.reshape(task.p, task.p)


def train_mask_table(task: TaskConfig, train_size: int, data_seed: int) -> np.ndarray:
    """bool ``[P, P]``: True where ``(a, b)`` is in the training set the engine used."""
    require_fourier_task(task)
    n = task.n_examples  # P^2 for addition, examples in (a, b) order, a major
    mask = np.zeros(n, dtype=bool)
    mask[train_indices(n, train_size, data_seed)] = True
    return mask.reshape(task.p, task.p)


def model_logits(params: Params, task: TaskConfig, model_index: int) -> np.ndarray:
    """float64 ``[P, P, P]`` logits of one model for every pair ``(a, b)``, indexed ``[a, b, c]``."""
    require_fourier_task(task)
    return logits_all(params, task, model_index).double().cpu().numpy()


def centred_correct_logits(logits: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """``[P, P]`` logit of each pair's label minus the pair's mean logit over labels."""
    centred = logits - logits.mean(axis=-1, keepdims=True)
    return np.take_along_axis(centred, labels[:, :, None], axis=-1)[:, :, 0]


def _mean(values: np.ndarray, mask: np.ndarray) -> float:
    return float(values[mask].mean()) if mask.any() else float("nan")


def analyse_params(config: TrainConfig, params: Params, step: int,
                   models: Sequence[int] | None = None) -> list[ModelCircuits]:
    """:class:`ModelCircuits` of the chosen models (default: all) of a run's stacked weights."""
    task = config.task
    require_fourier_task(task)
    chosen = range(config.n_models) if models is None else models
    for k in chosen:
        if not 0 <= k < config.n_models:
            raise ConfigError("model", f"must be in [0, {config.n_models - 1}] (the run has "
                              f"{config.n_models} models)", k)
    labels = label_table(task)
    norms = param_norm(params)
    out = []
    for k in chosen:
        run = config.runs[k]
        logits = model_logits(params, task, k)
        mask = train_mask_table(task, run.train_size, run.data_seed)
        decomposition = decompose(logits)
        correct = logits.argmax(axis=-1) == labels
        centred = centred_correct_logits(logits, labels)
        out.append(ModelCircuits(
            model=int(k), seed=run.seed, weight_decay=run.weight_decay, train_size=run.train_size,
            data_seed=run.data_seed, step=int(step), random_labels=task.random_labels,
            param_norm=float(norms[k]),
            train_acc=_mean(correct, mask), test_acc=_mean(correct, ~mask),
            correct_logit_train=_mean(centred, mask), correct_logit_test=_mean(centred, ~mask),
            trig_share=decomposition.trig_share, trig_fraction=decomposition.trig_fraction,
            key_frequencies=decomposition.key_frequencies,
            frequency_norms=tuple(float(x) for x in decomposition.frequency_norms),
            proxies=correct_class_proxies(decomposition, mask, labels, centre=True),
        ))
    return out


def load_run(run_dir: str | Path, step: int | None = None) -> tuple[TrainConfig, Params, int]:
    """``(config, params, step)`` of a run folder: its checkpoint, or with ``step`` its snapshot
    of that step (``snapshots/``, from ``circeff train --snapshot-every``; the checkpoint also
    serves when it is at that step).

    A ConfigError naming ``run_dir`` (bad input, exit code 2) if the folder holds neither a
    checkpoint nor snapshots, one naming ``step`` and listing the steps there are if ``step``
    has no snapshot; RunError if the file is unreadable.
    """
    path = Path(run_dir)
    snapshots = snapshot_files(path) if step is not None else {}
    if not has_checkpoint(path) and not snapshots:  # this version's checkpoint name or an earlier one
        raise ConfigError("run_dir", f"must be a run folder holding {CHECKPOINT_NAME} (from circeff train)",
                          str(path))
    if step is None:
        return load_params(path, torch.device("cpu"))
    if step in snapshots:
        snap = read_snapshot(snapshots[step], torch.device("cpu"))
        return snap.config, snap.params, snap.step
    if has_checkpoint(path):
        config, params, at = load_params(path, torch.device("cpu"))
        if at == step:
            return config, params, at
        final = "" if at in snapshots else f" (or {at}, the final checkpoint)"
    else:
        final = ""
    if snapshots:
        there = f"a step with a snapshot in {path / SNAPSHOT_DIR}: {list_steps(list(snapshots))}{final}"
    else:
        there = (f"{at}, the step of the final checkpoint: {path} has no snapshots (train with --snapshot-every N "
                 "to keep them)")
    raise ConfigError("step", f"must be {there}", step)


def analyse_run(run_dir: str | Path, models: Sequence[int] | None = None,
                step: int | None = None) -> list[ModelCircuits]:
    """:func:`analyse_params` on the final checkpoint of a run folder, or on its snapshot of
    ``step``."""
    config, params, at = load_run(run_dir, step)
    require_fourier_task(config.task)
    return analyse_params(config, params, at, models)
