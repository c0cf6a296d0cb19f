"""Prediction P1: the efficiency of each circuit against the dataset size D (Section 5.1, Figure 3).

Single-circuit networks, so that all of a network's norm belongs to one circuit:

* **M-only**: modular addition with every label replaced by a uniform random draw
  (``TaskConfig.random_labels``); nothing can generalise, so all the norm is memorisation.
  Trained at several small D.
* **G-only**: true labels at D large enough that the network generalises; accepted only when
  the trigonometric share of its (label-centred) logit norm is above ``g_only_share``
  (the paper's Section 5.1: 0.95). Trained at ``g_train_sizes``, all above the grokking
  threshold. To measure G over a wide range of D (P1 says G's efficiency does not depend on
  D, which a narrow range cannot show), the G networks trained at the largest of those sizes
  are also **settled on random subsets** of each smaller size in ``g_subset_sizes`` (the first
  D of the same data permutation, so a random subset of the set they were trained on): the
  settling ladder below starts from the G network and only ever sees the D subset. A network
  that stays G-only there (trig share above the threshold after settling) is a G-only network
  at that D; one that does not is left out of the fit (it stays in the table, flagged). The
  ``settled_from`` column says which size a row's network was trained at. The copies of one
  network at several D start from the same weights, so they are not independent networks (G's
  slope interval from them is narrower than independent networks would give).

Two stages per circuit:

1. **Train** one batched engine run (models = D x seed, seeds fastest) in ``OUT/M`` and
   ``OUT/G`` with AdamW at ``train_weight_decay``, long enough for the circuit to form.
2. **Settle** every network (and every subset copy of the largest G networks) along a ladder of L2 coefficients ``alphas`` (smallest first):
   minimise ``CE + (alpha/2) ||theta||^2`` by L-BFGS (:mod:`circeff.empirical.settle`, whose
   docstring gives the measured reason: at tiny loss AdamW's equilibrium is set by its
   ``eps``, so varying AdamW's weight decay barely moves a network along its curve). Each
   rung puts the same circuit at a different (norm, logit) point on ``logit = (norm/P)^kappa``.
   The rows' ``weight_decay`` column is this alpha: the coefficient of the weight-decay term
   in the objective Theorem D.4 minimises.

The analysis layer (:func:`circeff.analysis.efficiency.analyse_efficiency`,
``intercepts="D_seed"``: one intercept per (D, seed) stripe, so kappa comes from the ladder
within a network) fits P(D) and kappa per circuit, the trend of P with D and the efficiency
crossover D_crit. The verdict is :func:`circeff.analysis.efficiency.p1` on the accepted rows
(:func:`verdict_table`).

Measurements per network and rung (:mod:`circeff.empirical.circuits`): ``param_norm``;
``correct_logit`` = mean label-centred correct-class logit on the training set (for M-only
networks the label is the random one it was trained on); ``trig_share``.

Convergence criterion (ours; the paper's was not recorded): a rung is ``converged`` when the
parameter norm moved by less than ``convergence_tol`` (relative) over the last quarter of
the rung's L-BFGS evaluations. ``stationarity`` = ``||grad|| / (alpha ||theta||)`` is
reported beside it (measured 0.1-0.6 at P = 23: the norm creeps on slowly as the network
keeps finding slightly more efficient weights, by under 1% per 75 iterations).
A row is ``accepted`` (used by the fit) when it converged, its correct logit is positive,
and, for G, its trig share is above the threshold. Unaccepted rows stay in
``efficiency.csv`` with their flags.

Outputs in the out folder: ``efficiency.csv`` (one row per network and rung),
``efficiency.json`` (config, counts, fits, trends, verdict and its controls, crossover),
``fig3_logit_vs_norm.png`` and ``efficiency_P_of_D.png``; the engine run folders, each with
``settle.pt`` (the ladder's progress; ``settle_subsets.pt`` for the G subset copies). Rerunning skips finished training and finished rungs;
an interrupted ladder restarts at its first unfinished rung and ends with the same numbers.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from matplotlib.figure import Figure

from circeff.analysis.efficiency import (
    P1_COLUMNS,
    EfficiencyAnalysis,
    analyse_efficiency,
    fitted_lines,
    per_D_table,
    two_seeds_per_D,
)
from circeff.analysis.controls import p1_on_its_design
from circeff.analysis.plots import plot_efficiency, plot_logit_vs_norm, save_figure, save_figures
from circeff.analysis.rule import Verdict
from circeff.analysis.stats import to_plain
from circeff.empirical.checkpoint import CHECKPOINT_NAME, load_checkpoint
from circeff.empirical.backend import Trainer, train_or_reuse
from circeff.empirical.circuits import analyse_params
from circeff.empirical.config import RunSpec, TrainConfig, Training, TrainingView
from circeff.empirical.experiments.predictions_common import QUICK
from circeff.empirical.settle import SettleTrace, settle
from circeff.empirical.tasks import TaskConfig, make_dataset
from circeff.errors import ConfigError, RunError
from circeff.progress import bar as bar_of
from circeff.thresholds import CONFIDENCE_LEVEL, G_ONLY_TRIG_SHARE
from circeff.io import atomic_write_bytes, ensure_dir, write_csv, write_json
from circeff.validate import in_range, integer_at_least, positive

__all__ = [
    "CIRCUITS",
    "QUICK_P1",
    "EfficiencyConfig",
    "EfficiencyResult",
    "run_efficiency",
    "settle_and_measure",
    "verdict_table",
]

CIRCUITS = ("M", "G")
# The quick scale's P1 training: five seeds, and 22.5 e-folds of weight decay (lr x wd x steps),
# so that G networks trained from scratch down to about 3 x D_crit (D = 260 at P = 23) come out
# G-only for at least two seeds at every size (measured: 3, 5, 5 and 4 of 5 at D = 260-506, with
# 2000 steps at wd 3.75; 4.5 e-folds left them G-only only here and there)
QUICK_P1 = replace(QUICK, steps=2000, weight_decay=3.75, seeds=(0, 1, 2, 3, 4))
LADDER_NAME = "settle.pt"
SUBSET_LADDER_NAME = "settle_subsets.pt"
ROW_COLUMNS = [
    "circuit", "D", "weight_decay", "seed", "model", "evaluations", "param_norm", "correct_logit",
    "correct_logit_test", "trig_share", "trig_train", "mem_train", "trig_test", "mem_test",
    "train_acc", "test_acc", "key_frequencies", "norm_drift", "stationarity", "diverged", "converged", "accepted", "settled_from",
]


def _distinct_at_least_two(name: str, values: Sequence[object], what: str) -> tuple:
    values = tuple(values)
    if len(set(values)) < 2:
        raise ConfigError(name, f"needs at least two distinct values ({what})", list(values))
    if len(set(values)) != len(values):
        raise ConfigError(name, "must not repeat a value", list(values))
    return values


@dataclass(frozen=True)
class EfficiencyConfig(TrainingView):
    """One P1 experiment (modular addition; see the module docstring).

    Attributes:
        training: P, model, stage 1's full-batch AdamW (lr, weight decay, steps), two or more
            seeds (P(D)'s interval is the spread across seeds), device, engine rhythm. Its task
            is modular addition (the M networks get random labels).
        m_train_sizes: D of the memorisation-only (random-label) networks; two or more.
        g_train_sizes: D of the generalisation-only networks, all large enough to generalise;
            with ``g_subset_sizes`` one size is enough (two or more distinct G sizes in all).
        g_subset_sizes: smaller D at which the G networks of the largest ``g_train_sizes`` are
            settled on random subsets (see the module docstring); ``()`` for none.
        alphas: the settle ladder's L2 coefficients, two or more (kappa comes from the spread
            across them; each rung starts from the previous one, smallest first).
        settle_iterations: L-BFGS iterations per model and rung.
        g_only_share: accept a G network above this trig share (the paper's Section 5.1: 0.95).
        convergence_tol: see the module docstring.
        require_convergence: only converged rungs are accepted (default).
        data_seed: which training subset (shared by all networks of a D).
        label_seed: the random labels of the M networks.
        level, n_boot, analysis_seed: the fit's confidence level and bootstrap.
    """

    training: Training = QUICK_P1
    m_train_sizes: tuple[int, ...] = (40, 80, 160)
    g_train_sizes: tuple[int, ...] = (260, 340, 420, 506)   # 0.49-0.96 of the P^2 pairs, from about 3 x D_crit
    g_subset_sizes: tuple[int, ...] = ()
    alphas: tuple[float, ...] = (1e-4, 1e-3, 1e-2)
    settle_iterations: int = 100
    g_only_share: float = G_ONLY_TRIG_SHARE
    convergence_tol: float = 0.02
    require_convergence: bool = True
    data_seed: int = 0
    label_seed: int = 0
    level: float = CONFIDENCE_LEVEL
    n_boot: int = 2000
    analysis_seed: int = 0

    def __post_init__(self) -> None:
        if not isinstance(self.training, Training):
            raise ConfigError("training", "must be a Training", type(self.training).__name__)
        if self.training.task != "add":
            raise ConfigError("task", "must be 'add' (the Fourier decomposition is defined for modular "
                              "addition only)", self.training.task)
        n = self.p * self.p
        for name in ("m_train_sizes", "g_train_sizes", "g_subset_sizes"):
            sizes = tuple(getattr(self, name))
            if name == "m_train_sizes" or (name == "g_train_sizes" and not self.g_subset_sizes):
                _distinct_at_least_two(name, sizes, "a fit of P(D) needs two D")
            elif name == "g_train_sizes" and not sizes:
                raise ConfigError(name, "needs at least one size", list(sizes))
            if len(set(sizes)) != len(sizes):
                raise ConfigError(name, "must not repeat a value", list(sizes))
            for d in sizes:
                integer_at_least(name, d, 1)
                if d > n:
                    raise ConfigError(name, f"must be <= {n} = p^2", d)
            object.__setattr__(self, name, tuple(sorted(sizes)))
        if self.g_subset_sizes and max(self.g_train_sizes) <= max(self.g_subset_sizes):
            raise ConfigError("g_train_sizes", f"the largest must exceed every G subset size "
                              f"{list(self.g_subset_sizes)} (the subsets are drawn from its training set)",
                              max(self.g_train_sizes))
        alphas = _distinct_at_least_two("alphas", self.alphas, "kappa comes from them")
        object.__setattr__(self, "alphas", tuple(sorted(float(positive("alphas", a)) for a in alphas)))
        _distinct_at_least_two("seeds", self.seeds, "P(D)'s interval is the spread over seeds")
        positive("train_weight_decay", self.train_weight_decay)
        integer_at_least("settle_iterations", self.settle_iterations, 1)
        in_range("g_only_share", self.g_only_share, 0.0, 1.0, lo_open=True, hi_open=True)
        positive("convergence_tol", self.convergence_tol)
        if not isinstance(self.require_convergence, bool):
            raise ConfigError("require_convergence", "must be true or false", self.require_convergence)
        integer_at_least("data_seed", self.data_seed, 0)
        integer_at_least("label_seed", self.label_seed, 0)
        in_range("level", self.level, 0.0, 1.0, lo_open=True, hi_open=True)
        integer_at_least("n_boot", self.n_boot, 100)
        integer_at_least("analysis_seed", self.analysis_seed, 0)

    # ---- derived ------------------------------------------------------------------------------
    @property
    def train_weight_decay(self) -> float:
        """Stage 1's AdamW weight decay."""
        return self.training.weight_decay

    def task(self, circuit: str) -> TaskConfig:
        """Random labels for M, true labels for G."""
        if circuit not in CIRCUITS:
            raise ConfigError("circuit", "must be 'M' or 'G'", circuit)
        return TaskConfig(name="add", p=self.p, random_labels=circuit == "M", label_seed=self.label_seed)

    def train_sizes(self, circuit: str) -> tuple[int, ...]:
        return self.m_train_sizes if circuit == "M" else self.g_train_sizes

    def train_config(self, circuit: str) -> TrainConfig:
        """Stage 1, the batched engine run of one circuit: one model per (D, seed)."""
        return TrainConfig.grid(
            self.task(circuit), self.seeds, weight_decays=(self.train_weight_decay,),
            train_sizes=self.train_sizes(circuit), data_seed=self.data_seed, model=self.model,
            steps=self.steps, lr=self.lr, log_every=self.log_every,
            checkpoint_every=self.checkpoint_every, device=self.device)

    @property
    def n_models(self) -> int:
        """Trained networks (each is measured once per rung of the ladder)."""
        return len(self.seeds) * (len(self.m_train_sizes) + len(self.g_train_sizes))

    @property
    def n_ladders(self) -> int:
        """Networks settled along the ladder (the trained ones and the G subset copies)."""
        return self.n_models + len(self.seeds) * len(self.g_subset_sizes)

    def settle_key(self, circuit: str) -> dict[str, object]:
        """What a finished ladder depends on besides the trained run (a mismatch redoes it)."""
        return {"train": self.train_config(circuit).to_dict(), "alphas": list(self.alphas),
                "settle_iterations": self.settle_iterations}

    def g_sizes(self) -> tuple[int, ...]:
        """Every D at which G is measured (trained and subset sizes)."""
        return tuple(sorted(set(self.g_train_sizes) | set(self.g_subset_sizes)))

    def to_dict(self) -> dict[str, object]:
        return asdict(self)


@dataclass(frozen=True, eq=False)
class EfficiencyResult:
    """What :func:`run_efficiency` returns: the efficiency.csv table, the estimates, the P1
    verdict (:func:`circeff.analysis.efficiency.p1`, decided with the power measured on this
    design) and its controls entry, the folder."""

    rows: pd.DataFrame
    analysis: EfficiencyAnalysis | None   # None: G's P(D) could not be fitted (``fit_error`` says why)
    verdict: Verdict
    out_dir: Path
    config: EfficiencyConfig
    controls: dict   # the P1 rule's false accept and false reject on this run's design
    fit_error: str | None = None

    def verdict_table(self) -> pd.DataFrame:
        """The rows the P1 rule reads (:func:`verdict_table`)."""
        return verdict_table(self.rows)


# ---------------------------------------------------------------------------------------------
# Steps: train (or reuse) each circuit's batch, measure each network, fit, write.
# ---------------------------------------------------------------------------------------------


def _load_ladder(path: Path, key: dict[str, object]) -> dict | None:
    """A saved ladder for this key, or None (absent, or from other settings: redone)."""
    if not path.is_file():
        return None
    try:
        saved = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - any unreadable file is the same one-line error
        raise RunError(f"{path} is unreadable ({type(exc).__name__}); delete it to redo the settling") from None
    return saved if saved.get("key") == key else None


def _save_ladder(path: Path, key: dict[str, object], done: int, params: dict, rows: list[dict]) -> None:
    buffer = io.BytesIO()
    torch.save({"key": key, "done": done, "params": params, "rows": rows}, buffer)
    atomic_write_bytes(path, buffer.getvalue())


def _rows_of_rung(circuit: str, train_config: TrainConfig, params: dict, traces: list[SettleTrace],
                  diverged: list[bool], settled_from: list[int]) -> list[dict]:
    """The measurements of one rung (the flags come later, from the config's thresholds)."""
    rows = []
    for m, trace in zip(analyse_params(train_config, params, 0), traces, strict=True):
        r = m.to_row()
        rows.append({
            "circuit": circuit, "D": m.train_size, "weight_decay": trace.alpha, "seed": m.seed,
            "model": m.model, "evaluations": trace.evaluations, "param_norm": m.param_norm,
            "correct_logit": m.correct_logit_train, "correct_logit_test": m.correct_logit_test,
            "trig_share": m.trig_share, "trig_train": r["trig_train"], "mem_train": r["mem_train"],
            "trig_test": r["trig_test"], "mem_test": r["mem_test"], "train_acc": m.train_acc,
            "test_acc": m.test_acc, "key_frequencies": r["key_frequencies"],
            "norm_drift": trace.norm_drift, "stationarity": trace.stationarity,
            "diverged": diverged[m.model], "settled_from": settled_from[m.model],
        })
    return rows


def with_flags(config: EfficiencyConfig, row: dict) -> dict:
    """``row`` with ``converged`` and ``accepted`` from the config's thresholds."""
    ok = not row["diverged"]
    converged = ok and row["norm_drift"] < config.convergence_tol
    # No accuracy requirement: at a large alpha a network may settle below perfect training
    # accuracy, and its (norm, logit) point is still a point on its circuit's curve. A
    # positive correct logit is needed for the log-log fit.
    single_circuit = ok and row["correct_logit"] > 0 and (
        row["circuit"] == "M" or row["trig_share"] > config.g_only_share)
    accepted = single_circuit and (converged or not config.require_convergence)
    return {**row, "converged": bool(converged), "accepted": bool(accepted)}


def _climb(config: EfficiencyConfig, circuit: str, train_config: TrainConfig, start: dict, diverged: list[bool],
           settled_from: list[int], ladder_file: Path, key: dict, progress: bool) -> list[dict]:
    """Climb the alpha ladder for every model of ``train_config`` from ``start`` (resuming)."""
    saved = _load_ladder(ladder_file, key)
    done, params, rows = (saved["done"], saved["params"], saved["rows"]) if saved else (0, start, [])
    dataset = make_dataset(train_config.task)
    E = train_config.n_models
    with bar_of(total=len(config.alphas) * E, initial=done * E, desc=f"settle {circuit}", unit="model",
              disable=not progress, dynamic_ncols=True) as bar:
        for i in range(done, len(config.alphas)):
            params, traces = settle(params, dataset, train_config, config.alphas[i], config.settle_iterations,
                                    on_model=lambda _k: bar.update(1))
            rows = rows + _rows_of_rung(circuit, train_config, params, traces, diverged, settled_from)
            _save_ladder(ladder_file, key, i + 1, params, rows)
    return rows


def settle_and_measure(config: EfficiencyConfig, circuit: str, run_dir: Path, *,
                       progress: bool = True) -> list[dict]:
    """Climb the alpha ladder from the trained run's final weights (resuming a saved ladder)
    and measure every network at every rung (rows without the flags: :func:`with_flags`).
    For G with ``g_subset_sizes``, also the subset copies of the largest-D networks."""
    state = load_checkpoint(run_dir / CHECKPOINT_NAME)
    train_config = state.config
    diverged = [d is not None for d in state.diverged]
    sizes = [r.train_size for r in train_config.runs]
    rows = _climb(config, circuit, train_config, state.params, diverged, sizes, run_dir / LADDER_NAME,
                  config.settle_key(circuit), progress)
    if circuit != "G" or not config.g_subset_sizes:
        return rows
    # every network trained at the largest G size, once per subset size (same seed and data seed)
    top = max(config.g_train_sizes)
    sources = [k for k, r in enumerate(train_config.runs) if r.train_size == top]
    pairs = [(d, k) for d in config.g_subset_sizes for k in sources]
    subset_config = replace(train_config, runs=tuple(
        RunSpec(seed=train_config.runs[k].seed, weight_decay=train_config.runs[k].weight_decay, train_size=int(d),
                data_seed=train_config.runs[k].data_seed) for d, k in pairs))
    index = torch.tensor([k for _, k in pairs])
    start = {n: p[index].clone() for n, p in state.params.items()}
    key = {**config.settle_key(circuit), "subsets": list(config.g_subset_sizes)}
    return rows + _climb(config, circuit, subset_config, start, [diverged[k] for _, k in pairs],
                         [top] * len(pairs), run_dir / SUBSET_LADDER_NAME, key, progress)


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
    enough = two_seeds_per_D(kept)
    for (c, d), _ in kept[~enough].groupby(["circuit", "D"]):
        dropped.append({"circuit": c, "D": int(d), "seed": None, "why": "fewer than two seeds with two accepted networks"})
    return kept[enough], dropped


def _why_empty(config: EfficiencyConfig, rows: pd.DataFrame, kept: pd.DataFrame) -> str:
    """Which circuit has no usable network and why (G-only share, convergence), or ''."""
    parts = []
    for c in CIRCUITS:
        if (kept["circuit"] == c).any():
            continue
        sub = rows[rows["circuit"] == c]
        why = (f"no {c} stripe is usable (a D needs two seeds with two accepted rungs each; "
               f"{int(sub['accepted'].sum())} of {len(sub)} network-rungs accepted")
        if c == "G":
            why += (f"; trig share at most {sub['trig_share'].max():.3g}, G-only needs > "
                    f"{config.g_only_share:g}")
        why += f"; {int(sub['converged'].sum())} converged, norm drift < {config.convergence_tol:g})"
        parts.append(why)
    return "; ".join(parts)


def verdict_table(rows: pd.DataFrame) -> pd.DataFrame:
    """The accepted rows that the fit uses (:func:`fit_rows`) with the columns of
    :data:`circeff.analysis.verdicts.P1_COLUMNS` (``alpha`` is the ladder's L2 coefficient,
    ``logit`` the label-centred correct logit)."""
    kept, _ = fit_rows(rows)
    out = kept.rename(columns={"weight_decay": "alpha", "correct_logit": "logit"})
    return out[list(P1_COLUMNS)].reset_index(drop=True)


def run_efficiency(config: EfficiencyConfig, out_dir: Path, *, progress: bool = True,
                   resume: bool = True, trainer: Trainer | None = None, controls_n: int = 100) -> EfficiencyResult:
    """Train (or reuse) the M-only and G-only batches, measure, fit and decide P1. Writes only
    the training runs and ladders; :func:`write_efficiency` writes the table, JSON and figures.
    ``controls_n`` synthetic tables per truth measure the rule's power on this run's design
    (:func:`circeff.analysis.controls.p1_on_its_design`), which decides whether G is judged.

    When G's accepted networks are too few to fit P(D) but M's are not, P1 is still decided
    (G's part undecidable, M's a result): ``analysis`` is then None and ``fit_error`` says why.

    Raises:
        RunError: training failed, or too few M networks were accepted for the fit (then the
            table, efficiency.json saying why and the measured points are written first).
        ConfigError: a bad config.
    """
    out = ensure_dir(out_dir)
    all_rows: list[dict] = []
    for circuit in CIRCUITS:
        run_dir = out / circuit
        train_or_reuse(config.train_config(circuit), run_dir, progress=progress, resume=resume, trainer=trainer)
        if not resume:
            (run_dir / LADDER_NAME).unlink(missing_ok=True)
            (run_dir / SUBSET_LADDER_NAME).unlink(missing_ok=True)
        all_rows += [with_flags(config, r) for r in settle_and_measure(config, circuit, run_dir, progress=progress)]
    rows = pd.DataFrame(all_rows, columns=ROW_COLUMNS)
    accepted, _ = fit_rows(rows)
    fit_error = None
    try:
        analysis = analyse_efficiency(accepted, intercepts="D_seed", level=config.level,
                                      n_boot=config.n_boot, seed=config.analysis_seed)
    except ConfigError as exc:
        error = f"the P1 fit is impossible on the accepted networks: {_why_empty(config, rows, accepted) or exc}"
        if accepted.loc[accepted["circuit"] == "M", "D"].nunique() < 2:
            _write_failed(config, rows, out, error)
            raise RunError(f"{error} (counts {_counts(rows)}; see {out / 'efficiency.csv'})") from None
        # G's networks that stayed G-only are too few to fit P(D): G is undecidable, but M's
        # part is still a result, so the rule decides on what there is
        analysis, fit_error = None, error
    # G's part is judged only on a design with the power to judge it, measured on this design
    controls, verdict = p1_on_its_design(verdict_table(rows), n=controls_n, level=config.level)
    if fit_error is not None:
        verdict = replace(verdict, reason=f"{verdict.reason}; {fit_error} (counts {_counts(rows)})")
    return EfficiencyResult(rows=rows, analysis=analysis, verdict=verdict, out_dir=out, config=config,
                            controls=controls, fit_error=fit_error)


def _summary(config: EfficiencyConfig, rows: pd.DataFrame) -> dict[str, object]:
    return {"config": config.to_dict(), "counts": _counts(rows), "intercepts": "D_seed",
            "convergence": {"tol": config.convergence_tol,
                            "rule": "not diverged in training and the norm moved by less than tol "
                                    "(relative) over the last quarter of the rung's L-BFGS evaluations"},
            "left_out_of_fit": fit_rows(rows)[1]}


def _write_failed(config: EfficiencyConfig, rows: pd.DataFrame, out: Path, error: str) -> None:
    """What a failed fit leaves to look at: the table, the reason, and the measured points."""
    write_csv(out / "efficiency.csv", rows.to_dict("records"), fieldnames=ROW_COLUMNS)
    write_json(out / "efficiency.json", to_plain({**_summary(config, rows), "error": error}))
    single = rows[rows["accepted"]]
    if set(single["circuit"]) == set(CIRCUITS):
        save_figure(plot_logit_vs_norm(single), out / "fig3_logit_vs_norm.png")


def efficiency_figures(result: EfficiencyResult) -> dict[str, Figure]:
    """Figure 3 (logit against norm, with the fitted lines) and P(D) with its trends, by file
    name; without a fit, Figure 3's measured points alone."""
    accepted, analysis = fit_rows(result.rows)[0], result.analysis
    if analysis is None:
        return {"fig3_logit_vs_norm.png": plot_logit_vs_norm(result.rows[result.rows["accepted"]])}
    lines = pd.concat([fitted_lines(analysis.fit_M, accepted), fitted_lines(analysis.fit_G, accepted)],
                      ignore_index=True)
    return {"fig3_logit_vs_norm.png": plot_logit_vs_norm(accepted, lines),
            "efficiency_P_of_D.png": plot_efficiency(analysis, result.verdict)}


def write_efficiency(result: EfficiencyResult) -> None:
    """``efficiency.csv``, ``efficiency.json`` and the figures, in the run's out folder."""
    out, analysis = result.out_dir, result.analysis
    write_csv(out / "efficiency.csv", result.rows.to_dict("records"), fieldnames=ROW_COLUMNS)
    fits = {"error": result.fit_error} if analysis is None else {
        "fit_G": analysis.fit_G.to_dict(), "fit_M": analysis.fit_M.to_dict(),
        "trend_G": analysis.trend_G.to_dict(), "trend_M": analysis.trend_M.to_dict(),
        "crossover": analysis.crossover.to_dict(), "P_of_D": per_D_table(analysis).to_dict("records")}
    write_json(out / "efficiency.json", to_plain({
        **_summary(result.config, result.rows), "verdict": result.verdict.to_dict(), "controls": result.controls,
        **fits}))
    save_figures(efficiency_figures(result), out)


def describe(result: EfficiencyResult) -> list[str]:
    """Human-readable lines: P(D) per circuit with intervals, kappa, D_crit, the verdict."""
    a, v = result.analysis, result.verdict
    if a is None:
        lines = [f"no P(D) fit: {result.fit_error}"]
    else:
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
    n = v.numbers
    lines.append(f"P1 {v.outcome} (M part {n.get('outcome_M', '?')}, G part {n.get('outcome_G', '?')}): {v.reason}")
    projection = power_projection(result.controls)
    if projection:
        lines.append(projection)
    return lines


def power_projection(controls: dict | None) -> str:
    """Where the run's design lacks the power to judge G: the power the same noise would give
    with several times the kept networks (``seeds_for_power`` of the controls entry: M's seeds
    and G's kept (D, seed) stripes repeated with fresh seeds), in words."""
    scan = (controls or {}).get("seeds_for_power")
    if not scan:
        return ""
    cells = (controls.get("design") or {}).get("G_cells")
    kept = f" ({len(cells)} kept G stripes)" if cells else ""
    tried = ", ".join(f"{t['copies']}x: power {1 - t['false_reject']['value']:.2f}, false accept "
                      f"{t['false_accept']['value']:.2f}" for t in scan["tried"])
    first = scan["first_meeting_targets"]
    return (f"power projection (this run's noise, its kept networks{kept} repeated with fresh seeds): {tried}; "
            + (f"the targets are first met at {first}x the kept networks" if first is not None
               else "no multiple tried meets the targets"))
