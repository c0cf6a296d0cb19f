"""Weight allocation between G and M: Theorem D.4 where its assumptions hold, and Figure 10's
shared-parameter networks moved to a minimum of the objective the theorem is about.

Two experiments, both at the minimum of ``CE + (alpha/2)||theta||^2`` (L-BFGS), not at an
AdamW endpoint (at tiny loss AdamW's equilibrium is set by its ``eps``; see
:mod:`circeff.empirical.settle`):

**Disjoint pair** (:func:`run_disjoint`). For every (D, seed): the M circuit is a network
trained with AdamW on D random-label pairs (prediction P1's memorisation-only network); the G
circuit is a network trained on the full dataset (Figure 10's base network, which has
generalised). Each combined example pairs an M training pair with a G pair of the same label
(:mod:`circeff.empirical.disjoint`). Then

1. each circuit ALONE on those D examples is settled along the alpha ladder (smallest first),
   giving per circuit and rung a (norm, correct logit) point; the fit
   ``logit = (norm / P)^kappa`` per circuit (:mod:`circeff.analysis.allocation`) gives
   P(D) per circuit and a per-circuit kappa. G is therefore measured at the same small D as
   M: a G-initialised network settled on the D examples (its trig share is recorded, so a G
   network that turned to memorising is visible);
2. the pair is settled at ``pair_alpha`` from several starting splits (each circuit's weights
   from its own rung at ``pair_alpha``, multiplied by ``(scale_G, scale_M)``). Rows:
   objective, each circuit's correct logit, norms, drift.

**Figure 10 settled** (:func:`settle_fig10`): every Figure 10 network (AdamW endpoint) is
settled along the same ladder with :func:`circeff.empirical.settle.settle`, and its G and M
proxies (Appendix B) are measured at every rung beside the AdamW endpoint.

Outputs: ``disjoint_alone.csv``, ``disjoint_pair.csv`` (and ``cells/`` with one finished
(D, seed) per file, so an interrupted run resumes), ``fig10_settled.csv``.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from matplotlib.figure import Figure

from circeff.analysis.allocation import (
    allocation_curves,
    allocation_verdict,
    compare_dcrit,
    compare_disjoint,
    fit_alone,
    operating_crossover,
    stripe_log_P,
)
from circeff.analysis.efficiency import fit_circuit, two_seeds_per_D
from circeff.analysis.plots import plot_allocation_curves, save_figures
from circeff.analysis.stats import Interval, to_plain
from circeff.empirical.checkpoint import has_checkpoint, load_checkpoint
from circeff.empirical.circuits import analyse_params
from circeff.empirical.config import TrainConfig
from circeff.empirical.disjoint import (
    CircuitInputs,
    paired_g_inputs,
    settle_alone,
    settle_pair,
    single_model_trig_share,
)
from circeff.empirical.experiments.efficiency import QUICK_P1
from circeff.empirical.experiments.predictions_common import QUICK, BaseConfig, quick_base, train_base, train_or_reuse
from circeff.empirical.settle import settle
from circeff.empirical.tasks import TaskConfig, make_dataset, train_indices
from circeff.errors import ConfigError
from circeff.thresholds import CONFIDENCE_LEVEL, G_ONLY_TRIG_SHARE, N_BOOT
from circeff.io import atomic_write_bytes, ensure_dir, write_csv, write_json
from circeff.validate import integer_at_least, positive

__all__ = ["AllocationConfig", "DisjointConfig", "analyse_allocation", "run_disjoint", "settle_fig10"]

ALONE_COLUMNS = ["circuit", "D", "seed", "alpha", "param_norm", "correct_logit", "train_acc", "ce",
                 "norm_drift", "trig_share"]
PAIR_COLUMNS = ["D", "seed", "alpha", "scale_G", "scale_M", "objective", "ce", "g_logit", "m_logit",
                "g_norm", "m_norm", "norm_drift", "accuracy"]


@dataclass(frozen=True)
class DisjointConfig:
    """The disjoint-pair experiment (module docstring).

    Attributes:
        base: the G networks (trained on the full dataset; one per seed).
        sizes: the D of the pairs (M trained on D random-label pairs).
        g_only_sizes: further D where only the G circuit is settled alone (no pair), so that
            G is measured over a D range overlapping M's even where a G network settled on few
            examples stops being G.
        seeds: which seeds (the G network of that seed, the M network of that seed).
        m_steps, m_lr, m_weight_decay: the M networks' AdamW run.
        alphas: the settle ladder (kappa comes from the spread over it).
        pair_alpha: the L2 coefficient of the pair's settle (one of ``alphas``).
        splits: starting ``(scale_G, scale_M)`` factors of the pair.
        iterations: L-BFGS iterations per circuit and rung, and per pair start.
        label_seed: the random labels of M.
    """

    base: BaseConfig = field(default_factory=quick_base)
    sizes: tuple[int, ...] = (40, 80, 160)
    g_only_sizes: tuple[int, ...] = (320, 480)
    seeds: tuple[int, ...] = (0, 1)
    # P1's memorisation-only networks are these, trained the same way (so the stage reuses them)
    m_steps: int = QUICK_P1.steps
    m_lr: float = QUICK_P1.lr
    m_weight_decay: float = QUICK_P1.weight_decay
    alphas: tuple[float, ...] = (1e-3, 1e-2)
    pair_alpha: float = 1e-3
    splits: tuple[tuple[float, float], ...] = ((1.0, 0.5), (0.5, 1.0))
    iterations: int = 60
    label_seed: int = 0

    def __post_init__(self) -> None:
        n = self.base.p**2
        for d in self.sizes:
            integer_at_least("sizes", d, 1)
            if d > n:
                raise ConfigError("sizes", f"must be <= {n} = p^2", d)
        object.__setattr__(self, "sizes", tuple(sorted(set(self.sizes))))
        for d in self.g_only_sizes:
            integer_at_least("g_only_sizes", d, 1)
            if d > n:
                raise ConfigError("g_only_sizes", f"must be <= {n} = p^2", d)
        object.__setattr__(self, "g_only_sizes", tuple(sorted(set(self.g_only_sizes) - set(self.sizes))))
        missing = [s for s in self.seeds if s not in self.base.seeds]
        if missing:
            raise ConfigError("seeds", f"must be among the base seeds {list(self.base.seeds)}", missing)
        for a in self.alphas:
            positive("alphas", a)
        object.__setattr__(self, "alphas", tuple(sorted(float(a) for a in self.alphas)))
        if float(self.pair_alpha) not in self.alphas:
            raise ConfigError("pair_alpha", f"must be one of alphas {list(self.alphas)}", self.pair_alpha)
        for sg, sm in self.splits:
            positive("splits", sg)
            positive("splits", sm)
        integer_at_least("iterations", self.iterations, 1)
        integer_at_least("m_steps", self.m_steps, 1)
        positive("m_lr", self.m_lr)

    def m_train_config(self) -> TrainConfig:
        task = TaskConfig(name="add", p=self.base.p, random_labels=True, label_seed=self.label_seed)
        return TrainConfig.grid(task, self.seeds, weight_decays=(self.m_weight_decay,), train_sizes=self.sizes,
                                data_seed=0, model=self.base.model, steps=self.m_steps, lr=self.m_lr,
                                log_every=50, checkpoint_every=500, device=self.base.device)

    def to_dict(self) -> dict[str, object]:
        return asdict(self)


@dataclass(frozen=True)
class AllocationConfig:
    """The allocation stage of ``circeff reproduce``: the disjoint pair, Figure 10's networks
    settled, and the comparisons (:func:`analyse_allocation`).

    Attributes:
        disjoint: the disjoint-pair experiment (its ``base`` is replaced by the run's base
            networks, so the G circuits are Figure 10's and ungrokking's networks).
        fig10_alphas: the ladder Figure 10's networks are settled along (smallest first).
        fig10_iterations: L-BFGS iterations per rung for Figure 10's networks.
        state_alpha: the rung whose settled ratios are compared with the predictions.
        g_only_share: a G circuit settled alone enters the operating crossover only where
            its trig share exceeds this at every rung (the paper's Section 5.1 criterion for a
            G-only network), so the crossover compares a generalising circuit with a memorising
            one.
        n_boot, level: the bootstraps of the comparisons.
    """

    disjoint: DisjointConfig = field(default_factory=DisjointConfig)
    fig10_alphas: tuple[float, ...] = (1e-3,)
    fig10_iterations: int = 60
    state_alpha: float = 1e-3
    g_only_share: float = G_ONLY_TRIG_SHARE
    n_boot: int = 500
    level: float = CONFIDENCE_LEVEL

    def __post_init__(self) -> None:
        for a in self.fig10_alphas:
            positive("fig10_alphas", a)
        object.__setattr__(self, "fig10_alphas", tuple(sorted(float(a) for a in self.fig10_alphas)))
        if float(self.state_alpha) not in self.fig10_alphas:
            raise ConfigError("state_alpha", f"must be one of fig10_alphas {list(self.fig10_alphas)}",
                              self.state_alpha)
        integer_at_least("fig10_iterations", self.fig10_iterations, 1)
        integer_at_least("n_boot", self.n_boot, 50)

    # the presets table reads P, model and steps through ``base``
    @property
    def base(self) -> BaseConfig:
        return self.disjoint.base

    @property
    def seeds(self) -> tuple[int, ...]:
        return self.disjoint.seeds

    def on_base(self, base: BaseConfig) -> DisjointConfig:
        """The disjoint experiment on ``base``'s networks."""
        return replace(self.disjoint, base=base)

    def to_dict(self) -> dict[str, object]:
        return asdict(self)


