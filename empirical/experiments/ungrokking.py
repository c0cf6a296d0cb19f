"""Ungrokking (predictions P2 and P3; Figures 4, 7 and 10b).

Take networks that have generalised (:class:`~circeff.empirical.experiments.predictions_common.BaseConfig`,
trained on the full dataset as in the paper) and keep training each on a random subset of size
D' (one model per (D', weight decay, seed)). Below the critical dataset size the memorising
circuit is the more efficient one and the network "ungroks": test accuracy at convergence falls
from near 1 to near chance. Above it the network stays generalised.

* P2: final test accuracy against D' shows a phase transition. D_crit is the midpoint of a
  logistic fit in log D' with a bootstrap interval over seeds
  (:func:`circeff.analysis.dcrit.fit_dcrit`, :func:`~circeff.analysis.dcrit.transition_verdict`).
* P3: the transition does not depend on weight decay
  (:func:`circeff.analysis.dcrit.weight_decay_verdict`: slope of log D_crit against log wd).

Equal decay budgets, not equal step counts: with AdamW the decay per step is
``lr * weight_decay``, so a run at a smaller weight decay is only slower. Every weight decay
``wd`` gets ``steps = ceil(decay_budget / wd)`` steps (the same ``wd x steps``), one engine
batch per weight decay (``OUT/wd_<wd>``). Convergence of every run is measured and reported
(:func:`~circeff.empirical.experiments.predictions_common.convergence_table`).

Outputs in the out folder: ``base/`` (the starting networks), ``wd_*/`` (engine runs),
``ungrokking.csv`` (one row per network: D, seed, weight_decay, steps, final accuracies,
convergence), ``ungrokking.json`` (config, D_crit pooled and per weight decay, verdicts P2/P3,
base trig shares), ``ungrokking.png`` (Figure 4/7/10b analogue).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from pathlib import Path

import pandas as pd

from circeff.analysis.dcrit import (
    DcritEstimate,
    TransitionVerdict,
    WeightDecayVerdict,
    fit_dcrit,
    fit_dcrit_by_weight_decay,
    transition_verdict,
    weight_decay_verdict,
)
from circeff.analysis.plots import plot_ungrokking, save_figure
from circeff.empirical.backend import Trainer, train_or_reuse
from circeff.analysis.stats import to_plain
from circeff.empirical.experiments.predictions_common import (
    BaseConfig,
    BaseResult,
    check_continuation_fields,
    convergence_table,
    final_rows,
    sizes_below,
    sorted_unique,
    train_base,
)
from circeff.errors import ConfigError
from circeff.io import ensure_dir, write_csv, write_json
from circeff.validate import in_range, positive

__all__ = [
    "UNGROKKING_COLUMNS",
    "UngrokkingConfig",
    "UngrokkingResult",
    "run_ungrokking",
]

UNGROKKING_COLUMNS = ["D", "seed", "weight_decay", "steps", "final_test_acc", "final_train_acc",
                      "final_test_loss", "param_norm", "acc_change", "norm_change", "converged", "status"]


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
        min_jump: P2 needs the fitted transition to span at least this much accuracy.
        p3_tolerance: P3 holds if the slope interval of log D_crit vs log wd contains 0 or lies
            within +-tolerance.
    """

    base: BaseConfig = field(default_factory=BaseConfig)
    sizes: tuple[int, ...] = (30, 50, 85, 140, 240, 400)
    weight_decays: tuple[float, ...] = (1.0, 2.0)
    decay_budget: float = 1500.0
    log_every: int = 50
    convergence_window: float = 0.25
    acc_tol: float = 0.05
    norm_tol: float = 0.05
    level: float = 0.95
    n_boot: int = 500
    analysis_seed: int = 0
    min_jump: float = 0.5
    p3_tolerance: float = 0.1

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
        in_range("min_jump", self.min_jump, 0.0, 1.0, lo_open=True)
        positive("p3_tolerance", self.p3_tolerance)

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
    """Rows (one per network), the pooled and per-weight-decay D_crit, the verdicts."""

    rows: pd.DataFrame
    base: BaseResult
    pooled: DcritEstimate
    by_weight_decay: tuple[DcritEstimate, ...]
    transition: TransitionVerdict
    weight_decay: WeightDecayVerdict | None
    out_dir: Path

    @property
    def D_crit(self):  # noqa: ANN201 - an Interval
        return self.pooled.D_crit


