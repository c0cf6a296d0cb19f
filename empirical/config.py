"""Frozen configs of a batched training run: the model, each model of the batch, the run.

A batch is E independent models trained in one loop. What they share (task, architecture,
optimiser hyper-parameters, step count) lives in :class:`TrainConfig`; what each model may
choose for itself (init seed, weight decay, training subset, starting point) lives in one
:class:`RunSpec` per model.
"""

from __future__ import annotations

import dataclasses
import itertools
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from circeff.empirical.tasks import TaskConfig
from circeff.errors import ConfigError
from circeff.validate import in_range, integer_at_least, non_empty, non_negative, positive

__all__ = ["ModelConfig", "cpu_block_size", "RunSpec", "TRAINING_FIELDS", "TrainConfig", "Training", "resolve_train_size",
           "TrainingView", "split_overrides", "with_overrides"]

NAN_POLICIES = ("freeze", "stop")


@dataclass(frozen=True)
class ModelConfig:
    """The 1-layer transformer of the paper's Section 5 and Appendix A (no LayerNorm, no biases, ReLU MLP).

    Vocabulary sizes and context length come from the task (:class:`TaskConfig`), never from
    here, so that they cannot disagree with ``P``.
    """

    d_model: int = 128  # residual stream width
    n_heads: int = 4
    d_head: int = 32  # Nanda et al. 2023's value (the paper's was lost)
    d_mlp: int = 512

    def __post_init__(self) -> None:
        for name in ("d_model", "n_heads", "d_head", "d_mlp"):
            integer_at_least(name, getattr(self, name), 1)


@dataclass(frozen=True)
class RunSpec:
    """One model of a batch.

    Attributes:
        seed: seed of the model's initial parameters (separate from ``data_seed``).
        weight_decay: AdamW's decoupled weight decay for this model.
        train_size: number of training examples D; the rest of the dataset is its test set.
        data_seed: which D examples: the first D of a permutation drawn with this seed (so
            sets of one data seed are nested, see :func:`circeff.empirical.tasks.train_indices`).
        init_index: with ``TrainConfig.init_from``, the index of the model in that checkpoint
            whose parameters this model starts from (``None``: the same index as this model).
    """

    seed: int = 0
    weight_decay: float = 1.0
    train_size: int = 1
    data_seed: int = 0
    init_index: int | None = None

    def __post_init__(self) -> None:
        integer_at_least("seed", self.seed, 0)
        non_negative("weight_decay", self.weight_decay)
        integer_at_least("train_size", self.train_size, 1)
        integer_at_least("data_seed", self.data_seed, 0)
        if self.init_index is not None:
            integer_at_least("init_index", self.init_index, 0)


def resolve_train_size(task: TaskConfig, train_frac: float | None, train_size: int | None) -> int:
    """D from exactly one of a fraction of the dataset or a size (round(frac * n), at least 1)."""
    n = task.n_examples
    if train_frac is None and train_size is None:
        raise ConfigError("train_size", "give exactly one of train_frac and train_size", "neither")
    if train_frac is not None and train_size is not None:
        raise ConfigError("train_frac", "give exactly one of train_frac and train_size",
                          f"train_frac={train_frac}, train_size={train_size}")
    if train_frac is not None:
        frac = in_range("train_frac", train_frac, 0.0, 1.0, lo_open=True)
        return max(1, round(frac * n))
    size = integer_at_least("train_size", train_size, 1)
    if size > n:
        raise ConfigError("train_size", f"must be <= {n}, the number of examples of {task.name} at p={task.p}", size)
    return size


# Examples per block on CPU when a config leaves block_size unset. The block size only orders the
# floating-point sums of the loss and gradients; `cpu_block_size` changes it for a whole run, so
# that `circeff reproduce --float-check` can see which verdicts change with that order alone.
_CPU_BLOCK = [1024]


@contextmanager
def cpu_block_size(block: int) -> Iterator[None]:
    """Within the block, configs without a block_size train ``block`` examples at a time on CPU."""
    integer_at_least("block_size", block, 1)
    _CPU_BLOCK.append(int(block))
    try:
        yield
    finally:
        _CPU_BLOCK.pop()


