"""Ungrokking (predictions P2 and P3; Figures 4, 7 and 10b).

Take networks that have generalised (:class:`~circeff.empirical.experiments.predictions_common.BaseConfig`,
trained on the full dataset as in the paper) and keep training each on a random subset of size
D' (one model per (D', weight decay, seed)). Below the critical dataset size the memorising
circuit is the more efficient one and the network "ungroks": test accuracy at convergence falls
from near 1 to near chance. Above it the network stays generalised.

* P2: final test accuracy against D' shows a phase transition, not a ramp
  (:func:`circeff.analysis.ungrokking.p2`). D_crit is the midpoint of a logistic fit in log D'
  with a bootstrap interval over seeds (:func:`circeff.analysis.ungrokking.estimate_dcrit`,
  the package's one D_crit estimator; pooled and per weight decay on the figure and pages).
* P3: the transition does not depend on weight decay, by equivalence
  (:func:`circeff.analysis.ungrokking.p3`).

Design for the rules: a coarse grid ``sizes`` first; a logistic fit of it gives a first D_crit,
and ``n_refine`` more D' geometrically spaced in ``refine_range x`` that estimate are added (so
that several D' fall inside the transition). A run that has not converged by the convergence
numbers below is continued from where it stopped with another ``decay_budget`` (up to
``max_extensions`` times) rather than dropped; what is still unconverged after that is
reported and left out of the fits by the rules. Every row carries ``base_trig_share``, the
trig share of the base network it started from (P2 needs G-only bases, share > 0.95); a base
that is not G-only is replaced by a G-only spare base where one was trained
(``BaseConfig.spare_seeds``).

Equal decay budgets, not equal step counts: with AdamW the decay per step is
``lr * weight_decay``, so a run at a smaller weight decay is only slower. Every weight decay
``wd`` gets ``steps = ceil(decay_budget / wd)`` steps (the same ``wd x steps``), one engine
batch per weight decay (``OUT/wd_<wd>``). Convergence of every run is measured and reported
(:func:`~circeff.empirical.experiments.predictions_common.convergence_table`).

Outputs in the out folder: ``base/`` (the starting networks), ``wd_*/`` (engine runs),
``wd_*_refine/`` and ``wd_*_more*/`` (refinement and continuation batches),
``ungrokking.csv`` (one row per network: D, seed, weight_decay, steps, final accuracies,
convergence, base trig share, stage), ``ungrokking.json`` (config, D_crit pooled and per weight decay, verdicts P2/P3,
base trig shares), ``ungrokking.png`` (Figure 4/7/10b analogue).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from pathlib import Path

import pandas as pd

import numpy as np

from circeff.analysis import verdicts as V
from circeff.analysis.ungrokking import DcritEstimate, converged_rows, dcrit_by_weight_decay, estimate_dcrit
from matplotlib.figure import Figure

from circeff.analysis.plots import plot_ungrokking, save_figures
from circeff.empirical.backend import Trainer, train_or_reuse
from circeff.empirical.config import RunSpec
from circeff.analysis.stats import to_plain
from circeff.empirical.experiments.predictions_common import (
    BaseConfig,
    BaseResult,
    check_continuation_fields,
    convergence_table,
    final_rows,
    quick_base,
    sizes_below,
    sorted_unique,
    train_base,
)
from circeff.errors import ConfigError, RunError
from circeff.thresholds import CONFIDENCE_LEVEL
from circeff.io import ensure_dir, read_json, write_csv, write_json
from circeff.validate import integer_at_least, positive

__all__ = [
    "UNGROKKING_COLUMNS",
    "UngrokkingConfig",
    "UngrokkingResult",
    "run_ungrokking",
]

UNGROKKING_COLUMNS = ["D", "seed", "weight_decay", "steps", "final_test_acc", "final_train_acc",
                      "final_test_loss", "param_norm", "acc_change", "norm_change", "converged", "status",
                      "base_trig_share", "stage"]


@dataclass(frozen=True)
class UngrokkingConfig:
    """The ungrokking grid.

    Attributes:
        base: the generalised starting networks (one per seed; they set task, model, lr, device).
        sizes: the reduced training-set sizes D' (each < the base's training size).
        weight_decays: one engine batch per value (at least two for P3).
        decay_budget: ``weight_decay x steps`` of every batch (see module doc).
        log_every: evaluation interval of the continuations.
        convergence_window, acc_tol, norm_tol: convergence numbers reported per run.
        level, n_boot, analysis_seed: bootstrap intervals of D_crit.
        n_refine, refine_range: the D' added around the coarse grid's first D_crit estimate.
        max_extensions: how many times an unconverged run is continued (each time by
            another ``decay_budget``).
    """

    base: BaseConfig = field(default_factory=quick_base)
    sizes: tuple[int, ...] = (30, 50, 85, 140, 240, 400)
    weight_decays: tuple[float, ...] = (1.0, 2.0, 4.0)
    decay_budget: float = 1200.0
    log_every: int = 50
    convergence_window: float = 0.25
    acc_tol: float = 0.05
    norm_tol: float = 0.05
    level: float = CONFIDENCE_LEVEL
    n_boot: int = 500
    analysis_seed: int = 0
    n_refine: int = 5
    refine_range: tuple[float, float] = (0.7, 1.4)
    max_extensions: int = 1

    def __post_init__(self) -> None:
        if not isinstance(self.base, BaseConfig):
            raise ConfigError("base", "must be a BaseConfig", type(self.base).__name__)
        object.__setattr__(self, "sizes", sizes_below(self.sizes, self.base.train_size,
                                                      ", the base networks' training-set size", at_least=3))
        wds = sorted_unique("weight_decays", self.weight_decays, float)
        for w in wds:
            positive("weight_decays", w)
        object.__setattr__(self, "weight_decays", wds)
        check_continuation_fields(self)
        integer_at_least("n_boot", self.n_boot, 20)
        integer_at_least("analysis_seed", self.analysis_seed, 0)
        integer_at_least("n_refine", self.n_refine, 0)
        lo, hi = (float(v) for v in self.refine_range)
        if not 0 < lo < hi:
            raise ConfigError("refine_range", "must be two factors 0 < low < high", self.refine_range)
        object.__setattr__(self, "refine_range", (lo, hi))
        integer_at_least("max_extensions", self.max_extensions, 0)

    def steps_for(self, weight_decay: float) -> int:
        """Equal ``weight_decay x steps`` for every weight decay (AdamW: decay/step = lr x wd)."""
        return max(1, math.ceil(self.decay_budget / weight_decay))

    @property
    def n_models(self) -> int:
        return len(self.sizes) * len(self.weight_decays) * len(self.base.seeds)

    def to_dict(self) -> dict[str, object]:
        return asdict(self)


@dataclass(frozen=True, eq=False)
class UngrokkingResult:
    """Rows (one per network), the pooled and per-weight-decay D_crit, the verdicts P2 and P3
    (:mod:`circeff.analysis.verdicts`), the refinement sizes and the first D_crit estimate."""

    rows: pd.DataFrame
    base: BaseResult
    pooled: DcritEstimate
    by_weight_decay: tuple[DcritEstimate, ...]
    p2: V.Verdict
    p3: V.Verdict
    refined_sizes: tuple[int, ...]
    first_D_crit: float | None
    out_dir: Path
    config: UngrokkingConfig

    def verdict_table(self) -> pd.DataFrame:
        """The table the P2 and P3 rules read (:data:`circeff.analysis.verdicts.P2_COLUMNS` and,
        where the bases have one, ``base_trig_share``)."""
        return verdict_table(self.rows, trig_share=self.base.trig_share_measured)

    @property
    def D_crit(self):  # noqa: ANN201 - an Interval
        return self.pooled.D_crit


def _batch_dir(out: Path, wd: float) -> Path:
    return out / f"wd_{wd:g}"


def verdict_table(rows: pd.DataFrame, *, trig_share: bool = True) -> pd.DataFrame:
    """The rows the P2/P3 rules read: finished networks, their convergence and base trig share.

    ``trig_share=False`` (bases of a task other than modular addition, which have no trig
    share) leaves the column out, so the rules do not read its NaN as "not G-only"; there the
    bases' held-out accuracy establishes that they generalised (Figure 8)."""
    ok = rows[rows["status"] == "ok"]
    return ok[[*V.P2_COLUMNS, *(["base_trig_share"] if trig_share else [])]].reset_index(drop=True)


