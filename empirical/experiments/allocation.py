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
   ``logit = (norm / P)^kappa`` per circuit (:mod:`circeff.analysis.allocation_d4`) gives
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
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from circeff.empirical.checkpoint import CHECKPOINT_NAME, load_checkpoint
from circeff.empirical.circuits import analyse_params
from circeff.empirical.config import ModelConfig, TrainConfig
from circeff.empirical.disjoint import (
    CircuitInputs,
    paired_g_inputs,
    settle_alone,
    settle_pair,
    single_model_trig_share,
)
from circeff.empirical.experiments.predictions_common import SMALL_MODEL, BaseConfig, train_base, train_or_reuse
from circeff.empirical.settle import settle
from circeff.empirical.tasks import TaskConfig, make_dataset, train_indices
from circeff.errors import ConfigError
from circeff.io import atomic_write_bytes, ensure_dir, write_csv
from circeff.validate import integer_at_least, positive

__all__ = ["DISJOINT_PRESETS", "DisjointConfig", "run_disjoint", "settle_fig10"]

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
        seeds: which seeds (the G network of that seed, the M network of that seed).
        m_steps, m_lr, m_weight_decay: the M networks' AdamW run.
        alphas: the settle ladder (kappa comes from the spread over it).
        pair_alpha: the L2 coefficient of the pair's settle (one of ``alphas``).
        splits: starting ``(scale_G, scale_M)`` factors of the pair.
        iterations: L-BFGS iterations per circuit and rung, and per pair start.
        label_seed: the random labels of M.
    """

    base: BaseConfig = field(default_factory=BaseConfig)
    sizes: tuple[int, ...] = (40, 80, 160, 320)
    seeds: tuple[int, ...] = (0, 1)
    m_steps: int = 1500
    m_lr: float = 3e-3
    m_weight_decay: float = 1.0
    alphas: tuple[float, ...] = (1e-4, 1e-3, 1e-2)
    pair_alpha: float = 1e-3
    splits: tuple[tuple[float, float], ...] = ((1.0, 0.5), (1.0, 1.0), (0.5, 1.0))
    iterations: int = 150
    label_seed: int = 0

    def __post_init__(self) -> None:
        n = self.base.p**2
        for d in self.sizes:
            integer_at_least("sizes", d, 1)
            if d > n:
                raise ConfigError("sizes", f"must be <= {n} = p^2", d)
        object.__setattr__(self, "sizes", tuple(sorted(set(self.sizes))))
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


DISJOINT_PRESETS: dict[str, DisjointConfig] = {
    # P = 23 with the small model: the G networks are Figure 10's quick base networks.
    "quick": DisjointConfig(base=BaseConfig(p=23, seeds=(0, 1, 2), steps=1500, lr=3e-3, model=SMALL_MODEL),
                            sizes=(40, 80, 160, 320), seeds=(0, 1), iterations=150),
}


def _model(params: dict, k: int) -> dict:
    return {n: t[k:k + 1].detach().clone() for n, t in params.items()}


def _cell(config: DisjointConfig, d: int, seed: int, g_params: dict, m_params: dict) -> dict:
    """One (D, seed): both circuits alone along the ladder, then the pair from every split."""
    p = config.base.p
    m_task = TaskConfig(name="add", p=p, random_labels=True, label_seed=config.label_seed)
    g_task = TaskConfig(name="add", p=p)
    data = make_dataset(m_task)
    idx = train_indices(len(data), d, 0)
    labels = torch.from_numpy(data.labels[idx].copy())
    m_in = CircuitInputs(torch.from_numpy(data.a[idx].copy()), torch.from_numpy(data.b[idx].copy()), labels)
    ga, gb = paired_g_inputs(labels.numpy(), p, seed=1000 * seed + d)
    g_in = CircuitInputs(torch.from_numpy(ga), torch.from_numpy(gb), labels)
    alone, at_pair = [], {}
    for circuit, params, inputs in (("G", g_params, g_in), ("M", m_params, m_in)):
        for r in settle_alone(params, inputs, g_task, config.alphas, config.iterations):
            share = single_model_trig_share(r["params"], g_task) if circuit == "G" else float("nan")
            if r["alpha"] == config.pair_alpha:
                at_pair[circuit] = r["params"]
            alone.append({"circuit": circuit, "D": d, "seed": seed, "trig_share": share,
                          **{k: v for k, v in r.items() if k != "params"}})
    pair = [{"D": d, "seed": seed, "alpha": config.pair_alpha, **asdict(s)}
            for s in settle_pair(at_pair["G"], at_pair["M"], g_in, m_in, g_task, config.pair_alpha,
                                 config.iterations, config.splits)]
    return {"alone": alone, "pair": pair}


def run_disjoint(config: DisjointConfig, out_dir: str | Path, *, progress: bool = True,
                 base_dir: str | Path | None = None) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Train (or reuse) the G base and the M networks, then every (D, seed) cell (resumable)."""
    out = ensure_dir(out_dir)
    base = train_base(config.base, Path(base_dir) if base_dir else out / "base", progress=progress)
    g_all = load_checkpoint(base.run_dir / CHECKPOINT_NAME).params
    m_config = config.m_train_config()
    train_or_reuse(m_config, out / "M", progress=progress, resume=True)
    m_all = load_checkpoint(out / "M" / CHECKPOINT_NAME).params
    cells = ensure_dir(out / "cells")
    key = json.dumps(config.to_dict(), sort_keys=True, default=str)
    alone, pair = [], []
    for k, run in enumerate(m_config.runs):
        path = cells / f"D{run.train_size}_seed{run.seed}.json"
        saved = json.loads(path.read_text()) if path.is_file() else None
        if saved is None or saved.get("key") != key:
            g = _model(g_all, config.base.seeds.index(run.seed))
            cell = _cell(config, run.train_size, run.seed, g, _model(m_all, k))
            saved = {"key": key, **cell}
            atomic_write_bytes(path, json.dumps(saved).encode())
            if progress:
                print(f"disjoint D={run.train_size} seed={run.seed} done", flush=True)
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
    state = load_checkpoint(Path(run_dir) / CHECKPOINT_NAME)
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


