"""Figure 10a (the G:M correct-logit ratio rises with D).

Figure 10a: start from G-only networks trained on the full dataset
(:class:`~circeff.empirical.experiments.predictions_common.BaseConfig`), train each at every D
until convergence (one engine batch, models = D x seed), and measure the correct-class proxies
of Appendix B on the training split (:mod:`circeff.empirical.circuits`): ``g_logit`` = the
trigonometric (G) proxy, ``m_logit`` = the memorisation (M) proxy (both label-centred). The
G:M ratio per network follows :func:`circeff.analysis.fig10.measured_ratios`
(``+inf`` when nothing is left of M); the verdict (:func:`circeff.analysis.fig10.fig10a`) is
Spearman's rank correlation between D and the ratio with a Fisher-z interval, and needs at
least 3 networks (seeds) at every D.
Final test accuracy against D (Figure 10b) comes from the same networks.

The predicted-against-measured allocation of these networks (settled to a minimum first) is
:mod:`circeff.empirical.experiments.allocation`.

The known flaw of the proxies (paper, Appendix B): with both circuits present the trig proxy
overestimates G and underestimates M, so measured ratios lean towards G.

Outputs: ``runs/`` (engine batch; ``base/`` unless a base folder is passed), ``fig10.csv`` (one row
per network: D, seed, g_logit, m_logit, ratio, trig_share, accuracies, convergence),
``fig10.json`` (config, verdict), ``fig10a.png``, ``fig10b.png``.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from pathlib import Path

import pandas as pd
from matplotlib.figure import Figure

from circeff.analysis.fig10 import FIG10A_COLUMNS, fig10a, measured_ratios
from circeff.analysis.plots import plot_ratio_vs_D, plot_ungrokking, save_figures
from circeff.analysis.rule import Verdict
from circeff.empirical.backend import Trainer, train_or_reuse
from circeff.analysis.stats import to_plain
from circeff.empirical.experiments.predictions_common import (
    BaseConfig,
    BaseResult,
    check_continuation_fields,
    convergence_table,
    quick_base,
    sizes_below,
    sorted_unique,
    train_base,
)
from circeff.errors import ConfigError
from circeff.thresholds import CONFIDENCE_LEVEL
from circeff.io import ensure_dir, write_csv, write_json
from circeff.validate import positive

__all__ = [
    "FIG10_COLUMNS",
    "Fig10Config",
    "Fig10Result",
    "run_fig10",
]

FIG10_COLUMNS = ["D", "seed", "weight_decay", "g_logit", "m_logit", "ratio", "trig_share", "train_acc",
                 "test_acc", "final_test_acc", "param_norm", "acc_change", "norm_change", "converged"]


@dataclass(frozen=True)
class Fig10Config:
    """Networks continued from G-only bases at each D.

    Attributes:
        base: the G-only starting networks (task must be ``add``: the decomposition needs it).
        sizes: the dataset sizes D (each < the base's training size).
        seeds: which base seeds to continue (``()``: all).
        weight_decay, decay_budget: AdamW weight decay and ``weight_decay x steps``.
        log_every: evaluation interval.
        convergence_window, acc_tol, norm_tol: convergence numbers reported per network.
        level: confidence level of the rank correlation's interval.
    """

    base: BaseConfig = field(default_factory=quick_base)
    sizes: tuple[int, ...] = (20, 40, 80, 160, 320, 500)
    seeds: tuple[int, ...] = ()
    weight_decay: float = 1.0
    decay_budget: float = 1500.0
    log_every: int = 50
    convergence_window: float = 0.25
    acc_tol: float = 0.05
    norm_tol: float = 0.05
    level: float = CONFIDENCE_LEVEL

    def __post_init__(self) -> None:
        if not isinstance(self.base, BaseConfig):
            raise ConfigError("base", "must be a BaseConfig", type(self.base).__name__)
        if self.base.task != "add":
            raise ConfigError("task", "must be 'add' (the Fourier decomposition is defined for modular "
                              "addition only)", self.base.task)
        object.__setattr__(self, "sizes", sizes_below(self.sizes, self.base.train_size,
                                                      ", the base networks' training-set size", at_least=3))
        if self.seeds:
            seeds = sorted_unique("seeds", self.seeds, int)
            missing = [s for s in seeds if s not in self.base.seeds]
            if missing:
                raise ConfigError("seeds", f"must be among the base seeds {list(self.base.seeds)}", missing)
            object.__setattr__(self, "seeds", seeds)
        positive("weight_decay", self.weight_decay)
        check_continuation_fields(self)

    @property
    def steps(self) -> int:
        return max(1, math.ceil(self.decay_budget / self.weight_decay))

    @property
    def seed_indices(self) -> tuple[int, ...]:
        chosen = self.seeds or self.base.seeds
        return tuple(self.base.seeds.index(s) for s in chosen)

    def to_dict(self) -> dict[str, object]:
        return asdict(self)


@dataclass(frozen=True, eq=False)
class Fig10Result:
    rows: pd.DataFrame           # FIG10_COLUMNS, one per network
    verdict: Verdict
    base: BaseResult
    out_dir: Path
    config: Fig10Config


def _measure(config: Fig10Config, run_dir: Path) -> pd.DataFrame:
    from circeff.empirical.circuits import analyse_run  # the Fourier analysis of final weights

    conv = convergence_table(run_dir, window=config.convergence_window, acc_tol=config.acc_tol,
                             norm_tol=config.norm_tol).set_index("model")
    rows = []
    for m in analyse_run(run_dir):
        c = conv.loc[m.model]
        rows.append({"D": m.train_size, "seed": m.seed, "weight_decay": m.weight_decay,
                     "g_logit": m.proxies.trig_train, "m_logit": m.proxies.mem_train,
                     "trig_share": m.trig_share, "train_acc": m.train_acc, "test_acc": m.test_acc,
                     "final_test_acc": m.test_acc, "param_norm": m.param_norm,
                     "acc_change": c["acc_change"], "norm_change": c["norm_change"],
                     "converged": bool(c["converged"])})
    df = pd.DataFrame(rows)
    ratios = measured_ratios(df[["D", "seed", "g_logit", "m_logit"]])
    df = df.merge(ratios, on=["D", "seed"], how="left")
    return df[FIG10_COLUMNS]


def run_fig10(config: Fig10Config, out_dir: str | Path, *, progress: bool = True, resume: bool = True,
              base_dir: str | Path | None = None, trainer: Trainer | None = None) -> Fig10Result:
    """Train (or reuse) the continuations, measure the proxies and decide Figure 10a. Writes
    only the training runs; :func:`write_fig10` writes the table, the JSON and the figures.

    Args:
        base_dir: an existing base run folder of ``config.base`` (default ``out_dir/base``).
    """
    out = ensure_dir(out_dir)
    base = train_base(config.base, Path(base_dir) if base_dir else out / "base", progress=progress, resume=resume,
                      trainer=trainer)
    specs = [(d, config.weight_decay, i) for d in config.sizes for i in config.seed_indices]
    run_dir = out / "runs"
    train_or_reuse(config.base.continuation(specs, config.steps, init_from=base.run_dir, log_every=config.log_every),
                   run_dir, progress=progress, resume=resume, trainer=trainer)
    rows = _measure(config, run_dir)
    verdict = fig10a(rows[list(FIG10A_COLUMNS)], level=config.level)
    return Fig10Result(rows, verdict, base, out, config)


def fig10_figures(result: Fig10Result) -> dict[str, Figure]:
    """Figures 10a and 10b of the run, by file name."""
    rows = result.rows
    return {"fig10a.png": plot_ratio_vs_D(rows[rows["ratio"].notna()], result.verdict),
            "fig10b.png": plot_ungrokking(rows, title="Figure 10b: final test accuracy against D (the networks "
                                          "of 10a)", xlabel="training set size D")}


def write_fig10(result: Fig10Result) -> None:
    """``fig10.csv``, ``fig10.json`` and the figures, in the run's out folder."""
    out, config, rows = result.out_dir, result.config, result.rows
    usable = rows[rows["ratio"].notna()]
    write_csv(out / "fig10.csv", rows.to_dict("records"), fieldnames=FIG10_COLUMNS)
    write_json(out / "fig10.json", to_plain({
        "config": config.to_dict(), "steps": config.steps, "base": result.base.rows.to_dict("records"),
        "n_networks": int(len(rows)), "n_ratio_undefined": int(rows["ratio"].isna().sum()),
        "converged": int(rows["converged"].sum()), "verdict": result.verdict.to_dict(),
        "median_ratio_by_D": {f"{d:g}": float(g["ratio"].median()) for d, g in usable.groupby("D")},
    }))
    save_figures(fig10_figures(result), out)
