"""Figure 8 (Appendix A.2): ungrokking across the other operations of the task registry.

For each task: base networks trained on ``base_train_frac`` of its pairs (one per seed), then
the ungrokking continuations of :func:`~circeff.empirical.experiments.ungrokking.run_ungrokking`
at every reduced size D' and weight decay, then D_crit and the P2 and P3 rules of
:mod:`circeff.analysis.verdicts` on that task's table.

What establishes that a base network generalised. For modular addition the Fourier analysis
measures it (the trig share, Section 5.1). The other operations have no such known circuit, so
a base network counts as generalised when its accuracy on the pairs it never trained on (the
held-out ``1 - base_train_frac`` of the dataset) is at least ``generalised_acc`` (0.99). That is
why the bases here are not trained on the full dataset, as addition's are: a held-out set is
needed to see generalisation. A task whose bases did not all generalise is reported as such and
its continuations are not run (ungrokking needs a grokked start).

The permutation task has P = n! elements; it runs at the largest factorial not above the
scale's P (24, S_4, for P from 24 to 119), with the D' grid scaled to its fewer pairs. Tasks that need a prime modulus (division) need the
scale's P to be prime.

Writes ``DIR/<task>/`` (the ungrokking folder of each task), ``figure8.csv`` (one row per task:
base accuracy, D_crit, verdicts), ``figure8.json`` and ``figure8.png`` (one panel per task).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import pandas as pd

from circeff.analysis.stats import to_plain
from circeff.empirical.backend import Trainer
from circeff.empirical.experiments.predictions_common import train_base
from circeff.analysis.plots import plot_figure8, save_figure
from circeff.empirical.experiments.ungrokking import UngrokkingConfig, UngrokkingResult, run_ungrokking, write_ungrokking
from circeff.errors import ConfigError, RunError
from circeff.thresholds import BASE_GENERALISED_ACC
from circeff.io import ensure_dir, write_csv, write_json
from circeff.validate import in_range

__all__ = ["OTHER_TASKS", "Figure8Config", "Figure8Result", "run_figure8", "task_p", "write_figure8"]

# the nine operations of the registry besides modular addition
OTHER_TASKS = ("sub", "mul", "div", "x2_plus_y2", "x2_xy_y2", "x2_xy_y2_x", "x3_xy", "div_or_sub", "perm")


def task_p(task: str, p: int) -> int:
    """The modulus of ``task`` at a scale's ``p``: ``p`` itself, or for ``perm`` the largest n! <= p."""
    if task != "perm":
        return p
    n = 1
    while math.factorial(n + 1) <= p:
        n += 1
    return math.factorial(n)


@dataclass(frozen=True)
class Figure8Config:
    """Ungrokking per task.

    Attributes:
        ungrokking: the template (addition's settings at this scale): model, optimiser, seeds,
            base steps, D' grid, weight decays, decay budget. Each task gets it with its task.
        tasks: the operations (default: the nine besides addition).
        base_train_frac: the bases' share of the pairs; the rest is held out to check that they
            generalised.
        generalised_acc: held-out accuracy a base network needs to count as generalised.
    """

    ungrokking: UngrokkingConfig = field(default_factory=UngrokkingConfig)
    tasks: tuple[str, ...] = OTHER_TASKS
    base_train_frac: float = 0.8
    generalised_acc: float = BASE_GENERALISED_ACC

    def __post_init__(self) -> None:
        in_range("base_train_frac", self.base_train_frac, 0.0, 1.0, lo_open=True, hi_open=True)
        in_range("generalised_acc", self.generalised_acc, 0.0, 1.0)
        if not self.tasks:
            raise ConfigError("tasks", "must name at least one task", self.tasks)
        for task in self.tasks:
            self.ungrokking_for(task)  # validates task, P and the D' grid

    def ungrokking_for(self, task: str) -> UngrokkingConfig:
        """The ungrokking config of ``task``: the template with this task and its P, the D' grid
        as the same fractions of the task's pairs as of addition's (a task with fewer pairs,
        the permutations, gets a proportionally smaller grid), keeping those below the bases'
        training set."""
        base = self.ungrokking.base
        training = replace(base.training, task=task, p=task_p(task, base.training.p))
        scale = training.n_examples / base.training.n_examples
        base = replace(base, training=training, train_frac=self.base_train_frac)
        sizes = tuple(sorted({max(2, round(d * scale)) for d in self.ungrokking.sizes}))
        sizes = tuple(d for d in sizes if d < base.train_size)
        return replace(self.ungrokking, base=base, sizes=sizes)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True, eq=False)