def _model(params: dict, k: int) -> dict:
    return {n: t[k:k + 1].detach().clone() for n, t in params.items()}


def _cell(config: DisjointConfig, d: int, seed: int, g_params: dict, m_params: dict | None) -> dict:
    """One (D, seed): both circuits alone along the ladder, then the pair from every split
    (``m_params`` None: G alone on D true-label pairs, no pair)."""
    p = config.base.p
    m_task = TaskConfig(name="add", p=p, random_labels=True, label_seed=config.label_seed)
    g_task = TaskConfig(name="add", p=p)
    data = make_dataset(m_task if m_params is not None else g_task)
    idx = train_indices(len(data), d, 0)
    labels = torch.from_numpy(data.labels[idx].copy())
    m_in = CircuitInputs(torch.from_numpy(data.a[idx].copy()), torch.from_numpy(data.b[idx].copy()), labels)
    if m_params is None:
        g_in, circuits = m_in, (("G", g_params, m_in),)
    else:
        ga, gb = paired_g_inputs(labels.numpy(), p, seed=1000 * seed + d)
        g_in = CircuitInputs(torch.from_numpy(ga), torch.from_numpy(gb), labels)
        circuits = (("G", g_params, g_in), ("M", m_params, m_in))
    alone, at_pair = [], {}
    for circuit, params, inputs in circuits:
        for r in settle_alone(params, inputs, g_task, config.alphas, config.iterations):
            share = single_model_trig_share(r["params"], g_task) if circuit == "G" else float("nan")
            if r["alpha"] == config.pair_alpha:
                at_pair[circuit] = r["params"]
            alone.append({"circuit": circuit, "D": d, "seed": seed, "trig_share": share,
                          **{k: v for k, v in r.items() if k != "params"}})
    if m_params is None:
        return {"alone": alone, "pair": []}
    pair = [{"D": d, "seed": seed, "alpha": config.pair_alpha, **asdict(s)}
            for s in settle_pair(at_pair["G"], at_pair["M"], g_in, m_in, g_task, config.pair_alpha,
                                 config.iterations, config.splits)]
    return {"alone": alone, "pair": pair}