def _rows_of_batch(config: UngrokkingConfig, run_dir: Path, steps: int, shares: dict[int, float],
                   stage: str) -> list[dict]:
    conv = convergence_table(run_dir, window=config.convergence_window, acc_tol=config.acc_tol,
                             norm_tol=config.norm_tol).set_index("model")
    out = []
    for row in final_rows(run_dir):
        c = conv.loc[row["model"]]
        out.append({"model": row["model"], "D": row["train_size"], "seed": row["seed"],
                    "weight_decay": row["weight_decay"], "steps": steps, "final_test_acc": row["test_acc"],
                    "final_train_acc": row["train_acc"], "final_test_loss": row["test_loss"],
                    "param_norm": row["param_norm"], "acc_change": c["acc_change"],
                    "norm_change": c["norm_change"], "converged": bool(c["converged"]), "status": row["status"],
                    "base_trig_share": shares.get(int(row["seed"]), float("nan")), "stage": stage})
    return out


def refine_sizes(first_D_crit: float, config: UngrokkingConfig) -> tuple[int, ...]:
    """``n_refine`` D' geometrically spaced in ``refine_range x first_D_crit``, new ones only,
    each below the base networks' training-set size."""
    if config.n_refine == 0 or not (np.isfinite(first_D_crit) and first_D_crit > 0):
        return ()
    lo, hi = config.refine_range
    raw = np.geomspace(lo * first_D_crit, hi * first_D_crit, config.n_refine)
    return tuple(sorted({int(round(x)) for x in raw if 2 <= round(x) < config.base.train_size}
                        - set(config.sizes)))