class Figure8Result:
    rows: pd.DataFrame        # one row per task
    tables: dict[str, pd.DataFrame]  # task -> its ungrokking table
    verdicts: dict[str, dict[str, Any]]  # task -> {"P2": Verdict, "P3": Verdict} (or the reason none)
    ungrokking: dict[str, UngrokkingResult]  # task -> its ungrokking run (continued tasks only)
    out_dir: Path
    config: Figure8Config


FIGURE8_COLUMNS = ["task", "p", "base_held_out_acc_min", "generalised", "D_crit", "D_crit_lo", "D_crit_hi",
                   "P2", "P3", "note"]


def run_figure8(config: Figure8Config, out_dir: str | Path, *, progress: bool = True, resume: bool = True,
                trainer: Trainer | None = None) -> Figure8Result:
    """Every task's bases and ungrokking; D_crit, P2 and P3 per task. Writes only the training
    runs; :func:`write_figure8` writes each task's ungrokking records, the table, JSON and figure."""
    out = ensure_dir(out_dir)
    rows, tables, verdicts, runs = [], {}, {}, {}
    for task in config.tasks:
        ung = config.ungrokking_for(task)
        folder = out / task
        base = train_base(ung.base, folder / "base", progress=progress, resume=resume, trainer=trainer)
        held_out = pd.to_numeric(base.rows["test_acc"], errors="coerce")
        generalised = bool((held_out >= config.generalised_acc).all())
        row = {"task": task, "p": ung.base.p, "base_held_out_acc_min": float(held_out.min()),
               "generalised": generalised, "D_crit": math.nan, "D_crit_lo": math.nan, "D_crit_hi": math.nan,
               "P2": None, "P3": None, "note": ""}
        if not generalised:
            row["note"] = (f"bases did not generalise (held-out accuracy {held_out.min():.3g} < "
                           f"{config.generalised_acc:g}); not continued")
            rows.append(row)
            continue
        try:
            r = run_ungrokking(ung, folder, progress=progress, resume=resume, base_dir=folder / "base",
                               trainer=trainer)
        except RunError as exc:
            row["note"] = f"ungrokking failed: {exc}"
            rows.append(row)
            continue
        tables[task], runs[task] = r.rows.copy(), r
        # ungrokking's own P2/P3 (its bases have no trig share, so the rules skip the G-only check)
        v2, v3 = r.p2, r.p3
        verdicts[task] = {"P2": v2, "P3": v3}
        iv = r.pooled.D_crit
        row.update(D_crit=iv.value, D_crit_lo=iv.lo, D_crit_hi=iv.hi, P2=bool(v2.holds), P3=bool(v3.holds))
        rows.append(row)
    return Figure8Result(pd.DataFrame(rows, columns=FIGURE8_COLUMNS), tables, verdicts, runs, out, config)


def write_figure8(result: Figure8Result) -> None:
    """Each continued task's ungrokking records, ``figure8.csv``, ``figure8.json`` and the figure."""
    for r in result.ungrokking.values():
        write_ungrokking(r)
    out, config, df = result.out_dir, result.config, result.rows
    write_csv(out / "figure8.csv", df.to_dict("records"), fieldnames=FIGURE8_COLUMNS)
    write_json(out / "figure8.json", to_plain({
        "config": config.to_dict(),
        "generalised_rule": f"every base network's accuracy on its held-out pairs >= {config.generalised_acc:g}",
        "tasks": df.to_dict("records"),
        "verdicts": {t: {k: v.to_dict() for k, v in vs.items()} for t, vs in result.verdicts.items()}}))
    if result.tables:
        save_figure(plot_figure8(result.tables, df), out / "figure8.png")
