"""Semi-grokking (prediction P4; Figures 5 and 6).

Near the critical dataset size the two circuits are about equally efficient, and with standard
weight decay (q = 2 > kappa, case 2 of Theorem D.4) the optimum mixes them: a network trained
from random initialisation memorises first and, after a delay, settles at a middling test
accuracy instead of near 1. The paper trained 10 seeds x 20 sizes evenly spaced in
[1500, 2050] for P = 113, "somewhat above the D_crit estimate".

Sizes: either given (``sizes``) or, by rule, ``n_sizes`` values geometrically spaced in
``[low_factor x D_crit, high_factor x D_crit]`` (:func:`circeff.analysis.semigrokking.p4_sizes`)
for the D_crit of the same run passed to :func:`run_semigrokking` (from ungrokking or the
efficiency crossover), never from an earlier calibration. Without either,
:func:`run_semigrokking` computes D_crit on demand by running the ungrokking config it is given,
and otherwise stops with a one-line ConfigError naming ``dcrit``.

P4 is decided by :func:`circeff.analysis.semigrokking.p4`: a run is semi-grokked when the last
third of its steps is a converged plateau (train accuracy >= 0.99, the tail's Theil-Sen drift
within +-0.15) at middling test accuracy; the count gets a Clopper-Pearson interval, and
transient plateaus are counted separately. Every run is classified once
(:func:`circeff.analysis.semigrokking.classify_runs`); the figure, ``classes.csv`` and the
verdict all read those classes.

Outputs: ``runs/`` (one engine batch, models = size x seed), ``curves.csv`` (run, D, seed, step,
test_acc, train_acc), ``classes.csv`` (one row per run), ``semigrokking.json`` (config, sizes,
D_crit used, counts, verdict), ``semigrokking.png``.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace
from pathlib import Path

import numpy as np
import pandas as pd

from matplotlib.figure import Figure

from circeff.analysis.plots import plot_semigrok, save_figures
from circeff.analysis.rule import Verdict
from circeff.analysis.semigrokking import P4_COLUMNS, RunClass, classify_runs, p4, p4_sizes
from circeff.empirical.backend import Trainer, train_or_reuse
from circeff.analysis.stats import to_plain
from circeff.empirical.checkpoint import CHECKPOINT_NAME, load_checkpoint
from circeff.empirical.config import RunSpec, TrainConfig, Training, TrainingView
from circeff.empirical.experiments.predictions_common import QUICK, sizes_below
from circeff.errors import ConfigError
from circeff.io import ensure_dir, write_csv, write_json
from circeff.validate import in_range, integer_at_least, positive

__all__ = [
    "SemigrokConfig",
    "SemigrokResult",
    "run_semigrokking",
    "sizes_above",
]


@dataclass(frozen=True)
class SemigrokConfig(TrainingView):
    """Seeds x dataset sizes from random initialisation.

    Attributes:
        training: task, P, model, optimiser, steps, seeds (each run's data seed is its model
            seed, a different subset each), device.
        sizes: explicit dataset sizes; ``()`` to derive them from a D_crit estimate.
        n_sizes, low_factor, high_factor: the derived sizes, geometrically spaced in
            ``[low_factor, high_factor] x D_crit``.
    """

    training: Training = replace(QUICK, weight_decay=2.0, seeds=(0, 1), steps=4000)
    sizes: tuple[int, ...] = ()
    n_sizes: int = 6
    low_factor: float = 1.0
    high_factor: float = 4.0

    def __post_init__(self) -> None:
        if not isinstance(self.training, Training):
            raise ConfigError("training", "must be a Training", type(self.training).__name__)
        integer_at_least("steps", self.steps, 3)
        if self.sizes:
            object.__setattr__(self, "sizes", sizes_below(self.sizes, self.n_examples, " (a test set is needed)"))
        integer_at_least("n_sizes", self.n_sizes, 1)
        positive("low_factor", self.low_factor)
        in_range("high_factor", self.high_factor, self.low_factor, float("inf"))

    @property
    def task(self) -> str:
        return self.training.task

    def train_config(self, sizes: tuple[int, ...]) -> TrainConfig:
        runs = [RunSpec(seed=s, weight_decay=self.weight_decay, train_size=d, data_seed=s)
                for d in sizes for s in self.seeds]
        return self.training.engine(self.task_config, runs)

    def to_dict(self) -> dict[str, object]:
        return asdict(self)


def sizes_above(dcrit: float, n_sizes: int, low_factor: float, high_factor: float, n_examples: int) -> tuple[int, ...]:
    """:func:`circeff.analysis.semigrokking.p4_sizes` clipped to ``[2, n - 1]`` (deduplicated)."""
    positive("dcrit", dcrit)
    if not np.isfinite(dcrit):
        raise ConfigError("dcrit", "must be a finite D_crit estimate", dcrit)
    raw = p4_sizes(dcrit, n_sizes=n_sizes, low_factor=low_factor, high_factor=high_factor)
    return tuple(sorted({int(np.clip(x, 2, n_examples - 1)) for x in raw}))


@dataclass(frozen=True, eq=False)
class SemigrokResult:
    curves: pd.DataFrame
    classes: tuple[RunClass, ...]
    verdict: Verdict
    sizes: tuple[int, ...]
    dcrit: float | None
    out_dir: Path
    config: SemigrokConfig
    sizes_from: str


def _resolve_sizes(config: SemigrokConfig, dcrit: float | None, ungrokking: object | None,
                   out: Path, progress: bool, resume: bool,
                   trainer: Trainer | None) -> tuple[tuple[int, ...], float | None, str]:
    if config.sizes:
        return config.sizes, dcrit, "sizes given"
    source = "given"
    if dcrit is None or not np.isfinite(dcrit):
        if ungrokking is None:
            raise ConfigError("dcrit", "semi-grokking sizes need a D_crit estimate: give sizes, a D_crit, "
                              "or an ungrokking config to compute one", dcrit)
        from circeff.empirical.experiments.ungrokking import run_ungrokking, write_ungrokking  # on demand

        on_demand = run_ungrokking(ungrokking, out / "ungrokking_for_dcrit", progress=progress, resume=resume,
                                   trainer=trainer)
        write_ungrokking(on_demand)
        dcrit = float(on_demand.D_crit.value)
        source = "ungrokking computed on demand"
    return sizes_above(dcrit, config.n_sizes, config.low_factor, config.high_factor, config.n_examples), dcrit, source


def run_semigrokking(config: SemigrokConfig, out_dir: str | Path, *, dcrit: float | None = None,
                     ungrokking: object | None = None, progress: bool = True,
                     resume: bool = True, trainer: Trainer | None = None) -> SemigrokResult:
    """Train (or reuse) the runs, classify every trajectory and decide P4. Writes only the
    training runs; :func:`write_semigrokking` writes curves, classes, verdict and figure.

    Args:
        dcrit: D_crit estimate that places the sizes (ignored when ``config.sizes`` is set).
        ungrokking: an :class:`~circeff.empirical.experiments.ungrokking.UngrokkingConfig` run on
            demand (into ``out_dir/ungrokking_for_dcrit``) when neither sizes nor ``dcrit`` are given.
    """
    out = ensure_dir(out_dir)
    sizes, dcrit, source = _resolve_sizes(config, dcrit, ungrokking, out, progress, resume, trainer)
    run_dir = out / "runs"
    train_or_reuse(config.train_config(sizes), run_dir, progress=progress, resume=resume, trainer=trainer)
    state = load_checkpoint(run_dir / CHECKPOINT_NAME)
    curves = pd.DataFrame(state.rows)
    curves = curves[curves["status"] == "ok"].copy()
    curves["run"] = [f"D{d:05d}_s{s}" for d, s in zip(curves["train_size"], curves["seed"])]
    curves = curves.rename(columns={"train_size": "D"})[["run", "D", "seed", "step", "test_acc", "train_acc"]]
    classes = classify_runs(curves[list(P4_COLUMNS)], config.chance)
    verdict = p4(curves[list(P4_COLUMNS)], config.chance, d_crit=dcrit, classes=classes)
    return SemigrokResult(curves, classes, verdict, sizes, dcrit, out, config, source)


def semigrokking_figures(result: SemigrokResult) -> dict[str, Figure]:
    """Figures 5/6 of the run, by file name."""
    return {"semigrokking.png": plot_semigrok(result.curves, result.classes)}


def write_semigrokking(result: SemigrokResult) -> None:
    """``curves.csv``, ``classes.csv``, ``semigrokking.json`` and the figure, in the run's folder."""
    out = result.out_dir
    write_csv(out / "curves.csv", result.curves.to_dict("records"))
    write_csv(out / "classes.csv", [c.to_dict() for c in result.classes])
    write_json(out / "semigrokking.json", to_plain({
        "config": result.config.to_dict(), "sizes": list(result.sizes), "D_crit_used": result.dcrit,
        "sizes_from": result.sizes_from, "verdict": result.verdict.to_dict(),
        "classes": [c.to_dict() for c in result.classes],
    }))
    save_figures(semigrokking_figures(result), out)