@dataclass(frozen=True)
class TrainConfig:
    """A batched run: E = len(runs) models of one task trained together, full batch AdamW.

    Attributes:
        task: the task (shared by the batch).
        runs: one :class:`RunSpec` per model.
        model: architecture (shared).
        steps: optimiser steps (full batch: one step is one epoch).
        lr, beta1, beta2, eps: AdamW (the paper: lr 1e-3; betas 0.9/0.98 as in Nanda et al. 2023; eps is torch's default).
        log_every: metrics of every model every this many steps (and at step 0 and the end).
        checkpoint_every: checkpoint every this many steps (and at the end).
        device: ``cpu`` or ``cuda`` (``cuda:N``).
        chunk_size: models per forward/backward chunk (None: 4 on CPU, all on CUDA).
        block_size: examples per block of the per-example stage (None: 1024 on CPU, all on
            CUDA). Chunks and blocks keep the working set in the CPU caches. Only speed and
            memory depend on them, but they are part of the config because float rounding
            (the order of sums) does, and resume must be bit-identical.
        nan_policy: ``freeze`` (a model whose loss or gradient turns non-finite keeps its last
            finite parameters, is marked ``status=diverged`` from then on and the others
            continue; if all diverge the run stops with a RunError) or ``stop`` (the first
            non-finite loss stops the run with a RunError naming the step and the model).
        init_from: path of a checkpoint (``checkpoint.safetensors``, or an earlier version's
            ``checkpoint.pt``) or of its run folder, whose final parameters the models start
            from (see ``RunSpec.init_index``); the optimiser state starts fresh. Used to
            continue grokked models on new subsets D'.
    """

    task: TaskConfig
    runs: tuple[RunSpec, ...]
    model: ModelConfig = field(default_factory=ModelConfig)
    steps: int = 10_000
    lr: float = 1e-3
    beta1: float = 0.9
    beta2: float = 0.98
    eps: float = 1e-8
    log_every: int = 100
    checkpoint_every: int = 1000
    device: str = "cpu"
    chunk_size: int | None = None
    block_size: int | None = None
    nan_policy: str = "freeze"
    init_from: str | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.task, TaskConfig):
            raise ConfigError("task", "must be a TaskConfig", type(self.task).__name__)
        object.__setattr__(self, "runs", tuple(self.runs))
        non_empty("seeds", self.runs)
        n = self.task.n_examples
        for run in self.runs:
            if run.train_size > n:
                raise ConfigError("train_size", f"must be <= {n}, the number of examples of "
                                  f"{self.task.name} at p={self.task.p}", run.train_size)
        integer_at_least("steps", self.steps, 0)
        positive("lr", self.lr)
        in_range("beta1", self.beta1, 0.0, 1.0, hi_open=True)
        in_range("beta2", self.beta2, 0.0, 1.0, hi_open=True)
        positive("eps", self.eps)
        integer_at_least("log_every", self.log_every, 1)
        integer_at_least("checkpoint_every", self.checkpoint_every, 1)
        if not isinstance(self.device, str) or not (self.device == "cpu" or self.device.startswith("cuda")):
            raise ConfigError("device", "must be cpu or cuda", self.device)
        if self.chunk_size is not None:
            integer_at_least("chunk_size", self.chunk_size, 1)
        if self.block_size is not None:
            integer_at_least("block_size", self.block_size, 1)
        if self.nan_policy not in NAN_POLICIES:
            raise ConfigError("nan_policy", f"must be one of {', '.join(NAN_POLICIES)}", self.nan_policy)
        if self.init_from is not None and not isinstance(self.init_from, str):
            object.__setattr__(self, "init_from", str(self.init_from))

    # ---- derived values ----------------------------------------------------------------------
    @property
    def n_models(self) -> int:
        return len(self.runs)

    @property
    def resolved_chunk_size(self) -> int:
        if self.chunk_size is not None:
            return min(self.chunk_size, self.n_models)
        return self.n_models if self.device.startswith("cuda") else min(4, self.n_models)

    @property
    def resolved_block_size(self) -> int | None:
        """Examples per block; None: all at once."""
        if self.block_size is not None:
            return self.block_size
        return None if self.device.startswith("cuda") else _CPU_BLOCK[-1]

    # ---- constructors ------------------------------------------------------------------------
    @classmethod
    def grid(cls, task: TaskConfig, seeds: Sequence[int], *, weight_decays: Sequence[float] = (1.0,),
             train_fracs: Sequence[float] | None = None, train_sizes: Sequence[int] | None = None,
             data_seed: int = 0, **kwargs: Any) -> TrainConfig:
        """One model per (training size, weight decay, seed), seeds varying fastest."""
        non_empty("seeds", list(seeds))
        non_empty("weight_decay", list(weight_decays))
        if train_fracs is not None and train_sizes is not None:
            raise ConfigError("train_frac", "give exactly one of train_frac and train_size",
                              f"train_frac={train_fracs}, train_size={train_sizes}")
        if train_fracs is not None:
            non_empty("train_frac", list(train_fracs))
            sizes = [resolve_train_size(task, f, None) for f in train_fracs]
        elif train_sizes is not None:
            non_empty("train_size", list(train_sizes))
            sizes = [resolve_train_size(task, None, s) for s in train_sizes]
        else:
            raise ConfigError("train_size", "give exactly one of train_frac and train_size", "neither")
        runs = tuple(RunSpec(seed=s, weight_decay=float(wd), train_size=d, data_seed=data_seed)
                     for d, wd, s in itertools.product(sizes, weight_decays, seeds))
        return cls(task=task, runs=runs, **kwargs)

    # ---- serialisation (config.json and checkpoints) -------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> TrainConfig:
        d = dict(d)
        d["task"] = TaskConfig(**d["task"])
        d["model"] = ModelConfig(**d["model"])
        d["runs"] = tuple(RunSpec(**r) for r in d["runs"])
        return cls(**d)

    def differences(self, other: TrainConfig, ignore: Sequence[str] = ()) -> list[str]:
        """Names of top-level fields that differ (for a clear resume-mismatch message)."""
        a, b = self.to_dict(), other.to_dict()
        return [k for k in a if k not in ignore and a[k] != b.get(k)]