def analyse_allocation(alone: pd.DataFrame, pair: pd.DataFrame, fig10_rows: pd.DataFrame, out_dir: str | Path, *,
                       n_classes: int, state_alpha: float, dcrit_ungrokking=None, level: float = 0.95,
                       n_boot: int = 1000, seed: int = 0) -> dict:
    """Every comparison of the allocation experiments, written to ``allocation_d4.json`` and
    ``allocation_curves.png``:

    * the disjoint D.4 test (:func:`circeff.analysis.allocation_d4.compare_disjoint`);
    * Figure 10's ratios at the AdamW endpoint and settled at ``state_alpha`` (per D);
    * both predicted curves against the settled ratios, kappa_eff and the verdict
      (:mod:`circeff.analysis.allocation_curves`);
    * the crossover at the settled networks' operating logit (and at a unit logit), beside
      ``dcrit_ungrokking`` (an :class:`~circeff.analysis.stats.Interval`) if given.
    """
    from circeff.analysis.allocation_curves import allocation_curves, allocation_verdict, compare_dcrit, operating_crossover
    from circeff.analysis.allocation_d4 import compare_disjoint, fit_alone, stripe_log_P
    from circeff.analysis.allocation_plot import plot_allocation_curves
    from circeff.analysis.plots import save_figure
    from circeff.analysis.stats import Interval, to_plain
    from circeff.io import write_json

    out = ensure_dir(out_dir)
    fit = fit_alone(alone, level=level, n_boot=n_boot, seed=seed)
    disjoint = compare_disjoint(alone, pair, n_classes=n_classes, level=level, n_boot=n_boot, seed=seed, analysis=fit)
    stripes = stripe_log_P(alone, fit.fit_G.kappa.value, fit.fit_M.kappa.value)
    states = {"adamw": fig10_rows[fig10_rows["state"] == "adamw"],
              "settled": fig10_rows[(fig10_rows["state"] == "settled") & (fig10_rows["alpha"] == state_alpha)]}
    curves = {k: allocation_curves(stripes, fit.fit_G.kappa, fit.fit_M.kappa, v, level=level, n_boot=n_boot, seed=seed)
              for k, v in states.items()}
    verdicts = {k: allocation_verdict(c) for k, c in curves.items()}
    s_op = float(np.median(states["settled"]["g_logit"] + states["settled"]["m_logit"]))
    s_adamw = float(np.median(states["adamw"]["g_logit"] + states["adamw"]["m_logit"]))
    crossings = {"operating_settled": operating_crossover(stripes, fit.fit_G.kappa, fit.fit_M.kappa, s_op,
                                                          level=level, n_boot=n_boot, seed=seed),
                 "operating_adamw": operating_crossover(stripes, fit.fit_G.kappa, fit.fit_M.kappa, s_adamw,
                                                        level=level, n_boot=n_boot, seed=seed),
                 "unit_logit": operating_crossover(stripes, fit.fit_G.kappa, fit.fit_M.kappa, 1.0,
                                                   level=level, n_boot=n_boot, seed=seed)}
    # where the operating crossover's width comes from: the stripes alone, the kappas alone
    fixed = {c: Interval(k.value, k.value, k.value, k.level, "fixed") for c, k in
             (("G", fit.fit_G.kappa), ("M", fit.fit_M.kappa))}
    width_sources = {
        "stripes_only": operating_crossover(stripes, fixed["G"], fixed["M"], s_op, level=level, n_boot=n_boot,
                                            seed=seed).D_crit,
        "kappas_only": operating_crossover(stripes, fit.fit_G.kappa, fit.fit_M.kappa, s_op, level=level,
                                           n_boot=n_boot, seed=seed, resample_stripes=False).D_crit}
    dcrit = {k: c.D_crit for k, c in crossings.items()}
    comparison = ({k: compare_dcrit(v, dcrit_ungrokking) for k, v in dcrit.items() if np.isfinite(v.hi)}
                  if dcrit_ungrokking is not None else {})
    summary = {"disjoint": disjoint.to_dict(), "fit_alone": {"G": fit.fit_G.to_dict(), "M": fit.fit_M.to_dict()},
               "stripes": stripes.to_dict("records"),
               "curves": {k: c.to_dict() for k, c in curves.items()},
               "verdicts": {k: v.to_dict() for k, v in verdicts.items()},
               "crossover": {k: c.to_dict() for k, c in crossings.items()},
               "dcrit_ungrokking": dcrit_ungrokking.to_dict() if dcrit_ungrokking is not None else None,
               "dcrit_comparison": comparison, "state_alpha": state_alpha,
               "crossover_width_sources": {k: v.to_dict() for k, v in width_sources.items()},
               "fig10": _fig10_table(fig10_rows)}
    write_json(out / "allocation_d4.json", to_plain(summary))
    c = crossings["operating_settled"].D_crit
    save_figure(plot_allocation_curves(curves["settled"], {"AdamW endpoint": curves["adamw"]},
                                       crossover=(c.value, c.lo, c.hi), label=f"settled at alpha {state_alpha:g}"),
                out / "allocation_curves.png")
    return summary