def _m_models(config: DisjointConfig, m_source: Path | None) -> tuple[Path, dict[tuple[int, int], int]] | None:
    """A finished run in ``m_source`` holding every M network the experiment needs, trained
    exactly as :meth:`DisjointConfig.m_train_config` would (P1's memorisation-only networks
    are): its folder and the model index per (D, seed); ``None`` when it does not hold them."""
    if m_source is None or not has_checkpoint(m_source) or not (Path(m_source) / "summary.json").is_file():
        return None
    have = load_checkpoint(m_source).config
    want = config.m_train_config()
    same = ("task", "model", "steps", "lr", "beta1", "beta2", "eps")
    if any(getattr(have, f) != getattr(want, f) for f in same):
        return None
    index = {(r.train_size, r.seed, r.weight_decay, r.data_seed): k for k, r in enumerate(have.runs)}
    found = {}
    for r in want.runs:
        k = index.get((r.train_size, r.seed, r.weight_decay, r.data_seed))
        if k is None:
            return None
        found[(r.train_size, r.seed)] = k
    return Path(m_source), found


def run_disjoint(config: DisjointConfig, out_dir: str | Path, *, progress: bool = True,
                 base_dir: str | Path | None = None, m_source: str | Path | None = None,
                 trainer=None) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Train (or reuse) the G base and the M networks, then every (D, seed) cell (resumable).

    ``m_source``: a finished run of memorisation-only networks (P1's ``M`` folder) reused when
    it holds every (D, seed) trained the same way; otherwise they are trained in ``out/M``."""
    out = ensure_dir(out_dir)
    base = train_base(config.base, Path(base_dir) if base_dir else out / "base", progress=progress, trainer=trainer)
    g_all = load_checkpoint(base.run_dir).params
    m_config = config.m_train_config()
    reuse = _m_models(config, Path(m_source) if m_source else None)
    if reuse is None:
        train_or_reuse(m_config, out / "M", progress=progress, resume=True, trainer=trainer)
        reuse = (out / "M", {(r.train_size, r.seed): k for k, r in enumerate(m_config.runs)})
    m_dir, m_index = reuse
    m_all = load_checkpoint(m_dir).params
    cells = ensure_dir(out / "cells")
    key = json.dumps(config.to_dict(), sort_keys=True, default=str)
    alone, pair = [], []
    todo = [(r.train_size, r.seed, True) for r in m_config.runs]
    todo += [(d, s, False) for d in config.g_only_sizes for s in config.seeds]
    for d, seed, paired in todo:
        path = cells / (f"D{d}_seed{seed}.json" if paired else f"G_D{d}_seed{seed}.json")
        saved = json.loads(path.read_text()) if path.is_file() else None
        if saved is None or saved.get("key") != key:
            g = _model(g_all, config.base.seeds.index(seed))
            cell = _cell(config, d, seed, g, _model(m_all, m_index[(d, seed)]) if paired else None)
            saved = {"key": key, **cell}
            atomic_write_bytes(path, json.dumps(saved).encode())
            if progress:
                print(f"disjoint D={d} seed={seed}{'' if paired else ' (G alone)'} done", flush=True)
        alone += saved["alone"]
        pair += saved["pair"]
    write_csv(out / "disjoint_alone.csv", alone, fieldnames=ALONE_COLUMNS)
    write_csv(out / "disjoint_pair.csv", pair, fieldnames=PAIR_COLUMNS)
    return pd.DataFrame(alone, columns=ALONE_COLUMNS), pd.DataFrame(pair, columns=PAIR_COLUMNS)


FIG10_SETTLED_COLUMNS = ["D", "seed", "model", "state", "alpha", "g_logit", "m_logit", "correct_logit",
                         "param_norm", "trig_share", "train_acc", "test_acc", "norm_drift", "stationarity"]


def settle_fig10(run_dir: str | Path, alphas: tuple[float, ...], iterations: int, out_csv: str | Path | None = None,
                 *, progress: bool = True) -> pd.DataFrame:
    """Each Figure 10 network (AdamW endpoint in ``run_dir``) settled along ``alphas``
    (smallest first, warm-started), with its G and M proxies at the endpoint and every rung.

    ``state`` is ``"adamw"`` (alpha nan) or ``"settled"``."""
    state = load_checkpoint(Path(run_dir))
    config: TrainConfig = state.config
    dataset = make_dataset(config.task)
    rows = []

    def measure(params: dict, label: str, alpha: float, traces=None) -> None:
        for m in analyse_params(config, params, 0):
            t = traces[m.model] if traces else None
            rows.append({"D": m.train_size, "seed": m.seed, "model": m.model, "state": label, "alpha": alpha,
                         "g_logit": m.proxies.trig_train, "m_logit": m.proxies.mem_train,
                         "correct_logit": m.correct_logit_train, "param_norm": m.param_norm,
                         "trig_share": m.trig_share, "train_acc": m.train_acc, "test_acc": m.test_acc,
                         "norm_drift": t.norm_drift if t else float("nan"),
                         "stationarity": t.stationarity if t else float("nan")})

    params = state.params
    measure(params, "adamw", float("nan"))
    for alpha in sorted(alphas):
        params, traces = settle(params, dataset, config, alpha, iterations)
        measure(params, "settled", float(alpha), traces)
        if progress:
            print(f"fig10 settled at alpha={alpha:g}", flush=True)
    df = pd.DataFrame(rows, columns=FIG10_SETTLED_COLUMNS)
    if out_csv is not None:
        write_csv(Path(out_csv), df.to_dict("records"), fieldnames=FIG10_SETTLED_COLUMNS)
    return df


def _fig10_table(rows: pd.DataFrame) -> list[dict]:
    """Median G:M ratio (min, max over seeds) per D and state (AdamW endpoint, each settled alpha)."""
    df = rows[(rows["g_logit"] > 0) & (rows["m_logit"] > 0)].assign(ratio=lambda d: d["g_logit"] / d["m_logit"])
    out = []
    for (state, alpha, d), g in df.groupby(["state", df["alpha"].fillna(0.0), "D"]):
        out.append({"state": state, "alpha": float(alpha) if state == "settled" else None, "D": float(d),
                    "ratio_median": float(g["ratio"].median()), "ratio_min": float(g["ratio"].min()),
                    "ratio_max": float(g["ratio"].max()), "total_logit": float((g["g_logit"] + g["m_logit"]).median()),
                    "trig_share": float(g["trig_share"].median()), "n": int(len(g))})
    return out


def accepted_g(alone: pd.DataFrame, min_share: float) -> pd.DataFrame:
    """The rows of G stripes (D, seed) whose trig share exceeds ``min_share`` at every rung,
    and every M row: the circuits the operating crossover compares."""
    g = alone[alone["circuit"] == "G"]
    ok = g.groupby(["D", "seed"])["trig_share"].min() > min_share
    keep = {k for k, v in ok.items() if v}
    mask = (alone["circuit"].to_numpy() == "M") | np.array([(d, s) in keep for d, s in zip(alone["D"], alone["seed"])],
                                                            dtype=bool)
    return alone[mask]


@dataclass(frozen=True, eq=False)
class AllocationAnalysis:
    """What :func:`analyse_allocation` computed; :attr:`summary` is its JSON form."""

    disjoint: object                 # circeff.analysis.allocation.DisjointComparison
    fit_alone: object                # the P1 fit of the circuits settled alone
    kappa_G: object                  # Interval: kappa of the G stripes that are G-only
    g_rows: pd.DataFrame             # those stripes' rows
    stripes: pd.DataFrame            # stripe log P of both circuits
    curves: dict                     # state -> AllocationCurves
    verdicts: dict                   # state -> Verdict
    crossings: dict                  # name -> OperatingCrossover
    width_sources: dict              # name -> Interval of the settled crossover with one source fixed
    dcrit_comparison: dict
    dcrit_ungrokking: object | None  # Interval or None
    fig10_rows: pd.DataFrame
    state_alpha: float
    g_only_share: float

    @property
    def verdict(self):  # noqa: ANN201 - the Verdict on the settled states
        return self.verdicts["settled"]

    def curves_input(self, state: str) -> pd.DataFrame:
        """The Figure 10 rows whose ratios the curves of ``state`` (``adamw`` or ``settled``) read."""
        return state_rows(self.fig10_rows, state, self.state_alpha)

    @property
    def summary(self) -> dict:
        return to_plain({
            "disjoint": self.disjoint.to_dict(),
            "fit_alone": {"G": self.fit_alone.fit_G.to_dict(), "M": self.fit_alone.fit_M.to_dict()},
            "kappa_G_generalising": self.kappa_G, "g_only_share": self.g_only_share,
            "g_stripes_used": sorted({(float(d), int(s)) for d, s in zip(self.g_rows["D"], self.g_rows["seed"])}),
            "stripes": self.stripes.to_dict("records"),
            "curves": {k: c.to_dict() for k, c in self.curves.items()},
            "verdicts": {k: v.to_dict() for k, v in self.verdicts.items()},
            "crossover": {k: c.to_dict() for k, c in self.crossings.items()},
            "dcrit_ungrokking": self.dcrit_ungrokking.to_dict() if self.dcrit_ungrokking is not None else None,
            "dcrit_comparison": self.dcrit_comparison, "state_alpha": self.state_alpha,
            "crossover_width_sources": {k: v.to_dict() for k, v in self.width_sources.items()},
            "fig10": _fig10_table(self.fig10_rows)})


def state_rows(fig10_rows: pd.DataFrame, state: str, state_alpha: float) -> pd.DataFrame:
    """Figure 10's rows at the AdamW endpoint (``adamw``) or settled at ``state_alpha`` (``settled``)."""
    keep = fig10_rows["state"] == state
    if state == "settled":
        keep &= fig10_rows["alpha"] == state_alpha
    return fig10_rows[keep].reset_index(drop=True)


def analyse_allocation(alone: pd.DataFrame, pair: pd.DataFrame, fig10_rows: pd.DataFrame, *,
                       n_classes: int, state_alpha: float, g_only_share: float = G_ONLY_TRIG_SHARE,
                       dcrit_ungrokking: Interval | None = None, level: float = CONFIDENCE_LEVEL, n_boot: int = N_BOOT,
                       seed: int = 0) -> AllocationAnalysis:
    """Every comparison of the allocation experiments (:func:`write_allocation` writes them to
    ``allocation_d4.json`` and ``allocation_curves.png``):

    * the disjoint D.4 test (:func:`circeff.analysis.allocation.compare_disjoint`), on every
      settled pair whatever its circuits became;
    * Figure 10's ratios at the AdamW endpoint and settled at ``state_alpha`` (per D);
    * both predicted curves against each (:mod:`circeff.analysis.allocation`), and the
      verdict on the settled states;
    * the crossover at the settled and the AdamW operating logit (and at a unit logit), beside
      ``dcrit_ungrokking`` if given.

    The curves and the crossovers use G only where it is a generalising circuit: stripes whose
    trig share exceeds ``g_only_share`` at every rung (:func:`accepted_g`), with kappa_G
    refitted on them; kappa_M and M's stripes are all of M's.
    """
    fit = fit_alone(alone, level=level, n_boot=n_boot, seed=seed)
    kappas = {"G": fit.fit_G.kappa.value, "M": fit.fit_M.kappa.value}
    if not all(np.isfinite(k) and k > 0 for k in kappas.values()):
        # D.4 is stated for kappa > 0: a logit that does not grow with the norm leaves nothing to predict
        raise ConfigError("kappa", "Theorem D.4 needs kappa > 0 for both circuits settled alone; fitted "
                          f"kappa_G {kappas['G']:.3g}, kappa_M {kappas['M']:.3g}", kappas)
    used = accepted_g(alone, g_only_share)
    g_rows = used[(used["circuit"] == "G") & (used["correct_logit"] > 0)].rename(columns={"alpha": "weight_decay"})
    # kappa_G's fit has an intercept per (D, seed) stripe and needs two seeds at each D: a D
    # where only one seed stayed G-only is left out, as P1's fit leaves it out
    g_rows = g_rows[two_seeds_per_D(g_rows)]
    if g_rows.empty:
        # how many seeds stayed G-only at each D says how far the design was from two (the
        # largest trig share anywhere does not: it can pass the threshold at one rung only)
        g_all = alone[alone["circuit"] == "G"]
        kept = used[used["circuit"] == "G"].groupby("D")["seed"].nunique()
        per_D = {f"{d:g}": int(kept.get(d, 0)) for d in sorted(g_all["D"].unique())}
        raise ConfigError("g_only_share", "needs a D with two G circuits settled alone whose trig share stays "
                          f"above {g_only_share:g} at every rung; G-only seeds per D", per_D)
    disjoint = compare_disjoint(alone, pair, n_classes=n_classes, level=level, n_boot=n_boot, seed=seed, analysis=fit)
    kappa_G = fit_circuit(g_rows, "G", intercepts="D_seed", level=level).kappa
    kappa_M = fit.fit_M.kappa
    stripes = stripe_log_P(used, kappa_G.value, kappa_M.value)
    states = {k: state_rows(fig10_rows, k, state_alpha) for k in ("adamw", "settled")}
    curves = {k: allocation_curves(stripes, kappa_G, kappa_M, v, level=level, n_boot=n_boot, seed=seed)
              for k, v in states.items()}
    verdicts = {k: allocation_verdict(c) for k, c in curves.items()}
    s_op = {k: float(np.median(v["g_logit"] + v["m_logit"])) for k, v in states.items()}
    crossings = {f"operating_{k}": operating_crossover(stripes, kappa_G, kappa_M, s_op[k], level=level,
                                                       n_boot=n_boot, seed=seed) for k in states}
    crossings["unit_logit"] = operating_crossover(stripes, kappa_G, kappa_M, 1.0, level=level, n_boot=n_boot, seed=seed)
    # where the settled crossover's width comes from: the stripes alone, the kappas alone
    fixed = {c: Interval(k.value, k.value, k.value, k.level, "fixed") for c, k in (("G", kappa_G), ("M", kappa_M))}
    width_sources = {
        "stripes_only": operating_crossover(stripes, fixed["G"], fixed["M"], s_op["settled"], level=level,
                                            n_boot=n_boot, seed=seed).D_crit,
        "kappas_only": operating_crossover(stripes, kappa_G, kappa_M, s_op["settled"], level=level,
                                           n_boot=n_boot, seed=seed, resample_stripes=False).D_crit}
    comparison = ({k: compare_dcrit(c.D_crit, dcrit_ungrokking) for k, c in crossings.items()
                   if np.isfinite(c.D_crit.hi) and c.D_crit.lo > 0}
                  if dcrit_ungrokking is not None else {})
    return AllocationAnalysis(disjoint, fit, kappa_G, g_rows, stripes, curves, verdicts, crossings, width_sources,
                              comparison, dcrit_ungrokking, fig10_rows, state_alpha, g_only_share)


def allocation_figures(a: AllocationAnalysis) -> dict[str, Figure]:
    """The allocation figure (predicted curves against the settled and AdamW ratios), by file name."""
    c, ref = a.crossings["operating_settled"].D_crit, a.dcrit_ungrokking
    return {"allocation_curves.png": plot_allocation_curves(
        a.curves["settled"], {"AdamW endpoint": a.curves["adamw"]}, crossover=(c.value, c.lo, c.hi),
        label=f"settled at alpha {a.state_alpha:g}",
        reference=None if ref is None else ("ungrokking", ref.value, ref.lo, ref.hi))}


def write_allocation(a: AllocationAnalysis, out_dir: str | Path) -> None:
    """``allocation_d4.json`` and the figure in ``out_dir``."""
    out = ensure_dir(out_dir)
    write_json(out / "allocation_d4.json", a.summary)
    save_figures(allocation_figures(a), out)
