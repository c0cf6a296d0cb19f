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
``wd`` gets ``steps = ceil(decay_budget / wd)`` steps (the same ``wd x steps``), but at least
``min_steps`` (so that the largest weight decay is not cut short before the network has fitted
its reduced set; the presets set it to the middle weight decay's steps), one engine
batch per weight decay (``OUT/wd_<wd>``). Convergence of every run is measured and reported
(:func:`~circeff.empirical.experiments.predictions_common.convergence_table`).

Outputs in the out folder: ``base/`` (the starting networks), ``wd_*/`` (engine runs),
``wd_*_refine/`` and ``wd_*_more*/`` (refinement and continuation batches),
``convergence.csv`` (D_crit at decay budgets of ``convergence_efolds``, from one batch at the
largest weight decay with ``convergence_sizes`` D' around the first D_crit, three seeds: has
D_crit stopped moving at this grid's budget?), ``control.csv`` (the control: every base continued on its own full training set at every weight
decay for the same steps; ``final_acc`` is its accuracy on every pair, since no pair is held
out; P2 is undecided if it falls below 0.99, because then accuracy falls without any change of
data), ``ungrokking.csv`` (one row per network: D, seed, weight_decay, steps, final accuracies,
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
from circeff.analysis.robustness import decay_budget
from circeff.analysis.ungrokking import DcritEstimate, converged_rows, dcrit_by_weight_decay, estimate_dcrit
from matplotlib.figure import Figure

from circeff.analysis.plots import plot_ungrokking, save_figures
from circeff.analysis.stats import Interval
from circeff.empirical.backend import Trainer, train_or_reuse
from circeff.empirical.checkpoint import CHECKPOINT_NAME, load_checkpoint
from circeff.empirical.config import RunSpec
from circeff.analysis.stats import to_plain
from circeff.empirical.experiments.predictions_common import (
    BaseConfig,
    BaseResult,
    check_continuation_fields,
    config_fingerprint,
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

# the control's rows: each base continued on its own full training set (final_acc: held-out
# accuracy, or accuracy on every pair where the bases trained on all of them)
CONTROL_COLUMNS = ["D", "seed", "weight_decay", "steps", "final_acc", "converged", "status"]
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
        min_steps: the fewest steps any weight decay gets (see :meth:`steps_for`).
        convergence_multiples: D_crit is measured again at these multiples of the grid's decay
            budget (``lr x decay_budget`` e-folds; 1, 3, 9 at the full scale: 3, 9 and 27
            e-folds; 1, 3 at the quick scale, to keep it within ten minutes), from one batch at the largest weight decay with
            ``convergence_sizes`` D' geometrically spaced in ``budget_window x`` the first
            D_crit, read at each budget's step; empty: not measured. ``max_drift``: the relative change of D_crit between a budget
            and the next that counts as converged.
        control: also continue every base on its own full training set, at every weight decay
            for the same steps (the control: its accuracy must stay at 1).
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
    control: bool = True
    min_steps: int = 600
    convergence_multiples: tuple[float, ...] = (1.0, 3.0)
    budget_window: tuple[float, float] = (0.6, 1.6)
    convergence_sizes: int = 5
    max_drift: float = 0.05

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
        integer_at_least("min_steps", self.min_steps, 0)
        multiples = tuple(sorted(float(positive("convergence_multiples", e)) for e in self.convergence_multiples))
        if multiples and len(set(multiples)) < 2:
            raise ConfigError("convergence_multiples", "needs two or more distinct multiples (or none)",
                              list(self.convergence_multiples))
        object.__setattr__(self, "convergence_multiples", multiples)
        clo, chi = (float(v) for v in self.budget_window)
        if not 0 < clo < chi:
            raise ConfigError("budget_window", "must be two factors 0 < low < high", self.budget_window)
        object.__setattr__(self, "budget_window", (clo, chi))
        integer_at_least("convergence_sizes", self.convergence_sizes, 3)
        positive("max_drift", self.max_drift)
        if not isinstance(self.control, bool):
            raise ConfigError("control", "must be true or false", self.control)

    def steps_for(self, weight_decay: float) -> int:
        """Equal ``weight_decay x steps`` for every weight decay (AdamW: decay/step = lr x wd),
        and never fewer than ``min_steps`` (a large weight decay decays fast, but fitting the
        reduced set still takes steps)."""
        return max(1, self.min_steps, math.ceil(self.decay_budget / weight_decay))

    @property
    def n_models(self) -> int:
        return len(self.sizes) * len(self.weight_decays) * len(self.base.seeds)

    @property
    def efolds(self) -> float:
        """This grid's decay budget in e-folds of the weights, ``lr x decay_budget``."""
        return self.base.training.lr * self.decay_budget

    @property
    def convergence_efolds(self) -> tuple[float, ...]:
        """The budgets (e-folds) at which the convergence batch reads D_crit."""
        return tuple(m * self.efolds for m in self.convergence_multiples)

    @property
    def convergence_weight_decay(self) -> float:
        """The largest weight decay: it gets the fewest steps for a budget."""
        return max(self.weight_decays)

    def convergence_steps(self, efolds: float) -> int:
        """Steps at which the convergence batch reaches ``efolds`` (``lr x wd x steps``)."""
        return max(1, math.ceil(efolds / (self.base.training.lr * self.convergence_weight_decay)))

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
    control: pd.DataFrame = field(default_factory=lambda: pd.DataFrame(columns=CONTROL_COLUMNS))
    convergence: pd.DataFrame = field(default_factory=lambda: pd.DataFrame(columns=CONVERGENCE_COLUMNS))

    def converged_budget(self) -> float | None:
        """The smallest measured budget (e-folds) from which D_crit moves by at most the
        config's ``max_drift`` at every larger one, or None (the largest budget alone shows
        nothing: there is no larger one to compare it with). The same rule as
        :meth:`budget_check`, applied at each measured budget."""
        for e in sorted(self.convergence.dropna(subset=["D_crit"])["efolds"]):
            if self._drift_check(float(e))["passed"]:
                return float(e)
        return None

    def budget_check(self) -> dict:
        """P2's and P3's ``decay_budget`` robustness check: has D_crit stopped moving at this
        grid's budget (:func:`circeff.analysis.robustness.decay_budget`)?"""
        return self._drift_check(self.config.efolds)

    def _drift_check(self, at: float) -> dict:
        c = self.convergence
        return decay_budget(c["efolds"], c["D_crit"], at, self.config.max_drift)

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


CONVERGENCE_COLUMNS = ["efolds", "step", "weight_decay", "D_crit", "D_crit_lo", "D_crit_hi", "drift_to_next",
                       "n_sizes", "n_seeds"]


def _convergence(config: UngrokkingConfig, first: float, indices: tuple[int, ...], base: BaseResult, out: Path,
                 **kw_run: object) -> pd.DataFrame:
    """D_crit read at each budget of ``convergence_efolds`` from one batch at the largest weight
    decay, run to the largest budget (one row per budget; ``drift_to_next``: |D_crit at the next
    budget / D_crit here - 1|)."""
    lo, hi = config.budget_window
    sizes = sorted({int(round(x)) for x in np.geomspace(lo * first, hi * first, config.convergence_sizes)
                    if 2 <= round(x) < config.base.train_size})
    wd = config.convergence_weight_decay
    steps = {e: config.convergence_steps(e) for e in config.convergence_efolds}
    every = max(1, min(config.log_every, min(steps.values()) // 4))
    train_config = config.base.continuation([(d, wd, i) for d in sizes for i in indices], max(steps.values()),
                                            init_from=base.run_dir, log_every=every)
    # its sizes follow the first D_crit: a folder per batch, so another budget never resumes it
    run_dir = out / f"convergence_wd_{wd:g}_{config_fingerprint(train_config.to_dict())[:8]}"
    train_or_reuse(train_config, run_dir, progress=kw_run["progress"], resume=kw_run["resume"],
                   trainer=kw_run["trainer"])
    metrics = pd.DataFrame(load_checkpoint(run_dir / CHECKPOINT_NAME).rows)
    out_rows = []
    for e, step in steps.items():
        at = metrics[metrics["step"] == metrics.loc[metrics["step"] >= step, "step"].min()]
        table = pd.DataFrame({"D": at["train_size"], "seed": at["seed"].astype(str), "weight_decay": wd,
                              "final_test_acc": at["test_acc"]})
        try:
            est = estimate_dcrit(table, chance=config.base.chance, level=config.level, n_boot=config.n_boot,
                                 seed=config.analysis_seed).D_crit
        except (ConfigError, RunError):
            est = Interval(math.nan, math.nan, math.nan, config.level, "no fit")
        out_rows.append({"efolds": e, "step": int(at["step"].iloc[0]), "weight_decay": wd, "D_crit": est.value,
                         "D_crit_lo": est.lo, "D_crit_hi": est.hi, "n_sizes": len(sizes),
                         "n_seeds": int(table["seed"].nunique())})
    df = pd.DataFrame(out_rows)
    df["drift_to_next"] = (df["D_crit"].shift(-1) / df["D_crit"] - 1).abs()
    return df[CONVERGENCE_COLUMNS]


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
    # the control: the same continuation on the bases' own (full) training set, so that the data
    # do not change; accuracy that falls there falls for another reason than fewer pairs
    control = pd.DataFrame(columns=CONTROL_COLUMNS)
    if config.control:
        got = pd.DataFrame(grid((config.base.train_size,), "_control"))
        # held-out accuracy where the bases hold pairs out; on every pair where they trained on all
        control = got.assign(final_acc=got["final_test_acc"].fillna(got["final_train_acc"]))[CONTROL_COLUMNS]
    first = _first_D_crit(rows, chance)
    convergence = (_convergence(config, first, indices, base, out, **kw_run)
                   if config.convergence_multiples and first is not None else pd.DataFrame(columns=CONVERGENCE_COLUMNS))
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
    control_acc = float(control["final_acc"].min()) if len(control) else None
    p2 = V.p2(table, chance, level=config.level, n_boot=config.n_boot, seed=config.analysis_seed,
              g_only_share=share, estimate=pooled if len(fitted) else None, control_acc=control_acc)
    p3 = V.p3(table, chance, g_only_share=share, estimate=pooled if len(fitted) else None)
    return UngrokkingResult(df, base, pooled, by_wd, p2, p3, refined, first, out, config, control, convergence)


def ungrokking_figures(result: UngrokkingResult) -> dict[str, Figure]:
    """Figure 4/7/10b of the run (with the control at the bases' size), by file name."""
    return {"ungrokking.png": plot_ungrokking(result.rows[result.rows["status"] == "ok"], result.by_weight_decay,
                                              control=result.control)}


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
    write_csv(out / "control.csv", result.control.to_dict("records"), fieldnames=CONTROL_COLUMNS)
    write_csv(out / "convergence.csv", result.convergence.to_dict("records"), fieldnames=CONVERGENCE_COLUMNS)
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
        "control": result.control.to_dict("records"),
        "convergence": {"table": result.convergence.to_dict("records"), "budget_efolds": config.efolds,
                        "converged_from_efolds": result.converged_budget(), "max_drift": config.max_drift},
    }))
    save_figures(ungrokking_figures(result), out)
