"""How an experiment trains its engine batches: the :class:`Trainer` protocol.

Every experiment (P1 efficiency, the grokked base networks, ungrokking, semi-grokking,
Figure 10) takes a ``trainer`` argument and hands each engine batch it needs to
:func:`train_or_reuse`, which skips a batch that is already finished and otherwise asks the
trainer to train (or continue) it. :data:`IN_PROCESS` trains in this process; a cluster
trainer (``circeff.sweep.backend.ExecutorTrainer``) submits the same batch as a job. The
choice is an argument, never global state, so nothing here imports the layer that offers
those executors.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Protocol, runtime_checkable

from circeff.empirical.checkpoint import CHECKPOINT_NAME, load_checkpoint
from circeff.empirical.config import TrainConfig

__all__ = ["IN_PROCESS", "InProcessTrainer", "Trainer", "train_or_reuse"]


@runtime_checkable
class Trainer(Protocol):
    """Trains one engine batch into ``run_dir`` (continuing its checkpoint when ``resume``)."""

    def train(self, config: TrainConfig, run_dir: Path, *, progress: bool, resume: bool) -> None: ...


@dataclass(frozen=True)
class InProcessTrainer:
    """Trains in this process with :func:`circeff.empirical.train.train`."""

    def train(self, config: TrainConfig, run_dir: Path, *, progress: bool, resume: bool) -> None:
        from circeff.empirical.train import train  # torch only where something trains

        train(config, run_dir, resume=resume, progress=progress)


IN_PROCESS = InProcessTrainer()


def train_or_reuse(config: TrainConfig, run_dir: Path, *, progress: bool, resume: bool,
                   trainer: Trainer | None = None) -> None:
    """Train the batch unless ``run_dir`` already holds it at ``config.steps`` (with resume);
    an unfinished run continues from its checkpoint (a different config is a RunError)."""
    run_dir = Path(run_dir)
    ckpt = run_dir / CHECKPOINT_NAME
    if resume and ckpt.is_file():
        state = load_checkpoint(ckpt, expected=config)  # RunError if written by another config
        if state.step >= config.steps and (run_dir / "summary.json").is_file():
            return
    (trainer or IN_PROCESS).train(config, run_dir, progress=progress, resume=resume)
