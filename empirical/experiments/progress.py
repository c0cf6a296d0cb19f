"""Figure 9: the G and M correct-logit proxies and the parameter norm over a grokking run.

The run is one engine run (:func:`circeff.empirical.train.train`) that keeps a snapshot of its
weights every ``snapshot_every`` steps (and at step 0 and the last step):
``RUN_DIR/snapshots/step_XXXXXXXX.safetensors``, listed with their metrics in
``RUN_DIR/snapshots/index.csv``; the format is the engine's
(:mod:`circeff.empirical.checkpoint`, pickle-free), the same that ``circeff train
--snapshot-every N`` writes. An interrupted run continues from its checkpoint (one every
``snapshot_every`` steps) with the engine's exact resume.

Earlier versions trained in segments and wrote ``step_XXXXXXXX.pt`` snapshots (torch zip:
parameters, step and config); those are still read, and a run of theirs continues with
snapshots of this version's format beside them.

:func:`progress_table` turns the snapshots of any run folder (this experiment's, or a
``circeff train --snapshot-every`` run's) into one row per snapshot with the Appendix B
proxies (:mod:`circeff.empirical.circuits`): ``trig_train``, ``mem_train``, ``trig_test``,
``mem_test`` (centred correct-class trig / mem logits), ``param_norm``, accuracies and the trig
share. ``circeff analyze progress RUN_DIR`` draws Figure 9 from it.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace
from pathlib import Path

import pandas as pd
from matplotlib.figure import Figure

from circeff.analysis.plots import plot_progress, save_figures
from circeff.empirical.checkpoint import (CHECKPOINT_NAME, SNAPSHOT_DIR, load_checkpoint, read_snapshot,
                                          save_snapshot, snapshot_files)
from circeff.empirical.circuits import analyse_params, require_fourier_task
from circeff.empirical.config import RunSpec, TrainConfig, Training, TrainingView
from circeff.empirical.experiments.predictions_common import QUICK
from circeff.empirical.model import Params
from circeff.empirical.tasks import TaskConfig
from circeff.errors import ConfigError, RunError
from circeff.io import ensure_dir, write_csv
from circeff.validate import in_range, integer_at_least

__all__ = [
    "PROGRESS_COLUMNS",
    "ProgressConfig",
    "ProgressResult",
    "load_snapshots",
    "progress_table",
    "run_progress",
    "save_snapshot",
    "write_progress",
]

PROGRESS_COLUMNS = [
    "step", "param_norm", "trig_train", "mem_train", "trig_test", "mem_test",
    "correct_logit_train", "correct_logit_test", "train_acc", "test_acc", "trig_share", "key_frequencies",
]


@dataclass(frozen=True)
class ProgressConfig(TrainingView):
    """One grokking run of modular addition, with a weight snapshot every ``snapshot_every`` steps.

    Attributes:
        training: P, model, AdamW (lr, weight decay), steps, device; its one seed initialises
            the model.
        train_frac: training fraction (D = round(train_frac * p^2)).
        data_seed: the training subset.
        snapshot_every: steps between snapshots (also the engine's checkpoint rhythm).
    """

    training: Training = replace(QUICK, seeds=(0,))
    train_frac: float = 0.6
    data_seed: int = 0
    snapshot_every: int = 100

    def __post_init__(self) -> None:
        if not isinstance(self.training, Training):
            raise ConfigError("training", "must be a Training", type(self.training).__name__)
        if self.training.task != "add" or len(self.training.seeds) != 1:
            raise ConfigError("seeds", "a progress run is one model of modular addition: give one seed",
                              list(self.training.seeds))
        in_range("train_frac", self.train_frac, 0.0, 1.0, lo_open=True)
        integer_at_least("data_seed", self.data_seed, 0)
        integer_at_least("snapshot_every", self.snapshot_every, 1)

    @property
    def seed(self) -> int:
        return self.training.seeds[0]

    @property
    def task(self) -> TaskConfig:
        return self.training.task_config

    def train_config(self, steps: int | None = None) -> TrainConfig:
        """The one-model engine run, trained up to ``steps`` (default: all)."""
        run = RunSpec(seed=self.seed, weight_decay=self.weight_decay, train_size=self.training.size(self.train_frac),
                      data_seed=self.data_seed)
        return self.training.engine(self.task, [run], steps=self.steps if steps is None else steps,
                                    checkpoint_every=self.snapshot_every)

    def snapshot_steps(self) -> list[int]:
        steps = list(range(0, self.steps, self.snapshot_every))
        return steps + [self.steps]

    def to_dict(self) -> dict[str, object]:
        return asdict(self)


# ---------------------------------------------------------------------------------------------
# Snapshots (written by the engine: circeff.empirical.checkpoint)
# ---------------------------------------------------------------------------------------------


def load_snapshots(run_dir: str | Path) -> list[tuple[TrainConfig, Params, int]]:
    """Every snapshot of a run folder (this version's and earlier ones'), by step. ConfigError
    naming ``run_dir`` if there are fewer than two."""
    files = snapshot_files(run_dir)
    if len(files) < 2:
        raise ConfigError("run_dir", f"must hold two or more weight snapshots in {SNAPSHOT_DIR}/ (from "
                          "circeff train --snapshot-every N or circeff experiment progress; without "
                          "--snapshot-every a run keeps only its last checkpoint)", str(run_dir))
    return [(snap.config, snap.params, snap.step) for snap in map(read_snapshot, files.values())]


# ---------------------------------------------------------------------------------------------
# The run and the table
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class ProgressResult:
    rows: pd.DataFrame
    out_dir: Path


def run_progress(config: ProgressConfig, out_dir: str | Path, *, progress: bool = True,
                 resume: bool = True) -> ProgressResult:
    """Train the grokking run with snapshots and measure every snapshot; writes the training run
    and its snapshots (:func:`write_progress` writes progress.csv and fig9.png).

    With ``resume`` an interrupted or finished run continues from its last checkpoint (a
    finished one is only measured); without it a folder that holds a run is refused.
    """
    from circeff.empirical.train import train  # the training loop is only needed here

    out = ensure_dir(out_dir)
    ckpt = out / CHECKPOINT_NAME
    if ckpt.is_file() and not resume:
        raise RunError(f"{out} already holds a run ({CHECKPOINT_NAME}); resume it, or use another --out")
    full = config.train_config()
    if not _finished(out, full):
        # the engine refuses a checkpoint of another config (RunError naming the fields)
        train(full, out, resume=resume, progress=progress, snapshot_every=config.snapshot_every)
    return ProgressResult(rows=progress_table(out), out_dir=out)


def _finished(out: Path, full: TrainConfig) -> bool:
    """The run is at its last step with its summary and last snapshot (nothing is rewritten)."""
    if not (out / CHECKPOINT_NAME).is_file() or not (out / "summary.json").is_file():
        return False
    state = load_checkpoint(out / CHECKPOINT_NAME, expected=full)  # RunError if written by another config
    return state.step >= full.steps and state.step in snapshot_files(out)


def progress_table(run_dir: str | Path, model: int = 0) -> pd.DataFrame:
    """One row per snapshot of ``model``: step, parameter norm, the four proxies, accuracies."""
    snapshots = load_snapshots(run_dir)
    require_fourier_task(snapshots[0][0].task)
    rows = []
    for config, params, step in snapshots:
        (m,) = analyse_params(config, params, step, [model])
        r = m.to_row()
        rows.append({k: r[k] for k in PROGRESS_COLUMNS})
    return pd.DataFrame(rows, columns=PROGRESS_COLUMNS).sort_values("step", ignore_index=True)


def progress_figures(rows: pd.DataFrame) -> dict[str, Figure]:
    """Figure 9 of the run, by file name."""
    return {"fig9.png": plot_progress(rows)}


def write_progress(rows: pd.DataFrame, out_dir: str | Path) -> None:
    """progress.csv and fig9.png into ``out_dir``."""
    out = ensure_dir(out_dir)
    write_csv(out / "progress.csv", rows.to_dict("records"), fieldnames=PROGRESS_COLUMNS)
    save_figures(progress_figures(rows), out)