@dataclass(frozen=True)
class Training:
    """How an experiment's networks train, stated once and composed into every experiment config.

    Attributes:
        task, p: the task of the registry and its modulus (sizes, vocabulary and chance level
            are derived from them, never stored).
        model: architecture.
        lr, weight_decay: full-batch AdamW (betas and eps: the engine's, the paper's values).
        steps: optimiser steps (one step is one epoch: full batch).
        seeds: model seeds, one network each.
        log_every, checkpoint_every: engine metric and checkpoint rhythm.
        device: ``cpu`` or ``cuda``.
    """

    task: str = "add"
    p: int = 23
    model: ModelConfig = field(default_factory=ModelConfig)
    lr: float = 1e-3
    weight_decay: float = 1.0
    steps: int = 1500
    seeds: tuple[int, ...] = (0, 1, 2)
    log_every: int = 50
    checkpoint_every: int = 500
    device: str = "cpu"

    def __post_init__(self) -> None:
        TaskConfig(name=self.task, p=self.p)  # validates task and p
        if not isinstance(self.model, ModelConfig):
            raise ConfigError("model", "must be a ModelConfig", type(self.model).__name__)
        positive("lr", self.lr)
        non_negative("weight_decay", self.weight_decay)
        integer_at_least("steps", self.steps, 1)
        non_empty("seeds", list(self.seeds))
        seeds = tuple(integer_at_least("seeds", s, 0) for s in self.seeds)
        if len(set(seeds)) != len(seeds):
            raise ConfigError("seeds", "must not repeat a value", list(seeds))
        object.__setattr__(self, "seeds", tuple(sorted(seeds)))
        integer_at_least("log_every", self.log_every, 1)
        integer_at_least("checkpoint_every", self.checkpoint_every, 1)
        if not isinstance(self.device, str) or not (self.device == "cpu" or self.device.startswith("cuda")):
            raise ConfigError("device", "must be cpu or cuda", self.device)

    @property
    def task_config(self) -> TaskConfig:
        return TaskConfig(name=self.task, p=self.p)

    @property
    def n_examples(self) -> int:
        return self.task_config.n_examples

    @property
    def chance(self) -> float:
        return 1.0 / self.p

    def size(self, frac: float) -> int:
        """A dataset size from a fraction of all examples (round, at least 1)."""
        return resolve_train_size(self.task_config, frac, None)

    def engine(self, task: TaskConfig, runs: Sequence[RunSpec], **changes: Any) -> TrainConfig:
        """The engine config of a batch of ``runs`` with these settings (``changes`` override)."""
        kw: dict[str, Any] = dict(model=self.model, steps=self.steps, lr=self.lr, log_every=self.log_every,
                                  checkpoint_every=self.checkpoint_every, device=self.device)
        kw.update(changes)
        return TrainConfig(task=task, runs=tuple(runs), **kw)


TRAINING_FIELDS = tuple(f.name for f in dataclasses.fields(Training))


def split_overrides(changes: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """``changes`` split into (training settings, the experiment's own fields); None dropped."""
    changes = {k: v for k, v in changes.items() if v is not None}
    training = {k: v for k, v in changes.items() if k in TRAINING_FIELDS}
    return training, {k: v for k, v in changes.items() if k not in TRAINING_FIELDS}


def with_overrides(config: Any, **changes: Any) -> Any:
    """An experiment config with the non-None ``changes`` applied, each to the training settings
    or to the config's own fields (validated again)."""
    training, own = split_overrides(changes)
    if training:
        own["training"] = dataclasses.replace(config.training, **training)
    return dataclasses.replace(config, **own)


class TrainingView:
    """Read-only names for an experiment's composed :class:`Training` (``config.p`` is
    ``config.training.p``), so that code reads the setting where it is used and it is stored once."""

    training: Training

    p = property(lambda self: self.training.p, doc="the modulus P")
    model = property(lambda self: self.training.model, doc="architecture")
    lr = property(lambda self: self.training.lr, doc="AdamW learning rate")
    weight_decay = property(lambda self: self.training.weight_decay, doc="AdamW weight decay")
    steps = property(lambda self: self.training.steps, doc="optimiser steps")
    seeds = property(lambda self: self.training.seeds, doc="model seeds")
    log_every = property(lambda self: self.training.log_every, doc="engine metric rhythm")
    checkpoint_every = property(lambda self: self.training.checkpoint_every, doc="engine checkpoint rhythm")
    device = property(lambda self: self.training.device, doc="cpu or cuda")
    task_config = property(lambda self: self.training.task_config, doc="the task (TaskConfig)")
    n_examples = property(lambda self: self.training.n_examples, doc="all examples of the task")
    chance = property(lambda self: self.training.chance, doc="chance accuracy 1/P")