def _first_D_crit(rows: list[dict], chance: float) -> float | None:
    """The coarse grid's D_crit point estimate (all rows, weight decays pooled), or None."""
    df = pd.DataFrame(rows)
    try:
        return float(estimate_dcrit(df[df["status"] == "ok"], chance=chance, n_boot=0).D_crit.value)
    except (ConfigError, RunError):
        return None


def _train_batch(config: UngrokkingConfig, specs: list[tuple[int, float, int]], steps: int, init_from: Path,
                 run_dir: Path, *, progress: bool, resume: bool, trainer: Trainer | None) -> None:
    train_config = config.base.continuation(specs, steps, init_from=init_from, log_every=config.log_every)
    train_or_reuse(train_config, run_dir, progress=progress, resume=resume, trainer=trainer)


def _extend(config: UngrokkingConfig, rows: list[dict], wd: float, batch: Path, steps: int,
            shares: dict[int, float], *, progress: bool, resume: bool, trainer: Trainer | None) -> list[dict]:
    """Continue the unconverged runs of ``batch`` by another decay budget (up to
    ``max_extensions`` times); their rows are replaced by the continuation's."""
    for k in range(1, config.max_extensions + 1):
        todo = [r for r in rows if not r["converged"] and r["status"] == "ok"]
        if not todo:
            break
        runs = [RunSpec(seed=int(r["seed"]), weight_decay=float(wd), train_size=int(r["D"]),
                        data_seed=int(r["seed"]), init_index=int(r["model"])) for r in todo]
        more = batch.parent / f"{batch.name}_more{k}"
        t = config.base.training
        train_or_reuse(t.engine(config.base.task_config, runs, steps=steps, log_every=config.log_every,
                                init_from=str(batch)), more, progress=progress, resume=resume, trainer=trainer)
        new = _rows_of_batch(config, more, steps * (k + 1), shares, f"{rows[0]['stage']}+{k}")
        keep = [r for r in rows if r not in todo]
        rows, batch = keep + new, more
    return rows