def _batch_dir(out: Path, wd: float) -> Path:
    return out / f"wd_{wd:g}"


def _rows_of_batch(config: UngrokkingConfig, run_dir: Path, steps: int) -> list[dict]:
    conv = convergence_table(run_dir, window=config.convergence_window, acc_tol=config.acc_tol,
                             norm_tol=config.norm_tol).set_index("model")
    out = []
    for row in final_rows(run_dir):
        c = conv.loc[row["model"]]
        out.append({"D": row["train_size"], "seed": row["seed"], "weight_decay": row["weight_decay"],
                    "steps": steps, "final_test_acc": row["test_acc"], "final_train_acc": row["train_acc"],
                    "final_test_loss": row["test_loss"], "param_norm": row["param_norm"],
                    "acc_change": c["acc_change"], "norm_change": c["norm_change"],
                    "converged": bool(c["converged"]), "status": row["status"]})
    return out


def run_ungrokking(config: UngrokkingConfig, out_dir: str | Path, *, progress: bool = True,
                   resume: bool = True, base_dir: str | Path | None = None,
                   trainer: Trainer | None = None) -> UngrokkingResult:
    """Train (or reuse) the base networks and the continuations; fit D_crit; write everything.

    Args:
        base_dir: an existing base run folder of ``config.base`` to reuse (default
            ``out_dir/base``, trained if missing).

    Raises:
        ConfigError: bad config; RunError: training failed or the transition fit did not converge.
    """
    out = ensure_dir(out_dir)
    base = train_base(config.base, Path(base_dir) if base_dir else out / "base", progress=progress, resume=resume,
                      trainer=trainer)
    rows: list[dict] = []
    for wd in config.weight_decays:
        steps = config.steps_for(wd)
        specs = [(d, wd, i) for d in config.sizes for i in range(len(config.base.seeds))]
        train_config = config.base.continuation(specs, steps, init_from=base.run_dir,
                                                log_every=config.log_every)
        run_dir = _batch_dir(out, wd)
        train_or_reuse(train_config, run_dir, progress=progress, resume=resume, trainer=trainer)
        rows += _rows_of_batch(config, run_dir, steps)
    df = pd.DataFrame(rows, columns=UNGROKKING_COLUMNS)
    write_csv(out / "ungrokking.csv", df.to_dict("records"), fieldnames=UNGROKKING_COLUMNS)

    usable = df[df["status"] == "ok"]
    chance = config.base.chance
    kw = dict(chance=chance, level=config.level, n_boot=config.n_boot, seed=config.analysis_seed)
    pooled = fit_dcrit(usable, **kw)
    by_wd = fit_dcrit_by_weight_decay(usable, **kw)
    transition = transition_verdict(pooled, min_jump=config.min_jump)
    wd_verdict = (weight_decay_verdict(usable, tolerance=config.p3_tolerance, **kw)
                  if len(config.weight_decays) >= 2 else None)
    result = UngrokkingResult(df, base, pooled, by_wd, transition, wd_verdict, out)
    write_json(out / "ungrokking.json", to_plain({
        "config": config.to_dict(),
        "steps_per_weight_decay": {f"{wd:g}": config.steps_for(wd) for wd in config.weight_decays},
        "base": base.rows.to_dict("records"),
        "converged": int(df["converged"].sum()), "n_networks": int(len(df)),
        "D_crit": pooled.to_dict(),
        "D_crit_by_weight_decay": [e.to_dict() for e in by_wd],
        "P2": transition.to_dict(),
        "P3": wd_verdict.to_dict() if wd_verdict else None,
    }))
    save_figure(plot_ungrokking(usable, by_wd), out / "ungrokking.png")
    return result
