"""Prediction P1: the efficiency of each circuit against the dataset size D (Section 5.1, Figure 3).

Single-circuit networks, so that all of a network's norm belongs to one circuit:

* **M-only**: modular addition with every label replaced by a uniform random draw
  (``TaskConfig.random_labels``); nothing can generalise, so all the norm is memorisation.
  Trained at several small D.
* **G-only**: true labels at D large enough that the network generalises; accepted only when
  the trigonometric share of its (label-centred) logit norm is above ``trig_share_threshold``
  (SPEC: 0.95). Trained at several large D, all above the grokking threshold: the prediction
  is that G's efficiency does not depend on D, so it is measured where G exists, never below.

Each circuit is ONE batched engine run (models = D x weight decay x seed, seeds fastest) in
``OUT/M`` and ``OUT/G``. Different weight decays put a network at different (norm, logit)
points along its circuit's curve ``logit = (norm / P(D))^kappa``; the analysis layer
(:func:`circeff.analysis.efficiency.analyse_efficiency`, ``intercepts="D_seed"``) fits P(D)
and kappa per circuit, the trend of P with D, the verdict and the efficiency crossover D_crit.

Measurements per network (from the final checkpoint, :mod:`circeff.empirical.circuits`):
``param_norm``; ``correct_logit`` = mean label-centred correct-class logit on the training
set (for M-only networks the label is the random one it was trained on); ``trig_share``.

Convergence criterion (ours; the paper's was not recorded): a network is ``converged`` when
it did not diverge and its parameter norm drifted by less than ``convergence_tol``
(relative) over the last ``convergence_window`` fraction of the steps: the mean norm of the
window's second half against its first half (see :func:`convergence`; the norm oscillates). With AdamW the decay
per step is ``lr * weight_decay``, so the smallest weight decay sets how long that takes.
A row is ``accepted`` (used by the fit) when it converged and, for G, its trig share is above
the threshold. Unaccepted rows stay in ``efficiency.csv`` with their flags.

Outputs in the out folder: ``efficiency.csv`` (one row per network), ``efficiency.json``
(config, counts, fits, trends, verdict, crossover), ``fig3_logit_vs_norm.png`` and
``efficiency_P_of_D.png``; plus the two engine run folders. Rerunning with ``resume=True``
skips finished training (the engine's checkpoints; a longer ``steps`` continues them).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import numpy as np
import pandas as pd

from circeff.analysis.efficiency import EfficiencyAnalysis, analyse_efficiency, fitted_lines, per_D_table
from circeff.analysis.stats import to_plain
from circeff.analysis.plots import plot_efficiency, plot_logit_vs_norm, save_figure
from circeff.empirical.checkpoint import CHECKPOINT_NAME, load_checkpoint
from circeff.sweep.backend import train_or_reuse
from circeff.empirical.circuits import analyse_params
from circeff.empirical.config import ModelConfig, TrainConfig
from circeff.empirical.tasks import TaskConfig
from circeff.errors import ConfigError, RunError
from circeff.io import ensure_dir, write_csv, write_json
from circeff.validate import in_range, integer_at_least, one_of, positive

__all__ = [
    "CIRCUITS",
    "EFFICIENCY_PRESETS",
    "EfficiencyConfig",
    "EfficiencyResult",
    "convergence",
    "get_efficiency_preset",
    "run_efficiency",
]

CIRCUITS = ("M", "G")
ROW_COLUMNS = [
    "circuit", "D", "weight_decay", "seed", "model", "step", "param_norm", "correct_logit",
    "correct_logit_test", "trig_share", "trig_train", "mem_train", "trig_test", "mem_test",
    "train_acc", "test_acc", "key_frequencies", "norm_change", "converged", "accepted",
]


def _distinct_at_least_two(name: str, values: Sequence[object], what: str) -> tuple:
    values = tuple(values)
    if len(set(values)) < 2:
        raise ConfigError(name, f"needs at least two distinct values ({what})", list(values))
    if len(set(values)) != len(values):
        raise ConfigError(name, "must not repeat a value", list(values))
    return values


@dataclass(frozen=True)
class EfficiencyConfig:
    """One P1 experiment (modular addition; see the module docstring).

    Attributes:
        p: the modulus P.
        m_train_sizes: D of the memorisation-only (random-label) networks; two or more.
        g_train_sizes: D of the generalisation-only networks; two or more, all large enough
            to generalise.
        weight_decays: two or more (the fit's kappa comes from the spread across them).
        seeds: two or more model seeds (P(D)'s interval is the spread across seeds).
        steps, lr: full-batch AdamW steps and learning rate (betas and eps: the engine's).
        model: architecture (the ``quick`` and ``cpu`` presets use a narrower one; see there).
        trig_share_threshold: accept a G network above this trig share (SPEC: 0.95).
        convergence_window, convergence_tol: see the module docstring.
        require_convergence: only converged networks are accepted (default). The quick preset
            turns it off: at its scale the norm has not settled (the rows say so), and its fit
            is a check of the pipeline, not a measurement.
        log_every, checkpoint_every: engine logging and checkpoint rhythm.
        data_seed: which training subset (shared by all networks of a D).
        label_seed: the random labels of the M networks.
        level, n_boot, analysis_seed: the fit's confidence level and bootstrap.
        device: ``cpu`` or ``cuda``.
    """

    p: int = 23
    m_train_sizes: tuple[int, ...] = (40, 80, 160)
    g_train_sizes: tuple[int, ...] = (317, 397, 476)
    weight_decays: tuple[float, ...] = (0.5, 2.0)
    seeds: tuple[int, ...] = (0, 1)
    steps: int = 2000
    lr: float = 3e-3
    model: ModelConfig = field(default_factory=ModelConfig)
    trig_share_threshold: float = 0.95
    convergence_window: float = 0.25
    convergence_tol: float = 0.05
    require_convergence: bool = True
    log_every: int = 50
    checkpoint_every: int = 500
    data_seed: int = 0
    label_seed: int = 0
    level: float = 0.95
    n_boot: int = 2000
    analysis_seed: int = 0
    device: str = "cpu"

    def __post_init__(self) -> None:
        TaskConfig(name="add", p=self.p)  # validates p
        n = self.p * self.p
        for name in ("m_train_sizes", "g_train_sizes"):
            sizes = _distinct_at_least_two(name, getattr(self, name), "a fit of P(D) needs two D")
            for d in sizes:
                integer_at_least(name, d, 1)
                if d > n:
                    raise ConfigError(name, f"must be <= {n} = p^2", d)
            object.__setattr__(self, name, tuple(sorted(sizes)))
        wds = _distinct_at_least_two("weight_decays", self.weight_decays, "kappa comes from them")
        object.__setattr__(self, "weight_decays", tuple(float(positive("weight_decays", w)) for w in wds))
        seeds = _distinct_at_least_two("seeds", self.seeds, "P(D)'s interval is the spread over seeds")
        object.__setattr__(self, "seeds", tuple(integer_at_least("seeds", s, 0) for s in seeds))
        integer_at_least("steps", self.steps, 1)
        positive("lr", self.lr)
        if not isinstance(self.model, ModelConfig):
            raise ConfigError("model", "must be a ModelConfig", type(self.model).__name__)
        in_range("trig_share_threshold", self.trig_share_threshold, 0.0, 1.0, lo_open=True, hi_open=True)
        in_range("convergence_window", self.convergence_window, 0.0, 1.0, lo_open=True)
        positive("convergence_tol", self.convergence_tol)
        if not isinstance(self.require_convergence, bool):
            raise ConfigError("require_convergence", "must be true or false", self.require_convergence)
        integer_at_least("log_every", self.log_every, 1)
        integer_at_least("checkpoint_every", self.checkpoint_every, 1)
        integer_at_least("data_seed", self.data_seed, 0)
        integer_at_least("label_seed", self.label_seed, 0)
        in_range("level", self.level, 0.0, 1.0, lo_open=True, hi_open=True)
        integer_at_least("n_boot", self.n_boot, 100)
        integer_at_least("analysis_seed", self.analysis_seed, 0)

    # ---- derived ------------------------------------------------------------------------------
    def task(self, circuit: str) -> TaskConfig:
        """Random labels for M, true labels for G."""
        if circuit not in CIRCUITS:
            raise ConfigError("circuit", "must be 'M' or 'G'", circuit)
        return TaskConfig(name="add", p=self.p, random_labels=circuit == "M", label_seed=self.label_seed)

    def train_sizes(self, circuit: str) -> tuple[int, ...]:
        return self.m_train_sizes if circuit == "M" else self.g_train_sizes

    def train_config(self, circuit: str) -> TrainConfig:
        """The batched engine run of one circuit: one model per (D, weight decay, seed)."""
        return TrainConfig.grid(
            self.task(circuit), self.seeds, weight_decays=self.weight_decays,
            train_sizes=self.train_sizes(circuit), data_seed=self.data_seed, model=self.model,
            steps=self.steps, lr=self.lr, log_every=self.log_every,
            checkpoint_every=self.checkpoint_every, device=self.device)

    @property
    def n_models(self) -> int:
        return len(self.weight_decays) * len(self.seeds) * (len(self.m_train_sizes) + len(self.g_train_sizes))

    def to_dict(self) -> dict[str, object]:
        return asdict(self)


# The narrower model of the small presets: a quarter of the default's matmul work per example,
# which is what fits the quick preset into its CPU budget.
_SMALL_MODEL = ModelConfig(d_model=64, n_heads=4, d_head=16, d_mlp=256)

EFFICIENCY_PRESETS: dict[str, EfficiencyConfig] = {
    # A pipeline check for `circeff reproduce --quick` (2.5 min on 2 shared cores, one torch
    # thread): P = 23, 24 networks, lr 3e-3, 1600 steps. G networks at 82-96% of the pairs: at
    # 60-75% one of two seeds still had a trig share below 0.95 after 1800 steps (measured). The norm has NOT settled at this scale
    # (measured drift over the last quarter: 5-10%), so require_convergence is off and the fit
    # is not a measurement. Weight decays below 1 settle even later; at wd 10 the M networks
    # stop memorising D = 160.
    "quick": EfficiencyConfig(
        p=23, m_train_sizes=(40, 80, 160), g_train_sizes=(436, 476, 506), weight_decays=(1.5, 4.0),
        seeds=(0, 1), steps=1600, lr=3e-3, model=_SMALL_MODEL, require_convergence=False,
        log_every=50, checkpoint_every=600),
    # The CPU-scale experiment (about 15 min on 2 shared cores, one torch thread): P = 31,
    # 42 networks, G networks at 80-95% of the pairs, weight decays 1-4. Measured: at wd 8
    # (lr 3e-3) G networks neither generalise nor memorise D >= 769 in 3000 steps (test
    # accuracy 0.02-0.69, trig share 0.16-0.67), and at wd 4 half of them are not G-only.
    "cpu": EfficiencyConfig(
        p=31, m_train_sizes=(60, 120, 240, 480), g_train_sizes=(769, 865, 913),
        weight_decays=(1.0, 2.0, 4.0), seeds=(0, 1), steps=3000, lr=3e-3, model=_SMALL_MODEL,
        log_every=50, checkpoint_every=500),
    # The paper's scale (SPEC section 6): P = 113, the default architecture, lr 1e-3. Not run
    # on CPU; D of G networks are 40-90% of the P^2 = 12769 pairs (above the grokking threshold).
    "paper": EfficiencyConfig(
        p=113, m_train_sizes=(500, 1000, 2000, 4000), g_train_sizes=(5108, 7661, 10215),
        weight_decays=(0.3, 1.0, 3.0), seeds=(0, 1, 2), steps=40_000, lr=1e-3, model=ModelConfig(),
        log_every=200, checkpoint_every=2000),
}


def get_efficiency_preset(name: object) -> EfficiencyConfig:
    return one_of("preset", EFFICIENCY_PRESETS, name)


@dataclass(frozen=True, eq=False)
class EfficiencyResult:
    """What :func:`run_efficiency` returns: the efficiency.csv table, the analysis, the folder."""

    rows: pd.DataFrame
    analysis: EfficiencyAnalysis
    out_dir: Path


# ---------------------------------------------------------------------------------------------
# Steps: train (or reuse) each circuit's batch, measure each network, fit, write.
# ---------------------------------------------------------------------------------------------


def convergence(rows: Sequence[dict], model: int, window: float) -> tuple[float, float]:
    """``(norm drift over the last window, final train accuracy)`` of one model from the
    engine's metric rows.

    The window is the logged steps at or after ``(1 - window) * T``; the drift is
    ``|mean norm of its second half - mean norm of its first half| / mean norm of the window``.
    Means over halves, not the two end points, because at tiny loss AdamW's norm oscillates
    (measured: +-5-10% swings within a few hundred steps at P = 23) around a level that has
    stopped moving; the end points would call every such run unconverged.
    """
    own = sorted((r for r in rows if r["model"] == model), key=lambda r: r["step"])
    start = (1.0 - window) * own[-1]["step"]
    norms = np.array([r["param_norm"] for r in own if r["step"] >= start], dtype=float)
    if norms.size < 2:
        return float("inf"), float(own[-1]["train_acc"])
    half = norms.size // 2
    drift = abs(norms[half:].mean() - norms[:half].mean()) / norms.mean()
    return float(drift), float(own[-1]["train_acc"])


def _measure(config: EfficiencyConfig, circuit: str, run_dir: Path) -> list[dict]:
    state = load_checkpoint(run_dir / CHECKPOINT_NAME)
    train_config = state.config
    rows = []
    for m in analyse_params(train_config, state.params, state.step):
        change, final_acc = convergence(state.rows, m.model, config.convergence_window)
        diverged = state.diverged[m.model] is not None
        # No accuracy requirement: at a large weight decay a network may settle below perfect
        # training accuracy, and its (norm, logit) point is still a point on its circuit's curve.
        converged = not diverged and change < config.convergence_tol
        # (a positive correct logit is needed for the log-log fit: a network whose labels are
        # not yet above the mean has no circuit strength to measure)
        single_circuit = not diverged and m.correct_logit_train > 0 and (
            circuit == "M" or m.trig_share > config.trig_share_threshold)
        accepted = single_circuit and (converged or not config.require_convergence)
        r = m.to_row()
        rows.append({
            "circuit": circuit, "D": m.train_size, "weight_decay": m.weight_decay, "seed": m.seed,
            "model": m.model, "step": m.step, "param_norm": m.param_norm,
            "correct_logit": m.correct_logit_train, "correct_logit_test": m.correct_logit_test,
            "trig_share": m.trig_share, "trig_train": r["trig_train"], "mem_train": r["mem_train"],
            "trig_test": r["trig_test"], "mem_test": r["mem_test"], "train_acc": m.train_acc,
            "test_acc": m.test_acc, "key_frequencies": r["key_frequencies"], "norm_change": change,
            "converged": bool(converged), "accepted": bool(accepted),
        })
    return rows


def _counts(rows: pd.DataFrame) -> dict[str, dict[str, int]]:
    return {c: {"networks": int((rows["circuit"] == c).sum()),
                "converged": int(rows.loc[rows["circuit"] == c, "converged"].sum()),
                "accepted": int(rows.loc[rows["circuit"] == c, "accepted"].sum()),
                "accepted_D_values": int(rows.loc[(rows["circuit"] == c) & rows["accepted"], "D"].nunique())}
            for c in CIRCUITS}


def fit_rows(rows: pd.DataFrame) -> tuple[pd.DataFrame, list[dict]]:
    """The accepted rows the fit can use, and what was left out.

    The fit (``intercepts="D_seed"``) needs, per circuit and D, two or more seeds each with two
    or more accepted networks (kappa comes from the spread over weight decays within a seed,
    P(D)'s interval from the spread over seeds). Stripes (D, seed) with one accepted network,
    then D with fewer than two such stripes, are dropped, the same rule for both circuits.
    """
    accepted = rows[rows["accepted"]]
    dropped = []
    size = accepted.groupby(["circuit", "D", "seed"])["accepted"].transform("size")
    for (c, d, seed), _ in accepted[size < 2].groupby(["circuit", "D", "seed"]):
        dropped.append({"circuit": c, "D": int(d), "seed": int(seed), "why": "one accepted network in the stripe"})
    kept = accepted[size >= 2]
    seeds = kept.groupby(["circuit", "D"])["seed"].transform("nunique")
    for (c, d), _ in kept[seeds < 2].groupby(["circuit", "D"]):
        dropped.append({"circuit": c, "D": int(d), "seed": None, "why": "fewer than two seeds with two accepted networks"})
    return kept[seeds >= 2], dropped


def run_efficiency(config: EfficiencyConfig, out_dir: Path, *, progress: bool = True,
                   resume: bool = True) -> EfficiencyResult:
    """Train (or reuse) the M-only and G-only batches, measure, fit and write everything.

    Raises:
        RunError: training failed, or too few networks were accepted for the fit (the table
            is written first, and efficiency.json says why).
        ConfigError: a bad config.
    """
    out = ensure_dir(out_dir)
    all_rows: list[dict] = []
    for circuit in CIRCUITS:
        run_dir = out / circuit
        train_or_reuse(config.train_config(circuit), run_dir, progress=progress, resume=resume)
        all_rows += _measure(config, circuit, run_dir)
    rows = pd.DataFrame(all_rows, columns=ROW_COLUMNS)
    write_csv(out / "efficiency.csv", rows.to_dict("records"), fieldnames=ROW_COLUMNS)

    counts = _counts(rows)
    summary: dict[str, object] = {"config": config.to_dict(), "counts": counts,
                                  "intercepts": "D_seed", "convergence": {
                                      "window": config.convergence_window, "tol": config.convergence_tol,
                                      "rule": "not diverged and |mean norm of the last window's "
                                              "second half - first half| / mean norm < tol"}}
    accepted, dropped = fit_rows(rows)
    summary["left_out_of_fit"] = dropped
    try:
        analysis = analyse_efficiency(accepted, intercepts="D_seed", level=config.level,
                                      n_boot=config.n_boot, seed=config.analysis_seed)
    except ConfigError as exc:
        summary["error"] = f"the P1 fit is impossible on the accepted networks: {exc}"
        write_json(out / "efficiency.json", to_plain(summary))
        single = rows[rows["accepted"]]
        if set(single["circuit"]) == set(CIRCUITS):  # the measured points are still worth a look
            save_figure(plot_logit_vs_norm(single), out / "fig3_logit_vs_norm.png")
        raise RunError(f"{summary['error']} (counts {counts}; see {out / 'efficiency.csv'})") from None

    summary.update({
        "verdict": analysis.verdict.to_dict(),
        "fit_G": analysis.fit_G.to_dict(), "fit_M": analysis.fit_M.to_dict(),
        "trend_G": analysis.trend_G.to_dict(), "trend_M": analysis.trend_M.to_dict(),
        "crossover": analysis.crossover.to_dict(),
        "P_of_D": per_D_table(analysis).to_dict("records"),
    })
    write_json(out / "efficiency.json", to_plain(summary))

    lines = pd.concat([fitted_lines(analysis.fit_M, accepted), fitted_lines(analysis.fit_G, accepted)],
                      ignore_index=True)
    save_figure(plot_logit_vs_norm(accepted, lines), out / "fig3_logit_vs_norm.png")
    save_figure(plot_efficiency(analysis), out / "efficiency_P_of_D.png")
    return EfficiencyResult(rows=rows, analysis=analysis, out_dir=out)


def with_overrides(config: EfficiencyConfig, **changes: object) -> EfficiencyConfig:
    """``config`` with the non-None ``changes`` applied (validated again)."""
    return replace(config, **{k: v for k, v in changes.items() if v is not None})


def describe(result: EfficiencyResult) -> list[str]:
    """Human-readable lines: counts, P(D) per circuit with intervals, kappa, verdict, D_crit."""
    a = result.analysis
    lines = []
    for fit, trend in ((a.fit_M, a.trend_M), (a.fit_G, a.trend_G)):
        k = fit.kappa
        lines.append(f"{fit.circuit}: kappa {k.value:.3g} [{k.lo:.3g}, {k.hi:.3g}]; slope of log P "
                     f"vs log D {trend.slope.value:.3g} [{trend.slope.lo:.3g}, {trend.slope.hi:.3g}]")
        for p in fit.per_D:
            lines.append(f"  D {p.D:g}: P {p.P.value:.4g} [{p.P.lo:.4g}, {p.P.hi:.4g}] ({p.n} networks)")
    c = a.crossover.D_crit
    hi = "inf" if not np.isfinite(c.hi) else f"{c.hi:.4g}"
    lines.append(f"crossover D_crit {c.value:.4g} [{c.lo:.4g}, {hi}]")
    lines.append(f"P1 {'holds' if a.verdict.holds else 'does not hold'}: {a.verdict.reason}")
    return lines