def run_ungrokking(config: UngrokkingConfig, out_dir: str | Path, *, progress: bool = True,
                   resume: bool = True, base_dir: str | Path | None = None,
                   trainer: Trainer | None = None) -> UngrokkingResult:
    """Train (or reuse) the base networks and the continuations (coarse grid, refinement,
    continuation of unconverged runs); fit D_crit; decide P2 and P3. Writes only the training
    runs; :func:`write_ungrokking` writes the tables, the JSON and the figure.

    Args:
        base_dir: an existing base run folder of ``config.base`` to reuse (default
            ``out_dir/base``, trained if missing).

    Raises:
        ConfigError: bad config; RunError: training failed.
    """
    out = ensure_dir(out_dir)
    base = train_base(config.base, Path(base_dir) if base_dir else out / "base", progress=progress, resume=resume,
                      trainer=trainer)
    shares = {int(r["seed"]): float(r["trig_share"]) for r in base.rows.to_dict("records")}
    chance = config.base.chance
    # a base that is not G-only is replaced by a G-only spare where one was trained
    indices = base.chosen(len(config.base.seeds))
    kw_run = dict(progress=progress, resume=resume, trainer=trainer)

    def grid(sizes: tuple[int, ...], suffix: str) -> list[dict]:
        got: list[dict] = []
        for wd in config.weight_decays:
            steps = config.steps_for(wd)
            specs = [(d, wd, i) for d in sizes for i in indices]
            run_dir = out / f"wd_{wd:g}{suffix}"
            _train_batch(config, specs, steps, base.run_dir, run_dir, **kw_run)
            batch = _rows_of_batch(config, run_dir, steps, shares, suffix.strip("_") or "coarse")
            got += _extend(config, batch, wd, run_dir, steps, shares, **kw_run)
        return got

    rows = grid(config.sizes, "")
    first = _first_D_crit(rows, chance)
    refined = refine_sizes(first, config) if first is not None else ()
    if refined:
        rows += grid(refined, "_refine")
    df = pd.DataFrame(rows).sort_values(["weight_decay", "D", "seed"]).reset_index(drop=True)[UNGROKKING_COLUMNS]

    usable = df[df["status"] == "ok"]
    fitted = usable[usable["converged"]]
    kw = dict(chance=chance, level=config.level, n_boot=config.n_boot, seed=config.analysis_seed)
    try:
        pooled = estimate_dcrit(fitted if len(fitted) else usable, **kw)
        by_wd = dcrit_by_weight_decay(fitted if len(fitted) else usable, **kw)
    except (ConfigError, RunError):
        # the trained networks' table is still worth a look
        write_csv(out / "ungrokking.csv", df.to_dict("records"), fieldnames=UNGROKKING_COLUMNS)
        raise
    table = verdict_table(df, trig_share=base.trig_share_measured)
    share = config.base.g_only_share
    # P2 and P3 read the same converged rows: the pooled estimate, not a second fit of them
    p2 = V.p2(table, chance, level=config.level, n_boot=config.n_boot, seed=config.analysis_seed,
              g_only_share=share, estimate=pooled if len(fitted) else None)
    p3 = V.p3(table, chance, g_only_share=share, estimate=pooled if len(fitted) else None)
    return UngrokkingResult(df, base, pooled, by_wd, p2, p3, refined, first, out, config)


def ungrokking_figures(result: UngrokkingResult) -> dict[str, Figure]:
    """Figure 4/7/10b of the run, by file name."""
    return {"ungrokking.png": plot_ungrokking(result.rows[result.rows["status"] == "ok"], result.by_weight_decay)}


def read_ungrokking(folder: str | Path) -> tuple[pd.DataFrame, DcritEstimate]:
    """The converged rows and the pooled D_crit estimate that :func:`write_ungrokking` wrote into
    ``folder`` (what a later experiment draws beside its own runs)."""
    folder = Path(folder)
    fit = DcritEstimate.from_dict(read_json(folder / "ungrokking.json")["D_crit"])
    return converged_rows(pd.read_csv(folder / "ungrokking.csv"), fit.chance)[0], fit


def write_ungrokking(result: UngrokkingResult) -> None:
    """``ungrokking.csv``, ``ungrokking.json`` and the figure, in the run's out folder."""
    out, config, df = result.out_dir, result.config, result.rows
    write_csv(out / "ungrokking.csv", df.to_dict("records"), fieldnames=UNGROKKING_COLUMNS)
    write_json(out / "ungrokking.json", to_plain({
        "config": config.to_dict(),
        "steps_per_weight_decay": {f"{wd:g}": config.steps_for(wd) for wd in config.weight_decays},
        "base": result.base.rows.to_dict("records"),
        "first_D_crit": result.first_D_crit, "refined_sizes": list(result.refined_sizes),
        "converged": int(df["converged"].sum()), "n_networks": int(len(df)),
        "excluded_unconverged": df.loc[~df["converged"], ["D", "seed", "weight_decay"]].to_dict("records"),
        "D_crit": result.pooled.to_dict(),
        "D_crit_by_weight_decay": [e.to_dict() for e in result.by_weight_decay],
        "P2": result.p2.to_dict(), "P3": result.p3.to_dict(),
    }))
    save_figures(ungrokking_figures(result), out)
