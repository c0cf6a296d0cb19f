"""The training engine as sweep work: one store run = one model; compatible runs = one batch.

A store run's config is a :class:`~circeff.empirical.config.TrainConfig` with exactly one
:class:`~circeff.empirical.config.RunSpec` (so its hash covers the task, architecture,
optimiser, step counts and the model's own seed, weight decay and training set). Runs whose
configs agree on everything but that RunSpec train together as ONE engine batch:
:func:`train_batch` merges them, trains the batch in ``ROOT/batches/<hash of the batch>/``
(the engine's own folder: its config.json, checkpoint.safetensors, metrics.csv, summary.json),
and then gives every run folder its own ``metrics.csv`` (its model's rows, written as the
engine writes them: a missing value, the test metrics of a run trained on every example, is
an empty cell). A killed batch is resumed from its checkpoint, because the same unfinished
runs form the same batch again. In a run's ``done.json`` summary a missing ``test_acc`` is null.

Divergence follows the engine's ``nan_policy``. With ``freeze`` (the default) a diverged model
is finished but marked: its rows say ``status=diverged`` and its ``done.json`` summary has
``status: diverged`` and ``diverged_at`` (the step); the other models are unaffected. With
``stop``, or when every model of the batch diverged, the engine stops with an error naming
the step, and every run of that batch is marked failed with that line.

Grid files for ``"kind": "train"`` use flat field names: ``task`` (the task's name), ``p``,
``random_labels``, ``label_seed``; ``d_model``, ``n_heads``, ``d_head``, ``d_mlp``; ``seed``,
``weight_decay``, ``train_size`` or ``train_frac`` (exactly one), ``data_seed``,
``init_index``; and every other field of TrainConfig (``steps``, ``lr``, ...).
"""

from __future__ import annotations

import dataclasses
import sys
from collections.abc import Mapping, Sequence
from typing import Any

from circeff.empirical.config import ModelConfig, RunSpec, TrainConfig, resolve_train_size
from circeff.empirical.metrics import METRIC_COLUMNS, csv_rows
from circeff.empirical.tasks import TaskConfig
from circeff.errors import ConfigError
from circeff.io import write_csv, write_json
from circeff.sweep.executors import RunTask
from circeff.sweep.grid import SweepKind
from circeff.sweep.store import canonical_json, config_hash, config_to_dict

BATCHES_DIR = "batches"
# Matches the store's checkpoint glob: the run's checkpoint is its batch's, found through this.
CHECKPOINT_POINTER = "checkpoint.batch.json"
# Flat grid-file name -> TaskConfig field (the task's name is `task`, as on the command line).
TASK_FIELDS = {"task": "name", "p": "p", "random_labels": "random_labels", "label_seed": "label_seed"}
MODEL_FIELDS = tuple(f.name for f in dataclasses.fields(ModelConfig))
RUN_FIELDS = tuple(f.name for f in dataclasses.fields(RunSpec))
SHARED_FIELDS = tuple(f.name for f in dataclasses.fields(TrainConfig) if f.name not in ("task", "runs", "model"))
FIELDS = (*TASK_FIELDS, *MODEL_FIELDS, *RUN_FIELDS, "train_frac", *SHARED_FIELDS)
# `model` is the position in a batch, which depends on the batch's other runs: not a result.
RUN_METRIC_COLUMNS = [c for c in METRIC_COLUMNS if c != "model"]


def _floats_as_floats(cls: type, values: dict[str, Any]) -> dict[str, Any]:
    """JSON `1` for a float field becomes 1.0, so that `1` and `1.0` are the same run (hash)."""
    types = {f.name: str(f.type) for f in dataclasses.fields(cls)}
    out = {}
    for name, value in values.items():
        if (types.get(name, "").startswith("float") and isinstance(value, int)
                and not isinstance(value, bool)):
            value = float(value)
        out[name] = value
    return out


def build_train_run(fields: Mapping[str, Any]) -> TrainConfig:
    """The store config of one run (a TrainConfig with one RunSpec) from flat grid fields."""
    for key in fields:
        if key not in FIELDS:
            raise ConfigError(str(key), f"unknown field; allowed: {', '.join(sorted(FIELDS))}")
    pick = lambda names: {n: fields[n] for n in names if n in fields}  # noqa: E731
    task = TaskConfig(**{TASK_FIELDS[k]: v for k, v in pick(TASK_FIELDS).items()})
    model = ModelConfig(**pick(MODEL_FIELDS))
    train_size = resolve_train_size(task, fields.get("train_frac"), fields.get("train_size"))
    spec = RunSpec(**_floats_as_floats(RunSpec, {**pick(RUN_FIELDS), "train_size": train_size}))
    return TrainConfig(task=task, runs=(spec,), model=model,
                       **_floats_as_floats(TrainConfig, pick(SHARED_FIELDS)))


def train_group_key(config: TrainConfig) -> str:
    """Runs that can share one engine batch: equal in everything but their RunSpec."""
    shared = config_to_dict(config)
    del shared["runs"]
    return canonical_json(shared)


def merge(configs: Sequence[TrainConfig]) -> TrainConfig:
    """One batch of the given one-model configs (which must share everything else)."""
    keys = {train_group_key(c) for c in configs}
    if len(keys) != 1:
        raise ValueError("configs of one engine batch must agree on everything but their RunSpec")
    return dataclasses.replace(configs[0], runs=tuple(c.runs[0] for c in configs))


def train_batch(tasks: Sequence[RunTask]) -> list[Any]:
    """Train the tasks as one engine batch; split its metrics into each run's folder."""
    from circeff.empirical.train import train  # torch only when something trains

    batch = merge([t.config for t in tasks])
    root = tasks[0].out_dir.parent.parent
    batch_dir = root / BATCHES_DIR / config_hash(batch)
    # A pointer in each run folder: the store then sees the run as started (resumable),
    # and a reader can find the checkpoint of its model.
    for e, task in enumerate(tasks):
        write_json(task.out_dir / CHECKPOINT_POINTER, {"batch": f"{BATCHES_DIR}/{batch_dir.name}", "model": e})
    # resume=True: continue the batch's checkpoint if a killed attempt left one (the same
    # unfinished runs make the same batch, hence the same folder); else start at step 0.
    result = train(batch, batch_dir, resume=True, progress=sys.stderr.isatty())
    values: list[Any] = []
    for e, task in enumerate(tasks):
        rows = [{c: row[c] for c in RUN_METRIC_COLUMNS} for row in result.rows if row["model"] == e]
        write_csv(task.out_dir / "metrics.csv", csv_rows(rows), fieldnames=RUN_METRIC_COLUMNS)
        final = rows[-1]
        diverged_at = result.diverged[e]
        values.append({
            "status": "ok" if diverged_at is None else "diverged",
            "diverged_at": diverged_at,
            "step": result.step,
            "train_acc": final["train_acc"],
            "test_acc": final["test_acc"],  # NaN where missing: null in done.json
            "batch": f"{BATCHES_DIR}/{batch_dir.name}",
            "model": e,
        })
    return values


def train_kind() -> SweepKind:
    return SweepKind("train", build_train_run, train_batch, group_key=train_group_key)
