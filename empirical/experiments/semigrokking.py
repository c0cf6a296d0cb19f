"""Semi-grokking (prediction P4; Figures 5 and 6).

Near the critical dataset size the two circuits are about equally efficient, and with standard
weight decay (q = 2 > kappa, case 2 of Theorem D.4) the optimum mixes them: a network trained
from random initialisation memorises first and, after a delay, settles at a middling test
accuracy instead of near 1. The paper trained 10 seeds x 20 sizes evenly spaced in
[1500, 2050] for P = 113, "somewhat above the D_crit estimate", for millions of steps.

Sizes: either given (``sizes``) or, by rule, ``n_sizes`` values evenly spaced in
``[low_factor x D_crit, high_factor x D_crit]`` (:func:`circeff.analysis.semigrokking.p4_sizes`)
for the D_crit of the same run passed to :func:`run_semigrokking` (its ungrokking D_crit),
never from an earlier calibration. Without either, :func:`run_semigrokking` computes D_crit on
demand by running the ungrokking config it is given, and otherwise stops with a one-line
ConfigError naming ``dcrit``.

Budget: AdamW removes ``lr x weight_decay`` of every weight per step, so a run's decay budget is
``lr x weight_decay x steps`` e-folds; a large weight decay reaches the paper's long budgets on a
CPU (the ungrokking D_crit moves little with weight decay at an equal budget, prediction P3).

P4 is decided by :func:`circeff.analysis.semigrokking.p4` with the config's
:class:`~circeff.analysis.semigrokking.P4Rule`: memorised first, then after a delay a settled
plateau at middling test accuracy, in at least two runs of distinct seeds and sizes. Every run is
classified once; the figures, ``classes.csv`` and the verdict all read those classes. The
from-scratch threshold D_up (the midpoint of final test accuracy against D) is estimated with
the ungrokking D_crit estimator.

Outputs: ``runs/`` (one engine batch, models = size x seed), ``curves.csv`` (run, D, seed, step,
test_acc, train_acc), ``classes.csv`` (one row per run: class, memorised step, onset step,
delay, tail), ``timescales.csv`` (the pilot's table: size, seed, weight decay, step at train
0.99, step at test onset, final test accuracy), ``by_size.csv`` (counts of each class per size), ``semigrokking.json`` (config,
design power, sizes, D_crit used, D_up, counts, verdict), ``semigrokking.png`` (every run's
train and test accuracy), ``semigrokking_final.png`` (final test accuracy against D / D_crit,
with the ungrokking curve when given).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from matplotlib.figure import Figure

from circeff.analysis.plots import plot_semigrok, plot_semigrok_final, save_figures
from circeff.analysis.rule import Verdict
from circeff.analysis.semigrokking import (LABELS, P4_COLUMNS, P4Rule, RunClass, classify_runs, design_power,
                                           from_scratch_threshold, p4, p4_sizes)
from circeff.empirical.backend import Trainer, train_or_reuse
from circeff.analysis.stats import Interval, to_plain
from circeff.empirical.checkpoint import CHECKPOINT_NAME, load_checkpoint
from circeff.empirical.config import RunSpec, TrainConfig, Training, TrainingView
from circeff.empirical.experiments.predictions_common import QUICK, sizes_below
from circeff.errors import ConfigError
from circeff.io import ensure_dir, write_csv, write_json
from circeff.validate import in_range, integer_at_least, positive

__all__ = [
    "SemigrokConfig",
    "SemigrokResult",
    "pilot_table",
    "run_semigrokking",
    "sizes_above",
    "write_semigrokking",
]


@dataclass(frozen=True)
class SemigrokConfig(TrainingView):
    """Seeds x dataset sizes from random initialisation, and the rule that classifies them.

    Attributes:
        training: task, P, model, optimiser, steps, seeds (each run's data seed is its model
            seed, a different subset each), device.
        sizes: explicit dataset sizes; ``()`` to derive them from a D_crit estimate.
        n_sizes, low_factor, high_factor: the derived sizes, evenly spaced in
            ``[low_factor, high_factor] x D_crit``.
        rule: the P4 classifier and rule's settings.
    """

    training: Training = replace(QUICK, weight_decay=4.0, seeds=(0, 1, 2, 3), steps=5000)
    sizes: tuple[int, ...] = ()
    n_sizes: int = 4
    low_factor: float = 2.0
    high_factor: float = 3.0
    rule: P4Rule = P4Rule()

    def __post_init__(self) -> None:
        if not isinstance(self.training, Training):
            raise ConfigError("training", "must be a Training", type(self.training).__name__)
        integer_at_least("steps", self.steps, 3)
        if self.sizes:
            object.__setattr__(self, "sizes", sizes_below(self.sizes, self.n_examples, " (a test set is needed)"))
        integer_at_least("n_sizes", self.n_sizes, 1)
        positive("low_factor", self.low_factor)
        in_range("high_factor", self.high_factor, self.low_factor, float("inf"))
        if not isinstance(self.rule, P4Rule):
            raise ConfigError("rule", "must be a P4Rule", type(self.rule).__name__)

    @property
    def decay_budget(self) -> float:
        """``lr x weight_decay x steps``: the e-folds by which weight decay alone would shrink a weight."""
        return self.lr * self.weight_decay * self.steps

    def power(self) -> dict[str, float]:
        """The chance that the rule holds if each run semi-groks independently with probability
        p, at the stated p (:func:`circeff.analysis.semigrokking.design_power`), for the derived
        or given sizes."""
        n_sizes = len(self.sizes) if self.sizes else self.n_sizes
        return design_power(n_sizes, len(self.seeds), self.rule.min_semi)

    @property
    def task(self) -> str:
        return self.training.task

    def train_config(self, sizes: tuple[int, ...]) -> TrainConfig:
        runs = [RunSpec(seed=s, weight_decay=self.weight_decay, train_size=d, data_seed=s)
                for d in sizes for s in self.seeds]
        return self.training.engine(self.task_config, runs)

    def to_dict(self) -> dict[str, object]:
        return asdict(self) | {"decay_budget": self.decay_budget, "power": self.power()}


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
    d_up: Interval | None = None   # the from-scratch threshold (censored when no or every run grokked)
    d_up_fit: Any = None           # its DcritEstimate when a transition was fitted
    d_up_note: str = ""
    ungrokking_rows: pd.DataFrame | None = None   # (D, final_test_acc) of the ungrokking runs, for the figure
    ungrokking_fit: Any = None  # their DcritEstimate

    def by_size(self) -> pd.DataFrame:
        """Counts of each class per size (rows: D, D / D_crit, one column per label)."""
        table = pd.crosstab(pd.Series([c.D for c in self.classes], name="D"),
                            pd.Series([c.label for c in self.classes], name="label"))
        table = table.reindex(columns=list(LABELS), fill_value=0).reset_index()
        if self.dcrit:
            table.insert(1, "D_over_D_crit", table["D"] / self.dcrit)
        return table


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
                     resume: bool = True, trainer: Trainer | None = None,
                     ungrokking_rows: pd.DataFrame | None = None, ungrokking_fit: Any = None) -> SemigrokResult:
    """Train (or reuse) the runs, classify every trajectory and decide P4. Writes only the
    training runs; :func:`write_semigrokking` writes curves, classes, verdict and figure.

    Args:
        dcrit: D_crit estimate that places the sizes (ignored when ``config.sizes`` is set).
        ungrokking: an :class:`~circeff.empirical.experiments.ungrokking.UngrokkingConfig` run on
            demand (into ``out_dir/ungrokking_for_dcrit``) when neither sizes nor ``dcrit`` are given.
        ungrokking_rows, ungrokking_fit: the same run's ungrokking table (``D``,
            ``final_test_acc``) and D_crit estimate, drawn beside the from-scratch runs.
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
    classes = classify_runs(curves[list(P4_COLUMNS)], config.chance, config.rule)
    verdict = p4(curves[list(P4_COLUMNS)], config.chance, d_crit=dcrit, rule=config.rule, classes=classes)
    d_up, fit, note = from_scratch_threshold(classes, config.chance)
    return SemigrokResult(curves, classes, verdict, sizes, dcrit, out, config, source, d_up, fit, note,
                          ungrokking_rows, ungrokking_fit)


