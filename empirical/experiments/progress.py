"""Figure 9: the G and M correct-logit proxies and the parameter norm over a grokking run.

The engine keeps one checkpoint per run folder (each save replaces the last), so this
experiment trains in segments: it extends the same run with the engine's exact resume
(``steps`` may grow on resume) and after every segment keeps a copy of the weights,
``RUN_DIR/snapshots/step_XXXXXXXX.pt`` (parameters, step and config only: no optimiser state).
Training in segments is bit-identical to one uninterrupted run (the engine's resume
guarantee), so the snapshots are the states of an ordinary grokking run.

:func:`progress_table` turns the snapshots of any run folder into one row per snapshot with
the Appendix B proxies (:mod:`circeff.empirical.circuits`): ``trig_train``, ``mem_train``,
``trig_test``, ``mem_test`` (centred correct-class trig / mem logits), ``param_norm``,
accuracies and the trig share. ``circeff analyze progress RUN_DIR`` draws Figure 9 from it.
"""

from __future__ import annotations

import io
import pickle
import zipfile
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import pandas as pd
from matplotlib.figure import Figure
import torch
from tqdm.auto import tqdm

from circeff.analysis.plots import plot_progress, save_figures
from circeff.empirical.checkpoint import CHECKPOINT_NAME, load_checkpoint
from circeff.empirical.circuits import analyse_params, require_fourier_task
from circeff.empirical.config import RunSpec, TrainConfig, Training, TrainingView
from circeff.empirical.experiments.predictions_common import QUICK
from circeff.empirical.model import WEIGHT_NAMES, Params
from circeff.empirical.tasks import TaskConfig
from circeff.errors import ConfigError, RunError
from circeff.io import atomic_write_bytes, ensure_dir, write_csv
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

SNAPSHOT_DIR = "snapshots"
SNAPSHOT_FORMAT = "circeff-params-snapshot"
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
# Snapshots
# ---------------------------------------------------------------------------------------------


def _snapshot_path(run_dir: Path, step: int) -> Path:
    return run_dir / SNAPSHOT_DIR / f"step_{step:08d}.pt"


def save_snapshot(run_dir: str | Path, config: TrainConfig, params: Params, step: int) -> Path:
    """Write the weights of every model at ``step`` (atomically) into ``run_dir/snapshots``."""
    payload = {"format": SNAPSHOT_FORMAT, "version": 1, "step": int(step), "config": config.to_dict(),
               "params": {n: params[n].detach().cpu() for n in WEIGHT_NAMES}}
    buf = io.BytesIO()
    torch.save(payload, buf)
    path = _snapshot_path(Path(run_dir), step)
    ensure_dir(path.parent)
    return atomic_write_bytes(path, buf.getvalue())


def _read_snapshot(path: Path) -> tuple[TrainConfig, Params, int]:
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except (RuntimeError, EOFError, OSError, pickle.UnpicklingError, zipfile.BadZipFile, ValueError):
        raise RunError(f"snapshot {path} is corrupt or unreadable; delete it") from None
    if not isinstance(payload, dict) or payload.get("format") != SNAPSHOT_FORMAT:
        raise RunError(f"snapshot {path} is not a circeff parameter snapshot")
    return TrainConfig.from_dict(payload["config"]), {n: payload["params"][n] for n in WEIGHT_NAMES}, int(payload["step"])


def load_snapshots(run_dir: str | Path) -> list[tuple[TrainConfig, Params, int]]:
    """Every snapshot of a run folder, by step. ConfigError naming ``run_dir`` if there are
    fewer than two (a plain ``circeff train`` run keeps only its last checkpoint)."""
    folder = Path(run_dir) / SNAPSHOT_DIR
    files = sorted(folder.glob("step_*.pt")) if folder.is_dir() else []
    if len(files) < 2:
        raise ConfigError("run_dir", f"must hold two or more weight snapshots in {SNAPSHOT_DIR}/ (from "
                          "circeff experiment progress; a plain circeff train run keeps only its last "
                          "checkpoint)", str(run_dir))
    return [_read_snapshot(f) for f in files]


# ---------------------------------------------------------------------------------------------
# The run and the table
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class ProgressResult:
    rows: pd.DataFrame
    out_dir: Path


def run_progress(config: ProgressConfig, out_dir: str | Path, *, progress: bool = True,
                 resume: bool = True) -> ProgressResult:
    """Train the grokking run in segments with snapshots and measure every snapshot; writes the
    training run and its snapshots (:func:`write_progress` writes progress.csv and fig9.png).

    With ``resume`` an interrupted or finished run continues from its last checkpoint (segments
    already done are skipped); without it a folder that holds a run is refused by the engine.
    """
    from circeff.empirical.train import train  # the training loop is only needed here

    out = ensure_dir(out_dir)
    full = config.train_config()
    ckpt = out / CHECKPOINT_NAME
    done = 0
    if ckpt.is_file() and not resume:
        raise RunError(f"{out} already holds a run ({CHECKPOINT_NAME}); resume it, or use another --out")
    if ckpt.is_file():
        state = load_checkpoint(ckpt, expected=full)  # RunError if written by another config
        done = state.step
        if not _snapshot_path(out, done).is_file():
            save_snapshot(out, state.config, state.params, done)
    targets = [s for s in config.snapshot_steps() if s > done or (s == 0 and not ckpt.is_file())]
    with tqdm(total=config.steps, initial=done, desc="progress", unit="step", disable=not progress,
              dynamic_ncols=True) as bar:
        for target in targets:
            result = train(config.train_config(target), out, resume=ckpt.is_file(), progress=False)
            state = load_checkpoint(result.checkpoint)
            save_snapshot(out, state.config, state.params, state.step)
            bar.update(target - bar.n)
            last = result.final_rows()[0]
            bar.set_postfix(train_acc=f"{last['train_acc']:.3f}", test_acc=str(last["test_acc"])[:5])
    return ProgressResult(rows=progress_table(out), out_dir=out)


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