def pilot_table(result: SemigrokResult) -> pd.DataFrame:
    """The time scales of every run, as a pilot reports them: size, D / D_crit, seed, weight
    decay, the step at train accuracy 0.99, the step at which test accuracy starts to move,
    where it settles (final test accuracy, tail change) and its class."""
    d_crit = result.dcrit or math.nan
    return pd.DataFrame([{"D": c.D, "D_over_D_crit": c.D / d_crit, "seed": c.seed,
                          "weight_decay": result.config.weight_decay, "step_train_0.99": c.memorised_step,
                          "step_test_onset": c.onset_step, "final_test_acc": c.final_test_acc,
                          "tail_change": c.tail_change, "class": c.label} for c in result.classes])


def semigrokking_figures(result: SemigrokResult) -> dict[str, Figure]:
    """Figures 5/6 of the run (every trajectory, and final accuracy against D / D_crit), by file name."""
    return {"semigrokking.png": plot_semigrok(result.curves, result.classes, d_crit=result.dcrit),
            "semigrokking_final.png": plot_semigrok_final(result.classes, result.dcrit, d_up=result.d_up_fit,
                                                          ungrokking_rows=result.ungrokking_rows,
                                                          ungrokking_fit=result.ungrokking_fit)}


def write_semigrokking(result: SemigrokResult) -> None:
    """``curves.csv``, ``classes.csv``, ``semigrokking.json`` and the figure, in the run's folder."""
    out = result.out_dir
    write_csv(out / "curves.csv", result.curves.to_dict("records"))
    write_csv(out / "classes.csv", [c.to_dict() for c in result.classes])
    write_csv(out / "by_size.csv", result.by_size().to_dict("records"))
    write_csv(out / "timescales.csv", pilot_table(result).to_dict("records"))
    write_json(out / "semigrokking.json", to_plain({
        "config": result.config.to_dict(), "sizes": list(result.sizes), "D_crit_used": result.dcrit,
        "sizes_from": result.sizes_from, "verdict": result.verdict.to_dict(),
        "D_up": result.d_up, "D_up_note": result.d_up_note,
        "classes": [c.to_dict() for c in result.classes],
    }))
    save_figures(semigrokking_figures(result), out)
